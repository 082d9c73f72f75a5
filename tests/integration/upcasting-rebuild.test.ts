import { sql } from 'kysely'
import { v7 as uuid } from 'uuid'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { comparePositions, type NewEvent } from '../../adapters/event-store.ts'
import { type AnyDb, createKysely, createPool, type PgPool } from '../../adapters/postgres.ts'
import { PostgresEventStore } from '../../adapters/postgres-event-store.ts'
import { withUpcasting } from '../../adapters/upcasting-event-store.ts'
import { foldStream } from '../../bin/deciders.ts'
import { message } from '../../domain/messages.ts'
import { upcasters } from '../../domain/upcasting.ts'
import { messagesProjector } from '../../projections/messages.ts'
import { rebuild } from '../../projections/rebuild.ts'
import { createTestDatabase, type TestDatabase } from '../support/db.ts'

/*
 * "Changing an event" (README): stored events are never rewritten. Suppose message.created once stored
 * `{ body }` (schemaVersion 1) and now stores `{ text, authorType, threadRootId, mentions }` (schemaVersion 2).
 * The upcaster turns v1 into v2 on read, so a rebuild from position 0 and a decider's fold both see only v2.
 */
const registry = upcasters({
  'message.created': {
    current: 2,
    steps: {
      1: (d) => {
        const { body, ...rest } = d as { body: string }
        return { ...rest, text: body, authorType: 'user', threadRootId: null, mentions: [] }
      },
    },
  },
})

let database: TestDatabase
let pool: PgPool
let db: AnyDb
let raw: PostgresEventStore

beforeAll(async () => {
  database = await createTestDatabase()
  pool = createPool(database.url)
  db = createKysely(pool)
  raw = new PostgresEventStore(pool)
})
afterAll(async () => {
  await raw.close()
  await db.destroy()
  await database.drop()
})

const tenantId = uuid()
const roomId = uuid()
const authorId = uuid()
const event = (version: number, data: Record<string, unknown>): NewEvent => ({
  id: uuid(),
  type: 'message.created',
  data,
  metadata: {
    tenantId,
    actor: { type: 'user', id: authorId },
    correlationId: uuid(),
    causationId: null,
    occurredAt: '2024-06-01T10:00:00.000Z',
    schemaVersion: version,
  },
})

it('a rebuild replays old-version events through their upcaster, next to current ones', async () => {
  const old = uuid()
  const current = uuid()
  await raw.append(
    `message-${old}`,
    [event(1, { messageId: old, roomId, authorId, body: 'written in 2024', at: '2024-06-01T10:00:00.000Z' })],
    {
      expectedRevision: 'no_stream',
    },
  )
  await raw.append(
    `message-${current}`,
    [
      event(2, {
        messageId: current,
        roomId,
        authorId,
        authorType: 'agent',
        text: 'written today',
        threadRootId: old,
        mentions: [],
        at: '2025-06-01T10:00:00.000Z',
      }),
    ],
    { expectedRevision: 'no_stream' },
  )

  // Stored as written: the old event keeps its old shape and version.
  const [stored] = await raw.readStream(`message-${old}`)
  expect(stored!.metadata.schemaVersion).toBe(1)
  expect(stored!.data).toEqual(expect.objectContaining({ body: 'written in 2024' }))

  // Visible once every older transaction on the cluster has ended (other test files share it).
  const [last] = await raw.readStream(`message-${current}`)
  while (comparePositions(await raw.headPosition(), last!.position) < 0) await new Promise((r) => setTimeout(r, 5))
  const store = withUpcasting(raw, registry)
  await rebuild({ store, db, pool }, messagesProjector)
  const { rows } = await sql<{ id: string; seq: string; text: string; author_type: string; reply_count: number }>`
    select id, seq::text as seq, text, author_type, reply_count from tenant.messages order by seq`.execute(db)
  expect(rows).toEqual([
    { id: old, seq: '1', text: 'written in 2024', author_type: 'user', reply_count: 1 },
    { id: current, seq: '2', text: 'written today', author_type: 'agent', reply_count: 0 },
  ])

  // A decider folds the upcast shape too (what the command handlers and `replay --as-of` do).
  const upcast = await store.readStream(`message-${old}`)
  expect(upcast[0]!.metadata.schemaVersion).toBe(2)
  const { state } = foldStream(message, upcast)
  expect(state).toMatchObject({ exists: true, text: 'written in 2024', threadRootId: null, deleted: false })
})
