import { v7 as uuid } from 'uuid'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { RateLimiter } from '../../adapters/rate-limit.ts'

/** One suite for every RateLimiter adapter. */
export function rateLimiterContract(name: string, factory: () => Promise<{ limiter: RateLimiter; teardown(): Promise<void> }>) {
  describe(`RateLimiter contract: ${name}`, () => {
    let limiter: RateLimiter
    let teardown: () => Promise<void>
    beforeAll(async () => {
      ;({ limiter, teardown } = await factory())
    })
    afterAll(async () => teardown())

    it('allows up to the limit in a window, then refuses with a retry time within the window', async () => {
      const key = uuid()
      const decisions = []
      for (let i = 0; i < 5; i++) decisions.push(await limiter.hit(key, 3, 60_000))
      expect(decisions.map((d) => d.allowed)).toEqual([true, true, true, false, false])
      expect(decisions.map((d) => d.remaining)).toEqual([2, 1, 0, 0, 0])
      expect(decisions[4]!.retryAfterMs).toBeGreaterThan(0)
      expect(decisions[4]!.retryAfterMs).toBeLessThanOrEqual(60_000)
    })

    it('counts keys apart and starts a new window when the old one ends', async () => {
      const a = uuid()
      const b = uuid()
      await limiter.hit(a, 1, 1_000)
      const refused = await limiter.hit(a, 1, 1_000)
      expect(refused.allowed).toBe(false)
      expect(refused.retryAfterMs).toBeLessThanOrEqual(1_000)
      expect((await limiter.hit(b, 1, 1_000)).allowed).toBe(true)
      await new Promise((r) => setTimeout(r, 1_100))
      expect((await limiter.hit(a, 1, 1_000)).allowed).toBe(true)
    })

    it('rounds a window shorter than a second up to one', async () => {
      const key = uuid()
      await limiter.hit(key, 1, 200)
      await new Promise((r) => setTimeout(r, 300))
      const refused = await limiter.hit(key, 1, 200)
      expect(refused.allowed).toBe(false)
      expect(refused.retryAfterMs).toBeLessThanOrEqual(1_000)
    })

    it('keeps apart the windows of rules with different limits on the same key', async () => {
      const key = uuid()
      expect((await limiter.hit(key, 1, 60_000)).allowed).toBe(true)
      expect((await limiter.hit(key, 1, 60_000)).allowed).toBe(false)
      expect((await limiter.hit(key, 5, 60_000)).remaining).toBe(4)
      expect((await limiter.hit(key, 5, 30_000)).remaining).toBe(4)
    })

    it('holds under concurrent hits: exactly the limit is allowed', async () => {
      const key = uuid()
      const all = await Promise.all(Array.from({ length: 50 }, () => limiter.hit(key, 20, 60_000)))
      expect(all.filter((d) => d.allowed)).toHaveLength(20)
    })
  })
}
