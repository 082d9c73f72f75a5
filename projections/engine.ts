import { EventEmitter } from 'node:events'
import { setTimeout as sleep } from 'node:timers/promises'
import { sql, type Transaction } from 'kysely'
import { retryDelayMs } from '../adapters/backoff.ts'
import {
  comparePositions,
  type EventStore,
  formatPosition,
  type Position,
  type RecordedEvent,
  START,
  type Subscription,
} from '../adapters/event-store.ts'
import type { Logger } from '../adapters/logger.ts'
import { observeProjected } from '../adapters/metrics.ts'
import { park } from '../adapters/parked-events.ts'
import type { AnyDb } from '../adapters/postgres.ts'
import { isTransient } from '../adapters/transient.ts'
import type { DomainEvent } from '../domain/decider.ts'
import { ROLES } from '../migrations/shared.ts'

// biome-ignore lint/suspicious/noExplicitAny: projectors describe their own tables
export type ProjectionTransaction = Transaction<any>

/**
 * A stored event of a domain union, one envelope per member: narrowing on `type` narrows `data`, as in a decider's
 * evolve. The engine hands a projector only the types it declares (it filters on them), so this is what it gets.
 */
export type Recorded<E extends DomainEvent> = E extends DomainEvent ? RecordedEvent<E['type'], E['data']> : never

/**
 * A read model builder, defined like an Emmett projection: the domain events it handles, typed against their unions
 * (`Projector<OrgEvent>`: a misspelt type in `eventTypes` does not compile, and `apply` narrows on `type`), and what it
 * does with a batch of them. `apply` runs inside the batch's transaction, as the projector role, with app.tenant_id
 * set to the tenant of the events it is given: a projector cannot write another tenant's rows. It names its tables
 * unqualified: the engine points search_path at the live schema, or at a shadow schema when it rebuilds, so the
 * same code builds both. A read model whose rows each follow from the events about them needs no SQL of its own: a
 * pure evolve and rowProjector (rows.ts). `Projector` without an argument is any projector, as the engine runs them.
 */
export type Projector<E extends DomainEvent = DomainEvent> = {
  readonly name: string
  readonly version: number
  readonly schema: 'control' | 'tenant'
  /** Event types it reads; others only move its checkpoint. */
  readonly eventTypes: readonly E['type'][]
  /** The tables it owns in its schema, unqualified: a rebuild copies, builds, diffs and swaps exactly these. */
  readonly tables: readonly string[]
  /** One tenant's events of `eventTypes`, in order. */
  apply(trx: ProjectionTransaction, events: readonly Recorded<E>[]): Promise<void>
  /**
   * Called by the engine after each batch's transaction commits (never by a rebuild), for an effect outside
   * the database that must not hold the transaction open: the realtime fan-out delivers what the batch put in
   * its outbox. Returns at once; the next batch does not wait for it.
   */
  readonly afterCommit?: () => void
}

/** Whether a projector reads events of this type. */
export const handles = (p: Projector, type: string): boolean => p.eventTypes.includes(type)

export type ProjectorStatus = {
  readonly name: string
  readonly version: number
  readonly checkpoint: Position
  readonly lastBatchAt: Date | null
  readonly eventsApplied: number
}

/** Another writer moved the checkpoint (a rebuild swapped in new tables): reload it and go on from there. */
export class CheckpointMovedError extends Error {
  override readonly name = 'CheckpointMovedError'
}

/**
 * The advisory lock a batch of `name` into `schema` holds for its transaction. A rebuild's swap (or a
 * verify's diff) takes the live one first: in-flight batches finish, later ones wait, and no batch ever
 * holds a table lock the swap waits for while it waits for the swap (no deadlock).
 */
export const batchLockKey = (schema: string, name: string): string => `projection:${schema}.${name}`

const checkpointTable = (p: Pick<Projector, 'schema'>) => `${p.schema}.projection_checkpoints`

/**
 * Where projectors write: the tenant database, and the control database for projectors of the control schema. One
 * Kysely for both when one database holds them (`controlDb` unset, or the same object): nothing joins across them.
 */
