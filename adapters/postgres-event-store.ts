import type pg from 'pg'
import {
  type AppendOptions,
  type AppendResult,
  type EventMetadata,
  type EventStore,
  type ExpectedRevision,
  type NewEvent,
  PartialIdempotencyError,
  type Position,
  type ReadAllOptions,
  type ReadStreamOptions,
  type ReadTenantOptions,
  type RecordedEvent,
  START,
  type SubscribeAllOptions,
  type Subscription,
  WrongExpectedRevisionError,
} from './event-store.ts'
import { GroupCommit, type GroupCommitOptions, type Settled } from './group-commit.ts'
import { PgListener } from './pg-listener.ts'

const CHANNEL = 'eventstore_appended'

const expectedCode = (e: ExpectedRevision): string =>
  e === 'no_stream' ? '-1' : e === 'any' ? '-2' : e === 'stream_exists' ? '-3' : e.toString()

type EventRow = {
  global_position: string
  transaction_id: string
  event_id: string
  stream_name: string
  stream_revision: string
  event_type: string
  data: unknown
  metadata: EventMetadata
}

/*
 * int8 and xid8 arrive as strings (node-postgres' default). No casts here: an output column named like an
 * input column would capture `order by global_position` and sort text (10 before 9).
 */
const COLUMNS = `e.global_position, e.transaction_id, e.event_id, e.stream_name, e.stream_revision,
  e.event_type, e.data, e.metadata`

const toRecorded = (r: EventRow): RecordedEvent => ({
  id: r.event_id,
  type: r.event_type,
  data: r.data,
  metadata: r.metadata,
  streamName: r.stream_name,
  revision: BigInt(r.stream_revision),
  position: { transactionId: BigInt(r.transaction_id), sequence: BigInt(r.global_position) },
})

type AppendJob = { readonly stream: string; readonly events: readonly NewEvent[]; readonly options: AppendOptions }

/** One append as eventstore.append and eventstore.append_group take it. */
const toMember = ({ stream, events, options }: AppendJob) => ({
  stream,
  expected: expectedCode(options.expectedRevision),
  events: events.map((e) => ({ id: e.id, type: e.type, data: e.data, metadata: e.metadata })),
  tenant: events[0]!.metadata.tenantId,
  conditions: options.alsoExpect?.length
    ? options.alsoExpect.map((c) => ({ stream: c.stream, expected: expectedCode(c.expectedRevision) }))
    : null,
})

type ResultRow = { next_revision: string; commit_position: string; global_position: string }

type GroupRow = { ordinal: string } & { [K in keyof ResultRow]: ResultRow[K] | null } & {
  error_code: string | null
  error_message: string | null
  error_detail: string | null
  error_hint: string | null
  error_constraint: string | null
}

const toResult = (row: { [K in keyof ResultRow]: ResultRow[K] | null }): AppendResult => ({
  nextExpectedRevision: BigInt(row.next_revision!),
  position: { transactionId: BigInt(row.commit_position!), sequence: BigInt(row.global_position!) },
})

type SqlError = {
  code?: string | undefined
  message: string
  detail?: string | undefined
  hint?: string | undefined
  constraint?: string | undefined
}

/** The port's error for what eventstore.append refused, or null for any other failure. */
function appendError({ stream, options }: AppendJob, err: SqlError): Error | null {
  if (err.code === 'ES409') {
    const moved = err.hint ?? stream
    const expected =
      moved === stream
        ? options.expectedRevision
        : (options.alsoExpect?.find((c) => c.stream === moved)?.expectedRevision ?? 'any')
    const actual = err.detail === 'no_stream' || err.detail === undefined ? 'no_stream' : BigInt(err.detail)
    return new WrongExpectedRevisionError(moved, expected, actual)
  }
  if (err.code === 'ES422') return new PartialIdempotencyError(err.message)
  // An id the function did not probe (not the first) was written before, in this stream or another.
  if (err.code === '23505' && err.constraint === 'events_event_id') {
    return new PartialIdempotencyError('some of these event ids were already appended')
  }
  return null
}

/**
 * Wakes subscribers after appends. In-process waiters are woken directly; other processes through a
 * coalesced NOTIFY sent after commit, so that NOTIFY's commit-time lock never serialises appends.
 */
class Notifier {
  private waiters = new Set<() => void>()
  /** Bumped on every wake-up, so a waiter that read before an append never sleeps through it. */
  generation = 0
  private readonly listener: PgListener
  /** A NOTIFY is scheduled or in flight. */
  private notifying = false
  /** An append ended since the pending NOTIFY was sent. */
  private notifyWanted = false
  private lastNotifyAt = Number.NEGATIVE_INFINITY
  private timer: ReturnType<typeof setTimeout> | null = null
  private closed = false
  private readonly pool: pg.Pool
  private readonly intervalMs: number
  constructor(pool: pg.Pool, intervalMs: number) {
    this.pool = pool
    this.intervalMs = intervalMs
    // Notifications of appends elsewhere wake the waiters; so does losing the connection (some may be missed).
    this.listener = new PgListener(pool, { channel: CHANNEL, onNotification: () => this.wake(), onLost: () => this.wake() })
  }

