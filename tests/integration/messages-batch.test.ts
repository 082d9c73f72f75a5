import fc from 'fast-check'
import { sql } from 'kysely'
import { v7 as uuid } from 'uuid'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { type Position, type RecordedEvent, START } from '../../adapters/event-store.ts'
import { type AnyDb, createKysely, createPool, type PgPool } from '../../adapters/postgres.ts'
import { applyBatch, type Projector } from '../../projections/engine.ts'
import { messagesProjector } from '../../projections/messages.ts'
import { dropShadow, prepareShadow } from '../../projections/rebuild.ts'
import { createTestDatabase, type TestDatabase } from '../support/db.ts'
import { messagesPerEvent } from '../support/messages-per-event.ts'

/*
 * The batched messages projector must give exactly the tables the per-event reference gives, on any history,
 * sensible or not (edits of unknown messages, reactions on deleted ones, replies to missing roots, duplicate
 * creates), cut into batches anywhere.
 */

let database: TestDatabase
let pool: PgPool
let db: AnyDb

beforeAll(async () => {
  database = await createTestDatabase()
  pool = createPool(database.url)
  db = createKysely(pool)
})
afterAll(async () => {
  await db.destroy()
  await database.drop()
})

const tenants = [uuid(), uuid()]
const rooms = [uuid(), uuid(), uuid()]
const users = [uuid(), uuid(), uuid()]
const at = (n: number) => new Date(Date.UTC(2025, 0, 1) + n * 1000).toISOString()

type Step = { kind: number; a: number; b: number; c: number; flag: boolean; tenant: number }

/** Turns random numbers into a message history that keeps referring to earlier messages (and some unknown ones). */
function history(steps: readonly Step[]): RecordedEvent[] {
  const ids: string[][] = tenants.map(() => [])
  const unknown = uuid()
  const events: RecordedEvent[] = []
  steps.forEach((s, n) => {
    const mine = ids[s.tenant]!
    const some = (k: number) => (mine.length === 0 || k % 7 === 6 ? unknown : mine[k % mine.length]!)
    const room = rooms[s.a % rooms.length]!
    const user = users[s.b % users.length]!
    let type: string
    let data: Record<string, unknown>
    switch (s.kind) {
      case 0:
      case 1:
      case 2: {
        // A duplicate create now and then: the read model keeps the first.
        const id = s.c % 6 === 5 && mine.length ? some(s.c) : uuid()
        if (id !== unknown) mine.push(id)
        type = 'message.created'
        data = {
          messageId: id,
          roomId: room,
          authorId: user,
          authorType: 'user',
          text: `m${n}`,
          threadRootId: s.flag ? some(s.b) : null,
          mentions: s.c % 3 ? [] : [{ userId: user, username: 'u' }],
          at: at(n),
        }
        break
      }
      case 3:
        type = 'message.updated'
        data = { messageId: some(s.c), roomId: room, text: `e${n}`, previousText: `p${n}`, mentions: [], at: at(n) }
        break
      case 4:
        type = 'message.deleted'
        data = { messageId: some(s.c), roomId: room, deletedBy: user, at: at(n) }
        break
      case 5:
        type = 'message.range_deleted'
        data = {
          roomId: room,
          fromMessageId: some(s.c),
          toMessageId: some(s.c + 1),
          messageIds: [some(s.c), some(s.c + 1), some(s.c + 2)],
          deletedBy: user,
          at: at(n),
        }
        break
      case 6:
      case 7:
        type = 'message.reaction_changed'
        data = {
          messageId: some(s.c),
          roomId: room,
          userId: user,
          emoji: s.a % 2 ? 'tada' : '👍',
          reacted: s.flag || s.kind === 6,
          at: at(n),
        }
        break
      case 8:
        type = 'room.read_marked'
        data = { roomId: room, userId: user, messageId: some(s.c), at: at(n) }
        break
      default:
        // Old history: drafts are no longer projected, and the events of before must pass through untouched.
        type = 'draft.saved'
        data = { roomId: room, userId: user, text: s.flag ? '' : `d${n}`, at: at(n) }
    }
    events.push({
      id: uuid(),
      type,
      data,
      streamName: `x-${n}`,
      revision: 0n,
      position: { transactionId: BigInt(1000 + n), sequence: BigInt(n + 1) },
      metadata: {
        tenantId: tenants[s.tenant]!,
        actor: { type: 'user', id: user },
        correlationId: uuid(),
        causationId: null,
        occurredAt: at(n),
        schemaVersion: 1,
      },
    })
  })
  return events
}

