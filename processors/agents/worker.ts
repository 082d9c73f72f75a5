import { sql } from 'kysely'
import { v7 as uuid } from 'uuid'
import type { Logger } from '../../adapters/logger.ts'
import { PgListener } from '../../adapters/pg-listener.ts'
import type { AnyDb, PgPool } from '../../adapters/postgres.ts'
import { orgStream } from '../../adapters/streams.ts'
import { loadAgent } from '../../commands/agents.ts'
import { type CommandContext, ConcurrencyError, loadState, type PipelineDeps } from '../../commands/pipeline.ts'
import { finishThreadRun, runCommand, runStream } from '../../commands/runs.ts'
import { DomainError } from '../../domain/decider.ts'
import { org } from '../../domain/orgs.ts'
import { AGENT_RUNS_CHANNEL, isFinished, run } from '../../domain/runs.ts'
import { type AgentProfile, type ExecutorDeps, executeRun, type RunOutcome } from './executor.ts'
import { type ExistingRun, RunRecorder } from './recorder.ts'

export type AgentWorkerOptions = {
  /** Runs worked on at once. */
  readonly concurrency: number
  readonly leaseMs: number
  /** The fallback poll, should a notification be missed. */
  readonly pollMs: number
  readonly defaultModel: string
}

export type AgentWorkerDeps = PipelineDeps & {
  readonly controlDb: AnyDb
  /** The control database's pool: one connection LISTENs for runs to claim and runs cancelled. */
  readonly controlPool: PgPool
  readonly logger: Logger
  readonly executor: ExecutorDeps
  /** This worker's name in the leases it takes. */
  readonly workerId: string
}

type Held = { readonly runId: string; readonly controller: AbortController; readonly done: Promise<void> }

/**
 * An agents worker: any number run side by side. It hears of claimable runs through the run queue's
 * notifications (and a fallback poll), claims one under a lease (a claim is a decision on the run's stream: exactly
 * one worker wins), renews the lease while it works, and aborts the run's model call and tool at once when the run
 * is cancelled or the lease is lost. A worker that dies loses its leases; another claims the runs when they lapse
 * and resumes each from its last recorded item.
 */
export class AgentWorker {
  private readonly deps: AgentWorkerDeps
  private readonly options: AgentWorkerOptions
  private readonly held = new Map<string, Held>()
  private readonly listener: PgListener
  private timer: NodeJS.Timeout | null = null
  private ticking: Promise<void> | null = null
  private again = false
  private stopped = false

  constructor(deps: AgentWorkerDeps, options: AgentWorkerOptions) {
    this.deps = deps
    this.options = options
    this.listener = new PgListener(deps.controlPool, {
      channel: AGENT_RUNS_CHANNEL,
      applicationName: 'workspace-agents-listen',
      onNotification: (payload) => this.heard(payload ?? ''),
      onLost: () => this.kick(),
    })
  }

  /** Runs being worked on here. */
  get working(): readonly string[] {
    return [...this.held.keys()]
  }

  async start(): Promise<void> {
    await this.listener.listen().catch((e) => this.deps.logger.warn({ err: e }, 'agents: cannot listen; polling only'))
    const poll = () => {
      this.timer = setTimeout(() => {
        this.kick()
        if (!this.stopped) poll()
      }, this.options.pollMs)
      this.timer.unref()
    }
    poll()
    this.kick()
  }

  /** Stops claiming, aborts what it works on (their leases lapse and another worker resumes them), and waits. */
  async stop(): Promise<void> {
    this.stopped = true
    if (this.timer) clearTimeout(this.timer)
    await this.listener.close()
    for (const h of this.held.values()) h.controller.abort()
    await Promise.all([...this.held.values()].map((h) => h.done))
    await this.ticking
  }

  private heard(payload: string): void {
    const [type, runId] = payload.split(':')
    if (type === 'run.cancelled' && runId) this.held.get(runId)?.controller.abort()
    else this.kick()
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
    const candidates = await sql<{ run_id: string; org_id: string }>`
      select run_id, org_id from control.agent_run_queue
       where status <> 'requires_action' and (lease_until is null or lease_until < now())
       order by queued_at
       limit ${free * 2}`.execute(this.deps.controlDb)
    for (const c of candidates.rows) {
      if (this.stopped || this.held.size >= this.options.concurrency) return
      if (this.held.has(c.run_id)) continue
      await this.claim(c.run_id, c.org_id)
    }
  }

  private context(tenantId: string, actorId: string): CommandContext {
    return {
      tenantId,
      actor: { type: 'agent', id: actorId },
      correlationId: uuid(),
      causationId: null,
      now: () => new Date(),
      newId: uuid,
    }
  }

  private async claim(runId: string, tenantId: string): Promise<void> {
    let r: Awaited<ReturnType<typeof runCommand>>
    try {
      r = await runCommand(
        this.deps,
        this.context(tenantId, 'agents-worker'),
        { type: 'claim', runId, workerId: this.deps.workerId, leaseMs: this.options.leaseMs, at: new Date().toISOString() },
        runId,
      )
    } catch (e) {
      // Another worker won it, or it moved on (finished, waiting for a person): nothing to do here.
      if (e instanceof DomainError || e instanceof ConcurrencyError) return
      throw e
    }
    if (!r.state.exists || r.events.length === 0) return
    const state = r.state
    const controller = new AbortController()
    const done = this.work(tenantId, state, controller)
      .catch((e) => this.deps.logger.error({ err: e, runId }, 'agents: a run failed to run'))
      .finally(() => {
        this.held.delete(runId)
        this.kick()
      })
    this.held.set(runId, { runId, controller, done })
  }

  private async work(tenantId: string, state: ExistingRun, controller: AbortController): Promise<void> {
    const [{ state: agentState }, orgState] = await Promise.all([
      loadAgent(this.deps, state.agentId),
      loadState(this.deps.store, org, orgStream(tenantId), tenantId),
    ])
    const member = orgState.status === 'none' ? undefined : orgState.members.get(state.agentId)
    const ctx = this.context(tenantId, state.agentId)
    const recorder = new RunRecorder(this.deps, ctx, { workerId: this.deps.workerId, generation: state.generation }, state)
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
    const agent = agentState.exists ? agentState : null
    const profile: AgentProfile = {
      tenantId,
      agentId: state.agentId,
      name: agent?.name ?? 'agent',
      model: agent?.model ?? this.options.defaultModel,
      rolePrompt: agent?.rolePrompt ?? '',
      skillsets: agent?.skillsets ?? [],
      reasoningEffort: agent?.reasoningEffort ?? null,
    }
    let outcome: RunOutcome
    try {
      outcome = await executeRun(this.deps.executor, recorder, profile, {
        tenantId,
        agentId: state.agentId,
        role: member?.active ? member.role : 'guest',
        signal: controller.signal,
      })
    } finally {
      clearInterval(renewing)
    }
    this.deps.logger.info({ runId: state.runId, agentId: state.agentId, outcome }, 'agents: run')
    // The thread starts its next run at once from what waited; the runs processor makes sure of it should this fail.
    // A run lost to a cancel has finished too: its thread is freed here rather than waiting for the processor.
    const finished = outcome === 'lost' ? await loadState(this.deps.store, run, runStream(state.runId), tenantId) : null
    if (
      outcome === 'completed' ||
      outcome === 'failed' ||
      outcome === 'incomplete' ||
      (finished?.exists && isFinished(finished.status))
    ) {
      await finishThreadRun(this.deps, ctx, { threadId: state.threadId, runId: state.runId })
    }
  }
}
