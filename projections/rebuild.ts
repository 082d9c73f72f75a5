import { availableParallelism } from 'node:os'
import { sql } from 'kysely'
import {
  comparePositions,
  type EventStore,
  formatPosition,
  type Position,
  type RecordedEvent,
  START,
} from '../adapters/event-store.ts'
import { errorText, forgetParked } from '../adapters/parked-events.ts'
import type { AnyDb } from '../adapters/postgres.ts'
import { isTransient } from '../adapters/transient.ts'
import { ROLES } from '../migrations/shared.ts'
import {
  applyBatch,
  applyBatchIn,
  applyUntilFailure,
  batchLockKey,
  CheckpointMovedError,
  otherVersion,
  type ProjectionTransaction,
  type Projector,
} from './engine.ts'
import { projectors as readModels } from './index.ts'
import { realtimeProjector } from './realtime.ts'

/*
 * Rebuilds. A projector's version builds into shadow copies of its tables, in a schema of its own
 * (`rebuild_<name>_v<version>`), from position 0, while the live tables keep serving. The shadow checkpoint lives
 * in that schema too, so a killed rebuild resumes where it stopped. When the shadow has (nearly) caught up, one
 * transaction stops the live projector's batches (their advisory lock), applies the last events, moves the live
 * tables out, the shadow tables in and the checkpoint over. Readers wait a moment for the table locks and then
 * read the new tables; none sees a missing or half-built table.
 *
 * `verify` builds the same shadow and diffs it, row by row, with the live tables at the live checkpoint.
 *
 * A rebuild applies every event. Where the live projector parks an event it keeps failing on, a rebuild stops
 * on it, naming it (PoisonEventError): tables rebuilt without it would pass for complete, and a swap would hand
 * the live projector a read model nobody knows an event is missing from. A completed swap forgets the
 * projector's parked events: the new tables hold them all.
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

export type RebuildDeps = { readonly store: EventStore; readonly db: AnyDb }

export const shadowSchemaOf = (p: Pick<Projector, 'name' | 'version'>): string =>
  `rebuild_${p.name.replace(/[^a-z0-9_]/gi, '_').toLowerCase()}_v${p.version}`

const CHECKPOINTS = 'projection_checkpoints'
const TENANTS = 'rebuild_tenants'
const DEFERRED = 'rebuild_deferred_indexes'

const id = (...parts: string[]) => sql.id(...parts)
const quoteIdent = (s: string) => `"${s.replaceAll('"', '""')}"`

type ShadowState = { schema: string; from: Position; resumed: boolean }

async function schemaExists(db: AnyDb, schema: string): Promise<boolean> {
  const { rows } = await sql<{ n: number }>`select count(*)::int as n from pg_namespace where nspname = ${schema}`.execute(db)
  return rows[0]!.n > 0
}

async function readCheckpoint(db: AnyDb | ProjectionTransaction, table: string, p: Projector): Promise<Position | null> {
  const { rows } = await sql<{ commit: string; prepare: string }>`
    select commit_position::text as commit, prepare_position::text as prepare from ${sql.table(table)}
     where name = ${p.name} and version = ${p.version}`.execute(db)
  const row = rows[0]
  return row ? { commit: BigInt(row.commit), prepare: BigInt(row.prepare) } : null
}

/** The live table's indexes, constraints, row-level security, policies and grants, recreated on its shadow copy. */
async function copyTable(
  trx: ProjectionTransaction,
  live: string,
  shadow: string,
  table: string,
  deferred: string[],
): Promise<void> {
  const source = `${quoteIdent(live)}.${quoteIdent(table)}`
  const { rows: found } = await sql<{ oid: number; rls: boolean; force: boolean }>`
    select c.oid::int as oid, c.relrowsecurity as rls, c.relforcerowsecurity as force
      from pg_class c join pg_namespace n on n.oid = c.relnamespace
     where n.nspname = ${live} and c.relname = ${table} and c.relkind in ('r', 'p')`.execute(trx)
  const rel = found[0]
  if (!rel) throw new Error(`table ${live}.${table} does not exist (is the projector's \`tables\` list right?)`)
  // Indexes are recreated by hand so they keep their live names: after the swap the schema looks as migrated.
  await sql`create table ${id(shadow, table)} (like ${id(live, table)} including all excluding indexes)`.execute(trx)
  const { rows: constraints } = await sql<{ name: string; def: string }>`
    select conname as name, pg_get_constraintdef(oid) as def from pg_constraint
     where conrelid = ${rel.oid}::oid and contype in ('p', 'u', 'x') order by conname`.execute(trx)
  for (const c of constraints) {
    await sql`alter table ${id(shadow, table)} add constraint ${id(c.name)} ${sql.raw(c.def)}`.execute(trx)
  }
  const { rows: indexes } = await sql<{ def: string; later: boolean }>`
    select pg_get_indexdef(i.indexrelid) as def, (am.amname <> 'btree' and not i.indisunique) as later
      from pg_index i join pg_class ic on ic.oid = i.indexrelid join pg_am am on am.oid = ic.relam
     where i.indrelid = ${rel.oid}::oid
       and not exists (select 1 from pg_constraint k where k.conindid = i.indexrelid and k.conrelid = i.indrelid)
     order by i.indexrelid`.execute(trx)
  for (const { def, later } of indexes) {
    const target = ` ON ${quoteIdent(shadow)}.${quoteIdent(table)} USING `
    const rewritten = def
      .replace(/ ON (ONLY )?\S+ USING /, target)
      .replace(/^CREATE (UNIQUE )?INDEX /, 'CREATE $1INDEX IF NOT EXISTS ')
    if (!rewritten.includes(target)) throw new Error(`cannot copy index of ${source}: ${def}`)
    // Search indexes (GIN, GiST, ...) cost much more kept up row by row than built once: the bulk build goes
    // without them; they are built before the shadow catches up and swaps (projectors never look rows up by them).
    if (later) deferred.push(rewritten)
    else await sql.raw(rewritten).execute(trx)
  }
  if (rel.rls) await sql`alter table ${id(shadow, table)} enable row level security`.execute(trx)
  if (rel.force) await sql`alter table ${id(shadow, table)} force row level security`.execute(trx)
  const { rows: policies } = await sql<{
    name: string
    permissive: string
    cmd: string
    roles: string[]
    qual: string | null
    check: string | null
  }>`
    select policyname as name, permissive, cmd, roles::text[] as roles, qual, with_check as check
      from pg_policies where schemaname = ${live} and tablename = ${table} order by policyname`.execute(trx)
  for (const p of policies) {
    const roles = p.roles.map((r) => (r === 'public' ? 'public' : quoteIdent(r))).join(', ')
    await sql
      .raw(
        `create policy ${quoteIdent(p.name)} on ${quoteIdent(shadow)}.${quoteIdent(table)} as ${p.permissive} for ${p.cmd} to ${roles}` +
          (p.qual ? ` using (${p.qual})` : '') +
          (p.check ? ` with check (${p.check})` : ''),
      )
      .execute(trx)
  }
  const { rows: grants } = await sql<{ grantee: string; privilege: string }>`
    select case when a.grantee = 0 then 'public' else a.grantee::regrole::text end as grantee, a.privilege_type as privilege
      from pg_class c, aclexplode(c.relacl) a
     where c.oid = ${rel.oid}::oid and a.grantee <> c.relowner`.execute(trx)
  for (const g of grants) {
    await sql.raw(`grant ${g.privilege} on ${quoteIdent(shadow)}.${quoteIdent(table)} to ${g.grantee}`).execute(trx)
  }
}

