import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type AnyDb, createKysely, createPool } from '../../adapters/postgres.ts'
import { realtimeProjector } from '../../projections/realtime.ts'
import { verify } from '../../projections/rebuild.ts'
import { tasksProjector } from '../../projections/tasks.ts'
import { join, signInAgent, signUp } from '../support/identity.ts'
import { outboxDrained } from '../support/realtime-client.ts'
import { eventCount, startTestServer, type TestServer } from '../support/server.ts'

type Who = { token: string; userId: string }
type Queue = { queueId: string; lastEventId: string }
type Delivered = { type: string; data: Record<string, unknown> }

let server: TestServer
let owner: AnyDb
let alice: Awaited<ReturnType<typeof signUp>>
let bob: Who
let carol: Who
let gina: Who
let dave: Who
let mallory: Awaited<ReturnType<typeof signUp>>
let builder: Who & { agentId: string; position: number }
let outsider: Who & { agentId: string; position: number }
/** A private room of alice, bob and the builder agent. */
let eng: string
let lobby: string

const call = (who: { token: string }, method: string, path: string, body?: unknown) =>
  server.request(method, path, { token: who.token, ...(body === undefined ? {} : { body }) })

const ok = async (who: { token: string }, method: string, path: string, body?: unknown) => {
  const r = await call(who, method, path, body)
  expect(r.status, `${method} ${path}: ${JSON.stringify(r.body)}`).toBeLessThan(300)
  return r.body
}

/** A task as `who` reads it once the command at `position` is reflected. */
const read = async (who: { token: string }, taskId: string, position: number) => {
  const r = await call(who, 'GET', `/api/tasks/${taskId}?consistentAfter=${position}`)
  return r.status === 200 ? r.body : r.status
}

const refused = async (who: { token: string }, method: string, path: string, body: unknown, status: number, code: string) => {
  const r = await call(who, method, path, body)
  expect({ status: r.status, code: r.body?.code }, JSON.stringify(r.body)).toEqual({ status, code })
  return r.body
}

const create = (who: { token: string }, body: Record<string, unknown>) => ok(who, 'POST', '/api/tasks', body)

beforeAll(async () => {
  // A loaded machine may hold the read models back past the default wait: reads here wait longer, never fail stale.
  server = await startTestServer({ CONSISTENCY_TIMEOUT_MS: '30000' })
  owner = createKysely(createPool(server.database.url))
  alice = await signUp(server, { email: 'alice@tasks.test', orgName: 'Tasks Inc', username: 'alice' })
  bob = await join(server, alice.token, { email: 'bob@tasks.test', role: 'member', username: 'bob' })
  carol = await join(server, alice.token, { email: 'carol@tasks.test', role: 'member', username: 'carol' })
  gina = await join(server, alice.token, { email: 'gina@tasks.test', role: 'guest', username: 'gina' })
  dave = await join(server, alice.token, { email: 'dave@tasks.test', role: 'member', username: 'dave' })
  mallory = await signUp(server, { email: 'mallory@evil.test', orgName: 'Evil Tasks', username: 'mallory' })
  builder = await signInAgent(server, alice.token, { name: 'Builder' })
  outsider = await signInAgent(server, alice.token, { name: 'Outsider' })
  // Rooms add members the users read model knows.
  await ok(alice, 'GET', `/api/users?consistentAfter=${Math.max(builder.position, outsider.position)}`)
  await ok(alice, 'DELETE', `/api/users/${dave.userId}`)
  eng = (await ok(alice, 'POST', '/api/rooms', { name: 'Eng', visibility: 'private' })).roomId
  await ok(alice, 'POST', `/api/rooms/${eng}/members`, { userId: bob.userId })
  await ok(alice, 'POST', `/api/rooms/${eng}/members`, { agentId: builder.agentId })
  lobby = (await ok(alice, 'POST', '/api/rooms', { name: 'Lobby', visibility: 'public' })).roomId
}, 120_000)
afterAll(async () => {
  await owner?.destroy()
  await server?.close()
})

