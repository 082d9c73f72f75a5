import { join } from 'node:path'
import type { AgentRunsPort } from '../adapters/agent-runs.ts'
import type { Config } from '../adapters/config.ts'
import { PostgresDataKeys } from '../adapters/data-keys.ts'
import { type DevMailbox, mailerFor } from '../adapters/dev-mailbox.ts'
import type { EventStore } from '../adapters/event-store.ts'
import { createEventStore } from '../adapters/event-store-factory.ts'
import { type Identity, startIdentity } from '../adapters/identity.ts'
import type { Logger } from '../adapters/logger.ts'
import { withPersonalData } from '../adapters/personal-data-store.ts'
import type { PgPool } from '../adapters/postgres.ts'
import { PostgresEventStore } from '../adapters/postgres-event-store.ts'
import { PostgresUserStreams } from '../adapters/postgres-user-streams.ts'
import { MemoryRateLimiter, type RateLimiter, RedisRateLimiter } from '../adapters/rate-limit.ts'
import { connectRedis } from '../adapters/redis.ts'
import { RedisUserStreams } from '../adapters/redis-user-streams.ts'
import { StreamCache } from '../adapters/stream-cache.ts'
import { withUpcasting } from '../adapters/upcasting-event-store.ts'
import type { UserStreams } from '../adapters/user-streams.ts'
import { personalData } from '../domain/personal-data.ts'
import { eventUpcasters } from '../domain/schema-versions.ts'
import type { AppDeps } from '../http/context.ts'
import { startIdempotencySweep } from '../http/idempotency.ts'
import { PrincipalCache } from '../http/principal-cache.ts'
import { logicalDatabases } from '../migrations/index.ts'
import type { Processor, ProcessorTimers } from '../processors/processor.ts'
import type { ProcessorRuntime } from '../processors/runtime.ts'
import { ConsistencyWaiter } from '../projections/consistency.ts'
import type { Projector } from '../projections/engine.ts'
import { loadCheckpoint, ProjectionEngine } from '../projections/engine.ts'
import { projectors as readModelProjectors } from '../projections/index.ts'
import { realtimeProjector } from '../projections/realtime.ts'
import { RealtimeOutbox } from '../projections/realtime-outbox.ts'
import { RealtimeGateway } from '../realtime/gateway.ts'
import { agentRunsInProcess, localAgents, remoteAgents, startAgentsRole } from './agents.ts'
import { assertAppLogins, connect, databaseUrls, openDatabases, prepareDatabases } from './databases.ts'
import { type ProcessorDeps, processorDefinitions, remoteTimers, startProcessorRole } from './processors.ts'

export type Services = AppDeps & {
  /** The agents worker's port, served at /api/internal/agent-runs/* to workers apart from the data. */
  readonly agentRuns: AgentRunsPort
  /** The API's pool of the tenant database. */
  readonly pool: PgPool
  /** Every job's pool, as /metrics shows them. */
  readonly pools: Readonly<Record<'api' | 'events' | 'projector' | 'realtime', PgPool>>
  readonly engine: ProjectionEngine | null
  readonly projectors: readonly Projector[]
  readonly userStreams: UserStreams
  readonly gateway: RealtimeGateway
  readonly rateLimiter: RateLimiter
  /** OIDC (or the dev IdP), the shared replay cache, agent token keys, the server's secret keys. */
  readonly identity: Identity
  /** Every processor, defined (run only where ROLES has processors). */
  readonly processors: readonly Processor[]
  readonly processorRuntime: ProcessorRuntime | null
  /** Timers for a processor's handler an operator retries here (whichever process runs the timer runner fires them). */
  readonly processorTimers: ProcessorTimers
  /** Where mail goes without SMTP_URL: listed at /dev-mail. */
  readonly devMailbox: DevMailbox | null
  ready(): Promise<Record<string, 'ok' | string>>
  close(): Promise<void>
}

