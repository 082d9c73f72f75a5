import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { join, login, signInAgent, signUp } from '../support/identity.ts'
import { bootstrapOperator } from '../support/operator.ts'
import { startTestServer, type TestServer } from '../support/server.ts'

/*
 * Who may run each command of tasks, artifacts, usage, agents and the Control API: one row per command route, one column
 * per caller, each cell the status that caller gets. The callers of the org are all members of one private room,
 * where every task and artifact lives, so the table shows what the role changes, not what membership does:
 *
 *   owner, admin, member, guest   people of the org (for /control: their account session, which is not an operator's)
 *   agent                         an agent of the org, with its agent token
 *   other                         the owner of another org, aiming at this org's things
 *   anonymous                     no credentials
 *   operator, service             only on the Control API and the internal usage routes: who those are for
 *
 * Each cell works on a target of its own when the command changes it (a fresh task, artifact, schedule, question
 * or org), so no cell depends on another's outcome.
 */

const SERVICE_TOKEN = 'role-table-service-token-0123456789abcdef'

type Caller = 'owner' | 'admin' | 'member' | 'guest' | 'agent' | 'other' | 'anonymous' | 'operator' | 'service'
const TENANT_CALLERS = ['owner', 'admin', 'member', 'guest', 'agent', 'other', 'anonymous'] as const

type Person = { token: string; userId: string; accountToken?: string; orgId?: string }

let server: TestServer
let people: Record<Exclude<Caller, 'anonymous' | 'service' | 'operator'>, Person>
let operator: { accountToken: string; accountId: string }
/** The private room of every org caller: owner (its creator), admin, member, guest and agent. */
let roomId: string
/** A user of the org for the operator to erase (erasing again answers the same). */
let eve: { userId: string }
/** An account granted and revoked as operator: never one of the callers. */
let candidate: { accountId: string }

type Res = { status: number; body: any }
const call = (token: string | undefined, method: string, path: string, body?: unknown): Promise<Res> =>
  server.request(method, path, { ...(token ? { token } : {}), ...(body !== undefined ? { body } : {}) })

/** A fixture step that must work: the table measures the cells, not their preparation. */
async function must(token: string, method: string, path: string, body?: unknown): Promise<any> {
  const r = await call(token, method, path, body)
  if (r.status >= 300) throw new Error(`fixture ${method} ${path}: ${r.status} ${JSON.stringify(r.body)}`)
  return r.body
}

const owner = () => people.owner.token
const unique = (() => {
  let n = 0
  return (prefix: string) => `${prefix} ${Date.now().toString(36)}-${++n}`
})()

// --- Fixtures, each made fresh by the owner (or the member, where who made it matters).

const newTask = async (body: Record<string, unknown> = {}, by = owner()) =>
  (await must(by, 'POST', '/api/tasks', { title: unique('Task'), roomId, ...body })).taskId as string
const assignedToMember = (body: Record<string, unknown> = {}) => newTask({ assignee: { userId: people.member.userId }, ...body })
const newArtifact = async (by = people.member.token) =>
  (await must(by, 'POST', '/api/artifacts', { kind: 'report', title: unique('Report'), roomId, content: 'findings' }))
    .artifactId as string
const newOrg = async () =>
  (await must(operator.accountToken, 'POST', '/control/orgs', { name: unique('Victim') })).orgId as string

type Cell = { method: string; path: string; body?: unknown }
type Row<P> = {
  readonly route: string
  readonly prepare?: () => Promise<P>
  readonly cell: (p: P, caller: Caller) => Cell
  /** owner, admin, member, guest, agent, other, anonymous */
  readonly expect: readonly [number, number, number, number, number, number, number]
  readonly operator?: number
  readonly service?: number
}
/** A row, its fixture's type checked against its cell, then one of the table's. */
const row = <P = undefined>(r: Row<P>): Row<unknown> => r as Row<unknown>

const tokenOf = (caller: Caller, route: string): string | undefined => {
  if (caller === 'anonymous') return undefined
  if (caller === 'service') return SERVICE_TOKEN
  if (caller === 'operator') return operator.accountToken
  const p = people[caller]
  // The Control API takes an account's own session: each person's is refused for not being an operator's.
  return route.includes(' /control/') ? (p.accountToken ?? p.token) : p.token
}

const PRICES = {
  models: { 'gpt-test': { inputPerMTokUsd: 1, cachedInputPerMTokUsd: 0.5, outputPerMTokUsd: 2 } },
  vmMinuteUsd: { small: 0.01 },
  diskGbMonthUsd: 0.1,
  storageGbMonthUsd: 0.02,
}