/**
 * The shadow schema of a projector version, created with empty copies of its tables and a checkpoint at 0, or
 * found as a previous run left it (resumed from its checkpoint).
 */
export async function prepareShadow(db: AnyDb, p: Projector, options: { restart?: boolean } = {}): Promise<ShadowState> {
  const schema = shadowSchemaOf(p)
  if (options.restart) await dropShadow(db, p)
  if (await schemaExists(db, schema)) {
    // The checkpoint row is written last: without it, a previous run died while preparing.
    const from = await readCheckpoint(db, `${schema}.${CHECKPOINTS}`, p).catch(() => null)
    const { rows } = await sql<{ n: number }>`
      select count(*)::int as n from pg_tables where schemaname = ${schema} and tablename = any(${[...p.tables]}::text[])`.execute(
      db,
    )
    if (from && rows[0]!.n === p.tables.length) return { schema, from, resumed: true }
    await dropShadow(db, p)
  }
  await db.transaction().execute(async (trx) => {
    await sql`create schema ${id(schema)}`.execute(trx)
    await sql`grant usage on schema ${id(schema)} to ${id(ROLES.reader)}, ${id(ROLES.projector)}`.execute(trx)
    const deferred: string[] = []
    for (const table of p.tables) await copyTable(trx, p.schema, schema, table, deferred)
    await sql`create table ${id(schema, DEFERRED)} (def text not null)`.execute(trx)
    for (const def of deferred) await sql`insert into ${id(schema, DEFERRED)} values (${def})`.execute(trx)
    await sql`create table ${id(schema, TENANTS)} (tenant_id uuid primary key)`.execute(trx)
    await sql`create table ${id(schema, CHECKPOINTS)} (like ${id(p.schema, CHECKPOINTS)} including all)`.execute(trx)
    await sql`grant select, insert, update, delete on ${id(schema, CHECKPOINTS)} to ${id(ROLES.projector)}`.execute(trx)
    await sql`insert into ${id(schema, CHECKPOINTS)} (name, version, commit_position, prepare_position, status)
              values (${p.name}, ${p.version}, '0'::xid8, 0, 'building')`.execute(trx)
  })
  return { schema, from: START, resumed: false }
}

