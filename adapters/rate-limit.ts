import type { Redis } from 'ioredis'

export type RateDecision = { readonly allowed: boolean; readonly remaining: number; readonly retryAfterMs: number }

/**
 * Counts hits per key in fixed windows. Served from memory (one process) or Redis (shared by every
 * process); both pass tests/contract/rate-limit.contract.ts.
 */
export interface RateLimiter {
  hit(key: string, limit: number, windowMs: number): Promise<RateDecision>
  close(): Promise<void>
}

const decide = (count: number, limit: number, ttlMs: number): RateDecision => ({
  allowed: count <= limit,
  remaining: Math.max(0, limit - count),
  retryAfterMs: count <= limit ? 0 : Math.max(1, ttlMs),
})

export class MemoryRateLimiter implements RateLimiter {
  private readonly windows = new Map<string, { count: number; resetAt: number }>()
  private readonly sweeper: NodeJS.Timeout
  private readonly now: () => number

  constructor(now: () => number = Date.now) {
    this.now = now
    // Expired windows would otherwise accumulate one entry per key ever seen.
    this.sweeper = setInterval(() => {
      const t = this.now()
      for (const [k, w] of this.windows) if (w.resetAt <= t) this.windows.delete(k)
    }, 30_000)
    this.sweeper.unref()
  }

  async hit(key: string, limit: number, windowMs: number): Promise<RateDecision> {
    const t = this.now()
    let w = this.windows.get(key)
    if (!w || w.resetAt <= t) {
      w = { count: 0, resetAt: t + windowMs }
      this.windows.set(key, w)
    }
    w.count++
    return decide(w.count, limit, w.resetAt - t)
  }

  async close(): Promise<void> {
    clearInterval(this.sweeper)
  }
}

// One round trip: count the hit, start the window on the first one, answer the count and what is left of it.
const HIT = `
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then redis.call('PEXPIRE', KEYS[1], ARGV[1]); ttl = tonumber(ARGV[1]) end
return {n, ttl}`

export class RedisRateLimiter implements RateLimiter {
  private readonly redis: Redis
  private readonly prefix: string
  constructor(redis: Redis, prefix = 'rl:') {
    this.redis = redis
    this.prefix = prefix
  }

  async hit(key: string, limit: number, windowMs: number): Promise<RateDecision> {
    // During an outage, limits are not worth a request's latency: fail at once (the caller lets it through).
    if (['reconnecting', 'close', 'end'].includes(this.redis.status))
      throw new Error('rate limiter unavailable: Redis is not connected')
    const [count, ttl] = (await this.redis.eval(HIT, 1, `${this.prefix}${windowMs}:${key}`, windowMs)) as [number, number]
    return decide(count, limit, ttl)
  }

  async close(): Promise<void> {}
}
