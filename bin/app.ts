import { OpenAPIHono } from '@hono/zod-openapi'
import { bodyLimit } from 'hono/body-limit'
import { requestId } from 'hono/request-id'
import { v7 as uuid } from 'uuid'
import type { Role } from '../adapters/config.ts'
import { DEV_IDP_MOUNT_PATH, devIdpRoutes } from '../adapters/dev-idp.ts'
import { redactTokensIn } from '../adapters/opaque-tokens.ts'
import { agentsCommands } from '../commands/agents.ts'
import { artifactsCommands } from '../commands/artifacts.ts'
import { authCommands } from '../commands/auth.ts'
import { controlCommands } from '../commands/control.ts'
import { internalCommands } from '../commands/internal.ts'
import { messagesCommands } from '../commands/messages.ts'
import { onboardingCommands } from '../commands/onboarding.ts'
import { processorCommands } from '../commands/processors.ts'
import { projectionCommands } from '../commands/projections.ts'
import { roomsCommands } from '../commands/rooms.ts'
import { runsCommands } from '../commands/runs.ts'
import { spacesCommands } from '../commands/spaces.ts'
import { taskQuestionsCommands } from '../commands/task-questions.ts'
import { taskSchedulesCommands } from '../commands/task-schedules.ts'
import { tasksCommands } from '../commands/tasks.ts'
import { usageCommands } from '../commands/usage.ts'
import { usersCommands } from '../commands/users.ts'
import { clientAddress } from '../http/client-address.ts'
import type { AppEnv } from '../http/context.ts'
import { onError, registerErrorStatus } from '../http/errors.ts'
import { idempotency } from '../http/idempotency.ts'
import { operatorKeyOf, requireOperator } from '../http/operator.ts'
import { HttpProblem, renderProblem } from '../http/problem.ts'
import { rateLimit } from '../http/rate-limit.ts'
import { authenticateTenant, claimTenant } from '../http/tenant-auth.ts'
import { refuseNul } from '../http/text-input.ts'
import { processorParking } from '../processors/parking.ts'
import { ConsistencyTimeoutError, TooManyWaitsError, UnknownPositionError } from '../projections/consistency.ts'
import { projectorParking } from '../projections/parking.ts'
import { actionItemsQueries } from '../read-api/action-items.ts'
import { agentsQueries } from '../read-api/agents.ts'
import { artifactsQueries } from '../read-api/artifacts.ts'
import { authQueries } from '../read-api/auth.ts'
import { controlQueries } from '../read-api/control.ts'
import { devMailRoutes } from '../read-api/dev-mail.ts'
import { internalQueries } from '../read-api/internal.ts'
import { messagesQueries } from '../read-api/messages.ts'
import { createMetrics } from '../read-api/metrics.ts'
import { orgsQueries, orgTenantQueries } from '../read-api/orgs.ts'
import { processorMetrics, processorQueries } from '../read-api/processors.ts'
import { projectionQueries } from '../read-api/projections.ts'
import { roomsQueries } from '../read-api/rooms.ts'
import { runsQueries } from '../read-api/runs.ts'
import { spacesQueries } from '../read-api/spaces.ts'
import { taskSchedulesQueries } from '../read-api/task-schedules.ts'
import { tasksQueries } from '../read-api/tasks.ts'
import { usageQueries } from '../read-api/usage.ts'
import { usersQueries } from '../read-api/users.ts'
import { realtimeRoutes } from '../realtime/http.ts'
import type { Services } from './services.ts'

const CORRELATION = /^[\w.:-]{1,128}$/

// The projections' read-your-writes errors, registered here: projections never import the HTTP shell.
registerErrorStatus(ConsistencyTimeoutError, 503, 'NOT_CONSISTENT_YET', {
  title: 'Not consistent yet',
  headers: { 'retry-after': '1' },
})
registerErrorStatus(UnknownPositionError, 400, 'POSITION_UNKNOWN', {
  title: 'Unknown position',
  errors: [{ path: 'consistentAfter', message: 'no event stands at this position' }],
})
registerErrorStatus(TooManyWaitsError, 429, 'TOO_MANY_WAITS', {
  title: 'Too many waiting reads',
  headers: { 'retry-after': '1' },
})

