import { setTimeout as sleep } from 'node:timers/promises'
import { v7 as uuid } from 'uuid'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { RecordedEvent } from '../../adapters/event-store.ts'
import { acquireLease } from '../../adapters/leases.ts'
import { createLogger } from '../../adapters/logger.ts'
import { type AnyDb, createKysely, createPool, type PgPool } from '../../adapters/postgres.ts'
import { PostgresEventStore } from '../../adapters/postgres-event-store.ts'
import type { PipelineDeps } from '../../commands/pipeline.ts'
import { cancelTimer, fireScheduledTimer, scheduleTimer, timerStream } from '../../commands/timers.ts'
import { upcasters } from '../../domain/upcasting.ts'
import type { ProcessorContext } from '../../processors/processor.ts'
import {
  firedTimersProcessor,
  startTimers,
  TIMER_RUNNER_LEASE,
  type TimerHandler,
  TimerHandlers,
  TimerRunner,
  type TimerRunnerOptions,
  timerScheduler,
} from '../../processors/timers.ts'
import { ProjectionEngine } from '../../projections/engine.ts'
import { verify } from '../../projections/rebuild.ts'
import { timersProjector } from '../../projections/timers.ts'
import { createTestDatabase, type TestDatabase } from '../support/db.ts'

/*
 * Durable timers end to end on Postgres: scheduled as events, projected into control.timers, fired by runners
 * (as the app's login) through the decider. "Never fired" is shown by a later timer firing: a runner fires in due order.
 */

const logger = createLogger('silent')
const tenantId = uuid()
let database: TestDatabase
let pool: PgPool
let db: AnyDb
let store: PostgresEventStore
let engine: ProjectionEngine
let deps: PipelineDeps
const runners: TimerRunner[] = []

beforeAll(async () => {
  database = await createTestDatabase()
  pool = createPool(database.appUrl, { max: 30 })
  db = createKysely(pool)
  store = new PostgresEventStore(pool)
  deps = { store, upcasters: upcasters({}) }
  engine = new ProjectionEngine({ store, db, logger }, [timersProjector])
  engine.start()
})

afterAll(async () => {
  for (const r of runners) await r.stop()
  await engine?.stop()
  await store?.close()
  await pool?.end()
  await database?.drop()
})

const runner = async (options: TimerRunnerOptions = {}) => {
  const r = new TimerRunner({ ...deps, db, pool, logger }, { pollMs: 200, ...options })
  runners.push(r)
  await r.start()
  return r
}

const ctx = () => ({
  tenantId,
  actor: { type: 'user' as const, id: 'u1' },
  correlationId: uuid(),
  causationId: null,
  now: () => new Date(),
  newId: uuid,
})

const schedule = async (dueAt: Date, type = 'test.ping') => {
  const timerId = uuid()
  await scheduleTimer(deps, ctx(), { timerId, dueAt, command: { type, data: { timerId } } })
  return timerId
}

const firedEvents = async (timerId: string) =>
  (await store.readStream(timerStream(timerId))).filter((e) => e.type === 'timer.fired')

const waitFor = async <T>(what: string, probe: () => Promise<T | null | undefined | false>, timeoutMs = 20_000): Promise<T> => {
  const until = Date.now() + timeoutMs
  for (;;) {
    const v = await probe()
    if (v) return v
    if (Date.now() > until) throw new Error(`timed out waiting until ${what}`)
    await sleep(50)
  }
}

const firedOnce = (timerId: string) =>
  waitFor(`timer ${timerId} fired`, async () => {
    const fired = await firedEvents(timerId)
    return fired.length > 0 && fired
  })

/** Until the read model says the timer fired: every runner has had the chance to fire it again by then. */
const projectedFired = (timerId: string) =>
  waitFor(`timer ${timerId} projected as fired`, async () => {
    const row = await db.selectFrom('control.timers').select('status').where('timer_id', '=', timerId).executeTakeFirst()
    return row?.status === 'fired'
  })

