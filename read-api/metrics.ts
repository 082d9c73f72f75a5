import { monitorEventLoopDelay } from 'node:perf_hooks'
import type { MiddlewareHandler } from 'hono'
import { matchedRoutes } from 'hono/route'
import { commandToProjectionSeconds, MetricsRegistry, PROMETHEUS_CONTENT_TYPE } from '../adapters/metrics.ts'
import type { AppDeps } from '../http/context.ts'
import { requireScrapeToken } from '../http/operator.ts'
import { router } from '../http/router.ts'
import type { Projector } from '../projections/engine.ts'
import { parkedCounts, projectionLag } from './projections.ts'

/** What /metrics reads besides the request counters: each source is cheap and read at scrape time. */
export type MetricsSources = {
  readonly projectors: readonly Projector[]
  /** Long polls held open by this process's realtime gateway. */
  readonly heldPolls: () => number
  /** The principal cache's lookups since start, and its entries now. */
  readonly principalCache?: () => { readonly hit: number; readonly miss: number; readonly entries: number }
  /** The Postgres pools, by job: connections open, idle, and requests queued for one. */
  readonly pools: Readonly<
    Record<string, { readonly totalCount: number; readonly idleCount: number; readonly waitingCount: number }>
  >
  /** Events each in-process projector applied since start (absent when this process runs no projector). */
  readonly projected?: () => readonly { readonly name: string; readonly eventsApplied: number }[]
}

const COMMAND_METHODS = new Set(['POST', 'PUT', 'PATCH', 'DELETE'])

/**
 * The route a request matched, as registered (`/api/rooms/:id/messages`), whether its handler or a middleware
 * before it answered: bounded label values. Paths no route matches share `unmatched`.
 */
function routeOf(c: Parameters<MiddlewareHandler>[0]): string {
  const endpoint = matchedRoutes(c)
    .filter((r) => r.method !== 'ALL' && !r.path.endsWith('*'))
    .at(-1)
  return endpoint?.path ?? 'unmatched'
}

/**
 * Prometheus metrics of this process: command and query latency and outcomes by route and status class,
 * projection lag and parked events per projector (from the database, so right whichever process projects),
 * long polls held, database pool queue, event loop delay and memory; command-to-projection latency per projector
 * of this process; and prom-client's default process metrics.
 */
