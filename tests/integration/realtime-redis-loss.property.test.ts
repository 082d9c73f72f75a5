import { setTimeout as sleep } from 'node:timers/promises'
import fc from 'fast-check'
import { Redis } from 'ioredis'
import { v7 as uuid } from 'uuid'
import { afterAll, beforeAll, expect, it } from 'vitest'
import type { RecordedEvent } from '../../adapters/event-store.ts'
import { createLogger } from '../../adapters/logger.ts'
import { type AnyDb, createKysely, createPool, type PgPool } from '../../adapters/postgres.ts'
import { PostgresEventStore } from '../../adapters/postgres-event-store.ts'
import { RedisUserStreams } from '../../adapters/redis-user-streams.ts'
import { loadCheckpoint, ProjectionEngine } from '../../projections/engine.ts'
import { realtimeProjector } from '../../projections/realtime.ts'
import { RealtimeOutbox } from '../../projections/realtime-outbox.ts'
import { RealtimeGateway } from '../../realtime/gateway.ts'
import { createTestDatabase, type TestDatabase } from '../support/db.ts'
import { appendUsersJoined } from '../support/org-events.ts'
import { RealtimeClient, stateAt } from '../support/realtime-client.ts'
import { type OwnRedis, startOwnRedis } from '../support/redis-server.ts'
import { appendMessage, appendRoomCreated, messageCreated, messageIdOf } from '../support/room-events.ts'

/*
 * Redis loses data (FLUSHDB, a user's stream deleted, a restart without persistence) while events flow. Each
 * client follows the protocol: register, load state at the registration's position, poll from its lastEventId,
 * and on BAD_EVENT_QUEUE_ID register again. What a client knows after a registration (state + events polled
 * since) must be exactly a prefix of what it may see, in the global order: no gap, no duplicate. Some events
 * sort by transaction before an event with a lower position, so a bare position comparison shows up.
 */

const USERS = 3
/** Room → its members (user indexes); fixed, so the oracle is the global order filtered by room. */
const ROOMS: readonly (readonly number[])[] = [
  [0, 1, 2],
  [0, 1],
  [1, 2],
]

let database: TestDatabase
let pool: PgPool
let db: AnyDb
let store: PostgresEventStore
let redisServer: OwnRedis
let redis: Redis
let streams: RedisUserStreams
let gateway: RealtimeGateway
let engine: ProjectionEngine
let outbox: RealtimeOutbox
const prefix = 'rt:'

beforeAll(async () => {
  redisServer = await startOwnRedis()
  database = await createTestDatabase()
  pool = createPool(database.url, { max: 12 })
  db = createKysely(pool)
  store = new PostgresEventStore(pool, { idlePollMs: 200 })
  // As bin/services.ts connects: fail fast while Redis is away, reconnect in the background.
  redis = new Redis(redisServer.url, {
    maxRetriesPerRequest: 1,
    commandTimeout: 2_000,
    retryStrategy: (times) => Math.min(times * 50, 200),
  })
  redis.on('error', () => {})
  streams = new RedisUserStreams(redis, { keyPrefix: prefix })
  const logger = createLogger('silent')
  outbox = new RealtimeOutbox({ db, streams, logger }, { retryMs: 20, maxRetryMs: 200 })
  const fanout = realtimeProjector(outbox)
  gateway = new RealtimeGateway(streams, { heartbeatMs: 300, fannedOutUpTo: () => loadCheckpoint(db, fanout) })
  engine = new ProjectionEngine({ store, db, logger }, [fanout], { retryMs: 50, batchSize: 7 })
  engine.start()
})
afterAll(async () => {
  await gateway?.close()
  await engine?.stop()
  await outbox?.close()
  await streams?.close()
  redis?.disconnect()
  await store?.close()
  await db?.destroy()
  await database?.drop()
  await redisServer?.stop()
})

type Op =
  | { op: 'post'; room: number; count: number }
  /** Two posts whose transactions sort in the other order than their positions. */
  | { op: 'crossed'; first: number; second: number }
  | { op: 'flushdb' }
  | { op: 'del'; user: number }
  | { op: 'restart' }
  /** The client stops polling until the end: its events pile up in its stream, where a loss can take them. */
  | { op: 'pause'; user: number }
  | { op: 'wait'; ms: number }

const room = fc.integer({ min: 0, max: ROOMS.length - 1 })
const user = fc.integer({ min: 0, max: USERS - 1 })
const crossed = fc.record({ op: fc.constant('crossed' as const), first: room, second: room })
const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ op: fc.constant('post' as const), room, count: fc.integer({ min: 1, max: 4 }) }) },
  { weight: 2, arbitrary: crossed },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('flushdb' as const) }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('del' as const), user }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('restart' as const) }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('pause' as const), user }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('wait' as const), ms: fc.integer({ min: 0, max: 60 }) }) },
)
/** Every run has crossed transactions, somewhere among the other operations. */
const scenario = fc
  .tuple(fc.array(opArb, { minLength: 4, maxLength: 16 }), crossed, fc.nat())
  .map(([ops, c, at]) => [...ops.slice(0, at % (ops.length + 1)), c, ...ops.slice(at % (ops.length + 1))])

