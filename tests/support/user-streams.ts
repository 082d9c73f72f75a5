import { v7 as uuid } from 'uuid'
import { createPool } from '../../adapters/postgres.ts'
import { PostgresUserStreams, WAKEUP_CONNECTION_NAME } from '../../adapters/postgres-user-streams.ts'
import { connectRedis } from '../../adapters/redis.ts'
import { RedisUserStreams } from '../../adapters/redis-user-streams.ts'
import type { UserStreams, UserStreamsOptions } from '../../adapters/user-streams.ts'
import { createTestDatabase, requireRedis } from './db.ts'

/** One backend for the realtime port; every instance it creates shares it and is closed in teardown. */
export type UserStreamsHarness = {
  readonly name: string
  create(options?: UserStreamsOptions): UserStreams
  /** Breaks every wakeup connection of this harness's instances; resolves with how many were killed. */
  killWakeConnections(): Promise<number>
  /**
   * A queue as the backend holds it, read past the port: its acknowledged id, and its expiry as the backend
   * keeps it (Redis: the key's expire time; Postgres: last_seen_at, which the TTL counts from), in epoch ms.
   */
  storedQueue(queueId: string): Promise<{ lastAckedId: string; expiry: number } | null>
  teardown(): Promise<void>
}

export type HarnessFactory = () => Promise<UserStreamsHarness>

export const redisHarness: HarnessFactory = async () => {
  // A prefix of our own, so test files run in parallel on one Redis.
  const prefix = `test:${uuid()}:rt:`
  const redis = connectRedis(requireRedis(), { maxRetriesPerRequest: 3 })
  const instances: UserStreams[] = []
  return {
    name: 'Redis',
    create(options = {}) {
      const streams = new RedisUserStreams(redis, { ...options, keyPrefix: prefix, unsubscribeAfterMs: 200 })
      instances.push(streams)
      return streams
    },
    async killWakeConnections() {
      const list = (await redis.client('LIST')) as string
      const ids = list
        .split('\n')
        .filter((line) => line.includes(` name=${prefix}wakeups `))
        .map((line) => /(?:^|\s)id=(\d+)/.exec(line)?.[1])
        .filter((id): id is string => Boolean(id))
      for (const id of ids) await redis.client('KILL', 'ID', id)
      return ids.length
    },
    async storedQueue(queueId) {
      const key = `${prefix}queue:${queueId}`
      const [acked, expiry] = await Promise.all([redis.hget(key, 'a'), redis.call('PEXPIRETIME', key)])
      return acked === null ? null : { lastAckedId: acked, expiry: Number(expiry) }
    },
    async teardown() {
      await Promise.all(instances.map((s) => s.close()))
      let cursor = '0'
      do {
        const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000)
        if (keys.length) await redis.del(...keys)
        cursor = next
      } while (cursor !== '0')
      await redis.quit()
    },
  }
}

export const postgresHarness: HarnessFactory = async () => {
  const database = await createTestDatabase()
  const pool = createPool(database.url, { max: 30 })
  const instances: UserStreams[] = []
  return {
    name: 'Postgres',
    create(options = {}) {
      const streams = new PostgresUserStreams(pool, options)
      instances.push(streams)
      return streams
    },
    async killWakeConnections() {
      const { rows } = await pool.query<{ n: number }>(
        `select count(pg_terminate_backend(pid))::int as n from pg_stat_activity
          where application_name = $1 and datname = current_database()`,
        [WAKEUP_CONNECTION_NAME],
      )
      return rows[0]!.n
    },
    async storedQueue(queueId) {
      const { rows } = await pool.query<{ last_acked_id: string; last_seen_at: Date }>(
        'select last_acked_id, last_seen_at from realtime.event_queues where queue_id = $1',
        [queueId],
      )
      const row = rows[0]
      return row ? { lastAckedId: row.last_acked_id, expiry: row.last_seen_at.getTime() } : null
    },
    async teardown() {
      await Promise.all(instances.map((s) => s.close()))
      await pool.end()
      await database.drop()
    },
  }
}
