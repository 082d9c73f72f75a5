import { randomBytes } from 'node:crypto'
import { v7 as uuid } from 'uuid'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { Sealer } from '../../adapters/auth-keys.ts'
import { DataKeyUnwrapError, PostgresDataKeys } from '../../adapters/data-keys.ts'
import type { EventStore, NewEvent, RecordedEvent } from '../../adapters/event-store.ts'
import { withPersonalData } from '../../adapters/personal-data-store.ts'
import { type AnyDb, createKysely, createPool, type PgPool } from '../../adapters/postgres.ts'
import { PostgresEventStore } from '../../adapters/postgres-event-store.ts'
import { personalData } from '../../domain/personal-data.ts'
import { createTestDatabase, type TestDatabase } from '../support/db.ts'

let database: TestDatabase
let pool: PgPool
let db: AnyDb
let raw: PostgresEventStore
const wrapper = new Sealer(randomBytes(32))
const keys = (cacheTtlMs?: number, sealer = wrapper) => new PostgresDataKeys(db, async () => sealer, { cacheTtlMs })
const tenantId = uuid()

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

const event = (type: string, data: unknown, actorId = uuid()): NewEvent => ({
  id: uuid(),
  type,
  data,
  metadata: {
    tenantId,
    actor: { type: 'user', id: actorId },
    correlationId: uuid(),
    causationId: null,
    occurredAt: new Date().toISOString(),
    schemaVersion: 1,
  },
})

/** A person who joined, posted, edited and saved a draft, through `store`. */
async function history(store: EventStore) {
  const userId = uuid()
  const messageId = uuid()
  const mark = uuid()
  const roomId = uuid()
  const at = new Date().toISOString()
  const said = {
    name: `Ada ${mark}`,
    email: `ada-${mark}@example.test`,
    first: `first ${mark}`,
    then: `then ${mark}`,
    draft: `draft ${mark}`,
  }
  await store.append(
    `org-${tenantId}`,
    [
      event('user.joined', {
        userId,
        accountId: uuid(),
        type: 'human',
        role: 'member',
        email: said.email,
        displayName: said.name,
        at,
      }),
    ],
    { expectedRevision: 'any' },
  )
  await store.append(
    `message-${messageId}`,
    [
      event('message.created', {
        messageId,
        roomId,
        authorId: userId,
        authorType: 'user',
        text: said.first,
        threadRootId: null,
        mentions: [],
        at,
      }),
      event('message.updated', { messageId, roomId, text: said.then, previousText: said.first, mentions: [], at }, userId),
    ],
    { expectedRevision: 'no_stream' },
  )
  await store.append(`draft-${roomId}_${userId}`, [event('draft.saved', { roomId, userId, text: said.draft, at })], {
    expectedRevision: 'no_stream',
  })
  return { userId, messageId, roomId, said }
}

const dataOf = (events: RecordedEvent[], type: string) => events.find((e) => e.type === type)!.data as Record<string, unknown>

async function rowsHolding(needle: string): Promise<number> {
  const { rows } = await pool.query<{ n: number }>('select count(*)::int as n from eventstore.events where data::text like $1', [
    `%${needle}%`,
  ])
  return rows[0]!.n
}

