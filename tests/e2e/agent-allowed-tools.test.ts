import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createAgent, join, signUp } from '../support/identity.ts'
import { type ModelAnswer, type ModelRequest, type ModelServer, startModelServer } from '../support/openai-server.ts'
import { startTestServer, type TestServer } from '../support/server.ts'

/*
 * "Always allow this tool for this agent in this room" as a setting people see and take back, over HTTP as clients,
 * with the agent's runs answered by a local model server: approving a risky call with alwaysAllow lists the tool;
 * revoking it empties the list and the agent's next risky call in the room waits for a person again. Who may revoke:
 * the room's readers (as for approvals) and admins; guests are refused, others find nothing.
 */

type Who = { token: string; userId: string }

let model: ModelServer
let server: TestServer
let owner: Who
let admin: Who
let member: Who
let guest: Who
/** A member of the org outside the private room. */
let stranger: Who
/** The owner of another org. */
let outsider: Who
let ada: { agentId: string; username: string; position: number }
let roomId: string
let outsiderRoomId: string

const ok = async (method: string, path: string, who: Who, body?: unknown) => {
  const r = await server.request(method, path, { token: who.token, ...(body === undefined ? {} : { body }) })
  expect(r.status, `${method} ${path}: ${JSON.stringify(r.body)}`).toBeLessThan(300)
  return r.body
}

const expectProblem = (r: { status: number; headers: Headers }, status: number) => {
  expect(r.status).toBe(status)
  expect(r.headers.get('content-type')).toContain('application/problem+json')
}

const scripts = new Map<string, (request: ModelRequest, turn: number) => ModelAnswer>()
const lastUserText = (r: ModelRequest): string => {
  const messages = (r.body.messages ?? []) as { role: string; content: string | null }[]
  return messages.filter((m) => m.role === 'user').at(-1)?.content ?? ''
}
const turnOf = (r: ModelRequest) => ((r.body.messages ?? []) as { role: string }[]).filter((m) => m.role === 'assistant').length

async function until<T>(what: string, read: () => Promise<T | null | undefined>, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const value = await read()
    if (value) return value
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 100))
  }
}

/** The agent creates a scratch task, then deletes it (delete_task is risky). */
const scratch =
  (id: string) =>
  (request: ModelRequest, turn: number): ModelAnswer => {
    if (turn === 0) return { toolCalls: [{ id: `${id}_make`, name: 'create_task', arguments: { title: `Scratch ${id}` } }] }
    if (turn === 1) {
      const created = (request.body.messages as { role: string; content: string }[]).at(-1)!.content
      const taskId = /Created task ([0-9a-f-]{36})/.exec(created)![1]
      return { toolCalls: [{ id: `${id}_tidy`, name: 'delete_task', arguments: { taskId } }] }
    }
    return { text: 'Tidied.' }
  }

/** Mentions Ada with `text` and returns the run the mention started, once it is in `statuses`. */
async function mention(text: string, statuses: readonly string[]) {
  scripts.set(text, scratch(text.replace(/\W+/g, '_')))
  const posted = await ok('POST', `/api/rooms/${roomId}/messages`, owner, { text: `@${ada.username} ${text}` })
  return until(`a run for "${text}" in ${statuses.join('|')}`, async () => {
    const threads = await ok(
      'GET',
      `/api/threads?roomId=${roomId}&agentId=${ada.agentId}&consistentAfter=${posted.position}`,
      owner,
    )
    const thread = threads.items.find((t: { taskId: string | null }) => t.taskId === null)
    if (!thread) return null
    const detail = await ok('GET', `/api/threads/${thread.id}`, owner)
    const run = detail.runs.find((r: { inputs: { text: string }[] }) => r.inputs.some((i) => i.text.includes(text)))
    return run && statuses.includes(run.status) ? run : null
  })
}

async function runIn(runId: string, statuses: readonly string[]) {
  return until(`run ${runId} in ${statuses.join('|')}`, async () => {
    const r = await ok('GET', `/api/runs/${runId}/items`, owner)
    return statuses.includes(r.status) ? r : null
  })
}

/** Approves the delete_task call a run waits on, always allowing it; returns the position of the answer. */
async function approveAlways(text: string, by: Who): Promise<number> {
  const run = await mention(text, ['requires_action'])
  expect(run.pendingAction).toMatchObject({ tool: 'delete_task' })
  const approved = await ok('POST', `/api/runs/${run.id}/approvals`, by, {
    toolCallId: run.pendingAction.toolCallId,
    decision: 'approve',
    alwaysAllow: true,
  })
  await runIn(run.id, ['completed'])
  return approved.position
}

const list = (who: Who, query = '') =>
  server.request('GET', `/api/agents/${ada.agentId}/allowed-tools${query}`, { token: who.token })
const revoke = (who: Who, tool = 'delete_task', room = roomId, agentId = ada.agentId) =>
  server.request('DELETE', `/api/agents/${agentId}/allowed-tools/${room}/${tool}`, { token: who.token })
const agentEvents = async () => (await server.services.store.readStream(`agent-${ada.agentId}`)).length

