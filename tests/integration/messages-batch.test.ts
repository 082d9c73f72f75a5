import fc from 'fast-check'
import { sql } from 'kysely'
import { v7 as uuid } from 'uuid'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { type Position, type RecordedEvent, START } from '../../adapters/event-store.ts'
import { type AnyDb, createKysely, createPool, type PgPool } from '../../adapters/postgres.ts'
import { applyBatch, type Projector } from '../../projections/engine.ts'
import { messagesProjector } from '../../projections/messages.ts'
import { dropShadow, prepareShadow } from '../../projections/rebuild.ts'
import { createTestDatabase, type TestDatabase } from '../support/db.ts'
import { type HistoryStep, messageHistory } from '../support/message-history.ts'
import { messagesPerEvent } from '../support/messages-per-event.ts'

/*
 * The batched messages projector must give exactly the tables the per-event reference gives, on any history,
 * sensible or not (edits of unknown messages, reactions on deleted ones, replies to missing roots, duplicate
 * creates), cut into batches anywhere.
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

const TABLES = ['messages', 'message_edits', 'room_reads'] as const

async function contents(schema: string): Promise<Record<string, unknown[]>> {
  const out: Record<string, unknown[]> = {}
  for (const t of TABLES) {
    const { rows } = await sql<{ r: unknown }>`
      select to_jsonb(x) - 'search' as r from ${sql.table(`${schema}.${t}`)} x order by to_jsonb(x)::text`.execute(db)
    out[t] = rows.map((r) => r.r)
  }
  return out
}

async function build(p: Projector, events: readonly RecordedEvent[], cuts: readonly number[]): Promise<string> {
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

const reference: Projector = { ...messagesProjector, name: 'messages_reference', apply: messagesPerEvent.apply }
const batched: Projector = { ...messagesProjector, name: 'messages_batched' }

it('the batched messages projector equals the per-event reference on random histories and batch cuts', async () => {
  const step = fc.record({
    kind: fc.integer({ min: 0, max: 9 }),
    a: fc.nat(),
    b: fc.nat(),
    c: fc.nat(),
    flag: fc.boolean(),
    tenant: fc.integer({ min: 0, max: 1 }),
  })
  await fc.assert(
    fc.asyncProperty(
      fc.array(step, { minLength: 1, maxLength: 120 }),
      fc.array(fc.integer({ min: 1, max: 120 }), { maxLength: 8 }),
      async (steps, rawCuts) => {
        const events = history(steps)
        const cuts = [...new Set(rawCuts)].sort((x, y) => x - y)
        const [a, b] = [await build(reference, events, cuts), await build(batched, events, cuts)]
        expect(await contents(b)).toEqual(await contents(a))
      },
    ),
    { numRuns: 40 },
  )
  await dropShadow(db, reference)
  await dropShadow(db, batched)
}, 120_000)

it('a message created again in a later batch keeps its first row and takes no sequence number (the exact retry)', async () => {
  const steps = (kind: number, c: number) => ({ kind, a: 0, b: 0, c, flag: false, tenant: 0 })
  // Three creates in one room, then (next batch) the first one again and a fourth, then reactions.
  const events = history([steps(0, 1), steps(0, 2), steps(0, 3), steps(0, 10), steps(0, 4), steps(6, 1)])
  const again = events[3]!
  ;(again.data as { messageId: string }).messageId = (events[0]!.data as { messageId: string }).messageId
  const [a, b] = [await build(reference, events, [3]), await build(batched, events, [3])]
  const batchedRows = await contents(b)
  expect(batchedRows).toEqual(await contents(a))
  expect((batchedRows.messages as { seq: number }[]).map((m) => m.seq).sort()).toEqual([1, 2, 3, 4])
  await dropShadow(db, reference)
  await dropShadow(db, batched)
})
