import { describe, expect, it } from 'vitest'
import { loadConfig } from '../../adapters/config.ts'
import type { LlmToolCall } from '../../adapters/llm.ts'
import type { MemberType, RoomState } from '../../domain/rooms.ts'
import { budget, caps } from '../../domain/usage.ts'
import {
  hasBudget,
  parseRoute,
  ROUTE_TOOL,
  type RoomAgent,
  routerPrompt,
  routeWithoutModel,
  type SoftMentionFacts,
} from '../../processors/agents/soft-mentions.ts'
import { assignmentText, wakesAgent } from '../../processors/agents/task-assignments.ts'

const agent = (id: string, username: string, extra: Partial<RoomAgent> = {}): RoomAgent => ({
  agentId: id,
  name: username[0]!.toUpperCase() + username.slice(1),
  username,
  rolePrompt: `${username} does things`,
  tools: ['core'],
  ...extra,
})
const writer = agent('a-writer', 'writer', { rolePrompt: 'Writes release notes and docs.', tools: ['core', 'artifacts'] })
const coder = agent('a-coder', 'coder', { rolePrompt: 'Fixes bugs in the backend.', tools: ['core', 'coding', 'vms'] })

const roomOf = (members: Record<string, MemberType>, extra: { kind?: 'room' | 'dm'; archived?: boolean } = {}): RoomState => ({
  exists: true,
  name: 'eng',
  description: '',
  visibility: 'public',
  kind: extra.kind ?? 'room',
  createdBy: 'ada',
  archived: extra.archived ?? false,
  members: new Map(Object.entries(members)),
  rangeDeleted: new Set(),
})

const facts = (f: Partial<SoftMentionFacts>): SoftMentionFacts => ({
  authorType: 'user',
  mentions: [],
  threadRootId: null,
  room: roomOf({ ada: 'user', 'a-writer': 'agent' }),
  candidates: [writer],
  threadHumans: 1,
  ...f,
})

describe('which messages are routed, and whether a model call is needed', () => {
  it('a person alone with one agent in a room wakes it without a call', () => {
    expect(routeWithoutModel(facts({}))).toEqual({ kind: 'wake', agent: writer })
  })

  it('a DM with an agent wakes it without a call', () => {
    const room = roomOf({ ada: 'user', 'a-writer': 'agent' }, { kind: 'dm' })
    expect(routeWithoutModel(facts({ room }))).toEqual({ kind: 'wake', agent: writer })
  })

  it('one agent among several people: the model decides (it or none)', () => {
    const room = roomOf({ ada: 'user', bob: 'user', 'a-writer': 'agent' })
    expect(routeWithoutModel(facts({ room }))).toEqual({ kind: 'ask', candidates: [writer] })
  })

  it('several agents: the model picks, even for a person alone with them', () => {
    const room = roomOf({ ada: 'user', 'a-writer': 'agent', 'a-coder': 'agent' })
    expect(routeWithoutModel(facts({ room, candidates: [writer, coder] }))).toEqual({ kind: 'ask', candidates: [writer, coder] })
  })

  it('one candidate left of several agents (the others out of budget or access) needs no call when the person is alone', () => {
    const room = roomOf({ ada: 'user', 'a-writer': 'agent', 'a-coder': 'agent' })
    expect(routeWithoutModel(facts({ room, candidates: [coder] }))).toEqual({ kind: 'wake', agent: coder })
  })

  it('an agent’s message routes nothing (agents would wake each other forever)', () => {
    expect(routeWithoutModel(facts({ authorType: 'agent' }))).toEqual({ kind: 'none', reason: 'not_a_person' })
  })

  it('a message that names an agent of the room is the hard mentions’ to route', () => {
    const mentions = [{ userId: 'a-writer', username: 'writer' }]
    expect(routeWithoutModel(facts({ mentions }))).toEqual({ kind: 'none', reason: 'names_an_agent' })
  })

  it('a message naming only a person may still be for an agent', () => {
    const room = roomOf({ ada: 'user', bob: 'user', 'a-writer': 'agent' })
    const mentions = [{ userId: 'bob', username: 'bob' }]
    expect(routeWithoutModel(facts({ room, mentions })).kind).toBe('ask')
  })

  it('a room without agents, or whose agents are all out of budget or reach, routes nothing', () => {
    expect(routeWithoutModel(facts({ room: roomOf({ ada: 'user', bob: 'user' }), candidates: [] }))).toEqual({
      kind: 'none',
      reason: 'no_agent',
    })
    expect(routeWithoutModel(facts({ candidates: [] }))).toEqual({ kind: 'none', reason: 'no_agent' })
  })

  it('an archived or unknown room routes nothing', () => {
    expect(routeWithoutModel(facts({ room: roomOf({ ada: 'user', 'a-writer': 'agent' }, { archived: true }) })).kind).toBe('none')
    expect(routeWithoutModel(facts({ room: { exists: false } }))).toEqual({ kind: 'none', reason: 'room_gone' })
  })

  it('a thread where several people wrote stays quiet; a thread of one person is routed like the room', () => {
    expect(routeWithoutModel(facts({ threadRootId: 'root', threadHumans: 2 }))).toEqual({ kind: 'none', reason: 'busy_thread' })
    expect(routeWithoutModel(facts({ threadRootId: 'root', threadHumans: 1 }))).toEqual({ kind: 'wake', agent: writer })
  })
})