/** The HTTP surface: middleware shared by every route, then one module per context and side. */
export function createApp(services: Services): OpenAPIHono<AppEnv> {
  const { logger, config } = services
  const app = new OpenAPIHono<AppEnv>()

  app.use(requestId({ headerName: 'x-request-id', generator: () => uuid() }))
  const metrics = createMetrics(services, {
    projectors: services.projectors,
    heldPolls: () => services.gateway.heldPolls,
    principalCache: () => ({ ...services.principals.lookups, entries: services.principals.size }),
    pools: services.pools,
    projected: services.engine ? () => services.engine!.statuses() : undefined,
  })
  processorMetrics(metrics.registry, services, {
    processors: services.processors,
    ...(services.processorRuntime ? { statuses: () => services.processorRuntime!.statuses() } : {}),
  })
  app.use(metrics.middleware)
  app.use(async (c, next) => {
    const incoming = c.req.header('x-correlation-id')
    c.set('correlationId', incoming && CORRELATION.test(incoming) ? incoming : c.get('requestId'))
    // A command's events name this request as their cause (commandContext): its log lines say so too.
    const causation = c.req.method === 'GET' || c.req.method === 'HEAD' ? {} : { causationId: c.get('requestId') }
    c.set('log', logger.child({ requestId: c.get('requestId'), correlationId: c.get('correlationId'), ...causation }))
    const started = performance.now()
    await next()
    c.get('log').info(
      {
        method: c.req.method,
        // Paths may carry a token (invite links): never logged in clear.
        path: redactTokensIn(c.req.path),
        status: c.res.status,
        ms: Math.round(performance.now() - started),
        address: clientAddress(c, config.TRUST_PROXY),
      },
      'request',
    )
  })
  // Per client address, before anything else is spent on the request (the dev IdP and /metrics included); the
  // probes are exempt, so that an orchestrator polling them is never told the process is gone.
  app.use(
    rateLimit(services.rateLimiter, {
      name: 'ip',
      limit: config.RATE_LIMIT_IP_PER_MINUTE,
      windowMs: 60_000,
      keyOf: (c) => (/^\/(healthz|readyz)$/.test(c.req.path) ? null : clientAddress(c, config.TRUST_PROXY)),
    }),
  )
  // ROLES: a process serves the HTTP routes of its roles only; probes and /metrics answer on every process.
  const serves = (role: Role) => config.ROLES.includes(role)
  // The local OpenID Provider (only when OIDC_ISSUER is unset): it answers on the raw node response.
  if (serves('api') && services.identity.devIdp) app.route(DEV_IDP_MOUNT_PATH, devIdpRoutes(services.identity.devIdp))
  // Every mail the product sent, where only its developer can reach it (the dev IdP's rule) and no SMTP_URL is set.
  if (serves('api') && config.DEV_IDP && services.devMailbox) app.route('/', devMailRoutes({ devMailbox: services.devMailbox }))
  app.use(
    bodyLimit({
      maxSize: config.MAX_BODY_BYTES,
      onError: (c) =>
        renderProblem(c, {
          status: 413,
          code: 'TOO_LARGE',
          title: 'Payload too large',
          detail: `bodies are limited to ${config.MAX_BODY_BYTES} bytes`,
        }),
    }),
  )
  app.use(refuseNul())

  app.get('/healthz', (c) => c.json({ status: 'ok' }))
  app.get('/readyz', async (c) => {
    const found = await services.ready()
    const down = Object.keys(found).filter((name) => found[name] !== 'ok')
    const checks = Object.fromEntries(Object.keys(found).map((name) => [name, down.includes(name) ? 'unavailable' : 'ok']))
    if (down.length === 0) return c.json({ status: 'ready', checks }, 200)
    // Anyone may probe: backend errors (hosts, users, internals) go to the log, the answer names the dependency.
    c.get('log').warn({ failures: Object.fromEntries(down.map((name) => [name, found[name]])) }, 'not ready')
    return c.json({ status: 'not ready', checks, reason: `${down.join(', ')} not answering` }, 503)
  })

  if (serves('api')) apiRoutes(app, services)
  if (serves('realtime')) {
    authenticatedPerUser(app, services, '/realtime/*')
    app.route('/', realtimeRoutes(services, services.gateway))
  }
  app.route('/', metrics.routes())

  app.notFound((c) =>
    renderProblem(c, {
      status: 404,
      code: 'NOT_FOUND',
      title: 'Not found',
      detail: `no route ${c.req.method} ${c.req.path}`,
    }),
  )
  app.onError(onError(logger))
  return app
}

