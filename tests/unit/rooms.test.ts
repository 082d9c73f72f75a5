import { describe, expect, it } from 'vitest'
import { fold } from '../../domain/decider.ts'
import {
  canRead,
  ROOM_DESCRIPTION_MAX,
  ROOM_NAME_MAX,
  type RoomCommand,
  type RoomEvent,
  type RoomState,
  room,
} from '../../domain/rooms.ts'
import { spec } from './spec.ts'

const at = '2026-11-28T10:00:00.000Z'
const roomId = 'room-1'
const alice = { userId: 'alice', role: 'member' as const } // creates the rooms below
const bob = { userId: 'bob', role: 'member' as const } // a member
const carol = { userId: 'carol', role: 'member' as const } // a member of the org, not of the room
const adam = { userId: 'adam', role: 'admin' as const } // an admin, not a member of the room
const olga = { userId: 'olga', role: 'owner' as const } // an owner, not a member of the room
const gus = { userId: 'gus', role: 'guest' as const }

const user = (memberId: string) => ({ memberId, memberType: 'user' as const })
const created = (
  over: Partial<{ visibility: 'public' | 'private'; kind: 'room' | 'dm'; members: string[]; description: string }> = {},
): RoomEvent => ({
  type: 'room.created',
  data: {
    roomId,
    name: 'General',
    description: over.description ?? '',
    spaceId: null,
    visibility: over.visibility ?? 'private',
    kind: over.kind ?? 'room',
    createdBy: 'alice',
    members: (over.members ?? ['alice', 'bob']).map(user),
    at,
  },
})
const publicRoom = created({ visibility: 'public' })
const privateRoom = created()
const dm = created({ kind: 'dm', members: ['alice', 'bob'] })
const archived: RoomEvent = { type: 'room.archived', data: { roomId, archivedBy: 'alice', at } }

const create = (over: Partial<Extract<RoomCommand, { type: 'create' }>> = {}): RoomCommand => ({
  type: 'create',
  roomId,
  name: 'General',
  spaceId: null,
  visibility: 'private',
  actor: alice,
  members: [user('bob')],
  at,
  ...over,
})
const update = (actor: typeof alice | typeof adam | typeof olga, change: { name?: string; description?: string }) =>
  ({ type: 'update', roomId, actor, at, ...change }) as const
const add = (memberId: string, actor: { userId: string; role: 'owner' | 'admin' | 'member' | 'guest' }) =>
  ({ type: 'add_member', roomId, memberId, memberType: 'user', actor, at }) as const
const remove = (memberId: string, actor: { userId: string; role: 'owner' | 'admin' | 'member' | 'guest' }) =>
  ({ type: 'remove_member', roomId, memberId, actor, at }) as const
const added = (memberId: string, addedBy: string): RoomEvent => ({
  type: 'room.member_added',
  data: { roomId, memberId, memberType: 'user', addedBy, at },
})
const removed = (memberId: string, removedBy: string): RoomEvent => ({
  type: 'room.member_removed',
  data: { roomId, memberId, removedBy, at },
})

describe('rooms: who may read a room', () => {
  const state = (...events: RoomEvent[]): RoomState => fold(room, events)

  it('members read any room they are in, public, private or a DM', () => {
    expect(canRead(state(privateRoom), 'bob', 'member')).toBe(true)
    expect(canRead(state(dm), 'bob', 'guest')).toBe(true)
    expect(canRead(state(publicRoom), 'bob', 'guest')).toBe(true)
  })

  it('others read public rooms only, and guests never', () => {
    expect(canRead(state(publicRoom), 'carol', 'member')).toBe(true)
    expect(canRead(state(publicRoom), 'gus', 'guest')).toBe(false)
    expect(canRead(state(privateRoom), 'carol', 'member')).toBe(false)
    expect(canRead(state(privateRoom), 'adam', 'admin')).toBe(false)
  })

  it('a DM is read by its two members, even if it were marked public', () =>
    expect(canRead(state(created({ kind: 'dm', visibility: 'public' })), 'carol', 'member')).toBe(false))

  it('nobody reads a room that does not exist', () => {
    expect(canRead(room.initialState, 'alice', 'owner')).toBe(false)
    expect(room.initialState).toEqual({ exists: false })
  })

  it('members who leave lose a private room', () =>
    expect(canRead(state(privateRoom, removed('bob', 'bob')), 'bob', 'member')).toBe(false))
})

