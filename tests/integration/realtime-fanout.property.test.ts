import fc from 'fast-check'
import { v7 as uuid } from 'uuid'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { comparePositions, type EventStore } from '../../adapters/event-store.ts'
import { createLogger } from '../../adapters/logger.ts'
import { type AnyDb, createKysely, createPool, type PgPool } from '../../adapters/postgres.ts'
import { PostgresEventStore } from '../../adapters/postgres-event-store.ts'
import { PostgresUserStreams } from '../../adapters/postgres-user-streams.ts'
import { STREAM_START_ID } from '../../adapters/user-streams.ts'
import { messageStream } from '../../commands/messages.ts'
import { type CommandContext, handleCommand } from '../../commands/pipeline.ts'
import { loadRoom, roomStream } from '../../commands/rooms.ts'
import { DomainError } from '../../domain/decider.ts'
import { message } from '../../domain/messages.ts'
import { type ActorRole, room } from '../../domain/rooms.ts'
import { upcasters } from '../../domain/upcasting.ts'
import { ProjectionEngine } from '../../projections/engine.ts'
import { realtimeProjector } from '../../projections/realtime.ts'
import { RealtimeOutbox } from '../../projections/realtime-outbox.ts'
import { createTestDatabase, type TestDatabase } from '../support/db.ts'
import { appendUsersJoined } from '../support/org-events.ts'
import { outboxDrained } from '../support/realtime-client.ts'

let database: TestDatabase
let pool: PgPool
let db: AnyDb
let store: EventStore

beforeAll(async () => {
  database = await createTestDatabase()
  pool = createPool(database.url, { max: 10 })
  db = createKysely(pool)
  store = new PostgresEventStore(pool)
})
afterAll(async () => {
  await store.close()
  await db.destroy()
  await database.drop()
})

type Op =
  | { op: 'create'; actor: number; visibility: 'public' | 'private' }
  | { op: 'join'; actor: number; room: number }
  | { op: 'add'; actor: number; room: number; target: number }
  | { op: 'leave'; actor: number; room: number }
  | { op: 'post'; actor: number; room: number }
  | { op: 'edit'; actor: number; message: number }
  | { op: 'delete'; actor: number; message: number }

const USERS = 4
const ROLES: ActorRole[] = ['member', 'member', 'guest', 'admin']
const actor = fc.integer({ min: 0, max: USERS - 1 })
const ref = fc.integer({ min: 0, max: 5 })
const opArb: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ op: fc.constant('create' as const), actor, visibility: fc.constantFrom('public' as const, 'private' as const) }),
  fc.record({ op: fc.constant('join' as const), actor, room: ref }),
  fc.record({ op: fc.constant('add' as const), actor, room: ref, target: actor }),
  fc.record({ op: fc.constant('leave' as const), actor, room: ref }),
  fc.record({ op: fc.constant('post' as const), actor, room: ref }),
  fc.record({ op: fc.constant('post' as const), actor, room: ref }),
  fc.record({ op: fc.constant('edit' as const), actor, message: ref }),
  fc.record({ op: fc.constant('delete' as const), actor, message: ref }),
)

/** The oracle: who could read each accepted event, computed from the events alone with plain sets. */
class Oracle {
  rooms = new Map<string, { visibility: string; members: Set<string> }>()
  received = new Map<string, string[]>()
  readonly users: string[]
  readonly roles: Map<string, ActorRole>
  constructor(users: string[], roles: Map<string, ActorRole>) {
    this.users = users
    this.roles = roles
    for (const u of users) this.received.set(u, [])
  }
  readers(roomId: string): Set<string> {
    const r = this.rooms.get(roomId)!
    const out = new Set(r.members)
    if (r.visibility === 'public') for (const u of this.users) if (this.roles.get(u) !== 'guest') out.add(u)
    return out
  }
  deliver(users: Iterable<string>, label: string) {
    for (const u of users) this.received.get(u)!.push(label)
  }
  accept(type: string, data: any) {
    const before = data.roomId && this.rooms.has(data.roomId) ? this.readers(data.roomId) : new Set<string>()
    if (type === 'room.created')
      this.rooms.set(data.roomId, { visibility: data.visibility, members: new Set(data.members.map((m: any) => m.memberId)) })
    if (type === 'room.member_added') this.rooms.get(data.roomId)!.members.add(data.memberId)
    if (type === 'room.member_removed') this.rooms.get(data.roomId)!.members.delete(data.memberId)
    const after = this.readers(data.roomId)
    const label = `${type}:${data.messageId ?? data.memberId ?? data.roomId}`
    this.deliver(type === 'room.member_removed' ? new Set([...before, ...after]) : after, label)
  }
}

const labelOf = (type: string, data: any) =>
  `${type === 'workspace.room_changed' ? data.change : type}:${data.messageId ?? data.memberId ?? data.roomId}`