  /** Resolves once an append was seen (here or elsewhere) after `generation`, or after timeoutMs. */
  async wait(generation: number, timeoutMs: number): Promise<void> {
    await this.listen()
    if (this.closed || generation !== this.generation) return
    await new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer)
        this.waiters.delete(done)
        resolve()
      }
      const timer = setTimeout(done, timeoutMs)
      this.waiters.add(done)
    })
  }

  appended(): void {
    this.wake()
    if (this.closed) return
    this.notifyWanted = true
    if (!this.notifying) this.schedule()
  }

  /**
   * Every append is followed by a NOTIFY sent after it committed: at once after a quiet spell, otherwise
   * at most one per intervalMs and one in flight at a time, covering every append that ended meanwhile.
   * A NOTIFY is a transaction of its own (it takes a transaction id and writes a commit record): one per
   * append would double the work of a lone writer. It commits asynchronously (a lost notification is
   * harmless: listeners poll), so no append ever waits behind its flush.
   */
  private schedule(): void {
    this.notifying = true
    const send = () => {
      this.notifyWanted = false
      if (this.closed) {
        this.notifying = false
        return
      }
      this.lastNotifyAt = performance.now()
      this.pool
        .query({
          name: 'eventstore_notify',
          text: `select set_config('synchronous_commit', 'off', true), pg_notify('${CHANNEL}', '')`,
        })
        .catch(() => {
          // Subscribers in other processes fall back to their poll interval.
        })
        .finally(() => {
          this.notifying = false
          if (this.notifyWanted && !this.closed) this.schedule()
        })
    }
    const delay = this.lastNotifyAt + this.intervalMs - performance.now()
    if (delay > 0) {
      this.timer = setTimeout(() => {
        this.timer = null
        send()
      }, delay)
    } else setImmediate(send)
  }

  wake(): void {
    this.generation++
    for (const w of [...this.waiters]) w()
  }

  /** Listens for appends of other processes; a broken connection is listened again at the next wait. */
  listen(): Promise<void> {
    if (this.closed) return Promise.resolve()
    return this.listener.listen()
  }

  async close(): Promise<void> {
    this.closed = true
    if (this.timer) clearTimeout(this.timer)
    this.timer = null
    this.wake()
    await this.listener.close()
  }
}

export type PostgresEventStoreOptions = {
  /** How long an idle subscriber waits for a notification before looking anyway. */
  readonly idlePollMs?: number
  /**
   * The least time between two NOTIFYs to other processes while appends keep coming (the first after a
   * quiet spell goes at once). In-process subscribers are woken at once regardless.
   */
  readonly notifyIntervalMs?: number
  /**
   * Group commit (on by default): at most maxInFlight appends run at once (default 4), and those that queue
   * meanwhile go as one transaction of at most maxGroup appends (default 32, at most 64), each still checked
   * and failing on its own. A lone writer never waits. false: every append is a transaction of its own.
   */
  readonly groupCommit?: Partial<GroupCommitOptions> | false
}

export class PostgresEventStore implements EventStore {
  private readonly pool: pg.Pool
  private readonly notifier: Notifier
  private readonly subscriptions = new Set<Subscription>()
  /** Reads of $all in flight for subscriptions, by where they start (see readTail). */
  private readonly tailReads = new Map<string, { generation: number; maxCount: number; events: Promise<RecordedEvent[]> }>()
  private readonly idlePollMs: number
  private readonly groupCommit: GroupCommit<AppendJob, AppendResult> | null

  constructor(pool: pg.Pool, options: PostgresEventStoreOptions = {}) {
    this.pool = pool
    this.notifier = new Notifier(pool, options.notifyIntervalMs ?? 3)
    this.idlePollMs = options.idlePollMs ?? 5_000
    const group = options.groupCommit ?? {}
    this.groupCommit =
      group === false
        ? null
        : new GroupCommit(
            (job) => this.appendAlone(job),
            (jobs) => this.appendGroup(jobs),
            // 64 at most: Postgres tracks that many subtransactions (one a member) per backend in shared memory.
            { maxInFlight: group.maxInFlight ?? 4, maxGroup: Math.min(group.maxGroup ?? 32, 64) },
          )
  }

