import type { Context, MiddlewareHandler } from 'hono'
import type { RateLimiter } from '../adapters/rate-limit.ts'
import { HttpProblem } from './problem.ts'

export type RateRule = {
  readonly name: string
  readonly limit: number
  readonly windowMs: number
  /** The key this rule counts by; null skips the rule for this request. */
  readonly keyOf: (c: Context) => string | null
}

/** Answers 429 with Retry-After once a key has used its window; never blocks on a limiter failure. */
export const rateLimit =
  (limiter: RateLimiter, rule: RateRule): MiddlewareHandler =>
  async (c, next) => {
    const key = rule.keyOf(c)
    if (key !== null) {
      const decision = await limiter.hit(`${rule.name}:${key}`, rule.limit, rule.windowMs).catch(() => null)
      if (decision && !decision.allowed) {
        const seconds = Math.ceil(decision.retryAfterMs / 1000)
        throw new HttpProblem({
          status: 429,
          code: 'RATE_LIMITED',
          title: 'Too many requests',
          detail: `at most ${rule.limit} requests per ${rule.windowMs / 1000} s (${rule.name}); retry in ${seconds} s`,
          headers: { 'retry-after': String(seconds) },
        })
      }
    }
    await next()
  }
