import { setTimeout as sleep } from 'node:timers/promises'
import { sql } from 'kysely'
import { retryDelayMs } from '../adapters/backoff.ts'
import { comparePositions, formatPosition, type Position, publicPosition } from '../adapters/event-store.ts'
import type { Logger } from '../adapters/logger.ts'
import type { AnyDb } from '../adapters/postgres.ts'
import { compareEntryIds, STREAM_START_ID, type UserStreamEntry, type UserStreams } from '../adapters/user-streams.ts'
import type { ProjectionTransaction } from './engine.ts'
import { erasedBy, forgetInStream } from './realtime-erasure.ts'

/** One event the fan-out delivers, and to whom (as of the event's position). */
export type Delivery = {
  readonly position: Position
  readonly type: string
  readonly occurredAt: string
  readonly data: unknown
  readonly users: readonly string[]
}

export type RealtimeOutboxOptions = {
  /** Deliveries appended to the streams per round trip. Default 1,000. */
  readonly chunk?: number
  /** The wait after a first failure; each failure in a row doubles it (with jitter), up to maxRetryMs. Default 100 ms. */
  readonly retryMs?: number
  /** Default 5 s. */
  readonly maxRetryMs?: number
}

/** However clean the outbox looks, it is read at least this often: rows another process left are not stranded. */
const OUTBOX_READ_EVERY_MS = 5_000

type Due = {
  user_id: string
  c: string
  p: string
  type: string
  occurred_at: string
  data: unknown
  hc: string | null
  hp: string | null
  delivered: boolean
}

/**
 * The fan-out's deliveries (tables: migrations/realtime/002_outbox.ts). A fan-out batch records them in its
 * own transaction; after it commits they are appended to the user streams, oldest first, and leave the outbox.
 * The streams refuse an id they hold, so a delivery repeated (a crash after the append, two processes
 * draining at once) adds nothing. While the streams' backend is away nothing waits for it: batches go on
 * committing, and delivery retries with backoff, then drains in order.
 *
 * The fast path: what this process's fan-out recorded in a batch that committed (committed()) is appended from
 * memory, each user's previous id taken from the heads this process keeps, with no read of the outbox before
 * the append; the rows leave the outbox after it. It is taken only while the outbox is known to hold nothing
 * older (a read of it came back short and nothing failed since); otherwise, and every few seconds in case
 * another process left rows behind, the outbox is read as the source of truth.
 */
export class RealtimeOutbox {
  private readonly db: AnyDb
  private readonly streams: UserStreams
  private readonly logger: Logger
  private readonly chunk: number
  private readonly retryMs: number
  private readonly maxRetryMs: number
  private readonly stopping = new AbortController()
  /** A kick came since the current pass began. */
  private wanted = false
  /** The deliveries recorded in the transaction `recordingIn`, not known to have committed yet. */
  private recording: Delivery[] = []
  private recordingIn: ProjectionTransaction | null = null
  /** Recorded by this process in batches that committed, not appended yet; in commit order. */
  private fresh: Delivery[] = []
  /** No delivery older than `fresh` is in the outbox, as far as this process knows. */
  private clean = false
  /** When the outbox was last read. */
  private readAt = 0
  /** The fast path's removals of delivered rows, one after the other. */
  private clearing: Promise<void> = Promise.resolve()
  /** Each user's last delivered id, as this process wrote or read it in outbox_heads. */
  private readonly heads = new Map<string, string>()
  private running: Promise<void> | null = null
  private closed = false

  constructor(deps: { db: AnyDb; streams: UserStreams; logger: Logger }, options: RealtimeOutboxOptions = {}) {
    this.db = deps.db
    this.streams = deps.streams
    this.logger = deps.logger.child({ component: 'realtime-outbox' })
    this.chunk = options.chunk ?? 1_000
    this.retryMs = options.retryMs ?? 100
    this.maxRetryMs = options.maxRetryMs ?? 5_000
  }

  /** Records deliveries in the fan-out batch's transaction: they commit, or roll back, with it. */
  async record(trx: ProjectionTransaction, deliveries: readonly Delivery[]): Promise<void> {
    const due = deliveries.filter((d) => d.users.length > 0)
    if (trx !== this.recordingIn) {
      // A new batch: what an earlier one recorded was either promoted by committed() or rolled back.
      this.recording = []
      this.recordingIn = trx
    }
    this.recording.push(...due)
    if (due.length === 0) return
    const events = due.map((d) => ({
      c: d.position.transactionId.toString(),
      p: d.position.sequence.toString(),
      t: d.type,
      o: d.occurredAt,
      d: d.data ?? null,
    }))
    // Another runner of the same batch (it then fails on the checkpoint) may have written these rows first.
    await sql`
      insert into realtime.outbox_events (commit_position, prepare_position, type, occurred_at, data)
      select x.c, x.p, x.t, x.o, x.d from jsonb_to_recordset(${JSON.stringify(events)}::jsonb)
          as x(c bigint, p bigint, t text, o text, d jsonb)
      on conflict do nothing`.execute(trx)
    const transactionIds = due.flatMap((d) => d.users.map(() => d.position.transactionId.toString()))
    const sequences = due.flatMap((d) => d.users.map(() => d.position.sequence.toString()))
    const users = due.flatMap((d) => d.users)
    await sql`
      insert into realtime.outbox (commit_position, prepare_position, user_id)
      select * from unnest(${transactionIds}::bigint[], ${sequences}::bigint[], ${users}::text[])
      on conflict do nothing`.execute(trx)
  }