export type ProjectionDatabases = { readonly db: AnyDb; readonly controlDb?: AnyDb }

/** The database a projector's tables and checkpoint are in. */
export const databaseOf = (d: ProjectionDatabases, p: Pick<Projector, 'schema'>): AnyDb =>
  p.schema === 'control' ? (d.controlDb ?? d.db) : d.db

/** Where parked events go: the control database, in the projector's own transaction when that is the same one. */
export const parkingIn = (d: ProjectionDatabases, p: Pick<Projector, 'schema'>, trx: ProjectionTransaction): AnyDb =>
  databaseOf(d, p) === (d.controlDb ?? d.db) ? trx : (d.controlDb ?? d.db)

/**
 * The one reading of checkpoint rows: those of `table` named `name` (with `parts`, the parallel writers of a
 * rebuild, `name#k/n`), of `version` or of any version, newest first.
 */
export async function readCheckpoints(
  db: AnyDb | ProjectionTransaction,
  table: string,
  filter: { readonly name: string; readonly version?: number; readonly parts?: boolean },
): Promise<{ name: string; position: Position }[]> {
  const { rows } = await sql<{ name: string; transaction_id: string; sequence: string }>`
    select name, commit_position::text as transaction_id, prepare_position::text as sequence from ${sql.table(table)}
     where ${filter.parts ? sql`name like ${`${filter.name}#%`}` : sql`name = ${filter.name}`}
       ${filter.version === undefined ? sql`` : sql`and version = ${filter.version}`}
     order by commit_position desc, prepare_position desc`.execute(db)
  return rows.map((r) => ({ name: r.name, position: { transactionId: BigInt(r.transaction_id), sequence: BigInt(r.sequence) } }))
}

type CheckpointOf = Pick<Projector, 'name' | 'version' | 'schema'>

/**
 * A projector's checkpoint. By default its live one, created at the start when it has none. With `create: false`,
 * null when it has none; `table` reads another checkpoint table (a rebuild's shadow); `anyVersion` the newest
 * checkpoint of any version of the projector (where the live tables stand).
 */
export async function loadCheckpoint(db: AnyDb, p: CheckpointOf): Promise<Position>
export async function loadCheckpoint(
  db: AnyDb | ProjectionTransaction,
  p: CheckpointOf,
  options: { readonly create: false; readonly table?: string; readonly anyVersion?: boolean },
): Promise<Position | null>
export async function loadCheckpoint(
  db: AnyDb | ProjectionTransaction,
  p: CheckpointOf,
  options: { readonly create?: boolean; readonly table?: string; readonly anyVersion?: boolean } = {},
): Promise<Position | null> {
  const table = options.table ?? checkpointTable(p)
  const [row] = await readCheckpoints(db, table, { name: p.name, version: options.anyVersion ? undefined : p.version })
  if (row) return row.position
  if (options.create === false) return null
  await db
    .insertInto(table)
    .values({ name: p.name, version: p.version, commit_position: sql`'0'::xid8`, prepare_position: 0 })
    .onConflict((oc) => oc.doNothing())
    .execute()
  return START
}

/** The version of this projector the live tables hold, when it is another one than this (null: none or this one). */
export async function otherVersion(db: AnyDb, p: Projector): Promise<number | null> {
  const rows = await db.selectFrom(checkpointTable(p)).select('version').where('name', '=', p.name).execute()
  const versions = rows.map((r) => Number(r.version))
  if (versions.length === 0 || versions.includes(p.version)) return null
  return Math.max(...versions)
}

/** Splits a batch per tenant, keeping each tenant's events in order. */
export const byTenant = (events: readonly RecordedEvent[]): Map<string | null, RecordedEvent[]> => {
  const groups = new Map<string | null, RecordedEvent[]>()
  for (const e of events) {
    const key = e.metadata.tenantId ?? null
    const group = groups.get(key)
    if (group) group.push(e)
    else groups.set(key, [e])
  }
  return groups
}

/**
 * Applies one batch and moves the checkpoint in the same transaction: a crash anywhere replays the
 * whole batch, so the effect is exactly once. The checkpoint moves only from where this runner left it.
 */
