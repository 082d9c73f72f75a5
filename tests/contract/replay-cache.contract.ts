import { afterEach, describe, expect, it } from 'vitest'
import type { ReplayCache } from '../../adapters/replay-cache.ts'

export type ReplayCacheFactory = (now: () => number) => Promise<{ cache: ReplayCache; teardown(): Promise<void> }>

/** What every ReplayCache must do: a key is accepted once until it expires, and one of concurrent claims wins. */
export function replayCacheContract(name: string, factory: ReplayCacheFactory) {
  describe(`ReplayCache contract: ${name}`, () => {
    let teardown: (() => Promise<void>) | undefined
    afterEach(async () => {
      await teardown?.()
      teardown = undefined
    })
    const make = async (now: () => number = Date.now) => {
      const made = await factory(now)
      teardown = made.teardown
      return made.cache
    }

    it('accepts a key once until it expires, then again', async () => {
      let now = Date.parse('2030-01-01T00:00:00Z')
      const cache = await make(() => now)
      const k = `k-${Math.random()}`
      expect(await cache.claim(k, now + 1_000)).toBe(true)
      expect(await cache.claim(k, now + 1_000)).toBe(false)
      expect(await cache.claim(`${k}-other`, now + 1_000)).toBe(true)
      now += 1_001
      expect(await cache.claim(k, now + 1_000)).toBe(true)
      expect(await cache.claim(k, now + 1_000)).toBe(false)
    })

    it('of concurrent claims of one key exactly one wins', async () => {
      const cache = await make()
      const k = `race-${Math.random()}`
      const results = await Promise.all(Array.from({ length: 16 }, () => cache.claim(k, Date.now() + 60_000)))
      expect(results.filter(Boolean)).toHaveLength(1)
    })

    it('keeps long keys apart', async () => {
      const cache = await make()
      const base = 'x'.repeat(2_000)
      expect(await cache.claim(`${base}a`, Date.now() + 60_000)).toBe(true)
      expect(await cache.claim(`${base}b`, Date.now() + 60_000)).toBe(true)
      expect(await cache.claim(`${base}a`, Date.now() + 60_000)).toBe(false)
    })
  })
}
