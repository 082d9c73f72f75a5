import { v7 as uuid } from 'uuid'
import { afterAll, beforeAll, expect, it } from 'vitest'
import type { EventStore, RecordedEvent } from '../../adapters/event-store.ts'
import { type AnyDb, createKysely, createPool, type PgPool } from '../../adapters/postgres.ts'
import { PostgresEventStore } from '../../adapters/postgres-event-store.ts'
import { messageStream } from '../../commands/messages.ts'
import { type CommandContext, handleCommand } from '../../commands/pipeline.ts'
import { loadRoom, roomStream } from '../../commands/rooms.ts'
import { message } from '../../domain/messages.ts'
import { room } from '../../domain/rooms.ts'
import { upcasters } from '../../domain/upcasting.ts'
import { applyEventsIn, type Projector } from '../../projections/engine.ts'
import { realtimeProjector } from '../../projections/realtime.ts'
import type { Delivery, RealtimeOutbox } from '../../projections/realtime-outbox.ts'
import { createTestDatabase, type TestDatabase } from '../support/db.ts'
import { appendUsersJoined } from '../support/org-events.ts'

/*
 * The fan-out keeps its audience tables in memory as well. What a batch changed there must not outlive the batch
 * when its transaction does not commit: the next batch computes audiences from what the tables hold.
 */

let database: TestDatabase
let pool: PgPool
let db: AnyDb
let store: EventStore

beforeAll(async () => {
  database = await createTestDatabase()
  pool = createPool(database.url, { max: 4 })
  db = createKysely(pool)
  store = new PostgresEventStore(pool)
})
afterAll(async () => {
  await store.close()
  await db.destroy()
  await database.drop()
})

it('a batch that rolls back leaves nothing in the in-memory audience: a member it added hears nothing', async () => {
  const tenantId = uuid()
  const [alice, bob] = [uuid(), uuid()]
  await appendUsersJoined(store, tenantId, [
    { userId: alice, role: 'member' },
    { userId: bob, role: 'member' },
  ])
  const ctx: CommandContext = {
    tenantId,
    actor: { type: 'user', id: alice },
    correlationId: uuid(),
    causationId: null,
    now: () => new Date(),
    newId: uuid,
  }
  const deps = { store, upcasters: upcasters({}) }
  const actor = { userId: alice, role: 'member' as const }
  const at = () => new Date().toISOString()
  const roomId = uuid()
  await handleCommand(
    deps,
    room,
    roomStream(roomId),
    { type: 'create', roomId, name: 'r', spaceId: null, visibility: 'private', actor, at: at() },
    ctx,
  )
  await handleCommand(
    deps,
    room,
    roomStream(roomId),
    { type: 'add_member', roomId, memberId: bob, memberType: 'user', actor, at: at() },
    ctx,
  )
  const messageId = uuid()
  await handleCommand(
    deps,
    message,
    messageStream(messageId),
    {
      type: 'post',
      messageId,
      roomId,
      text: 'hello',
      threadRoot: null,
      mentions: [],
      room: await loadRoom(store, roomId, tenantId),
      actor: { ...actor, type: 'user' },
      at: at(),
    },
    ctx,
  )
  const joined = await store.readStream(`org-${tenantId}`)
  const [created, added] = (await store.readStream(roomStream(roomId))) as [RecordedEvent, RecordedEvent]
  const posted = await store.readStream(messageStream(messageId))

  const deliveries: Delivery[] = []
  const outbox = {
    record: async (_trx: unknown, batch: readonly Delivery[]) => {
      deliveries.push(...batch)
    },
    kick: () => {},
    committed: () => {},
  } as unknown as RealtimeOutbox
  const fanout = realtimeProjector(outbox) as unknown as Projector
  const committed = async (events: readonly RecordedEvent[]) => {
    await db.transaction().execute((trx) => applyEventsIn(trx, fanout, events))
    fanout.afterCommit?.()
  }

  await committed([...joined, created])
  // Bob's joining the room applies, then the transaction rolls back (the engine retries such a batch).
  const rolledBack = new Error('rolled back')
  await expect(
    db.transaction().execute(async (trx) => {
      await applyEventsIn(trx, fanout, [added])
      throw rolledBack
    }),
  ).rejects.toBe(rolledBack)
  deliveries.length = 0
  await committed(posted)
  expect(deliveries.map((d) => [d.type, [...d.users].sort()])).toEqual([['message.created', [alice]]])

  // Applied and committed this time, Bob hears the room from then on.
  await committed([added])
  deliveries.length = 0
  await committed(posted)
  expect(deliveries.map((d) => [d.type, [...d.users].sort()])).toEqual([['message.created', [alice, bob].sort()]])
})
