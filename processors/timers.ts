import { sql } from 'kysely'
import { v7 as uuid } from 'uuid'
import type { RecordedEvent } from '../adapters/event-store.ts'
import type { Logger } from '../adapters/logger.ts'
import { PgListener } from '../adapters/pg-listener.ts'
import type { AnyDb, PgPool } from '../adapters/postgres.ts'
import type { CommandContext, PipelineDeps } from '../commands/pipeline.ts'
import { cancelTimer, fireScheduledTimer, scheduleTimer } from '../commands/timers.ts'
import { DomainError } from '../domain/decider.ts'
import { TIMERS_CHANNEL, type TimerEvent } from '../domain/timers.ts'
import { namedLease } from './leases.ts'
import type { Processor, ProcessorContext, ProcessorTimers, RecordedOf, TimerCommand } from './processor.ts'

/*
 * Durable timers, the processors' side:
 * - timerScheduler: what ctx.schedule and ctx.cancel go through (a timer is a stream: timer.scheduled, then
 *   timer.fired or timer.cancelled);
 * - TimerRunner: in the processors role, under a lease, fires due timers (control.timers, the timers projector's
 *   read model) through the decider: the expected revision makes each fire exactly once, even when runners race;
 * - firedTimersProcessor: a processor over timer.fired that hands each fired command to the handler registered for
 *   its type, so a failing handler is retried and parked like any processor's event.
 */

// --- handlers of fired commands

/** Runs a fired timer's command; idempotent by ctx.idFor, like any processor's effect (it may run again). */
export type TimerHandler = (
  command: TimerCommand,
  ctx: ProcessorContext & { readonly timerId: string; readonly dueAt: Date },
) => Promise<void>

/** Handlers of fired commands, by command type: processors register theirs when they are defined. */
export class TimerHandlers {
  private readonly byType = new Map<string, TimerHandler>()

  register(type: string, handler: TimerHandler): void {
    // Two handlers for one type would each think they own the command: a mistake at start-up, not at the fire.
    if (this.byType.has(type)) throw new Error(`a timer handler for ${type} is registered already`)
    this.byType.set(type, handler)
  }

  get(type: string): TimerHandler | undefined {
    return this.byType.get(type)
  }
}

/** The process's handlers, which firedTimersProcessor() delivers to by default. */
export const timerHandlers = new TimerHandlers()

export const registerTimerHandler = (type: string, handler: TimerHandler): void => timerHandlers.register(type, handler)

type FiredTimer = Extract<TimerEvent, { type: 'timer.fired' }>

/**
 * Delivers fired timers to their handlers, as a processor the runtime runs: a handler that fails is retried with
 * backoff, then the timer.fired event parks (as does one whose command has no handler: nothing is dropped silently).
 */
export const firedTimersProcessor = (handlers: TimerHandlers = timerHandlers): Processor<FiredTimer> => ({
  name: 'timers',
  version: 1,
  eventTypes: ['timer.fired'],
  partitionBy: 'tenant',
  async handle(event: RecordedOf<FiredTimer>, ctx: ProcessorContext) {
    const { command, timerId, dueAt } = event.data
    const handler = handlers.get(command.type)
    if (!handler) throw new Error(`no timer handler for ${command.type} (timer ${timerId})`)
    await handler(command, { ...ctx, timerId, dueAt: new Date(dueAt) })
  },
})

// --- scheduling, for the processors' context

/** What the runtime asks of timers: the processors' port, implemented here. */
export type TimerScheduler = ProcessorTimers

export type TimerSchedulerDeps = PipelineDeps & {
  readonly now?: () => Date
  /** A runner in this process, woken for a timer due sooner than it planned to look. */
  readonly runner?: Pick<TimerRunner, 'wake'>
}

/** The context of a command a processor issues for an event: the event's tenant and correlation, caused by it. */
const causedBy = (processor: string, event: RecordedEvent, now: () => Date): CommandContext => ({
  tenantId: event.metadata.tenantId,
  actor: { type: 'system', id: `processor:${processor}` },
  correlationId: event.metadata.correlationId,
  causationId: event.id,
  now,
  newId: uuid,
})

