import fc from 'fast-check'
import { sql } from 'kysely'
import { v7 as uuid } from 'uuid'
import { afterAll, beforeAll, expect, it } from 'vitest'
import type { NewEvent, Position, RecordedEvent } from '../../adapters/event-store.ts'
import { type AnyDb, createKysely, createPool, type PgPool } from '../../adapters/postgres.ts'
import { PostgresEventStore } from '../../adapters/postgres-event-store.ts'
import { up as tombstonesMigration } from '../../migrations/tenant/005_tombstones.ts'
import { applyBatch, loadCheckpoint, type Projector } from '../../projections/engine.ts'
import { messagesProjector } from '../../projections/messages.ts'
import { dropShadow, prepareShadow, shadowSchemaOf, verify } from '../../projections/rebuild.ts'
import { createTestDatabase, type TestDatabase } from '../support/db.ts'
import { messagesPerEvent } from '../support/messages-per-event.ts'

/*
 * Tombstones stay dead: once a message is deleted, the messages read model keeps neither its text, nor its edit
 * history, nor its search entry, whatever the store holds after the delete (an edit or a reaction that raced a
 * delete-range, appended to the message's own stream) and however the events are cut into batches. The batched
 * projector, applied live, must equal the per-event reference applied one event at a time, and a rebuild
 * (`verify`) must find the same rows.
 */

let database: TestDatabase
let pool: PgPool
let db: AnyDb
let store: PostgresEventStore
const oracle: Projector = { ...messagesProjector, name: 'messages_oracle', apply: messagesPerEvent.apply }
const oracleTarget = { schema: shadowSchemaOf(oracle), checkpointTable: `${shadowSchemaOf(oracle)}.projection_checkpoints` }
/** Where each projector stands: moved batch by batch, so a failed case leaves the next one a true checkpoint. */
const checkpoints = new Map<Projector, Position>()
/** The last event this file has read from the store: each case reads only its own events. */
let seen: Position

beforeAll(async () => {
  database = await createTestDatabase()
  pool = createPool(database.url, { max: 6 })
  db = createKysely(pool)
  store = new PostgresEventStore(pool)
  seen = await loadCheckpoint(db, messagesProjector)
  checkpoints.set(messagesProjector, seen)
  checkpoints.set(oracle, (await prepareShadow(db, oracle, { restart: true })).from)
})
afterAll(async () => {
  await dropShadow(db, oracle)
  await store.close()
  await db.destroy()
  await database.drop()
})

type Op = { kind: 'create' | 'edit' | 'react' | 'delete' | 'range'; m: number; n: number; flag: boolean }
const op = (kind: Op['kind'], m: number, n = 0, flag = false): Op => ({ kind, m, n, flag })

/** What the read model must say of one message, from the operations alone. */
type Expected = { id: string; text: string; edits: number; deleted: boolean }

/**
 * Turns operations on a few messages of one room into events as the store could hold them: a message is
 * created by the first operation that names it; later edits and reactions may follow its deletion, as they do
 * when they race a delete-range (the range is appended to the room's stream, they to the message's).
 */
function history(ops: readonly Op[]) {
  const tenantId = uuid()
  const roomId = uuid()
  const users = [uuid(), uuid()]
  const messages: Expected[] = []
  const appends: [string, NewEvent][] = []
  const emit = (stream: string, type: string, data: Record<string, unknown>) =>
    appends.push([
      stream,
      {
        id: uuid(),
        type,
        data,
        metadata: {
          tenantId,
          actor: { type: 'user', id: users[0]! },
          correlationId: uuid(),
          causationId: null,
          occurredAt: String(data.at),
          schemaVersion: 1,
        },
      },
    ])
  ops.forEach((o, n) => {
    const at = new Date(Date.UTC(2025, 0, 1) + n * 1000).toISOString()
    const user = users[o.n % users.length]!
    const target = messages[o.m]
    if (!target) {
      const id = uuid()
      const root = o.flag ? messages.find(Boolean) : undefined
      messages[o.m] = { id, text: `hello secret${n}`, edits: 0, deleted: false }
      emit(`message-${id}`, 'message.created', {
        messageId: id,
        roomId,
        authorId: user,
        authorType: 'user',
        text: `hello secret${n}`,
        threadRootId: root?.id ?? null,
        mentions: [{ userId: users[1], username: 'bo' }],
        at,
      })
      return
    }
    switch (o.kind) {
      case 'create':
        return
      case 'edit':
        // The writer read the message before it was deleted: its previous text is the last one it saw.
        emit(`message-${target.id}`, 'message.updated', {
          messageId: target.id,
          roomId,
          text: `edited secret${n}`,
          previousText: target.text,
          mentions: [],
          at,
        })
        if (!target.deleted) Object.assign(target, { text: `edited secret${n}`, edits: target.edits + 1 })
        return
      case 'react':
        emit(`message-${target.id}`, 'message.reaction_changed', {
          messageId: target.id,
          roomId,
          userId: user,
          emoji: 'tada',
          reacted: o.flag || n % 3 > 0,
          at,
        })
        return
      case 'delete':
        emit(`message-${target.id}`, 'message.deleted', { messageId: target.id, roomId, deletedBy: user, at })
        target.deleted = true
        return
      case 'range': {
        const range = messages.slice(o.m, o.m + o.n + 1).filter(Boolean)
        emit(`room-${roomId}`, 'message.range_deleted', {
          roomId,
          fromMessageId: range[0]!.id,
          toMessageId: range[range.length - 1]!.id,
          messageIds: range.map((m) => m.id),
          deletedBy: user,
          at,
        })
        for (const m of range) m.deleted = true
        return
      }
    }
  })
  return { tenantId, appends, messages }
}

