import { type Decider, DomainError, type DomainEvent } from './decider.ts'
import { canRead, type RoomActor, type RoomState } from './rooms.ts'

export const MESSAGE_TEXT_MAX = 20_000
export const DRAFT_TEXT_MAX = 20_000

export type Mention = { readonly userId: string; readonly username: string }
export type AuthorType = 'user' | 'agent'

export type MessageEvent =
  | DomainEvent<
      'message.created',
      {
        messageId: string
        roomId: string
        authorId: string
        authorType: AuthorType
        text: string
        threadRootId: string | null
        mentions: Mention[]
        /** Set on a message of a task's conversation (posted in the task's room); absent on the room's own. */
        taskId?: string
        at: string
      }
    >
  | DomainEvent<
      'message.updated',
      { messageId: string; roomId: string; text: string; previousText: string; mentions: Mention[]; at: string }
    >
  | DomainEvent<'message.deleted', { messageId: string; roomId: string; deletedBy: string; at: string }>
  | DomainEvent<
      'message.reaction_changed',
      { messageId: string; roomId: string; userId: string; emoji: string; reacted: boolean; at: string }
    >

export type MessageState =
  | { readonly exists: false }
  | {
      readonly exists: true
      readonly roomId: string
      readonly authorId: string
      readonly text: string
      readonly threadRootId: string | null
      /** The task whose conversation it belongs to; absent for the room's own timeline. */
      readonly taskId?: string
      readonly deleted: boolean
      /** `${emoji} ${userId}` pairs: a reaction is a set per user and emoji. */
      readonly reactions: ReadonlySet<string>
    }

/** The room as the message decider needs it, folded by the caller from the room's stream. */
type RoomView = { readonly room: RoomState }

/**
 * The task a message is posted to, as the caller folded it from the task's stream: whether it exists for this
 * tenant and is not deleted, and the room it lives in (its conversation is part of that room).
 */
export type TaskView = { readonly taskId: string; readonly live: boolean; readonly roomId: string | null }

export type MessageCommand =
  | (RoomView & {
      type: 'post'
      messageId: string
      roomId: string
      text: string
      threadRoot: { messageId: string; state: MessageState } | null
      /** Posted to a task's conversation rather than the room's timeline. */
      task?: TaskView | null
      mentions: Mention[]
      actor: RoomActor & { type: AuthorType }
      at: string
    })
  | (RoomView & { type: 'edit'; messageId: string; text: string; mentions: Mention[]; actor: RoomActor; at: string })
  | (RoomView & { type: 'delete'; messageId: string; actor: RoomActor; at: string })
  | (RoomView & { type: 'react'; messageId: string; emoji: string; reacted: boolean; actor: RoomActor; at: string })

/** `@name` tokens in a text, lowercased, each once, in order. */
export function parseMentions(text: string): string[] {
  const out = new Set<string>()
  for (const m of text.matchAll(/(?<![\w@.])@([a-z0-9][a-z0-9_.-]{0,38}[a-z0-9]|[a-z0-9])/gi)) out.add(m[1]!.toLowerCase())
  return [...out]
}

const SHORTCODE = /^[a-z0-9_+-]{1,64}$/
const PICTOGRAPH = /^(?:\p{Extended_Pictographic}|\p{Regional_Indicator}|[\u200d\ufe0f\u{1f3fb}-\u{1f3ff}])+$/u

/** An emoji is a catalog shortcode (`thumbsup`) or one emoji sequence (👍🏽). */
export function validEmoji(emoji: string): boolean {
  return SHORTCODE.test(emoji) || (emoji.length <= 32 && PICTOGRAPH.test(emoji))
}

const text = (t: string) => {
  if (t.trim().length === 0) throw new DomainError('MESSAGE_EMPTY', 'a message needs text')
  if (t.length > MESSAGE_TEXT_MAX)
    throw new DomainError('MESSAGE_TOO_LONG', `a message has at most ${MESSAGE_TEXT_MAX} characters`)
  return t
}

const hidden = () => new DomainError('MESSAGE_NOT_FOUND', 'no such message', 'not_found')

const isAdmin = (a: RoomActor) => a.role === 'owner' || a.role === 'admin'

/** Readers see a room's messages; admins also reach them to moderate. */
function readable(room: RoomState, actor: RoomActor) {
  if (!room.exists || !(canRead(room, actor.userId, actor.role) || isAdmin(actor)))
    throw new DomainError('ROOM_NOT_FOUND', 'no such room', 'not_found')
  return room
}

function writable(room: RoomState, actor: RoomActor) {
  const r = readable(room, actor)
  if (!r.members.has(actor.userId)) throw new DomainError('NOT_A_MEMBER', 'join this room to write in it', 'forbidden')
  if (r.archived) throw new DomainError('ROOM_ARCHIVED', 'this room is archived')
  return r
}

/** A live message of this room that this actor can see. */
function live(s: MessageState, c: RoomView & { messageId: string; actor: RoomActor }) {
  if (!s.exists || s.deleted) throw hidden()
  readable(c.room, c.actor)
  if (c.room.exists && c.room.rangeDeleted.has(c.messageId)) throw hidden()
  return s
}

/** The task's id, when a message may be posted to its conversation in this room. */
function taskOfRoom(task: TaskView, roomId: string): string {
  if (!task.live) throw new DomainError('TASK_NOT_FOUND', 'no such task', 'not_found')
  if (task.roomId !== roomId) throw new DomainError('TASK_NOT_IN_ROOM', 'a task converses in the room it lives in')
  return task.taskId
}

