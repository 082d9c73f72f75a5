import { availableParallelism } from 'node:os'
import { sql } from 'kysely'
import type pg from 'pg'
import {
  comparePositions,
  type EventStore,
  formatPosition,
  type Position,
  type RecordedEvent,
  START,
} from '../../adapters/event-store.ts'
import { errorText } from '../../adapters/parked-events.ts'
import type { AnyDb, PgPool } from '../../adapters/postgres.ts'
import { isTransient } from '../../adapters/transient.ts'
import {
  applyBatch,
  applyBatchIn,
  applyUntilFailure,
  CheckpointMovedError,
  handles,
  loadCheckpoint,
  type ProjectionTransaction,
  type Projector,
  readCheckpoints,
} from '../engine.ts'
import { type BulkBuild, type BulkBuildable, type BulkOp, writeBulk } from './bulk.ts'
import { CHECKPOINTS, deferForBulk, finishShadow, id, prepareShadow, quoteIdent, restoreForBatches, TENANTS } from './shadow.ts'

/*
 * The build: applies the events, from the shadow's checkpoint, to the shadow tables. From an empty shadow, a
 * projector with a bulk build (bulk.ts) folds them in memory and writes by COPY, given a pool for it; otherwise the
 * bulk of it runs with one reader and (tenant tables) one writer per core, each with its own checkpoint. The
 * catch-up passes that follow, and the last events applied inside a swap's or verify's transaction, run with one
 * writer and the projector's own batches.
 *
 * A rebuild applies every event. Where the live projector parks an event it keeps failing on, a rebuild stops
 * on it, naming it (PoisonEventError): tables rebuilt without it would pass for complete, and a swap would hand
 * the live projector a read model nobody knows an event is missing from.
 */

export type RebuildProgress = {
  readonly projector: string
  readonly phase: 'build' | 'catch-up' | 'swap' | 'verify'
  /** Events read by this run (every type: others only move the checkpoint). */
  readonly events: number
  readonly position: Position
  /** Where this run started (a resumed rebuild starts past 0). */
  readonly start: Position
  readonly head: Position
}

export type RebuildOptions = {
  readonly batchSize?: number
  /** Drop an existing shadow and start again from 0. */
  readonly restart?: boolean
  readonly onProgress?: (p: RebuildProgress) => void
  /** Milliseconds between progress reports (a report also follows the last batch). */
  readonly progressEveryMs?: number
  /**
   * Writers of the initial build, each applying the events of a share of the tenants on its own connection
   * (tenant-schema projectors only: row-level security confines each apply to one tenant, so tenants are
   * independent). Default: the machine's cores, at most 4; 1 for control-schema projectors.
   */
  readonly parallel?: number
}

/**
 * What rebuilds work with: the event store, and the database of each schema's read models: one for both
 * (`db`), or each its own (`dbFor`: the control and tenant schemas may live in two databases). A pool on the same
 * database and login (`pool`, `poolFor`) gives raw connections for COPY: without one, a projector that can build
 * in bulk builds batch by batch like the others.
 */
export type RebuildDeps =
  | { readonly store: EventStore; readonly db: AnyDb; readonly pool?: PgPool }
  | {
      readonly store: EventStore
      readonly dbFor: (schema: Projector['schema']) => AnyDb
      readonly poolFor?: (schema: Projector['schema']) => PgPool | undefined
    }

/** One projector's rebuild: the event store and its schema's database. */
export type ShadowDeps = { readonly store: EventStore; readonly db: AnyDb; readonly pool: PgPool | undefined }

export const shadowDepsOf = (deps: RebuildDeps, p: Projector): ShadowDeps =>
  'dbFor' in deps
    ? { store: deps.store, db: deps.dbFor(p.schema), pool: deps.poolFor?.(p.schema) }
    : { store: deps.store, db: deps.db, pool: deps.pool }