/** Schedules and cancels timers for processors: the timer belongs to the tenant of the event that asked. */
export function timerScheduler(deps: TimerSchedulerDeps): TimerScheduler {
  const now = deps.now ?? (() => new Date())
  return {
    async schedule({ timerId, at, command, processor, event }) {
      await scheduleTimer(deps, causedBy(processor, event, now), { timerId, dueAt: at, command })
      deps.runner?.wake(at)
      return { timerId }
    },
    async cancel(timerId, { processor, event }) {
      await cancelTimer(deps, causedBy(processor, event, now), timerId)
    },
  }
}

// --- firing

/** The lease the runner fires under: one runner at a time does the work (racing ones would still fire once). */
export type TimerLease = {
  /** Takes the lease, or renews it when held; false when another process holds it. */
  hold(): Promise<boolean>
  release(): Promise<void>
}

export type TimerRunnerDeps = PipelineDeps & {
  /** The control database, where control.timers is. */
  readonly db: AnyDb
  /** Its pool, to LISTEN for timers scheduled by other processes; without it the runner only polls. */
  readonly pool?: PgPool
  readonly logger: Logger
  readonly lease?: TimerLease
  readonly now?: () => Date
}

export type TimerRunnerOptions = {
  /** The longest wait between two looks at control.timers (and between lease renewals). */
  readonly pollMs?: number
  /** Due timers read at once. */
  readonly batchSize?: number
  /** Fires under way at once. */
  readonly concurrency?: number
}

type DueRow = { timer_id: string; org_id: string | null; due_at: Date; command: string }

const RUNNER: CommandContext['actor'] = { type: 'system', id: 'timers' }

/** How long a fire is remembered, at most, while the read model still lists its timer as scheduled. */
const FORGET_FIRED_MS = 30_000

/** How often the runner asks which of its fires the read model has caught up with. */
const FORGET_CHECK_MS = 1_000

/**
 * The least time between two looks at control.timers: timers due every millisecond are fired in batches rather
 * than with two queries each (a fire is that much late at most).
 */
const MIN_LOOK_MS = 10

/** Wakes whoever waits on it. */
class Signal {
  private waiters: (() => void)[] = []
  wait(): Promise<void> {
    return new Promise((resolve) => this.waiters.push(resolve))
  }
  notify(): void {
    const waiters = this.waiters
    this.waiters = []
    for (const w of waiters) w()
  }
}

/**
 * Fires due timers. It looks at control.timers, hands what is due to `concurrency` workers through a queue, and
 * sleeps until the earliest of: the next due time it read, a poll interval, and a wake-up (a timer scheduled in
 * this process, or a notification of the timers projector). A fired timer's row reads `scheduled` until the
 * projector catches up: the runner remembers what it queued or fired and leaves it out meanwhile.
 */
export class TimerRunner {
  private readonly deps: TimerRunnerDeps
  private readonly pollMs: number
  private readonly batchSize: number
  private readonly concurrency: number
  private readonly now: () => Date
  private readonly listener: PgListener | null
  private readonly log: Logger
  private listenerLost = false
  private stopped = false
  private loop: Promise<void> | null = null
  private workers: Promise<void>[] = []
  /** Due timers waiting for a worker. */
  private readonly queue: DueRow[] = []
  /** Timers queued or being fired here. */
  private readonly taken = new Set<string>()
  /** Fired here (when, by this clock), until the read model stops listing them as scheduled. */
  private readonly firedAwaitingProjection = new Map<string, number>()
  /** Work was queued (workers wait on it); the queue ran low (a loop waiting to look again waits on it). */
  private readonly queued = new Signal()
  private readonly drained = new Signal()
  /** The earliest due time a wake-up named, until it has passed. */
  private hint = Number.POSITIVE_INFINITY
  private lastLookAt = 0
  private forgetCheckAt = 0
  private sleeper: { until: number; timer: NodeJS.Timeout; done: () => void } | null = null

  constructor(deps: TimerRunnerDeps, options: TimerRunnerOptions = {}) {
    this.deps = deps
    this.pollMs = options.pollMs ?? 1_000
    this.batchSize = options.batchSize ?? 500
    this.concurrency = options.concurrency ?? 32
    this.now = deps.now ?? (() => new Date())
    this.log = deps.logger.child({ processor: 'timers:runner' })
    this.listener = deps.pool
      ? new PgListener(deps.pool, {
          channel: TIMERS_CHANNEL,
          onNotification: (payload) => {
            const at = payload ? Date.parse(payload) : Number.NaN
            this.wake(new Date(Number.isNaN(at) ? 0 : at))
          },
          onLost: () => {
            // Notifications may have been missed: look now, and listen again.
            this.listenerLost = true
            this.wake(new Date(0))
          },
          applicationName: 'timer-runner',
        })
      : null
  }