const TABLES = ['messages', 'message_edits', 'room_reads'] as const

async function contents(schema: string): Promise<Record<string, unknown[]>> {
  const out: Record<string, unknown[]> = {}
  for (const t of TABLES) {
    const { rows } = await sql<{ r: unknown }>`
      select to_jsonb(x) - 'search' as r from ${sql.table(`${schema}.${t}`)} x order by to_jsonb(x)::text`.execute(db)
    out[t] = rows.map((r) => r.r)
  }
  return out
}

async function build(p: Projector, events: readonly RecordedEvent[], cuts: readonly number[]): Promise<string> {
  const { schema } = await prepareShadow(db, p, { restart: true })
  const target = { schema, checkpointTable: `${schema}.projection_checkpoints` }
  let from: Position = START
  let i = 0
  for (const cut of [...cuts, events.length]) {
    const batch = events.slice(i, Math.max(i, Math.min(cut, events.length)))
    if (batch.length === 0) continue
    from = await applyBatch(db, p, from, batch, target)
    i += batch.length
  }
  return schema
}

const reference: Projector = { ...messagesProjector, name: 'messages_reference', apply: messagesPerEvent.apply }
const batched: Projector = { ...messagesProjector, name: 'messages_batched' }

it('the batched messages projector equals the per-event reference on random histories and batch cuts', async () => {
  const step = fc.record({
    kind: fc.integer({ min: 0, max: 9 }),
    a: fc.nat(),
    b: fc.nat(),
    c: fc.nat(),
    flag: fc.boolean(),
    tenant: fc.integer({ min: 0, max: 1 }),
  })
  await fc.assert(
    fc.asyncProperty(
      fc.array(step, { minLength: 1, maxLength: 120 }),
      fc.array(fc.integer({ min: 1, max: 120 }), { maxLength: 8 }),
      async (steps, rawCuts) => {
        const events = history(steps)
        const cuts = [...new Set(rawCuts)].sort((x, y) => x - y)
        const [a, b] = [await build(reference, events, cuts), await build(batched, events, cuts)]
        expect(await contents(b)).toEqual(await contents(a))
      },
    ),
    { numRuns: 40 },
  )
  await dropShadow(db, reference)
  await dropShadow(db, batched)
}, 120_000)

it('a message created again in a later batch keeps its first row and takes no sequence number (the exact retry)', async () => {
  const steps = (kind: number, c: number) => ({ kind, a: 0, b: 0, c, flag: false, tenant: 0 })
  // Three creates in one room, then (next batch) the first one again and a fourth, then reactions.
  const events = history([steps(0, 1), steps(0, 2), steps(0, 3), steps(0, 10), steps(0, 4), steps(6, 1)])
  const again = events[3]!
  ;(again.data as { messageId: string }).messageId = (events[0]!.data as { messageId: string }).messageId
  const [a, b] = [await build(reference, events, [3]), await build(batched, events, [3])]
  const batchedRows = await contents(b)
  expect(batchedRows).toEqual(await contents(a))
  expect((batchedRows.messages as { seq: number }[]).map((m) => m.seq).sort()).toEqual([1, 2, 3, 4])
  await dropShadow(db, reference)
  await dropShadow(db, batched)
})
