import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { batchLockKey } from '../../projections/engine.ts'
import { operatorToken } from '../support/operator.ts'
import { eventCount, startTestServer, type TestServer } from '../support/server.ts'

let server: TestServer
beforeAll(async () => {
  server = await startTestServer()
  asOperator.token = await operatorToken(server)
})
afterAll(async () => {
  await server?.close()
})

/** The operator's account session (tests/support/operator.ts). */
const asOperator = { token: '' }

describe('the spine over HTTP: command → event → projection → query', () => {
  it('serves health, readiness and its OpenAPI document', async () => {
    expect((await server.request('GET', '/healthz')).status).toBe(200)
    const ready = await server.request('GET', '/readyz')
    expect(ready.status).toBe(200)
    expect(ready.body.checks).toEqual({ postgres: 'ok', eventStore: 'ok' })
    const doc = await server.request('GET', '/openapi.json')
    expect(doc.body.openapi).toBe('3.1.0')
    expect(Object.keys(doc.body.paths)).toEqual(expect.arrayContaining(['/orgs/name-check', '/control/orgs']))
  })

  it('a provisioned org is visible at the position its command answered with', async () => {
    const check = await server.request('GET', '/orgs/name-check?name=Globex%20Inc')
    expect(check.body).toEqual({ name: 'Globex Inc', slug: 'globex-inc', available: true })

    const created = await server.request('POST', '/control/orgs', { ...asOperator, body: { name: 'Globex Inc' } })
    expect(created.status).toBe(201)
    expect(created.body).toMatchObject({ slug: 'globex-inc', position: expect.any(Number) })

    const list = await server.request('GET', `/control/orgs?consistentAfter=${created.body.position}`, asOperator)
    expect(list.status).toBe(200)
    expect(list.body.items).toContainEqual(
      expect.objectContaining({ id: created.body.orgId, name: 'Globex Inc', slug: 'globex-inc', status: 'active' }),
    )
    const after = await server.request('GET', '/orgs/name-check?name=globex-inc')
    expect(after.body).toMatchObject({ available: false, reason: 'taken' })
  })

  it('of two concurrent requests for one name exactly one wins; the other gets 409', async () => {
    const results = await Promise.all(
      Array.from({ length: 6 }, () => server.request('POST', '/control/orgs', { ...asOperator, body: { name: 'Initech' } })),
    )
    expect(results.map((r) => r.status).sort()).toEqual([201, 409, 409, 409, 409, 409])
    const loser = results.find((r) => r.status === 409)!
    expect(loser.headers.get('content-type')).toContain('application/problem+json')
    expect(loser.body).toMatchObject({ status: 409, code: 'NAME_TAKEN' })
  })

  it('correlation ids flow from the request into event metadata', async () => {
    const created = await server.request('POST', '/control/orgs', {
      ...asOperator,
      body: { name: 'Umbrella' },
      headers: { 'x-correlation-id': 'trace-abc-123' },
    })
    const events = await server.services.store.readStream(`org-${created.body.orgId}`)
    expect(events[0]!.metadata).toMatchObject({
      correlationId: 'trace-abc-123',
      causationId: created.headers.get('x-request-id'),
      actor: { type: 'operator' },
      tenantId: created.body.orgId,
      schemaVersion: 1,
    })
  })

  it('suspends and reactivates an org; a pagination cursor walks the list', async () => {
    const a = await server.request('POST', '/control/orgs', { ...asOperator, body: { name: 'Hooli' } })
    const s = await server.request('POST', `/control/orgs/${a.body.orgId}/suspend`, { ...asOperator, body: { reason: 'abuse' } })
    expect(s.status).toBe(200)
    const list = await server.request('GET', `/control/orgs?limit=1&consistentAfter=${s.body.position}`, asOperator)
    expect(list.body.items).toHaveLength(1)
    const all = [...list.body.items]
    let cursor = list.body.nextCursor
    while (cursor) {
      const page = await server.request('GET', `/control/orgs?limit=1&cursor=${cursor}`, asOperator)
      all.push(...page.body.items)
      cursor = page.body.nextCursor
    }
    expect(all.find((o) => o.id === a.body.orgId).status).toBe('suspended')
    expect(new Set(all.map((o) => o.id)).size).toBe(all.length)
  })

  it('answers bad input with problem+json and changes nothing', async () => {
    const head = await eventCount(server)
    const cases = [
      await server.request('POST', '/control/orgs', { ...asOperator, body: '{"name": ' }),
      await server.request('POST', '/control/orgs', { ...asOperator, body: { name: 42 } }),
      await server.request('POST', '/control/orgs', { ...asOperator, body: { name: 'www' } }),
      await server.request('POST', '/control/orgs', { ...asOperator, body: { name: '' } }),
      await server.request('GET', '/control/orgs?consistentAfter=abc', asOperator),
      await server.request('GET', '/control/orgs?cursor=not-a-cursor', asOperator),
      await server.request('GET', '/control/orgs?limit=100000', asOperator),
      await server.request('POST', '/control/orgs/not-a-uuid/suspend', asOperator),
      await server.request('GET', '/nowhere'),
    ]
    expect(cases.map((r) => r.status)).toEqual([400, 400, 422, 400, 400, 400, 400, 400, 404])
    for (const r of cases) {
      expect(r.headers.get('content-type')).toContain('application/problem+json')
      expect(r.body).toMatchObject({
        type: expect.any(String),
        title: expect.any(String),
        status: r.status,
        code: expect.any(String),
      })
    }
    expect(cases[1]!.body.errors).toEqual([expect.objectContaining({ path: 'name' })])
    expect(await eventCount(server)).toEqual(head)
  })

  it('exposes projection lag to operators', async () => {
    const created = await server.request('POST', '/control/orgs', { ...asOperator, body: { name: 'Lagless' } })
    await server.request('GET', `/control/orgs?consistentAfter=${created.body.position}`, asOperator)
    const r = await server.request('GET', '/control/projections', asOperator)
    expect(r.status).toBe(200)
    const orgs = r.body.items.find((p: { name: string }) => p.name === 'orgs')
    expect(orgs).toMatchObject({ version: 1, lag: expect.any(Number) })
    expect(orgs.checkpoint).toBeGreaterThanOrEqual(created.body.position)
  })

  it('refuses the control API without the operator credential', async () => {
    expect((await server.request('GET', '/control/orgs')).status).toBe(401)
    // A token that is no credential is a bad credential (401); a credential that is no operator's is 403 (control.test.ts).
    expect((await server.request('GET', '/control/orgs', { token: 'wrong' })).status).toBe(401)
  })

  it('a consistentAfter the projections cannot reach in time answers 503, not a stale read', async () => {
    // The orgs projector's next batch waits on its lock, held here: the org below stays unprojected.
    const orgs = server.services.projectors.find((p) => p.name === 'orgs')!
    const hold = await server.services.pool.connect()
    await hold.query('select pg_advisory_lock(hashtext($1))', [batchLockKey(orgs.schema, orgs.name)])
    try {
      const created = await server.request('POST', '/control/orgs', { ...asOperator, body: { name: 'Not Yet' } })
      const r = await server.request('GET', `/control/orgs?consistentAfter=${created.body.position}`, asOperator)
      expect(r.status).toBe(503)
      expect(r.body.code).toBe('NOT_CONSISTENT_YET')
      expect(r.headers.get('retry-after')).toBeTruthy()
    } finally {
      await hold.query('select pg_advisory_unlock_all()')
      hold.release()
    }
  }, 15_000)

  it('answers 413 for an oversized body', async () => {
    const r = await server.request('POST', '/control/orgs', { ...asOperator, body: { name: 'x'.repeat(2_000_000) } })
    expect(r.status).toBe(413)
    expect(r.body.code).toBe('TOO_LARGE')
  })
})

