import { describe, expect, it } from 'vitest'
import { fold } from '../../domain/decider.ts'
import { type MessageEvent, message, parseMentions, readMark, validEmoji } from '../../domain/messages.ts'
import { type RoomEvent, room } from '../../domain/rooms.ts'
import { space } from '../../domain/spaces.ts'
import { deciderSpec } from '../support/given-when-then.ts'

const at = '2026-11-28T10:00:00.000Z'
const roomId = 'room-1'
const alice = { userId: 'alice', role: 'member' as const }
const bob = { userId: 'bob', role: 'member' as const }
const carol = { userId: 'carol', role: 'member' as const }
const admin = { userId: 'adam', role: 'admin' as const }
const guest = { userId: 'gus', role: 'guest' as const }

const created = (visibility: 'public' | 'private' = 'private', members = ['alice', 'bob']): RoomEvent => ({
  type: 'room.created',
  data: {
    roomId,
    name: 'General',
    description: '',
    spaceId: null,
    visibility,
    kind: 'room',
    createdBy: 'alice',
    members: members.map((memberId) => ({ memberId, memberType: 'user' as const })),
    at,
  },
})

describe('rooms', () => {
  const spec = deciderSpec(room)
  it('creates a room with its creator as a member', () =>
    spec
      .given([])
      .when({
        type: 'create',
        roomId,
        name: ' General ',
        spaceId: null,
        visibility: 'private',
        actor: alice,
        members: [{ memberId: 'bob', memberType: 'user' }],
        at,
      })
      .then([created()]))
  it('guests do not create rooms', () =>
    spec
      .given([])
      .when({ type: 'create', roomId, name: 'x', spaceId: null, visibility: 'public', actor: guest, at })
      .thenRefused('FORBIDDEN'))
  it('hides a private room from non-members', () =>
    spec.given([created()]).when({ type: 'update', roomId, name: 'Renamed', actor: carol, at }).thenRefused('ROOM_NOT_FOUND'))
  it('lets anyone join a public room but only members add others to a private one', () => {
    spec
      .given([created('public')])
      .when({ type: 'add_member', roomId, memberId: 'carol', memberType: 'user', actor: carol, at })
      .then([{ type: 'room.member_added', data: { roomId, memberId: 'carol', memberType: 'user', addedBy: 'carol', at } }])
    spec
      .given([created('public')])
      .when({ type: 'add_member', roomId, memberId: 'gus', memberType: 'user', actor: guest, at })
      .thenRefused('ROOM_NOT_FOUND')
    spec
      .given([created()])
      .when({ type: 'add_member', roomId, memberId: 'carol', memberType: 'user', actor: carol, at })
      .thenRefused('ROOM_NOT_FOUND')
    spec
      .given([created()])
      .when({ type: 'add_member', roomId, memberId: 'agent-1', memberType: 'agent', actor: bob, at })
      .then([{ type: 'room.member_added', data: { roomId, memberId: 'agent-1', memberType: 'agent', addedBy: 'bob', at } }])
    spec.given([created()]).when({ type: 'add_member', roomId, memberId: 'bob', memberType: 'user', actor: alice, at }).then([])
  })
  it('members leave; only admins and the creator remove others', () => {
    spec
      .given([created()])
      .when({ type: 'remove_member', roomId, memberId: 'bob', actor: bob, at })
      .then([{ type: 'room.member_removed', data: { roomId, memberId: 'bob', removedBy: 'bob', at } }])
    spec
      .given([created(undefined, ['alice', 'bob', 'carol'])])
      .when({ type: 'remove_member', roomId, memberId: 'carol', actor: bob, at })
      .thenRefused('FORBIDDEN')
    spec
      .given([created(undefined, ['alice', 'bob', 'carol'])])
      .when({ type: 'remove_member', roomId, memberId: 'carol', actor: admin, at })
      .then([{ type: 'room.member_removed', data: { roomId, memberId: 'carol', removedBy: 'adam', at } }])
  })
  it('an archived room refuses changes', () => {
    const archived: RoomEvent = { type: 'room.archived', data: { roomId, archivedBy: 'alice', at } }
    spec.given([created()]).when({ type: 'archive', roomId, actor: bob, at }).thenRefused('FORBIDDEN')
    spec.given([created()]).when({ type: 'archive', roomId, actor: alice, at }).then([archived])
    spec.given([created(), archived]).when({ type: 'update', roomId, name: 'x', actor: alice, at }).thenRefused('ROOM_ARCHIVED')
  })
  it('range delete removes the listed messages once, and not what outsiders wrote', () => {
    const cmd = {
      type: 'delete_range' as const,
      roomId,
      fromMessageId: 'm2',
      toMessageId: 'm4',
      messageIds: ['m2', 'm3', 'm4'],
      authors: ['alice', 'bob', 'alice'],
      actor: alice,
      at,
    }
    const event: RoomEvent = {
      type: 'message.range_deleted',
      data: { roomId, fromMessageId: 'm2', toMessageId: 'm4', messageIds: ['m2', 'm3', 'm4'], deletedBy: 'alice', at },
    }
    spec.given([created()]).when(cmd).then([event])
    spec.given([created(), event]).when(cmd).then([])
    spec
      .given([created()])
      .when({ ...cmd, authors: ['zed'] })
      .thenRefused('FORBIDDEN')
  })
})

