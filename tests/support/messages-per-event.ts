import { sql } from 'kysely'
import type { RecordedEvent } from '../../adapters/event-store.ts'
import type { ErasureEvent } from '../../domain/erasure.ts'
import type { MessageEvent, ReadEvent } from '../../domain/messages.ts'
import type { RoomEvent } from '../../domain/rooms.ts'
import type { ProjectionTransaction, Projector } from '../../projections/engine.ts'
import { eraseAuthor } from '../../projections/messages-batch.ts'

/*
 * The messages read model one event at a time: the test oracle of the batched projector the product runs
 * (projections/messages.ts, applying projections/messages-batch.ts). tests/integration/messages-batch.test.ts and
 * message-tombstones.test.ts (and bench/rebuild.ts) build the same tables with both and compare them. Change both.
 */

type Reactions = Record<string, string[]>

/**
 * A tombstone keeps the message's place (sequence, thread counts) and loses everything it said: deleted text
 * must not stay readable or searchable, nor survive in its edit history. Edits and reactions that come after the
 * delete (they raced a delete-range) leave it alone, so it is the same whichever events follow and however they
 * are batched; migrations/tenant/005_tombstones.ts has the database refuse a tombstone with content.
 */
async function tombstone(trx: ProjectionTransaction, tenantId: string, messageId: string, at: string) {
  const row = await trx
    .updateTable('messages')
    .set({ deleted_at: at, text: '', mentions: sql`'[]'::jsonb`, reactions: sql`'{}'::jsonb`, edited_at: null })
    .where('tenant_id', '=', tenantId)
    .where('id', '=', messageId)
    .where('deleted_at', 'is', null)
    .returning(['thread_root_id'])
    .executeTakeFirst()
  if (!row) return
  await trx.deleteFrom('message_edits').where('tenant_id', '=', tenantId).where('message_id', '=', messageId).execute()
  if (row.thread_root_id) {
    await trx
      .updateTable('messages')
      .set({ reply_count: sql`greatest(reply_count - 1, 0)` })
      .where('tenant_id', '=', tenantId)
      .where('id', '=', row.thread_root_id)
      .execute()
  }
}

/** The messages read model's semantics, one event at a time: the reference the batched projector must equal. */
export const messagesPerEvent: Pick<Projector, 'apply'> = {
  async apply(trx, events) {
    for (const recorded of events) {
      const e = recorded as RecordedEvent &
        (MessageEvent | ReadEvent | ErasureEvent | Extract<RoomEvent, { type: 'message.range_deleted' }>)
      const tenantId = recorded.metadata.tenantId!
      switch (e.type) {
        case 'message.created': {
          const d = e.data
          await sql`
            insert into messages (tenant_id, id, room_id, seq, author_id, author_type, text, thread_root_id, task_id, mentions, created_at, position)
            select ${tenantId}, ${d.messageId}, ${d.roomId},
                   coalesce((select max(seq) from messages where tenant_id = ${tenantId} and room_id = ${d.roomId}), 0) + 1,
                   ${d.authorId}, ${d.authorType}, ${d.text}, ${d.threadRootId}, ${d.taskId ?? null}, ${JSON.stringify(d.mentions)}::jsonb, ${d.at},
                   ${recorded.position.sequence.toString()}
            on conflict do nothing`.execute(trx)
          if (d.threadRootId) {
            await trx
              .updateTable('messages')
              .set({ reply_count: sql`reply_count + 1` })
              .where('tenant_id', '=', tenantId)
              .where('id', '=', d.threadRootId)
              .execute()
          }
          break
        }
        case 'message.updated': {
          const d = e.data
          // The message's row first: an edit of a tombstone (or of a message never projected) leaves no history.
          const edited = await trx
            .updateTable('messages')
            .set({ text: d.text, mentions: JSON.stringify(d.mentions), edited_at: d.at })
            .where('tenant_id', '=', tenantId)
            .where('id', '=', d.messageId)
            .where('deleted_at', 'is', null)
            .executeTakeFirst()
          if (edited.numUpdatedRows === 0n) break
          await sql`
            insert into message_edits (tenant_id, message_id, version, text, replaced_at)
            select ${tenantId}, ${d.messageId},
                   coalesce((select max(version) from message_edits where tenant_id = ${tenantId} and message_id = ${d.messageId}), 0) + 1,
                   ${d.previousText}, ${d.at}`.execute(trx)
          break
        }
        case 'message.deleted':
          await tombstone(trx, tenantId, e.data.messageId, e.data.at)
          break
        case 'message.range_deleted':
          for (const id of e.data.messageIds) await tombstone(trx, tenantId, id, e.data.at)
          break
        case 'message.reaction_changed': {
          const d = e.data
          const row = await trx
            .selectFrom('messages')
            .select('reactions')
            .where('tenant_id', '=', tenantId)
            .where('id', '=', d.messageId)
            .where('deleted_at', 'is', null)
            .executeTakeFirst()
          if (!row) break
          const reactions: Reactions = { ...(row.reactions as Reactions) }
          const users = new Set(reactions[d.emoji] ?? [])
          if (d.reacted) users.add(d.userId)
          else users.delete(d.userId)
          if (users.size) reactions[d.emoji] = [...users]
          else delete reactions[d.emoji]
          await trx
            .updateTable('messages')
            .set({ reactions: JSON.stringify(reactions) })
            .where('tenant_id', '=', tenantId)
            .where('id', '=', d.messageId)
            .execute()
          break
        }
        case 'room.read_marked': {
          const d = e.data
          await sql`
            insert into room_reads (tenant_id, room_id, user_id, message_id, seq)
            select ${tenantId}, ${d.roomId}, ${d.userId}, ${d.messageId}, m.seq
              from messages m where m.tenant_id = ${tenantId} and m.id = ${d.messageId}
            on conflict (tenant_id, room_id, user_id) do update set message_id = excluded.message_id, seq = excluded.seq`.execute(
            trx,
          )
          break
        }
        case 'user.erased':
          await eraseAuthor(trx, tenantId, e.data.userId)
          break
      }
    }
  },
}