beforeAll(async () => {
  model = await startModelServer()
  model.answer((request, index) => {
    for (const [key, script] of scripts) if (lastUserText(request).includes(key)) return script(request, turnOf(request))
    return { status: 500, message: `nothing scripted for request ${index}` }
  })
  server = await startTestServer({
    OPENAI_BASE_URL: model.url,
    OPENAI_API_KEY: 'sk-local',
    AGENT_DEFAULT_MODEL: 'local-model',
    AGENT_POLL_MS: '500',
  })
  owner = await signUp(server, { email: 'owner@allow.test', orgName: 'Allow Inc', username: 'owner' })
  admin = await join(server, owner.token, { email: 'admin@allow.test', role: 'admin', username: 'admin' })
  member = await join(server, owner.token, { email: 'member@allow.test', role: 'member', username: 'member' })
  guest = await join(server, owner.token, { email: 'guest@allow.test', role: 'guest', username: 'guest' })
  stranger = await join(server, owner.token, { email: 'stranger@allow.test', role: 'member', username: 'stranger' })
  outsider = await signUp(server, { email: 'eve@elsewhere.test', orgName: 'Elsewhere', username: 'eve' })
  ada = await createAgent(server, owner.token, { name: 'Ada', username: 'ada' })
  await ok('GET', `/api/users?consistentAfter=${ada.position}`, owner)
  roomId = (await ok('POST', '/api/rooms', owner, { name: 'ops', visibility: 'private' })).roomId
  for (const who of [member, guest]) await ok('POST', `/api/rooms/${roomId}/members`, owner, { userId: who.userId })
  await ok('POST', `/api/rooms/${roomId}/members`, owner, { agentId: ada.agentId })
  outsiderRoomId = (await ok('POST', '/api/rooms', outsider, { name: 'theirs', visibility: 'private' })).roomId
}, 120_000)

afterAll(async () => {
  await server?.close()
  await model?.close()
})

describe('always allow, seen and taken back', () => {
  let grantedAt: number

  it('nothing is allowed before anyone approves with alwaysAllow', async () => {
    expect((await list(member)).body).toEqual({ allowedTools: [] })
  })

  it('approved with alwaysAllow, the tool is listed for the room, by whom and when', async () => {
    grantedAt = await approveAlways('tidy up a first scratch task', member)
    const r = await list(member, `?consistentAfter=${grantedAt}`)
    expect(r.status).toBe(200)
    expect(r.body.allowedTools).toEqual([
      { roomId, tool: 'delete_task', allowedBy: member.userId, allowedAt: expect.any(String) },
    ])
    expect(Number.isNaN(Date.parse(r.body.allowedTools[0].allowedAt))).toBe(false)
    expect((await list(member, `?roomId=${roomId}`)).body.allowedTools).toHaveLength(1)
    expect((await list(member, `?roomId=${outsiderRoomId}`)).body.allowedTools).toEqual([])
  })

  it('listed only in rooms the caller may read; another org’s caller finds no agent', async () => {
    expect((await list(stranger, `?consistentAfter=${grantedAt}`)).body).toEqual({ allowedTools: [] })
    expect((await list(guest, `?consistentAfter=${grantedAt}`)).body.allowedTools).toHaveLength(1)
    expectProblem(await list(outsider), 404)
  })

  it('a guest may not revoke it, even in the room', async () => {
    const before = await agentEvents()
    const r = await revoke(guest)
    expectProblem(r, 403)
    expect(await agentEvents()).toBe(before)
  })

  it('someone who may not read the room, or of another org, finds nothing to revoke', async () => {
    const before = await agentEvents()
    expectProblem(await revoke(stranger), 404)
    expectProblem(await revoke(outsider), 404)
    // The owner's agent in another org's room.
    expectProblem(await revoke(owner, 'delete_task', outsiderRoomId), 404)
    expect(await agentEvents()).toBe(before)
  })

  it('bad parameters are problems, never a 500', async () => {
    expectProblem(await revoke(member, 'delete%20task'), 404)
    expect((await revoke(member, 'delete%20task')).body).toMatchObject({ code: 'TOOL_UNKNOWN' })
    expectProblem(await revoke(member, 'delete_task', 'not-a-room'), 400)
    expectProblem(await revoke(member, 'delete_task', roomId, 'not-an-agent'), 400)
    expectProblem(await revoke(member, 'delete_task', roomId, crypto.randomUUID()), 404)
    expectProblem(await list(member, '?roomId=nope'), 400)
    expectProblem(await server.request('GET', '/api/agents/not-an-agent/allowed-tools', { token: member.token }), 400)
  })

  it('a reader of the room revokes it: the list is empty, and revoking again records nothing', async () => {
    const r = await revoke(member)
    expect(r.status).toBe(204)
    expect(r.body).toBeNull()
    const position = r.headers.get('position')
    expect(position).toMatch(/^\d+$/)
    expect((await list(member, `?consistentAfter=${position}`)).body).toEqual({ allowedTools: [] })
    const before = await agentEvents()
    const again = await revoke(member)
    expect(again.status).toBe(204)
    expect(await agentEvents()).toBe(before)
  })

  it('revoked, the agent’s next risky call in the room waits for a person again', async () => {
    const run = await mention('tidy up a second scratch task', ['requires_action'])
    expect(run.pendingAction).toMatchObject({ tool: 'delete_task' })
    await ok('POST', `/api/runs/${run.id}/approvals`, owner, {
      toolCallId: run.pendingAction.toolCallId,
      decision: 'reject',
    })
    await runIn(run.id, ['completed'])
  })

  it('an admin revokes it in a room they are not in', async () => {
    const granted = await approveAlways('tidy up a third scratch task', owner)
    expect((await list(owner, `?consistentAfter=${granted}`)).body.allowedTools).toEqual([
      expect.objectContaining({ tool: 'delete_task', allowedBy: owner.userId }),
    ])
    const r = await revoke(admin)
    expect(r.status).toBe(204)
    expect((await list(owner, `?consistentAfter=${r.headers.get('position')}`)).body).toEqual({ allowedTools: [] })
  })
})