/** Two transactions: the first takes its transaction id, the second appends and commits, then the first appends. */
async function crossedPosts(tenantId: string, author: string, first: string, second: string): Promise<void> {
  const a = await pool.connect()
  try {
    await a.query('begin')
    await a.query('select pg_current_xact_id()')
    await appendMessage(store, tenantId, second, author)
    const e = messageCreated(tenantId, first, author)
    await a.query('select * from eventstore.append($1, -1, $2, $3)', [
      `message-${uuid()}`,
      JSON.stringify([{ id: e.id, type: e.type, data: e.data, metadata: e.metadata }]),
      tenantId,
    ])
    await a.query('commit')
    // Direct SQL bypasses the adapter's wakeup, as another process's append would.
    await a.query(`select pg_notify('eventstore_appended', '')`)
  } catch (e) {
    await a.query('rollback').catch(() => {})
    throw e
  } finally {
    a.release()
  }
}

it('after any loss of Redis data, each user’s state at registration plus the events polled has no gap and no duplicate', async () => {
  await fc.assert(
    fc.asyncProperty(scenario, async (ops) => {
      const tenantId = uuid()
      const users = Array.from({ length: USERS }, () => uuid())
      await appendUsersJoined(
        store,
        tenantId,
        users.map((userId) => ({ userId, role: 'member' as const })),
      )
      const roomIds = ROOMS.map(() => uuid())
      for (const [r, members] of ROOMS.entries()) {
        await appendRoomCreated(
          store,
          tenantId,
          roomIds[r]!,
          members.map((m) => users[m]!),
        )
      }
      const roomsOf = users.map((_, u) => new Set(roomIds.filter((_, r) => ROOMS[r]!.includes(u))))
      const visibleTo = (u: number) => (e: RecordedEvent) =>
        e.type === 'message.created' && e.metadata.tenantId === tenantId && roomsOf[u]!.has((e.data as { roomId: string }).roomId)
      const clients = users.map(
        (userId, u) =>
          new RealtimeClient({
            gateway,
            userId,
            eventTypes: ['message.created'],
            loadState: (position) => stateAt(store, position, (e) => (visibleTo(u)(e) ? messageIdOf(e.data) : null)),
            keep: (e) => messageIdOf(e.data),
          }),
      )
      const post = (r: number) => appendMessage(store, tenantId, roomIds[r]!, users[ROOMS[r]![0]!]!)

      try {
        for (const o of ops) {
          if (o.op === 'post') for (let i = 0; i < o.count; i++) await post(o.room)
          else if (o.op === 'crossed') await crossedPosts(tenantId, users[0]!, roomIds[o.first]!, roomIds[o.second]!)
          else if (o.op === 'flushdb') await redis.flushdb().catch(() => {})
          else if (o.op === 'del') await redis.del(`${prefix}${users[o.user]}`).catch(() => {})
          else if (o.op === 'restart') {
            await redisServer.stop()
            await sleep(30)
            await redisServer.start()
          } else if (o.op === 'pause') clients[o.user]!.paused = true
          else await sleep(o.ms)
        }
        for (const c of clients) c.paused = false
        // A loss is noticed at the user's next event (or at once when the queue went too): one more in every room.
        for (let r = 0; r < ROOMS.length; r++) await post(r)

        const all = async () => (await store.readAll({ maxCount: 100_000 })).filter((e) => e.metadata.tenantId === tenantId)
        const expectedEvents = await (async () => {
          const want = ops.reduce((n, o) => n + (o.op === 'post' ? o.count : o.op === 'crossed' ? 2 : 0), ROOMS.length)
          for (let i = 0; i < 200; i++) {
            const events = (await all()).filter((e) => e.type === 'message.created')
            if (events.length >= want) return events
            await sleep(25)
          }
          throw new Error('the posts did not become visible')
        })()
        const expected = users.map((_, u) => expectedEvents.filter(visibleTo(u)).map((e) => messageIdOf(e.data)))
        const deadline = Date.now() + 15_000
        while (Date.now() < deadline && !clients.every((c, u) => String(c.known) === String(expected[u]))) {
          await sleep(25)
        }

        // The crossed posts are in: an event before another in the order, with the higher position.
        const positions = expectedEvents.map((e) => e.position)
        expect(positions.some((p, i) => positions.slice(i + 1).some((q) => q.sequence < p.sequence))).toBe(true)
        for (const [u, c] of clients.entries()) {
          for (const epoch of c.epochs) {
            expect(epoch, `user ${u}: a registration's state + events is a prefix of what they may see`).toEqual(
              expected[u]!.slice(0, epoch.length),
            )
          }
          expect(c.known, `user ${u} ends up with everything`).toEqual(expected[u])
        }
      } finally {
        await Promise.all(clients.map((c) => c.stop()))
      }
    }),
    // Shrinking replays whole scenarios of a few seconds each: report the failing one as it was found.
    { numRuns: 12, endOnFailure: true },
  )
}, 180_000)