describe('creating and reading tasks', () => {
  it('a task lives in the org’s home room by default; its reporter is the caller', async () => {
    const { taskId, position } = await create(bob, { title: '  Write the docs ', description: 'all of them' })
    const t = await read(bob, taskId, position)
    expect(t).toMatchObject({
      id: taskId,
      title: 'Write the docs',
      description: 'all of them',
      roomId: alice.homeRoomId,
      parentId: null,
      reporterId: bob.userId,
      assignee: null,
      status: 'open',
      effectiveStatus: 'open',
      assistants: [],
      watchers: [],
      dependencies: [],
      subtasks: [],
      reviewGates: { plan: { required: false, state: 'not_submitted' }, result: { required: false, state: 'not_submitted' } },
    })
    const list = await ok(carol, 'GET', `/api/tasks?consistentAfter=${position}&roomId=${alice.homeRoomId}`)
    expect(list.items.map((i: { id: string }) => i.id)).toContain(taskId)
    expect(list.nextCursor).toBeNull()
  })

  it('another org’s task is 404 to read, change and delete; another org’s room cannot hold a task', async () => {
    const { taskId, position } = await create(alice, { title: 'Ours' })
    expect(await read(mallory, taskId, position)).toBe(404)
    await refused(mallory, 'PATCH', `/api/tasks/${taskId}`, { status: 'done' }, 404, 'NOT_FOUND')
    await refused(mallory, 'DELETE', `/api/tasks/${taskId}`, undefined, 404, 'NOT_FOUND')
    await refused(mallory, 'PUT', `/api/tasks/${taskId}/watchers/${mallory.userId}`, undefined, 404, 'NOT_FOUND')
    await refused(mallory, 'POST', '/api/tasks', { title: 'Theirs', roomId: alice.homeRoomId }, 404, 'ROOM_NOT_FOUND')
    const list = await ok(mallory, 'GET', `/api/tasks?consistentAfter=${position}`)
    expect(list.items.map((i: { id: string }) => i.id)).not.toContain(taskId)
  })

  it('a private room’s task is hidden from those outside it, unless they are on the task', async () => {
    const { taskId, position } = await create(alice, { title: 'Secret', roomId: eng })
    expect(await read(carol, taskId, position)).toBe(404)
    await refused(carol, 'POST', '/api/tasks', { title: 'Sneak', roomId: eng }, 404, 'ROOM_NOT_FOUND')
    await refused(carol, 'PATCH', `/api/tasks/${taskId}`, { title: 'Mine' }, 404, 'TASK_NOT_FOUND')
    expect((await read(bob, taskId, position)).title).toBe('Secret')
    // Bob takes it, then leaves the room: as its assignee he keeps reading it.
    await ok(alice, 'PATCH', `/api/tasks/${taskId}`, { assignee: { userId: bob.userId } })
    const left = await ok(bob, 'DELETE', `/api/rooms/${eng}/members/${bob.userId}`)
    expect((await read(bob, taskId, left.position)).assignee).toEqual({ id: bob.userId, type: 'user' })
    await ok(alice, 'POST', `/api/rooms/${eng}/members`, { userId: bob.userId })
  })

  it('bad input is 400 with the fields named', async () => {
    const r = await call(alice, 'POST', '/api/tasks', { title: '', assignee: { userId: bob.userId, agentId: builder.agentId } })
    expect(r.status).toBe(400)
    expect(r.body.errors.map((e: { path: string }) => e.path).sort()).toEqual(['assignee', 'title'])
    expect((await call(alice, 'PATCH', `/api/tasks/${alice.homeRoomId}`, {})).status).toBe(400)
    expect((await call(alice, 'PATCH', `/api/tasks/${alice.homeRoomId}`, { status: 'finished' })).status).toBe(400)
    expect((await call(alice, 'GET', '/api/tasks?assignee=somebody')).status).toBe(400)
  })
})

