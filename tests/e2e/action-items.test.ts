import { v7 as uuid } from 'uuid'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createKysely, createPool } from '../../adapters/postgres.ts'
import { actionItemsProjector } from '../../projections/action-items.ts'
import { verify } from '../../projections/rebuild.ts'
import { join, signUp } from '../support/identity.ts'
import { operatorToken } from '../support/operator.ts'
import { startTestServer, type TestServer } from '../support/server.ts'

const SERVICE_TOKEN = 'action-items-service-token-0123456789abcdef'

let server: TestServer
let alice: Awaited<ReturnType<typeof signUp>>
let bob: Awaited<ReturnType<typeof join>>
let carol: Awaited<ReturnType<typeof join>>
let mallory: Awaited<ReturnType<typeof signUp>>
let roomId: string
let taskId: string

type Item = { id: string; kind: string; taskId: string | null; roomId: string | null; questionId: string | null; text: string }

const post = (token: string, path: string, body: unknown = {}) => server.request('POST', path, { token, body })
const items = async (token: string, position: number, query = ''): Promise<Item[]> => {
  const r = await server.request('GET', `/api/action-items?consistentAfter=${position}${query}`, { token })
  expect(r.status, JSON.stringify(r.body)).toBe(200)
  return r.body.items
}
const counts = async (token: string, position: number) => {
  const r = await server.request('GET', `/api/action-items/counts?consistentAfter=${position}`, { token })
  expect(r.status, JSON.stringify(r.body)).toBe(200)
  return r.body as { total: number; byKind: Record<string, number>; rooms: { roomId: string; count: number }[] }
}

beforeAll(async () => {
  server = await startTestServer({ SERVICE_TOKEN })
  alice = await signUp(server, { email: 'alice@actions.test', orgName: 'Actions Inc', username: 'alice' })
  bob = await join(server, alice.token, { email: 'bob@actions.test', role: 'member', username: 'bob' })
  carol = await join(server, alice.token, { email: 'carol@actions.test', role: 'member', username: 'carol' })
  mallory = await signUp(server, { email: 'mallory@evil-actions.test', orgName: 'Evil Actions', username: 'mallory' })
  const room = await post(alice.token, '/api/rooms', { name: 'Release', visibility: 'private' })
  roomId = room.body.roomId
  expect((await post(alice.token, `/api/rooms/${roomId}/members`, { userId: bob.userId })).status).toBe(200)
  const task = await post(alice.token, '/api/tasks', {
    title: 'Ship 2.0',
    roomId,
    assignee: { userId: bob.userId },
    reviewGates: { plan: true, result: false },
  })
  expect(task.status, JSON.stringify(task.body)).toBe(201)
  taskId = task.body.taskId
}, 90_000)

afterAll(async () => {
  await server?.close()
})

