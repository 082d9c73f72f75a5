import { sql } from 'kysely'
import type { RecordedEvent } from '../adapters/event-store.ts'
import type { DomainEvent } from '../domain/decider.ts'
import { deliveredEventTypes, realtimePayload, type realtimePayloads } from '../domain/realtime-payloads.ts'
import type { ProjectionTransaction, Projector } from './engine.ts'
import type { Delivery, RealtimeOutbox } from './realtime-outbox.ts'

type Data = Record<string, unknown> & { roomId?: string; spaceId?: string; userId?: string; taskId?: string; scope?: string }

/** The events the fan-out reads: those its allow-list delivers (their data is read through `Data`). */
type Delivered = DomainEvent<keyof typeof realtimePayloads>

/**
 * One tenant's audience tables as the fan-out keeps them in memory: loaded once (four selects), then changed by
 * the same events that change the tables, so computing who may see an event reads no table.
 */
type Audience = {
  readonly users: Map<string, { role: string; active: boolean }>
  readonly rooms: Map<string, { visibility: string; kind: string }>
  /** Members by room, as fanout_members holds them (a member row needs no room row). */
  readonly members: Map<string, Set<string>>
  readonly spaces: Map<string, { kind: string; ownerId: string }>
  /**
   * Tasks: the room each lives in and the people who may read it whatever the room says (domain/tasks.ts
   * canReadTask), by user, with how they are on it (reporter, assignee, assistant, watcher).
   */
  readonly tasks: Map<string, { roomId: string; people: Map<string, Set<string>> }>
}

async function loadAudience(trx: ProjectionTransaction, tenantId: string): Promise<Audience> {
  const [users, rooms, members, spaces, tasks, taskPeople] = await Promise.all([
    sql<{ user_id: string; role: string; active: boolean }>`
      select user_id, role, active from fanout_users where tenant_id = ${tenantId}`.execute(trx),
    sql<{ room_id: string; visibility: string; kind: string }>`
      select room_id, visibility, kind from fanout_rooms where tenant_id = ${tenantId}`.execute(trx),
    sql<{ room_id: string; user_id: string }>`
      select room_id, user_id from fanout_members where tenant_id = ${tenantId}`.execute(trx),
    sql<{ space_id: string; kind: string; owner_id: string }>`
      select space_id, kind, owner_id from fanout_spaces where tenant_id = ${tenantId}`.execute(trx),
    sql<{ task_id: string; room_id: string }>`
      select task_id, room_id from fanout_tasks where tenant_id = ${tenantId}`.execute(trx),
    sql<{ task_id: string; user_id: string; relation: string }>`
      select task_id, user_id, relation from fanout_task_people where tenant_id = ${tenantId}`.execute(trx),
  ])
  const audience: Audience = { users: new Map(), rooms: new Map(), members: new Map(), spaces: new Map(), tasks: new Map() }
  for (const u of users.rows) audience.users.set(u.user_id, { role: u.role, active: u.active })
  for (const r of rooms.rows) audience.rooms.set(r.room_id, { visibility: r.visibility, kind: r.kind })
  for (const m of members.rows) addMember(audience, m.room_id, m.user_id)
  for (const sp of spaces.rows) audience.spaces.set(sp.space_id, { kind: sp.kind, ownerId: sp.owner_id })
  for (const t of tasks.rows) audience.tasks.set(t.task_id, { roomId: t.room_id, people: new Map() })
  for (const p of taskPeople.rows) addTaskPerson(audience, p.task_id, p.user_id, p.relation)
  return audience
}

const addTaskPerson = (a: Audience, taskId: string, userId: string, relation: string) => {
  const people = a.tasks.get(taskId)?.people
  if (!people) return
  const relations = people.get(userId)
  if (relations) relations.add(relation)
  else people.set(userId, new Set([relation]))
}

const removeTaskPerson = (a: Audience, taskId: string, userId: string, relation: string) => {
  const people = a.tasks.get(taskId)?.people
  const relations = people?.get(userId)
  if (!relations) return
  relations.delete(relation)
  if (relations.size === 0) people!.delete(userId)
}

/** Who may read a task: its room's readers and its people (domain/tasks.ts canReadTask). */
const taskReaders = (a: Audience, taskId: string): string[] => {
  const t = a.tasks.get(taskId)
  if (!t) return []
  return [...new Set([...roomReaders(a, t.roomId), ...t.people.keys()])]
}

/** A change of one person's place on a task, in the table and in memory. */
async function taskPerson(
  trx: ProjectionTransaction,
  tenantId: string,
  a: Audience | null,
  change: { taskId: string; userId: string; relation: string; added: boolean },
): Promise<void> {
  const { taskId, userId, relation } = change
  if (change.added) {
    await sql`insert into fanout_task_people values (${tenantId}, ${taskId}, ${userId}, ${relation})
              on conflict do nothing`.execute(trx)
    if (a) addTaskPerson(a, taskId, userId, relation)
  } else {
    await sql`delete from fanout_task_people where tenant_id = ${tenantId} and task_id = ${taskId}
               and user_id = ${userId} and relation = ${relation}`.execute(trx)
    if (a) removeTaskPerson(a, taskId, userId, relation)
  }
}

