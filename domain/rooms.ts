import { type Decider, DomainError, type DomainEvent } from './decider.ts'

export const ROOM_NAME_MAX = 80
export const ROOM_DESCRIPTION_MAX = 2_000

export type Visibility = 'public' | 'private'
export type RoomKind = 'room' | 'dm'
export type MemberType = 'user' | 'agent'
export type ActorRole = 'owner' | 'admin' | 'member' | 'guest'

/** Who acts, as far as rooms care: their user id and org role. */
export type RoomActor = { readonly userId: string; readonly role: ActorRole }

export type RoomEvent =
  | DomainEvent<
      'room.created',
      {
        roomId: string
        name: string
        description: string
        spaceId: string | null
        visibility: Visibility
        kind: RoomKind
        createdBy: string
        members: { memberId: string; memberType: MemberType }[]
        at: string
      }
    >
  | DomainEvent<'room.updated', { roomId: string; name?: string; description?: string; at: string }>
  | DomainEvent<'room.member_added', { roomId: string; memberId: string; memberType: MemberType; addedBy: string; at: string }>
  | DomainEvent<'room.member_removed', { roomId: string; memberId: string; removedBy: string; at: string }>
  | DomainEvent<'room.archived', { roomId: string; archivedBy: string; at: string }>
  | DomainEvent<
      'message.range_deleted',
      { roomId: string; fromMessageId: string; toMessageId: string; messageIds: string[]; deletedBy: string; at: string }
    >

export type RoomState =
  | { readonly exists: false }
  | {
      readonly exists: true
      readonly name: string
      readonly description: string
      readonly visibility: Visibility
      readonly kind: RoomKind
      readonly createdBy: string
      readonly archived: boolean
      readonly members: ReadonlyMap<string, MemberType>
      /** Messages removed by "delete this and everything after it": no longer editable or reactable. */
      readonly rangeDeleted: ReadonlySet<string>
    }

export type RoomCommand =
  | {
      type: 'create'
      roomId: string
      name: string
      description?: string
      spaceId: string | null
      visibility: Visibility
      kind?: RoomKind
      actor: RoomActor
      members?: { memberId: string; memberType: MemberType }[]
      at: string
    }
  | { type: 'update'; roomId: string; name?: string; description?: string; actor: RoomActor; at: string }
  /** The direct-message room of two users: created by whichever opens it first, then just found. */
  | { type: 'open_dm'; roomId: string; actor: RoomActor; other: { memberId: string; memberType: MemberType }; at: string }
  | { type: 'add_member'; roomId: string; memberId: string; memberType: MemberType; actor: RoomActor; at: string }
  | { type: 'remove_member'; roomId: string; memberId: string; actor: RoomActor; at: string }
  | { type: 'archive'; roomId: string; actor: RoomActor; at: string }
  | {
      type: 'delete_range'
      roomId: string
      fromMessageId: string
      toMessageId: string
      /** The messages in the range, oldest first, as the timeline shows them (resolved by the caller). */
      messageIds: string[]
      /** The authors of those messages, to decide who may delete them. */
      authors: string[]
      actor: RoomActor
      at: string
    }

type Existing = Extract<RoomState, { exists: true }>

const isAdmin = (a: RoomActor) => a.role === 'owner' || a.role === 'admin'

/** Whether a user may read a room's content: members always; others only public rooms, and never guests. */
export const canRead = (s: RoomState, userId: string, role: ActorRole): boolean =>
  s.exists && (s.members.has(userId) || (s.visibility === 'public' && s.kind === 'room' && role !== 'guest'))

const name = (n: string) => {
  const t = n.trim()
  if (t.length === 0 || t.length > ROOM_NAME_MAX)
    throw new DomainError('ROOM_NAME_INVALID', `a room name has 1 to ${ROOM_NAME_MAX} characters`)
  return t
}
const description = (d: string) => {
  if (d.length > ROOM_DESCRIPTION_MAX)
    throw new DomainError('ROOM_DESCRIPTION_INVALID', `a description has at most ${ROOM_DESCRIPTION_MAX} characters`)
  return d.trim()
}

const existing = (s: RoomState): Existing => {
  if (!s.exists) throw new DomainError('ROOM_NOT_FOUND', 'no such room', 'not_found')
  return s
}

/** Non-members of a private room learn nothing about it, not even that it exists; admins moderate every room. */
const visible = (s: RoomState, a: RoomActor): Existing => {
  const room = existing(s)
  if (!canRead(room, a.userId, a.role) && !isAdmin(a)) throw new DomainError('ROOM_NOT_FOUND', 'no such room', 'not_found')
  return room
}

const mutable = (room: Existing) => {
  if (room.archived) throw new DomainError('ROOM_ARCHIVED', 'this room is archived')
}

const manages = (room: Existing, a: RoomActor) => isAdmin(a) || room.createdBy === a.userId

