import { sql } from 'kysely'
import { v7 as uuid } from 'uuid'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type AppendResult, PartialIdempotencyError, WrongExpectedRevisionError } from '../../adapters/event-store.ts'
import { createKysely, createPool, type PgPool } from '../../adapters/postgres.ts'
import { PostgresEventStore, type PostgresEventStoreOptions } from '../../adapters/postgres-event-store.ts'
import { createTestDatabase, type TestDatabase } from '../support/db.ts'
import { eventStoreContract, newEvent } from './event-store.contract.ts'

const factory = (options: PostgresEventStoreOptions) => async () => {
  const database = await createTestDatabase()
  const pool = createPool(database.url, { max: 20 })
  const store = new PostgresEventStore(pool, options)
  return {
    store,
    async teardown() {
      await store.close()
      await pool.end()
      await database.drop()
    },
  }
}

eventStoreContract('Postgres', factory({}))
// One append in flight at a time: every append that arrives meanwhile goes in a group.
eventStoreContract('Postgres, grouping every queued append', factory({ groupCommit: { maxInFlight: 1 } }))
eventStoreContract('Postgres, without group commit', factory({ groupCommit: false }))

const stream = () => `thing-${uuid()}`

const fulfilled = (r: PromiseSettledResult<AppendResult>) => {
  if (r.status === 'rejected') throw r.reason
  return r.value
}

describe('Postgres group commit', () => {
  let database: TestDatabase
  let pool: PgPool
  let store: PostgresEventStore
  beforeAll(async () => {
    database = await createTestDatabase()
    pool = createPool(database.url, { max: 8 })
    store = new PostgresEventStore(pool, { groupCommit: { maxInFlight: 1 } })
  })
  afterAll(async () => {
    await store.close()
    await pool.end()
    await database.drop()
  })

  /** The first append runs alone; the ones submitted while it runs queue behind it and go as one group. */
  const behindOne = <T>(appends: (() => Promise<T>)[]) => {
    const lead = store.append(stream(), [newEvent()], { expectedRevision: 'no_stream' })
    return Promise.all([lead, Promise.allSettled(appends.map((a) => a()))]).then(([, rest]) => rest)
  }

  it('appends that queue commit together, in one transaction, in the order they were made', async () => {
    const streams = Array.from({ length: 5 }, () => stream())
    const results = (
      await behindOne(streams.map((s) => () => store.append(s, [newEvent()], { expectedRevision: 'no_stream' })))
    ).map(fulfilled)
    expect(new Set(results.map((r) => r.position.transactionId)).size).toBe(1)
    const sequences = results.map((r) => r.position.sequence)
    expect([...sequences].sort((a, b) => (a < b ? -1 : 1))).toEqual(sequences)
  })

  it('a member whose expected revision is wrong fails alone; the rest of its group commits', async () => {
    const existing = stream()
    await store.append(existing, [newEvent()], { expectedRevision: 'no_stream' })
    const others = [stream(), stream(), stream()]
    const [a, conflicting, b, c] = await behindOne([
      () => store.append(others[0]!, [newEvent()], { expectedRevision: 'no_stream' }),
      () => store.append(existing, [newEvent()], { expectedRevision: 'no_stream' }),
      () => store.append(others[1]!, [newEvent()], { expectedRevision: 'no_stream' }),
      () => store.append(others[2]!, [newEvent()], { expectedRevision: 'no_stream' }),
    ])
    expect(conflicting!.status === 'rejected' && conflicting!.reason).toBeInstanceOf(WrongExpectedRevisionError)
    expect(conflicting!.status === 'rejected' && conflicting!.reason).toMatchObject({ stream: existing, actual: 0n })
    const landed = [a!, b!, c!].map(fulfilled)
    expect(new Set(landed.map((r) => r.position.transactionId)).size).toBe(1)
    for (const s of others) expect(await store.readStream(s)).toHaveLength(1)
    expect(await store.readStream(existing)).toHaveLength(1)
  })

  it('a member conditioned on a stream an earlier member moved sees it moved, naming that stream', async () => {
    const room = stream()
    const opened = await store.append(room, [newEvent('room.opened')], { expectedRevision: 'no_stream' })
    const post = stream()
    const [archived, posted] = await behindOne([
      () => store.append(room, [newEvent('room.archived')], { expectedRevision: opened.nextExpectedRevision }),
      () =>
        store.append(post, [newEvent('post.made')], {
          expectedRevision: 'no_stream',
          alsoExpect: [{ stream: room, expectedRevision: opened.nextExpectedRevision }],
        }),
    ])
    expect(fulfilled(archived!).nextExpectedRevision).toBe(1n)
    expect(posted!.status === 'rejected' && posted!.reason).toMatchObject({ stream: room, expected: 0n, actual: 1n })
    expect(await store.readStream(post)).toEqual([])
  })

  it('members on one stream get consecutive revisions; a repeated member is an idempotent retry of the first', async () => {
    const s = stream()
    await store.append(s, [newEvent()], { expectedRevision: 'no_stream' })
    const repeated = [newEvent(), newEvent()]
    const results = await behindOne([
      () => store.append(s, [newEvent()], { expectedRevision: 'stream_exists' }),
      () => store.append(s, repeated, { expectedRevision: 'any' }),
      () => store.append(s, [newEvent()], { expectedRevision: 'any' }),
      () => store.append(s, repeated, { expectedRevision: 'any' }),
      () => store.append(s, [repeated[0]!, newEvent()], { expectedRevision: 'any' }),
    ])
    const [one, first, three, again] = results.slice(0, 4).map(fulfilled)
    expect([one!, first!, three!].map((r) => r.nextExpectedRevision)).toEqual([1n, 3n, 4n])
    expect(again).toEqual(first)
    const partial = results[4]!
    expect(partial.status === 'rejected' && partial.reason).toBeInstanceOf(PartialIdempotencyError)
    expect((await store.readStream(s)).map((e) => e.revision)).toEqual([0n, 1n, 2n, 3n, 4n])
    expect(new Set([one, first, three, again].map((r) => r!.position.transactionId)).size).toBe(1)
  })

  it('a member the database refuses for a reason of its own fails alone, with the error it raises alone', async () => {
    const bad = { ...newEvent(), id: 'not-a-uuid' }
    const ungrouped = new PostgresEventStore(pool, { groupCommit: false })
    const alone = await ungrouped.append(stream(), [bad], { expectedRevision: 'any' }).catch((e) => e)
    await ungrouped.close()
    expect(alone).toMatchObject({ code: '22P02' })
    const good = stream()
    const [refused, landed] = await behindOne([
      () => store.append(stream(), [bad], { expectedRevision: 'any' }),
      () => store.append(good, [newEvent()], { expectedRevision: 'no_stream' }),
    ])
    expect(refused!.status === 'rejected' && refused!.reason).toMatchObject({ code: '22P02', message: alone.message })
    expect(fulfilled(landed!).nextExpectedRevision).toBe(0n)
  })
})