describe('approvals waiting', () => {
  it('a submitted plan waits for those who may approve it, until it is decided', async () => {
    const submitted = await post(bob.token, `/api/tasks/${taskId}/plan`, { text: 'Cut the branch, then tag' })
    expect(submitted.status, JSON.stringify(submitted.body)).toBe(200)
    const p = submitted.body.position
    expect(await items(alice.token, p)).toEqual([
      expect.objectContaining({
        id: `approval:${taskId}:plan`,
        kind: 'approval',
        taskId,
        roomId,
        text: 'Cut the branch, then tag',
      }),
    ])
    // Who submitted it does not approve it; who cannot read the task does not see it; nor does another org.
    expect(await items(bob.token, p)).toEqual([])
    expect(await items(carol.token, p)).toEqual([])
    expect(await items(mallory.token, p)).toEqual([])
    expect(await counts(alice.token, p)).toEqual({
      total: 1,
      byKind: { approval: 1, question: 0, limit_reached: 0, tool_approval: 0, failed_run: 0 },
      rooms: [{ roomId, count: 1 }],
    })
    expect((await counts(carol.token, p)).total).toBe(0)
    expect(await items(alice.token, p, `&roomId=${roomId}&kind=approval`)).toHaveLength(1)
    expect(await items(alice.token, p, '&kind=question')).toHaveLength(0)

    const rejected = await post(alice.token, `/api/tasks/${taskId}/approvals`, {
      gate: 'plan',
      decision: 'reject',
      comment: 'tag first',
    })
    expect(rejected.status, JSON.stringify(rejected.body)).toBe(200)
    expect(await items(alice.token, rejected.body.position)).toEqual([])
    const again = await post(bob.token, `/api/tasks/${taskId}/plan`, { text: 'Tag, then cut the branch' })
    expect((await items(alice.token, again.body.position)).map((i) => i.text)).toEqual(['Tag, then cut the branch'])
    const approved = await post(alice.token, `/api/tasks/${taskId}/approvals`, { gate: 'plan', decision: 'approve' })
    expect(approved.status).toBe(200)
    expect(await items(alice.token, approved.body.position)).toEqual([])
    expect((await counts(alice.token, approved.body.position)).total).toBe(0)
  })

  it('a waiting approval goes with its task', async () => {
    const t = await post(alice.token, '/api/tasks', {
      title: 'Doomed',
      roomId,
      assignee: { userId: bob.userId },
      reviewGates: { plan: true },
    })
    const submitted = await post(bob.token, `/api/tasks/${t.body.taskId}/plan`, { text: 'plan' })
    expect(await items(alice.token, submitted.body.position)).toHaveLength(1)
    const deleted = await server.request('DELETE', `/api/tasks/${t.body.taskId}`, { token: alice.token })
    expect(deleted.status).toBe(200)
    expect(await items(alice.token, deleted.body.position)).toEqual([])
  })
})

describe('questions to a person', () => {
  it('wait for the person asked until they answer, once', async () => {
    const asked = await post(bob.token, `/api/tasks/${taskId}/questions`, { toUserId: alice.userId, text: 'Which tag name?' })
    expect(asked.status, JSON.stringify(asked.body)).toBe(201)
    const { questionId, position } = asked.body
    expect(await items(alice.token, position)).toEqual([
      expect.objectContaining({
        id: `question:${questionId}`,
        kind: 'question',
        questionId,
        taskId,
        roomId,
        text: 'Which tag name?',
      }),
    ])
    expect(await items(bob.token, position)).toEqual([])
    expect((await counts(alice.token, position)).byKind.question).toBe(1)

    const notYours = await post(bob.token, `/api/questions/${questionId}/answer`, { text: 'v2.0' })
    expect(notYours.status).toBe(403)
    expect((await post(carol.token, `/api/questions/${questionId}/answer`, { text: 'v2.0' })).status).toBe(404)
    expect((await post(mallory.token, `/api/questions/${questionId}/answer`, { text: 'v2.0' })).status).toBe(404)
    const answered = await post(alice.token, `/api/questions/${questionId}/answer`, { text: 'v2.0.0' })
    expect(answered.status, JSON.stringify(answered.body)).toBe(200)
    expect(await items(alice.token, answered.body.position)).toEqual([])
    const twice = await post(alice.token, `/api/questions/${questionId}/answer`, { text: 'v2.0.1' })
    expect(twice.status).toBe(409)
    expect(twice.body.code).toBe('QUESTION_ANSWERED')
  })

  it('go to an active person of the org who can read the task, from someone who works on it', async () => {
    const cannotRead = await post(bob.token, `/api/tasks/${taskId}/questions`, { toUserId: carol.userId, text: 'Help?' })
    expect(cannotRead.status).toBe(422)
    expect(cannotRead.body.code).toBe('QUESTION_RECIPIENT_CANNOT_READ')
    const stranger = await post(bob.token, `/api/tasks/${taskId}/questions`, { toUserId: mallory.userId, text: 'Help?' })
    expect(stranger.status).toBe(422)
    expect(stranger.body.code).toBe('QUESTION_RECIPIENT_INVALID')
    expect((await post(carol.token, `/api/tasks/${taskId}/questions`, { toUserId: alice.userId, text: 'Hi' })).status).toBe(404)
    expect((await post(mallory.token, `/api/tasks/${taskId}/questions`, { toUserId: alice.userId, text: 'Hi' })).status).toBe(404)
    expect((await post(bob.token, `/api/tasks/${uuid()}/questions`, { toUserId: alice.userId, text: 'Hi' })).status).toBe(404)
    const bad = await post(bob.token, `/api/tasks/${taskId}/questions`, { toUserId: 'nobody', text: '' })
    expect(bad.status).toBe(400)
    expect(JSON.stringify(bad.body.errors)).toContain('toUserId')
    expect((await post(alice.token, `/api/questions/${uuid()}/answer`, { text: 'x' })).status).toBe(404)
  })
})

