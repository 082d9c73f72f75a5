import { type ChildProcess, spawn } from 'node:child_process'
import { once } from 'node:events'
import { setTimeout as sleep } from 'node:timers/promises'
import { sql } from 'kysely'
import { v7 as uuid } from 'uuid'
import { afterAll, beforeAll, beforeEach, describe, expect, it, onTestFinished } from 'vitest'
import type { NewEvent } from '../../adapters/event-store.ts'
import { acquireLease } from '../../adapters/leases.ts'
import { createLogger } from '../../adapters/logger.ts'
import { MetricsRegistry } from '../../adapters/metrics.ts'
import { type AnyDb, createKysely, createPool, type PgPool } from '../../adapters/postgres.ts'
import { PostgresEventStore } from '../../adapters/postgres-event-store.ts'
import { LeaseLostError, saveProcessorCheckpoint } from '../../adapters/processor-checkpoints.ts'
import { processorCommands } from '../../commands/processors.ts'
import type { AppDeps } from '../../http/context.ts'
import { HttpProblem, renderProblem } from '../../http/problem.ts'
import { router } from '../../http/router.ts'
import { processorIdFor } from '../../processors/context.ts'
import { processorParking } from '../../processors/parking.ts'
import { type ProcessorRuntime, type ProcessorRuntimeOptions, startProcessors } from '../../processors/runtime.ts'
import { processorMetrics, processorOverview, processorQueries } from '../../read-api/processors.ts'
import { createTestDatabase, type TestDatabase } from '../support/db.ts'
import { operatorSessionIn } from '../support/operator.ts'
import { createEffectTable, effectProbe } from '../support/processor-probe.ts'

/*
 * The processors runtime against real Postgres: effects recorded in a table keyed by ctx.idFor (so a repeat shows as
 * a second attempt of one effect, never a second effect), child processes SIGKILLed between effect and checkpoint,
 * runtimes competing for leases, a poison event, operators' retry and skip, and the drain.
 */

let database: TestDatabase
let ownerPool: PgPool
let owner: AnyDb
let appPool: PgPool
/** The control database as the app's login: the runtime needs no more than the grants migration 010 gives it. */
let app: AnyDb
let store: PostgresEventStore
const logger = createLogger('silent')
const OPERATOR = 'operator-token-for-processors'

beforeAll(async () => {
  database = await createTestDatabase()
  ownerPool = createPool(database.url)
  owner = createKysely(ownerPool)
  appPool = createPool(database.appUrl)
  app = createKysely(appPool)
  store = new PostgresEventStore(ownerPool)
  await createEffectTable(owner)
})
afterAll(async () => {
  await store.close()
  await app.destroy()
  await owner.destroy()
  await database.drop()
})
/** This test's probes: every processor of a test acts on its own run's only. */
let run = ''
beforeEach(async () => {
  run = uuid()
  await sql`truncate public.processor_effects, control.processor_checkpoints, control.processor_leases,
                     control.parked_events`.execute(owner)
})

const probeEvent = (n: number, tenant: string | null): NewEvent => ({
  id: uuid(),
  type: 'probe.happened',
  data: { n, run },
  metadata: {
    tenantId: tenant,
    actor: { type: 'system', id: 'test' },
    correlationId: uuid(),
    causationId: null,
    occurredAt: new Date().toISOString(),
    schemaVersion: 1,
  },
})

/** Appends probes numbered from `from`, each tenant's in one stream, with noise between that no probe handles. */
async function appendProbes(count: number, tenants: readonly string[], from = 0): Promise<number[]> {
  const ns = Array.from({ length: count }, (_, i) => from + i)
  for (const n of ns) {
    const tenant = tenants[n % tenants.length]!
    await store.append(`probe-${uuid()}`, [probeEvent(n, tenant)], { expectedRevision: 'no_stream' })
    if (n % 5 === 0) {
      await store.append(`noise-${uuid()}`, [{ ...probeEvent(n, tenant), type: 'noise.made' }], { expectedRevision: 'no_stream' })
    }
  }
  return ns
}

type Effect = { n: number; event_id: string; effect_id: string; holder: string; attempts: number; tenant_id: string | null }
const effects = () =>
  sql<Effect>`select n, event_id::text, effect_id::text, holder, attempts, tenant_id::text from public.processor_effects order by n`
    .execute(owner)
    .then((r) => r.rows)

