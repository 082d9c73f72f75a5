import { Redis, type RedisOptions } from 'ioredis'

/**
 * The Redis client every Redis adapter here is used with (the realtime streams, the rate limiter), and their
 * contract suites run with. While Redis is away, a command waits at most a couple of seconds and then fails (a
 * request answers 503); reconnection goes on in the background. Commands of one tick go out in one write: under
 * load most of Redis's cost was a syscall per command (rate limits, fan-out appends, poll reads); ioredis never
 * pipelines subscriptions, so the wakeup subscriber is unaffected.
 */
export const connectRedis = (url: string, options: RedisOptions = {}): Redis =>
  new Redis(url, {
    enableAutoPipelining: true,
    maxRetriesPerRequest: 1,
    commandTimeout: 2_000,
    retryStrategy: (times) => Math.min(times * 100, 1_000),
    ...options,
  })
