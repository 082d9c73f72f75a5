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
      await limiter.hit(a, 1, 200)
      expect((await limiter.hit(a, 1, 200)).allowed).toBe(false)
      expect((await limiter.hit(b, 1, 200)).allowed).toBe(true)
      await new Promise((r) => setTimeout(r, 300))
      expect((await limiter.hit(a, 1, 200)).allowed).toBe(true)
    })

    it('holds under concurrent hits: exactly the limit is allowed', async () => {
      const key = uuid()
      const all = await Promise.all(Array.from({ length: 50 }, () => limiter.hit(key, 20, 60_000)))
      expect(all.filter((d) => d.allowed)).toHaveLength(20)
    })
  })
}
