import {
  type AgentRunsPort,
  type ClaimableRun,
  type RunContext,
  RunLostError,
  type RunningAgent,
  type RunSnapshot,
  runFromSnapshot,
  SpendRefused,
  type ToolOutcome,
  type ToolSpec,
} from './agent-runs.ts'

export type AgentRunsHttpOptions = {
  /** Where the API serves `/api/internal/*`, e.g. `http://api.internal:3000`. */
  readonly baseUrl: string
  /** SERVICE_TOKEN. */
  readonly serviceToken: string
  /** How long one request may take before it is given up (a tool's call excepted: the run's signal bounds it). */
  readonly timeoutMs?: number
}

/** An answer of the internal API that is neither what was asked nor a refusal the port names. */
export class AgentRunsHttpError extends Error {
  override readonly name = 'AgentRunsHttpError'
  readonly status: number
  readonly code: string | undefined
  constructor(status: number, code: string | undefined, detail: string) {
    super(`internal API answered ${status}${code ? ` ${code}` : ''}: ${detail}`)
    this.status = status
    this.code = code
  }
}

type Problem = { code?: string; detail?: string; title?: string }

/**
 * The worker's port over `/api/internal/*` with the service credential: a worker that runs apart from the API (its
 * own machine, no database credentials) claims, records and acts through the API that owns the data. The server
 * reloads the run and the agent by id for every call: a worker names them, it does not describe them.
 */
export function agentRunsHttp(options: AgentRunsHttpOptions): AgentRunsPort {
  const base = options.baseUrl.replace(/\/+$/, '')
  const timeoutMs = options.timeoutMs ?? 30_000

  async function call<T>(
    method: 'GET' | 'POST',
    path: string,
    body?: unknown,
    signal?: AbortSignal,
  ): Promise<{ status: number; body: T }> {
    const res = await fetch(`${base}${path}`, {
      method,
      headers: {
        authorization: `Bearer ${options.serviceToken}`,
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: signal ?? AbortSignal.timeout(timeoutMs),
    })
    const text = await res.text()
    const parsed = text ? (JSON.parse(text) as unknown) : undefined
    if (res.ok) return { status: res.status, body: parsed as T }
    const problem = (parsed ?? {}) as Problem
    if (res.status === 409 && (problem.code === 'RUN_LEASE_LOST' || problem.code === 'RUN_FINISHED')) {
      throw new RunLostError(problem.detail ?? 'the worker no longer holds this run')
    }
    throw new AgentRunsHttpError(res.status, problem.code, problem.detail ?? problem.title ?? text.slice(0, 200))
  }

  const q = (params: Record<string, string>) => new URLSearchParams(params).toString()
  const runPath = (runId: string) => `/api/internal/agent-runs/${encodeURIComponent(runId)}`

  return {
    async claimable(limit) {
      return (await call<{ runs: ClaimableRun[] }>('GET', `/api/internal/agent-runs/claimable?${q({ limit: String(limit) })}`))
        .body.runs
    },

    async stopped(runIds) {
      if (runIds.length === 0) return []
      const r = await call<{ runIds: string[] }>('GET', `/api/internal/agent-runs/stopped?${q({ ids: runIds.join(',') })}`)
      return r.body.runIds
    },

    async claim(tenantId, runId, lease) {
      try {
        return runFromSnapshot(
          (await call<{ run: RunSnapshot }>('POST', `${runPath(runId)}/claim`, { tenantId, ...lease })).body.run,
        )
      } catch (e) {
        // Another worker won it, or it is not claimable any more.
        if (e instanceof AgentRunsHttpError && (e.status === 409 || e.status === 404)) return null
        throw e
      }
    },

    async command(tenantId, command) {
      const r = await call<{ run: RunSnapshot }>('POST', `${runPath(command.runId)}/commands`, { tenantId, command })
      return runFromSnapshot(r.body.run)
    },

    async load(tenantId, runId) {
      const r = await call<{ run: RunSnapshot | null }>('GET', `${runPath(runId)}?${q({ tenantId })}`)
      return r.body.run ? runFromSnapshot(r.body.run) : { exists: false }
    },

    async finishThread(tenantId, threadId, runId) {
      await call('POST', `${runPath(runId)}/finish`, { tenantId, threadId })
    },

    async agent(tenantId, agentId) {
      return (await call<RunningAgent>('GET', `/api/internal/agents/${encodeURIComponent(agentId)}?${q({ tenantId })}`)).body
    },

    async context(run, agent) {
      return (await call<RunContext>('GET', `${runPath(run.runId)}/context?${q({ tenantId: agent.tenantId })}`)).body
    },

    async reserve(run, agent, step, inputTokens, outputTokens) {
      try {
        await call('POST', `${runPath(run.runId)}/reservations`, { tenantId: agent.tenantId, step, inputTokens, outputTokens })
      } catch (e) {
        if (e instanceof AgentRunsHttpError && e.code === 'LIMIT_REACHED') throw new SpendRefused('limit_reached', e.message)
        if (e instanceof AgentRunsHttpError && e.status >= 400 && e.status < 500 && e.status !== 404)
          throw new SpendRefused('budget', e.message)
        throw e
      }
    },

    async recordUsage(run, agent, step, usage) {
      await call('POST', `${runPath(run.runId)}/usage`, { tenantId: agent.tenantId, step, usage })
    },

    async alwaysAllowed(run, agent, tool) {
      const r = await call<{ allowed: boolean }>(
        'GET',
        `${runPath(run.runId)}/always-allowed?${q({ tenantId: agent.tenantId, tool })}`,
      )
      return r.body.allowed
    },

    async reply(run, agent, text, messageId) {
      await call('POST', `${runPath(run.runId)}/reply`, { tenantId: agent.tenantId, text, messageId })
    },

    async tools(skillsets) {
      const r = await call<{ tools: ToolSpec[] }>('GET', `/api/internal/agent-tools?${q({ skillsets: skillsets.join(',') })}`)
      return r.body.tools
    },

    async runTool(run, agent, toolCall, signal): Promise<ToolOutcome> {
      const r = await call<ToolOutcome>(
        'POST',
        `${runPath(run.runId)}/tool-calls`,
        { tenantId: agent.tenantId, workerId: run.lease?.workerId ?? '', generation: run.generation, ...toolCall },
        signal,
      )
      return r.body
    },
  }
}
