import { sql } from 'kysely'
import type { RecordedEvent } from '../adapters/event-store.ts'
import type { DomainEvent } from '../domain/decider.ts'
import { deliveredEventTypes, realtimePayload, type realtimePayloads } from '../domain/realtime-payloads.ts'
import type { ProjectionTransaction, Projector } from './engine.ts'
import type { Delivery, RealtimeOutbox } from './realtime-outbox.ts'

type Data = Record<string, unknown> & { roomId?: string; spaceId?: string; userId?: string }

/** The events the fan-out reads: those its allow-list delivers (their data is read through `Data`). */
type Delivered = DomainEvent<keyof typeof realtimePayloads>

const roomReaders = async (trx: ProjectionTransaction, tenantId: string, roomId: string): Promise<string[]> => {
  const { rows } = await sql<{ user_id: string }>`
    select m.user_id from fanout_members m
     where m.tenant_id = ${tenantId} and m.room_id = ${roomId}
    union
    select u.user_id from fanout_users u
      join fanout_rooms r on r.tenant_id = u.tenant_id and r.room_id = ${roomId}
     where u.tenant_id = ${tenantId} and u.active and u.role <> 'guest' and r.visibility = 'public' and r.kind = 'room'`.execute(
    trx,
  )
  return rows.map((r) => r.user_id)
}

const activeUsers = async (trx: ProjectionTransaction, tenantId: string): Promise<string[]> => {
  const { rows } = await sql<{ user_id: string }>`
    select user_id from fanout_users where tenant_id = ${tenantId} and active`.execute(trx)
  return rows.map((r) => r.user_id)
}

/** Every user of the org, active or not: whose streams may hold what an erased person said. */
const everyUser = async (trx: ProjectionTransaction, tenantId: string): Promise<string[]> => {
  const { rows } = await sql<{ user_id: string }>`select user_id from fanout_users where tenant_id = ${tenantId}`.execute(trx)
  return rows.map((r) => r.user_id)
}

/** Keeps the audience tables current with one event; called before (and for removals, after) computing it. */
async function evolveAudience(trx: ProjectionTransaction, tenantId: string, e: RecordedEvent): Promise<void> {
  const d = e.data as Data & Record<string, never>
  switch (e.type) {
    case 'user.joined':
      await sql`insert into fanout_users values (${tenantId}, ${d.userId}, ${d.role}, true)
                on conflict (tenant_id, user_id) do update set role = excluded.role, active = true`.execute(trx)
      break
    case 'user.role_changed':
      await sql`update fanout_users set role = ${d.role} where tenant_id = ${tenantId} and user_id = ${d.userId}`.execute(trx)
      break
    case 'user.deactivated':
      await sql`update fanout_users set active = false where tenant_id = ${tenantId} and user_id = ${d.userId}`.execute(trx)
      break
    case 'room.created': {
      const room = e.data as { roomId: string; visibility: string; kind: string; members: { memberId: string }[] }
      await sql`insert into fanout_rooms values (${tenantId}, ${room.roomId}, ${room.visibility}, ${room.kind})
                on conflict do nothing`.execute(trx)
      for (const m of room.members) {
        await sql`insert into fanout_members values (${tenantId}, ${room.roomId}, ${m.memberId}) on conflict do nothing`.execute(
          trx,
        )
      }
      break
    }
    case 'room.member_added':
      await sql`insert into fanout_members values (${tenantId}, ${d.roomId}, ${(e.data as { memberId: string }).memberId})
                on conflict do nothing`.execute(trx)
      break
    case 'room.member_removed':
      await sql`delete from fanout_members
                 where tenant_id = ${tenantId} and room_id = ${d.roomId} and user_id = ${(e.data as { memberId: string }).memberId}`.execute(
        trx,
      )
      break
    case 'space.created': {
      const s = e.data as { spaceId: string; kind: string; ownerId: string }
      await sql`insert into fanout_spaces values (${tenantId}, ${s.spaceId}, ${s.kind}, ${s.ownerId}) on conflict do nothing`.execute(
        trx,
      )
      break
    }
  }
}

/** Who may see an event, as of its position. */
async function audience(trx: ProjectionTransaction, tenantId: string, e: RecordedEvent): Promise<string[]> {
  const d = e.data as Data
  if (e.type.startsWith('message.') || e.type.startsWith('room.')) return d.roomId ? roomReaders(trx, tenantId, d.roomId) : []
  if (e.type.startsWith('space.')) {
    const { rows } = await sql<{ kind: string; owner_id: string }>`
      select kind, owner_id from fanout_spaces where tenant_id = ${tenantId} and space_id = ${d.spaceId}`.execute(trx)
    const s = rows[0]
    if (!s) return []
    return s.kind === 'personal' ? [s.owner_id] : activeUsers(trx, tenantId)
  }
  if (e.type === 'user.erased') return everyUser(trx, tenantId)
  if (e.type.startsWith('user.')) return activeUsers(trx, tenantId)
  return []
}

/**
 * Delivers each event, cut to its allow-listed payload (domain/realtime-payloads.ts: an event type not listed there is
 * not delivered), to the stream of every user who may see it at that event's position. The batch records
 * its deliveries in the outbox, in its transaction; the outbox appends them to the streams after the commit,
 * each with the event's global position as its id, so a repeat is refused by the stream instead of delivered
 * twice. Without an outbox (a rebuild) it keeps its audience tables and delivers nothing.
 */
export function realtimeProjector(outbox?: RealtimeOutbox): Projector<Delivered> {
  return {
    name: 'realtime',
    version: 1,
    schema: 'tenant',
    tables: ['fanout_users', 'fanout_rooms', 'fanout_members', 'fanout_spaces'],
    // The allow-list's keys, the types it is typed by.
    eventTypes: [...deliveredEventTypes] as Delivered['type'][],
    async apply(trx, events) {
      const deliveries: Delivery[] = []
      for (const e of events) {
        const tenantId = e.metadata.tenantId
        if (!tenantId) continue
        if (!outbox) {
          await evolveAudience(trx, tenantId, e)
          continue
        }
        // A member who leaves still hears that they left; one who joins hears that they joined.
        const before = e.type === 'room.member_removed' || e.type === 'user.deactivated' ? await audience(trx, tenantId, e) : []
        await evolveAudience(trx, tenantId, e)
        const delivered = realtimePayload(e.type, e.data)
        if (!delivered) continue
        deliveries.push({
          position: e.position,
          type: delivered.type,
          occurredAt: e.metadata.occurredAt,
          data: delivered.data,
          users: [...new Set([...before, ...(await audience(trx, tenantId, e))])],
        })
      }
      await outbox?.record(trx, deliveries)
    },
    ...(outbox ? { afterCommit: () => outbox.kick() } : {}),
  }
}
