import { sql } from 'kysely'
import type { RecordedEvent } from '../adapters/event-store.ts'
import type { ErasureEvent } from '../domain/erasure.ts'
import type { Mention, MessageEvent, ReadEvent } from '../domain/messages.ts'
import type { RoomEvent } from '../domain/rooms.ts'
import type { ProjectionTransaction } from './engine.ts'

/*
 * The messages projector, batched: a handful of statements per batch instead of several per event, which is
 * what makes a rebuild of millions of events fast. It loads the rows the batch touches, applies the events to
 * them in memory in order, with exactly the semantics of the per-event statements (`messagesPerEvent` in
 * tests/support/messages-per-event.ts, the reference: tests/integration/messages-batch.test.ts checks both give
 * the same tables on random histories), and writes the result back: new messages in one insert, changed ones in
 * one update, then edits and read marks.
 */

type Reactions = Record<string, string[]>

export type MessageRow = {
  id: string
  room_id: string
  seq: number
  author_id: string
  author_type: string
  text: string
  thread_root_id: string | null
  /** The task whose conversation it is in; null for the room's own timeline. */
  task_id: string | null
  reply_count: number
  mentions: Mention[]
  reactions: Reactions
  created_at: string
  edited_at: string | null
  deleted_at: string | null
  position: string
  /** Not in the table yet: inserted when written (else: in the table, and updated when dirty). */
  fresh: boolean
  dirty: boolean
}

export type MessageEdit = { message_id: string; version: number; text: string; replaced_at: string }
export type RoomRead = { room_id: string; user_id: string; message_id: string; seq: number }

/**
 * What a fold of one tenant's events reads and writes: the rows it holds (every row the events touch must be
 * there, or be known absent), each room's last sequence number and each message's last edit version (for those
 * the events create or edit), and what it produced for the other tables: edits, read marks, and the messages
 * whose stored edits go (tombstoned).
 */
export type MessagesFold = {
  readonly rows: Map<string, MessageRow>
  readonly maxSeq: Map<string, number>
  readonly editVersion: Map<string, number>
  edits: MessageEdit[]
  readonly reads: Map<string, RoomRead>
  readonly purged: Set<string>
  /** When given: every row the fold creates or changes goes in (what a bulk build writes next). */
  readonly changed?: Set<MessageRow>
}

type Any = MessageEvent | ReadEvent | Extract<RoomEvent, { type: 'message.range_deleted' }>

const uniq = (xs: Iterable<string>) => [...new Set(xs)]

export async function applyBatched(trx: ProjectionTransaction, recorded: readonly RecordedEvent[]): Promise<void> {
  // An erasure rewrites rows the batch may hold in memory: what comes before it is written first, then scrubbed.
  let from = 0
  for (const [i, e] of recorded.entries()) {
    if (e.type !== 'user.erased') continue
    await applyRun(trx, recorded.slice(from, i))
    await eraseAuthor(trx, e.metadata.tenantId!, (e.data as ErasureEvent['data']).userId)
    from = i + 1
  }
  await applyRun(trx, recorded.slice(from))
}

/**
 * An erased person's texts read '' from the event store now (their key is gone): the rows built from them while
 * they were readable become what a rebuild gives. Texts emptied (and with them the search vector), edit history
 * gone; the messages keep their place, author, mentions and reactions. Drafts are no read model: the erasure
 * deletes them itself (deleteUserDrafts, commands/drafts.ts). Erasures are rare: the scan
 * of the tenant's messages by author has no index of its own.
 */
export async function eraseAuthor(trx: ProjectionTransaction, tenantId: string, userId: string): Promise<void> {
  await sql`
    delete from message_edits e using messages m
     where e.tenant_id = ${tenantId} and m.tenant_id = ${tenantId} and m.id = e.message_id and m.author_id = ${userId}`.execute(
    trx,
  )
  await sql`update messages set text = '' where tenant_id = ${tenantId} and author_id = ${userId} and text <> ''`.execute(trx)
}

