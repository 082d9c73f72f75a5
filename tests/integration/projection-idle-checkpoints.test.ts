import { Kysely, PostgresDialect } from 'kysely'
import { v7 as uuid } from 'uuid'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { comparePositions, type NewEvent, type Position } from '../../adapters/event-store.ts'
import { createLogger } from '../../adapters/logger.ts'
import type { DomainEvent } from '../../domain/decider.ts'
import { loadCheckpoint, ProjectionEngine, type Projector } from '../../projections/engine.ts'
import { startTestServer, type TestServer } from '../support/server.ts'

/*
 * A projector that reads none of the events going by opens no transaction for them: its checkpoint moves in
 * memory (an in-process consistentAfter sees it at once) and is written once it has had nothing to write for a
 * moment, so a reader in another process (the checkpoint table) sees it too; a batch it reads writes it with the
 * batch. Nothing it reads is missed or applied twice across a restart.
 */

const tenant = uuid()
const applied: { name: string; n: number }[] = []
/** Writes of each projector's checkpoint, counted from the engine's queries. */
const checkpointWrites = new Map<string, number>()
let server: TestServer
let engine: ProjectionEngine

const probe = (name: string, type: string): Projector<DomainEvent<string, { n: number }>> => ({
  name,
  version: 1,
  schema: 'tenant',
  tables: [],
  eventTypes: [type],
  async apply(_trx, events) {
    for (const e of events) applied.push({ name, n: e.data.n })
  },
})
const reader = probe('idle_probe_reader', 'probe.read')
const bystander = probe('idle_probe_bystander', 'probe.other')

const event = (type: string, n: number): NewEvent => ({
  id: uuid(),
  type,
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

const start = () => {
  const db = new Kysely<unknown>({
    dialect: new PostgresDialect({ pool: server.services.pool }),
    log(e) {
      if (!/^\s*update\s+"?tenant"?\."?projection_checkpoints/i.test(e.query.sql)) return
      const name = e.query.parameters.find((v) => v === reader.name || v === bystander.name) as string | undefined
      if (name) checkpointWrites.set(name, (checkpointWrites.get(name) ?? 0) + 1)
    },
  })
  engine = new ProjectionEngine({ store: server.services.store, db, logger: createLogger('silent') }, [reader, bystander])
  engine.start()
}

async function until(what: string, check: () => Promise<boolean> | boolean, timeoutMs = 10_000) {
  const deadline = Date.now() + timeoutMs
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 10))
  }
}

const written = (p: Projector) => loadCheckpoint(server.services.db, p)

beforeAll(async () => {
  // The API alone: this test runs the only engine.
  server = await startTestServer({ ROLES: 'api' })
  start()
})
afterAll(async () => {
  await engine?.stop()
  await server?.close()
})

it('events a projector does not read move its checkpoint in memory at once, and in the table once it idles', async () => {
  let head: Position | null = null
  for (let n = 0; n < 40; n++) {
    head = (await server.services.store.append(`probe-${uuid()}`, [event('probe.read', n)], { expectedRevision: 'no_stream' }))
      .position
  }
  await until('both projectors past the head in memory', () => engine.reached([reader.name, bystander.name], head!))
  // The bystander read nothing: no transaction wrote its checkpoint for those batches, yet it is written soon after.
  await until('the bystander’s checkpoint written', async () => comparePositions(await written(bystander), head!) >= 0)
  expect(comparePositions(await written(reader), head!)).toBe(0)
  // The reader wrote its checkpoint with each batch; the bystander only when it idled.
  const writes = { reader: checkpointWrites.get(reader.name) ?? 0, bystander: checkpointWrites.get(bystander.name) ?? 0 }
  expect(writes.reader, JSON.stringify(writes)).toBeGreaterThanOrEqual(5)
  expect(writes.bystander, JSON.stringify(writes)).toBeLessThanOrEqual(2)
  expect(applied.filter((a) => a.name === bystander.name)).toEqual([])
  expect(applied.filter((a) => a.name === reader.name).map((a) => a.n)).toEqual([...Array(40).keys()])
})

it('a batch it reads after a skipped span writes the checkpoint past both; a restart applies nothing twice', async () => {
  const skipped = await server.services.store.append(`probe-${uuid()}`, [event('probe.read', 100)], {
    expectedRevision: 'no_stream',
  })
  const read = await server.services.store.append(`probe-${uuid()}`, [event('probe.other', 101)], {
    expectedRevision: 'no_stream',
  })
  await until('both past the last event', () => engine.reached([reader.name, bystander.name], read.position))
  await until('both checkpoints written', async () =>
    (await Promise.all([written(reader), written(bystander)])).every((c) => comparePositions(c, read.position) >= 0),
  )
  expect(comparePositions(skipped.position, read.position)).toBeLessThan(0)
  await engine.stop()
  const before = applied.length
  start()
  const last = await server.services.store.append(`probe-${uuid()}`, [event('probe.other', 102)], {
    expectedRevision: 'no_stream',
  })
  await until('the restarted engine past the new event', () => engine.reached([reader.name, bystander.name], last.position))
  expect(applied.slice(before)).toEqual([{ name: bystander.name, n: 102 }])
  expect(applied.filter((a) => a.n === 101)).toEqual([{ name: bystander.name, n: 101 }])
})