export function createMetrics(deps: AppDeps, sources: MetricsSources) {
  const registry = new MetricsRegistry()
  const commandSeconds = registry.histogram(
    'workspace_command_duration_seconds',
    'Latency of command requests (POST, PUT, PATCH, DELETE) by route, method and status class.',
    ['route', 'method', 'status'],
  )
  const commands = registry.counter(
    'workspace_commands_total',
    'Command requests by route, method and status class (the outcome).',
    ['route', 'method', 'status'],
  )
  const querySeconds = registry.histogram(
    'workspace_query_duration_seconds',
    'Latency of query requests (GET) by route and status class.',
    ['route', 'status'],
  )
  const queries = registry.counter('workspace_queries_total', 'Query requests by route and status class.', ['route', 'status'])
  registry.register(commandToProjectionSeconds)

  // One read of the checkpoints per scrape, shared by the gauges that show it.
  let lagRead: { at: number; rows: ReturnType<typeof projectionLag> } | null = null
  const lag = () => {
    if (!lagRead || Date.now() - lagRead.at > 1_000) lagRead = { at: Date.now(), rows: projectionLag(deps, sources.projectors) }
    return lagRead.rows
  }
  registry.gauge(
    'workspace_projection_lag_events',
    'Events appended after each projector checkpoint (head minus checkpoint).',
    ['projector', 'version'],
    async () => (await lag()).map((p) => ({ labels: { projector: p.name, version: String(p.version) }, value: p.lag })),
  )
  registry.gauge(
    'workspace_projection_checkpoint_position',
    'The public position each projector has applied up to.',
    ['projector', 'version'],
    async () => (await lag()).map((p) => ({ labels: { projector: p.name, version: String(p.version) }, value: p.checkpoint })),
  )
  registry.gauge(
    'workspace_projection_parked_events',
    'Events each projector parked after failing on them, not yet retried or skipped.',
    ['projector', 'version'],
    async () =>
      (await parkedCounts(deps, sources.projectors)).map((p) => ({
        labels: { projector: p.name, version: String(p.version) },
        value: p.parked,
      })),
  )
  registry.gauge(
    'workspace_event_store_head_position',
    'The public position of the newest event readers can see.',
    [],
    async () => [{ labels: {}, value: Number((await deps.store.headPosition()).sequence) }],
  )
  if (sources.projected) {
    const projected = sources.projected
    registry.gauge(
      'workspace_projection_events_applied',
      'Events this process applied per projector since it started.',
      ['projector'],
      () => projected().map((s) => ({ labels: { projector: s.name }, value: s.eventsApplied })),
    )
  }
  registry.gauge('workspace_realtime_polls_held', 'Long polls this process holds open.', [], () => [
    { labels: {}, value: sources.heldPolls() },
  ])
  const principalCache = sources.principalCache
  if (principalCache) {
    registry.gauge(
      'workspace_principal_cache_lookups',
      'Tenant API authentications answered from the principal cache (hit) or afresh (miss) since the process started.',
      ['outcome'],
      () => {
        const { hit, miss } = principalCache()
        return [
          { labels: { outcome: 'hit' }, value: hit },
          { labels: { outcome: 'miss' }, value: miss },
        ]
      },
    )
    registry.gauge('workspace_principal_cache_entries', 'Credentials the principal cache holds now.', [], () => [
      { labels: {}, value: principalCache().entries },
    ])
  }
  registry.gauge(
    'workspace_db_pool_connections',
    'Postgres pool connections by pool (api, events, projector, realtime) and state; waiting: requests queued for one.',
    ['pool', 'state'],
    () =>
      Object.entries(sources.pools).flatMap(([pool, p]) => [
        { labels: { pool, state: 'total' }, value: p.totalCount },
        { labels: { pool, state: 'idle' }, value: p.idleCount },
        { labels: { pool, state: 'waiting' }, value: p.waitingCount },
      ]),
  )
  const loop = monitorEventLoopDelay({ resolution: 20 })
  loop.enable()
  registry.gauge(
    'workspace_event_loop_delay_seconds',
    'Event loop delay of this process since the last scrape.',
    ['quantile'],
    () => {
      const samples = [0.5, 0.9, 0.99].map((q) => ({ labels: { quantile: String(q) }, value: loop.percentile(q * 100) / 1e9 }))
      samples.push({ labels: { quantile: 'max' }, value: loop.max / 1e9 })
      loop.reset()
      return samples
    },
  )
  registry.gauge('workspace_process_memory_bytes', 'Memory of this process.', ['kind'], () => {
    const m = process.memoryUsage()
    return [
      { labels: { kind: 'rss' }, value: m.rss },
      { labels: { kind: 'heap_used' }, value: m.heapUsed },
      { labels: { kind: 'external' }, value: m.external },
    ]
  })

  /** Times every request; the first middleware after the request id, so it sees the final status. */
  const middleware: MiddlewareHandler = async (c, next) => {
    const started = performance.now()
    try {
      await next()
    } finally {
      if (c.req.path !== '/metrics') {
        const route = routeOf(c)
        const seconds = (performance.now() - started) / 1000
        const statusClass = `${Math.floor(c.res.status / 100)}xx`
        if (COMMAND_METHODS.has(c.req.method)) {
          const labels = { route, method: c.req.method, status: statusClass }
          commandSeconds.observe(labels, seconds)
          commands.inc(labels)
        } else if (c.req.method === 'GET') {
          const labels = { route, status: statusClass }
          querySeconds.observe(labels, seconds)
          queries.inc(labels)
        }
      }
    }
  }

  /** GET /metrics for operators (the OPERATOR_TOKEN as a bearer token: a scrape config's `authorization`). */
  const routes = () => {
    const app = router()
    app.use('/metrics', requireScrapeToken(deps.config.OPERATOR_TOKEN))
    app.get('/metrics', async (c) => c.body(await registry.render(), 200, { 'content-type': PROMETHEUS_CONTENT_TYPE }))
    return app
  }

  return { registry, middleware, routes, close: () => loop.disable() }
}