const addMember = (a: Audience, roomId: string, userId: string) => {
  const set = a.members.get(roomId)
  if (set) set.add(userId)
  else a.members.set(roomId, new Set([userId]))
}

const roomReaders = (a: Audience, roomId: string): string[] => {
  const readers = new Set(a.members.get(roomId))
  const room = a.rooms.get(roomId)
  if (room?.visibility === 'public' && room.kind === 'room') {
    for (const [userId, u] of a.users) if (u.active && u.role !== 'guest') readers.add(userId)
  }
  return [...readers]
}

const activeUsers = (a: Audience): string[] => [...a.users].filter(([, u]) => u.active).map(([userId]) => userId)

const admins = (a: Audience): string[] =>
  [...a.users].filter(([, u]) => u.active && (u.role === 'owner' || u.role === 'admin')).map(([userId]) => userId)

/** Keeps the audience tables current with one event; called before (and for removals, after) computing it. */
async function evolveAudience(trx: ProjectionTransaction, tenantId: string, e: RecordedEvent, a: Audience | null): Promise<void> {
  const d = e.data as Data & Record<string, never>
  switch (e.type) {
    case 'user.joined':
      await sql`insert into fanout_users values (${tenantId}, ${d.userId}, ${d.role}, true)
                on conflict (tenant_id, user_id) do update set role = excluded.role, active = true`.execute(trx)
      a?.users.set(d.userId!, { role: (e.data as { role: string }).role, active: true })
      break
    case 'user.role_changed': {
      await sql`update fanout_users set role = ${d.role} where tenant_id = ${tenantId} and user_id = ${d.userId}`.execute(trx)
      const u = a?.users.get(d.userId!)
      if (u) u.role = (e.data as { role: string }).role
      break
    }
    case 'user.deactivated': {
      await sql`update fanout_users set active = false where tenant_id = ${tenantId} and user_id = ${d.userId}`.execute(trx)
      const u = a?.users.get(d.userId!)
      if (u) u.active = false
      break
    }
    case 'room.created': {
      const room = e.data as { roomId: string; visibility: string; kind: string; members: { memberId: string }[] }
      await sql`insert into fanout_rooms values (${tenantId}, ${room.roomId}, ${room.visibility}, ${room.kind})
                on conflict do nothing`.execute(trx)
      if (room.members.length) {
        await sql`insert into fanout_members
                  select ${tenantId}::uuid, ${room.roomId}::uuid, m from unnest(${room.members.map((m) => m.memberId)}::uuid[]) m
                  on conflict do nothing`.execute(trx)
      }
      if (a && !a.rooms.has(room.roomId)) a.rooms.set(room.roomId, { visibility: room.visibility, kind: room.kind })
      if (a) for (const m of room.members) addMember(a, room.roomId, m.memberId)
      break
    }
    case 'room.member_added': {
      const memberId = (e.data as { memberId: string }).memberId
      await sql`insert into fanout_members values (${tenantId}, ${d.roomId}, ${memberId}) on conflict do nothing`.execute(trx)
      if (a) addMember(a, d.roomId!, memberId)
      break
    }
    case 'room.member_removed': {
      const memberId = (e.data as { memberId: string }).memberId
      await sql`delete from fanout_members
                 where tenant_id = ${tenantId} and room_id = ${d.roomId} and user_id = ${memberId}`.execute(trx)
      a?.members.get(d.roomId!)?.delete(memberId)
      break
    }
    case 'space.created': {
      const s = e.data as { spaceId: string; kind: string; ownerId: string }
      await sql`insert into fanout_spaces values (${tenantId}, ${s.spaceId}, ${s.kind}, ${s.ownerId}) on conflict do nothing`.execute(
        trx,
      )
      if (a && !a.spaces.has(s.spaceId)) a.spaces.set(s.spaceId, { kind: s.kind, ownerId: s.ownerId })
      break
    }
    case 'task.created': {
      const t = e.data as { taskId: string; roomId: string; reporterId: string; assignee: { id: string } | null }
      await sql`insert into fanout_tasks values (${tenantId}, ${t.taskId}, ${t.roomId}) on conflict do nothing`.execute(trx)
      if (a && !a.tasks.has(t.taskId)) a.tasks.set(t.taskId, { roomId: t.roomId, people: new Map() })
      await taskPerson(trx, tenantId, a, { taskId: t.taskId, userId: t.reporterId, relation: 'reporter', added: true })
      if (t.assignee)
        await taskPerson(trx, tenantId, a, { taskId: t.taskId, userId: t.assignee.id, relation: 'assignee', added: true })
      break
    }
    case 'task.assigned': {
      const { taskId, assignee } = e.data as { taskId: string; assignee: { id: string } | null }
      await sql`delete from fanout_task_people
                 where tenant_id = ${tenantId} and task_id = ${taskId} and relation = 'assignee'`.execute(trx)
      const people = a?.tasks.get(taskId)?.people
      for (const userId of people ? [...people.keys()] : []) removeTaskPerson(a!, taskId, userId, 'assignee')
      if (assignee) await taskPerson(trx, tenantId, a, { taskId, userId: assignee.id, relation: 'assignee', added: true })
      break
    }
    case 'task.assistant_added':
    case 'task.assistant_removed':
    case 'task.watcher_added':
    case 'task.watcher_removed': {
      const d = e.data as { taskId: string; agentId?: string; userId?: string }
      const relation = e.type.startsWith('task.assistant') ? 'assistant' : 'watcher'
      await taskPerson(trx, tenantId, a, {
        taskId: d.taskId,
        userId: (d.agentId ?? d.userId)!,
        relation,
        added: e.type.endsWith('_added'),
      })
      break
    }
    case 'task.deleted': {
      const { taskId } = e.data as { taskId: string }
      await sql`delete from fanout_task_people where tenant_id = ${tenantId} and task_id = ${taskId}`.execute(trx)
      await sql`delete from fanout_tasks where tenant_id = ${tenantId} and task_id = ${taskId}`.execute(trx)
      a?.tasks.delete(taskId)
      break
    }
  }
}