describe('rooms: creating', () => {
  const rules = spec(room)

  it('the creator is a member first, as a user, then the members listed, each once', () =>
    rules
      .given([])
      .when(
        create({
          members: [user('bob'), { memberId: 'agent-1', memberType: 'agent' }, user('bob'), user('alice')],
          kind: 'room',
        }),
      )
      .then([
        {
          type: 'room.created',
          data: {
            ...(privateRoom.data as Extract<RoomEvent, { type: 'room.created' }>['data']),
            members: [user('alice'), user('bob'), { memberId: 'agent-1', memberType: 'agent' }],
          },
        },
      ]))

  it('without members listed, the creator alone is in the room', () =>
    rules
      .given([])
      .when({ type: 'create', roomId, name: 'Solo', spaceId: 'space-1', visibility: 'public', actor: olga, at })
      .then([
        {
          type: 'room.created',
          data: {
            roomId,
            name: 'Solo',
            description: '',
            spaceId: 'space-1',
            visibility: 'public',
            kind: 'room',
            createdBy: 'olga',
            members: [user('olga')],
            at,
          },
        },
      ]))

  it('a DM is private whatever visibility is asked', () => {
    const out = room.decide(create({ kind: 'dm', visibility: 'public' }), room.initialState)
    expect(out).toMatchObject([{ type: 'room.created', data: { kind: 'dm', visibility: 'private' } }])
  })

  it('a room is created once', () => rules.given([privateRoom]).when(create()).thenRefused('ROOM_EXISTS', 'conflict'))

  it('guests do not create rooms; members, admins and owners do', () => {
    rules
      .given([])
      .when(create({ actor: gus }))
      .thenRefused('FORBIDDEN', 'forbidden')
    for (const actor of [bob, adam, olga]) expect(room.decide(create({ actor }), room.initialState)).toHaveLength(1)
  })

  it('a room name has 1 to 80 characters once trimmed', () => {
    const longest = 'n'.repeat(ROOM_NAME_MAX)
    expect(room.decide(create({ name: ` ${longest} ` }), room.initialState)).toMatchObject([{ data: { name: longest } }])
    rules
      .given([])
      .when(create({ name: `${longest}n` }))
      .thenRefused('ROOM_NAME_INVALID')
    rules
      .given([])
      .when(create({ name: ' \t ' }))
      .thenRefused('ROOM_NAME_INVALID')
  })

  it('a description has at most 2,000 characters and is kept trimmed', () => {
    const longest = 'd'.repeat(ROOM_DESCRIPTION_MAX)
    expect(room.decide(create({ description: longest }), room.initialState)).toMatchObject([{ data: { description: longest } }])
    expect(room.decide(create({ description: '  about  ' }), room.initialState)).toMatchObject([
      { data: { description: 'about' } },
    ])
    rules
      .given([])
      .when(create({ description: `${longest}d` }))
      .thenRefused('ROOM_DESCRIPTION_INVALID')
  })
})

describe('rooms: direct messages', () => {
  const rules = spec(room)
  const open = (actor: typeof alice, other = 'bob') =>
    ({ type: 'open_dm', roomId, actor, other: { memberId: other, memberType: 'user' }, at }) as const

  it('the first to open a DM creates it, private, with both members', () =>
    rules
      .given([])
      .when(open(alice))
      .then([
        {
          type: 'room.created',
          data: {
            roomId,
            name: 'Direct message',
            description: '',
            spaceId: null,
            visibility: 'private',
            kind: 'dm',
            createdBy: 'alice',
            members: [user('alice'), user('bob')],
            at,
          },
        },
      ]))

  it('either member opening it again just finds it', () => {
    rules.given([dm]).when(open(alice)).then([])
    rules.given([dm]).when(open(bob, 'alice')).then([])
  })

  it('a DM with oneself is refused', () => rules.given([]).when(open(alice, 'alice')).thenRefused('DM_SELF'))

  it('someone else, or a room that is not a DM, is not found', () => {
    rules.given([dm]).when(open(carol, 'alice')).thenRefused('ROOM_NOT_FOUND', 'not_found')
    rules.given([privateRoom]).when(open(alice)).thenRefused('ROOM_NOT_FOUND', 'not_found')
  })

  it('a DM keeps its name and its two members', () => {
    rules
      .given([dm])
      .when(update(alice, { name: 'Us' }))
      .thenRefused('DM_IMMUTABLE')
    rules.given([dm]).when(add('carol', alice)).thenRefused('DM_MEMBERS_FIXED')
    rules.given([dm]).when(remove('bob', bob)).thenRefused('DM_MEMBERS_FIXED')
  })
})