/**
 * The Tenant API and realtime: the credential checked, limited per user it names, then authenticated to a
 * principal. The limit comes before the principal because resolving it may wait (consistentAfter).
 */
function authenticatedPerUser(app: OpenAPIHono<AppEnv>, services: Services, path: string): void {
  app.use(path, claimTenant(services))
  app.use(
    path,
    rateLimit(services.rateLimiter, {
      name: 'user',
      limit: services.config.RATE_LIMIT_USER_PER_MINUTE,
      windowMs: 60_000,
      keyOf: (c) => (c.get('claimed') ? `${c.get('claimed')!.tenantId}:${c.get('claimed')!.userId}` : null),
    }),
  )
  app.use(path, authenticateTenant(services))
}

/** The `api` role: the Control, Orgs, Auth and Tenant APIs, and the OpenAPI document describing them. */
function apiRoutes(app: OpenAPIHono<AppEnv>, services: Services): void {
  // The operator first: an Idempotency-Key is the operator's own.
  app.use('/control/*', requireOperator(services))
  app.use('/control/*', idempotency({ db: services.controlDb, actorOf: operatorKeyOf }))
  for (const module of [orgsQueries, controlCommands, controlQueries]) app.route('/', module(services))
  for (const module of [authCommands, authQueries, onboardingCommands]) app.route('/', module(services))

  authenticatedPerUser(app, services, '/api/*')
  app.use(
    '/api/*',
    idempotency({
      db: services.controlDb,
      actorOf: (c) => (c.get('principal') ? `${c.get('principal')!.tenantId}:${c.get('principal')!.userId}` : null),
    }),
  )
  const tenantModules = [
    internalQueries,
    internalCommands,
    usersCommands,
    agentsCommands,
    usersQueries,
    spacesCommands,
    roomsCommands,
    messagesCommands,
    spacesQueries,
    roomsQueries,
    messagesQueries,
    tasksCommands,
    tasksQueries,
    orgTenantQueries,
    usageCommands,
    usageQueries,
    artifactsCommands,
    artifactsQueries,
    taskSchedulesCommands,
    taskSchedulesQueries,
    taskQuestionsCommands,
    actionItemsQueries,
    runsCommands,
    runsQueries,
    // Last: GET /api/agents/{id} would otherwise take fixed paths under /api/agents (/api/agents/working).
    agentsQueries,
  ]
  for (const module of tenantModules) app.route('/', module(services))
  app.route('/', projectionQueries(services, services.projectors))
  app.route('/', projectionCommands(services, projectorParking(services, services.projectors)))
  app.route('/', processorQueries(services, services.processors))
  app.route(
    '/',
    processorCommands(
      services,
      processorParking({
        store: services.store,
        controlDb: services.controlDb,
        logger: services.logger,
        processors: services.processors,
        timers: services.processorTimers,
      }),
    ),
  )

  app.openAPIRegistry.registerComponent('securitySchemes', 'operator', { type: 'http', scheme: 'bearer' })
  app.openAPIRegistry.registerComponent('securitySchemes', 'bearer', {
    type: 'http',
    scheme: 'bearer',
    description: 'a tenant session, personal API token or agent token',
  })
  app.openAPIRegistry.registerComponent('securitySchemes', 'service', {
    type: 'http',
    scheme: 'bearer',
    description: 'SERVICE_TOKEN, for /api/internal/* only',
  })
  app.openAPIRegistry.registerComponent('securitySchemes', 'cookie', { type: 'apiKey', in: 'cookie', name: 'ws_session' })
  app.doc31('/openapi.json', {
    openapi: '3.1.0',
    info: {
      title: 'Workspace API',
      version: '0.1.0',
      description:
        'Event-sourced workspace backend. Every command answers with `position`; pass it as `consistentAfter` to read your write. Errors are RFC 9457 problem+json.',
    },
  })
}

export { HttpProblem }