  /**
   * A restore into a fresh cluster restarts transaction ids: new appends would sort before history and
   * readers would skip them. Refuse to run on such a cluster.
   */
  async assertHistoryOrdered(): Promise<void> {
    const { rows } = await this.pool.query<{ newest: string | null; next: string }>(
      `select (select max(transaction_id) from eventstore.events)::text as newest,
              pg_snapshot_xmax(pg_current_snapshot())::text as next`,
    )
    const row = rows[0]!
    if (row.newest !== null && BigInt(row.newest) >= BigInt(row.next)) {
      throw new Error(
        `event history (transaction ${row.newest}) sorts after new appends (next transaction ${row.next}): ` +
          'this cluster was restored without its transaction ids; see README "Backup and restore"',
      )
    }
  }

  async append(stream: string, events: readonly NewEvent[], options: AppendOptions): Promise<AppendResult> {
    if (events.length === 0) throw new Error('append needs at least one event')
    const job: AppendJob = { stream, events, options }
    try {
      return await (this.groupCommit ? this.groupCommit.submit(job) : this.appendAlone(job))
    } finally {
      // A failed append may have been the in-flight transaction holding readers back: wake them too.
      this.notifier.appended()
    }
  }

  /** One append, one call of eventstore.append, one transaction. */
  private async appendAlone(job: AppendJob): Promise<AppendResult> {
    const member = toMember(job)
    try {
      const { rows } = await this.pool.query<ResultRow>({
        name: 'eventstore_append',
        text: 'select next_revision, commit_position, global_position from eventstore.append($1, $2, $3, $4, $5)',
        values: [
          member.stream,
          member.expected,
          JSON.stringify(member.events),
          member.tenant,
          member.conditions && JSON.stringify(member.conditions),
        ],
      })
      return toResult(rows[0]!)
    } catch (e) {
      throw appendError(job, e as SqlError) ?? e
    }
  }

  /**
   * Appends that queued, in one call of eventstore.append_group: one transaction, one commit. Each member
   * answers as it would alone; a member that failed for a reason of its own kind (not a wrong revision or a
   * partial retry) runs again alone, so its caller sees exactly the error an append of its own raises. A group
   * that fails as a whole runs again member by member: appends are idempotent by event id, so a member the
   * group did commit answers as the first time.
   */
  private async appendGroup(jobs: readonly AppendJob[]): Promise<Settled<AppendResult>[]> {
    let rows: GroupRow[]
    try {
      ;({ rows } = await this.pool.query<GroupRow>({
        name: 'eventstore_append_group',
        text: `select ordinal, next_revision, commit_position, global_position, error_code, error_message,
                 error_detail, error_hint, error_constraint
               from eventstore.append_group($1)`,
        values: [JSON.stringify(jobs.map(toMember))],
      }))
    } catch {
      rows = []
    }
    const settled: Settled<AppendResult>[] = []
    for (const [i, job] of jobs.entries()) {
      const row = rows.find((r) => Number(r.ordinal) === i + 1)
      if (row && row.error_code === null) {
        settled.push({ ok: true, value: toResult(row) })
        continue
      }
      const known =
        row &&
        appendError(job, {
          code: row.error_code ?? undefined,
          message: row.error_message ?? '',
          detail: row.error_detail || undefined,
          hint: row.error_hint || undefined,
          constraint: row.error_constraint || undefined,
        })
      if (known) {
        settled.push({ ok: false, error: known })
        continue
      }
      try {
        settled.push({ ok: true, value: await this.appendAlone(job) })
      } catch (error) {
        settled.push({ ok: false, error })
      }
    }
    return settled
  }

  async readStream(stream: string, options: ReadStreamOptions = {}): Promise<RecordedEvent[]> {
    const backwards = options.direction === 'backwards'
    const from = options.fromRevision ?? (backwards ? BigInt(Number.MAX_SAFE_INTEGER) : 0n)
    const { rows } = await this.pool.query<EventRow>(
      `select ${COLUMNS} from eventstore.events e
        where e.stream_name = $1 and e.stream_revision ${backwards ? '<=' : '>='} $2
        order by e.stream_revision ${backwards ? 'desc' : 'asc'} limit $3`,
      [stream, from.toString(), options.maxCount ?? 2_147_483_647],
    )
    return rows.map(toRecorded)
  }

  async readAll(options: ReadAllOptions = {}): Promise<RecordedEvent[]> {
    const from = options.from ?? START
    const { rows } = await this.pool.query<EventRow>({
      name: 'eventstore_read_all',
      text: `select ${COLUMNS} from eventstore.events e
        where (e.transaction_id, e.global_position) > ($1::text::xid8, $2::bigint)
          and e.transaction_id < pg_snapshot_xmin(pg_current_snapshot())
        order by e.transaction_id, e.global_position limit $3`,
      values: [from.transactionId.toString(), from.sequence.toString(), options.maxCount ?? 1_000],
    })
    return rows.map(toRecorded)
  }

