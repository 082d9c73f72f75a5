import { createHash } from 'node:crypto'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { streamName } from '../../adapters/event-store.ts'
import { createLogger } from '../../adapters/logger.ts'
import { openAiLlm } from '../../adapters/openai-llm.ts'
import { pipelineDeps } from '../../commands/command-context.ts'
import { runStream, threadIdFor, threadStream } from '../../commands/runs.ts'
import type { ThreadWorkType } from '../../domain/threads.ts'
import { readModelReads, SOFT_MENTIONS_PROCESSOR, softMentionsProcessor } from '../../processors/agents/soft-mentions.ts'
import { agentTaskAssignmentsProcessor } from '../../processors/agents/task-assignments.ts'
import type { ProcessorContext } from '../../processors/processor.ts'
import { join, signUp } from '../support/identity.ts'
import { type ModelServer, startModelServer } from '../support/openai-server.ts'
import { startTestServer, type TestServer } from '../support/server.ts'

/*
 * Soft mentions and task assignments without the processors' runtime: the processors are handed the events as the
 * runtime would hand them, against a real server (its event store and read models) and a local model server with
 * scripted answers over the real wire format. What they did is read back from the event store: which agents'
 * threads started a run for which trigger.
 */

let server: TestServer
let model: ModelServer
let olga: Awaited<ReturnType<typeof signUp>>
let bob: Awaited<ReturnType<typeof join>>
let writer: { agentId: string; username: string }
let coder: { agentId: string; username: string }
/** olga and the writer agent. */
let solo: string
/** olga, bob, the writer and the coder. */
let eng: string
let logs: { level: number; msg: string; [k: string]: unknown }[] = []

const TIMEOUT_MS = 400

beforeAll(async () => {
  model = await startModelServer()
  // Without the processors role: the processors are driven by hand here.
  server = await startTestServer({ ROLES: 'api,projector,realtime' })
  olga = await signUp(server, { email: 'olga@soft.test', orgName: 'Soft', username: 'olga' })
  bob = await join(server, olga.token, { email: 'bob@soft.test', role: 'member', username: 'bob' })
  seen = bob.position
  writer = await createAgent('Writer', 'Writes release notes and documentation.', ['artifacts'])
  coder = await createAgent('Coder', 'Fixes bugs in the backend and reviews pull requests.', ['coding', 'vms'])
  solo = await createRoom('solo', [{ agentId: writer.agentId }])
  eng = await createRoom('eng', [{ userId: bob.userId }, { agentId: writer.agentId }, { agentId: coder.agentId }])
}, 120_000)
afterAll(async () => {
  await server?.close()
  await model?.close()
})

/** The newest position a command answered: later commands read the directory at least that far. */
let seen = 0

async function ok(method: string, path: string, body: unknown, token = olga.token) {
  const r = await server.request(method, path, { token, body, headers: { 'consistent-after': String(seen) } })
  expect(r.status, `${method} ${path}: ${JSON.stringify(r.body)}`).toBeLessThan(300)
  if (typeof r.body?.position === 'number') seen = Math.max(seen, r.body.position)
  return r.body
}

async function createAgent(name: string, rolePrompt: string, tools: string[]) {
  const body = await ok('POST', '/api/agents', { name, rolePrompt, tools })
  return { agentId: body.agentId as string, username: body.username as string }
}

async function createRoom(name: string, members: ({ userId: string } | { agentId: string })[]) {
  const { roomId } = await ok('POST', '/api/rooms', { name, visibility: 'private' })
  for (const m of members) await ok('POST', `/api/rooms/${roomId}/members`, m)
  return roomId as string
}

