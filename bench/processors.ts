// npm run bench:processors
//   BENCH_EVENTS=100000     events in the history (default 100k), over 10 tenants
//   DATABASE_URL            an admin connection (default postgres://postgres@127.0.0.1:5432/postgres)
//
// Events per second through the processors runtime, beside the projection engine on the same events, in one run on
// one fresh database: a no-op projector (ProjectionEngine: one transaction per batch, checkpoint in it) and a no-op
// processor (startProcessors: lease held, effects then the fenced checkpoint per batch), not partitioned and
// partitioned by tenant (8 partitions, 4 at a time: each partition reads every event and keeps its tenants').
// Each catches up from the start of the history to its head. The timer fire delay is bench:timers' (the timers'
// part of issue 13): its figures go beside these under `timers` (bench/timers.ts's timerFireDelay; BENCH_TIMERS=0 skips).
// The last line is JSON.
import { v7 as uuid } from 'uuid'
import { comparePositions, type NewEvent, type Position } from '../adapters/event-store.ts'
import { createLogger } from '../adapters/logger.ts'
import { createKysely, createPool } from '../adapters/postgres.ts'
import { PostgresEventStore } from '../adapters/postgres-event-store.ts'
import type { DomainEvent } from '../domain/decider.ts'
import { migrateAll } from '../migrations/index.ts'
import type { Processor } from '../processors/processor.ts'
import { startProcessors } from '../processors/runtime.ts'
import { ProjectionEngine, type Projector } from '../projections/engine.ts'
import { freshDatabase, log, main, onCleanup, round, sleep } from './harness.ts'
import { timerFireDelay } from './timers.ts'

const N = Number(process.env.BENCH_EVENTS ?? 100_000)
const TENANTS = Array.from({ length: 10 }, () => uuid())
const PER_APPEND = 500
const logger = createLogger('silent')

type BenchEvent = DomainEvent<'bench.happened', { n: number }>

const event = (n: number): NewEvent => ({
  id: uuid(),
  type: 'bench.happened',
  data: { n },
  metadata: {
    tenantId: TENANTS[n % TENANTS.length]!,
    actor: { type: 'system', id: 'bench' },
    correlationId: uuid(),
    causationId: null,
    occurredAt: new Date().toISOString(),
    schemaVersion: 1,
  },
})

/** Polls until `reached` says the consumer passed the head; events per second from start to then. */
async function timeToHead(name: string, head: Position, start: () => { reached(): boolean; stop(): Promise<void> }) {
  const began = performance.now()
  const consumer = start()
  while (!consumer.reached()) await sleep(5)
  const seconds = (performance.now() - began) / 1000
  await consumer.stop()
  const eventsPerSecond = Math.round(N / seconds)
  log(`${name}: ${N} events in ${round(seconds, 2)} s, ${eventsPerSecond} events/s (head ${head.sequence})`)
  return { seconds: round(seconds, 2), eventsPerSecond }
}

await main(async () => {
  const url = await freshDatabase('bench_processors')
  const pool = createPool(url, { max: 10 })
  const db = createKysely(pool)
  onCleanup(() => db.destroy())
  await migrateAll(db)
  const store = new PostgresEventStore(pool)
  onCleanup(() => store.close())

  log(`appending ${N} events over ${TENANTS.length} tenants`)
  for (let from = 0; from < N; from += PER_APPEND) {
    const events = Array.from({ length: Math.min(PER_APPEND, N - from) }, (_, i) => event(from + i))
    await store.append(`bench-${uuid()}`, events, { expectedRevision: 'no_stream' })
  }
  const head = await store.headPosition()

  const noopProjector: Projector<BenchEvent> = {
    name: 'bench_noop',
    version: 1,
    schema: 'control',
    tables: [],
    eventTypes: ['bench.happened'],
    async apply() {},
  }
  const projectionEngine = await timeToHead('projection engine, no-op projector', head, () => {
    const engine = new ProjectionEngine({ store, db, logger }, [noopProjector], { batchSize: 500 })
    engine.start()
    return { reached: () => engine.reached(['bench_noop'], head), stop: () => engine.stop() }
  })

  const noopProcessor = (name: string, partitionBy: 'none' | 'tenant'): Processor<BenchEvent> => ({
    name,
    version: 1,
    eventTypes: ['bench.happened'],
    partitionBy,
    async handle() {},
  })
  const runtimeUntilHead = (processor: Processor<BenchEvent>) => () => {
    const runtime = startProcessors({
      store,
      controlDb: db,
      logger,
      processors: [processor],
      options: { batchSize: 500, tenantPartitions: 8, maxConcurrency: 4 },
    })
    return {
      reached: () => runtime.statuses().every((s) => s.checkpoint !== null && comparePositions(s.checkpoint, head) >= 0),
      stop: () => runtime.stop(),
    }
  }
  const processorWhole = await timeToHead(
    'processors runtime, no-op processor',
    head,
    runtimeUntilHead(noopProcessor('bench_noop', 'none')),
  )
  const processorByTenant = await timeToHead(
    'processors runtime, no-op processor, 8 tenant partitions',
    head,
    runtimeUntilHead(noopProcessor('bench_noop_tenants', 'tenant')),
  )

  // The timer fire delay at 1,000 timers/s beside the polling baseline (bench/timers.ts; BENCH_TIMERS=0 skips it).
  const timers = process.env.BENCH_TIMERS === '0' ? null : await timerFireDelay()

  return {
    bench: 'processors',
    events: N,
    tenants: TENANTS.length,
    projectionEngine,
    processor: processorWhole,
    processorByTenant: { partitions: 8, maxConcurrency: 4, ...processorByTenant },
    processorVsEngine: round(processorWhole.eventsPerSecond / projectionEngine.eventsPerSecond, 2),
    timers,
  }
})
