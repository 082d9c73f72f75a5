import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { operatorToken } from '../support/operator.ts'
import { OPERATOR_TOKEN, startTestServer, type TestServer } from '../support/server.ts'

let server: TestServer
beforeAll(async () => {
  server = await startTestServer()
  asOperator.token = await operatorToken(server)
})
afterAll(async () => {
  await server?.close()
})

/** The operator's account session for /control; /metrics takes the shared token (a scrape credential). */
const asOperator = { token: '' }

/** The samples of a Prometheus text exposition: `name{labels}` → value, a bucket's `le` last (prom-client writes it first). */
const samples = (text: string): Map<string, number> =>
  new Map(
    text
      .split('\n')
      .filter((l) => l && !l.startsWith('#'))
      .map((l) => {
        const i = l.lastIndexOf(' ')
        const key = l.slice(0, i).replace(/\{(le="[^"]*"),(.+)\}$/, '{$2,$1}')
        return [key, Number(l.slice(i + 1))] as const
      }),
  )

describe('/metrics', () => {
  it('is for operators only', async () => {
    expect((await server.request('GET', '/metrics')).status).toBe(401)
    expect((await server.request('GET', '/metrics', { token: 'not-the-operator-token-at-all' })).status).toBe(403)
  })

  it('counts and times commands by route and outcome, and reports lag per projector and polls held', async () => {
    const created = await server.request('POST', '/control/orgs', { ...asOperator, body: { name: 'Metrics Corp' } })
    expect(created.status).toBe(201)
    expect((await server.request('POST', '/control/orgs', { ...asOperator, body: { name: 'Metrics Corp' } })).status).toBe(409)
    await server.request('GET', `/control/orgs?consistentAfter=${created.body.position}`, asOperator)

    const res = await fetch(`${server.url}/metrics`, { headers: { authorization: `Bearer ${OPERATOR_TOKEN}` } })
    expect(res.status).toBe(200)
    expect(res.headers.get('content-type')).toContain('text/plain; version=0.0.4')
    const text = await res.text()
    const s = samples(text)
    expect(text).toContain('# TYPE workspace_command_duration_seconds histogram')
    expect(s.get('workspace_commands_total{route="/control/orgs",method="POST",status="2xx"}')).toBe(1)
    expect(s.get('workspace_commands_total{route="/control/orgs",method="POST",status="4xx"}')).toBe(1)
    expect(s.get('workspace_command_duration_seconds_count{route="/control/orgs",method="POST",status="2xx"}')).toBe(1)
    expect(s.get('workspace_command_duration_seconds_bucket{route="/control/orgs",method="POST",status="2xx",le="+Inf"}')).toBe(1)
    expect(s.get('workspace_queries_total{route="/control/orgs",status="2xx"}')).toBe(1)
    for (const p of server.services.projectors) {
      expect(s.has(`workspace_projection_lag_events{projector="${p.name}",version="${p.version}"}`), p.name).toBe(true)
    }
    expect(s.get('workspace_projection_lag_events{projector="orgs",version="1"}')).toBeGreaterThanOrEqual(0)
    expect(s.get('workspace_event_store_head_position')).toBeGreaterThanOrEqual(created.body.position)
    expect(s.get('workspace_realtime_polls_held')).toBe(0)
    expect(s.get('workspace_db_pool_connections{pool="api",state="total"}')).toBeGreaterThan(0)
    expect(s.get('workspace_db_pool_connections{pool="events",state="total"}')).toBeGreaterThan(0)
    expect(s.get('workspace_metrics_collect_failures')).toBe(0)
    // The orgs projector applied the org the query waited for: its command-to-projection latency is observed.
    expect(s.get('workspace_command_to_projection_seconds_count{projector="orgs"}')).toBeGreaterThanOrEqual(1)
    expect(text).toContain('# TYPE workspace_command_to_projection_seconds histogram')
    // prom-client's default process metrics.
    expect(s.get('process_cpu_user_seconds_total')).toBeGreaterThan(0)
    expect(s.get('process_resident_memory_bytes')).toBeGreaterThan(0)
    // Unknown paths share one label value: no unbounded series from what clients make up.
    await server.request('GET', '/no/such/path/123')
    const again = samples(
      await (await fetch(`${server.url}/metrics`, { headers: { authorization: `Bearer ${OPERATOR_TOKEN}` } })).text(),
    )
    expect(again.get('workspace_queries_total{route="unmatched",status="4xx"}')).toBe(1)
    expect([...again.keys()].some((k) => k.includes('/no/such/path'))).toBe(false)
  })
})