const TASK_LEAVES = new Set(['task.assigned', 'task.assistant_removed', 'task.watcher_removed', 'task.deleted'])

/** Who may see an event, as of its position. */
function audience(a: Audience, e: RecordedEvent): string[] {
  const d = e.data as Data
  if (e.type.startsWith('task.')) return d.taskId ? taskReaders(a, d.taskId) : []
  // An artifact of a live task is read by the task's readers; otherwise (a room's, or its task deleted) by the room's.
  // Spending is the admins' business; a room's or task's cap is also its readers' (as GET /api/limits shows it).
  if (e.type === 'usage.recorded') return admins(a)
  if (e.type.startsWith('usage.')) {
    const scoped =
      d.scope === 'room' && d.roomId ? roomReaders(a, d.roomId) : d.scope === 'task' && d.taskId ? taskReaders(a, d.taskId) : []
    return [...new Set([...admins(a), ...scoped])]
  }
  if (e.type.startsWith('artifact.'))
    return d.taskId && a.tasks.has(d.taskId) ? taskReaders(a, d.taskId) : d.roomId ? roomReaders(a, d.roomId) : []
  // An agent's thread and runs are its room's: who may read the room sees them.
  if (e.type.startsWith('message.') || e.type.startsWith('room.') || e.type.startsWith('thread.') || e.type.startsWith('run.'))
    return d.roomId ? roomReaders(a, d.roomId) : []
  if (e.type.startsWith('space.')) {
    const s = d.spaceId ? a.spaces.get(d.spaceId) : undefined
    if (!s) return []
    return s.kind === 'personal' ? [s.ownerId] : activeUsers(a)
  }
  // Every user of the org, active or not: whose streams may hold what an erased person said.
  if (e.type === 'user.erased') return [...a.users.keys()]
  if (e.type.startsWith('user.')) return activeUsers(a)
  // Agents are listed to every user of the org (GET /api/agents), so is each new version of a role prompt.
  if (e.type === 'agent.role_prompt_set') return activeUsers(a)
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
  const audiences = new Map<string, Audience>()
  // Batches are told apart by their transaction. The memory changes with each batch as it applies; a batch that
  // did not reach afterCommit (it failed, or another runner's went first) may have left changes the tables do
  // not have: the next batch then starts from the tables again.
  let batch: ProjectionTransaction | null = null
  let uncommitted = false
  return {
    name: 'realtime',
    version: 1,
    schema: 'tenant',
    tables: ['fanout_users', 'fanout_rooms', 'fanout_members', 'fanout_spaces', 'fanout_tasks', 'fanout_task_people'],
    // The allow-list's keys, the types it is typed by.
    eventTypes: [...deliveredEventTypes] as Delivered['type'][],
    async apply(trx, events) {
      if (trx !== batch) {
        if (uncommitted) audiences.clear()
        batch = trx
      }
      uncommitted = true
      const deliveries: Delivery[] = []
      for (const e of events) {
        const tenantId = e.metadata.tenantId
        if (!tenantId) continue
        if (!outbox) {
          await evolveAudience(trx, tenantId, e, null)
          continue
        }
        let a = audiences.get(tenantId)
        if (!a) {
          a = await loadAudience(trx, tenantId)
          audiences.set(tenantId, a)
        }
        // A member who leaves still hears that they left; one who joins hears that they joined. Someone taken off a
        // task (unassigned, no longer an assistant or watcher, or the task deleted) hears it too.
        const before =
          e.type === 'room.member_removed' || e.type === 'user.deactivated' || TASK_LEAVES.has(e.type) ? audience(a, e) : []
        await evolveAudience(trx, tenantId, e, a)
        const delivered = realtimePayload(e.type, e.data)
        if (!delivered) continue
        deliveries.push({
          position: e.position,
          type: delivered.type,
          occurredAt: e.metadata.occurredAt,
          data: delivered.data,
          users: [...new Set([...before, ...audience(a, e)])],
        })
      }
      await outbox?.record(trx, deliveries)
    },
    ...(outbox
      ? {
          afterCommit: () => {
            uncommitted = false
            outbox.committed()
          },
        }
      : {}),
  }
}
