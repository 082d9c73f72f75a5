// npm run bench:timers
//   BENCH_RATE=1000        timers scheduled per second (default 1,000)
//   BENCH_SECONDS=10       how long each side schedules (default 10)
//   BENCH_LEAD_MS=1000     how far ahead of its scheduling each timer is due (default 1 s; 0: due at once)
//   DATABASE_URL           an admin connection (default postgres://postgres@127.0.0.1:5432/postgres)
//
// The timer fire delay: timers scheduled at BENCH_RATE through the command pipeline, each due BENCH_LEAD_MS after it
// was scheduled, projected into control.timers and fired by a runner; the delay is when it fired (the fire's
// decision, and its timer.fired seen by a subscriber of $all, as a processor would) minus when it was due. Side by
// side in one run, on a fresh database each: the TimerRunner (sleeps until the next due time, woken by the
// projector's NOTIFY) and the baseline, a poller that looks for due timers once a second. The last line is JSON.
import { setTimeout as sleep } from 'node:timers/promises'
import { v7 as uuid } from 'uuid'
import { type RecordedEvent, START } from '../adapters/event-store.ts'
import { createLogger } from '../adapters/logger.ts'
import { type AnyDb, createKysely, createPool, type PgPool } from '../adapters/postgres.ts'
import { PostgresEventStore } from '../adapters/postgres-event-store.ts'
import type { CommandContext, PipelineDeps } from '../commands/pipeline.ts'
import { fireTimer, scheduleTimer } from '../commands/timers.ts'
import { eventUpcasters } from '../domain/schema-versions.ts'
import { migrateAll } from '../migrations/index.ts'
import { TimerRunner } from '../processors/timers.ts'
import { ProjectionEngine } from '../projections/engine.ts'
import { timersProjector } from '../projections/timers.ts'
import { freshDatabase, log, main, onCleanup, round, summary } from './harness.ts'

const RATE = Number(process.env.BENCH_RATE ?? 1_000)
const SECONDS = Number(process.env.BENCH_SECONDS ?? 10)
const LEAD_MS = Number(process.env.BENCH_LEAD_MS ?? 1_000)
/** Timers scheduled per tick of the pacer. */
const TICK_MS = 10
const logger = createLogger('silent')

type Firing = { start(deps: PipelineDeps & { db: AnyDb; pool: PgPool }): Promise<() => Promise<void>> }

const system = (): CommandContext => ({
  tenantId: null,
  actor: { type: 'system', id: 'bench' },
  correlationId: uuid(),
  causationId: null,
  now: () => new Date(),
  newId: uuid,
})

/** Ours: the runner as the processors role runs it. */
const runner: Firing = {
  async start(deps) {
    const r = new TimerRunner({ ...deps, logger }, { concurrency: Number(process.env.BENCH_CONCURRENCY ?? 32) })
    await r.start()
    return () => r.stop()
  },
}

/** The baseline: what a timer table is often served by, a look for due timers every second, fired the same way. */
const poller: Firing = {
  async start(deps) {
    let stopped = false
    const loop = (async () => {
      while (!stopped) {
        const due: { timer_id: string }[] = await deps.db
          .selectFrom('control.timers')
          .select('timer_id')
          .where('status', '=', 'scheduled')
          .where('due_at', '<=', new Date())
          .orderBy('due_at')
          .limit(500)
          .execute()
        let i = 0
        await Promise.all(
          Array.from({ length: 16 }, async () => {
            while (i < due.length) await fireTimer(deps, system(), due[i++]!.timer_id)
          }),
        )
        if (due.length < 500) await sleep(1_000)
      }
    })()
    return async () => {
      stopped = true
      await loop
    }
  },
}

