import { sql } from 'kysely'
import { comparePositions, type Position, START } from '../../adapters/event-store.ts'
import { loadCheckpoint, type ProjectionTransaction } from '../engine.ts'
import { advance, type BuildState, type RebuildOptions, reload, type ShadowDeps } from './build.ts'
import { asOwner, whileLiveBatchesWait } from './live-lock.ts'
import { id, TENANTS } from './shadow.ts'

/*
 * Verify: the shadow, brought to exactly the live checkpoint while the live projector waits, compared with the
 * live tables row by row (as multisets of rows, generated columns left out).
 */

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
 * Holding the live projector's batch lock, brings the built shadow to exactly the live checkpoint and compares
 * every table row by row.
 */
export async function compareWithLive(
  deps: ShadowDeps,
  s: BuildState,
  options: RebuildOptions & { maxDifferences?: number },
): Promise<VerifyResult> {
  const p = s.p
  const maxDifferences = options.maxDifferences ?? 50
  return whileLiveBatchesWait(deps.db, p, async (trx) => {
    const live = (await loadCheckpoint(trx, p, { create: false })) ?? START
    await reload(trx, s)
    if (comparePositions(s.position, live) > 0) {
      throw new Error(`${p.name}: the live checkpoint (${live.sequence}) is behind the rebuild (${s.position.sequence})`)
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
  })
}