describe('rooms: renaming and describing', () => {
  const rules = spec(room)
  const described = created({ description: 'About' })

  it('any member renames a room; only what changed is in the event', () => {
    rules
      .given([described])
      .when({ type: 'update', roomId, name: ' Lobby ', description: 'About', actor: bob, at })
      .then([{ type: 'room.updated', data: { roomId, name: 'Lobby', at } }])
    rules
      .given([described])
      .when({ type: 'update', roomId, name: 'General', description: ' Intro ', actor: bob, at })
      .then([{ type: 'room.updated', data: { roomId, description: 'Intro', at } }])
    rules
      .given([described])
      .when({ type: 'update', roomId, name: 'Lobby', description: 'Intro', actor: bob, at })
      .then([{ type: 'room.updated', data: { roomId, name: 'Lobby', description: 'Intro', at } }])
  })

  it('the same name and description change nothing', () => {
    rules.given([described]).when({ type: 'update', roomId, name: ' General ', description: 'About', actor: alice, at }).then([])
    rules.given([described]).when({ type: 'update', roomId, actor: alice, at }).then([])
  })

  it('a rename is checked like a new name, a description likewise', () => {
    rules
      .given([described])
      .when(update(alice, { name: '' }))
      .thenRefused('ROOM_NAME_INVALID')
    rules
      .given([described])
      .when(update(alice, { description: 'x'.repeat(ROOM_DESCRIPTION_MAX + 1) }))
      .thenRefused('ROOM_DESCRIPTION_INVALID')
  })

  it('admins and owners rename rooms they are not in', () => {
    for (const actor of [adam, olga])
      rules
        .given([privateRoom])
        .when(update(actor, { name: 'Moderated' }))
        .then([{ type: 'room.updated', data: { roomId, name: 'Moderated', at } }])
  })

  it('a reader who is not a member does not rename a public room', () =>
    rules
      .given([publicRoom])
      .when(update(carol, { name: 'Mine' }))
      .thenRefused('FORBIDDEN', 'forbidden'))

  it('a private room does not exist for those outside it', () =>
    rules
      .given([privateRoom])
      .when(update(carol, { name: 'Mine' }))
      .thenRefused('ROOM_NOT_FOUND', 'not_found'))

  it('a room that does not exist cannot be changed', () => {
    rules
      .given([])
      .when(update(olga, { name: 'x' }))
      .thenRefused('ROOM_NOT_FOUND', 'not_found')
    rules.given([]).when(add('bob', olga)).thenRefused('ROOM_NOT_FOUND', 'not_found')
    rules.given([]).when({ type: 'archive', roomId, actor: olga, at }).thenRefused('ROOM_NOT_FOUND', 'not_found')
  })

  it('the state keeps what a partial update leaves alone', () => {
    const s = fold(room, [
      described,
      { type: 'room.updated', data: { roomId, name: 'Lobby', at } },
      { type: 'room.updated', data: { roomId, description: 'Intro', at } },
    ])
    expect(s).toMatchObject({ exists: true, name: 'Lobby', description: 'Intro' })
  })
})

