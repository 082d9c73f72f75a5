import { randomBytes } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join as joinPath } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { RecordedEvent } from '../../adapters/event-store.ts'
import { runStream } from '../../commands/runs.ts'
import { mention, okRequests, privateRoom, readyAgent, turnOf, until } from '../support/agents.ts'
import { type ChildServer, startChildServer } from '../support/child-server.ts'
import { signUp } from '../support/identity.ts'
import { type ModelAnswer, type ModelServer, startModelServer } from '../support/openai-server.ts'
import { startTestServer, type TestServer } from '../support/server.ts'

/*
 * Two agents workers, one SIGKILLed mid-run (issue 15): the API with the projectors and processors in this process,
 * two agents-only processes, one local model server. The workers work beside the data (on the same database) or
 * apart from it (through the API's /api/internal/agent-runs/* with the service credential, no database). A mention starts a run: a tool call
 * (create_task), then a long answer the model holds open. The worker holding the run is SIGKILLed mid-stream; the
 * other claims it once the lease lapses and resumes it from its recorded items. The run completes once, no item is
 * added twice, the tool ran once and the answer is posted once.
 */

const LEASE_MS = 2_000
const TASK_TITLE = 'Write the crash-proof plan'
const HELD = 'Drafting the plan, step by step'
const ANSWER = `${HELD}: done, the plan is in the task.`

// Every process reading events shares the key that seals personal data in them.
const AUTH_SECRET_KEY = randomBytes(32).toString('hex')
const SERVICE_TOKEN = randomBytes(24).toString('hex')

