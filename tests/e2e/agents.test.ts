import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { publicPosition } from '../../adapters/event-store.ts'
import { type ItemsField, type RealtimePayload, realtimePayloads } from '../../domain/realtime-payloads.ts'
import {
  byScripts,
  lastUserText,
  mention as mentioned,
  okRequests,
  privateRoom,
  readyAgent,
  runIn,
  type Script,
  scratch,
  startAgentServers,
  stopAgentServers,
  until,
  type Who,
} from '../support/agents.ts'
import { join, signUp } from '../support/identity.ts'
import type { ModelServer } from '../support/openai-server.ts'
import { operatorToken } from '../support/operator.ts'
import type { TestServer } from '../support/server.ts'

/*
 * Agents end to end, over HTTP as clients, with the real openai SDK talking to a local model server that speaks the
 * wire format: a mention wakes the agent, the run streams its items to the room's members over realtime and ends
 * with the agent's answer posted in the room; tools run in a loop; a risky call waits for a person; a cancel
 * reaches the model call mid-stream; a spend cap stops a run before the model is called.
 */

type Queue = { queueId: string; lastEventId: string }
type Delivered = { type: string; data: Record<string, unknown> }

let model: ModelServer
let server: TestServer
let owner: Who
let member: Who
let outsider: Who
let ada: { agentId: string; username: string; position: number }
let roomId: string
let queue: Queue

const ok = okRequests(() => server)

/** What the model is asked to do, by the last thing said to it: each test scripts its own answers. */
const scripts = new Map<string, Script>()

/** Mentions Ada with `text` and returns the run the mention started, once it is in `statuses`. */
const mention = (text: string, statuses: readonly string[]) =>
  mentioned(server, { by: owner, roomId, agent: ada, text, statuses })

async function drain(who: Who, q: Queue, last: (e: Delivered) => boolean): Promise<Delivered[]> {
  const got: Delivered[] = []
  return until('the realtime event awaited', async () => {
    const r = await ok('GET', `/realtime/events?queueId=${q.queueId}&lastEventId=${q.lastEventId}&dontBlock=true`, who)
    for (const e of r.events) {
      q.lastEventId = e.id
      got.push({ type: e.type, data: e.data })
    }
    return got.some(last) ? got : null
  })
}

beforeAll(async () => {
  ;({ model, server } = await startAgentServers(byScripts(scripts)))
  owner = await signUp(server, { email: 'owner@agents.test', orgName: 'Agents Inc', username: 'owner' })
  member = await join(server, owner.token, { email: 'member@agents.test', role: 'member', username: 'member' })
  outsider = await signUp(server, { email: 'eve@elsewhere.test', orgName: 'Elsewhere', username: 'eve' })
  ada = await readyAgent(server, owner, { name: 'Ada', username: 'ada' })
  roomId = await privateRoom(server, owner, 'ops', [{ userId: member.userId }, { agentId: ada.agentId }])
  queue = await ok('POST', '/realtime/register', member, {})
}, 120_000)

afterAll(() => stopAgentServers({ model, server }))

