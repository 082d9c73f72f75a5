import { Redis } from 'ioredis'
import { v7 as uuid } from 'uuid'
import { createPool } from '../../adapters/postgres.ts'
import { PostgresUserStreams, WAKEUP_CONNECTION_NAME } from '../../adapters/postgres-user-streams.ts'
import { RedisUserStreams } from '../../adapters/redis-user-streams.ts'
import type { UserStreams, UserStreamsOptions } from '../../adapters/user-streams.ts'
import { createTestDatabase, requireRedis } from './db.ts'

/** One backend for the realtime port; every instance it creates shares it and is closed in teardown. */
export type UserStreamsHarness = {
  readonly name: string
  create(options?: UserStreamsOptions): UserStreams
  /** Breaks every wakeup connection of this harness's instances; resolves with how many were killed. */
  killWakeConnections(): Promise<number>
  teardown(): Promise<void>
}

export type HarnessFactory = () => Promise<UserStreamsHarness>

export const redisHarness: HarnessFactory = async () => {
  // A prefix of our own, so test files run in parallel on one Redis.
  const prefix = `test:${uuid()}:rt:`
  const redis = new Redis(requireRedis(), { maxRetriesPerRequest: 3 })
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
    async teardown() {
      await Promise.all(instances.map((s) => s.close()))
      await pool.end()
      await database.drop()
    },
  }
}
