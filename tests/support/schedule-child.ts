// A processors process for the recurring-tasks test: the timer runner (under its lease) and the runtime with the
// fired-timers and task-schedules processors, as bin/processors.ts composes them, on a clock that runs WARP times
// faster than the wall clock from WARP_FROM (ms since the epoch): a schedule's minute passes in a fraction of a
// real second or two, so periods follow each other within a test. Every child of one test shares WARP_FROM, so
// they agree on the time. Runs until killed (SIGKILL mid-run, or SIGTERM to stop it cleanly).
import { createLogger } from '../../adapters/logger.ts'
import { createKysely, createPool } from '../../adapters/postgres.ts'
import { PostgresEventStore } from '../../adapters/postgres-event-store.ts'
import { withUpcasting } from '../../adapters/upcasting-event-store.ts'
import { TASK_SCHEDULE_FIRE } from '../../commands/task-schedules.ts'
import { eventUpcasters } from '../../domain/schema-versions.ts'
import { namedLease } from '../../processors/leases.ts'
import type { Processor } from '../../processors/processor.ts'
import { startProcessors } from '../../processors/runtime.ts'
import { taskSchedules } from '../../processors/task-schedules.ts'
import { firedTimersProcessor, TIMER_RUNNER_LEASE, TimerHandlers, TimerRunner, timerScheduler } from '../../processors/timers.ts'

const from = Number(process.env.WARP_FROM)
const warp = Number(process.env.WARP ?? '1')
const now = () => new Date(from + (Date.now() - from) * warp)
const holder = process.env.HOLDER ?? `schedule-child-${process.pid}`
const leaseTtlMs = 1_500

const pool = createPool(process.env.DATABASE_URL!, { applicationName: 'schedule-child', max: 4 })
const db = createKysely(pool)
const store = withUpcasting(new PostgresEventStore(pool), eventUpcasters)
const logger = createLogger((process.env.CHILD_LOG_LEVEL as 'silent' | undefined) ?? 'silent')
const pipeline = { store, upcasters: eventUpcasters }

const handlers = new TimerHandlers()
const schedules = taskSchedules({ ...pipeline, now })
handlers.register(TASK_SCHEDULE_FIRE, schedules.fire)
const runner = new TimerRunner(
  { ...pipeline, db, pool, logger, now, lease: namedLease(db, TIMER_RUNNER_LEASE, holder, leaseTtlMs) },
  // Due times are on the warped clock, sleeps on the wall clock: looking often keeps fires close to due.
  { pollMs: 50 },
)
await runner.start()
const runtime = startProcessors({
  store,
  controlDb: db,
  logger,
  processors: [firedTimersProcessor(handlers) as Processor, schedules.processor as Processor],
  timers: timerScheduler({ ...pipeline, runner, now }),
  options: { holder, leaseTtlMs, renewMs: 250, tenantPartitions: 2, retryMs: 50, maxRetryMs: 500 },
})
process.stdout.write('started\n')
process.on('SIGTERM', async () => {
  await runtime.stop()
  await runner.stop()
  await pool.end()
  process.exit(0)
})
