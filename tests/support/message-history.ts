import { v7 as uuid } from 'uuid'
import type { RecordedEvent } from '../../adapters/event-store.ts'

/** The n-th second of 2025: the time of the n-th event of a history. */
export const at = (n: number) => new Date(Date.UTC(2025, 0, 1) + n * 1000).toISOString()

export type HistoryStep = { kind: number; a: number; b: number; c: number; flag: boolean; tenant: number }

/**
 * Turns random numbers into a message history that keeps referring to earlier messages (and some unknown ones), for
 * the properties of the messages read model (fast-check draws the steps): creates (a duplicate now and then, text
 * that COPY must escape), edits, deletes, range deletes, reactions, read marks, drafts (not projected: they only move
 * the checkpoint) and, from kind 10, erasures.
 */
export function messageHistory(
  { tenants, rooms, users }: { tenants: readonly string[]; rooms: readonly string[]; users: readonly string[] },
  steps: readonly HistoryStep[],
): RecordedEvent[] {
  const ids: string[][] = tenants.map(() => [])
  const unknown = uuid()
  return steps.map((s, n) => {
    const mine = ids[s.tenant]!
    const some = (k: number) => (mine.length === 0 || k % 7 === 6 ? unknown : mine[k % mine.length]!)
    const room = rooms[s.a % rooms.length]!
    const user = users[s.b % users.length]!
    let type: string
    let data: Record<string, unknown>
    switch (s.kind) {
      case 0:
      case 1:
      case 2: {
        const id = s.c % 6 === 5 && mine.length ? some(s.c) : uuid()
        if (id !== unknown) mine.push(id)
        type = 'message.created'
        data = {
          messageId: id,
          roomId: room,
          authorId: user,
          authorType: 'user',
          // Text COPY must escape: tabs, newlines, backslashes.
          text: s.c % 5 === 0 ? `m${n}\twith\\tabs\nand lines` : `m${n}`,
          threadRootId: s.flag ? some(s.b) : null,
          mentions: s.c % 3 ? [] : [{ userId: user, username: 'u' }],
          at: at(n),
        }
        break
      }
      case 3:
        type = 'message.updated'
        data = { messageId: some(s.c), roomId: room, text: `e${n}`, previousText: `p${n}\n`, mentions: [], at: at(n) }
        break
      case 4:
        type = 'message.deleted'
        data = { messageId: some(s.c), roomId: room, deletedBy: user, at: at(n) }
        break
      case 5:
        type = 'message.range_deleted'
        data = {
          roomId: room,
          fromMessageId: some(s.c),
          toMessageId: some(s.c + 1),
          messageIds: [some(s.c), some(s.c + 1), some(s.c + 2)],
          deletedBy: user,
          at: at(n),
        }
        break
      case 6:
      case 7:
        type = 'message.reaction_changed'
        data = {
          messageId: some(s.c),
          roomId: room,
          userId: user,
          emoji: s.a % 2 ? 'tada' : '👍',
          reacted: s.flag || s.kind === 6,
          at: at(n),
        }
        break
      case 8:
        type = 'room.read_marked'
        data = { roomId: room, userId: user, messageId: some(s.c), at: at(n) }
        break
      case 9:
        // Not the projector's: only moves the checkpoint.
        type = 'draft.saved'
        data = { roomId: room, userId: user, text: s.flag ? '' : `d${n}`, at: at(n) }
        break
      default:
        type = 'user.erased'
        data = { userId: user, at: at(n) }
    }
    return {
      id: uuid(),
      type,
      data,
      streamName: `x-${n}`,
      revision: 0n,
      position: { transactionId: BigInt(1000 + n), sequence: BigInt(n + 1) },
      metadata: {
        tenantId: tenants[s.tenant]!,
        actor: { type: 'user', id: user },
        correlationId: uuid(),
        causationId: null,
        occurredAt: at(n),
        schemaVersion: 1,
      },
    }
  })
}
