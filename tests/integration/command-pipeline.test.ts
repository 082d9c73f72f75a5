import { v7 as uuid } from 'uuid'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { EventStore } from '../../adapters/event-store.ts'
import { createPool, type PgPool } from '../../adapters/postgres.ts'
import { PostgresEventStore } from '../../adapters/postgres-event-store.ts'
import { StreamCache } from '../../adapters/stream-cache.ts'
import { withUpcasting } from '../../adapters/upcasting-event-store.ts'
import { type CommandContext, ConcurrencyError, type DecisionReader, handleCommand } from '../../commands/pipeline.ts'
import { type Decider, DomainError } from '../../domain/decider.ts'
import { upcasters } from '../../domain/upcasting.ts'
import { createTestDatabase, type TestDatabase } from '../support/db.ts'

type Ev = { type: 'counter.added'; data: { by: number } }
const counter: Decider<{ by: number; max?: number }, Ev, { total: number }> = {
  initialState: { total: 0 },
  decide: (c, s) => {
    if (c.max !== undefined && s.total + c.by > c.max) throw new DomainError('OVER', 'over the max')
    return [{ type: 'counter.added', data: { by: c.by } }]
  },
  evolve: (s, e) => ({ total: s.total + e.data.by }),
}

let database: TestDatabase
let pool: PgPool
let raw: PostgresEventStore
beforeAll(async () => {
  database = await createTestDatabase()
  pool = createPool(database.url, { max: 30 })
  raw = new PostgresEventStore(pool)
})
afterAll(async () => {
  await raw.close()
  await pool.end()
  await database.drop()
})

const tenantId = uuid()
const ctx = (over: Partial<CommandContext> = {}): CommandContext => ({
  tenantId,
  actor: { type: 'user', id: 'u1' },
  correlationId: 'corr-1',
  causationId: 'req-1',
  now: () => new Date('2026-11-28T10:00:00Z'),
  newId: uuid,
  ...over,
})

describe('the command pipeline', () => {
  it('retries on conflicts so concurrent commands on one stream lose no update', async () => {
    const stream = `counter-${uuid()}`
    const deps = { store: raw, upcasters: upcasters({}) }
    await Promise.all(
      Array.from({ length: 12 }, () => handleCommand(deps, counter, stream, { by: 1 }, ctx(), { maxAttempts: 50 })),
    )
    const events = await raw.readStream(stream)
    expect(events).toHaveLength(12)
  })

  it('enforces an invariant under concurrency: decisions are retaken on fresh state', async () => {
    const stream = `counter-${uuid()}`
    const deps = { store: raw, upcasters: upcasters({}) }
    const results = await Promise.allSettled(
      Array.from({ length: 10 }, () => handleCommand(deps, counter, stream, { by: 1, max: 4 }, ctx(), { maxAttempts: 50 })),
    )
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(4)
    for (const r of results) if (r.status === 'rejected') expect(r.reason).toBeInstanceOf(DomainError)
  })

  it('reports a conflict when the attempts run out', async () => {
    const stream = `counter-${uuid()}`
    const deps = { store: raw, upcasters: upcasters({}) }
    const results = await Promise.allSettled(
      Array.from({ length: 10 }, () => handleCommand(deps, counter, stream, { by: 1 }, ctx(), { maxAttempts: 1 })),
    )
    const rejected = results.filter((r) => r.status === 'rejected')
    expect(rejected.length).toBeGreaterThan(0)
    for (const r of rejected) expect((r as PromiseRejectedResult).reason).toBeInstanceOf(ConcurrencyError)
    expect(await raw.readStream(stream)).toHaveLength(10 - rejected.length)
  })

  it('refuses to decide on another tenant’s stream: it does not exist for the caller', async () => {
    const stream = `counter-${uuid()}`
    const deps = { store: raw, upcasters: upcasters({}) }
    await handleCommand(deps, counter, stream, { by: 1 }, ctx())
    const err = await handleCommand(deps, counter, stream, { by: 1 }, ctx({ tenantId: uuid() })).catch((e) => e)
    expect(err).toBeInstanceOf(DomainError)
    expect(err.kind).toBe('not_found')
    expect(await raw.readStream(stream)).toHaveLength(1)
  })

  it('writes the envelope: tenant, actor, correlation, causation, time and schema version', async () => {
    const stream = `counter-${uuid()}`
    const c = ctx()
    const r = await handleCommand({ store: raw, upcasters: upcasters({}) }, counter, stream, { by: 2 }, c)
    expect(r.state).toEqual({ total: 2 })
    const [e] = await raw.readStream(stream)
    expect(e!.metadata).toEqual({
      tenantId: c.tenantId,
      actor: { type: 'user', id: 'u1' },
      correlationId: 'corr-1',
      causationId: 'req-1',
      occurredAt: '2026-11-28T10:00:00.000Z',
      schemaVersion: 1,
    })
    expect(r.position).toEqual(e!.position)
  })

  it('folds old event versions through their upcasters', async () => {
    const stream = `counter-${uuid()}`
    // Version 1 of counter.added stored the amount as `n`; version 2 calls it `by`.
    const old = { ...ctx(), newId: uuid }
    await raw.append(
      stream,
      [
        {
          id: uuid(),
          type: 'counter.added',
          data: { n: 5 },
          metadata: {
            tenantId: old.tenantId,
            actor: old.actor,
            correlationId: 'c',
            causationId: null,
            occurredAt: 'x',
            schemaVersion: 1,
          },
        },
      ],
      { expectedRevision: 'no_stream' },
    )
    const registry = upcasters({ 'counter.added': { current: 2, steps: { 1: (d) => ({ by: (d as { n: number }).n }) } } })
    const store = withUpcasting(raw, registry)
    const r = await handleCommand({ store, upcasters: registry }, counter, stream, { by: 1 }, ctx())
    expect(r.state).toEqual({ total: 6 })
    const events = await store.readStream(stream)
    expect(events.map((e) => [e.data, e.metadata.schemaVersion])).toEqual([
      [{ by: 5 }, 2],
      [{ by: 1 }, 2],
    ])
    expect((await raw.readStream(stream))[0]!.data).toEqual({ n: 5 })
  })
})