/** Reads ahead one batch while the previous one is applied. */
function reader(store: EventStore, batchSize: number) {
  type Read = { events: RecordedEvent[] } | { error: unknown }
  let pending: { from: Position; read: Promise<Read> } | null = null
  const start = (from: Position) => {
    pending = {
      from,
      read: store.readAll({ from, maxCount: batchSize }).then(
        (events) => ({ events }),
        (error: unknown) => ({ error }),
      ),
    }
  }
  return {
    async next(from: Position, prefetch: boolean): Promise<RecordedEvent[]> {
      if (!pending || comparePositions(pending.from, from) !== 0) start(from)
      const got = await pending!.read
      pending = null
      if ('error' in got) throw got.error
      const last = got.events[got.events.length - 1]
      if (prefetch && last && got.events.length === batchSize) start(last.position)
      return got.events
    },
  }
}

export type BuildState = {
  readonly p: Projector
  readonly schema: string
  start: Position
  position: Position
  events: number
  tenants: Set<string>
  lastReport: number
}

const shadowTarget = (s: { schema: string }) => ({ schema: s.schema, checkpointTable: `${s.schema}.${CHECKPOINTS}` })

/** The projector fails on an event: the rebuild stops there, and a rerun resumes from the shadow's checkpoint. */
export class PoisonEventError extends Error {
  override readonly name = 'PoisonEventError'
  readonly event: RecordedEvent
  constructor(p: Projector, event: RecordedEvent, cause: unknown) {
    super(
      `${p.name} v${p.version} fails on event ${event.id} (${event.type} at ${formatPosition(event.position)}, ` +
        `${event.streamName} revision ${event.revision}): ${errorText(cause)}. ` +
        'A rebuild applies every event: fix the projector, then run the rebuild again.',
      { cause },
    )
    this.event = event
  }
}

/**
 * Applies a batch to the shadow as `writer` (the projector, or one of its parallel writers). When the batch fails
 * in the projector's code, it is applied again event by event to name the event at fault.
 */
async function applyToShadow(
  deps: ShadowDeps,
  s: BuildState,
  writer: Projector,
  from: Position,
  batch: readonly RecordedEvent[],
  trx?: ProjectionTransaction,
): Promise<Position> {
  const target = shadowTarget(s)
  try {
    if (!trx) return await applyBatch(deps.db, writer, from, batch, target)
    // Inside the swap's transaction: a savepoint keeps the events before a failing batch for the search below.
    await sql`savepoint shadow_batch`.execute(trx)
    const to = await applyBatchIn(trx, writer, from, batch, target)
    await sql`release savepoint shadow_batch`.execute(trx)
    return to
  } catch (e) {
    if (e instanceof CheckpointMovedError || isTransient(e)) throw e
    if (trx) await sql`rollback to savepoint shadow_batch`.execute(trx)
  }
  const search = (t: ProjectionTransaction) => applyUntilFailure(t, writer, from, batch, target)
  const { checkpoint, failure } = trx ? await search(trx) : await deps.db.transaction().execute(search)
  if (failure) throw new PoisonEventError(s.p, failure.event, failure.error)
  return checkpoint
}

/** Remembers the tenants a shadow holds rows of: a diff under forced row-level security looks at each. */
async function noteTenants(db: AnyDb | ProjectionTransaction, s: BuildState, batch: readonly RecordedEvent[]): Promise<void> {
  const fresh = new Set<string>()
  for (const e of batch) {
    const t = e.metadata.tenantId
    if (t && !s.tenants.has(t) && handles(s.p, e.type)) fresh.add(t)
  }
  if (fresh.size === 0) return
  await sql`insert into ${id(s.schema, TENANTS)} select unnest(${[...fresh]}::uuid[]) on conflict do nothing`.execute(db)
  for (const t of fresh) s.tenants.add(t)
}

/**
 * Applies events to the shadow until `until` (inclusive) or, without it, until the store has nothing newer;
 * in its own transactions per batch, or inside `trx`.
 */
export async function advance(
  deps: ShadowDeps,
  s: BuildState,
  options: RebuildOptions & {
    until?: Position | null
    trx?: ProjectionTransaction
    maxBatches?: number
    phase: RebuildProgress['phase']
  },
  head: Position,
): Promise<void> {
  const read = reader(deps.store, options.batchSize ?? 2_000)
  const until = options.until ?? null
  for (let n = 0; n < (options.maxBatches ?? Number.POSITIVE_INFINITY); n++) {
    if (until !== null && comparePositions(s.position, until) >= 0) break
    let batch = await read.next(s.position, !options.trx)
    if (until) batch = batch.filter((e) => comparePositions(e.position, until) <= 0)
    if (batch.length === 0) break
    await noteTenants(options.trx ?? deps.db, s, batch)
    s.position = await applyToShadow(deps, s, s.p, s.position, batch, options.trx)
    s.events += batch.length
    report(s, options, head, false)
  }
  report(s, options, head, true)
}

