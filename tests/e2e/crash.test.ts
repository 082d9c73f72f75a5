import { spawnSync } from 'node:child_process'
import { sql } from 'kysely'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { type AnyDb, createKysely, createPool } from '../../adapters/postgres.ts'
import { PostgresEventStore } from '../../adapters/postgres-event-store.ts'
import { type ChildServer, startChildServer } from '../support/child-server.ts'
import { createTestDatabase, type TestDatabase } from '../support/db.ts'
import { operatorSessionIn } from '../support/operator.ts'

let database: TestDatabase
let db: AnyDb
beforeAll(async () => {
  database = await createTestDatabase()
  db = createKysely(createPool(database.url))
})
afterAll(async () => {
  await db.destroy()
  await database.drop()
})

/** An operator's account session, made in the store once the first server has migrated it. */
const headers = { authorization: '', 'content-type': 'application/json' }
async function signInOperator() {
  if (headers.authorization) return
  const pool = createPool(database.url)
  const store = new PostgresEventStore(pool)
  try {
    headers.authorization = `Bearer ${await operatorSessionIn(store)}`
  } finally {
    await store.close()
    await pool.end()
  }
}

/** Steady command load from a few concurrent clients; records every acknowledged (2xx) answer. */
function load(server: ChildServer, clients: number) {
  const acknowledged: { orgId: string; position: number }[] = []
  let stop = false
  let n = 0
  const runs = Array.from({ length: clients }, async (_, c) => {
    while (!stop) {
      const name = `crash org ${c} ${n++}`
      try {
        const r = await fetch(`${server.url}/control/orgs`, { method: 'POST', headers, body: JSON.stringify({ name }) })
        if (r.status === 201) acknowledged.push((await r.json()) as { orgId: string; position: number })
      } catch {
        await new Promise((res) => setTimeout(res, 20))
      }
    }
  })
  return {
    acknowledged,
    async stop() {
      stop = true
      await Promise.all(runs)
    },
  }
}

it('SIGKILL under load: every acknowledged command is stored, once, and read models catch up to equal the events', async () => {
  let server = await startChildServer({ DATABASE_URL: database.url })
  await signInOperator()
  const traffic = load(server, 8)
  // Killed mid-load once enough commands were acknowledged, however slow the machine is today.
  for (const deadline = Date.now() + 30_000; traffic.acknowledged.length <= 10 && Date.now() < deadline; )
    await new Promise((r) => setTimeout(r, 50))
  await server.kill('SIGKILL')
  await traffic.stop()
  const acknowledged = traffic.acknowledged
  expect(acknowledged.length).toBeGreaterThan(10)

  server = await startChildServer({ DATABASE_URL: database.url })
  try {
    const created = await sql<{ org_id: string; n: number }>`
      select data ->> 'orgId' as org_id, count(*)::int as n from eventstore.events where event_type = 'org.created' group by 1`.execute(
      db,
    )
    const stored = new Map(created.rows.map((r) => [r.org_id, r.n]))
    for (const a of acknowledged) expect(stored.get(a.orgId), `org ${a.orgId} was acknowledged`).toBe(1)

    const last = Math.max(...acknowledged.map((a) => a.position))
    const list = await fetch(`${server.url}/control/orgs?limit=200&consistentAfter=${last}`, { headers })
    expect(list.status).toBe(200)
    // After the restart the projector caught up from its checkpoint: the read model holds every created org once.
    const head = await sql<{ p: string }>`select max(global_position)::text as p from eventstore.events`.execute(db)
    await fetch(`${server.url}/control/orgs?consistentAfter=${head.rows[0]!.p}`, { headers })
    const rows = await sql<{ id: string }>`select id from control.orgs`.execute(db)
    expect(new Set(rows.rows.map((r) => r.id))).toEqual(new Set(stored.keys()))
    // And every read model equals a clean rebuild from the events.
    const verify = spawnSync(process.execPath, ['bin/rebuild.ts', '--verify', '--quiet'], {
      env: { ...process.env, DATABASE_URL: database.url, LOG_LEVEL: 'warn' },
      encoding: 'utf8',
      timeout: 60_000,
    })
    expect(verify.status, verify.stdout + verify.stderr).toBe(0)
  } finally {
    await server.kill('SIGTERM')
  }
}, 90_000)