describe('budgets', () => {
  const at = '2026-12-02T10:00:00.000Z'
  const month = '2026-12'
  const capsWith = (entries: Record<string, number>) => ({ ...caps.initialState, caps: entries })
  const spent = (entries: Record<string, number>) => ({ ...budget.initialState, spent: entries })
  const a = { agentId: 'a-writer', roomId: 'r1', taskId: null }

  it('no caps: every agent may be woken', () => {
    expect(hasBudget(budget.initialState, caps.initialState, 'org', a, at)).toBe(true)
  })

  it('an agent, room or org spent to its cap is not woken; below it, it is', () => {
    expect(hasBudget(spent({ 'agent:a-writer': 5 }), capsWith({ 'agent:a-writer': 5 }), 'org', a, at)).toBe(false)
    expect(hasBudget(spent({ 'room:r1': 9 }), capsWith({ 'room:r1': 5 }), 'org', a, at)).toBe(false)
    expect(hasBudget(spent({ 'org:org': 5 }), capsWith({ 'org:org': 5 }), 'org', a, at)).toBe(false)
    expect(hasBudget(spent({ 'agent:a-writer': 4 }), capsWith({ 'agent:a-writer': 5 }), 'org', a, at)).toBe(true)
    // Another agent's cap is not this one's.
    expect(hasBudget(spent({ 'agent:a-coder': 5 }), capsWith({ 'agent:a-coder': 5 }), 'org', a, at)).toBe(true)
  })

  it('open reservations count until they expire', () => {
    const b = {
      ...budget.initialState,
      open: { r: { scopes: ['agent:a-writer'], amountMicroUsd: 5, expiresAt: `${month}-02T10:05:00.000Z` } },
    }
    const c = capsWith({ 'agent:a-writer': 5 })
    expect(hasBudget(b, c, 'org', a, at)).toBe(false)
    expect(hasBudget(b, c, 'org', a, `${month}-02T10:06:00.000Z`)).toBe(true)
  })
})

describe('the router’s prompt', () => {
  it('lists each agent’s username, name, role and tools, the recent messages and the new one', () => {
    const [system, user] = routerPrompt({
      candidates: [writer, coder],
      recent: [
        { author: 'bob', authorType: 'user', text: 'the deploy\nfailed again' },
        { author: 'coder', authorType: 'agent', text: 'looking' },
      ],
      message: { author: 'ada', authorType: 'user', text: 'can someone write the release notes?' },
      where: '#eng',
    })
    expect(system!.role).toBe('system')
    expect(system!.content).toContain(ROUTE_TOOL)
    expect(user!.content).toContain('- @writer (Writer)\n  role: Writes release notes and docs.\n  tools: core, artifacts')
    expect(user!.content).toContain('- @coder (Coder)\n  role: Fixes bugs in the backend.\n  tools: core, coding, vms')
    expect(user!.content).toContain('@bob: the deploy failed again\n@coder (agent): looking')
    expect(user!.content).toMatch(/The new message:\n@ada: can someone write the release notes\?$/)
  })

  it('clips long messages and role prompts', () => {
    const [, user] = routerPrompt({
      candidates: [agent('x', 'x', { rolePrompt: 'r'.repeat(5_000) })],
      recent: [{ author: 'bob', authorType: 'user', text: 'm'.repeat(5_000) }],
      message: { author: 'ada', authorType: 'user', text: 'hi' },
      where: '#eng',
    })
    expect(user!.content!.length).toBeLessThan(2_000)
  })
})

