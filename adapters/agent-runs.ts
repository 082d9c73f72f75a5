import type { RunCommand, RunItem, RunState } from '../domain/runs.ts'
import type { LlmUsage, ReasoningEffort } from './llm.ts'

/*
 * The port an agents worker works through: claim and renew a run's lease, record its items, read its context, run its
 * tools as the agent, post its answer, reserve and record what it spends. Served in process (processors/agents/
 * in-process-runs.ts) or over `/api/internal/*` with the service credential (agent-runs-http.ts): a worker is the
 * same code either way, and one contract suite holds both to the same behaviour.
 */

export type HeldRun = Extract<RunState, { exists: true }>

/** What a worker holding a run records on it: every such command names the lease's holder and generation. */
export type WorkerRunCommand = Extract<
  RunCommand,
  { type: 'renew' | 'add_item' | 'update_item' | 'require_action' | 'complete' | 'fail' | 'stop_incomplete' }
>

/** The agent as a run needs it. */
export type RunningAgent = {
  readonly tenantId: string
  readonly agentId: string
  readonly name: string
  readonly model: string
  readonly rolePrompt: string
  readonly skillsets: readonly string[]
  readonly reasoningEffort: ReasoningEffort | null
  /** Its role in the org, as its commands are authorized (an agent no longer active acts as a guest). */
  readonly role: 'owner' | 'admin' | 'member' | 'guest'
}

/** A tool as the model is told of it, and whether a person must approve a call. */
export type ToolSpec = {
  readonly name: string
  readonly description: string
  /** The JSON Schema of its arguments. */
  readonly parameters: Record<string, unknown>
  readonly skillset: string
  readonly risky: boolean
}

/** A call the model made, to run as the agent of the run that holds it. */
export type ToolCallRequest = { readonly toolCallId: string; readonly tool: string; readonly arguments: string }

/** What the model reads back: a failed call (bad arguments, a rule refused it) is an answer too. */
export type ToolOutcome = { readonly output: string; readonly status: 'completed' | 'failed' }

/** What a run's model calls start from, in parts: the executor fits them into the model's window. */
export type RunContext = {
  /** Who the agent is and how it acts (its role prompt). */
  readonly system: string
  /** The task the run works on (title, status, description). */
  readonly task: string | null
  /** Notes from similar tasks the agent closed, most alike first. */
  readonly notes: readonly string[]
  /** Where the recent messages were said: `#ops`, or a task's conversation. */
  readonly where: string
  /** The conversation's recent messages, a line each, oldest first. */
  readonly recent: readonly string[]
}

export type ClaimableRun = { readonly runId: string; readonly tenantId: string }

/** The worker no longer holds the run (another claimed it, a person cancelled it, it finished). */
export class RunLostError extends Error {
  override readonly name = 'RunLostError'
}

/** A spend refused before a model call: the run stops incomplete, saying which limit. */
export class SpendRefused extends Error {
  override readonly name = 'SpendRefused'
  readonly reason: 'limit_reached' | 'budget'
  constructor(reason: 'limit_reached' | 'budget', message: string) {
    super(message)
    this.reason = reason
  }
}

export interface AgentRunsPort {
  /** Runs a worker may claim now (queued, released, or past their lease), oldest first. */
  claimable(limit: number): Promise<ClaimableRun[]>
  /** Of these runs, those that were cancelled or have finished: their worker stops at once. */
  stopped(runIds: readonly string[]): Promise<string[]>
  /** The run under a new lease for this worker; null when another worker won it or it is not claimable. */
  claim(tenantId: string, runId: string, lease: { readonly workerId: string; readonly leaseMs: number }): Promise<HeldRun | null>
  /** A fenced command of the holder; RunLostError when it no longer holds the run. */
  command(tenantId: string, command: WorkerRunCommand): Promise<HeldRun>
  load(tenantId: string, runId: string): Promise<RunState>
  /** The run has finished: its thread starts the next run from the inputs that waited (telling twice acts once). */
  finishThread(tenantId: string, threadId: string, runId: string): Promise<void>
  agent(tenantId: string, agentId: string): Promise<RunningAgent>
  /** The conversation before the run's own turns: who the agent is, the room or task, recent messages, memory. */
  context(run: HeldRun, agent: RunningAgent): Promise<RunContext>
  /** Holds budget for a model call of this size before it is made; SpendRefused when a cap or the policy says no. */
  reserve(run: HeldRun, agent: RunningAgent, step: number, inputTokens: number, outputTokens: number): Promise<void>
  /** What a model call used, settling its step's reservation (the same step counts once). */
  recordUsage(run: HeldRun, agent: RunningAgent, step: number, usage: LlmUsage): Promise<void>
  /** Whether people let this agent run this risky tool in the run's room without asking each time. */
  alwaysAllowed(run: HeldRun, agent: RunningAgent, tool: string): Promise<boolean>
  /** Posts the run's answer in its room (or task) as the agent, once under `messageId`. */
  reply(run: HeldRun, agent: RunningAgent, text: string, messageId: string): Promise<void>
  /** The tools of these skillsets (the core ones always). */
  tools(skillsets: readonly string[]): Promise<ToolSpec[]>
  /** Runs a call as the run's agent while its holder still holds it (RunLostError otherwise). */
  runTool(run: HeldRun, agent: RunningAgent, call: ToolCallRequest, signal: AbortSignal): Promise<ToolOutcome>
}

/** A run as it crosses the wire: its maps as lists. */
export type RunSnapshot = Omit<HeldRun, 'items' | 'decisions'> & {
  readonly items: RunItem[]
  readonly decisions: { readonly toolCallId: string; readonly decision: 'approve' | 'reject' }[]
}

export const runSnapshot = (run: HeldRun): RunSnapshot => ({
  ...run,
  items: [...run.items.values()],
  decisions: [...run.decisions].map(([toolCallId, decision]) => ({ toolCallId, decision })),
})

export const runFromSnapshot = (s: RunSnapshot): HeldRun => ({
  ...s,
  items: new Map(s.items.map((i) => [i.itemId, i])),
  decisions: new Map(s.decisions.map((d) => [d.toolCallId, d.decision])),
})