async function appendAndRead(appends: readonly [string, NewEvent][]): Promise<RecordedEvent[]> {
  for (const [stream, event] of appends) await store.append(stream, [event], { expectedRevision: 'any' })
  const events: RecordedEvent[] = []
  // Visible once every older transaction on the cluster has ended (other test files share it).
  while (events.length < appends.length) {
    const more = await store.readAll({ from: seen })
    if (more.length) seen = more[more.length - 1]!.position
    else await new Promise((r) => setTimeout(r, 5))
    events.push(...more)
  }
  return events
}

async function project(p: Projector, events: readonly RecordedEvent[], cuts: readonly number[], target?: typeof oracleTarget) {
  let i = 0
  for (const cut of [...cuts, events.length]) {
    const batch = events.slice(i, Math.max(i, Math.min(cut, events.length)))
    if (batch.length === 0) continue
    checkpoints.set(p, await applyBatch(db, p, checkpoints.get(p)!, batch, target))
    i += batch.length
  }
}

async function contents(schema: string, tenantId: string): Promise<Record<string, unknown[]>> {
  const out: Record<string, unknown[]> = {}
  for (const t of messagesProjector.tables) {
    const { rows } = await sql<{ r: unknown }>`
      select to_jsonb(x) as r from ${sql.table(`${schema}.${t}`)} x where tenant_id = ${tenantId} order by to_jsonb(x)::text`.execute(
      db,
    )
    out[t] = rows.map((r) => r.r)
  }
  return out
}

/**
 * Appends the history, projects it live in batches cut at `cuts` and with the reference one event at a time,
 * and checks both against each other and against what the operations say.
 */
async function check(ops: readonly Op[], cuts: readonly number[]): Promise<void> {
  const { tenantId, appends, messages } = history(ops)
  const events = await appendAndRead(appends)
  await project(messagesProjector, events, cuts)
  await project(
    oracle,
    events,
    events.map((_, i) => i + 1),
    oracleTarget,
  )

  const { rows } = await sql<{
    id: string
    text: string
    search: string
    mentions: unknown
    reactions: unknown
    edited: boolean
    deleted: boolean
    edits: number
  }>`
    select m.id, m.text, m.search::text as search, m.mentions, m.reactions, m.edited_at is not null as edited,
           m.deleted_at is not null as deleted,
           (select count(*)::int from tenant.message_edits e where e.tenant_id = m.tenant_id and e.message_id = m.id) as edits
      from tenant.messages m where m.tenant_id = ${tenantId}`.execute(db)
  const byId = new Map(rows.map((r) => [r.id, r]))
  for (const m of messages.filter(Boolean)) {
    const row = byId.get(m.id)
    expect(row, m.id).toBeDefined()
    if (m.deleted) {
      expect(row).toEqual({ id: m.id, text: '', search: '', mentions: [], reactions: {}, edited: false, deleted: true, edits: 0 })
    } else {
      expect(row).toMatchObject({ text: m.text, edited: m.edits > 0, deleted: false, edits: m.edits })
    }
  }
  expect(await contents('tenant', tenantId)).toEqual(await contents(oracleTarget.schema, tenantId))
}

/** A rebuild of every case so far, in batches of `batchSize`, finds exactly the live rows. */
async function expectRebuildEqual(batchSize: number): Promise<void> {
  expect((await verify({ store, db }, messagesProjector, { batchSize })).differences).toEqual([])
}

it('a message created, edited, reacted to and deleted inside one batch keeps no text, edits or search entry', async () => {
  await check([op('create', 0), op('edit', 0), op('react', 0, 1, true), op('edit', 0), op('delete', 0)], [])
  await expectRebuildEqual(500)
})

it('an edit and a reaction that raced a delete-range stay out of the tombstones, in the same batch or a later one', async () => {
  const ops = [
    op('create', 0),
    op('create', 1),
    op('create', 2, 0, true),
    op('edit', 1),
    op('range', 0, 1),
    op('edit', 1),
    op('react', 0, 1, true),
    op('edit', 2),
  ]
  await check(ops, [])
  await check(ops, [5])
  await check(ops, [1, 2, 3, 4, 5, 6, 7])
  await expectRebuildEqual(3)
})