const tasks = [
  row({
    route: 'POST /api/tasks',
    cell: () => ({ method: 'POST', path: '/api/tasks', body: { title: 'New', roomId } }),
    expect: [201, 201, 201, 201, 201, 404, 401],
  }),
  row({
    route: 'PATCH /api/tasks/:id',
    prepare: () => newTask(),
    cell: (id) => ({ method: 'PATCH', path: `/api/tasks/${id}`, body: { title: 'Renamed' } }),
    expect: [200, 200, 200, 200, 200, 404, 401],
  }),
  row({
    route: 'DELETE /api/tasks/:id (reported by the member)',
    prepare: () => newTask({}, people.member.token),
    cell: (id) => ({ method: 'DELETE', path: `/api/tasks/${id}` }),
    expect: [200, 200, 200, 403, 403, 404, 401],
  }),
  row({
    route: 'POST /api/tasks/:id/dependencies',
    prepare: async () => ({ id: await newTask(), on: await newTask() }),
    cell: (p) => ({ method: 'POST', path: `/api/tasks/${p.id}/dependencies`, body: { taskId: p.on } }),
    expect: [200, 200, 200, 200, 200, 404, 401],
  }),
  row({
    route: 'DELETE /api/tasks/:id/dependencies/:dependsOnId',
    prepare: async () => {
      const p = { id: await newTask(), on: await newTask() }
      await must(owner(), 'POST', `/api/tasks/${p.id}/dependencies`, { taskId: p.on })
      return p
    },
    cell: (p) => ({ method: 'DELETE', path: `/api/tasks/${p.id}/dependencies/${p.on}` }),
    expect: [200, 200, 200, 200, 200, 404, 401],
  }),
  row({
    route: 'PUT /api/tasks/:id/watchers/:userId (oneself)',
    prepare: () => newTask(),
    cell: (id, caller) => ({
      method: 'PUT',
      path: `/api/tasks/${id}/watchers/${caller === 'anonymous' ? people.member.userId : people[caller as 'owner'].userId}`,
    }),
    expect: [200, 200, 200, 200, 200, 404, 401],
  }),
  row({
    route: 'DELETE /api/tasks/:id/watchers/:userId (the member)',
    prepare: async () => {
      const id = await newTask()
      await must(people.member.token, 'PUT', `/api/tasks/${id}/watchers/${people.member.userId}`)
      return id
    },
    cell: (id) => ({ method: 'DELETE', path: `/api/tasks/${id}/watchers/${people.member.userId}` }),
    expect: [200, 200, 200, 200, 200, 404, 401],
  }),
  row({
    route: 'PUT /api/tasks/:id/assistants/:agentId',
    prepare: () => assignedToMember(),
    cell: (id) => ({ method: 'PUT', path: `/api/tasks/${id}/assistants/${people.agent.userId}` }),
    // Putting an agent to work is using it: a guest never may (its access, as for a mention).
    expect: [200, 200, 200, 403, 200, 404, 401],
  }),
  row({
    route: 'DELETE /api/tasks/:id/assistants/:agentId',
    prepare: async () => {
      const id = await assignedToMember()
      await must(owner(), 'PUT', `/api/tasks/${id}/assistants/${people.agent.userId}`)
      return id
    },
    cell: (id) => ({ method: 'DELETE', path: `/api/tasks/${id}/assistants/${people.agent.userId}` }),
    expect: [200, 200, 200, 200, 200, 404, 401],
  }),
  row({
    route: 'POST /api/tasks/:id/plan (assigned to the member)',
    prepare: () => assignedToMember({ reviewGates: { plan: true } }),
    cell: (id) => ({ method: 'POST', path: `/api/tasks/${id}/plan`, body: { text: 'The plan' } }),
    expect: [403, 403, 200, 403, 403, 404, 401],
  }),
  row({
    // A review gate holds work to the judgement of a person of the org: not the one who submitted it, not an agent,
    // not a guest (an outsider, there because they are in the room).
    route: 'POST /api/tasks/:id/approvals (the member’s plan)',
    prepare: async () => {
      const id = await assignedToMember({ reviewGates: { plan: true } })
      await must(people.member.token, 'POST', `/api/tasks/${id}/plan`, { text: 'The plan' })
      return id
    },
    cell: (id) => ({ method: 'POST', path: `/api/tasks/${id}/approvals`, body: { gate: 'plan', decision: 'approve' } }),
    expect: [200, 200, 403, 403, 403, 404, 401],
  }),
  row({
    route: 'POST /api/tasks/:id/result (assigned to the member, in progress)',
    prepare: async () => {
      const id = await assignedToMember({ reviewGates: { result: true } })
      await must(owner(), 'PATCH', `/api/tasks/${id}`, { status: 'in_progress' })
      return id
    },
    cell: (id) => ({ method: 'POST', path: `/api/tasks/${id}/result`, body: { text: 'Done it' } }),
    expect: [403, 403, 200, 403, 403, 404, 401],
  }),
  row({
    route: 'POST /api/tasks/:id/messages',
    prepare: () => newTask(),
    cell: (id) => ({ method: 'POST', path: `/api/tasks/${id}/messages`, body: { text: 'On it' } }),
    expect: [201, 201, 201, 201, 201, 404, 401],
  }),
  // A schedule spends the org's money every period, as who resumed it: not a guest's to set up or start.
  row({
    route: 'PUT /api/tasks/:id/schedule',
    prepare: () => newTask(),
    cell: (id) => ({ method: 'PUT', path: `/api/tasks/${id}/schedule`, body: { every: { hours: 1 } } }),
    expect: [200, 200, 200, 403, 200, 404, 401],
  }),
  ...(['resume', 'pause'] as const).map((action) =>
    row({
      route: `POST /api/tasks/:id/schedule/${action}`,
      prepare: async () => {
        const id = await newTask()
        await must(owner(), 'PUT', `/api/tasks/${id}/schedule`, { every: { hours: 1 } })
        if (action === 'pause') await must(owner(), 'POST', `/api/tasks/${id}/schedule/resume`)
        return id
      },
      cell: (id: string) => ({ method: 'POST', path: `/api/tasks/${id}/schedule/${action}` }),
      expect: [200, 200, 200, 403, 200, 404, 401],
    }),
  ),
  row({
    route: 'POST /api/tasks/:id/schedule/run-now',
    prepare: async () => {
      const id = await newTask()
      await must(owner(), 'PUT', `/api/tasks/${id}/schedule`, { every: { hours: 1 } })
      return id
    },
    cell: (id) => ({ method: 'POST', path: `/api/tasks/${id}/schedule/run-now` }),
    expect: [201, 201, 201, 403, 201, 404, 401],
  }),
  row({
    route: 'POST /api/tasks/:id/questions (to someone else)',
    prepare: () => newTask(),
    cell: (id, caller) => ({
      method: 'POST',
      path: `/api/tasks/${id}/questions`,
      body: { toUserId: caller === 'member' ? people.owner.userId : people.member.userId, text: 'Which branch?' },
    }),
    expect: [201, 201, 201, 201, 201, 404, 401],
  }),
  row({
    route: 'POST /api/questions/:id/answer (asked of the member)',
    prepare: async () => {
      const taskId = await newTask()
      return (
        await must(owner(), 'POST', `/api/tasks/${taskId}/questions`, { toUserId: people.member.userId, text: 'Which branch?' })
      ).questionId as string
    },
    cell: (id) => ({ method: 'POST', path: `/api/questions/${id}/answer`, body: { text: 'main' } }),
    expect: [403, 403, 200, 403, 403, 404, 401],
  }),
]