describe('who may be assigned', () => {
  it('a deactivated user, a guest without the room, an agent not in the room, or nobody known: 422 with the reason', async () => {
    const at = (assignee: unknown, roomId = eng) => ({ title: 'Assign me', roomId, assignee })
    await refused(alice, 'POST', '/api/tasks', at({ userId: dave.userId }), 422, 'TASK_ASSIGNEE_DEACTIVATED')
    await refused(alice, 'POST', '/api/tasks', at({ userId: gina.userId }, lobby), 422, 'TASK_ASSIGNEE_NO_ACCESS')
    await refused(alice, 'POST', '/api/tasks', at({ userId: carol.userId }), 422, 'TASK_ASSIGNEE_NO_ACCESS')
    await refused(alice, 'POST', '/api/tasks', at({ agentId: outsider.agentId }), 422, 'TASK_ASSIGNEE_NOT_IN_ROOM')
    await refused(alice, 'POST', '/api/tasks', at({ userId: mallory.userId }), 422, 'TASK_ASSIGNEE_UNKNOWN')
    await refused(alice, 'POST', '/api/tasks', at({ userId: builder.agentId }), 422, 'TASK_ASSIGNEE_UNKNOWN')
    const { taskId } = await create(alice, { title: 'Later', roomId: eng })
    await refused(
      alice,
      'PATCH',
      `/api/tasks/${taskId}`,
      { assignee: { agentId: outsider.agentId } },
      422,
      'TASK_ASSIGNEE_NOT_IN_ROOM',
    )
    // A guest who is a member of the room, and an agent in it, may be.
    await ok(alice, 'POST', `/api/rooms/${lobby}/members`, { userId: gina.userId })
    await create(alice, at({ userId: gina.userId }, lobby))
    await create(alice, at({ agentId: builder.agentId }))
  })
})

describe('statuses', () => {
  it('an illegal transition is 422 naming the allowed ones; done and cancelled reopen', async () => {
    const { taskId } = await create(bob, { title: 'Flow' })
    await ok(bob, 'PATCH', `/api/tasks/${taskId}`, { status: 'blocked' })
    const p = await refused(bob, 'PATCH', `/api/tasks/${taskId}`, { status: 'done' }, 422, 'TASK_TRANSITION_INVALID')
    expect(p.detail).toContain('allowed: open, in_progress, cancelled')
    await ok(bob, 'PATCH', `/api/tasks/${taskId}`, { status: 'in_progress' })
    const done = await ok(bob, 'PATCH', `/api/tasks/${taskId}`, { status: 'done' })
    expect((await read(bob, taskId, done.position)).effectiveStatus).toBe('done')
    const q = await refused(bob, 'PATCH', `/api/tasks/${taskId}`, { status: 'in_progress' }, 422, 'TASK_TRANSITION_INVALID')
    expect(q.detail).toContain('allowed: open')
    const reopened = await ok(bob, 'PATCH', `/api/tasks/${taskId}`, { status: 'open' })
    expect((await read(bob, taskId, reopened.position)).status).toBe('open')
  })

  it('a change is all or nothing: a refused status leaves the title as it was', async () => {
    const { taskId } = await create(bob, { title: 'Atomic' })
    await refused(
      bob,
      'PATCH',
      `/api/tasks/${taskId}`,
      { title: 'Changed', status: 'open', assignee: { userId: dave.userId } },
      422,
      'TASK_ASSIGNEE_DEACTIVATED',
    )
    const same = await ok(bob, 'PATCH', `/api/tasks/${taskId}`, { status: 'open' })
    expect((await read(bob, taskId, same.position ?? 0)).title).toBe('Atomic')
  })

  it('the reporter, assignee, room members and admins change a task; a reader of a public room does not', async () => {
    const { taskId } = await create(bob, { title: 'Lobby work', roomId: lobby })
    await refused(carol, 'PATCH', `/api/tasks/${taskId}`, { title: 'Hijacked' }, 403, 'FORBIDDEN')
    await ok(alice, 'PATCH', `/api/tasks/${taskId}`, { title: 'Admin renamed' })
    // Anyone who reads it may watch it; watching does not make it theirs to change.
    const watched = await ok(carol, 'PUT', `/api/tasks/${taskId}/watchers/${carol.userId}`)
    expect((await read(carol, taskId, watched.position)).watchers).toEqual([carol.userId])
    await refused(carol, 'PATCH', `/api/tasks/${taskId}`, { title: 'Hijacked' }, 403, 'FORBIDDEN')
  })
})

