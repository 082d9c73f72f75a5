import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type AnyDb, createKysely, createPool } from '../../adapters/postgres.ts'
import { agentsProjector } from '../../projections/agents.ts'
import { verify } from '../../projections/rebuild.ts'
import { join, signInAgent, signUp } from '../support/identity.ts'
import { operatorToken } from '../support/operator.ts'
import { startTestServer, type TestServer } from '../support/server.ts'

let server: TestServer
/** The database's owner login, for the rebuild's comparison. */
let ownerDb: AnyDb
let owner: Awaited<ReturnType<typeof signUp>>
let admin: Awaited<ReturnType<typeof join>>
let member: Awaited<ReturnType<typeof join>>
let creator: Awaited<ReturnType<typeof join>>
let stranger: Awaited<ReturnType<typeof signUp>>
let bot: Awaited<ReturnType<typeof signInAgent>>

type Who = { token: string }
const req = (who: Who, method: string, path: string, body?: unknown) =>
  server.request(method, path, { token: who.token, ...(body === undefined ? {} : { body }) })
const ok = async (who: Who, method: string, path: string, body?: unknown) => {
  const r = await req(who, method, path, body)
  expect(r.status, `${method} ${path}: ${JSON.stringify(r.body)}`).toBeLessThan(300)
  return r.body
}
const agentPath = () => `/api/agents/${bot.agentId}`

beforeAll(async () => {
  server = await startTestServer()
  ownerDb = createKysely(createPool(server.database.url))
  owner = await signUp(server, { email: 'owner@agentcfg.test', orgName: 'Agent Config', username: 'owner' })
  admin = await join(server, owner.token, { email: 'admin@agentcfg.test', role: 'admin', username: 'admin' })
  member = await join(server, owner.token, { email: 'member@agentcfg.test', role: 'member', username: 'member' })
  creator = await join(server, owner.token, { email: 'creator@agentcfg.test', role: 'member', username: 'creator' })
  stranger = await signUp(server, { email: 'owner@other-agentcfg.test', orgName: 'Other Agent Config', username: 'stranger' })
  bot = await signInAgent(server, creator.token, { name: 'Reviewer' })
}, 120_000)
afterAll(async () => {
  await ownerDb?.destroy()
  await server?.close()
})