describe('reading the router’s answer strictly', () => {
  const call = (args: unknown, name = ROUTE_TOOL): LlmToolCall => ({
    id: 'c1',
    name,
    arguments: typeof args === 'string' ? args : JSON.stringify(args),
  })
  const parse = (answer: { text?: string; toolCalls?: LlmToolCall[] }) =>
    parseRoute({ text: answer.text ?? '', toolCalls: answer.toolCalls ?? [] }, [writer, coder])

  it('a call naming a candidate picks it (case and a leading @ aside)', () => {
    expect(parse({ toolCalls: [call({ agent: 'writer' })] })).toEqual({ kind: 'agent', agentId: 'a-writer' })
    expect(parse({ toolCalls: [call({ agent: '@Coder', reason: 'a bug' })] })).toEqual({ kind: 'agent', agentId: 'a-coder' })
  })

  it('null picks nobody', () => {
    expect(parse({ toolCalls: [call({ agent: null })] })).toEqual({ kind: 'none' })
  })

  it('a text answer is read only when it is exactly the call’s JSON', () => {
    expect(parse({ text: ' {"agent":"writer"} ' })).toEqual({ kind: 'agent', agentId: 'a-writer' })
    expect(parse({ text: '{"agent":null}' })).toEqual({ kind: 'none' })
    expect(parse({ text: 'I think @writer should do it' }).kind).toBe('invalid')
    expect(parse({ text: '```json\n{"agent":"writer"}\n```' }).kind).toBe('invalid')
    expect(parse({ text: '' }).kind).toBe('invalid')
  })

  it('anything else picks nobody: an unknown name, another tool, two calls, extra or missing fields, bad JSON', () => {
    expect(parse({ toolCalls: [call({ agent: 'ghost' })] })).toEqual({ kind: 'invalid', detail: 'no such agent: ghost' })
    expect(parse({ toolCalls: [call({ agent: 'writer' }, 'stay_silent')] })).toEqual({
      kind: 'invalid',
      detail: 'called stay_silent',
    })
    expect(parse({ toolCalls: [call({ agent: 'writer' }), call({ agent: 'coder' })] }).kind).toBe('invalid')
    expect(parse({ toolCalls: [call({ agent: 'writer', also: 'coder' })] }).kind).toBe('invalid')
    expect(parse({ toolCalls: [call({})] }).kind).toBe('invalid')
    expect(parse({ toolCalls: [call({ agent: 3 })] }).kind).toBe('invalid')
    expect(parse({ toolCalls: [call('{"agent": "wri')] }).kind).toBe('invalid')
    expect(parse({ toolCalls: [call(['writer'])] }).kind).toBe('invalid')
  })
})

describe('task assignments', () => {
  const task = (assignee: string | null, extra: { deleted?: boolean; status?: 'todo' | 'done' | 'cancelled' } = {}) =>
    ({
      exists: true,
      deleted: extra.deleted ?? false,
      title: 'Ship it',
      description: 'All of it.',
      roomId: 'r1',
      parentId: null,
      reporterId: 'ada',
      assignee: assignee ? { id: assignee, type: 'agent' } : null,
      status: extra.status ?? 'todo',
    }) as never

  it('an open task assigned to an agent by someone else wakes it', () => {
    expect(wakesAgent({ id: 'a-writer', type: 'agent' }, 'ada', task('a-writer'))).toBe(true)
  })

  it('a person, nobody, the agent itself, a deleted or closed task, or a task handed on since wakes nobody', () => {
    expect(wakesAgent({ id: 'bob', type: 'user' }, 'ada', task('bob'))).toBe(false)
    expect(wakesAgent(null, 'ada', task(null))).toBe(false)
    expect(wakesAgent({ id: 'a-writer', type: 'agent' }, 'a-writer', task('a-writer'))).toBe(false)
    expect(wakesAgent({ id: 'a-writer', type: 'agent' }, 'ada', task('a-writer', { deleted: true }))).toBe(false)
    expect(wakesAgent({ id: 'a-writer', type: 'agent' }, 'ada', task('a-writer', { status: 'done' }))).toBe(false)
    expect(wakesAgent({ id: 'a-writer', type: 'agent' }, 'ada', task('a-coder'))).toBe(false)
    expect(wakesAgent({ id: 'a-writer', type: 'agent' }, 'ada', { exists: false })).toBe(false)
  })

  it('the agent reads the task’s title and description', () => {
    expect(assignmentText({ title: 'Ship it', description: ' All of it. ' })).toBe(
      'You were assigned the task “Ship it”.\n\nAll of it.',
    )
    expect(assignmentText({ title: 'Ship it', description: '' })).toBe('You were assigned the task “Ship it”.')
  })
})

describe('the router’s model', () => {
  it('is AGENT_ROUTER_MODEL, else the agents’ default model', () => {
    expect(loadConfig({}).AGENT_ROUTER_MODEL).toBe(loadConfig({}).AGENT_DEFAULT_MODEL)
    expect(loadConfig({ AGENT_DEFAULT_MODEL: 'big' }).AGENT_ROUTER_MODEL).toBe('big')
    expect(loadConfig({ AGENT_DEFAULT_MODEL: 'big', AGENT_ROUTER_MODEL: 'small' }).AGENT_ROUTER_MODEL).toBe('small')
  })
})
