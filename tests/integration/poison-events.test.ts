import type { AddressInfo } from 'node:net'
import { Writable } from 'node:stream'
import { serve } from '@hono/node-server'
import { sql } from 'kysely'
import pg from 'pg'
import { v7 as uuid } from 'uuid'
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest'
import { comparePositions, type NewEvent } from '../../adapters/event-store.ts'
import { createLogger } from '../../adapters/logger.ts'
import { createKysely, createPool } from '../../adapters/postgres.ts'
import { createApp } from '../../bin/app.ts'
import type { DomainEvent } from '../../domain/decider.ts'
import { loadCheckpoint, ProjectionEngine, type Projector } from '../../projections/engine.ts'
import { PoisonEventError, rebuild } from '../../projections/rebuild.ts'
import { operatorAccount, operatorToken } from '../support/operator.ts'
import { OPERATOR_TOKEN, startTestServer, type TestServer } from '../support/server.ts'

/*
 * A projector that throws on one event. The engine retries the failing batch with backoff, then applies it
 * event by event, parks the event at fault with the checkpoint moved past it, and goes on; operators see it in
 * GET /control/projections and /metrics, and retry or skip it over HTTP. A rebuild refuses to pass it.
 */

const TABLE = 'poison_probe'
const tenant = uuid()
/** Events the projector refuses, by `n`; an operator "fixes" the projector by deleting from it. */
const refused = new Set<number>()
/** Events that fail with a connection error this many more times (a database blip, not the event's fault). */
const blips = new Map<number, number>()

const probe: Projector<DomainEvent<'probe.recorded', { n: number }>> = {
  name: 'poison_probe',
  version: 1,
  schema: 'control',
  tables: [TABLE],
  eventTypes: ['probe.recorded'],
  async apply(trx, events) {
    for (const e of events) {
      const { n } = e.data
      if (refused.has(n)) throw new Error(`cannot digest probe ${n}`)
      const left = blips.get(n) ?? 0
      if (left > 0) {
        blips.set(n, left - 1)
        throw Object.assign(new Error('connection blip'), { code: '08006' })
      }
      // A second apply of the same event counts twice: the test reads `applied` to prove exactly once.
      await sql`insert into poison_probe as t (event_id, n, tenant, applied)
                values (${e.id}, ${n}, current_setting('app.tenant_id', true), 1)
                on conflict (event_id) do update set applied = t.applied + 1`.execute(trx)
    }
  },
}

const event = (n: number): NewEvent => ({
  id: uuid(),
  type: 'probe.recorded',
  data: { n },
  metadata: {
    tenantId: tenant,
    actor: { type: 'system', id: 'test' },
    correlationId: uuid(),
    causationId: null,
    occurredAt: new Date().toISOString(),
    schemaVersion: 1,
  },
})

const logLines: Record<string, unknown>[] = []
let server: TestServer
let http: ReturnType<typeof serve>
let base: string
let engine: ProjectionEngine

beforeAll(async () => {
  const logTo = new Writable({
    write(chunk, _enc, done) {
      for (const line of String(chunk).split('\n').filter(Boolean)) logLines.push(JSON.parse(line))
      done()
    },
  })
  // The API alone: this test runs the only engine, with the probe and a fast backoff.
  server = await startTestServer({ ROLES: 'api' }, { logTo })
  // The server logs in as the app, which creates nothing: the probe's table is made by the database's owner.
  const owner = new pg.Client({ connectionString: server.database.url })
  await owner.connect()
  try {
    await owner.query(
      'create table control.poison_probe (event_id uuid primary key, n int not null, tenant text, applied int not null)',
    )
    await owner.query('grant select, insert, update, delete on control.poison_probe to ws_projector')
    await owner.query('grant select on control.poison_probe to ws_app')
  } finally {
    await owner.end()
  }
  const app = createApp({ ...server.services, projectors: [...server.services.projectors, probe] })
  http = await new Promise((resolve) => {
    const s = serve({ fetch: app.fetch, hostname: '127.0.0.1', port: 0 }, () => resolve(s))
  })
  base = `http://127.0.0.1:${(http.address() as AddressInfo).port}`
  engine = new ProjectionEngine(
    { store: server.services.store, db: server.services.db, logger: createLogger('silent') },
    [probe],
    {
      retryMs: 5,
      maxRetryMs: 40,
      maxAttempts: 3,
    },
  )
  engine.start()
})

afterAll(async () => {
  await engine?.stop()
  if (http) {
    if ('closeAllConnections' in http) http.closeAllConnections()
    await new Promise((r) => http.close(r))
  }
  await server?.close()
})