describe('withPersonalData', () => {
  it('encrypts personal fields at rest and reads them back on every read path', async () => {
    const store = withPersonalData(raw, keys(), personalData)
    const { messageId, roomId, said } = await history(store)
    for (const text of Object.values(said)) expect(await rowsHolding(text)).toBe(0)
    const stored = dataOf(await raw.readStream(`message-${messageId}`), 'message.updated')
    expect(stored.text).toMatchObject({ $pd: 1 })
    expect(stored.roomId).toBe(roomId)

    const stream = await store.readStream(`message-${messageId}`)
    expect(dataOf(stream, 'message.updated')).toMatchObject({ text: said.then, previousText: said.first })
    const tenant = await store.readTenant(tenantId, { types: ['user.joined', 'message.created', 'draft.saved'] })
    expect(dataOf(tenant, 'user.joined')).toMatchObject({ displayName: said.name, email: said.email })
    expect(dataOf(tenant, 'draft.saved')).toMatchObject({ text: said.draft })
    const all = await store.readAll()
    expect(all.map((e) => JSON.stringify(e.data)).join('\n')).toContain(said.first)
    const subscription = store.subscribeAll()
    for await (const batch of subscription) {
      expect(JSON.stringify(batch.map((e) => e.data))).toContain(said.then)
      break
    }
    await subscription.close()
  })

  it('reads an erased person’s fields as their placeholders, and stores what is written after erasure erased', async () => {
    const store = withPersonalData(raw, keys(), personalData)
    const { userId, messageId, roomId, said } = await history(store)
    await store.append(`erasure-${userId}`, [event('user.erased', { userId, at: new Date().toISOString() })], {
      expectedRevision: 'no_stream',
    })
    expect(dataOf(await store.readStream(`message-${messageId}`), 'message.created')).toMatchObject({ text: '', roomId })
    expect(dataOf(await store.readStream(`message-${messageId}`), 'message.updated')).toMatchObject({
      text: '',
      previousText: '',
    })
    const tenant = await store.readTenant(tenantId, { types: ['user.joined', 'draft.saved'], match: { userId } })
    expect(dataOf(tenant, 'user.joined')).toMatchObject({ displayName: '[erased]', email: null, role: 'member' })
    expect(dataOf(tenant, 'draft.saved')).toMatchObject({ text: '' })

    const later = `written later ${uuid()}`
    await store.append(
      `draft-${roomId}_${userId}`,
      [event('draft.saved', { roomId, userId, text: later, at: new Date().toISOString() })],
      {
        expectedRevision: 'any',
      },
    )
    expect(await rowsHolding(later)).toBe(0)
    for (const text of Object.values(said)) expect(await rowsHolding(text)).toBe(0)
  })

  it('passes plaintext stored before encryption through, until its subject is erased', async () => {
    const { userId, messageId, said } = await history(raw)
    const store = withPersonalData(raw, keys(), personalData)
    expect(dataOf(await store.readStream(`message-${messageId}`), 'message.created').text).toBe(said.first)
    await store.append(`erasure-${userId}`, [event('user.erased', { userId, at: new Date().toISOString() })], {
      expectedRevision: 'no_stream',
    })
    expect(dataOf(await store.readStream(`message-${messageId}`), 'message.updated')).toMatchObject({
      text: '',
      previousText: '',
    })
  })

  it('a process that cached a key reads erased once its copy expires or it reads the erasure', async () => {
    const writer = withPersonalData(raw, keys(), personalData)
    const { userId, messageId, said } = await history(writer)
    const cached = withPersonalData(raw, keys(60_000), personalData)
    const uncached = withPersonalData(raw, keys(0), personalData)
    const text = async (store: EventStore) => dataOf(await store.readStream(`message-${messageId}`), 'message.created').text
    expect(await text(cached)).toBe(said.first)
    expect(await text(uncached)).toBe(said.first)

    // Another process erases: this one's copies are its own until they expire.
    await writer.append(`erasure-${userId}`, [event('user.erased', { userId, at: new Date().toISOString() })], {
      expectedRevision: 'no_stream',
    })
    expect(await text(writer)).toBe('')
    expect(await text(uncached)).toBe('')
    expect(await text(cached)).toBe(said.first)
    expect((await cached.readStream(`erasure-${userId}`)).map((e) => e.type)).toEqual(['user.erased'])
    expect(await text(cached)).toBe('')
  })

  it('refuses keys wrapped under another master key, and ciphertext moved to another event', async () => {
    const store = withPersonalData(raw, keys(), personalData)
    const { messageId } = await history(store)
    const stranger = withPersonalData(raw, keys(0, new Sealer(randomBytes(32))), personalData)
    await expect(stranger.readStream(`message-${messageId}`)).rejects.toThrow(DataKeyUnwrapError)

    const [created] = await raw.readStream(`message-${messageId}`)
    const moved = uuid()
    await raw.append(`message-${moved}`, [{ ...event('message.created', created!.data), id: uuid() }], {
      expectedRevision: 'no_stream',
    })
    await expect(store.readStream(`message-${moved}`)).rejects.toThrow()
  })
})