export const message: Decider<MessageCommand, MessageEvent, MessageState> = {
  initialState: { exists: false },
  decide(c, s) {
    switch (c.type) {
      case 'post': {
        // A task that is not there (or not the caller's to see) is what is missing, whatever its room would say.
        const taskId = c.task ? taskOfRoom(c.task, c.roomId) : null
        writable(c.room, c.actor)
        if (s.exists) throw new DomainError('MESSAGE_EXISTS', 'this message exists', 'conflict')
        let threadRootId: string | null = null
        if (c.threadRoot) {
          const root = c.threadRoot.state
          if (!root.exists || root.deleted || root.roomId !== c.roomId) {
            throw new DomainError('THREAD_ROOT_INVALID', 'a reply goes to a live message of the same room')
          }
          // A thread stays in one conversation: the room's timeline, or one task's.
          if ((root.taskId ?? null) !== taskId) {
            throw new DomainError('THREAD_ROOT_INVALID', 'a reply goes to a message of the same conversation')
          }
          // Threads are one level deep: a reply to a reply joins its root's thread.
          threadRootId = root.threadRootId ?? c.threadRoot.messageId
        }
        return [
          {
            type: 'message.created',
            data: {
              messageId: c.messageId,
              roomId: c.roomId,
              authorId: c.actor.userId,
              authorType: c.actor.type,
              text: text(c.text),
              threadRootId,
              mentions: c.mentions,
              ...(taskId ? { taskId } : {}),
              at: c.at,
            },
          },
        ]
      }
      case 'edit': {
        const m = live(s, c)
        if (m.authorId !== c.actor.userId) throw new DomainError('FORBIDDEN', 'only its author edits a message', 'forbidden')
        writable(c.room, c.actor)
        if (text(c.text) === m.text) return []
        return [
          {
            type: 'message.updated',
            data: {
              messageId: c.messageId,
              roomId: m.roomId,
              text: c.text,
              previousText: m.text,
              mentions: c.mentions,
              at: c.at,
            },
          },
        ]
      }
      case 'delete': {
        if (s.exists && s.deleted) return []
        const m = live(s, c)
        if (m.authorId !== c.actor.userId && !isAdmin(c.actor))
          throw new DomainError('FORBIDDEN', 'only its author or an admin deletes a message', 'forbidden')
        return [
          { type: 'message.deleted', data: { messageId: c.messageId, roomId: m.roomId, deletedBy: c.actor.userId, at: c.at } },
        ]
      }
      case 'react': {
        const m = live(s, c)
        if (!validEmoji(c.emoji)) throw new DomainError('EMOJI_INVALID', 'not an emoji of the catalog')
        writable(c.room, c.actor)
        const has = m.reactions.has(`${c.emoji} ${c.actor.userId}`)
        if (has === c.reacted) return []
        return [
          {
            type: 'message.reaction_changed',
            data: {
              messageId: c.messageId,
              roomId: m.roomId,
              userId: c.actor.userId,
              emoji: c.emoji,
              reacted: c.reacted,
              at: c.at,
            },
          },
        ]
      }
    }
  },
  evolve(s, e) {
    if (e.type === 'message.created') {
      return {
        exists: true,
        roomId: e.data.roomId,
        authorId: e.data.authorId,
        text: e.data.text,
        threadRootId: e.data.threadRootId,
        taskId: e.data.taskId,
        deleted: false,
        reactions: new Set(),
      }
    }
    if (!s.exists) return s
    switch (e.type) {
      case 'message.updated':
        return { ...s, text: e.data.text }
      case 'message.deleted':
        return { ...s, deleted: true }
      case 'message.reaction_changed': {
        const reactions = new Set(s.reactions)
        const key = `${e.data.emoji} ${e.data.userId}`
        if (e.data.reacted) reactions.add(key)
        else reactions.delete(key)
        return { ...s, reactions }
      }
    }
  },
}

// --- Per user and room: the read mark, its own small stream; and the saved draft.

export type ReadEvent = DomainEvent<'room.read_marked', { roomId: string; userId: string; messageId: string; at: string }>

export const readMark: Decider<
  { roomId: string; userId: string; messageId: string; at: string },
  ReadEvent,
  { messageId: string | null }
> = {
  initialState: { messageId: null },
  decide: (c, s) => (s.messageId === c.messageId ? [] : [{ type: 'room.read_marked', data: c }]),
  evolve: (_, e) => ({ messageId: e.data.messageId }),
}

/**
 * What saving a draft keeps: its text, or nothing when the text is empty (the draft is sent or dropped). A draft
 * is private scratch text that changes on every keystroke, kept in a table rather than as events.
 */
export function draftToKeep(text: string): string | null {
  if (text.length > DRAFT_TEXT_MAX) throw new DomainError('DRAFT_TOO_LONG', `a draft has at most ${DRAFT_TEXT_MAX} characters`)
  return text === '' ? null : text
}

/** Legacy: drafts were once saved as events on `draft-<room>_<user>` streams; the store still holds them. */
export type DraftEvent = DomainEvent<'draft.saved', { roomId: string; userId: string; text: string; at: string }>

/**
 * Legacy: folds the old `draft-<room>_<user>` streams (replay, audit) and decides nothing: no new `draft.saved`
 * is ever written (see draftToKeep).
 */
export const draft: Decider<unknown, DraftEvent, { text: string }> = {
  initialState: { text: '' },
  decide() {
    throw new DomainError('DRAFT_EVENTS_RETIRED', 'drafts are no longer events: they are kept in a table')
  },
  evolve: (_, e) => ({ text: e.data.text }),
}