describe('a mention wakes the agent, and the room watches the run', () => {
  let delivered: Delivered[]
  let runId: string

  it('the run streams its answer, completes, and the agent posts it in the room', async () => {
    scripts.set('is the build green', () => ({ text: 'Yes: all 412 tests passed on main.', usage: { input: 300, output: 12 } }))
    const { run, thread } = await mention('is the build green?', ['completed'])
    runId = run.id
    expect(thread).toMatchObject({ agentId: ada.agentId, roomId, workType: 'conversation' })
    await until('the thread free again', async () => (await ok('GET', `/api/threads/${thread.id}`, owner)).activeRunId === null)
    expect(run.items.map((i: { kind: string; status: string; content: string }) => [i.kind, i.status, i.content])).toEqual([
      ['message', 'completed', 'Yes: all 412 tests passed on main.'],
    ])
    expect(run.groups).toEqual([expect.objectContaining({ kind: 'message', status: 'completed', itemIds: [run.items[0].id] })])
    delivered = await drain(member, queue, (e) => e.type === 'message.created' && e.data.authorId === ada.agentId)
    const answer = delivered.find((e) => e.type === 'message.created' && e.data.authorId === ada.agentId)!
    expect(answer.data).toMatchObject({ roomId, authorType: 'agent', text: 'Yes: all 412 tests passed on main.' })
  })

  it('the model was given the agent’s role, how to act, the conversation, and its tools', () => {
    const request = model.requests.find((r) => lastUserText(r).includes('is the build green'))!
    const [system, history] = request.body.messages as { role: string; content: string }[]
    expect(system).toMatchObject({ role: 'system' })
    expect(system!.content).toContain('You are Ada')
    expect(system!.content).toContain('helps')
    expect(history!.content).toContain('#ops')
    expect(request.body.model).toBe('local-model')
    expect(request.body.stream).toBe(true)
    // The answer is bounded by what the window held back for it and what the call was priced on.
    expect(request.body.max_completion_tokens).toBe(4_096)
    expect((request.body.tools as { function: { name: string } }[]).map((t) => t.function.name)).toEqual(
      expect.arrayContaining(['create_task', 'delete_task', 'post_message', 'read_messages', 'search_messages', 'stay_silent']),
    )
  })

  it('a room member hears the thread, the run and every item change, in order, each item with the next sequence', () => {
    const agentEvents = delivered.filter((e) => e.type.startsWith('agent.') && e.data.runId === runId)
    const changes = agentEvents.map((e) => (e.data.change as string | undefined) ?? e.type)
    expect(changes.filter((c) => c.startsWith('run.'))[0]).toBe('run.queued')
    expect(changes).toContain('run.claimed')
    expect(changes.at(-1)).toBe('run.completed')
    const items = agentEvents.filter((e) => e.type === 'agent.run_item_updated')
    expect(items.length).toBeGreaterThanOrEqual(2)
    expect(items.map((e) => e.data.sequence)).toEqual(items.map((_, i) => i + 1))
    expect(items.at(-1)!.data).toMatchObject({ status: 'completed', content: 'Yes: all 412 tests passed on main.' })
    expect(delivered.some((e) => e.type === 'agent.run_item_group_updated' && e.data.status === 'completed')).toBe(true)
    expect(delivered.some((e) => e.type === 'agent.thread_changed' && e.data.change === 'thread.created')).toBe(true)
  })

  it('each agent event carries only fields the REST resources it is about show', async () => {
    const thread = (await ok('GET', `/api/threads?roomId=${roomId}`, member)).items[0]
    const detail = await ok('GET', `/api/threads/${thread.id}`, member)
    const run = detail.runs.find((r: { id: string }) => r.id === runId)
    const views: Record<string, Record<string, unknown>> = {
      Thread: detail,
      Run: run,
      RunItem: run.items[0],
      RunItemGroup: run.groups[0],
    }
    const table = realtimePayloads as Readonly<Record<string, RealtimePayload<Record<string, unknown>>>>
    for (const e of delivered.filter((x) => x.type.startsWith('agent.'))) {
      const type = (e.data.change as string | undefined) ?? Object.keys(table).find((t) => table[t]!.type === e.type)!
      const payload = table[type]!
      for (const key of Object.keys(e.data)) {
        if (key === 'change') continue
        const shown = payload.fields[key] as string | ItemsField | undefined
        expect(shown, `${type} delivered ${key}`).toBeDefined()
        expect(Object.keys(views[payload.resource]!), `${type}.${key}`).toContain(
          typeof shown === 'string' ? shown : shown!.field,
        )
      }
    }
  })

  it('someone who may not read the room sees neither the thread nor the run', async () => {
    const thread = (await ok('GET', `/api/threads?roomId=${roomId}`, owner)).items[0]
    expect((await server.request('GET', `/api/threads/${thread.id}`, { token: outsider.token })).status).toBe(404)
    expect((await server.request('GET', `/api/runs/${runId}/items`, { token: outsider.token })).status).toBe(404)
    expect((await server.request('POST', `/api/runs/${runId}/cancel`, { token: outsider.token })).status).toBe(404)
  })

  it('a client resumes a run’s items after the last sequence it saw', async () => {
    const all = await ok('GET', `/api/runs/${runId}/items`, member)
    expect(all.items).toHaveLength(1)
    const after = await ok('GET', `/api/runs/${runId}/items?afterSequence=${all.sequence}`, member)
    expect(after.items).toEqual([])
  })

  it('cancelling a finished run is a conflict', async () => {
    const r = await server.request('POST', `/api/runs/${runId}/cancel`, { token: member.token })
    expect(r.status).toBe(409)
  })
})

