import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startOwnRedis } from '../support/redis-server.ts'
import { startTestServer, type TestServer } from '../support/server.ts'

/*
 * /readyz answers anyone (load balancers probe it unauthenticated): it says which dependency is down and
 * nothing of why, since backend errors name hosts, ports, users and internals. The log keeps the detail.
 */

let server: TestServer
beforeAll(async () => {
  server = await startTestServer()
})
afterAll(async () => {
  await server?.close()
})

/** Anything a backend's error text would give away. */
const LEAKS = /ECONNREFUSED|10\.9\.8\.7|127\.0\.0\.1|:5432|password|ws_secret_user|\bat \w|Error:|\.ts:\d/

describe('/readyz when a dependency fails', () => {
  it('Postgres and the event store failing: 503 with a status per dependency and a generic reason, no error text', async () => {
    const { pool, store } = server.services
    const query = pool.query
    const headPosition = store.headPosition
    pool.query = (() => Promise.reject(new Error('connect ECONNREFUSED 10.9.8.7:5432'))) as never
    store.headPosition = () => Promise.reject(new Error('password authentication failed for user "ws_secret_user"'))
    try {
      const r = await server.request('GET', '/readyz')
      expect(r.status).toBe(503)
      expect(r.body).toEqual({
        status: 'not ready',
        checks: { postgres: 'unavailable', eventStore: 'unavailable' },
        reason: expect.any(String),
      })
      expect(JSON.stringify(r.body)).not.toMatch(LEAKS)
    } finally {
      pool.query = query
      store.headPosition = headPosition
    }
    const ready = await server.request('GET', '/readyz')
    expect(ready.status).toBe(200)
    expect(ready.body).toEqual({ status: 'ready', checks: { postgres: 'ok', eventStore: 'ok' } })
  })

  it('Redis stopped: redis is unavailable, without its address or error', async () => {
    const redis = await startOwnRedis()
    const s = await startTestServer({ REDIS_URL: redis.url })
    try {
      await redis.stop()
      const r = await s.request('GET', '/readyz')
      expect(r.status).toBe(503)
      expect(r.body).toMatchObject({ status: 'not ready', checks: { postgres: 'ok', redis: 'unavailable', eventStore: 'ok' } })
      expect(JSON.stringify(r.body)).not.toMatch(LEAKS)
      expect(JSON.stringify(r.body)).not.toContain(String(redis.port))
    } finally {
      await s.close()
      await redis.stop()
    }
  }, 30_000)
})
