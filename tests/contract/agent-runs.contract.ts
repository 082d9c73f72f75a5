import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type AgentRunsPort, type HeldRun, RunLostError, type RunningAgent, SpendRefused } from '../../adapters/agent-runs.ts'
import { runItemId } from '../../processors/agents/recorder.ts'
import { okRequests, until as poll, privateRoom, readyAgent } from '../support/agents.ts'
import { signUp } from '../support/identity.ts'
import { operatorToken } from '../support/operator.ts'
import type { TestServer } from '../support/server.ts'

/** The server whose data the port serves, and the port under test. */
export type AgentRunsFixture = { readonly server: TestServer; readonly port: AgentRunsPort }

/** The suite's waits give up after 15 s. */
const until = <T>(what: string, read: () => Promise<T | null | undefined>) => poll(what, read, 15_000)

/**
 * What every way of serving the agents worker's port does, on a real server with no worker of its own: the same run
 * claimed by exactly one worker, commands fenced by the lease, the context read as the agent, tools run as the agent
 * only by the run's holder, spend reserved against caps, the answer posted once.
 */
export function agentRunsContract(name: string, setup: () => Promise<AgentRunsFixture>, teardown: () => Promise<void>): void {
  describe(`agent runs port: ${name}`, () => {
    let port: AgentRunsPort
    let server: TestServer
    let owner: Awaited<ReturnType<typeof signUp>>
    let agentId: string
    let roomId: string
    let tenantId: string
    let runId: string
    let held: HeldRun
    let agent: RunningAgent
    const mention = 'please summarise the incident review'

    const ok = (method: string, path: string, body?: unknown) => okRequests(() => server)(method, path, owner, body)
    const at = () => new Date().toISOString()
    let holder: string
    let other: string
    const fenced = (run: HeldRun, workerId = holder) => ({ runId: run.runId, workerId, generation: run.generation, at: at() })

    beforeAll(async () => {
      ;({ server, port } = await setup())
      owner = await signUp(server, {
        email: `owner@${name.replaceAll(' ', '-')}.test`,
        orgName: `Runs ${name}`,
        username: 'owner',
      })
      tenantId = owner.orgId
      const ada = await readyAgent(server, owner, { name: 'Ada', username: 'ada' })
      agentId = ada.agentId
      roomId = await privateRoom(server, owner, 'incidents', [{ agentId }])
      await ok('POST', `/api/rooms/${roomId}/messages`, { text: `@ada ${mention}` })
      runId = await until('the mention’s run to be claimable', async () => {
        const runs = await port.claimable(50)
        return runs.find((r) => r.tenantId === tenantId)?.runId
      })
    }, 60_000)
    afterAll(teardown)

    it('a run is claimed by exactly one worker', async () => {
      const [a, b] = await Promise.all([
        port.claim(tenantId, runId, { workerId: 'worker-a', leaseMs: 30_000 }),
        port.claim(tenantId, runId, { workerId: 'worker-b', leaseMs: 30_000 }),
      ])
      const won = [a, b].filter((r) => r !== null)
      expect(won).toHaveLength(1)
      held = won[0]!
      holder = held.lease!.workerId
      other = holder === 'worker-a' ? 'worker-b' : 'worker-a'
      expect(['worker-a', 'worker-b']).toContain(holder)
      expect(held).toMatchObject({ runId, agentId, roomId, taskId: null, status: 'in_progress', generation: 1 })
      expect(held.inputs[0]?.text).toContain(mention)
      expect(await port.claim(tenantId, runId, { workerId: 'worker-c', leaseMs: 30_000 })).toBeNull()
      await until(
        'the claimed run off the claimable list',
        async () => !(await port.claimable(500)).some((r) => r.runId === runId),
      )
    })

    it('commands are fenced by the lease: the holder records, anyone else has lost the run', async () => {
      const item = {
        itemId: runItemId(runId, 'contract:note'),
        kind: 'reasoning' as const,
        content: 'thinking',
        toolCallId: null,
        tool: null,
        arguments: null,
      }
      const groupId = runItemId(runId, 'group:contract:note')
      await expect(port.command(tenantId, { type: 'add_item', ...fenced(held, other), item, groupId })).rejects.toBeInstanceOf(
        RunLostError,
      )
      await expect(
        port.command(tenantId, { type: 'add_item', ...fenced(held), generation: held.generation + 1, item, groupId }),
      ).rejects.toBeInstanceOf(RunLostError)
      held = await port.command(tenantId, { type: 'add_item', ...fenced(held), item, groupId })
      expect(held.items.get(item.itemId)).toMatchObject({ kind: 'reasoning', content: 'thinking', status: 'completed' })
      held = await port.command(tenantId, { type: 'renew', ...fenced(held), leaseMs: 30_000 })
      const loaded = await port.load(tenantId, runId)
      expect(loaded.exists && [...loaded.items.keys()]).toEqual([...held.items.keys()])
      expect(await port.load(tenantId, runItemId(runId, 'no such run'))).toEqual({ exists: false })
    })

    it('the agent and its context, read as the agent', async () => {
      agent = await port.agent(tenantId, agentId)
      expect(agent).toMatchObject({ tenantId, agentId, name: 'Ada', role: 'member', skillsets: [] })
      const context = await port.context(held, agent)
      expect(context.system).toContain('Ada')
      expect(context.where).toContain('#incidents')
      expect(context.task).toBeNull()
      expect(context.recent.some((line) => line.includes(mention))).toBe(true)
    })

    it('tools: the core ones described, run as the agent by the holder only', async () => {
      const tools = await port.tools([])
      const byName = new Map(tools.map((t) => [t.name, t]))
      expect(byName.get('read_messages')).toMatchObject({ risky: false, skillset: 'core' })
      expect(byName.get('delete_task')?.risky).toBe(true)
      expect(byName.get('read_messages')?.parameters).toMatchObject({ type: 'object' })

      const signal = new AbortController().signal
      const read = await port.runTool(held, agent, { toolCallId: 'call_1', tool: 'read_messages', arguments: '{}' }, signal)
      expect(read.status).toBe('completed')
      expect(read.output).toContain(mention)
      const bad = await port.runTool(
        held,
        agent,
        { toolCallId: 'call_2', tool: 'read_messages', arguments: '{"limit":-3}' },
        signal,
      )
      expect(bad).toMatchObject({ status: 'failed' })
      expect(bad.output).toContain('limit')
      const unknown = await port.runTool(held, agent, { toolCallId: 'call_3', tool: 'no_such_tool', arguments: '{}' }, signal)
      expect(unknown).toMatchObject({ status: 'failed' })
      const stale = { ...held, generation: held.generation + 1 }
      await expect(
        port.runTool(stale, agent, { toolCallId: 'call_4', tool: 'read_messages', arguments: '{}' }, signal),
      ).rejects.toBeInstanceOf(RunLostError)
      expect(await port.alwaysAllowed(held, agent, 'delete_task')).toBe(false)
    })

    it('spend is reserved before a call and recorded after; a cap with no room refuses it', async () => {
      await port.reserve(held, agent, 0, 1_000, 100)
      await port.recordUsage(held, agent, 0, { inputTokens: 900, cachedInputTokens: 0, outputTokens: 50 })
      const priced = await server.request('PUT', '/control/prices', {
        token: await operatorToken(server),
        body: {
          models: { [agent.model]: { inputPerMTokUsd: 1_000, cachedInputPerMTokUsd: 1_000, outputPerMTokUsd: 1_000 } },
          vmMinuteUsd: {},
          diskGbMonthUsd: 0,
          storageGbMonthUsd: 0,
        },
      })
      expect(priced.status, JSON.stringify(priced.body)).toBe(200)
      await ok('PUT', '/api/limits', { scope: 'room', scopeId: roomId, usd: 0.01 })
      await until('the cap in force', async () => {
        try {
          await port.reserve(held, agent, 1, 1_000_000, 4_096)
          return null
        } catch (e) {
          if (e instanceof SpendRefused) return e
          throw e
        }
      }).then((refused) => expect([refused.reason, refused.message]).toEqual(['limit_reached', expect.any(String)]))
    })

    it('the answer is posted once, as the agent; a finished run stops its worker and frees its thread', async () => {
      const messageId = runItemId(runId, 'reply')
      await port.reply(held, agent, 'The review is summarised.', messageId)
      await port.reply(held, agent, 'The review is summarised.', messageId)
      const posted = (await server.services.store.readTenant(tenantId, { types: ['message.created'] })).filter(
        (e) => (e.data as { authorId: string }).authorId === agentId,
      )
      expect(posted).toHaveLength(1)
      expect(posted[0]!.data).toMatchObject({ roomId, text: 'The review is summarised.' })

      expect(await port.stopped([runId])).toEqual([])
      held = await port.command(tenantId, { type: 'complete', ...fenced(held) })
      expect(held.status).toBe('completed')
      await until('the run to have left the queue', async () => (await port.stopped([runId])).includes(runId))
      await port.finishThread(tenantId, held.threadId, runId)
      await port.finishThread(tenantId, held.threadId, runId)
      const thread = await until('the thread free again', async () => {
        const t = await ok('GET', `/api/threads/${held.threadId}`)
        return t.activeRunId === null ? t : null
      })
      expect(thread.runs[0]).toMatchObject({ id: runId, status: 'completed' })
    })
  })
}