async function until<T>(what: string, probe: () => Promise<T | null | false>, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const v = await probe()
    if (v) return v
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await sleep(25)
  }
}
const effectsReach = (count: number) =>
  until(`${count} effects`, async () => {
    const rows = await effects()
    return rows.length >= count ? rows : null
  })

const FAST: ProcessorRuntimeOptions = { leaseTtlMs: 1_500, renewMs: 250, retryMs: 5, maxRetryMs: 20, tenantPartitions: 4 }

function start(processors: Parameters<typeof startProcessors>[0]['processors'], options: ProcessorRuntimeOptions = {}) {
  const runtime = startProcessors({ store, controlDb: app, logger, processors, options: { ...FAST, ...options } })
  onTestFinished(() => runtime.stop())
  return runtime
}

describe('a processor', () => {
  it("performs each event's effect under ids derived from the event: a replay from the start repeats no effect", async () => {
    const tenant = uuid()
    const ns = await appendProbes(12, [tenant])
    const first = start([effectProbe({ run, name: 'effects', holder: 'one', db: app })], { holder: 'one', batchSize: 5 })
    const rows = await effectsReach(ns.length)
    expect(rows.map((r) => r.n)).toEqual(ns)
    expect(rows.map((r) => r.effect_id)).toEqual(rows.map((r) => processorIdFor('effects', r.event_id, 'effect')))
    expect(rows.every((r) => r.attempts === 1)).toBe(true)
    await first.stop()
    // Someone resets the checkpoint: every event is handled again, and every effect finds itself done.
    await sql`update control.processor_checkpoints set commit_position = '0'::xid8, prepare_position = 0`.execute(owner)
    start([effectProbe({ run, name: 'effects', holder: 'two', db: app })], { holder: 'two' })
    const again = await until('every effect attempted twice', async () => {
      const r = await effects()
      return r.every((e) => e.attempts === 2) ? r : null
    })
    expect(again.map((r) => r.n)).toEqual(ns)
    expect(again.every((r) => r.holder === 'one')).toBe(true)
  })

  it('SIGKILLed between effect and checkpoint, three times, records each effect once and attempts it again', async () => {
    const ns = await appendProbes(40, [uuid(), uuid()])
    const child = (env: Record<string, string>): ChildProcess =>
      spawn(process.execPath, ['tests/support/processor-child.ts'], {
        env: { ...process.env, RUN: run, DATABASE_URL: database.url, TOTAL: String(ns.length), ...env },
        stdio: ['ignore', 'pipe', 'inherit'],
      })
    const crashes = [9, 20, 33]
    for (const crashAt of crashes) {
      const proc = child({ CRASH_AT: String(crashAt) })
      const out: string[] = []
      proc.stdout!.on('data', (d: Buffer) => out.push(d.toString()))
      await until(`the effect of event ${crashAt}`, async () => out.join('').includes(`effected ${crashAt}`), 30_000)
      proc.kill('SIGKILL')
      await once(proc, 'exit')
    }
    const last = child({})
    const [code] = (await once(last, 'exit')) as [number]
    expect(code).toBe(0)
    const rows = await effects()
    // Once each: as many effects as events, each under its own derived id.
    expect(rows.map((r) => r.n)).toEqual(ns)
    expect(new Set(rows.map((r) => r.effect_id)).size).toBe(ns.length)
    // The effect a child died after was attempted again by the next one (its checkpoint had not moved past it).
    for (const n of crashes) expect(rows.find((r) => r.n === n)!.attempts, `event ${n}`).toBeGreaterThanOrEqual(2)
  }, 90_000)
})

