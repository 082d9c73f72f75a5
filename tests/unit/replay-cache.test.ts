import { describe, expect, it } from 'vitest'
import { MemoryReplayCache } from '../../adapters/replay-cache.ts'

describe('MemoryReplayCache', () => {
  it('accepts a key once until it expires', async () => {
    let now = 1_000
    const cache = new MemoryReplayCache({ now: () => now })
    expect(await cache.claim('a', 2_000)).toBe(true)
    expect(await cache.claim('a', 2_000)).toBe(false)
    expect(await cache.claim('b', 2_000)).toBe(true)
    now = 2_001
    expect(await cache.claim('a', 3_000)).toBe(true)
  })

  it('exactly one of concurrent claims wins', async () => {
    const cache = new MemoryReplayCache()
    const results = await Promise.all(Array.from({ length: 20 }, () => cache.claim('k', Date.now() + 60_000)))
    expect(results.filter(Boolean)).toHaveLength(1)
  })

  it('sweeps expired entries and refuses when full of live ones', async () => {
    let now = 0
    const cache = new MemoryReplayCache({ now: () => now, maxEntries: 3 })
    for (const k of ['a', 'b', 'c']) await cache.claim(k, 10)
    await expect(cache.claim('d', 10)).rejects.toThrow(/full/)
    now = 11
    expect(await cache.claim('d', 20)).toBe(true)
    expect(cache.size).toBe(1)
  })
})
