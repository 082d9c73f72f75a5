import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { countTokens, MAX_OUTPUT_TOKENS } from '../../processors/agents/window.ts'
import {
  agentThread,
  okRequests,
  privateRoom,
  readyAgent,
  startAgentServers,
  stopAgentServers,
  until,
  type Who,
} from '../support/agents.ts'
import { join, signUp } from '../support/identity.ts'
import type { ModelRequest, ModelServer } from '../support/openai-server.ts'
import type { TestServer } from '../support/server.ts'

/*
 * The context within the model's window, end to end: a room with more said in it than a small model's window holds,
 * a mention of the agent, and the request the model server received: it fits the window configured for the model
 * (AGENT_MODEL_WINDOWS), keeps the role prompt and the mention, and left out the oldest messages, saying so.
 */

const WINDOW = 16_384

type Sent = { role: string; content: string | null; tool_calls?: { function: { name: string; arguments: string } }[] }

let model: ModelServer
let server: TestServer
let owner: Who
let ada: { agentId: string; username: string; position: number }
let roomId: string

const ok = okRequests(() => server)

const messagesOf = (r: ModelRequest) => r.body.messages as Sent[]
const said = (r: ModelRequest) => messagesOf(r).map((m) => m.content ?? '')

/** The request's tokens as OpenAI's o200k encoding counts them: every message's text, and the tools offered. */
const tokensOf = (r: ModelRequest) =>
  messagesOf(r).reduce(
    (n, m) =>
      n +
      4 +
      countTokens(m.content ?? '') +
      (m.tool_calls ?? []).reduce((k, c) => k + 8 + countTokens(c.function.name) + countTokens(c.function.arguments), 0),
    3 + countTokens(JSON.stringify(r.body.tools ?? [])),
  )

/** A long message, numbered so the test can tell which were sent. */
const long = (i: number) =>
  `Status ${i}: ${Array.from({ length: 40 }, (_, w) => `the deploy of service ${i}-${w} finished after the migration`).join(', ')}.`

beforeAll(async () => {
  // Ada's calls are answered; the soft-mention router's (a message naming no agent, two people in the room) too,
  // with words naming nobody: only the mention wakes her.
  ;({ model, server } = await startAgentServers([{ text: 'Noted.' }], {
    AGENT_DEFAULT_MODEL: 'local-model:7b',
    AGENT_MODEL_WINDOWS: `local-model=${WINDOW}`,
  }))
  owner = await signUp(server, { email: 'owner@context.test', orgName: 'Context Inc', username: 'owner' })
  ada = await readyAgent(server, owner, { name: 'Ada', username: 'ada' })
  const member = await join(server, owner.token, { email: 'member@context.test', role: 'member', username: 'member' })
  roomId = await privateRoom(server, owner, 'deploys', [{ userId: member.userId }, { agentId: ada.agentId }])
}, 120_000)

afterAll(() => stopAgentServers({ model, server }))

describe('the context within the model’s window', () => {
  it('a room with more said than the window holds: the request fits it, keeps the role and the mention, drops the oldest', async () => {
    for (let i = 0; i < 45; i++) await ok('POST', `/api/rooms/${roomId}/messages`, owner, { text: long(i) })
    const all = Array.from({ length: 45 }, (_, i) => countTokens(long(i))).reduce((a, b) => a + b, 0)
    expect(all).toBeGreaterThan(WINDOW)

    await ok('POST', `/api/rooms/${roomId}/messages`, owner, { text: `@${ada.username} which deploys are still running?` })
    // Ada's run (not the soft-mention router's call, which reads the new message too).
    const request = await until('Ada’s run called the model', () =>
      model.requests.find(
        (r) => said(r)[0]?.startsWith('You are Ada') && said(r).at(-1)?.includes('which deploys are still running'),
      ),
    )

    expect(request.body.model).toBe('local-model:7b')
    expect(tokensOf(request)).toBeLessThanOrEqual(WINDOW - MAX_OUTPUT_TOKENS)
    // Not a window left mostly empty: the room's history filled it.
    expect(tokensOf(request)).toBeGreaterThan((WINDOW - MAX_OUTPUT_TOKENS) * 0.8)
    const [system] = messagesOf(request)
    expect(system).toMatchObject({ role: 'system' })
    expect(system!.content).toContain('You are Ada')
    expect(messagesOf(request).at(-1)).toMatchObject({ role: 'user' })
    expect(messagesOf(request).at(-1)!.content).toContain('which deploys are still running?')
    const recent = said(request).find((c) => c.startsWith('Recent messages in #deploys'))!
    expect(recent).toMatch(/\(\d+ earlier messages left out to fit the model’s window\)/)
    expect(recent).not.toContain('Status 0:')
    expect(recent).toContain('Status 44:')
    const kept = [...recent.matchAll(/Status (\d+):/g)].map((m) => Number(m[1]))
    expect(kept).toEqual(Array.from({ length: kept.length }, (_, i) => 45 - kept.length + i))
  })

  it('a task’s run is told of its task: title, status and description', async () => {
    model.answer([{ text: 'Looking at the backups.' }])
    const created = await ok('POST', '/api/tasks', owner, {
      title: 'Audit the nightly backups',
      description: 'Check that the restore of last night works end to end.',
      roomId,
      assignee: { agentId: ada.agentId },
    })
    const request = await until('the task’s run called the model', () =>
      model.requests.find((r) => said(r).some((c) => c.startsWith('The task you work on: Audit the nightly backups'))),
    )
    const task = said(request).find((c) => c.startsWith('The task you work on'))!
    expect(task).toMatch(/^The task you work on: Audit the nightly backups \(status: \w+\)/)
    expect(task).toContain('Check that the restore of last night works end to end.')
    expect(messagesOf(request)[1]!.content).toBe(task)
    // Its run ends before the server closes.
    await until('the task’s run completed', async () => {
      const thread = await agentThread(server, owner, { roomId, agentId: ada.agentId, taskId: created.taskId })
      return thread?.runs.some((r: { status: string }) => r.status === 'completed')
    })
  })
})