const call = async (method: string, path: string, init: { body?: unknown; token?: string | null } = {}) => {
  const token = init.token === undefined ? await operatorToken(server) : init.token
  const res = await fetch(base + path, {
    method,
    headers: {
      ...(token ? { authorization: `Bearer ${token}` } : {}),
      ...(init.body !== undefined ? { 'content-type': 'application/json' } : {}),
    },
    ...(init.body !== undefined ? { body: JSON.stringify(init.body) } : {}),
  })
  const text = await res.text()
  return { status: res.status, type: res.headers.get('content-type') ?? '', body: text.startsWith('{') ? JSON.parse(text) : text }
}

const append = async (...ns: number[]) => {
  const events = ns.map(event)
  const r = await server.services.store.append(`probe-${uuid()}`, events, { expectedRevision: 'no_stream' })
  return { ids: events.map((e) => e.id), position: r.position }
}

const rows = async () =>
  (
    await sql<{
      n: number
      tenant: string
      applied: number
    }>`select n, tenant, applied from control.poison_probe order by n`.execute(server.services.db)
  ).rows

async function until<T>(what: string, read: () => Promise<T>, done: (v: T) => boolean, ms = 15_000): Promise<T> {
  const deadline = Date.now() + ms
  for (;;) {
    const v = await read()
    if (done(v)) return v
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}: ${JSON.stringify(v)}`)
    await new Promise((r) => setTimeout(r, 25))
  }
}

const parkedRows = async () =>
  (
    await sql<{
      consumer: string
      version: number
      event_id: string
      prepare_position: string
      stream: string
      type: string
      error: string
      attempts: number
      status: string
    }>`select consumer, version, event_id, prepare_position::text, stream, type, error, attempts, status
         from control.parked_events where consumer_kind = 'projector' and consumer = 'poison_probe' order by prepare_position`.execute(
      server.services.db,
    )
  ).rows

const projection = async () => {
  const r = await call('GET', '/control/projections')
  expect(r.status).toBe(200)
  return r.body.items.find((i: { name: string }) => i.name === 'poison_probe')
}

const parkedMetric = async () => {
  // /metrics takes the shared token: a scrape configuration's credential.
  const r = await call('GET', '/metrics', { token: OPERATOR_TOKEN })
  expect(r.status).toBe(200)
  const line = (r.body as string)
    .split('\n')
    .find((l) => l.startsWith('workspace_projection_parked_events{projector="poison_probe"'))
  return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(' ') + 1))
}

let poisonId: string

describe('a poison event', () => {
  it('is parked after the retries, with the checkpoint past it; every other event is applied exactly once', async () => {
    refused.add(4)
    const { ids, position } = await append(0, 1, 2, 3, 4, 5, 6, 7, 8, 9)
    poisonId = ids[4]!
    const applied = await until('the events around the poison one', rows, (r) => r.length === 9)
    expect(applied.map((r) => r.n)).toEqual([0, 1, 2, 3, 5, 6, 7, 8, 9])
    expect(applied.every((r) => r.applied === 1 && r.tenant === tenant)).toBe(true)
    await until(
      'the checkpoint',
      () => loadCheckpoint(server.services.db, probe),
      (c) => comparePositions(c, position) >= 0,
    )

    const [parked] = await parkedRows()
    expect(parked).toMatchObject({
      consumer: 'poison_probe',
      version: 1,
      event_id: poisonId,
      type: 'probe.recorded',
      status: 'parked',
      error: expect.stringContaining('cannot digest probe 4'),
    })
    expect(parked!.stream).toMatch(/^probe-/)
    // Three failures of the batch, then one of the event alone.
    expect(parked!.attempts).toBe(4)
    expect(await parkedRows()).toHaveLength(1)

    // Later events go through as usual.
    await append(10, 11)
    await until('later events', rows, (r) => r.length === 11)
  })

  it('a connection error is retried until it passes, never parked', async () => {
    blips.set(12, 5)
    await append(12)
    const applied = await until('the event after the blips', rows, (r) => r.some((x) => x.n === 12))
    expect(applied.find((r) => r.n === 12)!.applied).toBe(1)
    expect(blips.get(12)).toBe(0)
    expect(await parkedRows()).toHaveLength(1)
  })

  it('shows in GET /control/projections and in /metrics', async () => {
    const item = await projection()
    expect(item.parkedCount).toBe(1)
    expect(item.parked).toEqual([
      expect.objectContaining({
        eventId: poisonId,
        version: 1,
        type: 'probe.recorded',
        stream: expect.stringMatching(/^probe-/),
        position: expect.any(Number),
        error: expect.stringContaining('cannot digest probe 4'),
        attempts: 4,
        parkedAt: expect.any(String),
      }),
    ])
    expect(await parkedMetric()).toBe(1)
  })

  it('retry: refused again stays parked with the new error (422); once the projector takes it, applied and unparked', async () => {
    const path = `/control/projections/poison_probe/parked/${poisonId}/retry`
    const again = await call('POST', path)
    expect(again.status).toBe(422)
    expect(again.type).toContain('application/problem+json')
    expect(again.body).toMatchObject({ status: 422, code: 'PARKED_EVENT_FAILED' })
    expect(again.body.detail).toContain('cannot digest probe 4')
    expect((await parkedRows())[0]).toMatchObject({ status: 'parked', attempts: 5 })

    refused.delete(4)
    const ok = await call('POST', path)
    expect(ok.status).toBe(200)
    expect(ok.body).toMatchObject({ name: 'poison_probe', version: 1, eventId: poisonId, status: 'applied' })
    const applied = await rows()
    // Applied once, as the projector role with the event's tenant, like a batch.
    expect(applied.find((r) => r.n === 4)).toEqual({ n: 4, tenant, applied: 1 })
    expect(await parkedRows()).toEqual([])
    expect((await projection()).parked).toEqual([])
    expect(await parkedMetric()).toBe(0)
    expect(logLines.some((l) => l.msg === 'parked event retried by an operator' && l.eventId === poisonId)).toBe(true)

    expect((await call('POST', path)).status).toBe(404)
  })

  it('skip: recorded as skipped, with who and why, and no longer counted', async () => {
    refused.add(20)
    const { ids } = await append(20, 21)
    const skipped = ids[0]!
    await until('the second poison event', parkedRows, (r) => r.length === 1)
    await until('the event after it', rows, (r) => r.some((x) => x.n === 21))
    expect(await parkedMetric()).toBe(1)

    const path = `/control/projections/poison_probe/parked/${skipped}/skip`
    const ok = await call('POST', path, { body: { reason: 'a test event, nothing to show' } })
    expect(ok.status).toBe(200)
    expect(ok.body).toMatchObject({
      name: 'poison_probe',
      version: 1,
      eventId: skipped,
      status: 'skipped',
      skippedBy: (await operatorAccount(server)).accountId,
    })
    expect((await parkedRows())[0]).toMatchObject({ event_id: skipped, status: 'skipped' })
    const item = await projection()
    expect(item.parked).toEqual([])
    expect(item.skipped).toEqual([
      expect.objectContaining({
        eventId: skipped,
        skippedBy: (await operatorAccount(server)).accountId,
        reason: 'a test event, nothing to show',
      }),
    ])
    expect(await parkedMetric()).toBe(0)
    expect(
      logLines.some((l) => l.msg === 'parked event skipped by an operator' && l.eventId === skipped && l.reason !== undefined),
    ).toBe(true)
    expect((await rows()).some((r) => r.n === 20)).toBe(false)

    const twice = await call('POST', path)
    expect(twice.status).toBe(409)
    expect(twice.type).toContain('application/problem+json')
  })

  it('operator commands: operators only; unknown projector or event is a 404 problem', async () => {
    const path = `/control/projections/poison_probe/parked/${uuid()}/retry`
    expect((await call('POST', path, { token: null })).status).toBe(401)
    expect((await call('POST', path, { token: 'not-the-operator-token-at-all' })).status).toBe(401)
    expect((await call('POST', path, { token: OPERATOR_TOKEN })).status).toBe(403)
    for (const p of [
      path,
      `/control/projections/poison_probe/parked/${uuid()}/skip`,
      `/control/projections/nope/parked/${poisonId}/retry`,
    ]) {
      const r = await call('POST', p)
      expect(r.status, p).toBe(404)
      expect(r.type).toContain('application/problem+json')
    }
    expect((await call('POST', '/control/projections/poison_probe/parked/not-a-uuid/skip')).status).toBe(400)
  })

  it('a rebuild fails loudly on it, naming the event; once the projector takes it, the rebuild swaps in and clears the parked list', async () => {
    await engine.stop()
    const skipped = (await parkedRows())[0]!.event_id
    // Rebuilds make schemas: an operator runs them with the owner's login, as `npm run rebuild` does.
    const db = createKysely(createPool(server.database.url, { max: 4 }))
    onTestFinished(() => db.destroy())
    const deps = { store: server.services.store, db }
    const failed = await rebuild(deps, probe, { batchSize: 50 }).catch((e: unknown) => e)
    expect(failed).toBeInstanceOf(PoisonEventError)
    expect((failed as Error).message).toContain(skipped)
    expect((failed as Error).message).toContain('cannot digest probe 20')

    refused.delete(20)
    await rebuild(deps, probe, { batchSize: 50 })
    const after = await rows()
    expect(after.map((r) => r.n)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 20, 21])
    expect(after.every((r) => r.applied === 1)).toBe(true)
    expect(await parkedRows()).toEqual([])
  })
})