describe('subtasks', () => {
  it('a parent is done only once its subtasks are; a subtask of a done parent does not reopen', async () => {
    const parent = await create(alice, { title: 'Parent', roomId: eng })
    const child = await create(bob, { title: 'Child', parentId: parent.taskId })
    const t = await read(alice, child.taskId, child.position)
    expect(t).toMatchObject({ parentId: parent.taskId, roomId: eng })
    expect((await read(alice, parent.taskId, child.position)).subtasks).toEqual([
      { taskId: child.taskId, title: 'Child', status: 'open' },
    ])
    await refused(alice, 'PATCH', `/api/tasks/${parent.taskId}`, { status: 'done' }, 422, 'TASK_SUBTASKS_OPEN')
    await ok(bob, 'PATCH', `/api/tasks/${child.taskId}`, { status: 'done' })
    await ok(alice, 'PATCH', `/api/tasks/${parent.taskId}`, { status: 'done' })
    await refused(bob, 'PATCH', `/api/tasks/${child.taskId}`, { status: 'open' }, 422, 'TASK_PARENT_CLOSED')
    await refused(bob, 'POST', '/api/tasks', { title: 'Late child', parentId: parent.taskId }, 422, 'TASK_PARENT_CLOSED')
    await refused(bob, 'POST', '/api/tasks', { title: 'Orphan', parentId: eng }, 404, 'TASK_PARENT_NOT_FOUND')
    // A parent with subtasks is deleted after them.
    await refused(alice, 'DELETE', `/api/tasks/${parent.taskId}`, undefined, 422, 'TASK_HAS_SUBTASKS')
    await ok(bob, 'DELETE', `/api/tasks/${child.taskId}`)
    const gone = await ok(alice, 'DELETE', `/api/tasks/${parent.taskId}`)
    expect(await read(alice, parent.taskId, gone.position)).toBe(404)
  })

  it('a subtask refused (its title, its assignee) lists nothing on its parent', async () => {
    const parent = await create(alice, { title: 'Parent of none', roomId: eng })
    const before = await eventCount(server)
    await refused(alice, 'POST', '/api/tasks', { title: '   ', parentId: parent.taskId }, 422, 'TASK_TITLE_INVALID')
    await refused(
      alice,
      'POST',
      '/api/tasks',
      { title: 'Sub', parentId: parent.taskId, assignee: { userId: dave.userId } },
      422,
      'TASK_ASSIGNEE_DEACTIVATED',
    )
    await refused(
      carol,
      'POST',
      '/api/tasks',
      { title: 'Sub', parentId: parent.taskId, roomId: lobby },
      404,
      'TASK_PARENT_NOT_FOUND',
    )
    expect(await eventCount(server)).toBe(before)
    // Retried under its id, a subtask's creation answers as the first time.
    const id = '01935c7e-5a4b-7c2d-8e9f-0a1b2c3d4e5f'
    const first = await create(alice, { id, title: 'Once', parentId: parent.taskId })
    const again = await create(alice, { id, title: 'Once', parentId: parent.taskId })
    expect(again).toEqual(first)
    expect((await read(alice, parent.taskId, first.position)).subtasks).toHaveLength(1)
  })

  it('closing a parent and creating its subtask at once never leave a done parent with an open child', async () => {
    for (let i = 0; i < 6; i++) {
      const parent = await create(alice, { title: `Race ${i}` })
      const [closed, child] = await Promise.all([
        call(alice, 'PATCH', `/api/tasks/${parent.taskId}`, { status: 'done' }),
        call(alice, 'POST', '/api/tasks', { title: `Racer ${i}`, parentId: parent.taskId }),
      ])
      // Exactly one wins: the close (the child is refused) or the child (the close is refused).
      const outcome = [closed.status, closed.body?.code ?? null, child.status, child.body?.code ?? null]
      expect([
        [200, null, 422, 'TASK_PARENT_CLOSED'],
        [422, 'TASK_SUBTASKS_OPEN', 201, null],
      ]).toContainEqual(outcome)
      const position = Math.max(closed.body.position ?? 0, child.body.position ?? 0)
      const p = await read(alice, parent.taskId, position)
      if (p.status === 'done') expect(p.subtasks.filter((s: { status: string }) => s.status === 'open')).toEqual([])
    }
  })
})

