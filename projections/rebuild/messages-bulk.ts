import type { RecordedEvent } from '../../adapters/event-store.ts'
import type { ErasureEvent } from '../../domain/erasure.ts'
import { eraseInFold, foldMessages, type MessageRow, type MessagesFold } from '../messages-batch.ts'
import type { BulkBuild, BulkOp } from './bulk.ts'

/*
 * The messages read model built in bulk: the fold of its live batches (messages-batch.ts) over rows held in memory
 * from position 0, so no row is ever looked up in the database; each hand-over is what the live batches would have
 * written for the same events (new messages, changed ones, edits dropped and added, read marks), as row sets.
 */

const MESSAGE_COLUMNS = [
  'tenant_id',
  'id',
  'room_id',
  'seq',
  'author_id',
  'author_type',
  'text',
  'thread_root_id',
  'task_id',
  'reply_count',
  'mentions',
  'reactions',
  'created_at',
  'edited_at',
  'deleted_at',
  'position',
] as const
const CHANGED_COLUMNS = ['tenant_id', 'id', 'text', 'reply_count', 'mentions', 'reactions', 'edited_at', 'deleted_at'] as const

type Tenant = MessagesFold & {
  readonly changed: Set<MessageRow>
  /** Messages whose stored edits go: tombstoned, or their author erased, since the last hand-over. */
  readonly dropEdits: Set<string>
}

export function messagesBulk(): BulkBuild {
  const tenants = new Map<string, Tenant>()
  let size = 0
  const tenantOf = (id: string): Tenant => {
    let t = tenants.get(id)
    if (!t) {
      t = {
        rows: new Map(),
        maxSeq: new Map(),
        editVersion: new Map(),
        edits: [],
        reads: new Map(),
        purged: new Set(),
        changed: new Set(),
        dropEdits: new Set(),
      }
      tenants.set(id, t)
    }
    return t
  }
  return {
    get size() {
      return size
    },
    apply(events) {
      // One tenant's run of events at a time, in order (tenants are independent); an erasure ends a run.
      let run: RecordedEvent[] = []
      let runTenant: Tenant | null = null
      const fold = () => {
        if (!runTenant || run.length === 0) return
        const before = runTenant.rows.size
        foldMessages(runTenant, run)
        size += runTenant.rows.size - before
        run = []
      }
      for (const e of events) {
        const tenantId = e.metadata.tenantId
        if (!tenantId) throw new Error(`messages: event ${e.id} (${e.type}) has no tenant`)
        const t = tenantOf(tenantId)
        if (t !== runTenant) {
          fold()
          runTenant = t
        }
        if (e.type === 'user.erased') {
          fold()
          for (const id of eraseInFold(t, (e.data as ErasureEvent['data']).userId)) t.dropEdits.add(id)
        } else run.push(e)
      }
      fold()
    },
    take() {
      const inserted: unknown[][] = []
      const changed: unknown[][] = []
      const dropped: unknown[][] = []
      const edits: unknown[][] = []
      const reads: unknown[][] = []
      for (const [tenantId, t] of tenants) {
        for (const r of t.changed) {
          if (r.fresh) {
            inserted.push([
              tenantId,
              r.id,
              r.room_id,
              r.seq,
              r.author_id,
              r.author_type,
              r.text,
              r.thread_root_id,
              r.task_id,
              r.reply_count,
              r.mentions,
              r.reactions,
              r.created_at,
              r.edited_at,
              r.deleted_at,
              r.position,
            ])
          } else if (r.dirty) {
            changed.push([tenantId, r.id, r.text, r.reply_count, r.mentions, r.reactions, r.edited_at, r.deleted_at])
          }
          r.fresh = false
          r.dirty = false
        }
        for (const id of t.purged) t.dropEdits.add(id)
        for (const id of t.dropEdits) dropped.push([tenantId, id])
        for (const e of t.edits)
          if (!t.purged.has(e.message_id)) edits.push([tenantId, e.message_id, e.version, e.text, e.replaced_at])
        for (const r of t.reads.values()) reads.push([tenantId, r.room_id, r.user_id, r.message_id, r.seq])
        t.changed.clear()
        t.edits = []
        t.reads.clear()
        t.purged.clear()
        t.dropEdits.clear()
      }
      return [
        { kind: 'insert', table: 'messages', columns: MESSAGE_COLUMNS, rows: inserted },
        { kind: 'update', table: 'messages', key: ['tenant_id', 'id'], columns: CHANGED_COLUMNS, rows: changed },
        { kind: 'delete', table: 'message_edits', columns: ['tenant_id', 'message_id'], rows: dropped },
        {
          kind: 'insert',
          table: 'message_edits',
          columns: ['tenant_id', 'message_id', 'version', 'text', 'replaced_at'],
          rows: edits,
        },
        {
          kind: 'upsert',
          table: 'room_reads',
          key: ['tenant_id', 'room_id', 'user_id'],
          columns: ['tenant_id', 'room_id', 'user_id', 'message_id', 'seq'],
          rows: reads,
        },
      ] satisfies BulkOp[]
    },
  }
}