export async function applyBatch(
  db: AnyDb,
  p: Projector,
  from: Position,
  batch: readonly RecordedEvent[],
  target: { schema: string; checkpointTable?: string } = { schema: p.schema },
): Promise<Position> {
  return db.transaction().execute((trx) => applyBatchIn(trx, p, from, batch, target))
}

/** applyBatch inside a transaction the caller owns (a rebuild's swap applies its last batches in its own). */
export async function applyBatchIn(
  trx: ProjectionTransaction,
  p: Projector,
  from: Position,
  batch: readonly RecordedEvent[],
  target: { schema: string; checkpointTable?: string } = { schema: p.schema },
): Promise<Position> {
  await applyEventsIn(trx, p, batch, target.schema)
  return moveCheckpoint(trx, p, from, batch[batch.length - 1]!.position, target.checkpointTable)
}

/** The projector role, the target schema and the batch lock: where every write of a projector starts. */
export async function enterProjection(trx: ProjectionTransaction, p: Projector, schema: string): Promise<void> {
  await sql`select set_config('role', ${ROLES.projector}, true), set_config('search_path', ${schema}, true),
                   pg_advisory_xact_lock(hashtext(${batchLockKey(schema, p.name)}))`.execute(trx)
}

/**
 * Applies the events of the types a projector reads, each tenant's with app.tenant_id set to it, without moving
 * its checkpoint (an operator's retry of a parked event applies it this way, long after the checkpoint passed it).
 */
export async function applyEventsIn(
  trx: ProjectionTransaction,
  p: Projector,
  events: readonly RecordedEvent[],
  schema: string = p.schema,
): Promise<void> {
  await enterProjection(trx, p, schema)
  for (const [tenantId, group] of byTenant(events.filter((e) => handles(p, e.type)))) {
    await sql`select set_config('app.tenant_id', ${tenantId ?? ''}, true)`.execute(trx)
    await p.apply(trx, group)
  }
}

/** Moves the checkpoint from where this runner left it, or fails if another writer moved it. */
async function moveCheckpoint(
  trx: ProjectionTransaction,
  p: Projector,
  from: Position,
  to: Position,
  table: string = checkpointTable(p),
): Promise<Position> {
  const moved = await sql`
    update ${sql.table(table)}
       set commit_position = ${to.transactionId.toString()}::xid8, prepare_position = ${to.sequence.toString()}, updated_at = now()
     where name = ${p.name} and version = ${p.version}
       and commit_position = ${from.transactionId.toString()}::xid8 and prepare_position = ${from.sequence.toString()}`.execute(
    trx,
  )
  if (moved.numAffectedRows !== 1n) throw new CheckpointMovedError(`${p.name} v${p.version}: checkpoint moved`)
  return to
}

export type EventFailure = { readonly event: RecordedEvent; readonly error: unknown }

/**
 * Applies a batch one event at a time, each in a savepoint, up to the first event the projector fails on: the
 * events before it stay applied (with the checkpoint just before it), the failing one is rolled back and
 * returned. A moved checkpoint or a backing service's failure is nobody's event: it is thrown.
 */
export async function applyUntilFailure(
  trx: ProjectionTransaction,
  p: Projector,
  from: Position,
  batch: readonly RecordedEvent[],
  target: { schema: string; checkpointTable?: string } = { schema: p.schema },
): Promise<{ checkpoint: Position; failure: EventFailure | null }> {
  // Before the first savepoint: a lock or setting taken inside one would go with its rollback.
  await enterProjection(trx, p, target.schema)
  let checkpoint = from
  for (const event of batch) {
    await sql`savepoint apply_one`.execute(trx)
    try {
      checkpoint = await applyBatchIn(trx, p, checkpoint, [event], target)
      await sql`release savepoint apply_one`.execute(trx)
    } catch (error) {
      if (error instanceof CheckpointMovedError || isTransient(error)) throw error
      await sql`rollback to savepoint apply_one`.execute(trx)
      return { checkpoint, failure: { event, error } }
    }
  }
  return { checkpoint, failure: null }
}

