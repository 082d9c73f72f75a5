import { sql } from 'kysely'
import { v7 as uuid } from 'uuid'
import {
  type AgentRunsPort,
  type HeldRun,
  type RunContext,
  RunLostError,
  type RunningAgent,
  SpendRefused,
  type ToolOutcome,
} from '../../adapters/agent-runs.ts'
import { PgListener } from '../../adapters/pg-listener.ts'
import type { AnyDb, PgPool } from '../../adapters/postgres.ts'
import { orgStream } from '../../adapters/streams.ts'
import { loadAgent } from '../../commands/agents.ts'
import { resolveMentions } from '../../commands/directory.ts'
import { postMessage } from '../../commands/messages.ts'
import { type CommandContext, ConcurrencyError, loadState, type PipelineDeps } from '../../commands/pipeline.ts'
import { finishThreadRun, runCommand, runStream } from '../../commands/runs.ts'
import { recordUsage, reserveSpend } from '../../commands/usage.ts'
import { DomainError } from '../../domain/decider.ts'
import { org } from '../../domain/orgs.ts'
import { AGENT_RUNS_CHANNEL, isFinished, run } from '../../domain/runs.ts'
import { LimitReachedError } from '../../domain/usage.ts'
import type { Principal } from '../../http/principal.ts'
import { runItemId } from './recorder.ts'
import { ToolInputError, ToolRegistry } from './tools.ts'
import type { RunNotifications } from './worker.ts'

export type InProcessRunsDeps = PipelineDeps & {
  /** The tenant database, read as the agent (context, tools, mentions). */
  readonly db: AnyDb
  readonly controlDb: AnyDb
  readonly tools: ToolRegistry
  /** The conversation a run starts from (processors/agents/context.ts). */
  context(run: HeldRun, agent: RunningAgent): Promise<RunContext>
  /** The model an agent with none set runs on. */
  readonly defaultModel: string
}

/** The run's commands, as the agent: in its tenant, caused by the run, ids from what they are for. */
const asAgent = (run: HeldRun, tenantId: string, purpose: string): CommandContext => ({
  tenantId,
  actor: { type: 'agent', id: run.agentId },
  correlationId: run.runId,
  causationId: run.runId,
  now: () => new Date(),
  newId: () => runItemId(run.runId, purpose),
})

const workerContext = (tenantId: string): CommandContext => ({
  tenantId,
  actor: { type: 'agent', id: 'agents-worker' },
  correlationId: uuid(),
  causationId: null,
  now: () => new Date(),
  newId: uuid,
})

/** A worker's command refused because it no longer holds the run. */
const lost = (e: unknown): boolean => e instanceof DomainError && (e.code === 'RUN_LEASE_LOST' || e.code === 'RUN_FINISHED')

/** Whether `run` (as its holder last saw it) is still held by that holder. */
const stillHeld = (current: HeldRun, seen: HeldRun): boolean =>
  !isFinished(current.status) &&
  current.lease !== null &&
  current.lease.workerId === seen.lease?.workerId &&
  current.generation === seen.generation

/**
 * The worker's port served by this process: commands on the event store, reads as the agent under row-level
 * security, tools from the registry. What `/api/internal/*` serves to a worker elsewhere is this same object.
 */