const artifacts = [
  row({
    route: 'POST /api/artifacts',
    cell: () => ({ method: 'POST', path: '/api/artifacts', body: { kind: 'report', title: 'Notes', roomId, content: 'x' } }),
    expect: [201, 201, 201, 201, 201, 404, 401],
  }),
  row({
    route: 'PATCH /api/artifacts/:id (the member’s)',
    prepare: () => newArtifact(),
    cell: (id) => ({ method: 'PATCH', path: `/api/artifacts/${id}`, body: { title: 'Renamed' } }),
    expect: [200, 200, 200, 403, 403, 404, 401],
  }),
  row({
    route: 'DELETE /api/artifacts/:id (the member’s)',
    prepare: () => newArtifact(),
    cell: (id) => ({ method: 'DELETE', path: `/api/artifacts/${id}` }),
    expect: [200, 200, 200, 403, 403, 404, 401],
  }),
]

const usage = [
  row({
    route: 'PUT /api/limits',
    cell: () => ({ method: 'PUT', path: '/api/limits', body: { scope: 'room', scopeId: roomId, usd: 50 } }),
    expect: [200, 200, 403, 403, 403, 404, 401],
  }),
  row({
    route: 'POST /api/limits/raise',
    prepare: async () => {
      await must(owner(), 'PUT', '/api/limits', { scope: 'room', scopeId: roomId, usd: 50 })
    },
    cell: () => ({ method: 'POST', path: '/api/limits/raise', body: { scope: 'room', scopeId: roomId, byUsd: 1 } }),
    expect: [200, 200, 403, 403, 403, 404, 401],
  }),
  row({
    route: 'POST /api/internal/usage/reservations',
    cell: () => ({
      method: 'POST',
      path: '/api/internal/usage/reservations',
      body: { tenantId: people.owner.orgId!, roomId, reservationId: crypto.randomUUID(), estimate: { usd: 0.01 } },
    }),
    expect: [401, 401, 401, 401, 401, 401, 401],
    service: 201,
  }),
  row({
    route: 'POST /api/internal/usage/records',
    cell: () => ({
      method: 'POST',
      path: '/api/internal/usage/records',
      body: {
        tenantId: people.owner.orgId!,
        roomId,
        recordId: crypto.randomUUID(),
        usage: { kind: 'llm', model: 'gpt-test', inputTokens: 10, outputTokens: 5 },
      },
    }),
    expect: [401, 401, 401, 401, 401, 401, 401],
    service: 201,
  }),
  row({
    route: 'PUT /control/prices',
    cell: () => ({ method: 'PUT', path: '/control/prices', body: PRICES }),
    expect: [403, 403, 403, 403, 403, 403, 401],
    operator: 200,
  }),
  row({
    route: 'PUT /control/orgs/:id/spend-cap',
    prepare: newOrg,
    cell: (id) => ({ method: 'PUT', path: `/control/orgs/${id}/spend-cap`, body: { monthlyUsd: 100 } }),
    expect: [403, 403, 403, 403, 403, 403, 401],
    operator: 200,
  }),
]

