import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  byScripts,
  mention as mentioned,
  okRequests,
  privateRoom,
  readyAgent,
  runIn as runInStatus,
  type Script,
  scratch,
  startAgentServers,
  stopAgentServers,
  type Who,
} from '../support/agents.ts'
import { join, signUp } from '../support/identity.ts'
import type { ModelServer } from '../support/openai-server.ts'
import type { TestServer } from '../support/server.ts'

/*
 * "Always allow this tool for this agent in this room" as a setting people see and take back, over HTTP as clients,
 * with the agent's runs answered by a local model server: approving a risky call with alwaysAllow lists the tool;
 * revoking it empties the list and the agent's next risky call in the room waits for a person again. Who may revoke:
 * the room's readers (as for approvals) and admins; guests are refused, others find nothing.
 */

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

const ok = okRequests(() => server)

const expectProblem = (r: { status: number; headers: Headers }, status: number) => {
  expect(r.status).toBe(status)
  expect(r.headers.get('content-type')).toContain('application/problem+json')
}

const scripts = new Map<string, Script>()

/** How often this file's waits read again. */
const EVERY_MS = 100

/** Mentions Ada with `text` and returns the run the mention started, once it is in `statuses`. */
async function mention(text: string, statuses: readonly string[]) {
  scripts.set(text, scratch(text.replace(/\W+/g, '_')))
  return (await mentioned(server, { by: owner, roomId, agent: ada, text, statuses, everyMs: EVERY_MS })).run
}

const runIn = (runId: string, statuses: readonly string[]) => runInStatus(server, owner, runId, statuses, EVERY_MS)

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
  ;({ model, server } = await startAgentServers(byScripts(scripts)))
  owner = await signUp(server, { email: 'owner@allow.test', orgName: 'Allow Inc', username: 'owner' })
  admin = await join(server, owner.token, { email: 'admin@allow.test', role: 'admin', username: 'admin' })
  member = await join(server, owner.token, { email: 'member@allow.test', role: 'member', username: 'member' })
  guest = await join(server, owner.token, { email: 'guest@allow.test', role: 'guest', username: 'guest' })
  stranger = await join(server, owner.token, { email: 'stranger@allow.test', role: 'member', username: 'stranger' })
  outsider = await signUp(server, { email: 'eve@elsewhere.test', orgName: 'Elsewhere', username: 'eve' })
  ada = await readyAgent(server, owner, { name: 'Ada', username: 'ada' })
  roomId = await privateRoom(server, owner, 'ops', [
    { userId: member.userId },
    { userId: guest.userId },
    { agentId: ada.agentId },
  ])
  outsiderRoomId = await privateRoom(server, outsider, 'theirs', [])
}, 120_000)

afterAll(() => stopAgentServers({ model, server }))

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