const PART = /^(.*)#(\d+)\/(\d+)$/
const partName = (p: Projector, k: number, of: number) => `${p.name}#${k}/${of}`

/** FNV-1a: which of `of` writers applies a tenant's events. */
export const partitionOf = (tenantId: string | null, of: number): number => {
  if (tenantId === null || of <= 1) return 0
  let h = 2_166_136_261
  for (let i = 0; i < tenantId.length; i++) h = Math.imul(h ^ tenantId.charCodeAt(i), 16_777_619)
  return (h >>> 0) % of
}

/** Each writer's checkpoint, as a parallel pass left them (null: none in progress). */
async function loadParts(db: AnyDb, s: BuildState): Promise<Position[] | null> {
  const rows = await readCheckpoints(db, `${s.schema}.${CHECKPOINTS}`, { name: s.p.name, version: s.p.version, parts: true })
  const parts: Position[] = []
  for (const r of rows) {
    const m = PART.exec(r.name)
    if (!m || m[1] !== s.p.name || Number(m[3]) !== rows.length) throw new Error(`${s.schema}: unexpected checkpoint ${r.name}`)
    parts[Number(m[2])] = r.position
  }
  return parts.length ? parts : null
}

/**
 * One pass of the build with `of` writers: a single reader hands each writer the events of its tenants; each
 * writer applies them on its own connection with its own checkpoint (so a killed pass resumes per writer). At
 * the end the writers' checkpoints fold back into the shadow's one checkpoint, in one transaction.
 */
async function advanceParallel(
  deps: ShadowDeps,
  s: BuildState,
  of: number,
  options: RebuildOptions & { until: Position; phase: RebuildProgress['phase'] },
  head: Position,
): Promise<void> {
  let parts = await loadParts(deps.db, s)
  if (!parts) {
    parts = Array.from({ length: of }, () => s.position)
    for (let k = 0; k < of; k++) {
      await sql`insert into ${id(s.schema, CHECKPOINTS)} (name, version, commit_position, prepare_position, status)
                values (${partName(s.p, k, of)}, ${s.p.version}, ${s.position.transactionId.toString()}::xid8, ${s.position.sequence.toString()}, 'building')`.execute(
        deps.db,
      )
    }
  }
  const writers = parts.map((_, k) => ({ ...s.p, name: partName(s.p, k, parts.length) }))
  const batchSize = options.batchSize ?? 2_000
  const read = reader(deps.store, batchSize)
  let position = parts.reduce((a, b) => (comparePositions(a, b) <= 0 ? a : b))
  const until = options.until
  while (comparePositions(position, until) < 0) {
    const batch = (await read.next(position, true)).filter((e) => comparePositions(e.position, until) <= 0)
    if (batch.length === 0) break
    await noteTenants(deps.db, s, batch)
    const shares = writers.map(() => [] as RecordedEvent[])
    for (const e of batch) {
      const k = partitionOf(e.metadata.tenantId, writers.length)
      if (comparePositions(e.position, parts[k]!) > 0) shares[k]!.push(e)
    }
    await Promise.all(
      writers.map(async (w, k) => {
        if (shares[k]!.length) parts[k] = await applyToShadow(deps, s, w, parts[k]!, shares[k]!)
      }),
    )
    position = batch[batch.length - 1]!.position
    // Writers with nothing in this batch have seen it all the same: move them too, so a resume starts here.
    const idle = writers.filter((_, k) => comparePositions(parts[k]!, position) < 0).map((w) => w.name)
    if (idle.length) {
      await sql`update ${id(s.schema, CHECKPOINTS)}
                   set commit_position = ${position.transactionId.toString()}::xid8, prepare_position = ${position.sequence.toString()}
                 where version = ${s.p.version} and name = any(${idle}::text[])`.execute(deps.db)
      for (const [k, w] of writers.entries()) if (idle.includes(w.name)) parts[k] = position
    }
    s.position = position
    s.events += batch.length
    report(s, options, head, false)
  }
  const done = [position, ...parts].reduce((a, b) => (comparePositions(a, b) >= 0 ? a : b))
  await deps.db.transaction().execute(async (trx) => {
    await sql`delete from ${id(s.schema, CHECKPOINTS)} where version = ${s.p.version} and name like ${`${s.p.name}#%`}`.execute(
      trx,
    )
    await sql`update ${id(s.schema, CHECKPOINTS)}
                 set commit_position = ${done.transactionId.toString()}::xid8, prepare_position = ${done.sequence.toString()}, updated_at = now()
               where name = ${s.p.name} and version = ${s.p.version}`.execute(trx)
  })
  s.position = done
  report(s, options, head, true)
}

