import { v5 as uuidv5 } from 'uuid'
import type { AgentRunsPort, HeldRun, WorkerRunCommand } from '../../adapters/agent-runs.ts'
import type { IncompleteReason, RunItem, RunItemStatus } from '../../domain/runs.ts'

/** The namespace of run item and group ids (uuid v5 of the run and what the item is): the same on every retry. */
const RUN_ITEM_IDS = 'c0a8e3f4-51d2-5e6b-9f07-3d2a1b4c5e68'

export const runItemId = (runId: string, purpose: string): string => uuidv5(`${runId}\n${purpose}`, RUN_ITEM_IDS)

/**
 * What a worker records on a run it holds, each a command fenced by the lease's generation: an item, its
 * update, a wait for approval, the end. Items are named by what they are in the run (runItemId), so a command
 * repeated after a lost answer, or by the worker that resumes the run, records nothing twice. Streamed content
 * is written at most every `updateIntervalMs` per run (clients see ≤ 10 updates a second), and whole at the end.
 */
export class RunRecorder {
  private state: HeldRun
  private readonly pending = new Map<string, { content: string; status?: RunItemStatus }>()
  private flushTimer: NodeJS.Timeout | null = null
  private flushing: Promise<void> = Promise.resolve()
  private lastFlushAt = 0
  private failure: unknown = null

  private readonly port: AgentRunsPort
  private readonly tenantId: string
  private readonly held: { readonly workerId: string; readonly generation: number }
  private readonly updateIntervalMs: number

  constructor(
    port: AgentRunsPort,
    tenantId: string,
    held: { readonly workerId: string; readonly generation: number },
    state: HeldRun,
    updateIntervalMs = 100,
  ) {
    this.port = port
    this.tenantId = tenantId
    this.held = held
    this.state = state
    this.updateIntervalMs = updateIntervalMs
  }

  get run(): HeldRun {
    return this.state
  }

  /** One command at a time: each decides on the state the one before left (a renewal beside a write included). */
  private queue: Promise<unknown> = Promise.resolve()

  private command(build: (at: string) => WorkerRunCommand): Promise<void> {
    const next = this.queue.then(() => this.send(build))
    this.queue = next.catch(() => {})
    return next
  }

  private async send(build: (at: string) => WorkerRunCommand): Promise<void> {
    this.state = await this.port.command(this.tenantId, build(new Date().toISOString()))
  }

  private fenced(at: string) {
    return { runId: this.state.runId, workerId: this.held.workerId, generation: this.held.generation, at }
  }

  async renew(leaseMs: number): Promise<void> {
    await this.command((at) => ({ type: 'renew', ...this.fenced(at), leaseMs }))
  }

  /** Records an item, once: a repeat (same purpose) records nothing. Returns its id. */
  async add(purpose: string, item: Omit<RunItem, 'itemId' | 'status'> & { status?: RunItemStatus }): Promise<string> {
    await this.flush()
    const itemId = runItemId(this.state.runId, purpose)
    if (this.state.items.has(itemId)) return itemId
    await this.command((at) => ({
      type: 'add_item',
      ...this.fenced(at),
      item: { itemId, ...item },
      groupId: runItemId(this.state.runId, `group:${purpose}`),
    }))
    return itemId
  }

  /** Streamed content: written now if the last write is old enough, else with the next write or within the interval. */
  stream(itemId: string, content: string): void {
    this.pending.set(itemId, { content })
    if (this.flushTimer) return
    const wait = Math.max(0, this.lastFlushAt + this.updateIntervalMs - Date.now())
    this.flushTimer = setTimeout(() => {
      this.flushTimer = null
      this.flushing = this.flushing
        .then(() => this.writePending())
        .catch((e) => {
          this.failure = e
        })
    }, wait)
  }

  /** The item's final content and status, after whatever was still to be streamed. */
  async finish(itemId: string, content: string, status: RunItemStatus = 'completed'): Promise<void> {
    this.pending.set(itemId, { content, status })
    await this.flush()
  }

  /** Writes what is waiting to be streamed; throws what a background write failed with. */
  async flush(): Promise<void> {
    if (this.flushTimer) {
      clearTimeout(this.flushTimer)
      this.flushTimer = null
    }
    await this.flushing
    if (this.failure) throw this.failure
    await this.writePending()
  }

  private async writePending(): Promise<void> {
    const updates = [...this.pending]
    this.pending.clear()
    for (const [itemId, u] of updates) {
      const item = this.state.items.get(itemId)
      if (!item || item.status !== 'in_progress' || (item.content === u.content && !u.status)) continue
      await this.command((at) => ({
        type: 'update_item',
        ...this.fenced(at),
        itemId,
        content: u.content,
        ...(u.status ? { status: u.status } : {}),
      }))
    }
    this.lastFlushAt = Date.now()
  }

  async requireAction(itemId: string): Promise<void> {
    await this.flush()
    await this.command((at) => ({ type: 'require_action', ...this.fenced(at), itemId }))
  }

  async complete(): Promise<void> {
    await this.flush()
    await this.command((at) => ({ type: 'complete', ...this.fenced(at) }))
  }

  async fail(code: string, message: string): Promise<void> {
    await this.flush()
    await this.command((at) => ({ type: 'fail', ...this.fenced(at), code, message }))
  }

  async incomplete(reason: IncompleteReason, detail: string): Promise<void> {
    await this.flush()
    await this.command((at) => ({ type: 'stop_incomplete', ...this.fenced(at), reason, detail }))
  }

  /** Stops streaming without writing (the run was lost or cancelled). */
  discard(): void {
    if (this.flushTimer) clearTimeout(this.flushTimer)
    this.flushTimer = null
    this.pending.clear()
  }
}