export async function startServices(config: Config, logger: Logger): Promise<Services> {
  if (!databaseUrls(config)) {
    logger.info(
      { dir: join(config.DATA_DIR, 'postgres'), port: config.EMBEDDED_POSTGRES_PORT },
      'DATABASE_URL unset: starting embedded Postgres',
    )
  }
  const databases = await openDatabases(config, (line) => logger.debug({ postgres: line }))
  const applied = await prepareDatabases(databases)
  if (applied.length) logger.info({ applied }, 'migrations applied')
  const unowned = logicalDatabases.filter((d) => !databases[d].ownerUrl)
  if (unowned.length) logger.info({ databases: unowned }, 'no owner login (MIGRATION_DATABASE_URL unset): no migrations at start')
  // A pool per job, so that none starves another: requests, the event store (commands' reads and appends, the
  // subscriptions), the projectors' batches with the fan-out's outbox, and the realtime streams on Postgres.
  // Pools open connections on demand: a job this process does not run holds none.
  const connections = {
    api: connect(databases, { max: config.DATABASE_POOL_SIZE, applicationName: 'workspace-api' }),
    events: connect(databases, { max: config.DATABASE_POOL_SIZE, applicationName: 'workspace-events' }),
    projector: connect(databases, { max: 4, applicationName: 'workspace-projector' }),
    realtime: connect(databases, { max: 8, applicationName: 'workspace-realtime' }),
    processors: connect(databases, { max: 4, applicationName: 'workspace-processors' }),
    agents: connect(databases, { max: 8, applicationName: 'workspace-agents' }),
  }
  const closeConnections = async () => {
    for (const c of Object.values(connections)) await c.close()
  }
  const pool = connections.api.poolOf('tenant')
  const db = connections.api.dbOf('tenant')
  const controlDb = connections.api.dbOf('control')
  await assertAppLogins(databases, connections.api).catch(async (e: unknown) => {
    await closeConnections()
    await databases.stop?.()
    throw e
  })

  const identity = await startIdentity(config, controlDb)

  const adapter = createEventStore(config, connections.events.poolOf('eventstore'))
  if (adapter instanceof PostgresEventStore) await adapter.assertHistoryOrdered()
  // Decrypted before upcast: upcasters, deciders and projectors see plaintext (or what an erased field reads as).
  const dataKeys = new PostgresDataKeys(controlDb, async () => identity.keys.dataKeyWrapper)
  // Tenant API authentications, kept while the changes that end them can reach this process (the adapter's own
  // subscription: the ids it reads are no personal data, and nothing is decrypted for it), and told at once of
  // what this process appends.
  const principals = new PrincipalCache({ store: adapter, logger }, { ttlMs: config.PRINCIPAL_CACHE_TTL_MS })
  if (config.ROLES.includes('api') || config.ROLES.includes('realtime')) await principals.start()
  const store: EventStore = principals.watching(withUpcasting(withPersonalData(adapter, dataKeys, personalData), eventUpcasters))

  // Per-user realtime streams: Redis when configured, else Postgres (the embedded default).
  const redis = config.REDIS_URL ? connectRedis(config.REDIS_URL) : null
  // ioredis reconnects by itself; an outage shows in /readyz and as 503s, not as an unhandled error.
  redis?.on('error', (e: Error) => logger.warn({ err: e.message }, 'redis connection error'))
  const streamOptions = { queueTtlMs: config.REALTIME_QUEUE_TTL_MS }
  const userStreams: UserStreams = redis
    ? new RedisUserStreams(redis, streamOptions)
    : new PostgresUserStreams(connections.realtime.poolOf('tenant'), streamOptions)
  const rateLimiter: RateLimiter = redis ? new RedisRateLimiter(redis) : new MemoryRateLimiter()
  const outbox = new RealtimeOutbox({ db: connections.projector.dbOf('tenant'), streams: userStreams, logger })
  const fanout = realtimeProjector(outbox)
  const projectors: readonly Projector[] = [...readModelProjectors, fanout]
  const gateway = new RealtimeGateway(userStreams, {
    heartbeatMs: config.REALTIME_HEARTBEAT_MS,
    fannedOutUpTo: () => loadCheckpoint(db, fanout),
  })

  const engine = config.ROLES.includes('projector')
    ? new ProjectionEngine(
        { store, db: connections.projector.dbOf('tenant'), controlDb: connections.projector.dbOf('control'), logger },
        projectors,
      )
    : null
  // Mail goes out by SMTP when SMTP_URL is set, else into the dev mailbox (/dev-mail, where the dev IdP is allowed).
  const { mailer, devMailbox } = mailerFor(config, controlDb)
  const processorDeps: ProcessorDeps = {
    config,
    logger,
    store,
    upcasters: eventUpcasters,
    db: connections.processors.dbOf('tenant'),
    controlDb: connections.processors.dbOf('control'),
    controlPool: connections.processors.poolOf('control'),
    mailer,
    userStreams,
    publicUrl: identity.publicUrl,
    inviteTokenKey: identity.keys.inviteTokenKey,
  }
  // Defined in every process: the API retries an operator's parked event through its processor.
  const processorsDefined = processorDefinitions(processorDeps)
  const processorRole = config.ROLES.includes('processors') ? await startProcessorRole(processorDeps, processorsDefined) : null
  const agentsLocal = {
    config,
    store,
    upcasters: eventUpcasters,
    db: connections.agents.dbOf('tenant'),
    controlDb: connections.agents.dbOf('control'),
    controlPool: connections.agents.poolOf('control'),
    logger,
  }
  const agentWorker = config.ROLES.includes('agents')
    ? await startAgentsRole(config, logger, config.AGENTS_API_URL ? remoteAgents(config) : localAgents(agentsLocal))
    : null
  // What /api/internal/agent-runs/* serves a worker apart from the data.
  const agentRuns = agentRunsInProcess({ config, store, upcasters: eventUpcasters, db, controlDb })
  engine?.start()
  const stopIdempotencySweep = config.ROLES.includes('api') ? startIdempotencySweep(controlDb, logger) : null
  // Deliveries a previous process recorded and did not get to append; each fan-out batch then kicks it again.
  if (engine) outbox.kick()
  const waiter = new ConsistencyWaiter({
    store,
    db,
    controlDb,
    projectors,
    engine: engine ?? undefined,
    timeoutMs: config.CONSISTENCY_TIMEOUT_MS,
  })

  return {
    config,
    logger,
    store,
    upcasters: eventUpcasters,
    db,
    controlDb,
    principals,
    streamCache: new StreamCache(),
    agentRuns,
    processors: processorsDefined.processors,
    processorRuntime: processorRole?.runtime ?? null,
    processorTimers: remoteTimers({ store, upcasters: eventUpcasters }),
    devMailbox,
    pool,
    pools: {
      api: pool,
      events: connections.events.poolOf('eventstore'),
      projector: connections.projector.poolOf('tenant'),
      realtime: connections.realtime.poolOf('tenant'),
    },
    engine,
    projectors,
    userStreams,
    gateway,
    rateLimiter,
    waiter,
    identity,
    async ready() {
      const checks: Record<string, string> = {}
      const answers = await Promise.all(
        connections.api.all().map((p) =>
          p.query('select 1').then(
            () => 'ok',
            (e: Error) => e.message,
          ),
        ),
      )
      checks.postgres = answers.find((a) => a !== 'ok') ?? 'ok'
      if (redis) {
        checks.redis = await redis.ping().then(
          () => 'ok',
          (e: Error) => e.message,
        )
      }
      checks.eventStore = await store.headPosition().then(
        () => 'ok',
        (e: Error) => e.message,
      )
      return checks
    },
    async close() {
      // Workers and processors first: they drain their effects while the store and pools still answer.
      await agentWorker?.stop()
      await processorRole?.stop()
      await gateway.close()
      await principals.close()
      await engine?.stop()
      await outbox.close()
      await userStreams.close()
      await rateLimiter.close()
      await mailer.close()
      redis?.disconnect()
      await stopIdempotencySweep?.()
      await store.close()
      await closeConnections()
      await databases.stop?.()
    },
  }
}