const agents = [
  // Who may approve the agent's calls in the room (every caller here reads it) and admins; not a guest, not an agent.
  // Nothing is allowed: revoking answers the same and records nothing, so each cell stands alone.
  row({
    route: 'DELETE /api/agents/:id/allowed-tools/:roomId/:tool',
    cell: () => ({ method: 'DELETE', path: `/api/agents/${people.agent.userId}/allowed-tools/${roomId}/delete_task` }),
    expect: [204, 204, 204, 403, 403, 404, 401],
  }),
]

const control = [
  row({
    route: 'POST /control/orgs',
    cell: () => ({ method: 'POST', path: '/control/orgs', body: { name: unique('Provisioned') } }),
    expect: [403, 403, 403, 403, 403, 403, 401],
    operator: 201,
  }),
  ...(['suspend', 'unsuspend', 'reactivate'] as const).map((action) =>
    row({
      route: `POST /control/orgs/:id/${action}`,
      prepare: async () => {
        const id = await newOrg()
        if (action !== 'suspend') await must(operator.accountToken, 'POST', `/control/orgs/${id}/suspend`, {})
        return id
      },
      cell: (id: string) => ({ method: 'POST', path: `/control/orgs/${id}/${action}`, body: {} }),
      expect: [403, 403, 403, 403, 403, 403, 401],
      operator: 200,
    }),
  ),
  row({
    route: 'PUT /control/orgs/:id/limits',
    prepare: newOrg,
    cell: (id) => ({ method: 'PUT', path: `/control/orgs/${id}/limits`, body: { seats: 10, storageBytes: null } }),
    expect: [403, 403, 403, 403, 403, 403, 401],
    operator: 200,
  }),
  row({
    route: 'PUT /control/orgs/:id/llm-policy',
    prepare: newOrg,
    cell: (id) => ({
      method: 'PUT',
      path: `/control/orgs/${id}/llm-policy`,
      body: { allowedModels: ['gpt-test'], monthlyTokenBudget: null },
    }),
    expect: [403, 403, 403, 403, 403, 403, 401],
    operator: 200,
  }),
  row({
    route: 'POST /control/operators',
    cell: () => ({ method: 'POST', path: '/control/operators', body: { accountId: candidate.accountId } }),
    expect: [403, 403, 403, 403, 403, 403, 401],
    operator: 201,
  }),
  row({
    route: 'DELETE /control/operators/:accountId',
    prepare: async () => {
      await must(operator.accountToken, 'POST', '/control/operators', { accountId: candidate.accountId })
    },
    cell: () => ({ method: 'DELETE', path: `/control/operators/${candidate.accountId}` }),
    expect: [403, 403, 403, 403, 403, 403, 401],
    operator: 200,
  }),
  // No event is parked here: the operator is let through, and finds none.
  ...(['projections/artifacts', 'processors/invite-emails'] as const).flatMap((consumer) =>
    (['retry', 'skip'] as const).map((action) =>
      row({
        route: `POST /control/${consumer}/parked/:eventId/${action}`,
        cell: () => ({ method: 'POST', path: `/control/${consumer}/parked/${crypto.randomUUID()}/${action}`, body: {} }),
        expect: [403, 403, 403, 403, 403, 403, 401],
        operator: 404,
      }),
    ),
  ),
  row({
    route: 'POST /control/users/:id/erase',
    cell: () => ({ method: 'POST', path: `/control/users/${eve.userId}/erase` }),
    expect: [403, 403, 403, 403, 403, 403, 401],
    operator: 200,
  }),
]

