import { setTimeout as sleep } from 'node:timers/promises'
import type { Redis } from 'ioredis'
import { v7 as uuid } from 'uuid'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { connectRedis } from '../../adapters/redis.ts'
import { RedisUserStreams } from '../../adapters/redis-user-streams.ts'
import { STREAM_START_ID } from '../../adapters/user-streams.ts'
import { requireRedis } from '../support/db.ts'
import { redisHarness } from '../support/user-streams.ts'
import { userStreamsContract } from './user-streams.contract.ts'

userStreamsContract('Redis', redisHarness)

describe('Redis user streams', () => {
  const prefix = `test:${uuid()}:rt:`
  let redis: Redis
  let streams: RedisUserStreams
  const entry = (userId: string, n: number, previous = n - 1) => ({
    userId,
    id: `${n}-${n}`,
    previousId: `${previous}-${previous}`,
    type: 'message.created',
    position: n,
    occurredAt: new Date().toISOString(),
    data: { n },
  })
  const wakeConnections = async () =>
    ((await redis.client('LIST')) as string).split('\n').filter((l) => l.includes(` name=${prefix}wakeups `)).length
  const subscribedChannels = async () => (await redis.pubsub('CHANNELS', `${prefix}wake:*`)) as string[]

  beforeAll(() => {
    redis = connectRedis(requireRedis())
    streams = new RedisUserStreams(redis, { keyPrefix: prefix, unsubscribeAfterMs: 200 })
  })
  afterAll(async () => {
    await streams.close()
    const keys = await redis.keys(`${prefix}*`)
    if (keys.length) await redis.del(...keys)
    await redis.quit()
  })

  it('uses the layout of ARCHITECTURE.md: XADD <prefix><userId> with the position as id', async () => {
    const user = uuid()
    await streams.append([entry(user, 7)])
    expect(await redis.type(`${prefix}${user}`)).toBe('stream')
    const [[id]] = (await redis.xrange(`${prefix}${user}`, '-', '+')) as [[string, string[]]]
    expect(id).toBe('7-7')
  })

  it('waits on one subscriber connection per instance, whatever the number of users', async () => {
    const users = Array.from({ length: 200 }, () => uuid())
    const offs = await Promise.all(users.map((u) => streams.onWake(u, () => {})))
    expect(await wakeConnections()).toBe(1)
    expect((await subscribedChannels()).length).toBe(200)
    for (const off of offs) off()
    // Channels without waiters are unsubscribed after a while, by one sweeping timer.
    const until = Date.now() + 5_000
    while ((await subscribedChannels()).length > 0 && Date.now() < until) await sleep(50)
    expect(await subscribedChannels()).toEqual([])
    expect(await wakeConnections()).toBe(1)
  })

  it('recovers when Redis lost its scripts (a restart)', async () => {
    const user = uuid()
    await streams.append([entry(user, 100)])
    // Flushing is harmless to other clients: ioredis and this adapter reload scripts on NOSCRIPT.
    await redis.script('FLUSH')
    expect(await streams.append([entry(user, 101), entry(user, 100)])).toEqual({ appended: 1, wokenUsers: [user] })
    const q = await streams.registerQueue(user, null, '101-101')
    await redis.script('FLUSH')
    expect(await streams.touchQueue(q.queueId, user)).toMatchObject({ userId: user, lastAckedId: '101-101' })
    expect(await streams.lastId(uuid())).toBe(STREAM_START_ID)
  })

  it('a stream that lost entries (a deleted key, a restart without persistence) tells readers who missed them', async () => {
    const user = uuid()
    await streams.append([entry(user, 200), entry(user, 201), entry(user, 202)])
    await redis.del(`${prefix}${user}`)
    // The next entry names 202, which the stream no longer holds.
    await streams.append([entry(user, 203), entry(user, 204)])
    expect(await streams.read(user, '200-200', 10)).toMatchObject({ truncated: true })
    expect(await streams.read(user, STREAM_START_ID, 10)).toMatchObject({ truncated: true })
    // A reader that had seen 202 missed nothing.
    const after = await streams.read(user, '202-202', 10)
    expect(after.truncated).toBe(false)
    expect(after.events.map((e) => e.id)).toEqual(['203-203', '204-204'])
  })

  it('queues expire by TTL in Redis itself', async () => {
    const q = await streams.registerQueue(uuid(), null, STREAM_START_ID)
    const ttl = await redis.pttl(`${prefix}queue:${q.queueId}`)
    expect(ttl).toBeGreaterThan(9 * 60_000)
    expect(ttl).toBeLessThanOrEqual(10 * 60_000)
  })
})
