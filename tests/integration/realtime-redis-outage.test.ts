import { setTimeout as sleep } from 'node:timers/promises'
import { Redis } from 'ioredis'
import { sql } from 'kysely'
import { v7 as uuid } from 'uuid'
import { afterAll, beforeAll, expect, it } from 'vitest'
import type { Position, RecordedEvent } from '../../adapters/event-store.ts'
import { createLogger } from '../../adapters/logger.ts'
import { type AnyDb, createKysely, createPool, type PgPool } from '../../adapters/postgres.ts'
import { PostgresEventStore } from '../../adapters/postgres-event-store.ts'
import { RedisUserStreams } from '../../adapters/redis-user-streams.ts'
import { loadCheckpoint, ProjectionEngine } from '../../projections/engine.ts'
import { messagesProjector } from '../../projections/messages.ts'
import { realtimeProjector } from '../../projections/realtime.ts'
import { RealtimeOutbox } from '../../projections/realtime-outbox.ts'
import { RealtimeGateway } from '../../realtime/gateway.ts'
import { createTestDatabase, type TestDatabase } from '../support/db.ts'
import { appendUsersJoined } from '../support/org-events.ts'
import { RealtimeClient, stateAt } from '../support/realtime-client.ts'
import { type OwnRedis, startOwnRedis } from '../support/redis-server.ts'
import { appendMemberAdded, appendMessage, appendRoomCreated, messageIdOf } from '../support/room-events.ts'

let database: TestDatabase
let pool: PgPool
let db: AnyDb
let store: PostgresEventStore
let redisServer: OwnRedis
let redis: Redis

beforeAll(async () => {
  redisServer = await startOwnRedis()
  database = await createTestDatabase()
  pool = createPool(database.url, { max: 12 })
  db = createKysely(pool)
  store = new PostgresEventStore(pool)
  // As bin/services.ts connects: a command waits at most 2 s, reconnection goes on in the background.
  redis = new Redis(redisServer.url, {
    maxRetriesPerRequest: 1,
    commandTimeout: 2_000,
    retryStrategy: (times) => Math.min(times * 100, 1_000),
  })
  redis.on('error', () => {})
})
afterAll(async () => {
  redis?.disconnect()
  await store?.close()
  await db?.destroy()
  await database?.drop()
  await redisServer?.stop()
})

/** The longest transaction open on this database right now, in milliseconds. */
const longestTransactionMs = async () => {
  const { rows } = await sql<{ ms: number | null }>`
    select extract(epoch from max(now() - xact_start)) * 1000 as ms from pg_stat_activity
     where datname = current_database() and pid <> pg_backend_pid() and xact_start is not null`.execute(db)
  return Number(rows[0]?.ms ?? 0)
}

it('Redis stopped for 10 s while messages are posted: read models keep up, realtime catches up after, no gap, no duplicate', async () => {
  const streams = new RedisUserStreams(redis, { keyPrefix: `rt-${uuid()}:` })
  const logger = createLogger('silent')
  const outbox = new RealtimeOutbox({ db, streams, logger })
  const fanout = realtimeProjector(outbox)
  const gateway = new RealtimeGateway(streams, { heartbeatMs: 500, fannedOutUpTo: () => loadCheckpoint(db, fanout) })
  const engine = new ProjectionEngine({ store, db, logger }, [messagesProjector, fanout])
  engine.start()

  const tenantId = uuid()
  const [alice, bob] = [uuid(), uuid()]
  await appendUsersJoined(store, tenantId, [
    { userId: alice, role: 'member' },
    { userId: bob, role: 'member' },
  ])
  const [general, later] = [uuid(), uuid()]
  await appendRoomCreated(store, tenantId, general, [alice, bob])
  await appendRoomCreated(store, tenantId, later, [alice])

  /** What bob may see: messages of the rooms he is in at each message's place in the order. */
  const bobSees = () => {
    const rooms = new Set([general])
    return (e: RecordedEvent) => {
      const d = e.data as { roomId: string; memberId?: string }
      if (e.metadata.tenantId !== tenantId) return null
      if (e.type === 'room.member_added' && d.memberId === bob) rooms.add(d.roomId)
      return e.type === 'message.created' && rooms.has(d.roomId) ? messageIdOf(e.data) : null
    }
  }
  const client = new RealtimeClient({
    gateway,
    userId: bob,
    eventTypes: ['message.created'],
    loadState: (position) => stateAt(store, position, bobSees()),
    keep: (e) => messageIdOf(e.data),
  })
  const reached = async (names: string[], position: Position, within: number) => {
    const until = Date.now() + within
    while (!engine.reached(names, position) && Date.now() < until) await sleep(5)
    return engine.reached(names, position)
  }
  await reached(['messages', 'realtime'], (await appendMessage(store, tenantId, general, alice)).position, 10_000)

  // Stopped, not killed: the process keeps its data and its connections, and answers nothing.
  const pid = Number(/process_id:(\d+)/.exec(await redis.info('server'))![1])
  process.kill(pid, 'SIGSTOP')
  let longest = 0
  const lags: { projector: string; ms: number }[] = []
  try {
    const outageEnds = Date.now() + 10_000
    // An audience change in the outage: the fan-out writes its own tables in that batch.
    await appendMemberAdded(store, tenantId, later, bob)
    let n = 0
    while (Date.now() < outageEnds) {
      const posted = Date.now()
      const { position } = await appendMessage(store, tenantId, n++ % 2 ? later : general, alice)
      for (const projector of ['messages', 'realtime']) {
        await reached([projector], position, 3_000)
        lags.push({ projector, ms: Date.now() - posted })
      }
      longest = Math.max(longest, await longestTransactionMs())
      await sleep(200)
    }
  } finally {
    process.kill(pid, 'SIGCONT')
  }
  const resumed = Date.now()

  const expected = (await store.readAll({ maxCount: 100_000 })).map(bobSees()).filter((id) => id !== null)
  while (String(client.known) !== String(expected) && Date.now() - resumed < 15_000) await sleep(20)
  const caughtUpMs = Date.now() - resumed
  await client.stop()
  await gateway.close()
  await engine.stop()
  await outbox.close()
  await streams.close()

  // The read models and the fan-out's own batches went on as if Redis were there, and no transaction waited for
  // it (the client gives up on a command after 2 s: one held open for that would show). The bounds leave room for
  // a busy machine.
  expect(lags.filter((l) => l.ms > 2_500)).toEqual([])
  expect(longest).toBeLessThan(1_500)
  // Realtime caught up once Redis answered again, and bob holds every message once, in order.
  expect(caughtUpMs).toBeLessThan(10_000)
  for (const epoch of client.epochs) expect(epoch).toEqual(expected.slice(0, epoch.length))
  expect(client.known).toEqual(expected)
  expect(expected.length).toBeGreaterThan(20)
}, 60_000)