describe('depends-on links', () => {
  it('link across rooms, wait for them, refuse a cycle (422) and another org’s task (404)', async () => {
    const a = await create(alice, { title: 'A', roomId: eng })
    const b = await create(bob, { title: 'B', roomId: lobby })
    const c = await create(bob, { title: 'C' })
    const ab = await ok(alice, 'POST', `/api/tasks/${a.taskId}/dependencies`, { taskId: b.taskId })
    expect(await read(alice, a.taskId, ab.position)).toMatchObject({
      effectiveStatus: 'waiting_for_dependencies',
      openDependencies: 1,
      dependencies: [{ taskId: b.taskId, title: 'B', status: 'open' }],
    })
    await ok(bob, 'POST', `/api/tasks/${b.taskId}/dependencies`, { taskId: c.taskId })
    await refused(bob, 'POST', `/api/tasks/${b.taskId}/dependencies`, { taskId: a.taskId }, 422, 'TASK_DEPENDENCY_CYCLE')
    await refused(bob, 'POST', `/api/tasks/${c.taskId}/dependencies`, { taskId: a.taskId }, 422, 'TASK_DEPENDENCY_CYCLE')
    await refused(bob, 'POST', `/api/tasks/${c.taskId}/dependencies`, { taskId: c.taskId }, 422, 'TASK_DEPENDENCY_CYCLE')
    const theirs = await create(mallory, { title: 'Theirs' })
    await refused(
      alice,
      'POST',
      `/api/tasks/${a.taskId}/dependencies`,
      { taskId: theirs.taskId },
      404,
      'TASK_DEPENDENCY_NOT_FOUND',
    )
    // Carol cannot read A (a private room): she cannot link to it.
    const own = await create(carol, { title: 'Carol’s' })
    await refused(carol, 'POST', `/api/tasks/${own.taskId}/dependencies`, { taskId: a.taskId }, 404, 'TASK_DEPENDENCY_NOT_FOUND')
    // Two links closing a cycle at once: one lands, the other is refused.
    const x = await create(bob, { title: 'X' })
    const y = await create(bob, { title: 'Y' })
    const [xy, yx] = await Promise.all([
      call(bob, 'POST', `/api/tasks/${x.taskId}/dependencies`, { taskId: y.taskId }),
      call(bob, 'POST', `/api/tasks/${y.taskId}/dependencies`, { taskId: x.taskId }),
    ])
    expect([xy.status, yx.status].sort()).toEqual([200, 422])
    expect([xy.body.code, yx.body.code]).toContain('TASK_DEPENDENCY_CYCLE')
    await ok(bob, 'PATCH', `/api/tasks/${b.taskId}`, { status: 'cancelled' })
    const done = await ok(alice, 'DELETE', `/api/tasks/${a.taskId}/dependencies/${b.taskId}`)
    expect(await read(alice, a.taskId, done.position)).toMatchObject({ effectiveStatus: 'open', dependencies: [] })
  })
})