describe('leases', () => {
  it('two runtimes competing: exactly one handles each tenant partition, and each event once', async () => {
    const tenants = Array.from({ length: 10 }, () => uuid())
    const ns = await appendProbes(60, tenants)
    const a = start([effectProbe({ run, name: 'split', partitionBy: 'tenant', holder: 'a', db: app })], { holder: 'a' })
    const b = start([effectProbe({ run, name: 'split', partitionBy: 'tenant', holder: 'b', db: app })], { holder: 'b' })
    const rows = await effectsReach(ns.length)
    // They share the partitions, two each, once each has seen the other announce itself.
    await until(
      'two partitions each',
      async () => a.statuses().filter((s) => s.held).length === 2 && b.statuses().filter((s) => s.held).length === 2,
    )
    await sleep(300) // a few renewals: a second holder of a partition, were there one, would have had its turn
    const held = [...a.statuses(), ...b.statuses()].filter((s) => s.held)
    expect(held.map((s) => s.partition).sort()).toEqual(['0/4', '1/4', '2/4', '3/4'])
    expect((await effects()).length).toBe(ns.length)
    expect(rows.every((r) => r.attempts === 1)).toBe(true)
    // Each tenant's events were handled by the holder of its partition, and by no one else.
    const holders = new Map<string, Set<string>>()
    for (const r of rows) holders.set(r.tenant_id!, (holders.get(r.tenant_id!) ?? new Set()).add(r.holder))
    expect([...holders.values()].every((h) => h.size === 1)).toBe(true)
  })

  it('a holder SIGKILLed without releasing is taken over within the lease TTL, and the rest flows', async () => {
    await appendProbes(10, [uuid(), uuid(), uuid()])
    const dead = spawn(process.execPath, ['tests/support/processor-child.ts'], {
      env: {
        ...process.env,
        RUN: run,
        DATABASE_URL: database.url,
        HOLD: '1',
        PROCESSOR: 'split',
        PARTITION_BY: 'tenant',
        HOLDER: 'dead',
      },
      stdio: ['ignore', 'pipe', 'inherit'],
    })
    onTestFinished(() => {
      dead.kill('SIGKILL')
    })
    await effectsReach(10)
    const live = start([effectProbe({ run, name: 'split', partitionBy: 'tenant', holder: 'live', db: app })], { holder: 'live' })
    // The child hands two partitions over to the newcomer, and keeps two.
    await until('the partitions shared', async () => live.statuses().filter((s) => s.held).length === 2)
    const leases = await sql<{ holder: string }>`
      select holder from control.processor_leases where name = 'split' and expires_at > clock_timestamp() order by holder`.execute(
      owner,
    )
    expect(leases.rows.map((r) => r.holder)).toEqual(['dead', 'dead', 'live', 'live'])
    dead.kill('SIGKILL')
    await once(dead, 'exit')
    const killedAt = Date.now()
    await until('the live runtime to hold every partition', async () => live.statuses().every((s) => s.held), 1_500 * 3)
    const takeoverMs = Date.now() - killedAt
    const ns = await appendProbes(10, [uuid(), uuid(), uuid()], 10)
    const rows = await effectsReach(20)
    expect(rows.filter((r) => ns.includes(r.n)).every((r) => r.holder === 'live')).toBe(true)
    const overview = await processorOverview({ store, controlDb: app }, [{ name: 'split', version: 1, partitionBy: 'tenant' }])
    expect(overview[0]!.partitions.map((p) => [p.partition, p.holder, p.lag])).toEqual(
      ['0/4', '1/4', '2/4', '3/4'].map((p) => [p, 'live', expect.any(Number)]),
    )
    expect(takeoverMs).toBeGreaterThan(0)
  })

  it('a holder whose lease was taken stops its effect (ctx.signal) and cannot move the checkpoint', async () => {
    await appendProbes(3, [uuid()])
    let aborted: unknown = null
    const runtime = start(
      [
        effectProbe({
          run,
          name: 'fenced',
          holder: 'old',
          db: app,
          async beforeEffect(n, signal) {
            if (n !== 1) return
            await new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve()))
            aborted = signal.reason
            throw signal.reason
          },
        }),
      ],
      { holder: 'old' },
    )
    await effectsReach(1)
    const [before] = (
      await sql<{ p: string }>`select prepare_position::text as p from control.processor_checkpoints`.execute(owner)
    ).rows
    // Another process takes the lease over (as if ours had expired unseen).
    await sql`update control.processor_leases set holder = 'new', generation = generation + 1`.execute(owner)
    await until('the effect aborted', async () => aborted !== null)
    expect(aborted).toBeInstanceOf(LeaseLostError)
    await until('the partition let go', async () => runtime.statuses().every((s) => !s.held))
    const [after] = (
      await sql<{ p: string }>`select prepare_position::text as p from control.processor_checkpoints`.execute(owner)
    ).rows
    expect(after).toEqual(before)
    expect((await effects()).map((r) => r.n)).toEqual([0])
    // A save under the old generation is refused outright.
    const stale = { name: 'fenced', partition: '*', holder: 'old', generation: 1n }
    await expect(
      saveProcessorCheckpoint(app, { name: 'fenced', version: 1, partition: '*' }, stale, { transactionId: 9n, sequence: 9n }),
    ).rejects.toBeInstanceOf(LeaseLostError)
    expect(await acquireLease(app, { name: 'fenced', partition: '*' }, 'third', 1_000)).toBeNull()
  })
})