export async function dropShadow(db: AnyDb, p: Pick<Projector, 'name' | 'version'>): Promise<void> {
  await sql`drop schema if exists ${id(shadowSchemaOf(p))} cascade`.execute(db)
}

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

type BuildState = {
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
  deps: RebuildDeps,
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
    if (t && !s.tenants.has(t) && s.p.eventTypes.has(e.type)) fresh.add(t)
  }
  if (fresh.size === 0) return
  await sql`insert into ${id(s.schema, TENANTS)} select unnest(${[...fresh]}::uuid[]) on conflict do nothing`.execute(db)
  for (const t of fresh) s.tenants.add(t)
}

/**
 * Applies events to the shadow until `until` (inclusive) or, without it, until the store has nothing newer;
 * in its own transactions per batch, or inside `trx`.
 */
async function advance(
  deps: RebuildDeps,
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

/** Builds the indexes the bulk build went without (once; a rerun finds none left). */
async function createDeferredIndexes(db: AnyDb, schema: string): Promise<void> {
  await db.transaction().execute(async (trx) => {
    const { rows } = await sql<{ def: string }>`select def from ${id(schema, DEFERRED)}`.execute(trx)
    for (const { def } of rows) await sql.raw(def).execute(trx)
    await sql`delete from ${id(schema, DEFERRED)}`.execute(trx)
  })
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
  const { rows } = await sql<{ name: string; commit: string; prepare: string }>`
    select name, commit_position::text as commit, prepare_position::text as prepare from ${id(s.schema, CHECKPOINTS)}
     where version = ${s.p.version} and name like ${`${s.p.name}#%`}`.execute(db)
  const parts: Position[] = []
  for (const r of rows) {
    const m = PART.exec(r.name)
    if (!m || m[1] !== s.p.name || Number(m[3]) !== rows.length) throw new Error(`${s.schema}: unexpected checkpoint ${r.name}`)
    parts[Number(m[2])] = { commit: BigInt(r.commit), prepare: BigInt(r.prepare) }
  }
  return parts.length ? parts : null
}

/**
 * One pass of the build with `of` writers: a single reader hands each writer the events of its tenants; each
 * writer applies them on its own connection with its own checkpoint (so a killed pass resumes per writer). At
 * the end the writers' checkpoints fold back into the shadow's one checkpoint, in one transaction.
 */
async function advanceParallel(
  deps: RebuildDeps,
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
                values (${partName(s.p, k, of)}, ${s.p.version}, ${s.position.commit.toString()}::xid8, ${s.position.prepare.toString()}, 'building')`.execute(
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
                   set commit_position = ${position.commit.toString()}::xid8, prepare_position = ${position.prepare.toString()}
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
                 set commit_position = ${done.commit.toString()}::xid8, prepare_position = ${done.prepare.toString()}, updated_at = now()
               where name = ${s.p.name} and version = ${s.p.version}`.execute(trx)
  })
  s.position = done
  report(s, options, head, true)
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

