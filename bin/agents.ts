import { randomUUID } from 'node:crypto'
import { hostname } from 'node:os'
import type { Config } from '../adapters/config.ts'
import type { Llm } from '../adapters/llm.ts'
import type { Logger } from '../adapters/logger.ts'
import { openAiLlm } from '../adapters/openai-llm.ts'
import type { AnyDb, PgPool } from '../adapters/postgres.ts'
import { loadAgent } from '../commands/agents.ts'
import { resolveMentions } from '../commands/directory.ts'
import { postMessage } from '../commands/messages.ts'
import type { CommandContext, PipelineDeps } from '../commands/pipeline.ts'
import { recordUsage, reserveSpend } from '../commands/usage.ts'
import { DomainError } from '../domain/decider.ts'
import { LimitReachedError } from '../domain/usage.ts'
import type { Principal } from '../http/principal.ts'
import { builtinTools } from '../processors/agents/builtin-tools.ts'
import { conversationContext } from '../processors/agents/context.ts'
import { type ExecutorDeps, type RunAgent, SpendRefused } from '../processors/agents/executor.ts'
import { type ExistingRun, runItemId } from '../processors/agents/recorder.ts'
import { AgentWorker } from '../processors/agents/worker.ts'

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

/** The longest answer a model call is priced for before it is made: what a reservation holds. */
const MAX_OUTPUT_TOKENS_PRICED = 4_096

const asAgent = (run: ExistingRun, agent: Pick<RunAgent, 'tenantId' | 'agentId'>, purpose: string): CommandContext => ({
  tenantId: agent.tenantId,
  actor: { type: 'agent', id: agent.agentId },
  correlationId: run.runId,
  causationId: run.runId,
  now: () => new Date(),
  newId: () => runItemId(run.runId, purpose),
})

/**
 * What a run needs around the model: the tools, the context, the answer posted as the agent, and spending checked
 * against the caps before each model call (a reservation priced on the call's size) and recorded after it.
 */
export function agentExecutor(deps: AgentsDeps, llm: Llm | null): ExecutorDeps {
  const spent = new Map<string, string>()
  return {
    llm,
    tools: builtinTools(deps),
    logger: deps.logger,
    maxSteps: deps.config.AGENT_MAX_STEPS,
    context: conversationContext(deps.db),
    spend: {
      async before(run, agent, step, messages) {
        const reservationId = runItemId(run.runId, `reservation:${step}`)
        const inputTokens = Math.ceil(JSON.stringify(messages).length / 4)
        try {
          await reserveSpend(deps, asAgent(run, agent, `reservation:${step}`), {
            orgId: agent.tenantId,
            reservationId,
            agentId: agent.agentId,
            roomId: run.roomId,
            taskId: run.taskId,
            estimate: { model: agent.model, inputTokens, outputTokens: MAX_OUTPUT_TOKENS_PRICED },
          })
          spent.set(`${run.runId}:${step}`, reservationId)
        } catch (e) {
          if (e instanceof LimitReachedError) throw new SpendRefused('limit_reached', e.message)
          if (e instanceof DomainError && e.kind !== 'not_found') throw new SpendRefused('budget', e.message)
          throw e
        }
      },
      async after(run, agent, step, usage) {
        const reservationId = spent.get(`${run.runId}:${step}`) ?? null
        spent.delete(`${run.runId}:${step}`)
        if (!usage) return
        await recordUsage(deps, asAgent(run, agent, `usage:${step}`), {
          orgId: agent.tenantId,
          recordId: runItemId(run.runId, `usage:${step}`),
          reservationId,
          agentId: agent.agentId,
          roomId: run.roomId,
          taskId: run.taskId,
          usage: {
            kind: 'llm',
            model: agent.model,
            inputTokens: usage.inputTokens,
            cachedInputTokens: usage.cachedInputTokens,
            outputTokens: usage.outputTokens,
          },
        })
      },
    },
    async alwaysAllowed(run, tool) {
      const { state } = await loadAgent(deps, run.agentId)
      return state.exists && state.allowedTools.has(`${run.roomId} ${tool}`)
    },
    async reply(run, agent, text, messageId) {
      const me = { tenantId: agent.tenantId, userId: agent.agentId } as Principal
      await postMessage(deps, asAgent(run, agent, 'reply'), {
        messageId,
        in: run.taskId ? { taskId: run.taskId } : { roomId: run.roomId },
        text,
        mentions: await resolveMentions(deps.db, me, text),
        author: { userId: agent.agentId, role: agent.role, type: 'agent' },
      })
    },
  }
}

/** The agents role: a worker claiming runs under leases shared with every other such process. */
export async function startAgentsRole(deps: AgentsDeps, llm: Llm | null = configuredLlm(deps.config)): Promise<AgentWorker> {
  const worker = new AgentWorker(
    {
      ...deps,
      logger: deps.logger.child({ role: 'agents' }),
      executor: agentExecutor(deps, llm),
      workerId: `${hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`,
    },
    {
      concurrency: deps.config.AGENT_CONCURRENCY,
      leaseMs: deps.config.AGENT_LEASE_MS,
      pollMs: deps.config.AGENT_POLL_MS,
      defaultModel: deps.config.AGENT_DEFAULT_MODEL,
    },
  )
  await worker.start()
  return worker
}