describe('parking', () => {
  /** The operator routes as the lead mounts them, with the problem+json rendering of the app. */
  const operatorApp = (deps: AppDeps, parking: ReturnType<typeof processorParking>) => {
    const http = router()
    http.use('*', async (c, next) => {
      c.set('log', logger)
      await next()
    })
    http.onError((e, c) => (e instanceof HttpProblem ? renderProblem(c, e.problem) : c.text(String(e), 500)))
    http.route('/', processorQueries(deps, [{ name: 'poison', version: 1, partitionBy: 'none' }]))
    http.route('/', processorCommands(deps, parking))
    return http
  }
  /** An operator's account session, made in the store (tests/support/operator.ts). */
  const auth = { authorization: '' }
  beforeAll(async () => {
    auth.authorization = `Bearer ${await operatorSessionIn(store)}`
  })

  it('a poison event parks after its retries, later events flow; operators see it, retry it and skip another', async () => {
    const refused = new Set([3, 5])
    const processor = effectProbe({
      run,
      name: 'poison',
      holder: 'p',
      db: app,
      async beforeEffect(n) {
        if (refused.has(n)) throw new Error(`cannot digest probe ${n}`)
      },
    })
    const runtime = start([processor], { holder: 'p', maxAttempts: 3 })
    const ns = await appendProbes(8, [uuid()])
    const rows = await effectsReach(ns.length - refused.size)
    expect(rows.map((r) => r.n)).toEqual(ns.filter((n) => !refused.has(n)))
    const status = runtime.statuses()[0]!
    // Three attempts each; the events it handled include other tests' probes, which it passes over.
    expect(status).toMatchObject({ parked: 2, failures: 6 })
    expect(status.eventsHandled).toBeGreaterThanOrEqual(5)

    const deps = { config: { OPERATOR_TOKEN: OPERATOR }, store, controlDb: app } as unknown as AppDeps
    const parking = processorParking({ store, controlDb: app, logger, processors: [processor] })
    const http = operatorApp(deps, parking)
    const listed: any = await (await http.request('/control/processors', { headers: auth })).json()
    const [poison] = listed.items
    expect(poison.parkedCount).toBe(2)
    expect(poison.parked.map((e: { type: string; attempts: number }) => [e.type, e.attempts])).toEqual([
      ['probe.happened', 3],
      ['probe.happened', 3],
    ])
    const [third, fifth] = poison.parked.map((e: { eventId: string }) => e.eventId)
    expect((await http.request('/control/processors', {})).status).toBe(401)

    const registry = new MetricsRegistry()
    processorMetrics(registry, { controlDb: app }, { processors: [processor], statuses: runtime.statuses })
    const exposition = await registry.render()
    expect(exposition).toContain('workspace_processor_parked_events{processor="poison",version="1"} 2')
    expect(exposition).toMatch(/workspace_processor_events_handled\{processor="poison",partition="\*"\} \d+/)
    expect(exposition).toContain('workspace_processor_failures{processor="poison",partition="*"} 6')

    const post = (path: string, body?: unknown) =>
      http.request(path, {
        method: 'POST',
        headers: body ? { ...auth, 'content-type': 'application/json' } : auth,
        ...(body ? { body: JSON.stringify(body) } : {}),
      })
    // Still failing: it stays parked, with one attempt more.
    const failed = await post(`/control/processors/poison/parked/${third}/retry`)
    expect(failed.status).toBe(422)
    expect((await parking.retry('poison', third)).outcome).toBe('failed')
    // Fixed: the retry performs the effect and unparks it.
    refused.delete(3)
    const applied = await post(`/control/processors/poison/parked/${third}/retry`)
    expect(applied.status).toBe(200)
    expect((await effects()).map((r) => r.n)).toEqual(ns.filter((n) => n !== 5))
    // Skipped for good, once.
    const skipped = await post(`/control/processors/poison/parked/${fifth}/skip`, { reason: 'bad data' })
    expect(skipped.status).toBe(200)
    expect((await post(`/control/processors/poison/parked/${fifth}/skip`)).status).toBe(409)
    expect((await post(`/control/processors/poison/parked/${uuid()}/retry`)).status).toBe(404)
    const after: any = ((await (await http.request('/control/processors', { headers: auth })).json()) as any).items[0]
    expect(after).toMatchObject({ parkedCount: 0, parked: [] })
    expect(after.skipped.map((e: { eventId: string; reason: string }) => [e.eventId, e.reason])).toEqual([[fifth, 'bad data']])
  })
})