async function applyRun(trx: ProjectionTransaction, recorded: readonly RecordedEvent[]): Promise<void> {
  if (recorded.length === 0) return
  // Optimistically, a created message is new (not looked up first); the insert counts what it inserted, and
  // on a surprise (an id already projected) that attempt is undone and the batch applied again, exactly.
  if (!(await attempt(trx, recorded, false))) await attempt(trx, recorded, true)
}

/** The ids, rooms and messages a tenant's events touch: what must be loaded before they are folded. */
export function touchedBy(
  events: readonly RecordedEvent[],
  exact: boolean,
): { ids: Set<string>; rooms: Set<string>; edited: Set<string>; deleted: Set<string> } {
  const ids = new Set<string>()
  const rooms = new Set<string>()
  const edited = new Set<string>()
  const deleted = new Set<string>()
  for (const e of events as readonly (RecordedEvent & Any)[]) {
    switch (e.type) {
      case 'message.created':
        if (exact) ids.add(e.data.messageId)
        rooms.add(e.data.roomId)
        if (e.data.threadRootId) ids.add(e.data.threadRootId)
        break
      case 'message.updated':
        ids.add(e.data.messageId)
        edited.add(e.data.messageId)
        break
      case 'message.deleted':
        ids.add(e.data.messageId)
        deleted.add(e.data.messageId)
        break
      case 'message.range_deleted':
        for (const id of e.data.messageIds) {
          ids.add(id)
          deleted.add(id)
        }
        break
      case 'message.reaction_changed':
      case 'room.read_marked':
        ids.add(e.data.messageId)
        break
    }
  }
  return { ids, rooms, edited, deleted }
}

/**
 * Applies one tenant's events (no erasure among them), in order, to the rows a fold holds: the semantics of the
 * messages read model, shared by the live batches (applyBatched) and a rebuild's bulk build (rebuild/messages-bulk.ts).
 */
export function foldMessages(f: MessagesFold, recorded: readonly RecordedEvent[]): void {
  const { rows, maxSeq, editVersion, reads, purged, changed } = f
  const touch = (r: MessageRow) => {
    if (!r.fresh) r.dirty = true
    changed?.add(r)
  }
  /** Tombstoned (what a tombstone is: `tombstone` in messages.ts): its edits, stored or new, go. */
  const tombstone = (id: string, at: string) => {
    const r = rows.get(id)
    if (!r || r.deleted_at !== null) return
    r.deleted_at = at
    r.text = ''
    r.mentions = []
    r.reactions = {}
    r.edited_at = null
    touch(r)
    purged.add(id)
    const root = r.thread_root_id ? rows.get(r.thread_root_id) : undefined
    if (root) {
      root.reply_count = Math.max(root.reply_count - 1, 0)
      touch(root)
    }
  }

  for (const e of recorded as readonly (RecordedEvent & Any)[]) {
    switch (e.type) {
      case 'message.created': {
        const d = e.data
        // An id already projected is left alone (and takes no sequence number).
        if (!rows.has(d.messageId)) {
          const seq = (maxSeq.get(d.roomId) ?? 0) + 1
          maxSeq.set(d.roomId, seq)
          const row: MessageRow = {
            id: d.messageId,
            room_id: d.roomId,
            seq,
            author_id: d.authorId,
            author_type: d.authorType,
            text: d.text,
            thread_root_id: d.threadRootId,
            task_id: d.taskId ?? null,
            reply_count: 0,
            mentions: d.mentions,
            reactions: {},
            created_at: d.at,
            edited_at: null,
            deleted_at: null,
            position: e.position.sequence.toString(),
            fresh: true,
            dirty: false,
          }
          rows.set(d.messageId, row)
          changed?.add(row)
        }
        const root = d.threadRootId ? rows.get(d.threadRootId) : undefined
        if (root) {
          root.reply_count++
          touch(root)
        }
        break
      }
      case 'message.updated': {
        const d = e.data
        const r = rows.get(d.messageId)
        if (!r || r.deleted_at !== null) break
        const version = (editVersion.get(d.messageId) ?? 0) + 1
        editVersion.set(d.messageId, version)
        f.edits.push({ message_id: d.messageId, version, text: d.previousText, replaced_at: d.at })
        r.text = d.text
        r.mentions = d.mentions
        r.edited_at = d.at
        touch(r)
        break
      }
      case 'message.deleted':
        tombstone(e.data.messageId, e.data.at)
        break
      case 'message.range_deleted':
        for (const id of e.data.messageIds) tombstone(id, e.data.at)
        break
      case 'message.reaction_changed': {
        const d = e.data
        const r = rows.get(d.messageId)
        if (!r || r.deleted_at !== null) break
        const reactions: Reactions = { ...r.reactions }
        const users = new Set(reactions[d.emoji] ?? [])
        if (d.reacted) users.add(d.userId)
        else users.delete(d.userId)
        if (users.size) reactions[d.emoji] = [...users]
        else delete reactions[d.emoji]
        r.reactions = reactions
        touch(r)
        break
      }
      case 'room.read_marked': {
        const d = e.data
        const r = rows.get(d.messageId)
        if (r) reads.set(`${d.roomId} ${d.userId}`, { room_id: d.roomId, user_id: d.userId, message_id: d.messageId, seq: r.seq })
        break
      }
    }
  }
}