describe('the agent’s settings', () => {
  it('its reasoning effort reaches the model call', async () => {
    await ok('PATCH', `/api/agents/${ada.agentId}`, owner, { reasoningEffort: 'high' })
    scripts.set('think hard about the outage', () => ({ text: 'Thought about it.' }))
    await mention('think hard about the outage', ['completed'])
    const request = model.requests.find((r) => lastUserText(r).includes('think hard about the outage'))!
    expect(request.body.reasoning_effort).toBe('high')
    await ok('PATCH', `/api/agents/${ada.agentId}`, owner, { reasoningEffort: null })
  })

  it('a mention by someone its access leaves out wakes nothing', async () => {
    const changed = await ok('PATCH', `/api/agents/${ada.agentId}`, owner, { access: { org: 'admins' } })
    await ok('GET', `/api/agents/${ada.agentId}?consistentAfter=${changed.position}`, owner)
    scripts.set('members may not ask this', () => ({ text: 'should not run' }))
    const posted = await ok('POST', `/api/rooms/${roomId}/messages`, member, {
      text: `@${ada.username} members may not ask this`,
    })
    // An admin's mention after it does wake Ada: once its run is there, the member's would have been too.
    scripts.set('admins may ask this', () => ({ text: 'Yes.' }))
    const { thread } = await mention('admins may ask this', ['completed'])
    expect(posted.messageId).toBeDefined()
    for (const r of thread.runs) expect(JSON.stringify(r.inputs)).not.toContain('members may not ask this')
    await ok('PATCH', `/api/agents/${ada.agentId}`, owner, { access: { org: 'members' } })
  })
})

describe('memory', () => {
  it('a task the agent closed comes back as a note when it is asked about something like it', async () => {
    scripts.set('Rotate the TLS certificates', () => ({ text: 'On it.' }))
    const created = await ok('POST', '/api/tasks', owner, {
      title: 'Rotate the TLS certificates',
      description: 'the wildcard certificate of the ingress',
      roomId,
      assignee: { agentId: ada.agentId },
    })
    await ok('PATCH', `/api/tasks/${created.taskId}`, owner, { status: 'in_progress' })
    const closed = await ok('PATCH', `/api/tasks/${created.taskId}`, owner, { status: 'done' })
    await ok('GET', `/api/tasks/${created.taskId}?consistentAfter=${closed.position}`, owner)
    scripts.set('certificates expire again', () => ({ text: 'I rotated them last time: same steps.' }))
    await mention('the certificates expire again, what do we do?', ['completed'])
    const request = model.requests.find((r) => lastUserText(r).includes('certificates expire again'))!
    const notes = (request.body.messages as { role: string; content: string }[]).find((m) => m.content.startsWith('Notes from'))
    expect(notes?.content).toContain('Rotate the TLS certificates: the wildcard certificate of the ingress')
    const unrelated = model.requests.find((r) => lastUserText(r).includes('is the build green'))!
    expect(JSON.stringify(unrelated.body.messages)).not.toContain('Notes from')
  })
})

