import { type ChildProcess, spawn } from 'node:child_process'
import { once } from 'node:events'
import { sql } from 'kysely'
import { v7 as uuid } from 'uuid'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { comparePositions } from '../../adapters/event-store.ts'
import { createLogger } from '../../adapters/logger.ts'
import { type AnyDb, createKysely, createPool, type PgPool } from '../../adapters/postgres.ts'
import { PostgresEventStore } from '../../adapters/postgres-event-store.ts'
import { ProjectionEngine } from '../../projections/engine.ts'
import { newEvent } from '../contract/event-store.contract.ts'
import { crashProjector, createCrashTables } from '../support/crash-projector.ts'
import { createTestDatabase, type TestDatabase } from '../support/db.ts'

let database: TestDatabase
let pool: PgPool
let db: AnyDb
let store: PostgresEventStore

beforeAll(async () => {
  database = await createTestDatabase()
  pool = createPool(database.url)
  db = createKysely(pool)
  store = new PostgresEventStore(pool)
  await createCrashTables(db, 'crash_a')
  await createCrashTables(db, 'crash_b')
  const tenants = [uuid(), uuid(), uuid()]
  for (let s = 0; s < 30; s++) {
    const tenant = tenants[s % tenants.length]!
    const events = Array.from({ length: 40 }, (_, n) => newEvent('counter.incremented', { n }, tenant))
    await store.append(`counter-${uuid()}`, events, { expectedRevision: 'no_stream' })
    await store.append(`noise-${uuid()}`, [newEvent('noise.made', {}, tenant)], { expectedRevision: 'no_stream' })
  }
})
afterAll(async () => {
  await store.close()
  await db.destroy()
  await database.drop()
})

const child = (): ChildProcess =>
  spawn(process.execPath, ['tests/support/crash-child.ts'], {
    env: { ...process.env, DATABASE_URL: database.url },
    stdio: ['ignore', 'pipe', 'inherit'],
  })

/** True once the child holds an open transaction: killing it then kills it mid-batch. */
async function childMidBatch(): Promise<boolean> {
  const { rows } = await sql<{ n: number }>`
    select count(*)::int as n from pg_stat_activity
     where application_name = 'crash-child' and datname = current_database() and xact_start is not null
       and state in ('active', 'idle in transaction')`.execute(db)
  return rows[0]!.n > 0
}

const rows = (table: string) =>
  sql<{
    tenant_id: string
    stream: string
    events: number
    last_n: number
  }>`select tenant_id, stream, events, last_n from ${sql.id('tenant', table)} order by tenant_id, stream`
    .execute(db)
    .then((r) => r.rows)
const logRows = (table: string) =>
  sql`select tenant_id, event_id, n from ${sql.id('tenant', `${table}_log`)} order by event_id`.execute(db).then((r) => r.rows)

it('a projector killed mid-batch and restarted yields exactly the rows of a clean run', async () => {
  let killedMidBatch = 0
  for (let round = 0; round < 3; round++) {
    const proc = child()
    const deadline = Date.now() + 10_000
    // Let it apply a few batches first, then catch it inside a transaction.
    await new Promise((r) => setTimeout(r, 150 + Math.random() * 250))
    while (Date.now() < deadline && !(await childMidBatch())) await new Promise((r) => setTimeout(r, 2))
    if (await childMidBatch()) killedMidBatch++
    proc.kill('SIGKILL')
    await once(proc, 'exit')
  }
  expect(killedMidBatch).toBeGreaterThan(0)

  const last = child()
  let out = ''
  last.stdout!.on('data', (d) => (out += d))
  const [code] = await once(last, 'exit')
  expect(code).toBe(0)
  expect(out).toContain('caught-up')

  const clean = new ProjectionEngine({ store, db, logger: createLogger('silent') }, [crashProjector('clean', 'crash_b')])
  const head = await store.headPosition()
  clean.start()
  while (!clean.statuses()[0] || comparePositions(clean.statuses()[0]!.checkpoint, head) < 0) {
    await new Promise((r) => setTimeout(r, 20))
  }
  await clean.stop()

  const crashed = await rows('crash_a')
  expect(crashed).toHaveLength(30)
  expect(crashed.every((r) => r.events === 40 && r.last_n === 39)).toBe(true)
  expect(crashed).toEqual(await rows('crash_b'))
  expect(await logRows('crash_a')).toEqual(await logRows('crash_b'))
}, 60_000)
