import { expect } from 'vitest'
import { createAgent } from './identity.ts'
import { type Answerer, type ModelAnswer, type ModelRequest, type ModelServer, startModelServer } from './openai-server.ts'
import { startTestServer, type TestServer } from './server.ts'

/*
 * What the agents tests share: a test server whose agents call a local model server, the model's answers scripted by
 * what was last said to it, an org with an agent in a room, and waiting (by polling as a client) for the run a mention
 * started or for a run to reach a status.
 */

export type Who = { token: string; userId: string }

/** Reads again every `everyMs` until `read` gives something; fails naming `what` after `timeoutMs`. */
export async function until<T>(
  what: string,
  read: () => T | null | undefined | Promise<T | null | undefined>,
  timeoutMs = 20_000,
  everyMs = 50,
): Promise<T> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const value = await read()
    if (value) return value
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, everyMs))
  }
}

/** Requests as `who` that must succeed, each answering its body; `server` is asked for at each call (set in beforeAll). */
export const okRequests =
  (server: () => TestServer) =>
  async (method: string, path: string, who: { token: string }, body?: unknown): Promise<any> => {
    const r = await server().request(method, path, { token: who.token, ...(body === undefined ? {} : { body }) })
    expect(r.status, `${method} ${path}: ${JSON.stringify(r.body)}`).toBeLessThan(300)
    return r.body
  }

/** What the model answers to a request, by the turn of the conversation it is on. */
export type Script = (request: ModelRequest, turn: number) => ModelAnswer

/** The last thing said to the model as the user: a mention, a task's assignment, a wake-up. */
export const lastUserText = (r: ModelRequest): string => {
  const messages = (r.body.messages ?? []) as { role: string; content: string | null }[]
  return messages.filter((m) => m.role === 'user').at(-1)?.content ?? ''
}

/** The turn a model call answers: how many answers of the model's the conversation holds already. */
export const turnOf = (r: ModelRequest) =>
  ((r.body.messages ?? []) as { role: string }[]).filter((m) => m.role === 'assistant').length

/** Answers by the first script whose key the last user message contains, so each test scripts its own answers. */
export const byScripts =
  (scripts: ReadonlyMap<string, Script>): Answerer =>
  (request, index) => {
    for (const [key, script] of scripts) if (lastUserText(request).includes(key)) return script(request, turnOf(request))
    return { status: 500, message: `nothing scripted for request ${index}` }
  }

/** The agent creates a scratch task, then deletes it (delete_task is risky: the call waits for a person unless allowed). */
export const scratch =
  (id: string): Script =>
  (request, turn) => {
    if (turn === 0) return { toolCalls: [{ id: `${id}_make`, name: 'create_task', arguments: { title: `Scratch ${id}` } }] }
    if (turn === 1) {
      const created = (request.body.messages as { role: string; content: string }[]).at(-1)!.content
      const taskId = /Created task ([0-9a-f-]{36})/.exec(created)![1]
      return { toolCalls: [{ id: `${id}_tidy`, name: 'delete_task', arguments: { taskId } }] }
    }
    return { text: 'Tidied.' }
  }

/** A local model server answering as `answer` says, and a test server whose agents call it ('local-model' by default). */
export async function startAgentServers(
  answer: readonly ModelAnswer[] | Answerer,
  env: Record<string, string> = {},
): Promise<{ model: ModelServer; server: TestServer }> {
  const model = await startModelServer()
  model.answer(answer)
  const server = await startTestServer({
    OPENAI_BASE_URL: model.url,
    OPENAI_API_KEY: 'sk-local',
    AGENT_DEFAULT_MODEL: 'local-model',
    AGENT_POLL_MS: '500',
    // These tests poll for runs every 50 ms as the owner: on a loaded machine a wait would spend the per-user limit
    // and the next test would meet 429s (the limit has tests of its own).
    RATE_LIMIT_USER_PER_MINUTE: '100000',
    ...env,
  })
  return { model, server }
}

/** Stops what startAgentServers started, the test server first; either is missing when its start failed. */
export async function stopAgentServers(started: { model?: ModelServer; server?: TestServer }): Promise<void> {
  await started.server?.close()
  await started.model?.close()
}

/** An agent `owner` creates, once the org's users show it: a mention of it then wakes it. */
export async function readyAgent(server: TestServer, owner: Who, who: { name: string; username: string }) {
  const agent = await createAgent(server, owner.token, who)
  await okRequests(() => server)('GET', `/api/users?consistentAfter=${agent.position}`, owner)
  return agent
}

/** A private room `owner` creates, with these people and agents in it, in this order: answers its id. */
export async function privateRoom(
  server: TestServer,
  owner: Who,
  name: string,
  members: readonly ({ userId: string } | { agentId: string })[],
): Promise<string> {
  const ok = okRequests(() => server)
  const { roomId } = await ok('POST', '/api/rooms', owner, { name, visibility: 'private' })
  for (const member of members) await ok('POST', `/api/rooms/${roomId}/members`, owner, member)
  return roomId as string
}

/** Where an agent's thread is: its conversation in the room, or with `taskId` the task's, as read after `consistentAfter`. */
export type ThreadOf = { roomId: string; agentId: string; taskId?: string | null; consistentAfter?: number }

/** The agent's thread, in full (with its runs), as `who` reads it; null while there is none. */
export async function agentThread(server: TestServer, who: Who, where: ThreadOf): Promise<any> {
  const ok = okRequests(() => server)
  const consistent = where.consistentAfter === undefined ? '' : `&consistentAfter=${where.consistentAfter}`
  const threads = await ok('GET', `/api/threads?roomId=${where.roomId}&agentId=${where.agentId}${consistent}`, who)
  const thread = threads.items.find((t: { taskId: string | null }) => t.taskId === (where.taskId ?? null))
  return thread ? ok('GET', `/api/threads/${thread.id}`, who) : null
}

/**
 * Mentions the agent with `text` in the room as `by`, and answers the run the mention started (and its thread, read
 * as `by`) once the run is in one of `statuses` (in any, without them).
 */
export async function mention(
  server: TestServer,
  m: {
    by: Who
    roomId: string
    agent: { agentId: string; username: string }
    text: string
    statuses?: readonly string[]
    everyMs?: number
  },
): Promise<{ thread: any; run: any }> {
  const posted = await okRequests(() => server)('POST', `/api/rooms/${m.roomId}/messages`, m.by, {
    text: `@${m.agent.username} ${m.text}`,
  })
  const where = { roomId: m.roomId, agentId: m.agent.agentId, consistentAfter: posted.position }
  return until(
    `a run for "${m.text}" in ${m.statuses?.join('|') ?? 'any status'}`,
    async () => {
      const thread = await agentThread(server, m.by, where)
      const run = thread?.runs.find((r: { inputs: { text: string }[] }) => r.inputs.some((i) => i.text.includes(m.text)))
      return run && (m.statuses?.includes(run.status) ?? true) ? { thread, run } : null
    },
    20_000,
    m.everyMs,
  )
}

/** The run's items (and status), as `who` reads them, once the run is in one of `statuses`. */
export async function runIn(server: TestServer, who: Who, runId: string, statuses: readonly string[], everyMs?: number) {
  const ok = okRequests(() => server)
  return until(
    `run ${runId} in ${statuses.join('|')}`,
    async () => {
      const r = await ok('GET', `/api/runs/${runId}/items`, who)
      return statuses.includes(r.status) ? r : null
    },
    20_000,
    everyMs,
  )
}
