import { Redis } from 'ioredis'
import { v7 as uuid } from 'uuid'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { createLogger } from '../../adapters/logger.ts'
import { type AnyDb, createKysely, createPool, type PgPool } from '../../adapters/postgres.ts'
import { PostgresEventStore } from '../../adapters/postgres-event-store.ts'
import { RedisUserStreams } from '../../adapters/redis-user-streams.ts'
import { messageStream } from '../../commands/messages.ts'
import { type CommandContext, handleCommand } from '../../commands/pipeline.ts'
import { loadRoom, roomStream } from '../../commands/rooms.ts'
import { message } from '../../domain/messages.ts'
import { room } from '../../domain/rooms.ts'
import { upcasters } from '../../domain/upcasting.ts'
import { loadCheckpoint, ProjectionEngine } from '../../projections/engine.ts'
import { realtimeProjector } from '../../projections/realtime.ts'
import { RealtimeOutbox } from '../../projections/realtime-outbox.ts'
import { BadEventQueueIdError, RealtimeGateway } from '../../realtime/gateway.ts'
import { createTestDatabase, type TestDatabase } from '../support/db.ts'
import { appendUsersJoined } from '../support/org-events.ts'
import { stateAt } from '../support/realtime-client.ts'
import { type OwnRedis, startOwnRedis } from '../support/redis-server.ts'
import { messageIdOf } from '../support/room-events.ts'

let database: TestDatabase
let pool: PgPool
let db: AnyDb
let store: PostgresEventStore
let redisServer: OwnRedis

beforeAll(async () => {
  redisServer = await startOwnRedis()
  database = await createTestDatabase()
  pool = createPool(database.url, { max: 10 })
  db = createKysely(pool)
  store = new PostgresEventStore(pool)
})
afterAll(async () => {
  await store.close()
  await db.destroy()
  await database.drop()
  await redisServer.stop()
})

it('Redis restarted mid-stream: no acknowledged command is lost, and clients recover by re-registering', async () => {
  const tenantId = uuid()
  const alice = uuid()
  const bob = uuid()
  const now = () => new Date().toISOString()
  const ctx: CommandContext = {
    tenantId,
    actor: { type: 'user', id: alice },
    correlationId: 'c',
    causationId: null,
    now: () => new Date(),
    newId: uuid,
  }
  const deps = { store, upcasters: upcasters({}) }
  await appendUsersJoined(
    store,
    tenantId,
    [alice, bob].map((userId) => ({ userId, role: 'member' as const })),
  )
  const roomId = uuid()
  await handleCommand(
    deps,
    room,
    roomStream(roomId),
    {
      type: 'create',
      roomId,
      name: 'r',
      spaceId: null,
      visibility: 'private',
      actor: { userId: alice, role: 'member' },
      members: [{ memberId: bob, memberType: 'user' }],
      at: now(),
    },
    ctx,
  )
  const post = async (text: string) => {
    const messageId = uuid()
    await handleCommand(
      deps,
      message,
      messageStream(messageId),
      {
        type: 'post',
        messageId,
        roomId,
        text,
        threadRoot: null,
        mentions: [],
        room: await loadRoom(store, roomId, tenantId),
        actor: { userId: alice, role: 'member', type: 'user' },
        at: now(),
      },
      ctx,
    )
    return messageId
  }

  const redis = new Redis(redisServer.url, { maxRetriesPerRequest: 1 })
  redis.on('error', () => {})
  const streams = new RedisUserStreams(redis, { keyPrefix: `rt-${uuid()}:` })
  const logger = createLogger('silent')
  const outbox = new RealtimeOutbox({ db, streams, logger })
  const fanout = realtimeProjector(outbox)
  const gateway = new RealtimeGateway(streams, { heartbeatMs: 2_000, fannedOutUpTo: () => loadCheckpoint(db, fanout) })
  const engine = new ProjectionEngine({ store, db, logger }, [fanout], { retryMs: 100 })
  engine.start()

  const received: string[] = []
  // What the client knows: events it polled, plus the state it (re)loaded at a registration's position.
  const known = new Set<string>()
  const reload = async (position: number) => {
    for (const id of await stateAt(store, position, (e) => (e.type === 'message.created' ? messageIdOf(e.data) : null)))
      known.add(id)
  }
  let queue = await gateway.register(bob)
  let cursor = queue.lastEventId
  let reRegistered = 0
  const acknowledged: string[] = []
  let done = false
  const polling = (async () => {
    while (!done) {
      try {
        const r = await gateway.poll({ queueId: queue.queueId, userId: bob, lastEventId: cursor })
        if (r.type === 'events') {
          for (const e of r.events) {
            if (e.type !== 'message.created') continue
            received.push((e.data as { messageId: string }).messageId)
            known.add((e.data as { messageId: string }).messageId)
          }
          cursor = r.events.at(-1)?.id ?? cursor
        }
      } catch (e) {
        if (e instanceof BadEventQueueIdError) {
          // The client's recovery: register again, reload state (here: the event store), continue.
          reRegistered++
          queue = await gateway.register(bob)
          cursor = queue.lastEventId
          await reload(queue.position)
          continue
        }
        await new Promise((r) => setTimeout(r, 100))
      }
    }
  })()

  for (let i = 0; i < 5; i++) acknowledged.push(await post(`before ${i}`))
  await redisServer.stop()
  // Commands keep being acknowledged while Redis is down: they only need the event store.
  for (let i = 0; i < 5; i++) acknowledged.push(await post(`during ${i}`))
  await redisServer.start()
  for (let i = 0; i < 5; i++) acknowledged.push(await post(`after ${i}`))

  // Readers see an event once every older transaction on the cluster has ended: wait for that, bounded.
  const storedIds = async () =>
    (await store.readAll({ maxCount: 10_000 }))
      .filter((e) => e.type === 'message.created')
      .map((e) => (e.data as { messageId: string }).messageId)
  let stored = await storedIds()
  for (let i = 0; i < 100 && stored.length < acknowledged.length; i++) {
    await new Promise((r) => setTimeout(r, 50))
    stored = await storedIds()
  }
  expect(stored).toEqual(acknowledged)

  const deadline = Date.now() + 20_000
  while (Date.now() < deadline && !acknowledged.every((id) => known.has(id))) await new Promise((r) => setTimeout(r, 50))
  // And the live path works again: a message posted now arrives by polling.
  const last = await post('live again')
  acknowledged.push(last)
  while (Date.now() < deadline && !received.includes(last)) await new Promise((r) => setTimeout(r, 20))
  done = true
  await gateway.close()
  await polling
  await engine.stop()
  await outbox.close()
  await streams.close()
  redis.disconnect()

  // Redis forgot the queue and the entries it held. The gateway keeps the queue in memory, bound to bob: the poll
  // goes on, and re-registers (reloading state) only if the stream's chain shows a gap after its cursor. Either
  // way nothing is missed. (reRegistered counts the recoveries; with the poller at the top of its stream when
  // Redis stopped, there may be none.)
  expect(reRegistered).toBeGreaterThanOrEqual(0)
  expect(acknowledged.filter((id) => !known.has(id))).toEqual([])
  expect(received).toContain(last)
  expect(new Set(received).size).toBe(received.length)
}, 60_000)
