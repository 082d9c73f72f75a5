import { comparePositions, type Position, START } from '../adapters/event-store.ts'
import type { AnyDb } from '../adapters/postgres.ts'
import { loadCheckpoint, otherVersion, type ProjectionTransaction, type Projector } from './engine.ts'
import { projectors as readModels } from './index.ts'
import { realtimeProjector } from './realtime.ts'
import { buildTo, type RebuildDeps, type RebuildOptions, shadowDepsOf, startBuild } from './rebuild/build.ts'
import { dropShadow, finishShadow } from './rebuild/shadow.ts'
import { swapIn } from './rebuild/swap.ts'
import { compareWithLive, type VerifyResult } from './rebuild/verify.ts'

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
 * A projector with a bulk build (messages) builds an empty shadow in memory and by COPY, without row-level security
 * and secondary indexes, which come back once at the end; the others (and a resumed bulk build) apply their batches.
 *
 * One job a file: rebuild/shadow.ts (the shadow schema: copies of the live tables' DDL, what a bulk build puts off),
 * rebuild/build.ts (applying the events to it: in bulk, or in parallel batches), rebuild/bulk.ts (a bulk build's
 * port and its COPY writer), rebuild/messages-bulk.ts (the messages read model's bulk build), rebuild/live-lock.ts
 * (holding the live projector), rebuild/swap.ts (the swap), rebuild/verify.ts (the diff); this file puts them in
 * order. Each projector's rebuild works in its schema's database (RebuildDeps); its swap is one transaction there.
 */

export {
  PoisonEventError,
  partitionOf,
  type RebuildDeps,
  type RebuildOptions,
  type RebuildProgress,
} from './rebuild/build.ts'
export { dropShadow, prepareShadow, shadowSchemaOf } from './rebuild/shadow.ts'
export type { RowDifference, VerifyResult } from './rebuild/verify.ts'

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
  const on = shadowDepsOf(deps, p)
  const s = await startBuild(on, p, options)
  const until = options.until
  await buildTo(on, s, options, until ? async () => until : undefined)
  await finishShadow(on.db, s.schema)
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
  const on = shadowDepsOf(deps, p)
  const s = await startBuild(on, p, options)
  const resumedFrom = comparePositions(s.start, START) > 0 ? s.start : null
  // The shadow follows the live checkpoint, never passing it: the swap then hands over exactly where the live
  // projector stood, and it goes on from there (nothing applied twice, nothing a projector with effects
  // outside its tables, like the realtime fan-out, would skip). No live checkpoint: up to the head.
  const target = async (db: AnyDb | ProjectionTransaction = on.db) =>
    (await loadCheckpoint(db, p, { create: false, anyVersion: true })) ?? on.store.headPosition()
  await buildTo(on, s, options, () => target())
  await finishShadow(on.db, s.schema)
  await swapIn(on, s, options, target)
  return { name: p.name, version: p.version, events: s.events, position: s.position, resumedFrom, ms: Date.now() - started }
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
  const on = shadowDepsOf(deps, p)
  const other = await otherVersion(on.db, p)
  if (other !== null) throw new Error(`${p.name}: the live tables hold v${other}, not v${p.version}: nothing to compare with`)
  const s = await startBuild(on, p, options)
  // Never past the live checkpoint: the diff compares both at exactly that position.
  await buildTo(on, s, options, async () => (await loadCheckpoint(on.db, p, { create: false })) ?? START)
  const result = await compareWithLive(on, s, options)
  if (!options.keep) await dropShadow(on.db, p)
  return result
}

// --- what a rebuild covers

/**
 * Every projector rebuilds and verify cover, in the order they run: the read models, then the fan-out's audience
 * tables, rebuilt without an outbox: a rebuild delivers nothing (the user streams hold what was delivered, and the
 * swap hands over at the live checkpoint, where the live fan-out goes on delivering).
 */
export const rebuildableProjectors = (): readonly Projector[] => [...readModels, realtimeProjector()]