async function measure(name: string, firing: Firing) {
  const url = await freshDatabase(`bench_timers_${name}`)
  // A pool per job, as the processes have: the load, the projector, the runner and the watcher never queue
  // behind one another's queries.
  const closers: (() => Promise<unknown>)[] = []
  let closed: Promise<void> | null = null
  const close = () => {
    closed ??= (async () => {
      for (const c of closers.reverse()) await c().catch(() => {})
    })()
    return closed
  }
  onCleanup(close)
  const job = (max: number) => {
    const pool = createPool(url, { max })
    const store = new PostgresEventStore(pool)
    closers.push(
      () => pool.end(),
      () => store.close(),
    )
    return { pool, db: createKysely(pool), store }
  }
  const load = job(24)
  await migrateAll(load.db)
  const projecting = job(4)
  const firingJob = job(24)
  const watching = job(2)
  const deps = { store: load.store, upcasters: eventUpcasters }
  const engine = new ProjectionEngine({ store: projecting.store, db: projecting.db, logger }, [timersProjector])
  engine.start()
  closers.push(() => engine.stop())
  const stop = await firing.start({ ...firingJob, upcasters: eventUpcasters })

  const total = RATE * SECONDS
  const decided: number[] = []
  const delivered: number[] = []
  // Seen as a processor sees them: through a subscription of $all.
  const subscription = watching.store.subscribeAll({ from: START, maxBatch: 1_000 })
  const watched = (async () => {
    for await (const batch of subscription) {
      const seenAt = Date.now()
      for (const e of batch as readonly RecordedEvent[]) {
        if (e.type !== 'timer.fired') continue
        const { dueAt, at } = e.data as { dueAt: string; at: string }
        decided.push(Date.parse(at) - Date.parse(dueAt))
        delivered.push(seenAt - Date.parse(dueAt))
      }
      if (delivered.length >= total) return
    }
  })()

  log(`${name}: scheduling ${total} timers at ${RATE}/s, each due ${LEAD_MS} ms later`)
  const started = Date.now()
  let scheduled = 0
  let failed = 0
  const inFlight = new Set<Promise<unknown>>()
  for (let tick = 0; scheduled < total; tick++) {
    const wanted = Math.min(total, Math.round(((tick + 1) * TICK_MS * RATE) / 1_000))
    for (; scheduled < wanted; scheduled++) {
      const p = scheduleTimer(deps, system(), {
        timerId: uuid(),
        dueAt: new Date(Date.now() + LEAD_MS),
        command: { type: 'bench.noop', data: {} },
      })
        .catch(() => {
          failed++
        })
        .finally(() => inFlight.delete(p))
      inFlight.add(p)
    }
    const next = started + (tick + 1) * TICK_MS
    if (next > Date.now()) await sleep(next - Date.now())
  }
  await Promise.all(inFlight)
  const scheduleSeconds = (Date.now() - started) / 1_000
  const expected = total - failed
  const deadline = Date.now() + 60_000 + LEAD_MS
  while (delivered.length < expected && Date.now() < deadline) await sleep(100)
  await subscription.close()
  await watched.catch(() => {})
  await stop()
  await close()
  const result = {
    scheduled: expected,
    failedToSchedule: failed,
    fired: delivered.length,
    scheduledPerSecond: round(expected / scheduleSeconds, 0),
    fireDelayMs: summary(decided),
    deliveredDelayMs: summary(delivered),
  }
  log(`${name}: ${JSON.stringify(result)}`)
  return result
}

/** The fire delay of ours beside the baseline's, as one object (bench:processors puts it under `timers`). */
export async function timerFireDelay(): Promise<Record<string, unknown>> {
  const ours = await measure('runner', runner)
  const baseline = await measure('poll1s', poller)
  return {
    rate: RATE,
    seconds: SECONDS,
    leadMs: LEAD_MS,
    runner: ours,
    baselinePollEverySecond: baseline,
    fireDelayP99Ms: ours.fireDelayMs.p99,
    baselineFireDelayP99Ms: baseline.fireDelayMs.p99,
    note: 'machine shared with other work while measured: compare the two sides of one run, not runs',
  }
}

if (import.meta.main) await main(async () => ({ bench: 'timers', ...(await timerFireDelay()) }))