describe('tools', () => {
  it('the agent calls tools in a loop, reads their outputs, then answers', async () => {
    scripts.set('open a task for the flaky test', (_r, turn) =>
      turn === 0
        ? { toolCalls: [{ id: 'call_task', name: 'create_task', arguments: { title: 'Fix the flaky login test' } }] }
        : { text: 'Opened a task for it.' },
    )
    const { run } = await mention('open a task for the flaky test', ['completed'])
    expect(run.items.map((i: { kind: string }) => i.kind)).toEqual(['tool_call', 'tool_output', 'message'])
    expect(run.items[1].content).toMatch(/^Created task /)
    // Activity (the call and its output) is one group, the answer another.
    expect(run.groups.map((g: { kind: string; itemIds: string[] }) => [g.kind, g.itemIds.length])).toEqual([
      ['activity', 2],
      ['message', 1],
    ])
    const tasks = await ok('GET', `/api/tasks?roomId=${roomId}`, owner)
    expect(tasks.items.map((t: { title: string }) => t.title)).toContain('Fix the flaky login test')
    const second = model.requests.filter((r) => lastUserText(r).includes('open a task for the flaky test'))[1]!
    expect((second.body.messages as { role: string; content: string }[]).at(-1)).toMatchObject({ role: 'tool' })
  })

  it('an agent schedules its own wake-up: the durable timer wakes it in the same thread with its note', async () => {
    scripts.set('watch the deploy', (_r, turn) =>
      turn === 0
        ? {
            toolCalls: [
              {
                id: 'call_wake',
                name: 'schedule_wakeup',
                arguments: { note: 'check the deploy finished', at: new Date(Date.now() + 1_000).toISOString() },
              },
            ],
          }
        : { text: 'I will check back shortly.' },
    )
    scripts.set('The wake-up you scheduled is due: check the deploy finished', () => ({ text: 'The deploy finished.' }))
    const { thread } = await mention('watch the deploy', ['completed'])
    const woken = await until('the wake-up’s run completed', async () => {
      const detail = await ok('GET', `/api/threads/${thread.id}`, owner)
      return detail.runs.find(
        (r: { status: string; inputs: { trigger: { type: string } }[] }) =>
          r.status === 'completed' && r.inputs.some((i) => i.trigger.type === 'wakeup'),
      )
    })
    expect(woken.items.at(-1)).toMatchObject({ kind: 'message', content: 'The deploy finished.' })
  })

  it('a risky call waits for a person; approved, it runs and the run completes', async () => {
    // The task Ada opened above: she reported it, so she may delete it.
    const tasks = await ok('GET', `/api/tasks?roomId=${roomId}`, owner)
    const taskId = tasks.items.find((t: { title: string }) => t.title === 'Fix the flaky login test').id
    scripts.set('delete the obsolete task', (_r, turn) =>
      turn === 0 ? { toolCalls: [{ id: 'call_delete', name: 'delete_task', arguments: { taskId } }] } : { text: 'Deleted it.' },
    )
    const { run } = await mention('delete the obsolete task', ['requires_action'])
    expect(run.pendingAction).toEqual({ toolCallId: 'call_delete', tool: 'delete_task' })
    // It shows as an action item for the room's people, with what to approve, until it is decided.
    const waiting = await until('the action item', async () => {
      const r = await ok('GET', '/api/action-items?kind=tool_approval', member)
      return r.items.find((i: { runId: string }) => i.runId === run.id)
    })
    expect(waiting).toMatchObject({ roomId, tool: 'delete_task', toolCallId: 'call_delete' })
    expect((await server.request('GET', `/api/tasks/${taskId}`, { token: owner.token })).status).toBe(200)
    const stranger = (
      await server.request('POST', `/api/runs/${run.id}/approvals`, {
        token: outsider.token,
        body: { toolCallId: 'call_delete', decision: 'approve' },
      })
    ).status
    expect(stranger).toBe(404)
    await ok('POST', `/api/runs/${run.id}/approvals`, member, {
      toolCallId: 'call_delete',
      decision: 'approve',
    })
    const done = await mentionRun(run.id, ['completed'])
    const items = await ok('GET', `/api/action-items?kind=tool_approval&consistentAfter=${await head()}`, member)
    expect(items.items.filter((i: { runId: string }) => i.runId === run.id)).toEqual([])
    expect(done.items.map((i: { kind: string }) => i.kind)).toEqual(['tool_call', 'tool_output', 'message'])
    expect(done.items[1]).toMatchObject({ kind: 'tool_output', content: `Deleted task ${taskId}.` })
    await until(
      'the task gone',
      async () => (await server.request('GET', `/api/tasks/${taskId}`, { token: owner.token })).status === 404,
    )
  })

  it('a rejected call is not run: the model reads that it was rejected', async () => {
    const { taskId } = await ok('POST', '/api/tasks', owner, { title: 'Keep me', roomId })
    scripts.set('delete the task to keep', (_r, turn) =>
      turn === 0
        ? { toolCalls: [{ id: 'call_keep', name: 'delete_task', arguments: { taskId } }] }
        : { text: 'Understood, kept it.' },
    )
    const { run } = await mention('delete the task to keep', ['requires_action'])
    await ok('POST', `/api/runs/${run.id}/approvals`, member, { toolCallId: 'call_keep', decision: 'reject' })
    const done = await mentionRun(run.id, ['completed'])
    expect(done.items[1]).toMatchObject({
      kind: 'tool_output',
      status: 'failed',
      content: 'A person rejected this call: it was not run.',
    })
    expect((await server.request('GET', `/api/tasks/${taskId}`, { token: owner.token })).status).toBe(200)
  })

  it('approved with “always allow”, the tool runs without asking again for this agent in this room', async () => {
    scripts.set('tidy up a first scratch task', scratch('first'))
    const first = await mention('tidy up a first scratch task', ['requires_action'])
    await ok('POST', `/api/runs/${first.run.id}/approvals`, member, {
      toolCallId: 'first_tidy',
      decision: 'approve',
      alwaysAllow: true,
    })
    await mentionRun(first.run.id, ['completed'])
    scripts.set('tidy up a second scratch task', scratch('second'))
    const { run } = await mention('tidy up a second scratch task', ['completed'])
    expect(run.items.map((i: { kind: string; status: string }) => `${i.kind}:${i.status}`)).toEqual([
      'tool_call:completed',
      'tool_output:completed',
      'tool_call:completed',
      'tool_output:completed',
      'message:completed',
    ])
    expect(run.items[3].content).toMatch(/^Deleted task /)
  })
})