  /** The fan-out batch whose transaction recorded last has committed: deliver it (from memory when the outbox is clean). */
  committed(): void {
    if (this.recording.length) this.fresh.push(...this.recording)
    this.recording = []
    this.recordingIn = null
    this.kick()
  }

  /** Delivers what is pending, in the background; returns at once. Called after each fan-out commit and at start. */
  kick(): void {
    this.wanted = true
    if (this.running || this.closed) return
    this.running = this.drain().finally(() => {
      this.running = null
      if (this.wanted) this.kick()
    })
  }

  private async drain(): Promise<void> {
    let failures = 0
    while (this.wanted && !this.closed) {
      this.wanted = false
      try {
        if (this.clean && this.fresh.length > 0 && Date.now() - this.readAt < OUTBOX_READ_EVERY_MS) {
          await this.deliverFresh()
        } else {
          while ((await this.deliverChunk()) === this.chunk && !this.closed) {}
        }
        failures = 0
      } catch (e) {
        this.clean = false
        failures++
        this.wanted = true
        const retryInMs = Math.round(retryDelayMs(failures, this.retryMs, this.maxRetryMs))
        this.logger.warn({ err: e, failures, retryInMs }, 'realtime delivery failed; the outbox keeps it and retries')
        await sleep(retryInMs, undefined, { signal: this.stopping.signal }).catch(() => {})
      }
    }
  }

  /**
   * Appends the oldest pending deliveries (a prefix of every user's in the global order), then removes them.
   * One at or before the user's last delivered id (a fan-out that ran over old events again) was delivered:
   * it only leaves. Returns how many there were.
   */
  private async deliverChunk(): Promise<number> {
    // The fast path's removals first: this read must not see rows already delivered, nor heads behind them.
    await this.clearing
    // Whatever committed before this read is in it: the fresh deliveries are read with the rest.
    this.fresh = []
    this.readAt = Date.now()
    const { rows } = await sql<Due>`
      with due as (
        select commit_position, prepare_position, user_id from realtime.outbox
         order by commit_position, prepare_position, user_id limit ${this.chunk}
      )
      select d.user_id, d.commit_position::text as c, d.prepare_position::text as p, e.type, e.occurred_at, e.data,
             h.last_commit::text as hc, h.last_prepare::text as hp,
             coalesce((d.commit_position, d.prepare_position) <= (h.last_commit, h.last_prepare), false) as delivered
        from due d
        join realtime.outbox_events e using (commit_position, prepare_position)
        left join realtime.outbox_heads h on h.user_id = d.user_id
       order by d.commit_position, d.prepare_position, d.user_id`.execute(this.db)
    this.clean = rows.length < this.chunk
    if (rows.length === 0) return 0
    // Each user's newest delivery in this chunk: the one the next names as its previous.
    const last = new Map<string, Due>()
    const entries: UserStreamEntry[] = rows
      .filter((r) => !r.delivered)
      .map((r) => {
        const before = last.get(r.user_id)
        const previousId = before ? `${before.c}-${before.p}` : r.hc === null ? STREAM_START_ID : `${r.hc}-${r.hp}`
        last.set(r.user_id, r)
        return {
          userId: r.user_id,
          id: `${r.c}-${r.p}`,
          previousId,
          type: r.type,
          position: publicPosition({ transactionId: BigInt(r.c), sequence: BigInt(r.p) }),
          occurredAt: r.occurred_at,
          data: r.data,
        }
      })
    if (entries.length) await this.streams.append(entries)
    // Each stream got everything before its erasure entry: what the erased person said there can be removed now.
    for (const e of entries) {
      const erased = erasedBy(e)
      if (erased) await forgetInStream(this.streams, e.userId, erased)
    }
    await this.delivered(
      rows.map((r) => ({ c: r.c, p: r.p, userId: r.user_id })),
      [...last.values()].map((r) => ({ userId: r.user_id, c: r.c, p: r.p })),
    )
    return rows.length
  }