describe('the stream cache of decisions (the streams a decision reads besides its own)', () => {
  /** The real store, counting the reads of each stream. */
  const counting = () => {
    const reads = new Map<string, number>()
    const store: EventStore = Object.create(raw)
    store.readStream = (stream, options) => {
      reads.set(stream, (reads.get(stream) ?? 0) + 1)
      return raw.readStream(stream, options)
    }
    return { store, reads }
  }
  /** Adds `by` to one counter unless another, read as a condition, has reached `limit`. */
  const addUnlessLimit =
    (limitStream: string, by: number, limit: number) => async (_: { total: number }, read: DecisionReader) => {
      const other = await read(counter, limitStream)
      if (other.total >= limit) throw new DomainError('LIMIT', 'the other counter is at its limit')
      return { by }
    }

  it('decides on the cached copy: a second decision reads the other stream no more', async () => {
    const { store, reads } = counting()
    const deps = { store, upcasters: upcasters({}), streamCache: new StreamCache() }
    const limit = `limit-${uuid()}`
    await handleCommand(deps, counter, limit, { by: 1 }, ctx())
    for (let i = 0; i < 3; i++) await handleCommand(deps, counter, `counter-${uuid()}`, addUnlessLimit(limit, 1, 5), ctx())
    // Once as its own stream, once by the first decision; the next two decide on that copy.
    expect(reads.get(limit)).toBe(2)
  })

  it('a copy another writer made stale costs a refused append and a fresh read, never a wrong decision', async () => {
    const deps = { store: raw, upcasters: upcasters({}), streamCache: new StreamCache() }
    const limit = `limit-${uuid()}`
    const target = `counter-${uuid()}`
    await handleCommand(deps, counter, limit, { by: 1 }, ctx())
    await handleCommand(deps, counter, target, addUnlessLimit(limit, 1, 2), ctx())
    // Another process takes the other counter to its limit: this one's cached copy does not know.
    await handleCommand({ store: raw, upcasters: upcasters({}) }, counter, limit, { by: 1 }, ctx())
    await expect(handleCommand(deps, counter, target, addUnlessLimit(limit, 1, 2), ctx())).rejects.toMatchObject({
      code: 'LIMIT',
    })
    expect(await raw.readStream(target)).toHaveLength(1)
  })

  it('a stream this process appends to is read afresh by the next decision', async () => {
    const { store, reads } = counting()
    const deps = { store, upcasters: upcasters({}), streamCache: new StreamCache() }
    const limit = `limit-${uuid()}`
    await handleCommand(deps, counter, `counter-${uuid()}`, addUnlessLimit(limit, 1, 1), ctx())
    await handleCommand(deps, counter, limit, { by: 1 }, ctx())
    await expect(handleCommand(deps, counter, `counter-${uuid()}`, addUnlessLimit(limit, 1, 1), ctx())).rejects.toMatchObject({
      code: 'LIMIT',
    })
    // Once for the first decision, once as its own stream, once afresh after that append: never a refused append.
    expect(reads.get(limit)).toBe(3)
  })
})