async function startBuild(deps: RebuildDeps, p: Projector, options: RebuildOptions): Promise<BuildState> {
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
async function buildTo(
  deps: RebuildDeps,
  s: BuildState,
  options: RebuildOptions,
  target: () => Promise<Position> = () => deps.store.headPosition(),
): Promise<void> {
  const batchSize = options.batchSize ?? 2_000
  const of = s.p.schema === 'tenant' ? Math.max(1, options.parallel ?? Math.min(4, availableParallelism())) : 1
  for (let pass = 0; pass < 20; pass++) {
    const head = await target()
    const before = s.events
    const phase = pass === 0 ? 'build' : 'catch-up'
    // The bulk of the work, in parallel; the catch-up passes that follow are short.
    if (pass === 0 && (of > 1 || (await loadParts(deps.db, s))))
      await advanceParallel(deps, s, of, { ...options, until: head, phase }, head)
    else await advance(deps, s, { ...options, until: head, phase }, head)
    if (s.events - before < batchSize) return
  }
}

/** Where the live tables stand: the newest checkpoint of any version of this projector (null: none ever ran). */
async function liveCheckpoint(db: AnyDb | ProjectionTransaction, p: Projector): Promise<Position | null> {
  const { rows } = await sql<{ commit: string; prepare: string }>`
    select commit_position::text as commit, prepare_position::text as prepare from ${id(p.schema, CHECKPOINTS)}
     where name = ${p.name} order by commit_position desc, prepare_position desc limit 1`.execute(db)
  const row = rows[0]
  return row ? { commit: BigInt(row.commit), prepare: BigInt(row.prepare) } : null
}

/** Back to the connecting role and its search_path, after applyBatchIn switched them for the transaction. */
async function asOwner(trx: ProjectionTransaction): Promise<void> {
  await sql`set local role none`.execute(trx)
  await sql`set local search_path to default`.execute(trx)
  await sql`select set_config('app.tenant_id', '', true)`.execute(trx)
}

/** After a rolled-back attempt: where the shadow really stands, and which tenants it really holds. */
async function reload(trx: ProjectionTransaction, s: BuildState): Promise<void> {
  s.position = (await readCheckpoint(trx, `${s.schema}.${CHECKPOINTS}`, s.p)) ?? START
  const { rows } = await sql<{ tenant_id: string }>`select tenant_id from ${id(s.schema, TENANTS)}`.execute(trx)
  s.tenants = new Set(rows.map((r) => r.tenant_id))
}

/** One attempt of a transaction that waits for locks; retried when a lock wait times out or deadlocks. */
async function withLockRetries<T>(work: () => Promise<T>, attempts = 10): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await work()
    } catch (e) {
      const code = (e as { code?: string }).code
      if (attempt >= attempts || (code !== '55P03' && code !== '40P01')) throw e
      await new Promise((r) => setTimeout(r, 50 * attempt + Math.random() * 100))
    }
  }
}

/**
 * Builds a projector into its shadow tables (resuming one a previous run left) up to `until` or the head, and
 * leaves them there: for benchmarks and inspection. `rebuild` swaps them in, `verify` compares them.
 */
export async function buildShadow(
  deps: RebuildDeps,
  p: Projector,
  options: RebuildOptions & { until?: Position } = {},
): Promise<{ schema: string; events: number; position: Position; ms: number }> {
  const started = Date.now()
  const s = await startBuild(deps, p, options)
  const until = options.until
  await buildTo(deps, s, options, until ? async () => until : undefined)
  await createDeferredIndexes(deps.db, s.schema)
  return { schema: s.schema, events: s.events, position: s.position, ms: Date.now() - started }
}

