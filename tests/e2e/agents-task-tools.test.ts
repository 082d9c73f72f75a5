import { v7 as uuid } from 'uuid'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { builtinTools } from '../../processors/agents/builtin-tools.ts'
import { type ToolCall, ToolRegistry } from '../../processors/agents/tools.ts'
import {
  agentThread,
  byScripts,
  lastUserText,
  mention as mentioned,
  okRequests,
  privateRoom,
  type Script,
  startAgentServers,
  stopAgentServers,
  until,
  type Who,
} from '../support/agents.ts'
import { createAgent, join, signUp } from '../support/identity.ts'
import type { ModelServer } from '../support/openai-server.ts'
import type { TestServer } from '../support/server.ts'

/*
 * Agents change tasks through their tools, end to end over HTTP, with the local model server scripting the calls: a
 * task assigned to the agent wakes it, and it starts the work, submits its result for review and closes the task, under
 * the same rules as a person (a result gate keeps the task open until a person approves; the refusal is the model's to
 * read). An agent that may not read the task's room, as a member outside a private room or as a guest outside a public
 * one, changes nothing. A call run again (a resumed run) records nothing twice.
 */

type Item = { kind: string; status: string; content: string }
type RunView = { id: string; status: string; inputs: { text: string }[]; items: Item[] }

let model: ModelServer
let server: TestServer
/** The org's tenant id is its org id. */
let owner: Who & { orgId: string }
let member: Who
let ada: { agentId: string; username: string; position: number }
/** An agent with the org role of a guest, in the ops room only. */
let gus: { agentId: string; username: string; position: number }
let roomId: string

const ok = okRequests(() => server)

/** What the model is asked to do, by the last thing said to it: each test scripts its own answers. */
const scripts = new Map<string, Script>()

/** Answers with these tool calls, one turn each, then with `answer`. */
const calls =
  (steps: readonly { name: string; arguments: Record<string, unknown> }[], answer: string): Script =>
  (_r, turn) => {
    const step = steps[turn]
    return step ? { toolCalls: [{ id: `call_${turn}`, ...step }] } : { text: answer }
  }

/** The agent's completed run in its thread for the task, once there. */
const taskRun = (agentId: string, taskId: string) =>
  until(`a completed run for task ${taskId}`, async () => {
    const thread = await agentThread(server, owner, { roomId, agentId, taskId })
    return (thread?.runs as RunView[] | undefined)?.find((r) => r.status === 'completed')
  })

/** Mentions the agent with `text` in the ops room and returns the run it started, once completed. */
const mention = async (agent: { agentId: string; username: string }, text: string): Promise<RunView> =>
  (await mentioned(server, { by: owner, roomId, agent, text, statuses: ['completed'] })).run

const outputs = (run: RunView) => run.items.filter((i) => i.kind === 'tool_output')

/** The task as a person reads it, once it reflects what was recorded up to now. */
const taskNow = async (taskId: string) => {
  const head = Number((await server.services.store.headPosition()).sequence)
  return ok('GET', `/api/tasks/${taskId}?consistentAfter=${head}`, owner)
}

/** Scripts Ada's answers to being assigned the task `title`, then assigns it to her: answers the task's id. */
const assigned = async (title: string, script: Script, more: Record<string, unknown> = {}): Promise<string> => {
  scripts.set(`You were assigned the task “${title}”`, script)
  return (await ok('POST', '/api/tasks', owner, { title, roomId, assignee: { agentId: ada.agentId }, ...more })).taskId
}

beforeAll(async () => {
  ;({ model, server } = await startAgentServers(byScripts(scripts)))
  owner = await signUp(server, { email: 'owner@task-tools.test', orgName: 'Task Tools Inc', username: 'owner' })
  member = await join(server, owner.token, { email: 'member@task-tools.test', role: 'member', username: 'member' })
  ada = await createAgent(server, owner.token, { name: 'Ada', username: 'ada' })
  gus = await createAgent(server, owner.token, { name: 'Gus', username: 'gus' })
  const demoted = await ok('PATCH', `/api/users/${gus.agentId}`, owner, { role: 'guest' })
  await ok('GET', `/api/users?consistentAfter=${Math.max(ada.position, demoted.position)}`, owner)
  roomId = await privateRoom(server, owner, 'ops', [
    { userId: member.userId },
    { agentId: ada.agentId },
    { agentId: gus.agentId },
  ])
}, 120_000)

