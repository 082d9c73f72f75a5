import fc from 'fast-check'
import { sql } from 'kysely'
import { v7 as uuid } from 'uuid'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { comparePositions, type EventStore, type Position, type RecordedEvent, START } from '../../adapters/event-store.ts'
import { type AnyDb, createKysely, createPool, type PgPool } from '../../adapters/postgres.ts'
import { applyBatch, type Projector } from '../../projections/engine.ts'
import { messagesProjector } from '../../projections/messages.ts'
import type { BulkBuildable } from '../../projections/rebuild/bulk.ts'
import { messagesBulk } from '../../projections/rebuild/messages-bulk.ts'
import { buildShadow, dropShadow, PoisonEventError, prepareShadow, shadowSchemaOf } from '../../projections/rebuild.ts'
import { createTestDatabase, type TestDatabase } from '../support/db.ts'
import { type HistoryStep, messageHistory } from '../support/message-history.ts'

/*
 * A rebuild from nothing builds the messages read model in bulk (folded in memory, written with COPY, indexes and
 * row-level security put back at the end). It must give exactly the tables the live batches give, on any history:
 * edits, deletes, range deletes, reactions, read marks, replies, duplicate creates, erasures, references to unknown
 * messages, cut into live batches anywhere and read by the rebuild in batches of any size.
 */

let database: TestDatabase
let pool: PgPool
let db: AnyDb

beforeAll(async () => {
  database = await createTestDatabase()
  pool = createPool(database.url)
  db = createKysely(pool)
})
afterAll(async () => {
  await db.destroy()
  await database.drop()
})

const tenants = [uuid(), uuid()]
const rooms = [uuid(), uuid(), uuid()]
const users = [uuid(), uuid(), uuid()]

const history = (steps: readonly HistoryStep[]) => messageHistory({ tenants, rooms, users }, steps)

/** The event store a rebuild reads: just these events. */
const storeOf = (events: readonly RecordedEvent[]) =>
  ({
    async readAll({ from = START, maxCount = 1_000 }: { from?: Position; maxCount?: number } = {}) {
      return events.filter((e) => comparePositions(e.position, from) > 0).slice(0, maxCount)
    },
    async headPosition() {
      return events.at(-1)?.position ?? START
    },
  }) as unknown as EventStore

const TABLES = ['messages', 'message_edits', 'room_reads'] as const

async function contents(schema: string): Promise<Record<string, unknown[]>> {
  const out: Record<string, unknown[]> = {}
  for (const t of TABLES) {
    const { rows } = await sql<{ r: unknown }>`
      select to_jsonb(x) as r from ${sql.table(`${schema}.${t}`)} x order by to_jsonb(x)::text`.execute(db)
    out[t] = rows.map((r) => r.r)
  }
  return out
}

/** What the live engine writes: the projector's batches, cut at `cuts`. */
async function live(events: readonly RecordedEvent[], cuts: readonly number[]): Promise<string> {
  const p: Projector = { ...messagesProjector, name: 'messages_live' }
  const { schema } = await prepareShadow(db, p, { restart: true })
  const target = { schema, checkpointTable: `${schema}.projection_checkpoints` }
  let from: Position = START
  let i = 0
  for (const cut of [...cuts, events.length]) {
    const batch = events.slice(i, Math.max(i, Math.min(cut, events.length)))
    if (batch.length === 0) continue
    from = await applyBatch(db, p, from, batch, target)
    i += batch.length
  }
  return schema
}

/** A rebuild's shadow, counting the bulk builds it made. */
function bulkProjector(): { p: Projector & BulkBuildable; builds: () => number } {
  let builds = 0
  const p = {
    ...messagesProjector,
    name: 'messages_bulk',
    bulk: () => {
      builds++
      return messagesBulk()
    },
  }
  return { p, builds: () => builds }
}

const step = fc.record({
  kind: fc.integer({ min: 0, max: 10 }),
  a: fc.nat(),
  b: fc.nat(),
  c: fc.nat(),
  flag: fc.boolean(),
  tenant: fc.integer({ min: 0, max: 1 }),
})