  async readTenant(tenantId: string, options: ReadTenantOptions): Promise<RecordedEvent[]> {
    const from = options.from ?? START
    const to = options.to
    // events_tenant leads with the position: the range starts there, the pair then orders and bounds exactly.
    const { rows } = await this.pool.query<EventRow>({
      name: 'eventstore_read_tenant',
      text: `select ${COLUMNS} from eventstore.events e
        where e.tenant_id = $1 and e.global_position >= $2::bigint
          and (e.transaction_id, e.global_position) >= ($3::text::xid8, $2::bigint)
          and ($4::text is null or (e.transaction_id, e.global_position) <= ($4::text::xid8, $5::bigint))
          and e.event_type = any($6::text[]) and e.data @> $7::jsonb
        order by e.transaction_id, e.global_position limit $8`,
      values: [
        tenantId,
        from.sequence.toString(),
        from.transactionId.toString(),
        to ? to.transactionId.toString() : null,
        to ? to.sequence.toString() : null,
        options.types,
        JSON.stringify(options.match ?? {}),
        options.maxCount ?? 2_147_483_647,
      ],
    })
    return rows.map(toRecorded)
  }

  subscribeAll(options: SubscribeAllOptions = {}): Subscription {
    let from = options.from ?? START
    const maxBatch = options.maxBatch ?? 1_000
    let closed = false
    const store = this
    const subscription: Subscription = {
      async close() {
        closed = true
        store.subscriptions.delete(subscription)
        // Release a reader parked on a wait so it ends now, not at its next timeout.
        store.notifier.wake()
      },
      async *[Symbol.asyncIterator]() {
        // After a wake-up that found nothing, an older transaction may still be in flight (or may have
        // aborted without a word): look again soon, backing off, instead of waiting a whole idle period.
        let retryMs = 0
        await store.notifier.listen()
        while (!closed) {
          const generation = store.notifier.generation
          const batch = await store.readTail(from, maxBatch, generation)
          if (closed) return
          if (batch.length > 0) {
            retryMs = 0
            from = batch[batch.length - 1]!.position
            yield batch
            continue
          }
          const before = await store.pendingBeyond(from)
          retryMs = before ? Math.min(Math.max(retryMs * 2, 5), 500) : 0
          await store.notifier.wait(generation, before ? retryMs : store.idlePollMs)
        }
      },
    }
    this.subscriptions.add(subscription)
    return subscription
  }

  /**
   * readAll for a subscription. The subscriptions of a process that are caught up (every projector, the principal
   * cache) all read from the same position after a wake-up: one query answers them all. A read joins one in flight
   * only if that one started after the wake-up it answers (its generation), so no commit it was woken for is missed.
   */
  private readTail(from: Position, maxCount: number, generation: number): Promise<RecordedEvent[]> {
    const key = `${from.transactionId}:${from.sequence}`
    const pending = this.tailReads.get(key)
    if (pending && pending.generation >= generation && pending.maxCount >= maxCount) {
      return pending.events.then((events) => (events.length > maxCount ? events.slice(0, maxCount) : events))
    }
    const read = { generation: this.notifier.generation, maxCount, events: this.readAll({ from, maxCount }) }
    this.tailReads.set(key, read)
    const forget = () => {
      if (this.tailReads.get(key) === read) this.tailReads.delete(key)
    }
    read.events.then(forget, forget)
    return read.events
  }

  /** Whether rows exist after `from` that readers cannot see yet (their transaction is behind one in flight). */
  private async pendingBeyond(from: Position): Promise<boolean> {
    const { rows } = await this.pool.query<{ pending: boolean }>({
      name: 'eventstore_pending',
      text: `select exists (select 1 from eventstore.events
               where (transaction_id, global_position) > ($1::text::xid8, $2::bigint)) as pending`,
      values: [from.transactionId.toString(), from.sequence.toString()],
    })
    return rows[0]!.pending
  }

  async headPosition(): Promise<Position> {
    const { rows } = await this.pool.query<{ transaction_id: string; sequence: string }>(
      `select transaction_id::text as transaction_id, global_position::text as sequence from eventstore.events
        where transaction_id < pg_snapshot_xmin(pg_current_snapshot())
        order by transaction_id desc, global_position desc limit 1`,
    )
    const row = rows[0]
    return row ? { transactionId: BigInt(row.transaction_id), sequence: BigInt(row.sequence) } : START
  }

  async resolvePosition(publicPosition: bigint): Promise<Position | null> {
    const { rows } = await this.pool.query<{ transaction_id: string }>({
      name: 'eventstore_resolve',
      text: 'select transaction_id::text as transaction_id from eventstore.events where global_position = $1',
      values: [publicPosition.toString()],
    })
    return rows[0] ? { transactionId: BigInt(rows[0].transaction_id), sequence: publicPosition } : null
  }

  async close(): Promise<void> {
    for (const s of [...this.subscriptions]) await s.close()
    await this.notifier.close()
  }
}