afterAll(() => stopAgentServers({ model, server }))

describe('an agent works a task assigned to it', () => {
  it('it starts the work, renames the task, closes it, and a person reads the changes', async () => {
    const taskId = await assigned(
      'Rotate the API keys',
      calls(
        [
          { name: 'update_task', arguments: { status: 'in_progress', title: 'Rotate the API keys of staging' } },
          { name: 'update_task', arguments: { status: 'in_progress' } },
          { name: 'update_task', arguments: { status: 'done' } },
        ],
        'Rotated the keys.',
      ),
    )
    const run = await taskRun(ada.agentId, taskId)
    expect(outputs(run).map((o) => [o.status, o.content])).toEqual([
      ['completed', `Updated task ${taskId} (now in_progress).`],
      // Already so: nothing is recorded twice.
      ['completed', `Task ${taskId} is already so: nothing changed.`],
      ['completed', `Updated task ${taskId} (now done).`],
    ])
    expect(await taskNow(taskId)).toMatchObject({ title: 'Rotate the API keys of staging', status: 'done' })
    const history = await server.services.store.readStream(`task-${taskId}`)
    expect(history.filter((e) => e.type === 'task.status_changed').map((e) => e.data)).toEqual([
      expect.objectContaining({ from: 'open', to: 'in_progress', by: ada.agentId }),
      expect.objectContaining({ from: 'in_progress', to: 'done', by: ada.agentId }),
    ])
    expect(history.at(-1)!.metadata.actor).toEqual({ type: 'agent', id: ada.agentId })
  })

  it('with a result gate, its early close is refused and it reads why; it submits the result, and a person’s approval closes the task', async () => {
    const result = 'Upgraded Postgres to 17 on all three replicas; no downtime.'
    const taskId = await assigned(
      'Upgrade Postgres',
      calls(
        [
          { name: 'update_task', arguments: { status: 'in_progress' } },
          { name: 'update_task', arguments: { status: 'done' } },
          { name: 'submit_task_result', arguments: { gate: 'result', text: result } },
        ],
        'Submitted the result for review.',
      ),
      { reviewGates: { result: true } },
    )
    const run = await taskRun(ada.agentId, taskId)
    const [started, early, submitted] = outputs(run)
    expect(started).toMatchObject({ status: 'completed', content: `Updated task ${taskId} (now in_progress).` })
    expect(early!.status).toBe('failed')
    expect(early!.content).toContain('the result needs a person’s approval before the task closes: submit it for review')
    expect(submitted).toMatchObject({ status: 'completed' })
    expect(submitted!.content).toContain(`Submitted the result of task ${taskId} for review`)
    // The model read the refusal before it submitted.
    const third = model.requests.filter((r) => lastUserText(r).includes('You were assigned the task “Upgrade Postgres”'))[2]!
    const said = (third.body.messages as { role: string; content: string }[]).at(-1)!
    expect(said.role).toBe('tool')
    expect(said.content).toContain('submit it for review')

    const waiting = await taskNow(taskId)
    expect(waiting).toMatchObject({ status: 'in_progress', effectiveStatus: 'waiting_for_approval' })
    expect(waiting.reviewGates.result).toMatchObject({ state: 'pending', text: result, submittedBy: ada.agentId })
    await ok('POST', `/api/tasks/${taskId}/approvals`, member, { gate: 'result', decision: 'approve' })
    expect(await taskNow(taskId)).toMatchObject({ status: 'done' })
  })

  it('it hands the task to a person', async () => {
    const taskId = await assigned(
      'Sign the vendor contract',
      calls(
        [{ name: 'update_task', arguments: { assigneeUserId: member.userId, status: 'blocked' } }],
        'Only a person signs: handed it on.',
      ),
    )
    const run = await taskRun(ada.agentId, taskId)
    expect(outputs(run)[0]).toMatchObject({ status: 'completed', content: `Updated task ${taskId} (now blocked).` })
    expect(await taskNow(taskId)).toMatchObject({ status: 'blocked', assignee: { id: member.userId, type: 'user' } })
  })
})