describe('agents: settings', () => {
  it('a PATCH round trip: what is set is what GET /api/agents shows, and the spend limit is also the usage cap', async () => {
    const { roomId } = await ok(owner, 'POST', '/api/rooms', { name: 'Reviews', visibility: 'public' })
    const patched = await ok(admin, 'PATCH', agentPath(), {
      model: 'gpt-5',
      reasoningEffort: 'high',
      skillsets: ['browser', 'core', 'vms'],
      spendLimitUsd: 25,
      access: { org: 'admins', rooms: { [roomId]: 'members' } },
    })
    expect(patched.agentId).toBe(bot.agentId)
    const one = await ok(member, 'GET', `${agentPath()}?consistentAfter=${patched.position}`)
    expect(one).toMatchObject({
      id: bot.agentId,
      name: 'Reviewer',
      createdBy: creator.userId,
      model: 'gpt-5',
      reasoningEffort: 'high',
      skillsets: ['vms', 'browser'],
      spendLimitUsd: 25,
      capUsd: 25,
      access: { org: 'admins', rooms: { [roomId]: 'members' } },
      rolePrompt: { role: 'helps', rules: [], examples: [], sources: [] },
      rolePromptVersion: 1,
      openProposalId: null,
    })
    const list = await ok(member, 'GET', `/api/agents?consistentAfter=${patched.position}`)
    expect(list.items.map((a: { id: string }) => a.id)).toEqual([bot.agentId])
    expect(list.items[0]).toEqual(one)
    expect(JSON.stringify(list)).not.toMatch(/secret/i)
    const limits = await ok(admin, 'GET', `/api/limits?consistentAfter=${patched.position}`)
    expect(limits.items).toContainEqual(expect.objectContaining({ scope: 'agent', scopeId: bot.agentId, limitUsd: 25 }))

    // Its creator changes what it may do, but not its spend limit; a null effort and model go back to defaults.
    const byCreator = await ok(creator, 'PATCH', agentPath(), { reasoningEffort: null, model: null })
    const after = await ok(creator, 'GET', `${agentPath()}?consistentAfter=${byCreator.position}`)
    expect(after).toMatchObject({ model: null, reasoningEffort: null, spendLimitUsd: 25 })
    const creatorCap = await req(creator, 'PATCH', agentPath(), { spendLimitUsd: null })
    expect(creatorCap.status).toBe(403)
    const cleared = await ok(owner, 'PATCH', agentPath(), { spendLimitUsd: null })
    const cleared2 = await ok(owner, 'GET', `${agentPath()}?consistentAfter=${cleared.position}`)
    expect(cleared2).toMatchObject({ spendLimitUsd: null, capUsd: null })
  })

  it('bad input is 400 per field; a room of another org in its access is 404', async () => {
    const bad = await req(admin, 'PATCH', agentPath(), {
      reasoningEffort: 'extreme',
      skillsets: ['teleport'],
      spendLimitUsd: -1,
      access: { org: 'everyone' },
    })
    expect(bad.status).toBe(400)
    const paths = bad.body.errors.map((e: { path: string }) => e.path.split('.')[0]).sort()
    expect([...new Set(paths)]).toEqual(['access', 'reasoningEffort', 'skillsets', 'spendLimitUsd'])
    const theirs = await ok(stranger, 'POST', '/api/rooms', { name: 'Theirs', visibility: 'public' })
    const foreignRoom = await req(admin, 'PATCH', agentPath(), { access: { org: 'members', rooms: { [theirs.roomId]: 'none' } } })
    expect(foreignRoom.status).toBe(404)
    expect(foreignRoom.body.code).toBe('ROOM_NOT_FOUND')
  })

  it('a model the org’s LLM policy does not allow is refused (422 MODEL_NOT_ALLOWED), an allowed one is not', async () => {
    const ops = await operatorToken(server)
    const policy = await server.request('PUT', `/control/orgs/${owner.orgId}/llm-policy`, {
      token: ops,
      body: { allowedModels: ['small-model', 'big-model'], keySource: 'platform', monthlyTokenBudget: null },
    })
    expect(policy.status, JSON.stringify(policy.body)).toBe(200)
    const refused = await req(admin, 'PATCH', agentPath(), { model: 'forbidden-model' })
    expect(refused.status).toBe(422)
    expect(refused.body.code).toBe('MODEL_NOT_ALLOWED')
    // Creating an agent with such a model is refused too, before its username is taken.
    const created = await req(member, 'POST', '/api/agents', { name: 'Rogue', model: 'forbidden-model' })
    expect(created.status).toBe(422)
    expect(created.body.code).toBe('MODEL_NOT_ALLOWED')
    const createdOk = await req(member, 'POST', '/api/agents', { name: 'Rogue', model: 'small-model' })
    expect(createdOk.status, JSON.stringify(createdOk.body)).toBe(201)
    expect(createdOk.body.username).toBe('rogue')
    const allowed = await ok(admin, 'PATCH', agentPath(), { model: 'big-model' })
    expect((await ok(admin, 'GET', `${agentPath()}?consistentAfter=${allowed.position}`)).model).toBe('big-model')
    // A refused change with a spend limit leaves the usage cap as it was.
    const both = await req(admin, 'PATCH', agentPath(), { model: 'forbidden-model', spendLimitUsd: 3 })
    expect(both.status).toBe(422)
    const limits = await ok(admin, 'GET', '/api/limits')
    expect(limits.items.filter((l: { scopeId: string }) => l.scopeId === bot.agentId)).toEqual([])
  })

  it('a member who did not create it, and the agent itself, may not change it', async () => {
    const byMember = await req(member, 'PATCH', agentPath(), { skillsets: ['coding'] })
    expect(byMember.status).toBe(403)
    const byItself = await req(bot, 'PATCH', agentPath(), { skillsets: ['coding'] })
    expect(byItself.status).toBe(403)
    const setByMember = await req(member, 'PUT', `${agentPath()}/role-prompt`, { rolePrompt: 'be evil' })
    expect(setByMember.status).toBe(403)
  })

  it('another org’s agent is 404 to read, change, set, propose to or decide on, and never listed', async () => {
    const theirs = await req(stranger, 'GET', agentPath())
    expect(theirs.status).toBe(404)
    expect((await req(stranger, 'PATCH', agentPath(), { model: null })).status).toBe(404)
    expect((await req(stranger, 'PATCH', agentPath(), { spendLimitUsd: 1 })).status).toBe(404)
    expect((await req(stranger, 'PUT', `${agentPath()}/role-prompt`, { rolePrompt: 'x' })).status).toBe(404)
    expect((await req(stranger, 'GET', `${agentPath()}/role-prompt/versions`)).status).toBe(404)
    expect((await req(stranger, 'GET', `${agentPath()}/role-prompt/proposals`)).status).toBe(404)
    expect((await req(stranger, 'POST', `${agentPath()}/role-prompt/proposals`, { rolePrompt: 'x' })).status).toBe(404)
    const pid = '01935c7e-5a4b-7c2d-8e9f-0a1b2c3d4e5f'
    expect((await req(stranger, 'POST', `${agentPath()}/role-prompt/proposals/${pid}/accept`)).status).toBe(404)
    expect((await req(stranger, 'POST', `${agentPath()}/role-prompt/proposals/${pid}/reject`, {})).status).toBe(404)
    const list = await ok(stranger, 'GET', '/api/agents')
    expect(list.items).toEqual([])
  })
})