export type RebuildResult = {
  readonly name: string
  readonly version: number
  readonly events: number
  readonly position: Position
  readonly resumedFrom: Position | null
  readonly ms: number
}

/**
 * Builds a projector version into its shadow tables and swaps them in, in one transaction, with the checkpoint.
 * Resumes a shadow a previous run left.
 */
export async function rebuild(deps: RebuildDeps, p: Projector, options: RebuildOptions = {}): Promise<RebuildResult> {
  const started = Date.now()
  const s = await startBuild(deps, p, options)
  const resumedFrom = comparePositions(s.start, START) > 0 ? s.start : null
  // The shadow follows the live checkpoint, never passing it: the swap then hands over exactly where the live
  // projector stood, and it goes on from there (nothing applied twice, nothing a projector with effects
  // outside its tables, like the realtime fan-out, would skip). No live checkpoint: up to the head.
  const target = async (db: AnyDb | ProjectionTransaction = deps.db) => (await liveCheckpoint(db, p)) ?? deps.store.headPosition()
  await buildTo(deps, s, options, () => target())
  await createDeferredIndexes(deps.db, s.schema)
  const stamp = new Date()
    .toISOString()
    .replace(/[^0-9]/g, '')
    .slice(0, 14)
  const retired = `retired_${shadowSchemaOf(p).slice('rebuild_'.length)}_${stamp}`
  await withLockRetries(() =>
    deps.db.transaction().execute(async (trx) => {
      await sql`set local lock_timeout = '3s'`.execute(trx)
      // Stops the live projector's batches: the one in flight commits first, the next waits for this transaction.
      await sql`select pg_advisory_xact_lock(hashtext(${batchLockKey(p.schema, p.name)}))`.execute(trx)
      // Re-read in this transaction: a failed attempt rolled back the batches it applied.
      await reload(trx, s)
      // The last events up to the live checkpoint, applied while the live projector waits.
      const until = await target(trx)
      await advance(deps, s, { ...options, trx, until, maxBatches: 100, phase: 'swap' }, until)
      await asOwner(trx)
      await swapTables(trx, p, s.schema, retired)
      await sql`delete from ${id(p.schema, CHECKPOINTS)} where name = ${p.name}`.execute(trx)
      await sql`insert into ${id(p.schema, CHECKPOINTS)} (name, version, commit_position, prepare_position, status, updated_at)
                values (${p.name}, ${p.version}, ${s.position.commit.toString()}::xid8, ${s.position.prepare.toString()}, 'live', now())`.execute(
        trx,
      )
      await forgetParked(trx, 'projector', p.name)
    }),
  )
  await sql`drop schema if exists ${id(retired)} cascade`.execute(deps.db)
  await dropShadow(deps.db, p)
  return { name: p.name, version: p.version, events: s.events, position: s.position, resumedFrom, ms: Date.now() - started }
}

/** Live tables out (into `retired`), shadow tables in; views over them are pointed at the new tables. */
async function swapTables(trx: ProjectionTransaction, p: Projector, shadow: string, retired: string): Promise<void> {
  const live = p.tables.map((t) => `${quoteIdent(p.schema)}.${quoteIdent(t)}`)
  const fresh = p.tables.map((t) => `${quoteIdent(shadow)}.${quoteIdent(t)}`)
  // Views keep pointing at the table they were created over: capture them, fully qualified, to recreate them.
  await sql`select set_config('search_path', 'pg_catalog', true)`.execute(trx)
  const { rows: views } = await sql<{ name: string; def: string }>`
    select distinct format('%I.%I', vn.nspname, v.relname) as name, pg_get_viewdef(v.oid) as def
      from pg_depend d
      join pg_rewrite r on r.oid = d.objid
      join pg_class v on v.oid = r.ev_class and v.relkind = 'v'
      join pg_namespace vn on vn.oid = v.relnamespace
      join pg_class t on t.oid = d.refobjid
      join pg_namespace tn on tn.oid = t.relnamespace
     where d.classid = 'pg_rewrite'::regclass and tn.nspname = ${p.schema} and t.relname = any(${[...p.tables]}::text[])
       and v.oid <> t.oid`.execute(trx)
  await sql.raw(`lock table ${[...live, ...fresh].join(', ')} in access exclusive mode`).execute(trx)
  await sql`create schema ${id(retired)}`.execute(trx)
  for (const t of p.tables) await sql`alter table ${id(p.schema, t)} set schema ${id(retired)}`.execute(trx)
  for (const t of p.tables) await sql`alter table ${id(shadow, t)} set schema ${id(p.schema)}`.execute(trx)
  for (const v of views) await sql.raw(`create or replace view ${v.name} as ${v.def}`).execute(trx)
  await sql`set local search_path to default`.execute(trx)
}

