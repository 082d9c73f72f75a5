import type { AgentRunsPort, HeldRun } from '../../adapters/agent-runs.ts'
import type { Logger } from '../../adapters/logger.ts'
import { type ExecutorDeps, executeRun, type RunOutcome } from './executor.ts'
import { RunRecorder } from './recorder.ts'

export type AgentWorkerOptions = {
  /** Runs worked on at once. */
  readonly concurrency: number
  readonly leaseMs: number
  /** The fallback poll, should a notification be missed (or, without notifications, how often it looks). */
  readonly pollMs: number
  /** Without notifications: how often it asks whether a run it works on was cancelled. */
  readonly stopCheckMs?: number
}

/** Notifications of runs to claim and runs cancelled (the run queue's NOTIFY, in process): without, the worker polls. */
export type RunNotifications = {
  listen(handlers: { onClaimable(): void; onCancelled(runId: string): void; onLost(): void }): Promise<void>
  close(): Promise<void>
}

export type AgentWorkerDeps = {
  readonly port: AgentRunsPort
  readonly notifications?: RunNotifications
  readonly logger: Logger
  readonly executor: Omit<ExecutorDeps, 'port'>
  /** This worker's name in the leases it takes. */
  readonly workerId: string
}

type Held = { readonly runId: string; readonly controller: AbortController; readonly done: Promise<void> }

/**
 * An agents worker: any number run side by side, in the API's process or elsewhere (the port is then
 * `/api/internal/*`). It hears of claimable runs through the run queue's notifications (or polls), claims one under
 * a lease (a claim is a decision on the run's stream: exactly one worker wins), renews the lease while it works, and
 * aborts the run's model call and tool at once when the run is cancelled or the lease is lost. A worker that dies
 * loses its leases; another claims the runs when they lapse and resumes each from its last recorded item.
 */
export class AgentWorker {
  private readonly deps: AgentWorkerDeps
  private readonly options: AgentWorkerOptions
  private readonly held = new Map<string, Held>()
  private readonly timers = new Set<NodeJS.Timeout>()
  private ticking: Promise<void> | null = null
  private again = false
  private stopped = false

  constructor(deps: AgentWorkerDeps, options: AgentWorkerOptions) {
    this.deps = deps
    this.options = options
  }

  /** Runs being worked on here. */
  get working(): readonly string[] {
    return [...this.held.keys()]
  }

  async start(): Promise<void> {
    const notified = this.deps.notifications
      ? await this.deps.notifications
          .listen({
            onClaimable: () => this.kick(),
            onCancelled: (runId) => this.held.get(runId)?.controller.abort(),
            onLost: () => this.kick(),
          })
          .then(() => true)
          .catch((e) => {
            this.deps.logger.warn({ err: e }, 'agents: cannot listen; polling only')
            return false
          })
      : false
    this.every(this.options.pollMs, async () => this.kick())
    // Unnotified of cancels, it asks; a cancel then reaches the run within this interval.
    if (!notified) this.every(this.options.stopCheckMs ?? 500, () => this.checkStopped())
    this.kick()
  }

  private every(ms: number, task: () => Promise<void>): void {
    const next = () => {
      const timer = setTimeout(() => {
        this.timers.delete(timer)
        task()
          .catch((e) => this.deps.logger.warn({ err: e }, 'agents: periodic check failed'))
          .finally(() => {
            if (!this.stopped) next()
          })
      }, ms)
      timer.unref()
      this.timers.add(timer)
    }
    next()
  }

  private async checkStopped(): Promise<void> {
    if (this.held.size === 0) return
    for (const runId of await this.deps.port.stopped([...this.held.keys()])) this.held.get(runId)?.controller.abort()
  }

  /** Stops claiming, aborts what it works on (their leases lapse and another worker resumes them), and waits. */
  async stop(): Promise<void> {
    this.stopped = true
    for (const t of this.timers) clearTimeout(t)
    await this.deps.notifications?.close()
    for (const h of this.held.values()) h.controller.abort()
    await Promise.all([...this.held.values()].map((h) => h.done))
    await this.ticking
  }

  /** Looks for work now (coalesced: one look at a time, one more if asked meanwhile). */
  kick(): void {
    if (this.stopped) return
    if (this.ticking) {
      this.again = true
      return
    }
    this.ticking = this.tick()
      .catch((e) => this.deps.logger.error({ err: e }, 'agents: looking for runs failed'))
      .finally(() => {
        this.ticking = null
        if (this.again) {
          this.again = false
          this.kick()
        }
      })
  }

  private async tick(): Promise<void> {
    const free = this.options.concurrency - this.held.size
    if (free <= 0) return
    for (const c of await this.deps.port.claimable(free * 2)) {
      if (this.stopped || this.held.size >= this.options.concurrency) return
      if (this.held.has(c.runId)) continue
      const state = await this.deps.port.claim(c.tenantId, c.runId, {
        workerId: this.deps.workerId,
        leaseMs: this.options.leaseMs,
      })
      if (state) this.hold(c.tenantId, state)
    }
  }

  private hold(tenantId: string, state: HeldRun): void {
    const controller = new AbortController()
    const done = this.work(tenantId, state, controller)
      .catch((e) => this.deps.logger.error({ err: e, runId: state.runId }, 'agents: a run failed to run'))
      .finally(() => {
        this.held.delete(state.runId)
        this.kick()
      })
    this.held.set(state.runId, { runId: state.runId, controller, done })
  }

  private async work(tenantId: string, state: HeldRun, controller: AbortController): Promise<void> {
    const { port } = this.deps
    const agent = await port.agent(tenantId, state.agentId)
    const recorder = new RunRecorder(port, tenantId, { workerId: this.deps.workerId, generation: state.generation }, state)
    const renewing = setInterval(
      () => {
        recorder.renew(this.options.leaseMs).catch((e) => {
          this.deps.logger.info({ runId: state.runId, err: e }, 'agents: lease lost')
          controller.abort()
        })
      },
      Math.max(250, Math.floor(this.options.leaseMs / 3)),
    )
    renewing.unref()
    let outcome: RunOutcome
    try {
      outcome = await executeRun({ ...this.deps.executor, port }, recorder, agent, {
        tenantId,
        agentId: state.agentId,
        role: agent.role,
        signal: controller.signal,
      })
    } finally {
      clearInterval(renewing)
    }
    this.deps.logger.info({ runId: state.runId, agentId: state.agentId, outcome }, 'agents: run')
    // The thread starts its next run at once from what waited; the runs processor makes sure of it should this fail.
    // A run lost to a cancel has finished too: its thread is freed here (finishing a run still going does nothing).
    if (outcome !== 'requires_action') await port.finishThread(tenantId, state.threadId, state.runId)
  }
}