describe('durable timers', () => {
  it('a timer fires once, at or after its due time, with its command', async () => {
    await runner()
    const dueAt = new Date(Date.now() + 300)
    const timerId = await schedule(dueAt)
    const [fired] = await firedOnce(timerId)
    expect(fired!.data).toMatchObject({ timerId, dueAt: dueAt.toISOString(), command: { type: 'test.ping', data: { timerId } } })
    expect(Date.parse((fired!.data as { at: string }).at)).toBeGreaterThanOrEqual(dueAt.getTime())
    expect(fired!.metadata.tenantId).toBe(tenantId)
    await projectedFired(timerId)
    // A later timer fired too: the runner looked again after the first and fired nothing twice.
    await firedOnce(await schedule(new Date()))
    expect(await firedEvents(timerId)).toHaveLength(1)
  })

  it('a cancelled timer never fires', async () => {
    await runner()
    const scheduler = timerScheduler(deps)
    const cause = recorded('room.read', {})
    const { timerId } = await scheduler.schedule({
      timerId: uuid(),
      at: new Date(Date.now() + 400),
      command: { type: 'test.ping', data: {} },
      processor: 'mentions',
      event: cause,
    })
    await scheduler.cancel(timerId, { processor: 'mentions', event: cause })
    // Due after it: once this one fired, the cancelled one's time has passed under the runner's eyes.
    await firedOnce(await schedule(new Date(Date.now() + 800)))
    expect((await store.readStream(timerStream(timerId))).map((e) => e.type)).toEqual(['timer.scheduled', 'timer.cancelled'])
  })

  it('two runners racing for the same due timers fire each once', async () => {
    await runner({ concurrency: 4 })
    await runner({ concurrency: 4 })
    // Due together a little later: both runners read them, sleep until then and wake to fire the same rows.
    const dueAt = new Date(Date.now() + 1_000)
    const ids = await Promise.all(Array.from({ length: 30 }, () => schedule(dueAt)))
    for (const id of ids) await firedOnce(id)
    for (const id of ids) await projectedFired(id)
    for (const id of ids) expect(await firedEvents(id), id).toHaveLength(1)
  })

  it('a timer survives a restart: the runner stopped before it was due, a new one fires it once', async () => {
    for (const r of runners.splice(0)) await r.stop()
    const first = await runner()
    const timerId = await schedule(new Date(Date.now() + 1_500))
    await first.stop()
    const stoppedAt = Date.now()
    expect(await firedEvents(timerId)).toHaveLength(0)
    await runner()
    const fired = await firedOnce(timerId)
    expect(fired).toHaveLength(1)
    expect(Date.parse(fired[0]!.metadata.occurredAt)).toBeGreaterThanOrEqual(stoppedAt)
    await projectedFired(timerId)
    expect(await firedEvents(timerId)).toHaveLength(1)
  })

  it('a timer scheduled in the past fires at once', async () => {
    await runner()
    const timerId = await schedule(new Date(Date.now() - 3_600_000))
    expect(await firedOnce(timerId)).toHaveLength(1)
  })
})

describe('the runner lease', () => {
  it('a runner fires nothing while another process holds the lease, and takes over when it lapses', async () => {
    for (const r of runners.splice(0)) await r.stop()
    const ghost = await acquireLease(db, { name: TIMER_RUNNER_LEASE, partition: '*' }, 'ghost', 1_500)
    expect(ghost).not.toBeNull()
    const { rows } = await pool.query<{ expires_at: Date }>(
      `select expires_at from control.processor_leases where name = $1 and partition = '*'`,
      [TIMER_RUNNER_LEASE],
    )
    const lapsesAt = rows[0]!.expires_at.getTime()
    const timers = await startTimers({ ...deps, db, pool, logger, holder: 'runner-1' }, { pollMs: 200 })
    runners.push(timers.runner)
    const timerId = await schedule(new Date(Date.now() - 1_000))
    const [fired] = await firedOnce(timerId)
    expect(Date.parse(fired!.metadata.occurredAt)).toBeGreaterThanOrEqual(lapsesAt)
    const holders = await pool.query<{ holder: string }>(
      'select holder from control.processor_leases where name = $1 and expires_at > clock_timestamp()',
      [TIMER_RUNNER_LEASE],
    )
    expect(holders.rows.map((r) => r.holder)).toEqual(['runner-1'])
  })
})