export function inProcessRuns(deps: InProcessRunsDeps): AgentRunsPort {
  const loadRun = (tenantId: string, runId: string) => loadState(deps.store, run, runStream(runId), tenantId)

  const port: AgentRunsPort = {
    async claimable(limit) {
      const r = await sql<{ run_id: string; org_id: string }>`
        select run_id, org_id from control.agent_run_queue
         where status <> 'requires_action' and (lease_until is null or lease_until < now())
         order by queued_at
         limit ${limit}`.execute(deps.controlDb)
      return r.rows.map((row) => ({ runId: row.run_id, tenantId: row.org_id }))
    },

    async stopped(runIds) {
      if (runIds.length === 0) return []
      // A run leaves the queue when it finishes (cancelled included): what is not there has stopped.
      const r = await sql<{ run_id: string }>`
        select run_id from control.agent_run_queue where run_id = any(${runIds}::uuid[])`.execute(deps.controlDb)
      const open = new Set(r.rows.map((row) => row.run_id))
      return runIds.filter((id) => !open.has(id))
    },

    async claim(tenantId, runId, lease) {
      try {
        const r = await runCommand(
          deps,
          workerContext(tenantId),
          { type: 'claim', runId, workerId: lease.workerId, leaseMs: lease.leaseMs, at: new Date().toISOString() },
          runId,
        )
        return r.state.exists && r.events.length > 0 ? r.state : null
      } catch (e) {
        // Another worker won it, or it moved on (finished, waiting for a person).
        if (e instanceof DomainError || e instanceof ConcurrencyError) return null
        throw e
      }
    },

    async command(tenantId, command) {
      try {
        const r = await runCommand(deps, workerContext(tenantId), command, command.runId)
        if (!r.state.exists) throw new RunLostError('the run is gone')
        return r.state
      } catch (e) {
        if (lost(e)) throw new RunLostError((e as Error).message)
        throw e
      }
    },

    load: loadRun,

    async finishThread(tenantId, threadId, runId) {
      const r = await loadRun(tenantId, runId)
      if (!r.exists || !isFinished(r.status)) return
      await finishThreadRun(deps, asAgent(r, tenantId, 'finish'), { threadId, runId })
    },

    async agent(tenantId, agentId) {
      const [{ state: a }, o] = await Promise.all([
        loadAgent(deps, agentId),
        loadState(deps.store, org, orgStream(tenantId), tenantId),
      ])
      const member = o.status === 'none' ? undefined : o.members.get(agentId)
      const agent = a.exists ? a : null
      return {
        tenantId,
        agentId,
        name: agent?.name ?? 'agent',
        model: agent?.model ?? deps.defaultModel,
        rolePrompt: agent?.rolePrompt ?? '',
        skillsets: agent?.skillsets ?? [],
        reasoningEffort: agent?.reasoningEffort ?? null,
        role: member?.active ? member.role : 'guest',
      }
    },

    context: (r, agent) => deps.context(r, agent),

    async reserve(r, agent, step, inputTokens, outputTokens) {
      try {
        await reserveSpend(deps, asAgent(r, agent.tenantId, `reservation:${step}`), {
          orgId: agent.tenantId,
          reservationId: runItemId(r.runId, `reservation:${step}`),
          agentId: agent.agentId,
          roomId: r.roomId,
          taskId: r.taskId,
          estimate: { model: agent.model, inputTokens, outputTokens },
        })
      } catch (e) {
        if (e instanceof LimitReachedError) throw new SpendRefused('limit_reached', e.message)
        if (e instanceof DomainError && e.kind !== 'not_found') throw new SpendRefused('budget', e.message)
        throw e
      }
    },

    async recordUsage(r, agent, step, usage) {
      await recordUsage(deps, asAgent(r, agent.tenantId, `usage:${step}`), {
        orgId: agent.tenantId,
        recordId: runItemId(r.runId, `usage:${step}`),
        // Every model call is reserved before it is made (reserve, same step, same id): this settles it.
        reservationId: runItemId(r.runId, `reservation:${step}`),
        agentId: agent.agentId,
        roomId: r.roomId,
        taskId: r.taskId,
        usage: {
          kind: 'llm',
          model: agent.model,
          inputTokens: usage.inputTokens,
          cachedInputTokens: usage.cachedInputTokens,
          outputTokens: usage.outputTokens,
        },
      })
    },

    async alwaysAllowed(r, _agent, tool) {
      const { state } = await loadAgent(deps, r.agentId)
      return state.exists && state.allowedTools.has(`${r.roomId} ${tool}`)
    },

    async reply(r, agent, text, messageId) {
      const me = { tenantId: agent.tenantId, userId: agent.agentId } as Principal
      await postMessage(deps, asAgent(r, agent.tenantId, 'reply'), {
        messageId,
        in: r.taskId ? { taskId: r.taskId } : { roomId: r.roomId },
        text,
        mentions: await resolveMentions(deps.db, me, text),
        author: { userId: agent.agentId, role: agent.role, type: 'agent' },
      })
    },

    async tools(skillsets) {
      return ToolRegistry.specs(deps.tools.available(skillsets))
    },

    async runTool(r, agent, call, signal): Promise<ToolOutcome> {
      const current = await loadRun(agent.tenantId, r.runId)
      if (!current.exists || !stillHeld(current, r)) throw new RunLostError('the worker no longer holds this run')
      const tool = deps.tools.available(agent.skillsets).find((t) => t.name === call.tool)
      if (!tool) return { output: `There is no tool named ${call.tool} for this agent.`, status: 'failed' }
      let args: Record<string, unknown>
      try {
        args = ToolRegistry.parse(tool, call.arguments)
      } catch (e) {
        if (!(e instanceof ToolInputError)) throw e
        return { output: e.message, status: 'failed' }
      }
      try {
        const result = await tool.run(args, {
          tenantId: agent.tenantId,
          agentId: agent.agentId,
          role: agent.role,
          runId: r.runId,
          roomId: r.roomId,
          taskId: r.taskId,
          signal,
          idFor: (purpose) => runItemId(r.runId, `tool:${call.toolCallId}:${purpose}`),
        })
        return { output: result.output, status: 'completed' }
      } catch (e) {
        if (signal.aborted) throw e
        // What a tool refused (a rule, bad input) is the model's to read and act on; the run goes on.
        return { output: `The call failed: ${e instanceof Error ? e.message : String(e)}`, status: 'failed' }
      }
    },
  }
  return port
}

/** The run queue's notifications (projections/run-queue.ts), heard on one connection of the control database. */
export function runQueueNotifications(controlPool: PgPool): RunNotifications {
  let listener: PgListener | null = null
  return {
    async listen(handlers) {
      listener = new PgListener(controlPool, {
        channel: AGENT_RUNS_CHANNEL,
        applicationName: 'workspace-agents-listen',
        onNotification: (payload) => {
          const [type, runId] = (payload ?? '').split(':')
          if (type === 'run.cancelled' && runId) handlers.onCancelled(runId)
          else handlers.onClaimable()
        },
        onLost: handlers.onLost,
      })
      await listener.listen()
    },
    close: async () => listener?.close(),
  }
}
