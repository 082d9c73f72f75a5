import { randomUUID } from 'node:crypto'
import { hostname } from 'node:os'
import type { Config } from '../adapters/config.ts'
import type { EventStore } from '../adapters/event-store.ts'
import type { Logger } from '../adapters/logger.ts'
import type { Mailer } from '../adapters/mailer.ts'
import type { AnyDb, PgPool } from '../adapters/postgres.ts'
import type { UserStreams } from '../adapters/user-streams.ts'
import { TASK_SCHEDULE_FIRE } from '../commands/task-schedules.ts'
import type { UpcasterRegistry } from '../domain/upcasting.ts'
import { builtinTools } from '../processors/agents/builtin-tools.ts'
import { agentMentionsProcessor } from '../processors/agents/mentions.ts'
import { agentRunsProcessor } from '../processors/agents/runs.ts'
import { readModelReads, softMentionsProcessor } from '../processors/agents/soft-mentions.ts'
import { agentTaskAssignmentsProcessor } from '../processors/agents/task-assignments.ts'
import { agentTaskWaitsProcessor } from '../processors/agents/task-waits.ts'
import { AGENT_WAKEUP, agentWakeupHandler } from '../processors/agents/wakeups.ts'
import { inviteEmails } from '../processors/email/invites.ts'
import { MISSED_MENTIONS_CHECK, missedMentionEmails } from '../processors/email/missed-mentions.ts'
import type { Processor } from '../processors/processor.ts'
import { type ProcessorRuntime, startProcessors } from '../processors/runtime.ts'
import { taskSchedules } from '../processors/task-schedules.ts'
import { firedTimersProcessor, startTimers, TimerHandlers, type TimerScheduler, timerScheduler } from '../processors/timers.ts'
import { configuredLlm } from './agents.ts'

export type ProcessorDeps = {
  readonly config: Config
  readonly logger: Logger
  readonly store: EventStore
  readonly upcasters: UpcasterRegistry
  /** The tenant database (read marks, messages). */
  readonly db: AnyDb
  /** The control database (checkpoints, leases, parked events, timers) and its pool (timers LISTEN on it). */
  readonly controlDb: AnyDb
  readonly controlPool: PgPool
  readonly mailer: Mailer
  readonly userStreams: UserStreams
  readonly publicUrl: string
  readonly inviteTokenKey: Uint8Array
}

/**
 * Every processor, defined: what the processors role runs, and what the API needs to retry a parked event of one.
 * Fired timers reach the handlers registered here by command type.
 */
export function processorDefinitions(deps: ProcessorDeps): { processors: readonly Processor[]; handlers: TimerHandlers } {
  const pipeline = { store: deps.store, upcasters: deps.upcasters }
  // The gateway writes a queue's activity to the backend once a quarter of its idle TTL: a client polling now was
  // seen within that and a heartbeat.
  const presenceWindowMs = deps.config.REALTIME_QUEUE_TTL_MS / 4 + deps.config.REALTIME_HEARTBEAT_MS
  const missed = missedMentionEmails({
    ...pipeline,
    db: deps.db,
    mailer: deps.mailer,
    publicUrl: deps.publicUrl,
    presence: { hasLiveQueue: (_tenantId, userId) => deps.userStreams.hasLiveQueue(userId, presenceWindowMs) },
  })
  const handlers = new TimerHandlers()
  handlers.register(MISSED_MENTIONS_CHECK, missed.check)
  const tools = builtinTools({ ...pipeline, db: deps.db })
  handlers.register(AGENT_WAKEUP, agentWakeupHandler(pipeline))
  const schedules = taskSchedules(pipeline)
  handlers.register(TASK_SCHEDULE_FIRE, schedules.fire)
  const processors: Processor[] = [
    inviteEmails({ ...pipeline, mailer: deps.mailer, publicUrl: deps.publicUrl, inviteTokenKey: deps.inviteTokenKey }),
    missed.processor as Processor,
    firedTimersProcessor(handlers) as Processor,
    schedules.processor as Processor,
    agentMentionsProcessor(pipeline) as Processor,
    agentRunsProcessor(pipeline) as Processor,
    agentTaskAssignmentsProcessor(pipeline) as Processor,
    agentTaskWaitsProcessor({ ...pipeline, controlDb: deps.controlDb }) as Processor,
    softMentionsProcessor({
      ...pipeline,
      llm: configuredLlm(deps.config),
      model: deps.config.AGENT_ROUTER_MODEL,
      reads: readModelReads(deps.db),
      toolsOf: (skillsets) => tools.available(skillsets).map((t) => t.name),
    }) as Processor,
  ]
  return { processors, handlers }
}

/** Schedules timers without a runner in this process (the API retrying a parked event): a runner elsewhere fires them. */
export const remoteTimers = (deps: Pick<ProcessorDeps, 'store' | 'upcasters'>): TimerScheduler =>
  timerScheduler({ store: deps.store, upcasters: deps.upcasters })

/** The processors role: the timer runner and the runtime, under leases shared with every other such process. */
export async function startProcessorRole(
  deps: ProcessorDeps,
  defined: { processors: readonly Processor[]; handlers: TimerHandlers },
): Promise<{ runtime: ProcessorRuntime; stop(): Promise<void> }> {
  const logger = deps.logger.child({ role: 'processors' })
  // One lease holder for this process: its timer runner and its runtime.
  const holder = `${hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`
  const timers = await startTimers(
    { store: deps.store, upcasters: deps.upcasters, db: deps.controlDb, pool: deps.controlPool, logger, holder },
    { handlers: defined.handlers },
  )
  const runtime = startProcessors({
    store: deps.store,
    controlDb: deps.controlDb,
    logger,
    processors: defined.processors,
    // The runner's scheduler: it wakes the runner when a timer is due sooner than it planned to look.
    timers: timers.scheduler,
    options: { holder },
  })
  return {
    runtime,
    async stop() {
      await runtime.stop()
      await timers.stop()
    },
  }
}