describe('an agent changes no task it may not read', () => {
  it('a member agent outside a private room: the task does not exist for it', async () => {
    const board = await privateRoom(server, owner, 'board', [])
    const { taskId } = await ok('POST', '/api/tasks', owner, { title: 'Board salaries', roomId: board })
    scripts.set('close the salaries task', calls([{ name: 'update_task', arguments: { taskId, status: 'done' } }], 'I cannot.'))
    const run = await mention(ada, 'close the salaries task')
    expect(outputs(run)[0]!.status).toBe('failed')
    expect(outputs(run)[0]!.content).toContain('no such task')
    expect(await taskNow(taskId)).toMatchObject({ status: 'open', title: 'Board salaries' })
  })

  it('a guest agent outside a public room: the task does not exist for it either', async () => {
    const lobby = (await ok('POST', '/api/rooms', owner, { name: 'lobby', visibility: 'public' })).roomId
    const { taskId } = await ok('POST', '/api/tasks', owner, { title: 'Tidy the lobby', roomId: lobby })
    scripts.set(
      'rename the lobby task',
      calls([{ name: 'update_task', arguments: { taskId, title: 'Renamed by a guest' } }], 'I cannot.'),
    )
    const run = await mention(gus, 'rename the lobby task')
    expect(outputs(run)[0]!.status).toBe('failed')
    expect(outputs(run)[0]!.content).toContain('no such task')
    scripts.set(
      'submit the lobby result',
      calls([{ name: 'submit_task_result', arguments: { taskId, gate: 'result', text: 'done' } }], 'I cannot.'),
    )
    const submitted = await mention(gus, 'submit the lobby result')
    expect(outputs(submitted)[0]!.status).toBe('failed')
    expect(outputs(submitted)[0]!.content).toContain('no such task')
    expect(await taskNow(taskId)).toMatchObject({ title: 'Tidy the lobby' })
  })
})

describe('a call run again (a resumed run)', () => {
  it('records nothing twice, and a submission a person approved meanwhile stands', async () => {
    const taskId = await assigned('Renew the certificates', () => ({ text: 'On it.' }), { reviewGates: { result: true } })
    await taskRun(ada.agentId, taskId)
    const tools = builtinTools(server.services)
    const ids = new Map<string, string>()
    const call = (toolCallId: string): ToolCall => ({
      tenantId: owner.orgId,
      agentId: ada.agentId,
      role: 'member',
      runId: 'unused',
      roomId,
      taskId,
      signal: new AbortController().signal,
      // The same id for the same purpose of the same call, as a resumed run derives them.
      idFor: (purpose) => {
        const key = `${toolCallId}:${purpose}`
        if (!ids.has(key)) ids.set(key, uuid())
        return ids.get(key)!
      },
    })
    const run = (name: string, toolCallId: string, args: Record<string, unknown>) => {
      const tool = tools.get(name)!
      return tool.run(ToolRegistry.parse(tool, JSON.stringify(args)), call(toolCallId))
    }
    const recorded = async (type: string) =>
      (await server.services.store.readStream(`task-${taskId}`)).filter((e) => e.type === type).length

    for (let i = 0; i < 2; i++) await run('update_task', 'start', { status: 'in_progress' })
    expect(await recorded('task.status_changed')).toBe(1)
    const text = 'Renewed the wildcard certificate; it expires in 90 days.'
    for (let i = 0; i < 2; i++) await run('submit_task_result', 'submit', { gate: 'result', text })
    expect(await recorded('task.review_submitted')).toBe(1)

    await ok('POST', `/api/tasks/${taskId}/approvals`, owner, { gate: 'result', decision: 'approve' })
    expect((await run('submit_task_result', 'submit', { gate: 'result', text })).output).toBe(
      `Your result for task ${taskId} is approved already.`,
    )
    await expect(run('submit_task_result', 'other', { gate: 'result', text: 'Something else' })).rejects.toThrow(
      'approved already',
    )
    expect(await recorded('task.review_submitted')).toBe(1)
    expect(await taskNow(taskId)).toMatchObject({ status: 'done' })
  })
})
