import { sql } from 'kysely'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { operatorToken } from '../support/operator.ts'
import { startTestServer, type TestServer } from '../support/server.ts'

let server: TestServer
/** The operator's account session (tests/support/operator.ts), signed in before connections start dropping. */
let OPERATOR_TOKEN: string
beforeAll(async () => {
  server = await startTestServer()
  OPERATOR_TOKEN = await operatorToken(server)
})
afterAll(async () => {
  await server?.close()
})

it('Postgres connections dropped mid-load: clear 503s at worst, never a 500, recovery on its own, nothing acknowledged lost', async () => {
  const statuses: number[] = []
  const acknowledged: string[] = []
  let stop = false
  let n = 0
  const clients = Array.from({ length: 6 }, async () => {
    while (!stop) {
      const r = await server.request('POST', '/control/orgs', { token: OPERATOR_TOKEN, body: { name: `fault org ${n++}` } })
      statuses.push(r.status)
      if (r.status === 201) acknowledged.push(r.body.orgId)
      if (r.status >= 500) {
        expect(r.status).toBe(503)
        expect(r.headers.get('content-type')).toContain('application/problem+json')
        expect(r.headers.get('retry-after')).toBeTruthy()
      }
    }
  })
  const killer = (async () => {
    for (let i = 0; i < 5; i++) {
      await new Promise((r) => setTimeout(r, 150))
      // Every connection of the server to its database, mid-transaction or idle, is cut.
      await sql`select pg_terminate_backend(pid) from pg_stat_activity
                 where datname = current_database() and pid <> pg_backend_pid()`
        .execute(server.services.db)
        .catch(() => {})
    }
  })()
  await killer
  await new Promise((r) => setTimeout(r, 500))
  stop = true
  await Promise.all(clients)

  expect(statuses.filter((s) => s !== 201 && s !== 503)).toEqual([])
  // Recovered: commands succeed again, and the projector resumed (a read at the latest position answers).
  const after = await server.request('POST', '/control/orgs', { token: OPERATOR_TOKEN, body: { name: 'after the storm' } })
  expect(after.status).toBe(201)
  const read = await server.request('GET', `/control/orgs?limit=1&consistentAfter=${after.body.position}`, {
    token: OPERATOR_TOKEN,
  })
  expect(read.status).toBe(200)
  const stored = await sql<{
    org_id: string
  }>`select data ->> 'orgId' as org_id from eventstore.events where event_type = 'org.created'`.execute(server.services.db)
  const ids = new Set(stored.rows.map((r) => r.org_id))
  expect(acknowledged.filter((id) => !ids.has(id))).toEqual([])
}, 60_000)

describe('Redis outage with REDIS_URL set', () => {
  it('commands go on, realtime answers 503 while Redis is down, and everything recovers on its own', async () => {
    const { startOwnRedis } = await import('../support/redis-server.ts')
    const { signUp } = await import('../support/identity.ts')
    const redis = await startOwnRedis()
    const s = await startTestServer({ REDIS_URL: redis.url })
    try {
      const alice = await signUp(s, { email: 'alice@redis.test', orgName: 'Redis Outage', username: 'alice' })
      expect((await s.request('POST', '/realtime/register', { token: alice.token, body: {} })).status).toBe(200)
      await redis.stop()
      const posted = await s.request('POST', `/api/rooms/${alice.homeRoomId}/messages`, {
        token: alice.token,
        body: { text: 'while redis is down' },
      })
      expect(posted.status).toBe(201)
      const down = await s.request('POST', '/realtime/register', { token: alice.token, body: {} })
      expect(down.status).toBe(503)
      expect(down.headers.get('content-type')).toContain('application/problem+json')
      expect((await s.request('GET', '/readyz')).status).toBe(503)
      await redis.start()
      const deadline = Date.now() + 15_000
      let status = 0
      while (Date.now() < deadline && status !== 200) {
        status = (await s.request('POST', '/realtime/register', { token: alice.token, body: {} })).status
        if (status !== 200) await new Promise((r) => setTimeout(r, 200))
      }
      expect(status).toBe(200)
      const timeline = await s.request('GET', `/api/rooms/${alice.homeRoomId}/messages?consistentAfter=${posted.body.position}`, {
        token: alice.token,
      })
      expect(timeline.body.items.map((m: { text: string }) => m.text)).toContain('while redis is down')
    } finally {
      await s.close()
      await redis.stop()
    }
  }, 60_000)
})