describe('limits reached', () => {
  it('a room’s reached cap waits for its readers until it is raised', async () => {
    const ops = await operatorToken(server)
    const prices = {
      models: {},
      vmMinuteUsd: { small: 0.01 },
      diskGbMonthUsd: 0.1,
      storageGbMonthUsd: 0.02,
    }
    expect((await server.request('PUT', '/control/prices', { token: ops, body: prices })).status).toBe(200)
    const capped = await server.request('PUT', '/api/limits', {
      token: alice.token,
      body: { scope: 'room', scopeId: roomId, usd: 1 },
    })
    expect(capped.status, JSON.stringify(capped.body)).toBe(200)
    const spent = await server.request('POST', '/api/internal/usage/records', {
      token: SERVICE_TOKEN,
      body: {
        tenantId: alice.orgId,
        recordId: uuid(),
        roomId,
        usage: { kind: 'vm', vmId: uuid(), size: 'small', minutes: 200 },
      },
    })
    expect(spent.status, JSON.stringify(spent.body)).toBe(201)
    const limit = (await items(bob.token, spent.body.position)).filter((i) => i.kind === 'limit_reached')
    expect(limit).toEqual([
      expect.objectContaining({ id: `limit:room:${roomId}`, roomId, limitMicroUsd: 1_000_000, usedMicroUsd: 2_000_000 }),
    ])
    expect((await items(carol.token, spent.body.position)).filter((i) => i.kind === 'limit_reached')).toEqual([])
    expect((await counts(bob.token, spent.body.position)).rooms).toEqual([{ roomId, count: 1 }])
    // Raised, but not above what was spent: still reached. Above it: resolved.
    const low = await server.request('PUT', '/api/limits', {
      token: alice.token,
      body: { scope: 'room', scopeId: roomId, usd: 2 },
    })
    expect((await items(bob.token, low.body.position)).filter((i) => i.kind === 'limit_reached')).toHaveLength(1)
    const raised = await server.request('PUT', '/api/limits', {
      token: alice.token,
      body: { scope: 'room', scopeId: roomId, usd: 10 },
    })
    expect(raised.status).toBe(200)
    expect((await items(bob.token, raised.body.position)).filter((i) => i.kind === 'limit_reached')).toEqual([])
  })
})

describe('the list', () => {
  it('pages newest first, and refuses a bad cursor or filter', async () => {
    let last = 0
    for (const text of ['q1', 'q2', 'q3']) {
      const r = await post(bob.token, `/api/tasks/${taskId}/questions`, { toUserId: alice.userId, text })
      last = r.body.position
    }
    const first = await server.request('GET', `/api/action-items?limit=2&consistentAfter=${last}`, { token: alice.token })
    expect(first.body.items.map((i: Item) => i.text)).toEqual(['q3', 'q2'])
    const next = await server.request('GET', `/api/action-items?limit=2&cursor=${first.body.nextCursor}`, { token: alice.token })
    expect(next.body.items.map((i: Item) => i.text)).toEqual(['q1'])
    expect(next.body.nextCursor).toBeNull()
    expect((await server.request('GET', '/api/action-items?cursor=bogus', { token: alice.token })).status).toBe(400)
    expect((await server.request('GET', '/api/action-items?kind=nope', { token: alice.token })).status).toBe(400)
    expect((await server.request('GET', '/api/action-items?roomId=x', { token: alice.token })).status).toBe(400)
  })
})

describe('rebuilds', () => {
  it('the action items, rebuilt from the events, equal the live ones', async () => {
    const owner = createKysely(createPool(server.database.url))
    try {
      const r = await verify({ store: server.services.store, db: owner }, actionItemsProjector)
      expect(r.differences).toEqual([])
      expect(r.rows.action_items).toBeGreaterThan(0)
    } finally {
      await owner.destroy()
    }
  })
})