/** A context as the runtime gives one for the event: ids derived from it, its logs kept for the test. */
const contextFor = (key: string): ProcessorContext => {
  const logger = createLogger('debug', {}, { write: (line: string) => void logs.push(JSON.parse(line)) })
  return {
    logger,
    idFor: (purpose) => {
      const h = createHash('sha256').update(`${key}\0${purpose}`).digest('hex')
      return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20, 32)}`
    },
    schedule: async () => {
      throw new Error('no timers here')
    },
    cancel: async () => {},
    signal: new AbortController().signal,
  }
}

const soft = () =>
  softMentionsProcessor({
    ...pipelineDeps(server.services),
    llm: openAiLlm({ baseUrl: model.url, apiKey: 'sk-local', api: 'chat', maxRetries: 0 }),
    model: 'router-mini',
    reads: readModelReads(server.services.db),
    timeoutMs: TIMEOUT_MS,
  })

/** Hands the stream's event at `index` to the processor, as the runtime would. */
async function handle(processor: { handle(event: never, ctx: ProcessorContext): Promise<void> }, stream: string, index = 0) {
  const event = (await server.services.store.readStream(stream))[index]!
  await processor.handle(event as never, contextFor(event.id))
  return event
}

/** Posts as `who`, waits until the messages read model has it, and hands its message.created to the processor. */
async function post(roomId: string, text: string, options: { who?: { token: string }; threadRootId?: string } = {}) {
  const token = (options.who ?? olga).token
  const r = await server.request('POST', `/api/rooms/${roomId}/messages`, {
    token,
    body: { text, ...(options.threadRootId ? { threadRootId: options.threadRootId } : {}) },
  })
  expect(r.status, JSON.stringify(r.body)).toBe(201)
  const seen = await server.request('GET', `/api/rooms/${roomId}/messages?consistentAfter=${r.body.position}`, { token })
  expect(seen.status).toBe(200)
  const messageId = r.body.messageId as string
  await handle(soft(), streamName('message', messageId))
  return messageId
}

/** The runs an agent's thread started or queued for, by trigger: what the processors did, read from the store. */
async function triggersOf(
  agentId: string,
  roomId: string,
  taskId: string | null = null,
  workType: ThreadWorkType = 'conversation',
) {
  const threadId = threadIdFor({ tenantId: olga.orgId, agentId, roomId, taskId, workType })
  const events = await server.services.store.readStream(threadStream(threadId))
  return events.flatMap((e) => {
    if (e.type === 'thread.run_queued') return (e.data as { inputs: { trigger: object }[] }).inputs.map((i) => i.trigger)
    if (e.type === 'thread.input_queued') return [(e.data as { input: { trigger: object } }).input.trigger]
    return []
  })
}

const woken = async (messageId: string) => {
  const out: string[] = []
  for (const a of [writer, coder]) {
    for (const roomId of [solo, eng]) {
      if ((await triggersOf(a.agentId, roomId)).some((t) => JSON.stringify(t) === JSON.stringify({ type: 'mention', messageId })))
        out.push(`${a.username}@${roomId === solo ? 'solo' : 'eng'}`)
    }
  }
  return out
}

const routeCall = (agent: string | null) => ({ toolCalls: [{ name: 'route_message', arguments: { agent } }] })

describe('soft mentions', () => {
  it('alone with one agent, a person’s message wakes it without a model call, and its run is queued', async () => {
    const before = model.requests.length
    const messageId = await post(solo, 'can you draft the notes for 2.3?')
    expect(model.requests.length).toBe(before)
    expect(await woken(messageId)).toEqual(['writer@solo'])
    const threadId = threadIdFor({
      tenantId: olga.orgId,
      agentId: writer.agentId,
      roomId: solo,
      taskId: null,
      workType: 'conversation',
    })
    const [created, queued] = await server.services.store.readStream(threadStream(threadId))
    expect(created!.type).toBe('thread.created')
    expect(queued!.type).toBe('thread.run_queued')
    const runId = (queued!.data as { runId: string }).runId
    const [run] = await server.services.store.readStream(runStream(runId))
    expect(run!.type).toBe('run.queued')
    expect(run!.data).toMatchObject({
      agentId: writer.agentId,
      roomId: solo,
      taskId: null,
      inputs: [{ trigger: { type: 'mention', messageId }, text: 'can you draft the notes for 2.3?' }],
    })
    expect(run!.metadata.actor).toEqual({ type: 'system', id: `processor:${SOFT_MENTIONS_PROCESSOR}` })
  })

  it('among several people and agents, the model picks one from the recent messages and each agent’s name, role and tools', async () => {
    await post(eng, 'the deploy of 2.3 failed with a 500 on /api/tasks', { who: bob })
    model.answer([routeCall('coder')])
    const before = model.requests.length
    const messageId = await post(eng, 'could someone look into why it broke?')
    expect(model.requests.length).toBe(before + 1)
    expect(await woken(messageId)).toEqual(['coder@eng'])
    const request = model.requests.at(-1)!
    expect(request.body.model).toBe('router-mini')
    expect(request.body.tools.map((t: { function: { name: string } }) => t.function.name)).toEqual(['route_message'])
    const prompt = (request.body.messages as { content: string }[]).map((m) => m.content).join('\n')
    expect(prompt).toContain('- @writer (Writer)\n  role: Writes release notes and documentation.\n  tools: core, artifacts')
    expect(prompt).toContain(
      '- @coder (Coder)\n  role: Fixes bugs in the backend and reviews pull requests.\n  tools: core, coding, vms',
    )
    expect(prompt).toContain('@bob: the deploy of 2.3 failed with a 500 on /api/tasks')
    expect(prompt).toContain('Agents in #eng')
    expect(prompt).toContain('The new message:\n@olga: could someone look into why it broke?')
  })

  it('the router’s call is metered against the org and the room', async () => {
    const records = await server.services.pool.query<{
      data: { usage: { model: string }; roomId: string; agentId: string | null }
    }>(`select data from eventstore.events where event_type = 'usage.recorded' and tenant_id = $1`, [olga.orgId])
    expect(records.rows.map((r) => r.data)).toContainEqual(
      expect.objectContaining({
        roomId: eng,
        agentId: null,
        usage: expect.objectContaining({ kind: 'llm', model: 'router-mini' }),
      }),
    )
  })

  it('handled again (a crash before the checkpoint), the message asks the model nothing more and wakes nothing new', async () => {
    model.answer([routeCall('writer')])
    const messageId = await post(eng, 'and please fix it')
    expect(await woken(messageId)).toEqual(['writer@eng'])
    const before = model.requests.length
    await handle(soft(), streamName('message', messageId))
    expect(model.requests.length).toBe(before)
    expect(await woken(messageId)).toEqual(['writer@eng'])
  })

  it('the model picks none: nothing is woken', async () => {
    model.answer([routeCall(null)])
    const messageId = await post(eng, 'lunch at noon, bob?')
    expect(await woken(messageId)).toEqual([])
  })

  it('a text answer that is the route’s JSON is read; any other text, an unknown name or another tool routes nothing, with a log line', async () => {
    model.answer([{ text: '{"agent": "writer"}' }])
    expect(await woken(await post(eng, 'notes for 2.4 please'))).toEqual(['writer@eng'])
    for (const answer of [
      { text: 'I think the coder should take this one.' },
      routeCall('ghost'),
      { toolCalls: [{ name: 'stay_silent', arguments: {} }] },
      { toolCalls: [{ name: 'route_message', arguments: { agent: 'coder', extra: true } }] },
    ]) {
      model.answer([answer])
      logs = []
      const messageId = await post(eng, `which one? ${JSON.stringify(answer).slice(0, 40)}`)
      expect(await woken(messageId)).toEqual([])
      expect(logs.some((l) => l.msg.includes('no pick') && l.messageId === messageId && l.level === 40)).toBe(true)
    }
  })

  it('a model error (500) routes nothing and does not fail the event (no retry, no parking)', async () => {
    model.answer([{ status: 500, message: 'model down' }])
    logs = []
    const messageId = await post(eng, 'anyone on this?')
    expect(await woken(messageId)).toEqual([])
    expect(logs.some((l) => l.msg.includes('the router failed') && l.kind === 'unavailable')).toBe(true)
  })

  it('a model that hangs is cut off at the timeout; nothing is routed', async () => {
    model.answer([{ hold: true }])
    logs = []
    const started = Date.now()
    const messageId = await post(eng, 'hello? anyone?')
    expect(await woken(messageId)).toEqual([])
    expect(logs.some((l) => l.msg.includes('timed out') && l.messageId === messageId)).toBe(true)
    // Bounded by the timeout, not by the server (which would hold forever).
    expect(Date.now() - started).toBeLessThan(30_000)
  })

  it('a message that @-mentions an agent is left to the hard mentions: no call, nothing woken here', async () => {
    model.answer([routeCall('writer')])
    const before = model.requests.length
    const messageId = await post(eng, `@${coder.username} and the notes?`)
    expect(model.requests.length).toBe(before)
    expect(await woken(messageId)).toEqual([])
  })

  it('a thread where two people wrote stays quiet; a thread of one person is routed', async () => {
    model.answer([routeCall('coder')])
    const root = await post(eng, 'incident notes thread', { who: bob })
    await post(eng, 'first: the 500s started at 10:02', { who: bob, threadRootId: root })
    const before = model.requests.length
    const busy = await post(eng, 'and who restarts the workers?', { threadRootId: root })
    expect(model.requests.length).toBe(before)
    expect(await woken(busy)).toEqual([])
    const mine = await post(eng, 'my own thread')
    const reply = await post(eng, 'can this be automated?', { threadRootId: mine })
    expect(await woken(reply)).toEqual(['coder@eng'])
    const prompt = (model.requests.at(-1)!.body.messages as { content: string }[]).map((m) => m.content).join('\n')
    expect(prompt).toContain('a thread of #eng')
    expect(prompt).toContain('@olga: my own thread')
  })

  it('an agent the author may not use in the room (its access) is not offered; an admin may still use it', async () => {
    await ok('PATCH', `/api/agents/${writer.agentId}`, { access: { org: 'members', rooms: { [eng]: 'admins' } } })
    const agentsIn = () =>
      (model.requests.at(-1)!.body.messages as { content: string }[])
        .map((m) => m.content)
        .join('\n')
        .match(/^- @\w+/gm)
    model.answer([routeCall(null)])
    await post(eng, 'who can write the notes?', { who: bob })
    expect(agentsIn()).toEqual(['- @coder'])
    await post(eng, 'who can write the notes, then?')
    expect(agentsIn()).toEqual(['- @writer', '- @coder'])
    await ok('PATCH', `/api/agents/${writer.agentId}`, { access: { org: 'members', rooms: {} } })
  })

  it('an agent whose cap is spent is not offered; with one agent left and the author alone with it, no call is made', async () => {
    const cap = await server.request('PUT', '/api/limits', {
      token: olga.token,
      body: { scope: 'agent', scopeId: writer.agentId, usd: 0 },
    })
    expect(cap.status, JSON.stringify(cap.body)).toBe(200)
    model.answer([routeCall('coder')])
    const messageId = await post(eng, 'who can help with the release?')
    expect(await woken(messageId)).toEqual(['coder@eng'])
    const prompt = (model.requests.at(-1)!.body.messages as { content: string }[]).map((m) => m.content).join('\n')
    expect(prompt).not.toContain('@writer (Writer)')
    const before = model.requests.length
    const alone = await post(solo, 'the notes, please')
    expect(model.requests.length).toBe(before)
    expect(await woken(alone)).toEqual([])
    await ok('PUT', '/api/limits', { scope: 'agent', scopeId: writer.agentId, usd: null })
  })
})

describe('task assignments', () => {
  it('a task created for an agent wakes it in the task’s thread; handed to another agent, that one wakes; repeats wake nothing new', async () => {
    const created = await ok('POST', '/api/tasks', {
      title: 'Write the 2.3 notes',
      description: 'From the merged pull requests.',
      roomId: eng,
      assignee: { agentId: writer.agentId },
    })
    const taskId = created.taskId as string
    const stream = streamName('task', taskId)
    const assignments = agentTaskAssignmentsProcessor(pipelineDeps(server.services))
    const first = await handle(assignments, stream, 0)
    expect(first.type).toBe('task.created')
    expect(await triggersOf(writer.agentId, eng, taskId)).toEqual([{ type: 'task_assigned', taskId, assignmentId: first.id }])
    const threadId = threadIdFor({ tenantId: olga.orgId, agentId: writer.agentId, roomId: eng, taskId, workType: 'conversation' })
    const queued = (await server.services.store.readStream(threadStream(threadId))).find((e) => e.type === 'thread.run_queued')!
    const [run] = await server.services.store.readStream(runStream((queued.data as { runId: string }).runId))
    expect(run!.data).toMatchObject({
      agentId: writer.agentId,
      roomId: eng,
      taskId,
      inputs: [{ text: 'You were assigned the task “Write the 2.3 notes”.\n\nFrom the merged pull requests.' }],
    })
    // The same event again: the thread has seen its trigger.
    await handle(assignments, stream, 0)
    expect(await triggersOf(writer.agentId, eng, taskId)).toHaveLength(1)

    await ok('PATCH', `/api/tasks/${taskId}`, { assignee: { agentId: coder.agentId } })
    const events = await server.services.store.readStream(stream)
    const reassigned = events.findIndex((e) => e.type === 'task.assigned')
    const second = await handle(assignments, stream, reassigned)
    expect(await triggersOf(coder.agentId, eng, taskId)).toEqual([{ type: 'task_assigned', taskId, assignmentId: second.id }])
    // The first assignment handled late, after the task was handed on: the writer is not woken again.
    await handle(assignments, stream, 0)
    expect(await triggersOf(writer.agentId, eng, taskId)).toHaveLength(1)

    // Handed to a person: nobody is woken.
    await ok('PATCH', `/api/tasks/${taskId}`, { assignee: { userId: bob.userId } })
    const toBob = (await server.services.store.readStream(stream)).findLastIndex((e) => e.type === 'task.assigned')
    await handle(assignments, stream, toBob)
    expect(await triggersOf(coder.agentId, eng, taskId)).toHaveLength(1)
  })
})