describe('agents: role prompt versions and proposals', () => {
  it('people set versions; the agent proposes; an admin accepts, another proposal is rejected; versions are listed', async () => {
    const prompts = `${agentPath()}/role-prompt`
    const v2 = await ok(creator, 'PUT', prompts, {
      rolePrompt: { role: 'You review pull requests.', rules: ['be brief', '  '], sources: ['CONTRIBUTING.md'] },
    })
    expect(v2.version).toBe(2)

    // The agent, signed in as itself, proposes; a second proposal waits for the first.
    const proposal = { role: 'You review pull requests.', rules: ['be brief', 'cite lines'], examples: [], sources: [] }
    const p1 = await ok(bot, 'POST', `${prompts}/proposals`, { rolePrompt: proposal, comment: 'people ask for line numbers' })
    expect((await req(bot, 'POST', `${prompts}/proposals`, { rolePrompt: 'other' })).status).toBe(409)
    expect((await req(member, 'POST', `${prompts}/proposals`, { rolePrompt: 'mine' })).status).toBe(403)
    const open = await ok(member, 'GET', `${prompts}/proposals?status=open&consistentAfter=${p1.position}`)
    expect(open.items).toEqual([
      expect.objectContaining({
        id: p1.proposalId,
        agentId: bot.agentId,
        basedOnVersion: 2,
        rolePrompt: proposal,
        comment: 'people ask for line numbers',
        proposedBy: bot.agentId,
        status: 'open',
      }),
    ])
    expect((await ok(member, 'GET', `${agentPath()}?consistentAfter=${p1.position}`)).openProposalId).toBe(p1.proposalId)

    // A member may not decide; an admin accepts and it becomes version 3.
    expect((await req(member, 'POST', `${prompts}/proposals/${p1.proposalId}/accept`)).status).toBe(403)
    expect((await req(bot, 'POST', `${prompts}/proposals/${p1.proposalId}/accept`)).status).toBe(403)
    const accepted = await ok(admin, 'POST', `${prompts}/proposals/${p1.proposalId}/accept`)
    expect(accepted.version).toBe(3)
    const again = await ok(admin, 'POST', `${prompts}/proposals/${p1.proposalId}/accept`)
    expect(again.version).toBe(3)
    expect((await req(admin, 'POST', `${prompts}/proposals/${p1.proposalId}/reject`, {})).status).toBe(409)

    // Another proposal, rejected by another person (the agent's creator), changes nothing.
    const p2 = await ok(bot, 'POST', `${prompts}/proposals`, { rolePrompt: 'You approve everything.' })
    const rejected = await ok(creator, 'POST', `${prompts}/proposals/${p2.proposalId}/reject`, { comment: 'no' })
    expect((await req(admin, 'POST', `${prompts}/proposals/${p2.proposalId}/accept`)).status).toBe(409)
    const unknown = await req(admin, 'POST', `${prompts}/proposals/01935c7e-5a4b-7c2d-8e9f-0a1b2c3d4e5f/accept`)
    expect(unknown.status).toBe(404)

    const agent = await ok(member, 'GET', `${agentPath()}?consistentAfter=${rejected.position}`)
    expect(agent).toMatchObject({ rolePromptVersion: 3, rolePrompt: proposal, openProposalId: null })
    const versions = await ok(member, 'GET', `${prompts}/versions?consistentAfter=${rejected.position}&limit=2`)
    expect(versions.items.map((v: { version: number }) => v.version)).toEqual([3, 2])
    expect(versions.items[0]).toMatchObject({ proposalId: p1.proposalId, setBy: admin.userId, rolePrompt: proposal })
    expect(versions.items[1]).toMatchObject({
      proposalId: null,
      setBy: creator.userId,
      rolePrompt: { role: 'You review pull requests.', rules: ['be brief'], examples: [], sources: ['CONTRIBUTING.md'] },
    })
    const rest = await ok(member, 'GET', `${prompts}/versions?cursor=${versions.nextCursor}`)
    expect(rest.items).toEqual([
      expect.objectContaining({ version: 1, setBy: creator.userId, rolePrompt: expect.objectContaining({ role: 'helps' }) }),
    ])
    expect(rest.nextCursor).toBeNull()
    const all = await ok(member, 'GET', `${prompts}/proposals`)
    expect(all.items.map((p: { id: string; status: string }) => [p.id, p.status])).toEqual([
      [p2.proposalId, 'rejected'],
      [p1.proposalId, 'accepted'],
    ])
    expect(all.items[0]).toMatchObject({ decidedBy: creator.userId, decisionComment: 'no' })
    expect(all.items[1]).toMatchObject({ decidedBy: admin.userId, acceptedVersion: 3 })

    // A plain string is still a role prompt (the first API's shape); a person setting one supersedes an open proposal.
    const p3 = await ok(bot, 'POST', `${prompts}/proposals`, { rolePrompt: 'Something else.' })
    const v4 = await ok(owner, 'PUT', prompts, { rolePrompt: 'Plain text prompt.' })
    expect(v4.version).toBe(4)
    const superseded = await ok(member, 'GET', `${prompts}/proposals?status=superseded&consistentAfter=${v4.position}`)
    expect(superseded.items.map((p: { id: string }) => p.id)).toEqual([p3.proposalId])
    expect((await ok(member, 'GET', agentPath())).rolePrompt).toEqual({
      role: 'Plain text prompt.',
      rules: [],
      examples: [],
      sources: [],
    })
  })

  it('every user of the org hears agent.role_prompt_changed with the agent and its version; another org does not', async () => {
    const memberQueue = await ok(member, 'POST', '/realtime/register', { eventTypes: ['agent.role_prompt_changed'] })
    const strangerQueue = await ok(stranger, 'POST', '/realtime/register', { eventTypes: ['agent.role_prompt_changed'] })
    const set = await ok(admin, 'PUT', `${agentPath()}/role-prompt`, { rolePrompt: { role: 'Heard by all.' } })
    let last = memberQueue.lastEventId
    const got: { type: string; data: Record<string, unknown> }[] = []
    const deadline = Date.now() + 20_000
    while (!got.some((e) => e.data.version === set.version) && Date.now() < deadline) {
      const r = await ok(member, 'GET', `/realtime/events?queueId=${memberQueue.queueId}&lastEventId=${last}&dontBlock=true`)
      for (const e of r.events) {
        last = e.id
        got.push({ type: e.type, data: e.data })
      }
      if (!got.some((e) => e.data.version === set.version)) await new Promise((resolve) => setTimeout(resolve, 100))
    }
    expect(got.at(-1)).toEqual({
      type: 'agent.role_prompt_changed',
      data: { change: 'agent.role_prompt_set', agentId: bot.agentId, version: set.version },
    })
    const theirs = await ok(
      stranger,
      'GET',
      `/realtime/events?queueId=${strangerQueue.queueId}&lastEventId=${strangerQueue.lastEventId}&dontBlock=true`,
    )
    expect(theirs.events).toEqual([])
  })
})