describe('messages', () => {
  const spec = deciderSpec(message)
  const roomState = (events: RoomEvent[] = [created()]) => fold(room, events)
  const posted: MessageEvent = {
    type: 'message.created',
    data: {
      messageId: 'm1',
      roomId,
      authorId: 'alice',
      authorType: 'user',
      text: 'hi @bob',
      threadRootId: null,
      mentions: [{ userId: 'bob', username: 'bob' }],
      at,
    },
  }
  const post = (over: object = {}) => ({
    type: 'post' as const,
    messageId: 'm1',
    roomId,
    text: 'hi @bob',
    threadRoot: null,
    mentions: [{ userId: 'bob', username: 'bob' }],
    actor: { ...alice, type: 'user' as const },
    room: roomState(),
    at,
    ...over,
  })

  it('members post; non-members cannot; archived rooms refuse with 422', () => {
    spec.given([]).when(post()).then([posted])
    spec
      .given([])
      .when(post({ actor: { ...carol, type: 'user' }, room: roomState([created('public')]) }))
      .thenRefused('NOT_A_MEMBER')
    spec
      .given([])
      .when(post({ actor: { ...carol, type: 'user' } }))
      .thenRefused('ROOM_NOT_FOUND')
    spec
      .given([])
      .when(post({ room: roomState([created(), { type: 'room.archived', data: { roomId, archivedBy: 'alice', at } }]) }))
      .thenRefused('ROOM_ARCHIVED')
    spec
      .given([])
      .when(post({ text: '   ' }))
      .thenRefused('MESSAGE_EMPTY')
  })

  it('replies join the root’s thread, one level deep', () => {
    const reply = (root: MessageEvent[]) => post({ messageId: 'm2', threadRoot: { messageId: 'm1', state: fold(message, root) } })
    const out = message.decide(reply([posted]), message.initialState)
    expect(out[0]!.type === 'message.created' && out[0]!.data.threadRootId).toBe('m1')
    const replyToReply = message.decide(
      post({
        messageId: 'm3',
        threadRoot: {
          messageId: 'm2',
          state: fold(message, [{ ...posted, data: { ...posted.data, messageId: 'm2', threadRootId: 'm1' } } as MessageEvent]),
        },
      }),
      message.initialState,
    )
    expect(replyToReply[0]!.type === 'message.created' && replyToReply[0]!.data.threadRootId).toBe('m1')
    spec.given([]).when(reply([])).thenRefused('THREAD_ROOT_INVALID')
  })

  it('only the author edits; the previous text is kept in the event', () => {
    spec
      .given([posted])
      .when({ type: 'edit', messageId: 'm1', text: 'hello', mentions: [], actor: alice, room: roomState(), at })
      .then([
        { type: 'message.updated', data: { messageId: 'm1', roomId, text: 'hello', previousText: 'hi @bob', mentions: [], at } },
      ])
    spec
      .given([posted])
      .when({ type: 'edit', messageId: 'm1', text: 'hello', mentions: [], actor: bob, room: roomState(), at })
      .thenRefused('FORBIDDEN')
  })

  it('authors and admins delete; deleted messages are gone for edits and reactions', () => {
    const deleted: MessageEvent = { type: 'message.deleted', data: { messageId: 'm1', roomId, deletedBy: 'adam', at } }
    spec.given([posted]).when({ type: 'delete', messageId: 'm1', actor: bob, room: roomState(), at }).thenRefused('FORBIDDEN')
    spec.given([posted]).when({ type: 'delete', messageId: 'm1', actor: admin, room: roomState(), at }).then([deleted])
    spec
      .given([posted, deleted])
      .when({ type: 'react', messageId: 'm1', emoji: 'tada', reacted: true, actor: bob, room: roomState(), at })
      .thenRefused('MESSAGE_NOT_FOUND')
  })

  it('reactions are a set per user and emoji', () => {
    const on: MessageEvent = {
      type: 'message.reaction_changed',
      data: { messageId: 'm1', roomId, userId: 'bob', emoji: '👍', reacted: true, at },
    }
    spec
      .given([posted])
      .when({ type: 'react', messageId: 'm1', emoji: '👍', reacted: true, actor: bob, room: roomState(), at })
      .then([on])
    spec
      .given([posted, on])
      .when({ type: 'react', messageId: 'm1', emoji: '👍', reacted: true, actor: bob, room: roomState(), at })
      .then([])
    spec
      .given([posted])
      .when({ type: 'react', messageId: 'm1', emoji: '👍', reacted: false, actor: bob, room: roomState(), at })
      .then([])
    spec
      .given([posted])
      .when({ type: 'react', messageId: 'm1', emoji: '<script>', reacted: true, actor: bob, room: roomState(), at })
      .thenRefused('EMOJI_INVALID')
  })

  it('range-deleted messages cannot be edited', () => {
    const rs = roomState([
      created(),
      {
        type: 'message.range_deleted',
        data: { roomId, fromMessageId: 'm1', toMessageId: 'm1', messageIds: ['m1'], deletedBy: 'alice', at },
      },
    ])
    spec
      .given([posted])
      .when({ type: 'edit', messageId: 'm1', text: 'x', mentions: [], actor: alice, room: rs, at })
      .thenRefused('MESSAGE_NOT_FOUND')
  })

  it('parses mentions and emoji', () => {
    expect(parseMentions('hi @Bob and @carol.x, mail a@b.c, @bob again')).toEqual(['bob', 'carol.x'])
    expect(validEmoji('thumbsup')).toBe(true)
    expect(validEmoji('👍🏽')).toBe(true)
    expect(validEmoji('🇫🇷')).toBe(true)
    expect(validEmoji('a b')).toBe(false)
    expect(validEmoji('')).toBe(false)
  })
})

describe('read marks, spaces', () => {
  it('marks are idempotent', () => {
    deciderSpec(readMark)
      .given([{ type: 'room.read_marked', data: { roomId, userId: 'bob', messageId: 'm1', at } }])
      .when({ roomId, userId: 'bob', messageId: 'm1', at })
      .then([])
  })
  it('a personal space is changed by its owner only', () => {
    const created = {
      type: 'space.created' as const,
      data: { spaceId: 's', name: 'Mine', kind: 'personal' as const, ownerId: 'alice', at },
    }
    deciderSpec(space)
      .given([created])
      .when({ type: 'update', spaceId: 's', name: 'X', actorId: 'bob', actorIsAdmin: true, at })
      .thenRefused('FORBIDDEN')
    deciderSpec(space)
      .given([created])
      .when({ type: 'update', spaceId: 's', name: 'Ours', actorId: 'alice', actorIsAdmin: false, at })
      .then([{ type: 'space.updated', data: { spaceId: 's', name: 'Ours', at } }])
  })
})