  async start(): Promise<void> {
    if (this.listener) await this.listener.listen().catch((err) => this.log.warn({ err }, 'timers: LISTEN failed; polling'))
    this.workers = Array.from({ length: this.concurrency }, () => this.work())
    this.loop = this.run()
  }

  /** Stops firing (fires under way finish, queued ones are left to the next runner), gives the lease up, stops listening. */
  async stop(): Promise<void> {
    this.stopped = true
    this.sleeper?.done()
    this.queued.notify()
    this.drained.notify()
    await this.loop
    await Promise.all(this.workers)
    this.dropQueue()
    await this.listener?.close()
    await this.deps.lease?.release().catch((err) => this.log.warn({ err }, 'timers: releasing the lease failed'))
  }

  /** A timer is due at `at`: the runner looks then, if that is sooner than it planned. */
  wake(at: Date): void {
    const t = at.getTime()
    if (t < this.hint) this.hint = t
    const s = this.sleeper
    const target = Math.max(t, this.lastLookAt + MIN_LOOK_MS)
    if (s && target < s.until) {
      clearTimeout(s.timer)
      s.until = target
      s.timer = setTimeout(s.done, Math.max(0, target - Date.now()))
    }
  }

  private sleep(until: number): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        if (this.sleeper?.done !== done) return
        clearTimeout(this.sleeper.timer)
        this.sleeper = null
        resolve()
      }
      const target = Math.max(Math.min(until, this.hint), this.lastLookAt + MIN_LOOK_MS)
      this.sleeper = { until: target, timer: setTimeout(done, Math.max(0, target - Date.now())), done }
      if (this.stopped) done()
    })
  }

  private dropQueue(): void {
    for (const row of this.queue.splice(0)) this.taken.delete(row.timer_id)
  }

  private async run(): Promise<void> {
    let failures = 0
    let leaseCheckAt = 0
    let held = this.deps.lease === undefined
    while (!this.stopped) {
      try {
        if (this.listenerLost && this.listener) {
          this.listenerLost = false
          this.listener.listen().catch((err) => {
            this.listenerLost = true
            this.log.warn({ err }, 'timers: LISTEN failed; polling')
          })
        }
        if (this.deps.lease && Date.now() >= leaseCheckAt) {
          held = await this.deps.lease.hold()
          leaseCheckAt = Date.now() + this.pollMs
          // Another process fires now: what is queued here is its to fire.
          if (!held) this.dropQueue()
        }
        if (!held) {
          await this.sleep(leaseCheckAt)
          continue
        }
        const now = this.now()
        this.lastLookAt = Date.now()
        if (this.hint <= now.getTime()) this.hint = Number.POSITIVE_INFINITY
        const due = await this.due(now)
        for (const row of due) {
          this.taken.add(row.timer_id)
          this.queue.push(row)
        }
        if (due.length) this.queued.notify()
        failures = 0
        if (due.length === this.batchSize) {
          // More are due: look again once the workers have nearly run out of work.
          const drained = this.drained.wait()
          if (this.queue.length >= this.concurrency) await drained
          continue
        }
        const next = await this.nextDue(now)
        await this.sleep(
          Math.min(next ?? Number.POSITIVE_INFINITY, Date.now() + this.pollMs, leaseCheckAt || Number.POSITIVE_INFINITY),
        )
      } catch (err) {
        if (this.stopped) return
        failures++
        const waitMs = Math.min(10_000, this.pollMs * 2 ** (failures - 1))
        this.log.error({ err, failures, retryInMs: waitMs }, 'timers: the runner failed; looking again')
        await this.sleep(Date.now() + waitMs)
      }
    }
  }

  private async work(): Promise<void> {
    while (!this.stopped) {
      const row = this.queue.shift()
      if (!row) {
        await this.queued.wait()
        continue
      }
      if (this.queue.length < this.concurrency) this.drained.notify()
      await this.fire(row, this.log)
      this.taken.delete(row.timer_id)
    }
  }

  /** Scheduled timers due by `now`, earliest first, but those queued or fired here that the read model still lists. */
  private async due(now: Date): Promise<DueRow[]> {
    await this.forgetProjected()
    // Left out by the database (a hashed list), not read and dropped here: under a lagging projector they are many.
    const skip = [...this.taken, ...this.firedAwaitingProjection.keys()]
    let q = this.deps.db
      .selectFrom('control.timers')
      .select(['timer_id', 'org_id', 'due_at', 'command'])
      .where('status', '=', 'scheduled')
      .where('due_at', '<=', now)
    if (skip.length) q = q.where(sql<boolean>`timer_id <> all(${skip}::text[])`)
    return q.orderBy('due_at').limit(this.batchSize).execute()
  }

  /** Forgets the fires the read model has caught up with (looked up at most once per FORGET_CHECK_MS), or long ago. */
  private async forgetProjected(): Promise<void> {
    const fired = this.firedAwaitingProjection
    if (fired.size === 0 || Date.now() < this.forgetCheckAt) return
    this.forgetCheckAt = Date.now() + FORGET_CHECK_MS
    const forgetBefore = Date.now() - FORGET_FIRED_MS
    for (const [id, firedAt] of fired) if (firedAt < forgetBefore) fired.delete(id)
    const ids = [...fired.keys()]
    const still: { timer_id: string }[] = await this.deps.db
      .selectFrom('control.timers')
      .select('timer_id')
      .where(sql<boolean>`timer_id = any(${ids}::text[])`)
      .where('status', '=', 'scheduled')
      .execute()
    const listed = new Set(still.map((r) => r.timer_id))
    for (const id of ids) if (!listed.has(id)) fired.delete(id)
  }

  private async nextDue(now: Date): Promise<number | null> {
    const row = await this.deps.db
      .selectFrom('control.timers')
      .select((eb) => eb.fn.min('due_at').as('next'))
      .where('status', '=', 'scheduled')
      .where('due_at', '>', now)
      .executeTakeFirst()
    return row?.next ? new Date(row.next).getTime() : null
  }

  private async fire(row: DueRow, log: Logger): Promise<void> {
    const ctx: CommandContext = {
      tenantId: row.org_id,
      actor: RUNNER,
      correlationId: row.timer_id,
      causationId: null,
      now: this.now,
      newId: uuid,
    }
    try {
      await fireScheduledTimer(this.deps, ctx, {
        timerId: row.timer_id,
        dueAt: new Date(row.due_at).toISOString(),
        command: JSON.parse(row.command),
        tenantId: row.org_id,
      })
      this.firedAwaitingProjection.set(row.timer_id, Date.now())
    } catch (err) {
      // Not due by this clock (another machine's was ahead): the next look at the table finds it again.
      if (err instanceof DomainError && err.code === 'TIMER_NOT_DUE') return
      // Anything else (the store unreachable): left scheduled, tried again at the next look.
      log.error({ err, timerId: row.timer_id }, 'timers: firing failed; trying again')
    }
  }
}