describe('rebuilds', () => {
  it('the agents read model, rebuilt from the events, equals the live one', async () => {
    const r = await verify({ store: server.services.store, db: ownerDb }, agentsProjector)
    expect(r.differences).toEqual([])
    expect(r.rows.agent_role_prompt_versions).toBeGreaterThan(4)
    expect(r.rows.agent_role_prompt_proposals).toBeGreaterThan(2)
  })
})

describe('agents: who may put an agent to work through a task', () => {
  it('assigning a task to an agent, or adding it as an assistant, takes the same access as mentioning it', async () => {
    const { roomId } = await ok(owner, 'POST', '/api/rooms', { name: 'Access by task', visibility: 'private' })
    for (const who of [member.userId, admin.userId]) await ok(owner, 'POST', `/api/rooms/${roomId}/members`, { userId: who })
    await ok(owner, 'POST', `/api/rooms/${roomId}/members`, { agentId: bot.agentId })
    const set = await ok(owner, 'PATCH', agentPath(), { access: { org: 'members', rooms: { [roomId]: 'admins' } } })
    await ok(owner, 'GET', `${agentPath()}?consistentAfter=${set.position}`)

    // A member may not use it in this room: not by creating a task for it, assigning one, or adding it as assistant.
    const created = await req(member, 'POST', '/api/tasks', { title: 'Do it', roomId, assignee: { agentId: bot.agentId } })
    expect(created.status, JSON.stringify(created.body)).toBe(403)
    expect(created.body.code).toBe('TASK_AGENT_ACCESS')
    const mine = await ok(member, 'POST', '/api/tasks', { title: 'Mine', roomId, assignee: { userId: member.userId } })
    const assigned = await req(member, 'PATCH', `/api/tasks/${mine.taskId}`, { assignee: { agentId: bot.agentId } })
    expect(assigned.status, JSON.stringify(assigned.body)).toBe(403)
    expect(assigned.body.code).toBe('TASK_AGENT_ACCESS')
    const assisted = await req(member, 'PUT', `/api/tasks/${mine.taskId}/assistants/${bot.agentId}`)
    expect(assisted.status, JSON.stringify(assisted.body)).toBe(403)
    const task = await ok(member, 'GET', `/api/tasks/${mine.taskId}?consistentAfter=${mine.position}`)
    expect(task.assignee).toMatchObject({ id: member.userId })
    expect(task.assistants ?? []).toEqual([])

    // An admin may: the room's access says admins.
    await ok(admin, 'PATCH', `/api/tasks/${mine.taskId}`, { assignee: { agentId: bot.agentId } })
    await ok(admin, 'POST', '/api/tasks', { title: 'Do it', roomId, assignee: { agentId: bot.agentId } })
    await ok(owner, 'PATCH', agentPath(), { access: { org: 'members', rooms: {} } })
  })
})