it('a bulk rebuild equals the live batches on random histories, live batch cuts and rebuild batch sizes', async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.array(step, { minLength: 1, maxLength: 150 }),
      fc.array(fc.integer({ min: 1, max: 150 }), { maxLength: 6 }),
      // Small batches: rows written by one bulk write are changed, tombstoned or erased by a later one.
      fc.integer({ min: 1, max: 8 }),
      async (steps, rawCuts, batchSize) => {
        const events = history(steps)
        const cuts = [...new Set(rawCuts)].sort((x, y) => x - y)
        const { p, builds } = bulkProjector()
        await dropShadow(db, p)
        const built = await buildShadow({ store: storeOf(events), db, pool }, p, { batchSize })
        expect(builds()).toBe(1)
        expect(built.events).toBe(events.length)
        expect(await contents(built.schema)).toEqual(await contents(await live(events, cuts)))
      },
    ),
    { numRuns: 40 },
  )
}, 180_000)

it('edits written by one bulk write go with a tombstone or an erasure in a later one', async () => {
  const s = (kind: number, c: number, b = 0) => ({ kind, a: 0, b, c, flag: false, tenant: 0 })
  // Two messages by user 0 edited; later (past the first write) one is deleted and user 0 is erased.
  const steps = [s(0, 1), s(0, 2), s(3, 0), s(3, 1), s(3, 0), ...Array.from({ length: 10 }, () => s(9, 0)), s(4, 0), s(10, 0)]
  const events = history(steps)
  const { p } = bulkProjector()
  const { schema } = await buildShadow({ store: storeOf(events), db, pool }, p, { batchSize: 1, restart: true })
  const rows = await contents(schema)
  expect(rows).toEqual(await contents(await live(events, [3, 7])))
  expect(rows.message_edits).toEqual([])
})

it('the bulk-built shadow gets back what it went without: indexes, row-level security, policies', async () => {
  const events = history(
    Array.from({ length: 40 }, (_, n) => ({ kind: n % 11, a: n, b: n * 7, c: n * 3, flag: n % 2 === 0, tenant: n % 2 })),
  )
  const { p, builds } = bulkProjector()
  const { schema } = await buildShadow({ store: storeOf(events), db, pool }, p, { batchSize: 7, restart: true })
  expect(builds()).toBe(1)
  const shape = async (s: string) =>
    (
      await sql<{ table: string; rls: boolean; force: boolean; indexes: string[]; policies: string[] }>`
        select c.relname as table, c.relrowsecurity as rls, c.relforcerowsecurity as force,
               array(select i.relname::text from pg_index x join pg_class i on i.oid = x.indexrelid where x.indrelid = c.oid order by 1) as indexes,
               array(select policyname::text from pg_policies where schemaname = ${s} and tablename = c.relname order by 1) as policies
          from pg_class c join pg_namespace n on n.oid = c.relnamespace
         where n.nspname = ${s} and c.relname = any(${[...TABLES]}::text[]) order by 1`.execute(db)
    ).rows
  expect(await shape(schema)).toEqual(await shape('tenant'))
  const { rows } = await sql<{
    n: number
  }>`select count(*)::int as n from ${sql.table(`${schema}.rebuild_deferred_indexes`)}`.execute(db)
  expect(rows[0]!.n).toBe(0)
  await dropShadow(db, p)
})

it('an event the fold cannot apply: the bulk build hands over to the batches, which name it; what came before is kept', async () => {
  const events = history(Array.from({ length: 30 }, (_, n) => ({ kind: n % 9, a: n, b: n, c: n, flag: false, tenant: 0 })))
  const bad = events[20]!
  ;(bad as { type: string }).type = 'message.updated'
  ;(bad as { data: unknown }).data = null
  const { p } = bulkProjector()
  const failed = await buildShadow({ store: storeOf(events), db, pool }, p, { batchSize: 2, restart: true }).catch(
    (e: unknown) => e,
  )
  expect(failed).toBeInstanceOf(PoisonEventError)
  expect((failed as PoisonEventError).event.id).toBe(bad.id)
  // What the bulk build wrote before it stays; the batches stopped before it, on tables that have their indexes and
  // row-level security back.
  const schema = shadowSchemaOf(p)
  const { rows } = await sql<{ n: string }>`
    select prepare_position::text as n from ${sql.table(`${schema}.projection_checkpoints`)} where name = ${p.name}`.execute(db)
  expect(Number(rows[0]!.n)).toBeGreaterThan(0)
  expect(Number(rows[0]!.n)).toBeLessThan(Number(bad.position.sequence))
  const { rows: rls } = await sql<{ force: boolean }>`
    select relforcerowsecurity as force from pg_class where oid = ${`${schema}.messages`}::regclass`.execute(db)
  expect(rls[0]!.force).toBe(true)
  await dropShadow(db, p)
})