describe('a task’s whole life, with review gates and realtime', () => {
  it('its members hear every change; someone outside its room hears nothing of it', async () => {
    const register = async (who: Who): Promise<Queue> =>
      ok(who, 'POST', '/realtime/register', { eventTypes: ['workspace.task_changed'] })
    const queues = new Map<Who, Queue>([
      [bob, await register(bob)],
      [carol, await register(carol)],
    ])
    const { taskId } = await create(alice, {
      title: 'Ship it',
      roomId: eng,
      assignee: { agentId: builder.agentId },
      reviewGates: { plan: true, result: true },
    })
    await refused(builder, 'PATCH', `/api/tasks/${taskId}`, { status: 'in_progress' }, 422, 'TASK_PLAN_NOT_APPROVED')
    await refused(builder, 'PATCH', `/api/tasks/${taskId}`, { reviewGates: { plan: false } }, 403, 'FORBIDDEN')
    await refused(bob, 'POST', `/api/tasks/${taskId}/plan`, { text: 'not mine' }, 403, 'FORBIDDEN')
    const plan = await ok(builder, 'POST', `/api/tasks/${taskId}/plan`, { text: '1. build 2. test' })
    expect(await read(bob, taskId, plan.position)).toMatchObject({
      effectiveStatus: 'waiting_for_approval',
      reviewGates: { plan: { state: 'pending', text: '1. build 2. test', submittedBy: builder.agentId } },
    })
    const pending = await ok(alice, 'GET', `/api/tasks?reviewPending=true&consistentAfter=${plan.position}`)
    expect(pending.items.map((t: { id: string }) => t.id)).toEqual([taskId])
    await refused(builder, 'POST', `/api/tasks/${taskId}/approvals`, { gate: 'plan', decision: 'approve' }, 403, 'FORBIDDEN')
    await ok(bob, 'POST', `/api/tasks/${taskId}/approvals`, { gate: 'plan', decision: 'reject', comment: 'test first' })
    await ok(builder, 'POST', `/api/tasks/${taskId}/plan`, { text: '1. test 2. build' })
    await ok(bob, 'POST', `/api/tasks/${taskId}/approvals`, { gate: 'plan', decision: 'approve' })
    const started = await ok(builder, 'PATCH', `/api/tasks/${taskId}`, { status: 'in_progress' })
    expect((await read(bob, taskId, started.position)).effectiveStatus).toBe('working')
    await refused(builder, 'PATCH', `/api/tasks/${taskId}`, { status: 'done' }, 422, 'TASK_RESULT_NOT_APPROVED')
    await ok(builder, 'POST', `/api/tasks/${taskId}/result`, { text: 'shipped in #42' })
    const closed = await ok(alice, 'POST', `/api/tasks/${taskId}/approvals`, {
      gate: 'result',
      decision: 'approve',
      comment: 'great',
    })
    expect(await read(bob, taskId, closed.position)).toMatchObject({
      status: 'done',
      effectiveStatus: 'done',
      reviewGates: { result: { state: 'approved', decidedBy: alice.userId, comment: 'great' } },
    })

    const got: Delivered[] = []
    const q = queues.get(bob)!
    const deadline = Date.now() + 15_000
    while (!got.some((e) => e.data.change === 'task.status_changed' && e.data.to === 'done') && Date.now() < deadline) {
      const r = await ok(bob, 'GET', `/realtime/events?queueId=${q.queueId}&lastEventId=${q.lastEventId}&dontBlock=true`)
      for (const e of r.events) {
        q.lastEventId = e.id
        if (e.data.taskId === taskId) got.push({ type: e.type, data: e.data })
      }
      await new Promise((resolve) => setTimeout(resolve, 50))
    }
    expect(got.every((e) => e.type === 'workspace.task_changed')).toBe(true)
    expect(got.map((e) => e.data.change)).toEqual([
      'task.created',
      'task.review_submitted',
      'task.review_decided',
      'task.review_submitted',
      'task.review_decided',
      'task.status_changed',
      'task.review_submitted',
      'task.review_decided',
      'task.status_changed',
    ])
    expect(got[0]!.data).toMatchObject({
      taskId,
      title: 'Ship it',
      roomId: eng,
      assignee: { id: builder.agentId, type: 'agent' },
    })
    expect(got[2]!.data).toMatchObject({ gate: 'plan', decision: 'reject', comment: 'test first' })
    expect(JSON.stringify(got)).not.toMatch(/"by"/)

    await outboxDrained(owner)
    const c = queues.get(carol)!
    const heard = await ok(carol, 'GET', `/realtime/events?queueId=${c.queueId}&lastEventId=${c.lastEventId}&dontBlock=true`)
    expect(heard.events.filter((e: Delivered) => e.data.taskId === taskId)).toEqual([])
  })

  it('assistants stand beside a person; watchers must be able to read the room; people taken off hear it', async () => {
    const register = await ok(carol, 'POST', '/realtime/register', { eventTypes: ['workspace.task_changed'] })
    const { taskId } = await create(alice, { title: 'Pair', roomId: eng, assignee: { agentId: builder.agentId } })
    await refused(
      alice,
      'PUT',
      `/api/tasks/${taskId}/assistants/${builder.agentId}`,
      undefined,
      422,
      'TASK_ASSISTANT_NEEDS_PERSON',
    )
    await ok(alice, 'PATCH', `/api/tasks/${taskId}`, { assignee: { userId: bob.userId } })
    await refused(
      alice,
      'PUT',
      `/api/tasks/${taskId}/assistants/${outsider.agentId}`,
      undefined,
      422,
      'TASK_ASSISTANT_NOT_IN_ROOM',
    )
    await refused(alice, 'PUT', `/api/tasks/${taskId}/assistants/${carol.userId}`, undefined, 422, 'TASK_ASSISTANT_NOT_AGENT')
    await ok(alice, 'PUT', `/api/tasks/${taskId}/assistants/${builder.agentId}`)
    await refused(alice, 'PUT', `/api/tasks/${taskId}/watchers/${gina.userId}`, undefined, 422, 'TASK_WATCHER_NO_ACCESS')
    await refused(alice, 'PUT', `/api/tasks/${taskId}/watchers/${carol.userId}`, undefined, 422, 'TASK_WATCHER_NO_ACCESS')
    // The assistant may submit work and read the task as the assignee does.
    const added = await ok(bob, 'PUT', `/api/tasks/${taskId}/watchers/${bob.userId}`)
    expect(await read(builder, taskId, added.position)).toMatchObject({ assistants: [builder.agentId], watchers: [bob.userId] })
    // Reassigning to an agent leaves no person to assist.
    const moved = await ok(alice, 'PATCH', `/api/tasks/${taskId}`, { assignee: { agentId: builder.agentId } })
    expect((await read(alice, taskId, moved.position)).assistants).toEqual([])
    // Carol is not in the room: no event of this task reached her.
    await outboxDrained(owner)
    const heard = await ok(
      carol,
      'GET',
      `/realtime/events?queueId=${register.queueId}&lastEventId=${register.lastEventId}&dontBlock=true`,
    )
    expect(heard.events.filter((e: Delivered) => e.data.taskId === taskId)).toEqual([])
  })

  it('a task is deleted by an admin or its reporter, nobody else', async () => {
    const { taskId } = await create(bob, { title: 'Doomed' })
    await refused(carol, 'DELETE', `/api/tasks/${taskId}`, undefined, 403, 'FORBIDDEN')
    const gone = await ok(bob, 'DELETE', `/api/tasks/${taskId}`)
    expect(await read(bob, taskId, gone.position)).toBe(404)
    await refused(bob, 'PATCH', `/api/tasks/${taskId}`, { title: 'Back' }, 404, 'TASK_NOT_FOUND')
    const other = await create(carol, { title: 'Admin deletes' })
    await ok(alice, 'DELETE', `/api/tasks/${other.taskId}`)
  })
})

describe('rebuilds', () => {
  it('the tasks read model and the fan-out’s task tables, rebuilt from the events, equal the live ones', async () => {
    for (const p of [tasksProjector, realtimeProjector()]) {
      const r = await verify({ store: server.services.store, db: owner }, p)
      expect(r.differences, p.name).toEqual([])
      if (p === tasksProjector) expect(r.rows.tasks).toBeGreaterThan(10)
      else expect(r.rows.fanout_tasks).toBeGreaterThan(10)
    }
  })
})
