import { randomUUID } from 'node:crypto'
import { hostname } from 'node:os'
import { serve } from '@hono/node-server'
import { Hono } from 'hono'
import type { AgentRunsPort } from '../adapters/agent-runs.ts'
import { agentRunsHttp } from '../adapters/agent-runs-http.ts'
import { type Config, ConfigError } from '../adapters/config.ts'
import type { Llm } from '../adapters/llm.ts'
import type { Logger } from '../adapters/logger.ts'
import { openAiLlm } from '../adapters/openai-llm.ts'
import type { AnyDb, PgPool } from '../adapters/postgres.ts'
import type { PipelineDeps } from '../commands/pipeline.ts'
import { builtinTools } from '../processors/agents/builtin-tools.ts'
import { conversationContext } from '../processors/agents/context.ts'
import { inProcessRuns, runQueueNotifications } from '../processors/agents/in-process-runs.ts'
import { modelWindows } from '../processors/agents/window.ts'
import { AgentWorker, type RunNotifications } from '../processors/agents/worker.ts'

export type AgentsDeps = PipelineDeps & {
  readonly config: Config
  readonly logger: Logger
  /** The tenant database, read as the agent (context, tools, mentions). */
  readonly db: AnyDb
  readonly controlDb: AnyDb
  readonly controlPool: PgPool
}

/** The model agents run on, as configured; null when none is (a run then fails saying so). */
export const configuredLlm = (config: Config): Llm | null =>
  config.OPENAI_BASE_URL || config.OPENAI_API_KEY
    ? openAiLlm({ baseUrl: config.OPENAI_BASE_URL, apiKey: config.OPENAI_API_KEY, api: config.LLM_API })
    : null

/** The worker's port served by this process: what the agents role uses beside the data, and `/api/internal/*` serves. */
export const agentRunsInProcess = (deps: Omit<AgentsDeps, 'controlPool' | 'logger'>): AgentRunsPort =>
  inProcessRuns({
    ...deps,
    tools: builtinTools(deps),
    context: conversationContext(deps.db),
    defaultModel: deps.config.AGENT_DEFAULT_MODEL,
  })

/** Where the worker works: beside the data (hearing of runs by NOTIFY), or through the internal API (polling). */
export type AgentsPlacement = { readonly port: AgentRunsPort; readonly notifications?: RunNotifications }

/** Beside the data: the in-process port on the agents role's own connections. */
export const localAgents = (deps: AgentsDeps): AgentsPlacement => ({
  port: agentRunsInProcess(deps),
  notifications: runQueueNotifications(deps.controlPool),
})

/** Apart from the data: AGENTS_API_URL's `/api/internal/*` with SERVICE_TOKEN. */
export function remoteAgents(config: Config): AgentsPlacement {
  if (!config.AGENTS_API_URL || !config.SERVICE_TOKEN) {
    throw new ConfigError('AGENTS_API_URL needs SERVICE_TOKEN: the internal API takes nothing else')
  }
  return { port: agentRunsHttp({ baseUrl: config.AGENTS_API_URL, serviceToken: config.SERVICE_TOKEN }) }
}

/** The agents role: a worker claiming runs under leases shared with every other such process, wherever they run. */
export async function startAgentsRole(
  config: Config,
  logger: Logger,
  placement: AgentsPlacement,
  llm: Llm | null = configuredLlm(config),
): Promise<AgentWorker> {
  const log = logger.child({ role: 'agents', ...(placement.notifications ? {} : { api: config.AGENTS_API_URL }) })
  const worker = new AgentWorker(
    {
      ...placement,
      logger: log,
      executor: { llm, logger: log, maxSteps: config.AGENT_MAX_STEPS, window: modelWindows(config) },
      workerId: `${hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`,
    },
    { concurrency: config.AGENT_CONCURRENCY, leaseMs: config.AGENT_LEASE_MS, pollMs: config.AGENT_POLL_MS },
  )
  await worker.start()
  return worker
}

/**
 * A process that is only an agents worker apart from the API (ROLES=agents with AGENTS_API_URL): no database, no
 * event store; `/healthz` on PORT says what it works on, `/readyz` whether the API takes its credential. On SIGTERM it stops claiming and aborts what it
 * works on (another worker resumes those once their leases lapse).
 */
export async function serveRemoteAgents(config: Config, logger: Logger): Promise<void> {
  const placement = remoteAgents(config)
  const worker = await startAgentsRole(config, logger, placement)
  const app = new Hono()
  app.get('/healthz', (c) => c.json({ status: 'ok', role: 'agents', working: worker.working.length }))
  // Ready while the internal API answers this worker's credential.
  app.get('/readyz', async (c) => {
    try {
      await placement.port.claimable(1)
      return c.json({ status: 'ready', role: 'agents' })
    } catch (e) {
      return c.json({ status: 'not ready', reason: e instanceof Error ? e.message : String(e) }, 503)
    }
  })
  const server = serve({ fetch: app.fetch, hostname: config.HOST, port: config.PORT }, (info) =>
    logger.info({ url: `http://${info.address}:${info.port}`, roles: config.ROLES, api: config.AGENTS_API_URL }, 'listening'),
  )
  const shutdown = async (signal: string) => {
    logger.info({ signal }, 'draining')
    server.close()
    await worker.stop()
    logger.info('stopped')
    process.exit(0)
  }
  process.once('SIGTERM', () => void shutdown('SIGTERM'))
  process.once('SIGINT', () => void shutdown('SIGINT'))
}