it('each user receives exactly the events they could read at that event’s position: no leak, loss or duplicate, in order', async () => {
  await fc.assert(
    fc.asyncProperty(fc.array(opArb, { minLength: 5, maxLength: 40 }), async (ops) => {
      const tenantId = uuid()
      const users = Array.from({ length: USERS }, () => uuid())
      const roles = new Map(users.map((u, i) => [u, ROLES[i]!]))
      const ctx = (i: number): CommandContext => ({
        tenantId,
        actor: { type: 'user', id: users[i]! },
        correlationId: uuid(),
        causationId: null,
        now: () => new Date(),
        newId: uuid,
      })
      const deps = { store, upcasters: upcasters({}) }
      await appendUsersJoined(
        store,
        tenantId,
        users.map((userId, i) => ({ userId, role: ROLES[i]! })),
      )
      const oracle = new Oracle(users, roles)
      // Each joining user is heard by everyone who has joined so far, themselves included.
      for (let i = 0; i < users.length; i++) oracle.deliver(users.slice(0, i + 1), 'workspace.user_changed')
      const rooms: string[] = []
      const messages: string[] = []
      const at = () => new Date().toISOString()
      for (const o of ops) {
        const a = { userId: users[o.actor]!, role: roles.get(users[o.actor]!)! }
        try {
          let result: { events: readonly { type: string; data: unknown }[] } | null = null
          if (o.op === 'create') {
            const roomId = uuid()
            result = await handleCommand(
              deps,
              room,
              roomStream(roomId),
              { type: 'create', roomId, name: 'r', spaceId: null, visibility: o.visibility, actor: a, at: at() },
              ctx(o.actor),
            )
            rooms.push(roomId)
          } else if (o.op === 'join' || o.op === 'add' || o.op === 'leave') {
            const roomId = rooms[o.room % Math.max(rooms.length, 1)]
            if (!roomId) continue
            const target = o.op === 'add' ? users[o.target]! : a.userId
            result = await handleCommand(
              deps,
              room,
              roomStream(roomId),
              o.op === 'leave'
                ? { type: 'remove_member', roomId, memberId: target, actor: a, at: at() }
                : { type: 'add_member', roomId, memberId: target, memberType: 'user', actor: a, at: at() },
              ctx(o.actor),
            )
          } else if (o.op === 'post') {
            const roomId = rooms[o.room % Math.max(rooms.length, 1)]
            if (!roomId) continue
            const messageId = uuid()
            const roomState = await loadRoom(store, roomId, tenantId)
            result = await handleCommand(
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
                room: roomState,
                actor: { ...a, type: 'user' },
                at: at(),
              },
              ctx(o.actor),
            )
            messages.push(messageId)
          } else {
            const messageId = messages[o.message % Math.max(messages.length, 1)]
            if (!messageId) continue
            const first = (await store.readStream(messageStream(messageId), { maxCount: 1 }))[0]!
            const roomState = await loadRoom(store, (first.data as { roomId: string }).roomId, tenantId)
            result = await handleCommand(
              deps,
              message,
              messageStream(messageId),
              o.op === 'edit'
                ? { type: 'edit', messageId, text: `edit ${uuid()}`, mentions: [], room: roomState, actor: a, at: at() }
                : { type: 'delete', messageId, room: roomState, actor: a, at: at() },
              ctx(o.actor),
            )
          }
          for (const e of result?.events ?? []) oracle.accept(e.type, e.data)
        } catch (e) {
          if (!(e instanceof DomainError)) throw e
        }
      }

      const streams = new PostgresUserStreams(pool)
      const logger = createLogger('silent')
      const outbox = new RealtimeOutbox({ db, streams, logger })
      const engine = new ProjectionEngine({ store, db, logger }, [{ ...realtimeProjector(outbox), name: `realtime-${tenantId}` }])
      // The target is this run's last event, whatever else is in flight on the cluster: readers see it only once
      // every older transaction ended, and the engine must have applied it.
      const { position: head } = await store.append(
        `marker-${tenantId}`,
        [
          {
            id: uuid(),
            type: 'test.marker',
            data: {},
            metadata: {
              tenantId,
              actor: { type: 'system', id: 't' },
              correlationId: 'c',
              causationId: null,
              occurredAt: new Date().toISOString(),
              schemaVersion: 1,
            },
          },
        ],
        { expectedRevision: 'no_stream' },
      )
      engine.start()
      while (!engine.statuses()[0] || comparePositions(engine.statuses()[0]!.checkpoint, head) < 0)
        await new Promise((r) => setTimeout(r, 5))
      await engine.stop()
      await outboxDrained(db)
      await outbox.close()

      for (const u of users) {
        const { events } = await streams.read(u, STREAM_START_ID, 10_000)
        const got = events.map((e) => (e.type === 'workspace.user_changed' ? e.type : labelOf(e.type, e.data)))
        expect(got, `events of ${roles.get(u)} ${u}`).toEqual(oracle.received.get(u))
        expect(new Set(events.map((e) => e.id)).size).toBe(events.length)
      }
      await streams.close()
    }),
    { numRuns: 25 },
  )
}, 120_000)