  /**
   * Appends the fresh deliveries, each user's previous id from the heads this process keeps (those it does not
   * know are read in one query), then removes them from the outbox. One already at or before a user's head was
   * delivered (the outbox was read meanwhile): it only leaves.
   */
  private async deliverFresh(): Promise<void> {
    const fresh = this.fresh.sort((a, b) => comparePositions(a.position, b.position))
    this.fresh = []
    const unknown = [...new Set(fresh.flatMap((d) => d.users))].filter((u) => !this.heads.has(u))
    if (unknown.length) {
      const { rows } = await sql<{ user_id: string; c: string; p: string }>`
        select user_id, last_commit::text as c, last_prepare::text as p from realtime.outbox_heads
         where user_id = any(${unknown}::text[])`.execute(this.db)
      for (const r of rows) this.heads.set(r.user_id, `${r.c}-${r.p}`)
    }
    const entries: UserStreamEntry[] = []
    const keys: { c: string; p: string; userId: string }[] = []
    const newest = new Map<string, { c: string; p: string }>()
    for (const d of fresh) {
      const id = formatPosition(d.position)
      const c = d.position.transactionId.toString()
      const p = d.position.sequence.toString()
      for (const userId of d.users) {
        keys.push({ c, p, userId })
        const previousId = newest.has(userId)
          ? `${newest.get(userId)!.c}-${newest.get(userId)!.p}`
          : (this.heads.get(userId) ?? STREAM_START_ID)
        if (compareEntryIds(id, previousId) <= 0) continue
        newest.set(userId, { c, p })
        entries.push({
          userId,
          id,
          previousId,
          type: d.type,
          position: publicPosition(d.position),
          occurredAt: d.occurredAt,
          data: d.data,
        })
      }
    }
    if (entries.length) await this.streams.append(entries)
    for (const e of entries) {
      const erased = erasedBy(e)
      if (erased) await forgetInStream(this.streams, e.userId, erased)
    }
    const heads = [...newest].map(([userId, h]) => ({ userId, ...h }))
    // The next batch names these as previous ids at once; the rows leave the outbox off the delivery path, in
    // order. Should that fail, they are read again (the streams refuse them as delivered) and leave then.
    this.remember(heads)
    this.clearing = this.clearing
      .then(() => this.delivered(keys, heads))
      .catch((e: unknown) => {
        this.clean = false
        this.logger.warn({ err: e }, 'removing delivered rows from the realtime outbox failed; they are read again')
      })
  }

  private remember(heads: readonly { userId: string; c: string; p: string }[]): void {
    for (const h of heads) {
      const id = `${h.c}-${h.p}`
      const known = this.heads.get(h.userId)
      if (!known || compareEntryIds(id, known) > 0) this.heads.set(h.userId, id)
    }
  }

  /** Removes appended deliveries from the outbox and moves the users' heads, in one transaction. */
  private async delivered(
    keys: readonly { c: string; p: string; userId: string }[],
    newest: readonly { userId: string; c: string; p: string }[],
  ): Promise<void> {
    const transactionIds = keys.map((k) => k.c)
    const sequences = keys.map((k) => k.p)
    const users = keys.map((k) => k.userId)
    // In user order: two processes delivering at once lock the heads in the same order.
    const heads = [...newest].sort((a, b) => (a.userId < b.userId ? -1 : a.userId > b.userId ? 1 : 0))
    await this.db.transaction().execute(async (trx) => {
      await sql`
        delete from realtime.outbox o using unnest(${transactionIds}::bigint[], ${sequences}::bigint[], ${users}::text[]) as x(c, p, u)
         where o.commit_position = x.c and o.prepare_position = x.p and o.user_id = x.u`.execute(trx)
      await sql`
        delete from realtime.outbox_events e using unnest(${transactionIds}::bigint[], ${sequences}::bigint[]) as x(c, p)
         where e.commit_position = x.c and e.prepare_position = x.p
           and not exists (select 1 from realtime.outbox o
                            where o.commit_position = e.commit_position and o.prepare_position = e.prepare_position)`.execute(trx)
      await sql`
        insert into realtime.outbox_heads as h (user_id, last_commit, last_prepare)
        select * from unnest(${heads.map((h) => h.userId)}::text[], ${heads.map((h) => h.c)}::bigint[], ${heads.map((h) => h.p)}::bigint[])
        on conflict (user_id) do update set last_commit = excluded.last_commit, last_prepare = excluded.last_prepare
         where (excluded.last_commit, excluded.last_prepare) > (h.last_commit, h.last_prepare)`.execute(trx)
    })
    this.remember(heads)
  }

  /** Stops delivering (what is pending stays for the next start) after the round trip in flight. */
  async close(): Promise<void> {
    this.closed = true
    this.stopping.abort()
    await this.running
    await this.clearing
  }
}
