import type { Redis } from 'ioredis'
import { type RateLimiterAbstract, RateLimiterMemory, RateLimiterRedis, RateLimiterRes } from 'rate-limiter-flexible'

export type RateDecision = { readonly allowed: boolean; readonly remaining: number; readonly retryAfterMs: number }

/**
 * Counts hits per key in fixed windows of whole seconds (a window is rounded up to one). Served from memory
 * (one process) or Redis (shared by every process), both by rate-limiter-flexible; both pass
 * tests/contract/rate-limit.contract.ts.
 */
export interface RateLimiter {
  hit(key: string, limit: number, windowMs: number): Promise<RateDecision>
  close(): Promise<void>
}

const windowSeconds = (windowMs: number) => Math.max(1, Math.ceil(windowMs / 1000))

/**
 * One rate-limiter-flexible limiter per (limit, window) a caller uses (a rule each: a handful), counting in
 * the keys it is given.
 */
abstract class FlexibleRateLimiter implements RateLimiter {
  private readonly limiters = new Map<string, RateLimiterAbstract>()

  /** `keyPrefix`: what sets this limiter's windows apart from the others' under the same key. */
  protected abstract create(points: number, duration: number, keyPrefix: string): RateLimiterAbstract

  async hit(key: string, limit: number, windowMs: number): Promise<RateDecision> {
    const id = `${limit}/${windowMs}`
    let limiter = this.limiters.get(id)
    if (!limiter) {
      limiter = this.create(limit, windowSeconds(windowMs), `${windowMs}:${limit}`)
      this.limiters.set(id, limiter)
    }
    try {
      const res = await limiter.consume(key)
      return { allowed: true, remaining: res.remainingPoints, retryAfterMs: 0 }
    } catch (e) {
      // The library refuses with its result when over the limit, and with an Error when the store fails.
      if (!(e instanceof RateLimiterRes)) throw e
      return { allowed: false, remaining: 0, retryAfterMs: Math.max(1, e.msBeforeNext) }
    }
  }

  async close(): Promise<void> {}
}

/** Windows in this process's memory (each key's window expires on its own timer, unref'd). */
export class MemoryRateLimiter extends FlexibleRateLimiter {
  protected create(points: number, duration: number, keyPrefix: string): RateLimiterAbstract {
    return new RateLimiterMemory({ points, duration, keyPrefix })
  }
}

/**
 * Windows in Redis (`<prefix><windowMs>:<limit>:<key>`, one Lua script a hit), shared by every process. While Redis
 * is not connected, limits are not worth a request's latency: the hit is counted at once by an in-memory
 * insurance limiter (per process) instead of waiting on the connection.
 */
export class RedisRateLimiter extends FlexibleRateLimiter {
  private readonly redis: Redis
  private readonly prefix: string
  constructor(redis: Redis, prefix = 'rl:') {
    super()
    this.redis = redis
    this.prefix = prefix
  }

  protected create(points: number, duration: number, rule: string): RateLimiterAbstract {
    const keyPrefix = `${this.prefix}${rule}`
    return new RateLimiterRedis({
      storeClient: this.redis,
      points,
      duration,
      keyPrefix,
      rejectIfRedisNotReady: true,
      insuranceLimiter: new RateLimiterMemory({ points, duration, keyPrefix }),
    })
  }
}