describe('rooms: members', () => {
  const rules = spec(room)

  it('a reader of a public room joins it by themselves', () =>
    rules
      .given([publicRoom])
      .when(add('carol', carol))
      .then([added('carol', 'carol')]))

  it('members add others, also to a public room; readers who are not members do not', () => {
    rules
      .given([publicRoom])
      .when(add('dave', bob))
      .then([added('dave', 'bob')])
    rules.given([publicRoom]).when(add('dave', carol)).thenRefused('FORBIDDEN', 'forbidden')
  })

  it('admins and owners add others to a private room they are not in, but do not join it themselves', () => {
    rules
      .given([privateRoom])
      .when(add('carol', adam))
      .then([added('carol', 'adam')])
    rules
      .given([privateRoom])
      .when(add('carol', olga))
      .then([added('carol', 'olga')])
    rules.given([privateRoom]).when(add('adam', adam)).thenRefused('FORBIDDEN', 'forbidden')
  })

  it('adding a member twice changes nothing', () => {
    rules
      .given([privateRoom, added('carol', 'bob')])
      .when(add('carol', alice))
      .then([])
    rules.given([publicRoom]).when(add('bob', bob)).then([])
  })

  it('an agent is added as an agent', () => {
    rules
      .given([privateRoom])
      .when({ type: 'add_member', roomId, memberId: 'agent-1', memberType: 'agent', actor: bob, at })
      .then([{ type: 'room.member_added', data: { roomId, memberId: 'agent-1', memberType: 'agent', addedBy: 'bob', at } }])
    expect(
      fold(room, [
        privateRoom,
        { type: 'room.member_added', data: { roomId, memberId: 'agent-1', memberType: 'agent', addedBy: 'bob', at } },
      ]),
    ).toMatchObject({
      members: new Map([
        ['alice', 'user'],
        ['bob', 'user'],
        ['agent-1', 'agent'],
      ]),
    })
  })

  it('the creator removes others without being an admin; other members only themselves', () => {
    const three = created({ members: ['alice', 'bob', 'carol'] })
    rules
      .given([three])
      .when(remove('carol', alice))
      .then([removed('carol', 'alice')])
    rules.given([three]).when(remove('carol', bob)).thenRefused('FORBIDDEN', 'forbidden')
    rules
      .given([three])
      .when(remove('carol', carol))
      .then([removed('carol', 'carol')])
    rules
      .given([three])
      .when(remove('carol', olga))
      .then([removed('carol', 'olga')])
  })

  it('removing someone who is not a member changes nothing', () => {
    rules.given([privateRoom]).when(remove('carol', alice)).then([])
    rules
      .given([privateRoom, removed('bob', 'bob')])
      .when(remove('bob', alice))
      .then([])
  })

  it('a member removed and added again is a member', () =>
    expect(canRead(fold(room, [privateRoom, removed('bob', 'bob'), added('bob', 'alice')]), 'bob', 'member')).toBe(true))

  it('an archived room takes no members and loses none', () => {
    rules.given([publicRoom, archived]).when(add('carol', carol)).thenRefused('ROOM_ARCHIVED')
    rules.given([privateRoom, archived]).when(remove('bob', bob)).thenRefused('ROOM_ARCHIVED')
  })
})

describe('rooms: archiving', () => {
  const rules = spec(room)

  it('the creator, an admin or an owner archives a room; other members do not', () => {
    rules.given([privateRoom]).when({ type: 'archive', roomId, actor: alice, at }).then([archived])
    rules
      .given([privateRoom])
      .when({ type: 'archive', roomId, actor: adam, at })
      .then([{ type: 'room.archived', data: { roomId, archivedBy: 'adam', at } }])
    rules
      .given([publicRoom])
      .when({ type: 'archive', roomId, actor: olga, at })
      .then([{ type: 'room.archived', data: { roomId, archivedBy: 'olga', at } }])
    rules.given([privateRoom]).when({ type: 'archive', roomId, actor: bob, at }).thenRefused('FORBIDDEN', 'forbidden')
  })

  it('archiving an archived room changes nothing', () =>
    rules.given([privateRoom, archived]).when({ type: 'archive', roomId, actor: alice, at }).then([]))

  it('an archived room is read still, and changed by nobody', () => {
    expect(fold(room, [privateRoom, archived])).toMatchObject({ exists: true, archived: true })
    expect(fold(room, [privateRoom])).toMatchObject({ archived: false })
    rules
      .given([privateRoom, archived])
      .when(update(olga, { name: 'x' }))
      .thenRefused('ROOM_ARCHIVED')
  })
})

