import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  agentThread,
  byScripts,
  mention as mentioned,
  okRequests,
  privateRoom,
  readyAgent,
  type Script,
  startAgentServers,
  stopAgentServers,
  until,
  type Who,
} from '../support/agents.ts'
import { join, signUp } from '../support/identity.ts'
import type { ModelServer } from '../support/openai-server.ts'
import type { TestServer } from '../support/server.ts'

/*
 * An agent waits for a task, end to end over HTTP, with the local model server scripting its answers: mentioned, it
 * calls wait_for_task; when a person closes the task, its thread gets a new run whose input names the task, how it
 * ended and its result, and the agent's answer is posted in the room. A task already closed is answered at once; a
 * task the agent may not read is refused.
 */

type RunView = {
  id: string
  status: string
  inputs: { text: string; trigger: { type: string; taskId?: string } }[]
  items: { kind: string; status: string; content: string }[]
}

let model: ModelServer
let server: TestServer
let owner: Who
let member: Who
let ada: { agentId: string; username: string; position: number }
let roomId: string
/** A private room of the owner's that Ada is not in. */
let privateRoomId: string

const ok = okRequests(() => server)

const scripts = new Map<string, Script>()

/** Ada's thread in the room (not a task's), once there. */
const roomThread = async (after?: number) =>
  until('Ada’s thread in the room', async () => {
    const thread = await agentThread(server, owner, { roomId, agentId: ada.agentId, consistentAfter: after })
    return thread as { id: string; runs: RunView[] } | null
  })

/** Mentions Ada with `text` and returns the run it started, once completed. */
const mention = async (text: string): Promise<RunView> =>
  (await mentioned(server, { by: owner, roomId, agent: ada, text, statuses: ['completed'] })).run

/** Scripts Ada to call wait_for_task on `taskId` when asked `key`, then to answer `answer`. */
const waitsWhenAsked = (key: string, taskId: string, answer: string) =>
  scripts.set(key, (_r, turn) =>
    turn === 0
      ? {
          toolCalls: [{ id: `call_${key.length}`, name: 'wait_for_task', arguments: { taskId, note: 'then tell the room' } }],
        }
      : { text: answer },
  )

const task = async (who: Who, body: Record<string, unknown>) => (await ok('POST', '/api/tasks', who, body)).taskId as string

beforeAll(async () => {
  ;({ model, server } = await startAgentServers(byScripts(scripts)))
  owner = await signUp(server, { email: 'owner@waits.test', orgName: 'Waits Inc', username: 'owner' })
  member = await join(server, owner.token, { email: 'member@waits.test', role: 'member', username: 'member' })
  ada = await readyAgent(server, owner, { name: 'Ada', username: 'ada' })
  roomId = await privateRoom(server, owner, 'ops', [{ userId: member.userId }, { agentId: ada.agentId }])
  privateRoomId = await privateRoom(server, owner, 'board', [])
}, 120_000)

afterAll(() => stopAgentServers({ model, server }))