describe('drain', () => {
  it('on stop, an effect in flight finishes, its checkpoint is saved, no event is taken after, the lease is released', async () => {
    await appendProbes(5, [uuid()])
    let release: () => void = () => {}
    let inFlight = false
    const runtime: ProcessorRuntime = start(
      [
        effectProbe({
          run,
          name: 'drained',
          holder: 'd',
          db: app,
          async beforeEffect(n) {
            if (n !== 2) return
            inFlight = true
            await new Promise<void>((resolve) => {
              release = resolve
            })
          },
        }),
      ],
      { holder: 'd', batchSize: 10, drainMs: 10_000 },
    )
    await until('the effect of event 2 in flight', async () => inFlight)
    const stopped = runtime.stop()
    await sleep(100)
    release()
    await stopped
    expect((await effects()).map((r) => r.n)).toEqual([0, 1, 2])
    const { rows } = await sql<{ holder: string | null; live: boolean }>`
      select holder, expires_at > clock_timestamp() as live from control.processor_leases
       where name = 'drained' or partition = 'd'`.execute(owner)
    // The partition's lease and the process's own announcement, both given up.
    expect(rows).toEqual([
      { holder: null, live: false },
      { holder: null, live: false },
    ])
    // The checkpoint stands right after event 2: a new runtime goes on with 3 and repeats nothing.
    start([effectProbe({ run, name: 'drained', holder: 'd2', db: app })], { holder: 'd2' })
    const rest = await effectsReach(5)
    expect(rest.map((r) => [r.n, r.attempts])).toEqual([0, 1, 2, 3, 4].map((n) => [n, 1]))
  })

  it('on stop, an effect still in flight after the drain time is aborted through ctx.signal and handled again later', async () => {
    await appendProbes(3, [uuid()])
    let sawAbort = false
    let stuck = true
    const runtime = start(
      [
        effectProbe({
          run,
          name: 'aborted',
          holder: 'x',
          db: app,
          async beforeEffect(n, signal) {
            if (n !== 1 || !stuck) return
            await new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve()))
            sawAbort = true
            throw signal.reason
          },
        }),
      ],
      { holder: 'x', drainMs: 50 },
    )
    await effectsReach(1)
    await runtime.stop()
    expect(sawAbort).toBe(true)
    expect((await effects()).map((r) => r.n)).toEqual([0])
    expect((await sql`select * from control.parked_events`.execute(owner)).rows).toEqual([])
    stuck = false
    start([effectProbe({ run, name: 'aborted', holder: 'y', db: app })], { holder: 'y' })
    expect((await effectsReach(3)).map((r) => [r.n, r.attempts])).toEqual([0, 1, 2].map((n) => [n, 1]))
  })

  it('on stop, an event waiting out its backoff is left for later at once, not aborted after the drain time', async () => {
    await appendProbes(2, [uuid()])
    const signals: AbortSignal[] = []
    const runtime = start(
      [
        effectProbe({
          run,
          name: 'backoff',
          holder: 'w',
          db: app,
          async beforeEffect(n, signal) {
            if (n !== 1) return
            signals.push(signal)
            throw new Error('not yet')
          },
        }),
      ],
      { holder: 'w', retryMs: 60_000, maxRetryMs: 60_000, maxAttempts: 100, drainMs: 60_000 },
    )
    await until('a first failure', async () => signals.length > 0)
    await runtime.stop()
    // Had the drain waited for the backoff, it would have run out and aborted the effects' signal.
    expect(signals.map((x) => x.aborted)).toEqual([false])
    expect((await effects()).map((r) => r.n)).toEqual([0])
    expect((await sql`select * from control.parked_events`.execute(owner)).rows).toEqual([])
  })
})