/** Past this many rows held in memory, a bulk build hands over and the rest goes batch by batch. */
const BULK_MAX_ROWS = 4_000_000
/** Batches folded per bulk write: a row changed within one write is written once, by COPY, instead of updated. */
const BATCHES_PER_WRITE = 5

/**
 * The bulk pass, from an empty shadow: the projector folds the events in memory (bulk.ts); every few batches the
 * changes go in with COPY, in one transaction with the checkpoint and the tenants, while the next batches are
 * read and folded. Returns false when it stopped early (an event the fold cannot apply, or too many rows): the
 * caller goes on batch by batch from the checkpoint, which names a poison event exactly.
 */
async function advanceBulk(
  deps: ShadowDeps & { pool: PgPool },
  s: BuildState,
  build: BulkBuild,
  options: RebuildOptions & { until: Position; phase: RebuildProgress['phase'] },
  head: Position,
): Promise<boolean> {
  await deferForBulk(deps.db, s.schema, s.p.tables)
  const batchSize = options.batchSize ?? 2_000
  const read = reader(deps.store, batchSize)
  const client = await deps.pool.connect()
  let writing: Promise<void> = Promise.resolve()
  // What the last write left in the checkpoint, and what was folded since.
  let written = s.position
  let tenants: string[] = []
  let held = 0
  const write = async () => {
    if (held === 0) return
    const ops = build.take()
    const [from, to, fresh] = [written, s.position, tenants]
    ;[written, tenants, held] = [s.position, [], 0]
    // One write in flight: the next batches are read and folded meanwhile.
    await writing
    writing = writeBatch(client, s, ops, fresh, from, to)
    writing.catch(() => {})
  }
  let done = true
  try {
    while (comparePositions(s.position, options.until) < 0) {
      const batch = (await read.next(s.position, true)).filter((e) => comparePositions(e.position, options.until) <= 0)
      if (batch.length === 0) break
      const events = batch.filter((e) => handles(s.p, e.type))
      try {
        build.apply(events)
      } catch {
        // Held rows are now half-applied: they are dropped, and the batches take over from the last write.
        done = false
        break
      }
      for (const e of events) {
        const t = e.metadata.tenantId
        if (t && !s.tenants.has(t)) {
          s.tenants.add(t)
          tenants.push(t)
        }
      }
      s.position = batch[batch.length - 1]!.position
      s.events += batch.length
      held += batch.length
      if (held >= BATCHES_PER_WRITE * batchSize) await write()
      report(s, options, head, false)
      if (build.size > BULK_MAX_ROWS) {
        await write()
        done = false
        break
      }
    }
    if (done) await write()
    await writing
  } finally {
    client.release()
  }
  if (!done) await reload(deps.db, s)
  report(s, options, head, true)
  return done
}

/** One bulk write: the changes, the tenants and the checkpoint (from where the previous write left it), in one transaction. */
async function writeBatch(
  client: pg.PoolClient,
  s: BuildState,
  ops: readonly BulkOp[],
  tenants: readonly string[],
  from: Position,
  to: Position,
): Promise<void> {
  await client.query('begin')
  try {
    // A crash loses the last writes, and their checkpoint with them: the build resumes before them.
    await client.query('set local synchronous_commit = off')
    await writeBulk(client, s.schema, ops)
    if (tenants.length) {
      await client.query(`insert into ${quoteIdent(s.schema)}.${TENANTS} select unnest($1::uuid[]) on conflict do nothing`, [
        tenants,
      ])
    }
    const moved = await client.query(
      `update ${quoteIdent(s.schema)}.${CHECKPOINTS}
          set commit_position = $1::text::xid8, prepare_position = $2, updated_at = now()
        where name = $3 and version = $4 and commit_position = $5::text::xid8 and prepare_position = $6`,
      [
        to.transactionId.toString(),
        to.sequence.toString(),
        s.p.name,
        s.p.version,
        from.transactionId.toString(),
        from.sequence.toString(),
      ],
    )
    if (moved.rowCount !== 1) throw new CheckpointMovedError(`${s.schema}: the checkpoint moved under the bulk build`)
    await client.query('commit')
  } catch (e) {
    await client.query('rollback').catch(() => {})
    throw e
  }
}

