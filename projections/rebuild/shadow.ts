import { sql } from 'kysely'
import { type Position, START } from '../../adapters/event-store.ts'
import type { AnyDb } from '../../adapters/postgres.ts'
import { ROLES } from '../../migrations/shared.ts'
import { loadCheckpoint, type ProjectionTransaction, type Projector } from '../engine.ts'

/*
 * The shadow schema of a rebuild (`rebuild_<name>_v<version>`): empty copies of the projector's live tables (their
 * indexes, constraints, row-level security, policies and grants), the tenants it holds rows of, the search indexes
 * the bulk build goes without, and its own checkpoint, so that a killed rebuild resumes where it stopped.
 */

export const shadowSchemaOf = (p: Pick<Projector, 'name' | 'version'>): string =>
  `rebuild_${p.name.replace(/[^a-z0-9_]/gi, '_').toLowerCase()}_v${p.version}`

export const CHECKPOINTS = 'projection_checkpoints'
export const TENANTS = 'rebuild_tenants'
const DEFERRED = 'rebuild_deferred_indexes'

export const id = (...parts: string[]) => sql.id(...parts)
export const quoteIdent = (s: string) => `"${s.replaceAll('"', '""')}"`

export type ShadowState = { schema: string; from: Position; resumed: boolean }

async function schemaExists(db: AnyDb, schema: string): Promise<boolean> {
  const { rows } = await sql<{ n: number }>`select count(*)::int as n from pg_namespace where nspname = ${schema}`.execute(db)
  return rows[0]!.n > 0
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
    const from = await loadCheckpoint(db, p, { create: false, table: `${schema}.${CHECKPOINTS}` }).catch(() => null)
    const { rows } = await sql<{ n: number }>`
      select count(*)::int as n from pg_tables where schemaname = ${schema} and tablename = any(${[...p.tables]}::text[])`.execute(
      db,
    )
    if (from && rows[0]!.n === p.tables.length) {
      // A shadow left by a version of the build that put nothing off for a bulk build.
      await sql`alter table ${id(schema, DEFERRED)} add column if not exists bulk boolean not null default false`.execute(db)
      return { schema, from, resumed: true }
    }
    await dropShadow(db, p)
  }
  await db.transaction().execute(async (trx) => {
    await sql`create schema ${id(schema)}`.execute(trx)
    await sql`grant usage on schema ${id(schema)} to ${id(ROLES.reader)}, ${id(ROLES.projector)}`.execute(trx)
    const deferred: string[] = []
    for (const table of p.tables) await copyTable(trx, p.schema, schema, table, deferred)
    // `bulk`: put off by a bulk build (row-level security, the btree indexes), needed again before any batch.
    await sql`create table ${id(schema, DEFERRED)} (def text not null, bulk boolean not null default false)`.execute(trx)
    for (const def of deferred) await sql`insert into ${id(schema, DEFERRED)} (def) values (${def})`.execute(trx)
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

/**
 * Readies an empty shadow for a bulk build: COPY refuses tables under row-level security (forced on the owner too),
 * and every index but the keys costs more kept up row by row than built once. Both are put off, to be restored by
 * finishShadow, or by restoreForBatches when a killed bulk build is resumed batch by batch.
 */
export async function deferForBulk(db: AnyDb, schema: string, tables: readonly string[]): Promise<void> {
  await db.transaction().execute(async (trx) => {
    for (const table of tables) {
      const { rows } = await sql<{ oid: number; rls: boolean; force: boolean }>`
        select c.oid::int as oid, c.relrowsecurity as rls, c.relforcerowsecurity as force
          from pg_class c join pg_namespace n on n.oid = c.relnamespace where n.nspname = ${schema} and c.relname = ${table}`.execute(
        trx,
      )
      const rel = rows[0]!
      const put = (def: string) => sql`insert into ${id(schema, DEFERRED)} (def, bulk) values (${def}, true)`.execute(trx)
      const name = `${quoteIdent(schema)}.${quoteIdent(table)}`
      if (rel.rls) await put(`alter table ${name} enable row level security`)
      if (rel.force) await put(`alter table ${name} force row level security`)
      await sql`alter table ${id(schema, table)} no force row level security`.execute(trx)
      await sql`alter table ${id(schema, table)} disable row level security`.execute(trx)
      const { rows: indexes } = await sql<{ name: string; def: string }>`
        select ic.relname as name, pg_get_indexdef(i.indexrelid) as def
          from pg_index i join pg_class ic on ic.oid = i.indexrelid
         where i.indrelid = ${rel.oid}::oid
           and not exists (select 1 from pg_constraint k where k.conindid = i.indexrelid and k.conrelid = i.indrelid)
         order by i.indexrelid`.execute(trx)
      for (const ix of indexes) {
        await put(ix.def.replace(/^CREATE (UNIQUE )?INDEX /, 'CREATE $1INDEX IF NOT EXISTS '))
        await sql`drop index ${id(schema, ix.name)}`.execute(trx)
      }
    }
  })
}

/** Row-level security first (it locks the tables), then the indexes, `parallel` at a time; each is done once. */
async function runDeferred(db: AnyDb, schema: string, which: 'bulk' | 'all', parallel: number): Promise<void> {
  const { rows } = await sql<{ def: string }>`
    select def from ${id(schema, DEFERRED)} where bulk or ${which === 'all'}`.execute(db)
  const indexes = rows.filter((r) => !r.def.startsWith('alter table '))
  for (const r of rows) if (r.def.startsWith('alter table ')) await sql.raw(r.def).execute(db)
  // Index builds on separate connections: each takes a share lock, which does not block the others.
  const queue = [...indexes]
  await Promise.all(
    Array.from({ length: Math.max(1, parallel) }, async () => {
      for (let next = queue.shift(); next; next = queue.shift()) await sql.raw(next.def).execute(db)
    }),
  )
  await sql`delete from ${id(schema, DEFERRED)} where bulk or ${which === 'all'}`.execute(db)
}

/** What a killed bulk build put off, back before the build goes on batch by batch (a rerun finds none left). */
export const restoreForBatches = (db: AnyDb, schema: string): Promise<void> => runDeferred(db, schema, 'bulk', 1)

/** Builds the indexes the build went without and restores row-level security (once; a rerun finds none left). */
export const finishShadow = (db: AnyDb, schema: string, parallel = 2): Promise<void> => runDeferred(db, schema, 'all', parallel)
