import { v7 as uuid } from 'uuid'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { comparePositions, type RecordedEvent } from '../../adapters/event-store.ts'
import { createPool, type PgPool } from '../../adapters/postgres.ts'
import { PostgresEventStore } from '../../adapters/postgres-event-store.ts'
import { newEvent } from '../contract/event-store.contract.ts'
import { createTestDatabase, type TestDatabase } from '../support/db.ts'

let database: TestDatabase
let pool: PgPool
let store: PostgresEventStore

beforeAll(async () => {
  database = await createTestDatabase()
  pool = createPool(database.url, { max: 24 })
  store = new PostgresEventStore(pool, { idlePollMs: 60_000 })
})
afterAll(async () => {
  await store.close()
  await pool.end()
  await database.drop()
})

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

it('a subscriber sees every event exactly once, in order, while 16 writers commit late and some abort', async () => {
  const writers = 16
  const perWriter = 25
  const committed = new Set<string>()
  const aborted = new Set<string>()

  const seen: RecordedEvent[] = []
  const subscription = store.subscribeAll({ maxBatch: 50 })
  const reading = (async () => {
    for await (const batch of subscription) {
      seen.push(...batch)
      if (seen.length >= committed.size && committed.size === writers * perWriter) break
    }
  })()

  await Promise.all(
    Array.from({ length: writers }, async (_, w) => {
      const stream = `late-${uuid()}`
      const client = await pool.connect()
      try {
        let i = 0
        while (i < perWriter) {
          const event = newEvent('late.committed', { w, i })
          await client.query('begin')
          await client.query('select * from eventstore.append($1, -2, $2, null)', [
            stream,
            JSON.stringify([{ id: event.id, type: event.type, data: event.data, metadata: event.metadata }]),
          ])
          // Hold the transaction open so that later transactions commit first.
          await sleep(Math.random() * 15)
          if (Math.random() < 0.1) {
            await client.query('rollback')
            aborted.add(event.id)
            continue
          }
          await client.query('commit')
          committed.add(event.id)
          i++
          // Direct SQL bypasses the adapter's wake-up, as another process's append would.
          if (Math.random() < 0.2) await client.query(`select pg_notify('eventstore_appended', '')`)
        }
      } finally {
        client.release()
      }
    }),
  )
  await client_notify()
  await Promise.race([reading, sleep(20_000)])
  await subscription.close()

  const ids = seen.map((e) => e.id)
  expect(new Set(ids).size).toBe(ids.length)
  expect(ids.filter((id) => aborted.has(id))).toEqual([])
  expect(new Set(ids)).toEqual(committed)
  for (let i = 1; i < seen.length; i++) expect(comparePositions(seen[i - 1]!.position, seen[i]!.position)).toBe(-1)
  // Positions are handed out at insert, commits land out of order: the test proves something only if they did.
  const sequences = seen.map((e) => e.position.sequence)
  expect(sequences.some((p, i) => i > 0 && p < sequences[i - 1]!)).toBe(true)
})

it('grouped appends among late commits: a subscriber sees every event exactly once, in order', async () => {
  // Every append that queues goes in a group, so groups commit while raw transactions hold older ids open.
  const grouped = new PostgresEventStore(pool, { idlePollMs: 60_000, groupCommit: { maxInFlight: 1 } })
  const start = await grouped.headPosition()
  const expected = new Set<string>()
  const transactions = new Set<string>()
  const seen: RecordedEvent[] = []
  const subscription = grouped.subscribeAll({ from: start, maxBatch: 50 })
  let written = false
  const reading = (async () => {
    for await (const batch of subscription) {
      seen.push(...batch)
      if (written && seen.filter((e) => expected.has(e.id)).length === expected.size) break
    }
  })()
  await Promise.all([
    ...Array.from({ length: 8 }, async () => {
      const stream = `grouped-${uuid()}`
      let revision: bigint | 'no_stream' = 'no_stream'
      for (let i = 0; i < 25; i++) {
        const event = newEvent('grouped.appended', { i })
        expected.add(event.id)
        const result = await grouped.append(stream, [event], { expectedRevision: revision })
        revision = result.nextExpectedRevision
        transactions.add(result.position.transactionId.toString())
      }
    }),
    ...Array.from({ length: 4 }, async () => {
      const stream = `late-${uuid()}`
      const client = await pool.connect()
      try {
        for (let i = 0; i < 10; i++) {
          const event = newEvent('late.committed', { i })
          await client.query('begin')
          await client.query('select * from eventstore.append($1, -2, $2, null)', [
            stream,
            JSON.stringify([{ id: event.id, type: event.type, data: event.data, metadata: event.metadata }]),
          ])
          expected.add(event.id)
          await sleep(Math.random() * 15)
          await client.query('commit')
        }
      } finally {
        client.release()
      }
    }),
  ])
  written = true
  await client_notify()
  await Promise.race([reading, sleep(20_000)])
  await subscription.close()
  await grouped.close()

  const mine = seen.filter((e) => expected.has(e.id))
  expect(mine).toHaveLength(expected.size)
  expect(new Set(mine.map((e) => e.id))).toEqual(expected)
  for (let i = 1; i < seen.length; i++) expect(comparePositions(seen[i - 1]!.position, seen[i]!.position)).toBe(-1)
  // The test proves something only if appends did commit in groups: fewer transactions than appends.
  expect(transactions.size).toBeLessThan(8 * 25)
})

async function client_notify() {
  await pool.query(`select pg_notify('eventstore_appended', '')`)
}
