import { Redis } from 'ioredis'
import { MemoryRateLimiter, RedisRateLimiter } from '../../adapters/rate-limit.ts'
import { requireRedis } from '../support/db.ts'
import { rateLimiterContract } from './rate-limit.contract.ts'

rateLimiterContract('memory', async () => {
  const limiter = new MemoryRateLimiter()
  return { limiter, teardown: () => limiter.close() }
})

rateLimiterContract('Redis', async () => {
  const redis = new Redis(requireRedis())
  const limiter = new RedisRateLimiter(redis, `rl-test-${process.pid}:`)
  return {
    limiter,
    async teardown() {
      await limiter.close()
      redis.disconnect()
    },
  }
})
