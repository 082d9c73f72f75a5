import { v7 as uuid } from 'uuid'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type ItemsField, type RealtimePayload, type RestResource, realtimePayloads } from '../../domain/realtime-payloads.ts'
import { realtimeProjector } from '../../projections/realtime.ts'
import { createAgent, join, signUp } from '../support/identity.ts'
import { operatorToken } from '../support/operator.ts'
import { startTestServer, type TestServer } from '../support/server.ts'

type Who = { token: string; userId: string }

const SERVICE_TOKEN = 'payloads-service-token-0123456789abcdef'
type Queue = { queueId: string; lastEventId: string }
type Delivered = { type: string; data: Record<string, unknown> }

const table = realtimePayloads as Readonly<Record<string, RealtimePayload<Record<string, unknown>>>>

let server: TestServer
let owner: Who
let admin: Who
let member: Who
let guest: Who
/** What each receiver got over realtime, and what REST shows them of each resource those events are about. */
const received = new Map<string, Delivered[]>()
const rest = new Map<string, Partial<Record<RestResource, Record<string, unknown>>>>()

const ok = async (method: string, path: string, who: Who, body?: unknown) => {
  const r = await server.request(method, path, { token: who.token, ...(body === undefined ? {} : { body }) })
  expect(r.status, `${method} ${path}: ${JSON.stringify(r.body)}`).toBeLessThan(300)
  return r.body
}

