import { sql } from 'kysely'
import type { Position } from '../../adapters/event-store.ts'
import { forgetParked } from '../../adapters/parked-events.ts'
import type { AnyDb } from '../../adapters/postgres.ts'
import type { ProjectionTransaction, Projector } from '../engine.ts'
import { advance, type BuildState, type RebuildOptions, reload, type ShadowDeps } from './build.ts'
import { asOwner, whileLiveBatchesWait } from './live-lock.ts'
import { CHECKPOINTS, dropShadow, id, quoteIdent, shadowSchemaOf } from './shadow.ts'

/*
 * The swap, in one transaction: it stops the live projector's batches (their advisory lock), applies the last
 * events up to the live checkpoint, moves the live tables out, the shadow tables in and the checkpoint over.
 * Readers wait a moment for the table locks and then read the new tables; none sees a missing or half-built
 * table. A completed swap forgets the projector's parked events: the new tables hold them all.
 */

/**
 * Swaps a built shadow in, with the checkpoint, in one transaction: first applies the events up to `target`
 * (the live checkpoint, read again in the transaction) while the live projector waits. Drops the old tables and
 * the shadow schema afterwards.
 */
export async function swapIn(
  deps: ShadowDeps,
  s: BuildState,
  options: RebuildOptions,
  target: (db: AnyDb | ProjectionTransaction) => Promise<Position>,
): Promise<void> {
  const p = s.p
  const stamp = new Date()
    .toISOString()
    .replace(/[^0-9]/g, '')
    .slice(0, 14)
  const retired = `retired_${shadowSchemaOf(p).slice('rebuild_'.length)}_${stamp}`
  await whileLiveBatchesWait(deps.db, p, async (trx) => {
    // Re-read in this transaction: a failed attempt rolled back the batches it applied.
    await reload(trx, s)
    // The last events up to the live checkpoint, applied while the live projector waits.
    const until = await target(trx)
    await advance(deps, s, { ...options, trx, until, maxBatches: 100, phase: 'swap' }, until)
    await asOwner(trx)
    await swapTables(trx, p, s.schema, retired)
    await sql`delete from ${id(p.schema, CHECKPOINTS)} where name = ${p.name}`.execute(trx)
    await sql`insert into ${id(p.schema, CHECKPOINTS)} (name, version, commit_position, prepare_position, status, updated_at)
              values (${p.name}, ${p.version}, ${s.position.transactionId.toString()}::xid8, ${s.position.sequence.toString()}, 'live', now())`.execute(
      trx,
    )
    await forgetParked(trx, 'projector', p.name)
  })
  await sql`drop schema if exists ${id(retired)} cascade`.execute(deps.db)
  await dropShadow(deps.db, p)
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