describe('Postgres group commit on a database without eventstore.append_group', () => {
  let database: TestDatabase
  let pool: PgPool
  let store: PostgresEventStore
  beforeAll(async () => {
    database = await createTestDatabase()
    pool = createPool(database.url, { max: 8 })
    await sql`drop function eventstore.append_group(jsonb)`.execute(createKysely(pool))
    store = new PostgresEventStore(pool, { groupCommit: { maxInFlight: 1 } })
  })
  afterAll(async () => {
    await store.close()
    await pool.end()
    await database.drop()
  })

  it('a group refused as a whole runs member by member, each answering as it would alone', async () => {
    const existing = stream()
    await store.append(existing, [newEvent()], { expectedRevision: 'no_stream' })
    const lead = store.append(stream(), [newEvent()], { expectedRevision: 'no_stream' })
    const fresh = [stream(), stream()]
    const results = await Promise.allSettled([
      ...fresh.map((s) => store.append(s, [newEvent()], { expectedRevision: 'no_stream' })),
      store.append(existing, [newEvent()], { expectedRevision: 'no_stream' }),
    ])
    await lead
    for (const r of results.slice(0, 2)) expect(fulfilled(r).nextExpectedRevision).toBe(0n)
    expect(results[2]!.status === 'rejected' && results[2]!.reason).toBeInstanceOf(WrongExpectedRevisionError)
    for (const s of fresh) expect(await store.readStream(s)).toHaveLength(1)
  })
})

describe('Postgres subscriptions of one store', () => {
  let database: TestDatabase
  let pool: PgPool
  let store: PostgresEventStore
  /** Reads of $all the store issued. */
  let reads = 0
  beforeAll(async () => {
    database = await createTestDatabase()
    pool = createPool(database.url, { max: 8 })
    const query = pool.query.bind(pool) as (...args: unknown[]) => unknown
    pool.query = ((config: unknown, ...rest: unknown[]) => {
      if ((config as { name?: string })?.name === 'eventstore_read_all') reads++
      return query(config, ...rest)
    }) as typeof pool.query
    store = new PostgresEventStore(pool)
  })
  afterAll(async () => {
    await store.close()
    await pool.end()
    await database.drop()
  })

  it('that are caught up share one read of $all per wake-up, and each gets every event', async () => {
    const head = await store.headPosition()
    const subscriptions = Array.from({ length: 6 }, () => store.subscribeAll({ from: head }))
    const received = subscriptions.map(() => [] as string[])
    const consuming = subscriptions.map(async (s, i) => {
      for await (const batch of s) received[i]!.push(...batch.map((e) => e.id))
    })
    // Every subscription has read once and found nothing: they wait on the same position.
    while (reads < 1) await new Promise((r) => setTimeout(r, 10))
    await new Promise((r) => setTimeout(r, 200))
    const before = reads
    const events = [newEvent(), newEvent(), newEvent()]
    await store.append(stream(), events, { expectedRevision: 'no_stream' })
    while (received.some((r) => r.length < 3)) await new Promise((r) => setTimeout(r, 10))
    for (const r of received) expect(r).toEqual(events.map((e) => e.id))
    // Each reads twice (the events, then its next look, empty): twelve reads unshared. Shared, two when all six move
    // together; a subscription the scheduler wakes late may start one of its own, so at most one per subscription.
    expect(reads - before).toBeLessThanOrEqual(subscriptions.length)
    for (const s of subscriptions) await s.close()
    await Promise.all(consuming)
  })
})