export const room: Decider<RoomCommand, RoomEvent, RoomState> = {
  initialState: { exists: false },
  decide(c, s) {
    switch (c.type) {
      case 'create': {
        if (s.exists) throw new DomainError('ROOM_EXISTS', 'this room exists', 'conflict')
        if (c.actor.role === 'guest') throw new DomainError('FORBIDDEN', 'guests do not create rooms', 'forbidden')
        const members = new Map<string, MemberType>([[c.actor.userId, 'user']])
        for (const m of c.members ?? []) members.set(m.memberId, m.memberType)
        return [
          {
            type: 'room.created',
            data: {
              roomId: c.roomId,
              name: name(c.name),
              description: description(c.description ?? ''),
              spaceId: c.spaceId,
              visibility: c.kind === 'dm' ? 'private' : c.visibility,
              kind: c.kind ?? 'room',
              createdBy: c.actor.userId,
              members: [...members].map(([memberId, memberType]) => ({ memberId, memberType })),
              at: c.at,
            },
          },
        ]
      }
      case 'open_dm': {
        if (s.exists) {
          if (s.kind !== 'dm' || !s.members.has(c.actor.userId))
            throw new DomainError('ROOM_NOT_FOUND', 'no such room', 'not_found')
          return []
        }
        if (c.other.memberId === c.actor.userId) throw new DomainError('DM_SELF', 'a direct message needs someone else')
        return [
          {
            type: 'room.created',
            data: {
              roomId: c.roomId,
              name: 'Direct message',
              description: '',
              spaceId: null,
              visibility: 'private',
              kind: 'dm',
              createdBy: c.actor.userId,
              members: [{ memberId: c.actor.userId, memberType: 'user' }, c.other],
              at: c.at,
            },
          },
        ]
      }
      case 'update': {
        const r = visible(s, c.actor)
        mutable(r)
        if (!manages(r, c.actor) && !r.members.has(c.actor.userId))
          throw new DomainError('FORBIDDEN', 'only members rename a room', 'forbidden')
        if (r.kind === 'dm') throw new DomainError('DM_IMMUTABLE', 'direct messages have no name to change')
        const data: { roomId: string; name?: string; description?: string; at: string } = { roomId: c.roomId, at: c.at }
        if (c.name !== undefined && name(c.name) !== r.name) data.name = name(c.name)
        if (c.description !== undefined && description(c.description) !== r.description)
          data.description = description(c.description)
        return data.name === undefined && data.description === undefined ? [] : [{ type: 'room.updated', data }]
      }
      case 'add_member': {
        const r = visible(s, c.actor)
        mutable(r)
        if (r.kind === 'dm') throw new DomainError('DM_MEMBERS_FIXED', 'a direct message has exactly its two members')
        const self = c.memberId === c.actor.userId
        // Anyone who can read a public room may join it; adding others takes membership (or admin).
        if (!(self ? canRead(r, c.actor.userId, c.actor.role) : r.members.has(c.actor.userId) || isAdmin(c.actor))) {
          throw new DomainError('FORBIDDEN', 'only members add people to this room', 'forbidden')
        }
        if (r.members.has(c.memberId)) return []
        return [
          {
            type: 'room.member_added',
            data: { roomId: c.roomId, memberId: c.memberId, memberType: c.memberType, addedBy: c.actor.userId, at: c.at },
          },
        ]
      }
      case 'remove_member': {
        const r = visible(s, c.actor)
        mutable(r)
        if (r.kind === 'dm') throw new DomainError('DM_MEMBERS_FIXED', 'a direct message has exactly its two members')
        if (c.memberId !== c.actor.userId && !manages(r, c.actor)) {
          throw new DomainError('FORBIDDEN', 'only admins and the room creator remove others', 'forbidden')
        }
        if (!r.members.has(c.memberId)) return []
        return [
          { type: 'room.member_removed', data: { roomId: c.roomId, memberId: c.memberId, removedBy: c.actor.userId, at: c.at } },
        ]
      }
      case 'archive': {
        const r = visible(s, c.actor)
        if (!manages(r, c.actor))
          throw new DomainError('FORBIDDEN', 'only admins and the room creator archive a room', 'forbidden')
        if (r.archived) return []
        return [{ type: 'room.archived', data: { roomId: c.roomId, archivedBy: c.actor.userId, at: c.at } }]
      }
      case 'delete_range': {
        const r = visible(s, c.actor)
        mutable(r)
        if (!r.members.has(c.actor.userId) && !isAdmin(c.actor))
          throw new DomainError('FORBIDDEN', 'only members delete messages', 'forbidden')
        if (!isAdmin(c.actor) && c.authors.some((a) => a !== c.actor.userId && !r.members.has(a))) {
          // Rewinding a conversation removes agents' replies too, but never what someone outside it wrote.
          throw new DomainError('FORBIDDEN', 'the range holds messages of people outside this room', 'forbidden')
        }
        const ids = c.messageIds.filter((id) => !r.rangeDeleted.has(id))
        if (ids.length === 0) return []
        return [
          {
            type: 'message.range_deleted',
            data: {
              roomId: c.roomId,
              fromMessageId: c.fromMessageId,
              toMessageId: c.toMessageId,
              messageIds: ids,
              deletedBy: c.actor.userId,
              at: c.at,
            },
          },
        ]
      }
    }
  },
  evolve(s, e) {
    if (e.type === 'room.created') {
      return {
        exists: true,
        name: e.data.name,
        description: e.data.description,
        visibility: e.data.visibility,
        kind: e.data.kind,
        createdBy: e.data.createdBy,
        archived: false,
        members: new Map(e.data.members.map((m) => [m.memberId, m.memberType])),
        rangeDeleted: new Set(),
      }
    }
    if (!s.exists) return s
    switch (e.type) {
      case 'room.updated':
        return { ...s, name: e.data.name ?? s.name, description: e.data.description ?? s.description }
      case 'room.member_added':
        return { ...s, members: new Map(s.members).set(e.data.memberId, e.data.memberType) }
      case 'room.member_removed': {
        const members = new Map(s.members)
        members.delete(e.data.memberId)
        return { ...s, members }
      }
      case 'room.archived':
        return { ...s, archived: true }
      case 'message.range_deleted':
        return { ...s, rangeDeleted: new Set([...s.rangeDeleted, ...e.data.messageIds]) }
    }
  },
}
