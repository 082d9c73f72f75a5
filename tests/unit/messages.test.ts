import { describe, expect, it } from 'vitest'
import { fold } from '../../domain/decider.ts'
import {
  DRAFT_TEXT_MAX,
  draft,
  draftToKeep,
  MESSAGE_TEXT_MAX,
  type MessageCommand,
  type MessageEvent,
  message,
  parseMentions,
  readMark,
  validEmoji,
} from '../../domain/messages.ts'
import { type RoomEvent, room } from '../../domain/rooms.ts'
import { refusal, spec } from './spec.ts'

const at = '2026-11-28T10:00:00.000Z'
const roomId = 'room-1'
type Actor = { userId: string; role: 'owner' | 'admin' | 'member' | 'guest' }
const alice: Actor = { userId: 'alice', role: 'member' } // author of m1
const bob: Actor = { userId: 'bob', role: 'member' } // a member
const carol: Actor = { userId: 'carol', role: 'member' } // not a member of the room
const adam: Actor = { userId: 'adam', role: 'admin' } // an admin, not a member
const olga: Actor = { userId: 'olga', role: 'owner' } // an owner, not a member

const roomCreated = (visibility: 'public' | 'private' = 'private', members = ['alice', 'bob']): RoomEvent => ({
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
const roomArchived: RoomEvent = { type: 'room.archived', data: { roomId, archivedBy: 'alice', at } }
const rooms = {
  private: fold(room, [roomCreated()]),
  public: fold(room, [roomCreated('public')]),
  archived: fold(room, [roomCreated(), roomArchived]),
  publicArchived: fold(room, [roomCreated('public'), roomArchived]),
  aliceLeft: fold(room, [
    roomCreated(),
    { type: 'room.member_removed', data: { roomId, memberId: 'alice', removedBy: 'alice', at } },
  ]),
  m1RangeDeleted: fold(room, [
    roomCreated(),
    {
      type: 'message.range_deleted',
      data: { roomId, fromMessageId: 'm1', toMessageId: 'm1', messageIds: ['m1'], deletedBy: 'alice', at },
    },
  ]),
  none: room.initialState,
}

const posted = (over: Partial<Extract<MessageEvent, { type: 'message.created' }>['data']> = {}): MessageEvent => ({
  type: 'message.created',
  data: {
    messageId: 'm1',
    roomId,
    authorId: 'alice',
    authorType: 'user',
    text: 'hello',
    threadRootId: null,
    mentions: [],
    at,
    ...over,
  },
})
const deleted: MessageEvent = { type: 'message.deleted', data: { messageId: 'm1', roomId, deletedBy: 'alice', at } }

const post = (over: Partial<Extract<MessageCommand, { type: 'post' }>> = {}): MessageCommand => ({
  type: 'post',
  messageId: 'm1',
  roomId,
  text: 'hello',
  threadRoot: null,
  mentions: [],
  actor: { ...alice, type: 'user' },
  room: rooms.private,
  at,
  ...over,
})
const edit = (actor: Actor, text: string, r = rooms.private): MessageCommand => ({
  type: 'edit',
  messageId: 'm1',
  text,
  mentions: [{ userId: 'bob', username: 'bob' }],
  actor,
  room: r,
  at,
})
const del = (actor: Actor, r = rooms.private): MessageCommand => ({ type: 'delete', messageId: 'm1', actor, room: r, at })
const react = (actor: Actor, emoji: string, reacted = true, r = rooms.private): MessageCommand => ({
  type: 'react',
  messageId: 'm1',
  emoji,
  reacted,
  actor,
  room: r,
  at,
})
const reaction = (userId: string, emoji: string, reacted = true): MessageEvent => ({
  type: 'message.reaction_changed',
  data: { messageId: 'm1', roomId, userId, emoji, reacted, at },
})

describe('messages: posting', () => {
  const rules = spec(message)

  it('a member posts; the event carries the author, their type and the mentions as given', () =>
    rules
      .given([])
      .when(
        post({
          messageId: 'm9',
          text: ' hi @bob ',
          mentions: [{ userId: 'bob', username: 'bob' }],
          actor: { ...bob, type: 'agent' },
        }),
      )
      .then([
        posted({
          messageId: 'm9',
          authorId: 'bob',
          authorType: 'agent',
          text: ' hi @bob ',
          mentions: [{ userId: 'bob', username: 'bob' }],
        }),
      ]))

  it('a message id is posted once', () => rules.given([posted()]).when(post()).thenRefused('MESSAGE_EXISTS', 'conflict'))

  it('a message has text, at most 20,000 characters', () => {
    const longest = 'x'.repeat(MESSAGE_TEXT_MAX)
    rules
      .given([])
      .when(post({ text: longest }))
      .then([posted({ text: longest })])
    rules
      .given([])
      .when(post({ text: `${longest}x` }))
      .thenRefused('MESSAGE_TOO_LONG')
    rules
      .given([])
      .when(post({ text: '' }))
      .thenRefused('MESSAGE_EMPTY')
    rules
      .given([])
      .when(post({ text: ' \n\t ' }))
      .thenRefused('MESSAGE_EMPTY')
  })

  it('readers who are not members do not post, admins neither', () => {
    rules
      .given([])
      .when(post({ actor: { ...carol, type: 'user' }, room: rooms.public }))
      .thenRefused('NOT_A_MEMBER', 'forbidden')
    rules
      .given([])
      .when(post({ actor: { ...adam, type: 'user' } }))
      .thenRefused('NOT_A_MEMBER', 'forbidden')
  })

  it('a private room, or one that does not exist, is not found', () => {
    rules
      .given([])
      .when(post({ actor: { ...carol, type: 'user' } }))
      .thenRefused('ROOM_NOT_FOUND', 'not_found')
    rules
      .given([])
      .when(post({ room: rooms.none }))
      .thenRefused('ROOM_NOT_FOUND', 'not_found')
  })

  it('an archived room takes no messages', () =>
    rules
      .given([])
      .when(post({ room: rooms.archived }))
      .thenRefused('ROOM_ARCHIVED'))
})

describe('messages: threads', () => {
  const rules = spec(message)
  const replyTo = (root: MessageEvent[], rootId = 'm1') =>
    post({ messageId: 'm2', threadRoot: { messageId: rootId, state: fold(message, root) } })

  it('a reply to a message starts its thread', () =>
    rules
      .given([])
      .when(replyTo([posted()]))
      .then([posted({ messageId: 'm2', threadRootId: 'm1' })]))

  it('a reply to a reply joins the root’s thread', () =>
    rules
      .given([])
      .when(replyTo([posted({ messageId: 'm2', threadRootId: 'm1' })], 'm2'))
      .then([posted({ messageId: 'm2', threadRootId: 'm1' })]))

  it('a reply goes to a live message of the same room', () => {
    rules.given([]).when(replyTo([])).thenRefused('THREAD_ROOT_INVALID')
    rules
      .given([])
      .when(replyTo([posted(), deleted]))
      .thenRefused('THREAD_ROOT_INVALID')
    rules
      .given([])
      .when(replyTo([posted({ roomId: 'room-2' })]))
      .thenRefused('THREAD_ROOT_INVALID')
  })
})

describe('messages: editing', () => {
  const rules = spec(message)

  it('its author edits a message; the event keeps the previous text and the new mentions', () =>
    rules
      .given([posted()])
      .when(edit(alice, 'hello @bob'))
      .then([
        {
          type: 'message.updated',
          data: {
            messageId: 'm1',
            roomId,
            text: 'hello @bob',
            previousText: 'hello',
            mentions: [{ userId: 'bob', username: 'bob' }],
            at,
          },
        },
      ]))

  it('the same text again changes nothing, also after an edit', () => {
    rules.given([posted()]).when(edit(alice, 'hello')).then([])
    rules
      .given([
        posted(),
        {
          type: 'message.updated',
          data: { messageId: 'm1', roomId, text: 'hi', previousText: 'hello', mentions: [], at },
        },
      ])
      .when(edit(alice, 'hi'))
      .then([])
  })

  it('nobody else edits it, not even an admin', () => {
    rules.given([posted()]).when(edit(bob, 'x')).thenRefused('FORBIDDEN', 'forbidden')
    rules.given([posted()]).when(edit(olga, 'x')).thenRefused('FORBIDDEN', 'forbidden')
  })

  it('an edit is a message like any: not empty, not too long', () => {
    rules.given([posted()]).when(edit(alice, '  ')).thenRefused('MESSAGE_EMPTY')
    rules
      .given([posted()])
      .when(edit(alice, 'x'.repeat(MESSAGE_TEXT_MAX + 1)))
      .thenRefused('MESSAGE_TOO_LONG')
  })

  it('an author who left the room, or whose room is archived, edits nothing', () => {
    rules
      .given([posted()])
      .when(edit(alice, 'x', rooms.archived))
      .thenRefused('ROOM_ARCHIVED')
    rules
      .given([posted()])
      .when(
        edit(
          alice,
          'x',
          fold(room, [
            roomCreated('public'),
            { type: 'room.member_removed', data: { roomId, memberId: 'alice', removedBy: 'alice', at } },
          ]),
        ),
      )
      .thenRefused('NOT_A_MEMBER', 'forbidden')
    rules
      .given([posted()])
      .when(edit(alice, 'x', rooms.aliceLeft))
      .thenRefused('ROOM_NOT_FOUND', 'not_found')
  })

  it('a message that does not exist, was deleted or range-deleted is not found', () => {
    rules.given([]).when(edit(alice, 'x')).thenRefused('MESSAGE_NOT_FOUND', 'not_found')
    rules.given([posted(), deleted]).when(edit(alice, 'x')).thenRefused('MESSAGE_NOT_FOUND', 'not_found')
    rules
      .given([posted()])
      .when(edit(alice, 'x', rooms.m1RangeDeleted))
      .thenRefused('MESSAGE_NOT_FOUND', 'not_found')
  })
})

describe('messages: deleting', () => {
  const rules = spec(message)

  it('its author deletes a message', () => rules.given([posted()]).when(del(alice)).then([deleted]))

  it('admins and owners delete anyone’s message, also in rooms they are not in', () => {
    rules
      .given([posted()])
      .when(del(adam))
      .then([{ type: 'message.deleted', data: { messageId: 'm1', roomId, deletedBy: 'adam', at } }])
    rules
      .given([posted()])
      .when(del(olga))
      .then([{ type: 'message.deleted', data: { messageId: 'm1', roomId, deletedBy: 'olga', at } }])
  })

  it('other members do not delete it', () => rules.given([posted()]).when(del(bob)).thenRefused('FORBIDDEN', 'forbidden'))

  it('deleting a deleted message changes nothing', () => rules.given([posted(), deleted]).when(del(alice)).then([]))

  it('a message that does not exist or was range-deleted is not found', () => {
    rules.given([]).when(del(alice)).thenRefused('MESSAGE_NOT_FOUND', 'not_found')
    rules.given([posted()]).when(del(alice, rooms.m1RangeDeleted)).thenRefused('MESSAGE_NOT_FOUND', 'not_found')
  })

  it('a message of a private room is not found by those outside it', () =>
    rules.given([posted()]).when(del(carol)).thenRefused('ROOM_NOT_FOUND', 'not_found'))
})

describe('messages: reactions', () => {
  const rules = spec(message)

  it('a member reacts with an emoji, and takes the reaction back', () => {
    rules
      .given([posted()])
      .when(react(bob, 'tada'))
      .then([reaction('bob', 'tada')])
    rules
      .given([posted(), reaction('bob', 'tada')])
      .when(react(bob, 'tada', false))
      .then([reaction('bob', 'tada', false)])
  })

  it('a reaction is a set per user and emoji', () => {
    rules
      .given([posted(), reaction('bob', 'tada')])
      .when(react(bob, 'tada'))
      .then([])
    rules
      .given([posted(), reaction('bob', 'tada')])
      .when(react(alice, 'tada'))
      .then([reaction('alice', 'tada')])
    rules
      .given([posted(), reaction('bob', 'tada')])
      .when(react(bob, 'heart'))
      .then([reaction('bob', 'heart')])
    rules
      .given([posted(), reaction('bob', 'tada'), reaction('bob', 'tada', false)])
      .when(react(bob, 'tada', false))
      .then([])
    rules
      .given([posted(), reaction('bob', 'tada'), reaction('bob', 'tada', false)])
      .when(react(bob, 'tada'))
      .then([reaction('bob', 'tada')])
  })

  it('only members react, in rooms that are not archived', () => {
    rules
      .given([posted()])
      .when(react(carol, 'tada', true, rooms.public))
      .thenRefused('NOT_A_MEMBER', 'forbidden')
    rules
      .given([posted()])
      .when(react(bob, 'tada', true, rooms.archived))
      .thenRefused('ROOM_ARCHIVED')
  })

  it('a reaction is an emoji of the catalog', () =>
    rules.given([posted()]).when(react(bob, 'no such emoji')).thenRefused('EMOJI_INVALID'))

  it('deleted and range-deleted messages take no reactions', () => {
    rules.given([posted(), deleted]).when(react(bob, 'tada')).thenRefused('MESSAGE_NOT_FOUND', 'not_found')
    rules
      .given([posted()])
      .when(react(bob, 'tada', true, rooms.m1RangeDeleted))
      .thenRefused('MESSAGE_NOT_FOUND', 'not_found')
  })
})

describe('messages: the state evolve builds', () => {
  it('a message that was never posted does not exist, whatever else happened to its id', () => {
    expect(message.initialState).toEqual({ exists: false })
    const stray: MessageEvent[] = [
      { type: 'message.updated', data: { messageId: 'm1', roomId, text: 'x', previousText: '', mentions: [], at } },
      deleted,
      reaction('bob', 'tada'),
    ]
    for (const e of stray) expect(fold(message, [e])).toEqual({ exists: false })
  })

  it('a posted, edited, reacted-to and deleted message', () => {
    expect(
      fold(message, [
        posted({ threadRootId: 'm0' }),
        { type: 'message.updated', data: { messageId: 'm1', roomId, text: 'edited', previousText: 'hello', mentions: [], at } },
        reaction('bob', 'tada'),
        reaction('carol', 'tada'),
        reaction('carol', 'tada', false),
      ]),
    ).toEqual({
      exists: true,
      roomId,
      authorId: 'alice',
      text: 'edited',
      threadRootId: 'm0',
      deleted: false,
      reactions: new Set(['tada bob']),
    })
    expect(fold(message, [posted(), deleted])).toMatchObject({ exists: true, deleted: true })
  })
})

describe('mentions', () => {
  it('are @names, lowercased, each once, in the order they appear', () =>
    expect(parseMentions('@Carol hi @bob, @BOB and @carol')).toEqual(['carol', 'bob']))

  it('stand alone: not inside an email address, a word or after another @ or a dot', () => {
    expect(parseMentions('mail ada@acme.test')).toEqual([])
    expect(parseMentions('x.@bob @@carol')).toEqual([])
    expect(parseMentions('(@bob) "@carol" ,@dave')).toEqual(['bob', 'carol', 'dave'])
  })

  it('are 1 to 40 letters, digits, dots, dashes or underscores, starting and ending with a letter or digit', () => {
    expect(parseMentions('@a @b_c-d.e')).toEqual(['a', 'b_c-d.e'])
    expect(parseMentions('@bob. @carol- @dave_')).toEqual(['bob', 'carol', 'dave'])
    expect(parseMentions('@_bob @-carol @.dave @ x')).toEqual([])
    const forty = 'a'.repeat(40)
    expect(parseMentions(`@${forty}`)).toEqual([forty])
    expect(parseMentions(`@${forty}b`)).toEqual([forty])
  })
})

describe('emoji', () => {
  it('a catalog shortcode is 1 to 64 lowercase letters, digits, _, + or -', () => {
    for (const ok of ['thumbsup', '+1', '-1', 'heavy_check_mark', 'a'.repeat(64), '100']) expect(validEmoji(ok), ok).toBe(true)
    for (const bad of ['', 'a'.repeat(65), 'Thumbsup', 'thumbs up', ':tada:', 'tada!']) expect(validEmoji(bad), bad).toBe(false)
  })

  it('or one emoji sequence: pictographs, flags, skin tones and joiners, up to 32 code units', () => {
    for (const ok of ['👍', '👍🏽', '🇫🇷', '❤️', '👨‍👩‍👧', '👍'.repeat(16)]) expect(validEmoji(ok), ok).toBe(true)
    for (const bad of ['👍'.repeat(17), 'a👍', '👍a', '👍 ']) expect(validEmoji(bad), bad).toBe(false)
  })
})

describe('read marks', () => {
  const rules = spec(readMark)
  const mark = (messageId: string) => ({ roomId, userId: 'bob', messageId, at })

  it('a read mark moves to the message read, and stays when it is the same', () => {
    rules
      .given([])
      .when(mark('m1'))
      .then([{ type: 'room.read_marked', data: mark('m1') }])
    rules
      .given([{ type: 'room.read_marked', data: mark('m1') }])
      .when(mark('m2'))
      .then([{ type: 'room.read_marked', data: mark('m2') }])
    rules
      .given([
        { type: 'room.read_marked', data: mark('m1') },
        { type: 'room.read_marked', data: mark('m2') },
      ])
      .when(mark('m2'))
      .then([])
    expect(readMark.initialState).toEqual({ messageId: null })
  })
})

describe('drafts', () => {
  it('saving a draft keeps its text, or nothing when it is empty', () => {
    expect(draftToKeep('hel')).toBe('hel')
    expect(draftToKeep(' ')).toBe(' ')
    expect(draftToKeep('')).toBeNull()
  })

  it('a draft has at most 20,000 characters', () => {
    const longest = 'x'.repeat(DRAFT_TEXT_MAX)
    expect(draftToKeep(longest)).toBe(longest)
    const e = refusal(() => draftToKeep(`${longest}x`))
    expect({ code: e.code, kind: e.kind }).toEqual({ code: 'DRAFT_TOO_LONG', kind: 'rule' })
    expect(e.message).not.toBe('')
  })

  it('old draft streams still fold to their last text, and take no new events', () => {
    const saved = (text: string) => ({ type: 'draft.saved' as const, data: { roomId, userId: 'bob', text, at } })
    expect(draft.initialState).toEqual({ text: '' })
    expect(fold(draft, [saved('hel'), saved('hello')])).toEqual({ text: 'hello' })
    spec(draft)
      .given([saved('hel')])
      .when({ roomId, userId: 'bob', text: 'hello', at })
      .thenRefused('DRAFT_EVENTS_RETIRED')
  })
})