/** A batch failed in the projector's code (not in a backing service): counts towards parking. */
class BatchFailedError extends Error {
  override readonly name = 'BatchFailedError'
  readonly from: Position
  constructor(from: Position, cause: unknown) {
    super('the projector failed on a batch', { cause })
    this.from = from
  }
}

export type EngineOptions = {
  readonly batchSize?: number
  /** The wait after a first failure; each failure in a row doubles it (with jitter), up to maxRetryMs. */
  readonly retryMs?: number
  readonly maxRetryMs?: number
  /**
   * Failures of the same batch in the projector's code before the engine applies it event by event and parks
   * the event it fails on. Failures of backing services (connections, deadlocks, timeouts) never count.
   */
  readonly maxAttempts?: number
  /**
   * A batch with nothing a projector reads moves its checkpoint in memory only (no transaction): most projectors
   * read few of the events that go by, and a transaction each per batch was most of the database's work under load.
   * The checkpoint is written with its next batch, or once the projector has had nothing to write for this long
   * (a consistentAfter read in another process waits on the written one).
   */
  readonly idleCheckpointMs?: number
}

/**
 * A projector's checkpoint as written, and the position it has moved to past events it does not read: written
 * once it has had nothing to write for `idleMs`, or taken by its next batch's transaction (which writes it then).
 * One write at a time: a batch waits for an idle write in flight, and starts from what it wrote.
 */
class WrittenCheckpoint {
  private position: Position
  private pending: Position | null = null
  private timer: NodeJS.Timeout | null = null
  private writing: Promise<void> = Promise.resolve()
  private readonly write: (from: Position, to: Position) => Promise<Position>
  private readonly idleMs: number

  constructor(position: Position, write: (from: Position, to: Position) => Promise<Position>, idleMs: number) {
    this.position = position
    this.write = write
    this.idleMs = idleMs
  }

  /** The checkpoint as written, once any write in flight is done: where the next batch's transaction starts. */
  async take(): Promise<Position> {
    this.cancel()
    await this.writing
    return this.position
  }

  wrote(position: Position): void {
    this.position = position
    this.pending = null
  }

  /** The projector has passed `position` with nothing to write: written if nothing else comes meanwhile. */
  later(position: Position): void {
    this.pending = position
    this.cancel()
    this.timer = setTimeout(() => this.flush(), this.idleMs)
    this.timer.unref()
  }

  /** Writes nothing more: what is pending is re-read after a restart (it changes nothing). */
  abandon(): void {
    this.cancel()
    this.pending = null
  }

  /** Writes what is pending now (the projector stops): a restart then re-reads less. */
  async close(): Promise<void> {
    this.cancel()
    await this.writing
    this.flush()
    await this.writing
  }

  private flush(): void {
    this.timer = null
    const to = this.pending
    if (!to) return
    // After the write in flight, from what it wrote: one write of this checkpoint at a time.
    this.writing = this.writing
      .then(() => this.write(this.position, to))
      .then(
        (written) => {
          this.position = written
          // Passed meanwhile: still pending, its own timer runs.
          if (this.pending === to) this.pending = null
        },
        // Not written (a rebuild moved it, the database is away): the next batch's transaction finds out, or a restart
        // re-reads those events, which change nothing here.
        () => {},
      )
  }

  private cancel(): void {
    if (this.timer) clearTimeout(this.timer)
    this.timer = null
  }
}

/** Runs every projector as its own catch-up-then-live subscription with its own checkpoint. */
export class ProjectionEngine {
  private readonly events = new EventEmitter()
  private readonly state = new Map<string, { status: ProjectorStatus; subscription: Subscription | null }>()
  private readonly loops: Promise<void>[] = []
  private stopped = false
  /** Aborts the waits between retries when the engine stops. */
  private readonly stopping = new AbortController()
  private readonly store: EventStore
  private readonly databases: ProjectionDatabases
  private readonly logger: Logger
  private readonly projectors: readonly Projector[]
  private readonly options: Required<EngineOptions>