// --- verify

export type RowDifference = {
  readonly table: string
  readonly tenantId: string | null
  readonly key: Record<string, unknown>
  /** null: the row is missing on that side. */
  readonly live: Record<string, unknown> | null
  readonly rebuilt: Record<string, unknown> | null
}

export type VerifyResult = {
  readonly name: string
  readonly version: number
  readonly position: Position
  readonly rows: Record<string, number>
  readonly differences: readonly RowDifference[]
  /** True when more differences exist than were collected. */
  readonly truncated: boolean
}

type TableShape = { key: string[]; generated: string[]; rls: boolean }

async function tableShape(trx: ProjectionTransaction, schema: string, table: string): Promise<TableShape> {
  const { rows: key } = await sql<{ column: string }>`
    select a.attname as column from pg_index i
      join pg_class c on c.oid = i.indrelid join pg_namespace n on n.oid = c.relnamespace
      join lateral unnest(i.indkey) with ordinality k(attnum, ord) on true
      join pg_attribute a on a.attrelid = c.oid and a.attnum = k.attnum
     where n.nspname = ${schema} and c.relname = ${table} and i.indisprimary order by k.ord`.execute(trx)
  const { rows: generated } = await sql<{ column: string }>`
    select column_name as column from information_schema.columns
     where table_schema = ${schema} and table_name = ${table} and is_generated = 'ALWAYS'`.execute(trx)
  const { rows: rls } = await sql<{ rls: boolean }>`
    select c.relrowsecurity as rls from pg_class c join pg_namespace n on n.oid = c.relnamespace
     where n.nspname = ${schema} and c.relname = ${table}`.execute(trx)
  return { key: key.map((r) => r.column), generated: generated.map((r) => r.column), rls: rls[0]?.rls ?? false }
}

/** Whether the connecting role reads past row-level security (superuser or BYPASSRLS). */
async function bypassesRls(trx: ProjectionTransaction): Promise<boolean> {
  const { rows } = await sql<{ bypass: boolean }>`
    select rolsuper or rolbypassrls as bypass from pg_roles where rolname = current_user`.execute(trx)
  return rows[0]?.bypass ?? false
}

/** Rows on one side and not the other (as multisets), generated columns left out: they follow from the others. */
async function diffTable(
  trx: ProjectionTransaction,
  live: string,
  shadow: string,
  table: string,
  shape: TableShape,
  tenantId: string | null,
  limit: number,
): Promise<{ differences: RowDifference[]; truncated: boolean; rows: number }> {
  await sql`select set_config('app.tenant_id', ${tenantId ?? ''}, true)`.execute(trx)
  const where = (alias: string) => (tenantId ? sql` where ${sql.ref(`${alias}.tenant_id`)} = ${tenantId}` : sql``)
  const drop = sql`${shape.generated}::text[]`
  const { rows } = await sql<{ side: 'live' | 'rebuilt'; r: Record<string, unknown> }>`
    with l as (select to_jsonb(t) - ${drop} as r from ${id(live, table)} t${where('t')}),
         s as (select to_jsonb(t) - ${drop} as r from ${id(shadow, table)} t${where('t')})
    (select 'live' as side, r from (select r from l except all select r from s) x)
    union all
    (select 'rebuilt' as side, r from (select r from s except all select r from l) y)
    limit ${limit + 1}`.execute(trx)
  const { rows: count } = await sql<{ n: number }>`select count(*)::int as n from ${id(live, table)} t${where('t')}`.execute(trx)
  const keyOf = (r: Record<string, unknown>) => Object.fromEntries(shape.key.map((k) => [k, r[k]]))
  const byKey = new Map<
    string,
    { key: Record<string, unknown>; live: Record<string, unknown> | null; rebuilt: Record<string, unknown> | null }
  >()
  for (const row of rows.slice(0, limit)) {
    const key = keyOf(row.r)
    const k = JSON.stringify(key)
    const entry = byKey.get(k) ?? { key, live: null, rebuilt: null }
    entry[row.side] = row.r
    byKey.set(k, entry)
  }
  return {
    differences: [...byKey.values()].map((d) => ({ table, tenantId, ...d })),
    truncated: rows.length > limit,
    rows: count[0]!.n,
  }
}