describe('abuse limits', () => {
  it('answers 429 with Retry-After past the per-address limit, and spares the probes', async () => {
    const limited = await startTestServer({ RATE_LIMIT_IP_PER_MINUTE: '5' })
    try {
      const statuses = []
      for (let i = 0; i < 7; i++) statuses.push((await limited.request('GET', '/orgs/name-check?name=abcdef')).status)
      expect(statuses).toEqual([200, 200, 200, 200, 200, 429, 429])
      const refused = await limited.request('GET', '/orgs/name-check?name=abcdef')
      expect(refused.headers.get('retry-after')).toMatch(/^\d+$/)
      expect(refused.body).toMatchObject({ status: 429, code: 'RATE_LIMITED' })
      expect((await limited.request('GET', '/healthz')).status).toBe(200)
    } finally {
      await limited.close()
    }
  })
})

describe('Idempotency-Key', () => {
  it('the same key from the same actor answers the first answer again and appends nothing', async () => {
    const send = (name: string, key: string) =>
      server.request('POST', '/control/orgs', { ...asOperator, body: { name }, headers: { 'idempotency-key': key } })
    const first = await send('Retry Corp', 'key-1')
    const head = await eventCount(server)
    const again = await send('Retry Corp', 'key-1')
    expect(first.status).toBe(201)
    expect(again.status).toBe(201)
    expect(again.body).toEqual(first.body)
    expect(again.headers.get('idempotent-replayed')).toBe('true')
    expect(await eventCount(server)).toEqual(head)
    const reused = await send('Other Corp', 'key-1')
    expect(reused.status).toBe(422)
    expect(reused.body.code).toBe('IDEMPOTENCY_KEY_REUSED')
    const bad = await send('Other Corp', 'not a key!')
    expect(bad.status).toBe(400)
  })

  it('refused answers are kept too, and another key is another request', async () => {
    const send = (key: string) =>
      server.request('POST', '/control/orgs', { ...asOperator, body: { name: 'www' }, headers: { 'idempotency-key': key } })
    expect((await send('key-2')).status).toBe(422)
    const replayed = await send('key-2')
    expect(replayed.headers.get('idempotent-replayed')).toBe('true')
    expect(replayed.headers.get('content-type')).toContain('application/problem+json')
    expect((await send('key-3')).headers.get('idempotent-replayed')).toBeNull()
  })
})