describe.each(['beside the data', 'through the internal API'] as const)('workers %s', (placement) => {
  let model: ModelServer
  let api: TestServer
  const workers: ChildServer[] = []
  const dataDirs: string[] = []
  let owner: Awaited<ReturnType<typeof signUp>>
  let ada: Awaited<ReturnType<typeof readyAgent>>
  let roomId: string

  /** Model calls by the turn they answer (the assistant turns already in the conversation). */
  const asked = (turn: number) => model.requests.filter((r) => turnOf(r) === turn).length

  const ok = (method: string, path: string, body?: unknown) => okRequests(() => api)(method, path, owner, body)

  const agentsWorker = async (): Promise<ChildServer> => {
    const dataDir = await mkdtemp(joinPath(tmpdir(), 'ws-agents-crash-'))
    dataDirs.push(dataDir)
    const worker = await startChildServer({
      ROLES: 'agents',
      ...(placement === 'beside the data'
        ? { DATABASE_URL: api.database.url, APP_DATABASE_PASSWORD: process.env.APP_DATABASE_PASSWORD ?? '' }
        : { AGENTS_API_URL: api.url, SERVICE_TOKEN, DATABASE_URL: 'postgres://nobody@127.0.0.1:1/none' }),
      DATA_DIR: dataDir,
      AUTH_SECRET_KEY,
      OPENAI_BASE_URL: model.url,
      OPENAI_API_KEY: 'sk-local',
      AGENT_DEFAULT_MODEL: 'local-model',
      AGENT_LEASE_MS: String(LEASE_MS),
      AGENT_POLL_MS: '250',
    })
    workers.push(worker)
    return worker
  }

  beforeAll(async () => {
    model = await startModelServer()
    model.answer((request) => {
      if (turnOf(request) === 0) {
        return { toolCalls: [{ id: 'call_plan', name: 'create_task', arguments: { title: TASK_TITLE } }] }
      }
      // The first worker to ask for the answer streams its start and then hangs on the held stream until it is killed;
      // the worker that resumes the run asks again and gets the whole answer.
      const answer: ModelAnswer = asked(1) === 1 ? { hold: true, text: HELD } : { text: ANSWER }
      return answer
    })
    api = await startTestServer({ ROLES: 'api,projector,processors,realtime', AUTH_SECRET_KEY, SERVICE_TOKEN })
    await Promise.all([agentsWorker(), agentsWorker()])
    owner = await signUp(api, { email: 'owner@agents-crash.test', orgName: 'Crash Agents', username: 'owner' })
    ada = await readyAgent(api, owner, { name: 'Ada', username: 'ada' })
    roomId = await privateRoom(api, owner, 'ops', [{ agentId: ada.agentId }])
  }, 60_000)

  afterAll(async () => {
    for (const w of workers) await w.kill('SIGTERM')
    await api?.close()
    await model?.close()
    for (const d of dataDirs) await rm(d, { recursive: true, force: true })
  })

  const pidOf = (workerId: string) => Number(workerId.split(':')[1])

  it('a worker SIGKILLed mid-stream: the other resumes the run, which completes exactly once with nothing twice', async () => {
    const { run } = await mention(api, { by: owner, roomId, agent: ada, text: 'plan the crash drill' })
    const runId = run.id as string
    const events = async (): Promise<RecordedEvent[]> => api.services.store.readStream(runStream(runId))

    // The held answer streaming into the run: the tool has run and the second turn is under way.
    await until('the held answer streamed into the run', async () => {
      const run = await ok('GET', `/api/runs/${runId}/items`)
      return run.items.some((i: { kind: string; content: string }) => i.kind === 'message' && i.content.includes('Drafting'))
    })
    const claims = (await events()).filter((e) => e.type === 'run.claimed')
    expect(claims).toHaveLength(1)
    const first = claims[0]!.data as { workerId: string; generation: number; resumed: boolean; at: string }
    expect(first).toMatchObject({ generation: 1, resumed: false })
    const holder = workers.find((w) => w.proc.pid === pidOf(first.workerId))
    const other = workers.find((w) => w !== holder)!
    expect(holder, `the run's holder ${first.workerId} is one of the workers`).toBeDefined()
    await holder!.kill('SIGKILL')
    const killedAt = Date.now()

    const done = await until('the run completed', async () => {
      const run = await ok('GET', `/api/runs/${runId}/items`)
      return run.status === 'completed' ? run : null
    })
    // Taken over soon after the kill, and only once the dead worker's last renewal had lapsed.
    expect(Date.now() - killedAt).toBeLessThan(LEASE_MS * 5)
    expect(done.items.map((i: { kind: string; status: string }) => [i.kind, i.status])).toEqual([
      ['tool_call', 'completed'],
      ['tool_output', 'completed'],
      ['message', 'completed'],
    ])
    expect(done.items[2].content).toBe(ANSWER)

    // The answer is posted before the run is completed: it is there once the run says completed.
    const agentMessages = async () =>
      (await api.services.store.readTenant(owner.orgId, { types: ['message.created'] })).filter(
        (e) => (e.data as { authorId: string }).authorId === ada.agentId,
      )

    const history = await events()
    expect(history.filter((e) => e.type === 'run.completed')).toHaveLength(1)
    const added = history.filter((e) => e.type === 'run.item_added').map((e) => (e.data as { itemId: string }).itemId)
    expect(added).toHaveLength(3)
    expect(new Set(added).size).toBe(added.length)
    const taken = history.filter((e) => e.type === 'run.claimed').map((e) => e.data as typeof first)
    expect(taken).toHaveLength(2)
    expect(taken[1]).toMatchObject({ generation: 2, resumed: true })
    expect(pidOf(taken[1]!.workerId)).toBe(other.proc.pid)
    const heldUntil = history
      .filter((e) => (e.type === 'run.claimed' || e.type === 'run.lease_renewed') && (e.data as typeof first).generation === 1)
      .map((e) => (e.data as { leaseUntil: string }).leaseUntil)
      .sort()
      .at(-1)!
    expect(taken[1]!.at >= heldUntil, `claimed at ${taken[1]!.at}, held until ${heldUntil}`).toBe(true)
    // Nothing the dead worker held was written after the takeover: every later event is fenced by generation 2.
    const afterTakeover = history.slice(
      history.findIndex((e) => e.type === 'run.claimed' && (e.data as typeof first).generation === 2) + 1,
    )
    for (const e of afterTakeover) {
      const generation = (e.data as { generation?: number }).generation
      if (generation !== undefined) expect({ type: e.type, generation }).toEqual({ type: e.type, generation: 2 })
    }

    // The tool ran once, the model was asked for the first turn once and for the second twice (held, then resumed).
    const tasks = (await api.services.store.readTenant(owner.orgId, { types: ['task.created'] })).filter(
      (e) => (e.data as { title: string }).title === TASK_TITLE,
    )
    expect(tasks).toHaveLength(1)
    expect(asked(0)).toBe(1)
    expect(asked(1)).toBe(2)
    const answers = await agentMessages()
    expect(answers).toHaveLength(1)
    expect(answers[0]!.data).toMatchObject({ roomId, authorType: 'agent', text: ANSWER })

    // The thread is free again for its next run.
    const threads = await ok('GET', `/api/threads?roomId=${roomId}&agentId=${ada.agentId}`)
    await until(
      'the thread free again',
      async () => (await ok('GET', `/api/threads/${threads.items[0].id}`)).activeRunId === null,
    )
  }, 60_000)
})