// --- in the processors role

/** The lease the runner fires under, in control.processor_leases. */
export const TIMER_RUNNER_LEASE = 'timers:runner'

/**
 * Durable timers as the processors role runs them: a runner firing under the lease TIMER_RUNNER_LEASE (held by
 * `holder`, the runtime's), the scheduler to give the runtime as its `timers` (it wakes this runner), and the
 * processor delivering fired timers to their handlers, to run with the others.
 */
export async function startTimers(
  deps: PipelineDeps & {
    readonly db: AnyDb
    readonly pool?: PgPool
    readonly logger: Logger
    readonly holder: string
    readonly leaseTtlMs?: number
  },
  options: TimerRunnerOptions & { readonly handlers?: TimerHandlers } = {},
): Promise<{ scheduler: TimerScheduler; processor: Processor<FiredTimer>; runner: TimerRunner; stop(): Promise<void> }> {
  const pollMs = options.pollMs ?? 1_000
  // Renewed at every look (at most pollMs apart), so a few looks may fail before it lapses.
  const leaseTtlMs = deps.leaseTtlMs ?? Math.max(10_000, pollMs * 5)
  const runner = new TimerRunner({ ...deps, lease: namedLease(deps.db, TIMER_RUNNER_LEASE, deps.holder, leaseTtlMs) }, options)
  await runner.start()
  return {
    scheduler: timerScheduler({ ...deps, runner }),
    processor: firedTimersProcessor(options.handlers),
    runner,
    stop: () => runner.stop(),
  }
}