beforeAll(async () => {
  // A smaller pool than the default: the test cluster's connections are shared by every suite running at once.
  server = await startTestServer({ SERVICE_TOKEN, DATABASE_POOL_SIZE: '10' })
  const o = await signUp(server, { email: 'owner@table.test', orgName: 'Table Inc', username: 'owner' })
  // Independent of each other: made at once.
  const [admin, member, guest, agent, other, erased, op, account] = await Promise.all([
    join(server, o.token, { email: 'admin@table.test', role: 'admin', username: 'admin' }),
    join(server, o.token, { email: 'member@table.test', role: 'member', username: 'member' }),
    join(server, o.token, { email: 'guest@table.test', role: 'guest', username: 'guest' }),
    signInAgent(server, o.token, { name: 'Robot', username: 'robot' }),
    signUp(server, { email: 'other@elsewhere.test', orgName: 'Elsewhere', username: 'other' }),
    join(server, o.token, { email: 'eve@table.test', role: 'member', username: 'eve' }),
    bootstrapOperator(server, 'ops@table.test'),
    login(server, 'candidate@table.test'),
  ])
  eve = erased
  operator = op
  candidate = account
  people = {
    owner: { token: o.token, userId: o.userId, accountToken: o.accountToken, orgId: o.orgId },
    admin,
    member,
    guest,
    agent: { token: agent.token, userId: agent.userId },
    other: { token: other.token, userId: other.userId, accountToken: other.accountToken },
  }
  roomId = (await must(o.token, 'POST', '/api/rooms', { name: 'Work', visibility: 'private' })).roomId
  for (const who of [admin, member, guest]) await must(o.token, 'POST', `/api/rooms/${roomId}/members`, { userId: who.userId })
  await must(o.token, 'POST', `/api/rooms/${roomId}/members`, { agentId: agent.agentId })
}, 120_000)
afterAll(async () => {
  await server?.close()
})

/** Every cell of a row, at once: each caller on a fresh target. */
async function run<P>(r: Row<P>): Promise<Record<string, number | string>> {
  const callers: Caller[] = [
    ...TENANT_CALLERS,
    ...(r.operator ? ['operator' as const] : []),
    ...(r.service ? ['service' as const] : []),
  ]
  const statuses = await Promise.all(
    callers.map(async (caller) => {
      const p = (r.prepare ? await r.prepare() : undefined) as P
      const { method, path, body } = r.cell(p, caller)
      const res = await call(tokenOf(caller, r.route), method, path, body)
      // A 5xx is never an answer: show it with its body.
      return res.status >= 500 ? `${res.status} ${JSON.stringify(res.body)}` : res.status
    }),
  )
  return Object.fromEntries(callers.map((c, i) => [c, statuses[i]!]))
}

const expected = <P>(r: Row<P>) => ({
  ...Object.fromEntries(TENANT_CALLERS.map((c, i) => [c, r.expect[i]!])),
  ...(r.operator ? { operator: r.operator } : {}),
  ...(r.service ? { service: r.service } : {}),
})

describe.each([
  ['tasks', tasks],
  ['artifacts', artifacts],
  ['usage and limits', usage],
  ['agents', agents],
  ['the Control API', control],
] as const)('%s: who may run each command', (_, rows) => {
  it.each(rows.map((r) => [r.route, r] as const))('%s', async (_route, r) => {
    expect(await run(r)).toEqual(expected(r))
  })
})