describe('rooms: delete this and everything after it', () => {
  const rules = spec(room)
  const range = (
    actor: { userId: string; role: 'owner' | 'admin' | 'member' | 'guest' },
    messageIds = ['m2', 'm3', 'm4'],
    authors = ['alice', 'bob', 'alice'],
  ) =>
    ({
      type: 'delete_range',
      roomId,
      fromMessageId: messageIds[0]!,
      toMessageId: messageIds.at(-1)!,
      messageIds,
      authors,
      actor,
      at,
    }) as const
  const deleted = (messageIds: string[], deletedBy = 'alice'): RoomEvent => ({
    type: 'message.range_deleted',
    data: { roomId, fromMessageId: messageIds[0]!, toMessageId: messageIds.at(-1)!, messageIds, deletedBy, at },
  })

  it('a member deletes a range of their own, other members’ and agents’ messages', () => {
    const agentAdded: RoomEvent = {
      type: 'room.member_added',
      data: { roomId, memberId: 'agent-1', memberType: 'agent', addedBy: 'alice', at },
    }
    rules
      .given([privateRoom, agentAdded])
      .when(range(bob, ['m2', 'm3'], ['agent-1', 'bob']))
      .then([deleted(['m2', 'm3'], 'bob')])
  })

  it('what was deleted already is left out; when nothing is left, nothing happens', () => {
    rules
      .given([privateRoom, deleted(['m3'])])
      .when(range(alice))
      .then([
        {
          type: 'message.range_deleted',
          data: { roomId, fromMessageId: 'm2', toMessageId: 'm4', messageIds: ['m2', 'm4'], deletedBy: 'alice', at },
        },
      ])
    rules
      .given([privateRoom, deleted(['m2']), deleted(['m3', 'm4'])])
      .when(range(alice))
      .then([])
  })

  it('a member does not delete what someone outside the room wrote, even with their own', () =>
    rules
      .given([privateRoom])
      .when(range(alice, ['m2', 'm3'], ['alice', 'zed']))
      .thenRefused('FORBIDDEN', 'forbidden'))

  it('a member deletes their own messages even after the others left', () =>
    rules
      .given([created({ members: ['alice', 'bob'] }), removed('bob', 'bob')])
      .when(range(alice, ['m2'], ['alice']))
      .then([deleted(['m2'])]))

  it('admins delete any range, outsiders’ messages included, without being members', () =>
    rules
      .given([publicRoom])
      .when(range(adam, ['m2', 'm3'], ['zed', 'bob']))
      .then([deleted(['m2', 'm3'], 'adam')]))

  it('readers who are not members delete nothing', () =>
    rules
      .given([publicRoom])
      .when(range(carol, ['m2'], ['carol']))
      .thenRefused('FORBIDDEN', 'forbidden'))

  it('an archived room keeps its messages', () =>
    rules.given([privateRoom, archived]).when(range(alice)).thenRefused('ROOM_ARCHIVED'))

  it('the state remembers every message a range removed', () =>
    expect(fold(room, [privateRoom, deleted(['m1']), deleted(['m2', 'm3'])])).toMatchObject({
      rangeDeleted: new Set(['m1', 'm2', 'm3']),
    }))
})

describe('rooms: events on a room that does not exist', () => {
  it('leave it absent', () => {
    const stray: RoomEvent[] = [
      { type: 'room.updated', data: { roomId, name: 'x', at } },
      added('bob', 'alice'),
      removed('bob', 'alice'),
      archived,
      {
        type: 'message.range_deleted',
        data: { roomId, fromMessageId: 'm', toMessageId: 'm', messageIds: ['m'], deletedBy: 'a', at },
      },
    ]
    for (const e of stray) expect(fold(room, [e])).toEqual({ exists: false })
  })

  it('a created room is the state its event says', () =>
    expect(fold(room, [publicRoom])).toEqual({
      exists: true,
      name: 'General',
      description: '',
      visibility: 'public',
      kind: 'room',
      createdBy: 'alice',
      archived: false,
      members: new Map([
        ['alice', 'user'],
        ['bob', 'user'],
      ]),
      rangeDeleted: new Set(),
    }))
})
