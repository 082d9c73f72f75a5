import type { ErasureEvent } from '../domain/erasure.ts'
import type { MessageEvent, ReadEvent } from '../domain/messages.ts'
import type { RoomEvent } from '../domain/rooms.ts'
import type { Projector } from './engine.ts'
import { applyBatched } from './messages-batch.ts'
import type { BulkBuildable } from './rebuild/bulk.ts'
import { messagesBulk } from './rebuild/messages-bulk.ts'

/**
 * Messages with a per-room sequence (the timeline order), edit history and read marks. Drafts are not projected:
 * the draft command keeps them in `tenant.drafts` itself (commands/drafts.ts), and the `draft.saved` events of
 * before left their rows there (tenant migration 010).
 */
/** What the messages read model follows: messages, read marks, range deletions and erasures. */
export type MessagesEvent = MessageEvent | ReadEvent | Extract<RoomEvent, { type: 'message.range_deleted' }> | ErasureEvent

export const messagesProjector: Projector<MessagesEvent> & BulkBuildable = {
  name: 'messages',
  version: 1,
  schema: 'tenant',
  tables: ['messages', 'message_edits', 'room_reads'],
  eventTypes: [
    'message.created',
    'message.updated',
    'message.deleted',
    'message.range_deleted',
    'message.reaction_changed',
    'room.read_marked',
    'user.erased',
  ],
  // Batched: a few statements per batch (messages-batch.ts), equal to `messagesPerEvent` in
  // tests/support/messages-per-event.ts, the per-event reference. Change both: tests/integration/messages-batch.test.ts
  // compares them on random histories.
  apply: (trx, events) => applyBatched(trx, events),
  // A rebuild from nothing folds the same way over rows held in memory and writes them with COPY.
  bulk: messagesBulk,
}