/**
 * Builds the projector into its shadow, then, holding the live projector's batch lock, brings the shadow to
 * exactly the live checkpoint and compares every table row by row. The shadow is dropped afterwards unless kept.
 */
export async function verify(
  deps: RebuildDeps,
  p: Projector,
  options: RebuildOptions & { keep?: boolean; maxDifferences?: number } = {},
): Promise<VerifyResult> {
  const other = await otherVersion(deps.db, p)
  if (other !== null) throw new Error(`${p.name}: the live tables hold v${other}, not v${p.version}: nothing to compare with`)
  const s = await startBuild(deps, p, options)
  // Never past the live checkpoint: the diff compares both at exactly that position.
  await buildTo(deps, s, options, async () => (await readCheckpoint(deps.db, `${p.schema}.${CHECKPOINTS}`, p)) ?? START)
  const maxDifferences = options.maxDifferences ?? 50
  const result = await withLockRetries(() =>
    deps.db.transaction().execute(async (trx) => {
      await sql`set local lock_timeout = '3s'`.execute(trx)
      await sql`select pg_advisory_xact_lock(hashtext(${batchLockKey(p.schema, p.name)}))`.execute(trx)
      const live = (await readCheckpoint(trx, `${p.schema}.${CHECKPOINTS}`, p)) ?? START
      await reload(trx, s)
      if (comparePositions(s.position, live) > 0) {
        throw new Error(`${p.name}: the live checkpoint (${live.prepare}) is behind the rebuild (${s.position.prepare})`)
      }
      await advance(deps, s, { ...options, until: live, trx, phase: 'verify' }, live)
      await asOwner(trx)
      const bypass = await bypassesRls(trx)
      const { rows: tenantRows } = await sql<{ tenant_id: string }>`
        select tenant_id from ${id(s.schema, TENANTS)} order by tenant_id`.execute(trx)
      const differences: RowDifference[] = []
      const rows: Record<string, number> = {}
      let truncated = false
      for (const table of p.tables) {
        const shape = await tableShape(trx, p.schema, table)
        // Under forced row-level security a role that does not bypass it sees one tenant at a time.
        const scopes = shape.rls && !bypass ? tenantRows.map((r) => r.tenant_id) : [null]
        rows[table] = 0
        for (const tenantId of scopes) {
          if (differences.length >= maxDifferences) {
            truncated = true
            break
          }
          const d = await diffTable(trx, p.schema, s.schema, table, shape, tenantId, maxDifferences - differences.length)
          differences.push(...d.differences)
          truncated ||= d.truncated
          rows[table] += d.rows
        }
      }
      return { name: p.name, version: p.version, position: s.position, rows, differences, truncated }
    }),
  )
  if (!options.keep) await dropShadow(deps.db, p)
  return result
}

// --- what a rebuild covers

/**
 * Every projector rebuilds and verify cover, in the order they run: the read models, then the fan-out's audience
 * tables, rebuilt without an outbox: a rebuild delivers nothing (the user streams hold what was delivered, and the
 * swap hands over at the live checkpoint, where the live fan-out goes on delivering).
 */
export const rebuildableProjectors = (): readonly Projector[] => [...readModels, realtimeProjector()]
