import { Redis } from 'ioredis'
import { v7 as uuid } from 'uuid'
import { describe, expect, it } from 'vitest'
import { MemoryRateLimiter, RedisRateLimiter } from '../../adapters/rate-limit.ts'
import { connectRedis } from '../../adapters/redis.ts'
import { requireRedis } from '../support/db.ts'
import { rateLimiterContract } from './rate-limit.contract.ts'

rateLimiterContract('memory', async () => {
  const limiter = new MemoryRateLimiter()
  return { limiter, teardown: () => limiter.close() }
})

rateLimiterContract('Redis', async () => {
  const redis = connectRedis(requireRedis())
  const limiter = new RedisRateLimiter(redis, `rl-test-${process.pid}:`)
  return {
    limiter,
    async teardown() {
      await limiter.close()
      redis.disconnect()
    },
  }
})

describe('RedisRateLimiter while Redis is not connected', () => {
  it('answers at once from its in-memory insurance limiter, which still holds the limit', async () => {
    // Never connected (lazyConnect): the state of a client whose Redis is down, without waiting for it.
    const redis = new Redis(requireRedis(), { lazyConnect: true, enableOfflineQueue: false })
    const limiter = new RedisRateLimiter(redis, `rl-test-${process.pid}:`)
    try {
      const key = uuid()
      const started = performance.now()
      const decisions = []
      for (let i = 0; i < 3; i++) decisions.push(await limiter.hit(key, 2, 60_000))
      expect(performance.now() - started).toBeLessThan(100)
      expect(decisions.map((d) => d.allowed)).toEqual([true, true, false])
      expect(decisions[2]!.retryAfterMs).toBeGreaterThan(0)
      expect(redis.status).toBe('wait')
    } finally {
      await limiter.close()
      redis.disconnect()
    }
  })
})