describe('an agent waits for a task', () => {
  it('when a person closes the task, the agent’s thread runs again with the task, its status and result', async () => {
    const taskId = await task(owner, {
      title: 'Migrate the billing tables',
      roomId,
      assignee: { userId: member.userId },
      reviewGates: { plan: false, result: true },
    })
    waitsWhenAsked('tell me when the migration is done', taskId, 'I will tell you when it is done.')
    const waited = await mention('tell me when the migration is done')
    expect(waited.items.map((i) => [i.kind, i.status])).toEqual([
      ['tool_call', 'completed'],
      ['tool_output', 'completed'],
      ['message', 'completed'],
    ])
    expect(waited.items[1]!.content).toContain(
      'You will be woken in this conversation when the task “Migrate the billing tables”',
    )

    scripts.set('Migrate the billing tables', () => ({ text: 'The billing tables are migrated: 3 tables, no downtime.' }))
    await ok('PATCH', `/api/tasks/${taskId}`, member, { status: 'in_progress' })
    await ok('POST', `/api/tasks/${taskId}/result`, member, { text: 'Migrated 3 tables, no downtime' })
    await ok('POST', `/api/tasks/${taskId}/approvals`, owner, { gate: 'result', decision: 'approve' })

    const woken = await until('the run the close started, completed', async () => {
      const thread = await roomThread()
      return thread.runs.find((r) => r.status === 'completed' && r.inputs.some((i) => i.trigger.type === 'task_closed'))
    })
    expect(woken.inputs).toHaveLength(1)
    expect(woken.inputs[0]!.trigger).toMatchObject({ type: 'task_closed', taskId })
    const input = woken.inputs[0]!.text
    expect(input).toContain('Migrate the billing tables')
    expect(input).toContain(taskId)
    expect(input).toContain('is done')
    expect(input).toContain('Migrated 3 tables, no downtime')
    expect(input).toContain('then tell the room')
    expect(woken.items.at(-1)).toMatchObject({
      kind: 'message',
      content: 'The billing tables are migrated: 3 tables, no downtime.',
    })
    const posted = await until('the answer in the room', async () => {
      const messages = await ok('GET', `/api/rooms/${roomId}/messages`, owner)
      return messages.items.find(
        (m: { authorId: string; text: string }) =>
          m.authorId === ada.agentId && m.text === 'The billing tables are migrated: 3 tables, no downtime.',
      )
    })
    expect(posted).toBeDefined()

    // Reopened and closed again, the wait (already woken) wakes nothing more.
    const runs = (await roomThread()).runs.length
    await ok('PATCH', `/api/tasks/${taskId}`, owner, { status: 'open' })
    const cancelled = await ok('PATCH', `/api/tasks/${taskId}`, owner, { status: 'cancelled' })
    await new Promise((r) => setTimeout(r, 1_500))
    expect((await roomThread(cancelled.position)).runs).toHaveLength(runs)
  })

  it('a task already closed is answered at once, and no wait is recorded', async () => {
    const taskId = await task(owner, { title: 'Renew the domain', roomId })
    const closed = await ok('PATCH', `/api/tasks/${taskId}`, owner, { status: 'done' })
    await ok('GET', `/api/tasks/${taskId}?consistentAfter=${closed.position}`, owner)
    waitsWhenAsked('wait for the domain renewal', taskId, 'It is done already.')
    const run = await mention('wait for the domain renewal')
    expect(run.items[1]).toMatchObject({ kind: 'tool_output', status: 'completed' })
    expect(run.items[1]!.content).toBe('The task “Renew the domain” is already done. It has no result recorded.')
    // No wait was recorded: reopened and closed again, the task wakes nobody.
    await ok('PATCH', `/api/tasks/${taskId}`, owner, { status: 'open' })
    const again = await ok('PATCH', `/api/tasks/${taskId}`, owner, { status: 'done' })
    await new Promise((r) => setTimeout(r, 1_500))
    const thread = await roomThread(again.position)
    expect(thread.runs.filter((r) => r.inputs.some((i) => i.trigger.taskId === taskId))).toEqual([])
  })

  it('a task the agent may not read, or that does not exist, is refused', async () => {
    const created = await ok('POST', '/api/tasks', owner, { title: 'Board salaries', roomId: privateRoomId })
    const hidden: string = created.taskId
    await ok('GET', `/api/tasks/${hidden}?consistentAfter=${created.position}`, owner)
    waitsWhenAsked('wait for the salaries task', hidden, 'I cannot see that task.')
    const run = await mention('wait for the salaries task')
    expect(run.items[1]).toMatchObject({ kind: 'tool_output', status: 'failed' })
    expect(run.items[1]!.content).toContain(`there is no task ${hidden} you may read`)
    const unknown = '0190a6c4-0000-7000-8000-000000000000'
    waitsWhenAsked('wait for the unknown task', unknown, 'There is no such task.')
    const other = await mention('wait for the unknown task')
    expect(other.items[1]).toMatchObject({ kind: 'tool_output', status: 'failed' })
    expect(other.items[1]!.content).toContain(`there is no task ${unknown} you may read`)
  })
})