/** Polls without blocking until `last` arrives: everything the receiver was sent before it, in order. */
async function drain(who: Who, q: Queue, last: (e: Delivered) => boolean): Promise<Delivered[]> {
  const got: Delivered[] = []
  const deadline = Date.now() + 15_000
  while (Date.now() < deadline) {
    const r = await ok('GET', `/realtime/events?queueId=${q.queueId}&lastEventId=${q.lastEventId}&dontBlock=true`, who)
    for (const e of r.events) {
      q.lastEventId = e.id
      got.push({ type: e.type, data: e.data })
    }
    if (got.some(last)) return got
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  throw new Error(`no final event among ${got.length} for ${who.userId}`)
}

beforeAll(async () => {
  server = await startTestServer({ SERVICE_TOKEN })
  const signedUp = await signUp(server, { email: 'owner@payloads.test', orgName: 'Payloads', username: 'owner' })
  owner = signedUp
  const queues = new Map<Who, Queue>([[owner, await ok('POST', '/realtime/register', owner, {})]])
  admin = await join(server, owner.token, { email: 'admin@payloads.test', role: 'admin', username: 'admin' })
  member = await join(server, owner.token, { email: 'member@payloads.test', role: 'member', username: 'member' })
  guest = await join(server, owner.token, { email: 'guest@payloads.test', role: 'guest', username: 'guest' })
  for (const who of [admin, member, guest]) queues.set(who, await ok('POST', '/realtime/register', who, {}))

  // Every user hears of a user joining, changing role and leaving.
  const leaver = await join(server, owner.token, { email: 'leaver@payloads.test', role: 'member', username: 'leaver' })
  await ok('PATCH', `/api/users/${member.userId}`, owner, { role: 'admin' })
  await ok('PATCH', `/api/users/${member.userId}`, owner, { role: 'member' })
  await ok('DELETE', `/api/users/${leaver.userId}`, owner)

  // A public room the guest is a member of: everyone keeps reading it, so everyone has a REST view of it.
  const { roomId } = await ok('POST', '/api/rooms', owner, { name: 'Room', visibility: 'public' })
  for (const who of [guest, admin, member]) await ok('POST', `/api/rooms/${roomId}/members`, owner, { userId: who.userId })
  await ok('PATCH', `/api/rooms/${roomId}`, owner, { name: 'Renamed', description: 'about' })
  const { messageId } = await ok('POST', `/api/rooms/${roomId}/messages`, owner, { text: 'hello @member' })
  await ok('PATCH', `/api/messages/${messageId}`, owner, { text: 'hello again @member' })
  await ok('PUT', `/api/messages/${messageId}/reactions/tada`, member)
  const doomed = await ok('POST', `/api/rooms/${roomId}/messages`, member, { text: 'to delete' })
  await ok('DELETE', `/api/messages/${doomed.messageId}`, member)
  const from = await ok('POST', `/api/rooms/${roomId}/messages`, owner, { text: 'range 1' })
  await ok('POST', `/api/rooms/${roomId}/messages`, owner, { text: 'range 2' })
  await ok('POST', `/api/rooms/${roomId}/messages/delete-range`, owner, { fromMessageId: from.messageId })
  // A task in the room, through every change a task has (tests/e2e/tasks.test.ts proves the rules).
  const helper = await createAgent(server, owner.token, { name: 'Helper' })
  await ok('GET', `/api/users?consistentAfter=${helper.position}`, owner)
  await ok('POST', `/api/rooms/${roomId}/members`, owner, { agentId: helper.agentId })
  // Every user hears of a new version of an agent's role prompt.
  await ok('PUT', `/api/agents/${helper.agentId}/role-prompt`, owner, { rolePrompt: { role: 'helps', rules: ['be brief'] } })
  const { taskId } = await ok('POST', '/api/tasks', owner, {
    title: 'Task',
    roomId,
    assignee: { userId: member.userId },
    reviewGates: { plan: true, result: true },
  })
  const task = `/api/tasks/${taskId}`
  await ok('PATCH', task, owner, { title: 'Task renamed', description: 'about' })
  await ok('POST', `${task}/plan`, member, { text: 'the plan' })
  await ok('POST', `${task}/approvals`, owner, { gate: 'plan', decision: 'approve', comment: 'fine' })
  await ok('PATCH', task, owner, { reviewGates: { result: false }, status: 'in_progress' })
  await ok('PUT', `${task}/assistants/${helper.agentId}`, owner)
  await ok('DELETE', `${task}/assistants/${helper.agentId}`, owner)
  await ok('PUT', `${task}/watchers/${guest.userId}`, owner)
  await ok('DELETE', `${task}/watchers/${guest.userId}`, owner)
  const child = await ok('POST', '/api/tasks', owner, { title: 'Child', parentId: taskId })
  await ok('POST', `${task}/dependencies`, owner, { taskId: child.taskId })
  await ok('DELETE', `${task}/dependencies/${child.taskId}`, owner)
  await ok('DELETE', `/api/tasks/${child.taskId}`, owner)
  // Artifacts of the room and of the task: one changed and kept (REST shows it), one deleted.
  const kept = await ok('POST', '/api/artifacts', owner, { kind: 'report', title: 'Report', roomId, content: 'v1' })
  await ok('PATCH', `/api/artifacts/${kept.artifactId}`, owner, { title: 'Report, renamed', content: 'v2' })
  const gone = await ok('POST', '/api/artifacts', owner, { kind: 'link', title: 'Link', taskId, url: 'https://example.com/' })
  await ok('DELETE', `/api/artifacts/${gone.artifactId}`, owner)
  // A cap on the room, then spend past it (as the VM plane records it): the cap set, 80 % and 100 % of it reached
  // (to the admins and the room's readers), the spend (to the admins).
  const ops = await operatorToken(server)
  const prices = { models: {}, vmMinuteUsd: { small: 0.5 }, diskGbMonthUsd: 0, storageGbMonthUsd: 0 }
  expect((await server.request('PUT', '/control/prices', { token: ops, body: prices })).status).toBe(200)
  await ok('PUT', '/api/limits', owner, { scope: 'room', scopeId: roomId, usd: 5 })
  for (const minutes of [9, 2]) {
    const spent = await server.request('POST', '/api/internal/usage/records', {
      token: SERVICE_TOKEN,
      body: { tenantId: signedUp.orgId, recordId: uuid(), roomId, usage: { kind: 'vm', vmId: uuid(), size: 'small', minutes } },
    })
    expect(spent.status, JSON.stringify(spent.body)).toBeLessThan(300)
  }
  await ok('PATCH', task, owner, { assignee: { userId: admin.userId } })
  await ok('DELETE', `/api/rooms/${roomId}/members/${admin.userId}`, owner)
  await ok('POST', `/api/rooms/${roomId}/archive`, owner)
  const { spaceId } = await ok('POST', '/api/spaces', owner, { name: 'Space' })
  await ok('PATCH', `/api/spaces/${spaceId}`, owner, { name: 'Space renamed' })

  for (const [who, q] of queues) {
    received.set(who.userId, await drain(who, q, (e) => e.data.change === 'space.updated'))
    const users = await ok('GET', '/api/users', who)
    const spaces = await ok('GET', '/api/spaces', who)
    rest.set(who.userId, {
      User: users.items.find((u: { id: string }) => u.id === member.userId),
      Room: await ok('GET', `/api/rooms/${roomId}`, who),
      Message: await ok('GET', `/api/messages/${messageId}`, who),
      Space: spaces.items.find((s: { id: string }) => s.id === spaceId),
      Task: await ok('GET', `/api/tasks/${taskId}`, who),
      Artifact: await ok('GET', `/api/artifacts/${kept.artifactId}`, who),
      Limit: (await ok('GET', '/api/limits', who)).items.find((l: { scopeId: string }) => l.scopeId === roomId),
      ...(who === owner || who === admin ? { Usage: await ok('GET', '/api/usage', who) } : {}),
      Agent: await ok('GET', `/api/agents/${helper.agentId}`, who),
    })
  }
}, 120_000)
afterAll(async () => {
  await server?.close()
})

const domainType = (e: Delivered) => (typeof e.data.change === 'string' ? e.data.change : e.type)

describe('realtime payloads are allow-listed', () => {
  it('the fan-out delivers exactly the event types the table lists', () => {
    expect(new Set(Object.keys(table))).toEqual(new Set(realtimeProjector().eventTypes))
  })

  it('the scenario delivers every type in the table', () => {
    const seen = new Set([...received.values()].flat().map(domainType))
    // An erasure removes stream entries under the scenario's polls; tests/e2e/erasure.test.ts delivers it. Agents'
    // threads and runs need a model: tests/e2e/agents.test.ts delivers them and checks their payloads the same way.
    expect([...seen].sort()).toEqual(
      Object.keys(table)
        .filter((t) => t !== 'user.erased' && !t.startsWith('thread.') && !t.startsWith('run.'))
        .sort(),
    )
  })

  it.each([
    ['owner', () => owner],
    ['admin', () => admin],
    ['member', () => member],
    ['guest', () => guest],
  ])('each event an %s receives carries only fields of the REST resource they may read', (_role, receiver) => {
    const who = receiver()
    const views = rest.get(who.userId)!
    for (const e of received.get(who.userId)!) {
      const payload = table[domainType(e)]
      expect(payload, `${e.type} ${domainType(e)}`).toBeDefined()
      const view = views[payload!.resource]!
      for (const [key, value] of Object.entries(e.data)) {
        if (key === 'change') continue
        const shown = payload!.fields[key] as string | ItemsField | undefined
        expect(shown, `${domainType(e)} delivered ${key}, which its table entry does not list`).toBeDefined()
        const field = typeof shown === 'string' ? shown : shown!.field
        expect(Object.keys(view), `${domainType(e)}.${key} as ${payload!.resource}.${field}`).toContain(field)
        if (typeof shown === 'string') continue
        const restItemKeys = Object.keys((view[field] as Record<string, unknown>[])[0]!)
        for (const item of value as Record<string, unknown>[]) {
          for (const k of Object.keys(item)) expect(restItemKeys, `${domainType(e)}.${key}[].${k}`).toContain(k)
        }
      }
    }
  })

  it('a guest receives no email and no account id', () => {
    const events = received.get(guest.userId)!
    expect(events.filter((e) => e.type === 'workspace.user_changed').length).toBeGreaterThan(0)
    const text = JSON.stringify(events)
    expect(text).not.toMatch(/"(email|accountId)"/)
    expect(text).not.toContain('@payloads.test')
  })

  it('nobody receives an email or account id, not even about themselves', () => {
    const text = JSON.stringify([...received.values()])
    expect(text).not.toMatch(/"(email|accountId)"/)
  })
})
