import { expect, it } from 'vitest'
import { createKysely, createPool } from '../../adapters/postgres.ts'
import { PostgresReplayCache } from '../../adapters/postgres-replay-cache.ts'
import { MemoryReplayCache } from '../../adapters/replay-cache.ts'
import { createTestDatabase } from '../support/db.ts'
import { replayCacheContract } from './replay-cache.contract.ts'

replayCacheContract('memory', async (now) => ({ cache: new MemoryReplayCache({ now }), teardown: async () => {} }))

replayCacheContract('Postgres', async (now) => {
  const database = await createTestDatabase()
  const db = createKysely(createPool(database.url, { max: 20 }))
  return {
    cache: new PostgresReplayCache(db, { now }),
    async teardown() {
      await db.destroy()
      await database.drop()
    },
  }
})

it('Postgres: two processes (two pools) share one cache, and expired keys are swept', async () => {
  const database = await createTestDatabase()
  const a = createKysely(createPool(database.url))
  const b = createKysely(createPool(database.url))
  try {
    let now = Date.parse('2030-01-01T00:00:00Z')
    const one = new PostgresReplayCache(a, { now: () => now })
    const two = new PostgresReplayCache(b, { now: () => now })
    expect(await one.claim('nonce', now + 500)).toBe(true)
    expect(await two.claim('nonce', now + 500)).toBe(false)
    now += 1_000
    expect(await two.sweep()).toBe(1)
    expect(await one.claim('nonce', now + 500)).toBe(true)
  } finally {
    await a.destroy()
    await b.destroy()
    await database.drop()
  }
})