it('a delete in a later batch takes the edit history of earlier batches with it', async () => {
  await check([op('create', 0), op('edit', 0), op('edit', 0), op('delete', 0), op('edit', 0), op('react', 0, 0, true)], [2, 4, 5])
  await expectRebuildEqual(2)
})

it('random interleavings and batch cuts: live equals the one-event-at-a-time reference and a rebuild; tombstones stay dead', async () => {
  const anOp = fc.record({
    kind: fc.constantFrom<Op['kind']>('create', 'edit', 'react', 'delete', 'range'),
    m: fc.integer({ min: 0, max: 3 }),
    n: fc.integer({ min: 0, max: 3 }),
    flag: fc.boolean(),
  })
  await fc.assert(
    fc.asyncProperty(
      fc.array(anOp, { minLength: 1, maxLength: 24 }),
      fc.uniqueArray(fc.integer({ min: 1, max: 24 }), { maxLength: 6 }),
      async (ops, cuts) => {
        await check(
          ops,
          cuts.sort((a, b) => a - b),
        )
      },
    ),
    { numRuns: 40 },
  )
  // Batches of the rebuild cut the cases' histories elsewhere than their live batches did.
  await expectRebuildEqual(7)
}, 180_000)

it('migration 005, run by an owner that is no superuser, empties the tombstones and edit histories left before it', async () => {
  const [tenantId, roomId, authorId, kept, dead] = [uuid(), uuid(), uuid(), uuid(), uuid()]
  const owner = `ws_test_owner_${uuid().replaceAll('-', '')}`
  class Undo extends Error {}
  // Typed as the migrations see the database.
  const undone = createKysely(pool)
    .transaction()
    .execute(async (trx) => {
      // As the projectors left things before it: a tombstone an edit and a reaction wrote back into, edit histories
      // of a deleted message and of one never projected.
      await sql`alter table tenant.messages drop constraint messages_tombstone_empty`.execute(trx)
      await sql`
        insert into tenant.messages (tenant_id, id, room_id, seq, author_id, author_type, text, mentions, reactions,
                                     created_at, edited_at, deleted_at, position)
        values (${tenantId}, ${kept}, ${roomId}, 1, ${authorId}, 'user', 'still here', '[]', '{}', now(), now(), null, 1),
               (${tenantId}, ${dead}, ${roomId}, 2, ${authorId}, 'user', 'raced back in',
                ${JSON.stringify([{ userId: authorId, username: 'al' }])}, ${JSON.stringify({ tada: [authorId] })},
                now(), now(), now(), 2)`.execute(trx)
      await sql`
        insert into tenant.message_edits (tenant_id, message_id, version, text, replaced_at)
        values (${tenantId}, ${kept}, 1, 'first', now()), (${tenantId}, ${dead}, 1, 'secret', now()),
               (${tenantId}, ${uuid()}, 1, 'orphan', now())`.execute(trx)
      // Forced row-level security applies to such an owner: without lifting it, the migration would see no rows.
      await sql`create role ${sql.id(owner)} nologin`.execute(trx)
      await sql`grant usage on schema tenant to ${sql.id(owner)}`.execute(trx)
      for (const t of ['messages', 'message_edits'])
        await sql`alter table ${sql.id('tenant', t)} owner to ${sql.id(owner)}`.execute(trx)
      await sql`set local role ${sql.id(owner)}`.execute(trx)
      await tombstonesMigration(trx)
      await sql`reset role`.execute(trx)

      const { rows } = await sql`
        select id, text, search::text as search, mentions, reactions, edited_at is not null as edited,
               deleted_at is not null as deleted
          from tenant.messages where tenant_id = ${tenantId} order by seq`.execute(trx)
      expect(rows).toEqual([
        { id: kept, text: 'still here', search: "'here':2 'still':1", mentions: [], reactions: {}, edited: true, deleted: false },
        { id: dead, text: '', search: '', mentions: [], reactions: {}, edited: false, deleted: true },
      ])
      const { rows: edits } = await sql`select message_id, text from tenant.message_edits where tenant_id = ${tenantId}`.execute(
        trx,
      )
      expect(edits).toEqual([{ message_id: kept, text: 'first' }])
      const { rows: forced } = await sql`
        select relname, relforcerowsecurity as forced from pg_class
         where oid in ('tenant.messages'::regclass, 'tenant.message_edits'::regclass) order by relname`.execute(trx)
      expect(forced).toEqual([
        { relname: 'message_edits', forced: true },
        { relname: 'messages', forced: true },
      ])
      await sql`savepoint refused`.execute(trx)
      await expect(
        sql`update tenant.messages set text = 'back again' where tenant_id = ${tenantId} and id = ${dead}`.execute(trx),
      ).rejects.toMatchObject({
        code: '23514',
      })
      await sql`rollback to savepoint refused`.execute(trx)
      throw new Undo()
    })
  await expect(undone).rejects.toBeInstanceOf(Undo)
})