describe('firing from the read model', () => {
  it('a timer the read model still lists as scheduled, but cancelled meanwhile, is not fired', async () => {
    const dueAt = new Date(Date.now() - 1_000)
    const timerId = await schedule(dueAt)
    await cancelTimer(deps, ctx(), timerId)
    const stale = { timerId, dueAt: dueAt.toISOString(), command: { type: 'test.ping', data: { timerId } }, tenantId }
    expect(await fireScheduledTimer(deps, ctx(), stale)).toBeNull()
    expect((await store.readStream(timerStream(timerId))).map((e) => e.type)).toEqual(['timer.scheduled', 'timer.cancelled'])
  })

  it('one fired by another runner meanwhile is not fired again', async () => {
    const dueAt = new Date(Date.now() - 1_000)
    const timerId = await schedule(dueAt)
    const view = { timerId, dueAt: dueAt.toISOString(), command: { type: 'test.ping', data: { timerId } }, tenantId }
    expect(await fireScheduledTimer(deps, ctx(), view)).not.toBeNull()
    expect(await fireScheduledTimer(deps, ctx(), view)).toBeNull()
    expect(await firedEvents(timerId)).toHaveLength(1)
  })
})

describe('scheduling for processors', () => {
  it("a processor's timer belongs to its event's tenant, is caused by it, and a repeat schedules nothing", async () => {
    const scheduler = timerScheduler(deps)
    const cause = recorded('room.read', {})
    const request = {
      timerId: uuid(),
      at: new Date(Date.now() + 3_600_000),
      command: { type: 'test.ping', data: { n: 1 } },
      processor: 'mentions',
      event: cause,
    }
    await scheduler.schedule(request)
    await scheduler.schedule(request)
    const events = await store.readStream(timerStream(request.timerId))
    expect(events.map((e) => e.type)).toEqual(['timer.scheduled'])
    expect(events[0]!.metadata).toMatchObject({
      tenantId,
      causationId: cause.id,
      correlationId: cause.metadata.correlationId,
      actor: { type: 'system', id: 'processor:mentions' },
    })
  })
})

describe('delivering fired timers', () => {
  it("hands a fired timer's command to the handler of its type, and refuses (to park) one without a handler", async () => {
    await runner()
    const handlers = new TimerHandlers()
    const seen: Parameters<TimerHandler>[] = []
    handlers.register('test.ping', async (command, c) => {
      seen.push([command, c])
    })
    expect(() => handlers.register('test.ping', async () => {})).toThrow(/registered already/)
    const processor = firedTimersProcessor(handlers)
    expect(processor.eventTypes).toEqual(['timer.fired'])

    const timerId = await schedule(new Date())
    const [fired] = await firedOnce(timerId)
    await processor.handle(fired as never, processorCtx())
    expect(seen).toHaveLength(1)
    expect(seen[0]![0]).toEqual({ type: 'test.ping', data: { timerId } })
    expect(seen[0]![1]).toMatchObject({ timerId })

    const orphan = await schedule(new Date(), 'test.nobody')
    const [unhandled] = await firedOnce(orphan)
    await expect(processor.handle(unhandled as never, processorCtx())).rejects.toThrow(/no timer handler for test.nobody/)
  })
})

describe('the read model', () => {
  it('rebuilt from the events, control.timers equals the live table (what rebuild --verify checks)', async () => {
    const last = await scheduleTimer(deps, ctx(), {
      timerId: uuid(),
      dueAt: new Date(Date.now() + 3_600_000),
      command: { type: 'test.ping', data: {} },
    })
    await waitFor('the projector caught up', async () => engine.reached(['timers'], last.position!))
    const owner = createPool(database.url, { max: 4 })
    try {
      const result = await verify({ store, db: createKysely(owner), pool: owner }, timersProjector)
      expect(result.rows.timers).toBeGreaterThan(10)
      expect(result.differences).toEqual([])
    } finally {
      await owner.end()
    }
  })
})

function recorded(type: string, data: unknown): RecordedEvent {
  return {
    id: uuid(),
    type,
    data,
    metadata: {
      tenantId,
      actor: { type: 'user', id: 'u1' },
      correlationId: uuid(),
      causationId: null,
      occurredAt: new Date().toISOString(),
      schemaVersion: 1,
    },
    streamName: `room-${uuid()}`,
    revision: 0n,
    position: { transactionId: 1n, sequence: 1n },
  }
}

function processorCtx(): ProcessorContext {
  return {
    logger,
    idFor: (purpose) => purpose,
    schedule: async () => ({ timerId: 'x' }),
    cancel: async () => {},
    signal: new AbortController().signal,
  }
}