function report(
  s: BuildState,
  options: RebuildOptions & { phase: RebuildProgress['phase'] },
  head: Position,
  force: boolean,
): void {
  const now = Date.now()
  if (!options.onProgress || (!force && now - s.lastReport < (options.progressEveryMs ?? 500))) return
  s.lastReport = now
  options.onProgress({
    projector: s.p.name,
    phase: options.phase,
    events: s.events,
    position: s.position,
    start: s.start,
    head: comparePositions(head, s.position) > 0 ? head : s.position,
  })
}

export async function startBuild(deps: ShadowDeps, p: Projector, options: RebuildOptions): Promise<BuildState> {
  const shadow = await prepareShadow(deps.db, p, options)
  const { rows } = await sql<{ tenant_id: string }>`select tenant_id from ${id(shadow.schema, TENANTS)}`.execute(deps.db)
  const s: BuildState = {
    p,
    schema: shadow.schema,
    start: shadow.from,
    position: shadow.from,
    events: 0,
    tenants: new Set(rows.map((r) => r.tenant_id)),
    lastReport: 0,
  }
  // A parallel pass was killed: the writers' checkpoints say how far it got (the slowest one, to be exact).
  const parts = await loadParts(deps.db, s)
  if (parts) s.start = parts.reduce((a, b) => (comparePositions(a, b) <= 0 ? a : b))
  return s
}

/** Builds from the shadow's checkpoint to the target (the head), then again to the new target, until little is left. */
export async function buildTo(
  deps: ShadowDeps,
  s: BuildState,
  options: RebuildOptions,
  target: () => Promise<Position> = () => deps.store.headPosition(),
): Promise<void> {
  const batchSize = options.batchSize ?? 2_000
  const of = s.p.schema === 'tenant' ? Math.max(1, options.parallel ?? Math.min(4, availableParallelism())) : 1
  const bulk = (s.p as Projector & BulkBuildable).bulk
  for (let pass = 0; pass < 20; pass++) {
    const head = await target()
    const before = s.events
    const phase = pass === 0 ? 'build' : 'catch-up'
    if (pass === 0 && bulk && deps.pool && comparePositions(s.position, START) === 0 && !(await loadParts(deps.db, s))) {
      // From nothing, in memory and by COPY; then the indexes once, and the catch-up passes as the live batches.
      const { pool } = deps
      const done = await advanceBulk({ ...deps, pool }, s, bulk(), { ...options, until: head, phase }, head)
      await (done ? finishShadow(deps.db, s.schema) : restoreForBatches(deps.db, s.schema))
      if (done && s.events - before < batchSize) return
      if (done) continue
    }
    // A bulk build killed before: what it put off, back first.
    await restoreForBatches(deps.db, s.schema)
    // The bulk of the work, in parallel; the catch-up passes that follow are short.
    if (pass === 0 && (of > 1 || (await loadParts(deps.db, s))))
      await advanceParallel(deps, s, of, { ...options, until: head, phase }, head)
    else await advance(deps, s, { ...options, until: head, phase }, head)
    if (s.events - before < batchSize) return
  }
}

/** After a rolled-back attempt: where the shadow really stands, and which tenants it really holds. */
export async function reload(trx: ProjectionTransaction | AnyDb, s: BuildState): Promise<void> {
  s.position = (await loadCheckpoint(trx, s.p, { create: false, table: `${s.schema}.${CHECKPOINTS}` })) ?? START
  const { rows } = await sql<{ tenant_id: string }>`select tenant_id from ${id(s.schema, TENANTS)}`.execute(trx)
  s.tenants = new Set(rows.map((r) => r.tenant_id))
}