/**
 * eraseAuthor on the rows a fold holds (all of the tenant's: a bulk build holds every row): texts emptied, edit
 * history gone, the edit versions with it. Returns the messages whose stored edits must go.
 */
export function eraseInFold(f: MessagesFold, userId: string): string[] {
  const erased: string[] = []
  for (const r of f.rows.values()) {
    if (r.author_id !== userId) continue
    erased.push(r.id)
    f.editVersion.delete(r.id)
    if (r.text !== '') {
      r.text = ''
      if (!r.fresh) r.dirty = true
      f.changed?.add(r)
    }
  }
  const gone = new Set(erased)
  f.edits = f.edits.filter((e) => !gone.has(e.message_id))
  return erased
}

/** One application of a tenant's batch; false (and nothing written) when `exact` was needed. */
async function attempt(trx: ProjectionTransaction, recorded: readonly RecordedEvent[], exact: boolean): Promise<boolean> {
  const tenantId = recorded[0]!.metadata.tenantId!
  const { ids, rooms, edited, deleted } = touchedBy(recorded, exact)

  const rows = new Map<string, MessageRow>()
  const load = async (wanted: string[]) => {
    if (wanted.length === 0) return
    const { rows: found } = await sql<Omit<MessageRow, 'fresh' | 'dirty' | 'seq'> & { seq: string }>`
      select id, room_id, seq::text as seq, author_id, author_type, text, thread_root_id, task_id, reply_count, mentions, reactions,
             created_at::text as created_at, edited_at::text as edited_at, deleted_at::text as deleted_at,
             position::text as position
        from messages where tenant_id = ${tenantId} and id = any(${wanted}::uuid[])`.execute(trx)
    for (const r of found) rows.set(r.id, { ...r, seq: Number(r.seq), fresh: false, dirty: false })
  }
  await load([...ids])
  // A deleted reply lowers its root's count: roots of deleted messages that the batch did not load yet.
  await load(uniq([...deleted].flatMap((id) => rows.get(id)?.thread_root_id ?? [])).filter((id) => !rows.has(id)))

  const maxSeq = new Map<string, number>()
  if (rooms.size) {
    const { rows: found } = await sql<{ room_id: string; seq: string | null }>`
      select r.room_id, (select max(m.seq) from messages m where m.tenant_id = ${tenantId} and m.room_id = r.room_id)::text as seq
        from unnest(${[...rooms]}::uuid[]) as r(room_id)`.execute(trx)
    for (const r of found) if (r.seq !== null) maxSeq.set(r.room_id, Number(r.seq))
  }
  const editVersion = new Map<string, number>()
  if (edited.size) {
    const { rows: found } = await sql<{ message_id: string; version: number }>`
      select message_id, max(version) as version from message_edits
       where tenant_id = ${tenantId} and message_id = any(${[...edited]}::uuid[]) group by message_id`.execute(trx)
    for (const r of found) editVersion.set(r.message_id, r.version)
  }

  const fold: MessagesFold = { rows, maxSeq, editVersion, edits: [], reads: new Map(), purged: new Set() }
  foldMessages(fold, recorded)
  const { edits, reads, purged } = fold

  const fresh = [...rows.values()].filter((r) => r.fresh)
  if (fresh.length) {
    const { rows: inserted } = await sql<{ n: number }>`
      with inserted as (
      insert into messages (tenant_id, id, room_id, seq, author_id, author_type, text, thread_root_id, task_id, reply_count,
                            mentions, reactions, created_at, edited_at, deleted_at, position)
      select ${tenantId}, x.id, x.room_id, x.seq, x.author_id, x.author_type, x.text, x.thread_root_id, x.task_id, x.reply_count,
             x.mentions, x.reactions, x.created_at, x.edited_at, x.deleted_at, x.position
        from jsonb_to_recordset(${JSON.stringify(fresh.map(({ fresh: _, dirty: __, ...r }) => r))}::jsonb) as x(
          id uuid, room_id uuid, seq bigint, author_id uuid, author_type text, text text, thread_root_id uuid, task_id uuid, reply_count int,
          mentions jsonb, reactions jsonb, created_at timestamptz, edited_at timestamptz, deleted_at timestamptz, position bigint)
      on conflict do nothing
      returning 1)
      select count(*)::int as n from inserted`.execute(trx)
    if (inserted[0]!.n !== fresh.length) {
      if (exact) throw new Error('messages: an insert the batch had checked conflicted')
      // Undo exactly this attempt's rows (an id projected before keeps its row: its position differs).
      await sql`
        delete from messages m using jsonb_to_recordset(${JSON.stringify(fresh.map((r) => ({ id: r.id, position: r.position })))}::jsonb)
          as x(id uuid, position bigint)
         where m.tenant_id = ${tenantId} and m.id = x.id and m.position = x.position`.execute(trx)
      return false
    }
  }
  const dirty = [...rows.values()].filter((r) => r.dirty)
  if (dirty.length) {
    const changes = dirty.map((r) => ({
      id: r.id,
      text: r.text,
      reply_count: r.reply_count,
      mentions: r.mentions,
      reactions: r.reactions,
      edited_at: r.edited_at,
      deleted_at: r.deleted_at,
    }))
    await sql`
      update messages m
         set text = x.text, reply_count = x.reply_count, mentions = x.mentions, reactions = x.reactions,
             edited_at = x.edited_at, deleted_at = x.deleted_at
        from jsonb_to_recordset(${JSON.stringify(changes)}::jsonb) as x(
          id uuid, text text, reply_count int, mentions jsonb, reactions jsonb, edited_at timestamptz, deleted_at timestamptz)
       where m.tenant_id = ${tenantId} and m.id = x.id`.execute(trx)
  }
  if (purged.size) {
    await sql`
      delete from message_edits where tenant_id = ${tenantId} and message_id = any(${[...purged]}::uuid[])`.execute(trx)
  }
  const kept = edits.filter((e) => !purged.has(e.message_id))
  if (kept.length) {
    await sql`
      insert into message_edits (tenant_id, message_id, version, text, replaced_at)
      select ${tenantId}, x.message_id, x.version, x.text, x.replaced_at
        from jsonb_to_recordset(${JSON.stringify(kept)}::jsonb) as x(message_id uuid, version int, text text, replaced_at timestamptz)`.execute(
      trx,
    )
  }
  if (reads.size) {
    await sql`
      insert into room_reads (tenant_id, room_id, user_id, message_id, seq)
      select ${tenantId}, x.room_id, x.user_id, x.message_id, x.seq
        from jsonb_to_recordset(${JSON.stringify([...reads.values()])}::jsonb) as x(room_id uuid, user_id uuid, message_id uuid, seq bigint)
      on conflict (tenant_id, room_id, user_id) do update set message_id = excluded.message_id, seq = excluded.seq`.execute(trx)
  }
  return true
}