/** Where the store stands now: a read consistent after it reflects everything appended before. */
const head = async () => publicPosition(await server.services.store.headPosition())

/** A run, once it is in `statuses`. */
const mentionRun = (runId: string, statuses: readonly string[]) => runIn(server, owner, runId, statuses)

describe('stopping a run', () => {
  it('a cancel mid-stream reaches the model call within a second', async () => {
    scripts.set('write a long report', () => ({ hold: true, text: 'Starting the report' }))
    const abandoned = model.abandoned()
    const { run } = await mention('write a long report', ['in_progress'])
    await until('the first streamed words', async () => {
      const r = await ok('GET', `/api/runs/${run.id}/items`, owner)
      return r.items.some((i: { content: string }) => i.content.includes('Starting')) ? r : null
    })
    const cancelled = Date.now()
    await ok('POST', `/api/runs/${run.id}/cancel`, member)
    await until('the model request closed', async () => model.abandoned() > abandoned, 5_000)
    expect(Date.now() - cancelled).toBeLessThan(1_000 + 500)
    expect((await mentionRun(run.id, ['cancelled'])).status).toBe('cancelled')
  })

  it('a spend cap the next model call would pass stops the run incomplete, before the model is called', async () => {
    const ops = await operatorToken(server)
    await server
      .request('PUT', '/control/prices', {
        token: ops,
        body: {
          models: { 'local-model': { inputPerMTokUsd: 1_000, cachedInputPerMTokUsd: 1_000, outputPerMTokUsd: 1_000 } },
          vmMinuteUsd: {},
          diskGbMonthUsd: 0,
          storageGbMonthUsd: 0,
        },
      })
      .then((r) => expect(r.status, JSON.stringify(r.body)).toBe(200))
    await ok('PUT', '/api/limits', owner, { scope: 'agent', scopeId: ada.agentId, usd: 0.01 })
    scripts.set('summarise the week', () => ({ text: 'never asked' }))
    const asked = model.requests.length
    // A room of its own: a run still finishing in the shared room (a cancel just before) would hold the mention back.
    const capped = await privateRoom(server, owner, 'capped', [{ agentId: ada.agentId }])
    const { run } = await mentioned(server, {
      by: owner,
      roomId: capped,
      agent: ada,
      text: 'summarise the week',
      statuses: ['incomplete'],
    })
    expect(run.outcome).toMatchObject({ code: 'limit_reached' })
    expect(run.items.at(-1)).toMatchObject({ kind: 'error' })
    expect(run.items.at(-1).content).toContain('agent cap')
    expect(model.requests.length).toBe(asked)
    await ok('PUT', '/api/limits', owner, { scope: 'agent', scopeId: ada.agentId, usd: null })
  })
})