  constructor(
    deps: ProjectionDatabases & { store: EventStore; logger: Logger },
    projectors: readonly Projector[],
    options: EngineOptions = {},
  ) {
    this.store = deps.store
    this.databases = { db: deps.db, ...(deps.controlDb ? { controlDb: deps.controlDb } : {}) }
    this.logger = deps.logger
    this.projectors = projectors
    this.options = {
      batchSize: options.batchSize ?? 500,
      retryMs: options.retryMs ?? 500,
      maxRetryMs: options.maxRetryMs ?? 10_000,
      maxAttempts: options.maxAttempts ?? 5,
      idleCheckpointMs: options.idleCheckpointMs ?? 100,
    }
    this.events.setMaxListeners(0)
  }

  start(): void {
    for (const p of this.projectors) this.loops.push(this.run(p))
  }

  private async run(p: Projector): Promise<void> {
    const log = this.logger.child({ projector: p.name, version: p.version })
    // Failures in a row, whatever failed: they set the wait.
    let failures = 0
    // The projector's own failures on the batch at one checkpoint: they lead to parking.
    let failing: { at: Position; attempts: number } | null = null
    while (!this.stopped) {
      try {
        const db = databaseOf(this.databases, p)
        const other = await otherVersion(db, p)
        if (other !== null) {
          // The live tables hold another version's read model: never write this version's rows into them.
          if (other > p.version) {
            log.warn({ live: other }, 'a newer version of this projector is live: this one stops')
            return
          }
          log.warn(
            { live: other },
            `live tables hold v${other}: run \`npm run rebuild -- ${p.name}\` to build and swap in v${p.version}`,
          )
          await this.pause(Math.max(this.options.retryMs, 1_000))
          continue
        }
        let checkpoint = await loadCheckpoint(db, p)
        const entry = { status: this.status(p, checkpoint), subscription: null as Subscription | null }
        this.state.set(p.name, entry)
        const written = new WrittenCheckpoint(
          checkpoint,
          (from, to) => this.writeCheckpoint(p, from, to),
          this.options.idleCheckpointMs,
        )
        entry.subscription = this.store.subscribeAll({ from: checkpoint, maxBatch: this.options.batchSize })
        if (this.stopped) await entry.subscription.close()
        try {
          for await (const batch of entry.subscription) {
            let rest = batch
            // Every write of this projector's checkpoint starts from the one written (a pending idle write first).
            let from = await written.take()
            if (failing && failing.attempts >= this.options.maxAttempts && comparePositions(failing.at, from) === 0) {
              ;({ checkpoint: from, rest } = await this.isolate(p, from, batch, failing.attempts, log))
              written.wrote(from)
            }
            if (rest.some((e) => handles(p, e.type))) {
              checkpoint = await this.applyBlaming(p, from, rest)
              written.wrote(checkpoint)
            } else {
              checkpoint = rest.at(-1)?.position ?? from
              if (comparePositions(checkpoint, from) > 0) written.later(checkpoint)
            }
            p.afterCommit?.()
            observeProjected(p.name, batch)
            failures = 0
            failing = null
            entry.status = {
              ...entry.status,
              checkpoint,
              lastBatchAt: new Date(),
              eventsApplied: entry.status.eventsApplied + batch.length,
            }
            this.events.emit('checkpoint', p.name)
          }
          // The subscription ended (the engine stops): what is pending is written, so a restart re-reads less.
          await written.close()
        } catch (e) {
          // A failed batch is retried from the checkpoint as written (where the failure is counted): nothing pending
          // is written after it.
          written.abandon()
          throw e
        }
      } catch (e) {
        if (this.stopped) return
        await this.state
          .get(p.name)
          ?.subscription?.close()
          .catch(() => {})
        if (e instanceof CheckpointMovedError) {
          // A rebuild swapped its tables in and moved the checkpoint: go on from there, at once.
          log.info('checkpoint moved by a rebuild: reloading it')
          continue
        }
        failures++
        if (e instanceof BatchFailedError) {
          const attempts: number = failing && comparePositions(failing.at, e.from) === 0 ? failing.attempts + 1 : 1
          failing = { at: e.from, attempts }
        }
        const waitMs = retryDelayMs(failures, this.options.retryMs, this.options.maxRetryMs)
        log.error(
          {
            err: e instanceof BatchFailedError ? e.cause : e,
            failures,
            attempts: failing?.attempts,
            retryInMs: Math.round(waitMs),
          },
          'projector failed; retrying from its checkpoint',
        )
        await this.pause(waitMs)
      }
    }
  }

  /** Writes a checkpoint that moved past events the projector does not read: nothing else changes. */
  private async writeCheckpoint(p: Projector, from: Position, to: Position): Promise<Position> {
    return databaseOf(this.databases, p)
      .transaction()
      .execute(async (trx) => {
        await enterProjection(trx, p, p.schema)
        return moveCheckpoint(trx, p, from, to)
      })
  }

  /** applyBatch, with a failure of the projector's code told apart from a backing service's. */
  private async applyBlaming(p: Projector, from: Position, batch: readonly RecordedEvent[]): Promise<Position> {
    try {
      return await applyBatch(databaseOf(this.databases, p), p, from, batch)
    } catch (e) {
      throw e instanceof CheckpointMovedError || isTransient(e) ? e : new BatchFailedError(from, e)
    }
  }

  /**
   * A batch failed every attempt: applies it event by event, parks the first event the projector fails on, in
   * the transaction that applies the events before it and moves the checkpoint past it, and hands back the
   * events after it, to be applied as usual.
   */
  private async isolate(
    p: Projector,
    from: Position,
    batch: readonly RecordedEvent[],
    attempts: number,
    log: Logger,
  ): Promise<{ checkpoint: Position; rest: readonly RecordedEvent[] }> {
    const done = await databaseOf(this.databases, p)
      .transaction()
      .execute(async (trx) => {
        const { checkpoint, failure } = await applyUntilFailure(trx, p, from, batch)
        if (!failure) return { checkpoint, failure }
        // In another database, parked before this transaction commits: a crash in between parks it again (an upsert).
        await park(
          parkingIn(this.databases, p, trx),
          { kind: 'projector', name: p.name, version: p.version },
          failure.event,
          failure.error,
          attempts + 1,
        )
        return { checkpoint: await moveCheckpoint(trx, p, checkpoint, failure.event.position), failure }
      })
    if (!done.failure) {
      log.warn('a failing batch went through event by event: nothing parked')
      return { checkpoint: done.checkpoint, rest: [] }
    }
    const { event, error } = done.failure
    log.error(
      {
        err: error,
        eventId: event.id,
        position: formatPosition(event.position),
        stream: event.streamName,
        type: event.type,
        attempts: attempts + 1,
      },
      'event parked: the projector failed on it every attempt; it goes on with the events after it',
    )
    return { checkpoint: done.checkpoint, rest: batch.slice(batch.indexOf(event) + 1) }
  }

  /** Waits between retries; returns at once when the engine stops. */
  private async pause(ms: number): Promise<void> {
    await sleep(ms, undefined, { signal: this.stopping.signal }).catch(() => {})
  }

  private status(p: Projector, checkpoint: Position): ProjectorStatus {
    const previous = this.state.get(p.name)?.status
    return {
      name: p.name,
      version: p.version,
      checkpoint,
      lastBatchAt: null,
      eventsApplied: previous?.eventsApplied ?? 0,
    }
  }

  statuses(): ProjectorStatus[] {
    return [...this.state.values()].map((s) => s.status)
  }

  /** Resolves when an in-process projector moves; cross-process waiters also poll. */
  onCheckpoint(listener: (name: string) => void): () => void {
    this.events.on('checkpoint', listener)
    return () => this.events.off('checkpoint', listener)
  }

  /** True once every named projector has passed `target` in this process's view. */
  reached(names: readonly string[], target: Position): boolean {
    return names.every((n) => {
      const s = this.state.get(n)
      return s !== undefined && comparePositions(s.status.checkpoint, target) >= 0
    })
  }

  async stop(): Promise<void> {
    this.stopped = true
    this.stopping.abort()
    for (const s of this.state.values()) await s.subscription?.close()
    await Promise.allSettled(this.loops)
  }
}
