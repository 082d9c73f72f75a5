import { createRoute, type RouteConfig, z } from '@hono/zod-openapi'
import {
  type AgentRunsPort,
  type HeldRun,
  RunLostError,
  type RunningAgent,
  runSnapshot,
  SpendRefused,
  type WorkerRunCommand,
} from '../adapters/agent-runs.ts'
import { RUN_ITEM_KINDS, RUN_ITEM_STATUSES } from '../domain/runs.ts'
import type { AppDeps } from '../http/context.ts'
import { registerErrorStatus } from '../http/errors.ts'
import { HttpProblem, notFound } from '../http/problem.ts'
import { router } from '../http/router.ts'
import { json, jsonBody, problemResponse, Uuid } from '../http/schemas.ts'
import { serviceAuth } from '../http/service-auth.ts'

/*
 * `/api/internal/agent-runs/*`: the agents worker's port, served to a worker running apart from the API, with the
 * service credential. Each route is the in-process port's method (processors/agents/in-process-runs.ts, injected
 * by bin/), so a worker behaves the same on either side; the server reloads the run and the agent by the ids it is
 * given and fences what a holder does by its lease. These read and decide on event streams, as commands do.
 */

registerErrorStatus(RunLostError, 409, 'RUN_LEASE_LOST', { title: 'Conflict' })

const security = [{ service: [] }]
const tags = ['internal', 'agents']
const Tenant = { tenantId: Uuid.openapi({ description: 'the org the run is in' }) }
const RunParams = z.object({ runId: Uuid })

const RunItemSchema = z.object({
  itemId: Uuid,
  kind: z.enum(RUN_ITEM_KINDS),
  status: z.enum(RUN_ITEM_STATUSES),
  content: z.string(),
  toolCallId: z.string().nullable(),
  tool: z.string().nullable(),
  arguments: z.string().nullable(),
})

const RunSnapshotSchema = z
  .object({
    exists: z.literal(true),
    runId: Uuid,
    threadId: Uuid,
    agentId: Uuid,
    roomId: Uuid,
    taskId: Uuid.nullable(),
    status: z.enum(['queued', 'in_progress', 'requires_action', 'completed', 'failed', 'cancelled', 'incomplete']),
    inputs: z.array(z.object({ trigger: z.record(z.string(), z.string()), text: z.string() })).readonly(),
    generation: z.number().int(),
    lease: z.object({ workerId: z.string(), generation: z.number().int(), until: z.string() }).nullable(),
    items: z.array(RunItemSchema),
    sequence: z.number().int(),
    group: z.object({ groupId: Uuid, kind: z.enum(['activity', 'message']) }).nullable(),
    pendingAction: z.object({ toolCallId: z.string(), tool: z.string(), itemId: Uuid }).nullable(),
    decisions: z.array(z.object({ toolCallId: z.string(), decision: z.enum(['approve', 'reject']) })),
  })
  .openapi('AgentRunSnapshot')

const Held = { workerId: z.string().min(1).max(200), generation: z.number().int().nonnegative() }
const Fenced = { runId: Uuid, ...Held, at: z.iso.datetime() }
const Content = z.string().max(200_000)

const WorkerCommandSchema = z.discriminatedUnion('type', [
  z.object({ type: z.literal('renew'), ...Fenced, leaseMs: z.number().int().min(1_000).max(600_000) }),
  z.object({
    type: z.literal('add_item'),
    ...Fenced,
    item: RunItemSchema.extend({ content: Content, status: RunItemSchema.shape.status.optional() }),
    groupId: Uuid,
  }),
  z.object({
    type: z.literal('update_item'),
    ...Fenced,
    itemId: Uuid,
    content: Content,
    status: RunItemSchema.shape.status.optional(),
  }),
  z.object({ type: z.literal('require_action'), ...Fenced, itemId: Uuid }),
  z.object({ type: z.literal('complete'), ...Fenced }),
  z.object({ type: z.literal('fail'), ...Fenced, code: z.string().min(1).max(100), message: z.string().max(10_000) }),
  z.object({
    type: z.literal('stop_incomplete'),
    ...Fenced,
    reason: z.enum(['max_steps', 'max_time', 'budget', 'limit_reached']),
    detail: z.string().max(10_000),
  }),
])

const Tokens = z.number().int().nonnegative().max(1e9)

const route = <R extends Omit<RouteConfig, 'tags' | 'security'>>(r: R) =>
  createRoute({ ...r, tags, security, responses: { ...r.responses, 401: problemResponse('service credentials required') } })

const ran = json('the run as it stands now', z.object({ run: RunSnapshotSchema }))

const claimableRoute = route({
  method: 'get',
  path: '/api/internal/agent-runs/claimable',
  summary: 'Runs a worker may claim now: queued, released, or past their lease, oldest first',
  request: { query: z.object({ limit: z.coerce.number().int().min(1).max(500).default(16) }) },
  responses: {
    200: json('claimable runs', z.object({ runs: z.array(z.object({ runId: Uuid, tenantId: Uuid })) })),
  },
})

const stoppedRoute = route({
  method: 'get',
  path: '/api/internal/agent-runs/stopped',
  summary: 'Of these runs, those cancelled or finished (their worker stops at once)',
  request: {
    query: z.object({
      ids: z
        .string()
        .max(40_000)
        .transform((s) => s.split(',').filter(Boolean))
        .pipe(z.array(Uuid).max(1_000)),
    }),
  },
  responses: { 200: json('the stopped ones', z.object({ runIds: z.array(Uuid) })) },
})

const claimRoute = route({
  method: 'post',
  path: '/api/internal/agent-runs/{runId}/claim',
  summary: 'Claim a run under a lease (exactly one worker wins)',
  request: {
    params: RunParams,
    ...jsonBody(z.object({ ...Tenant, workerId: Held.workerId, leaseMs: z.number().int().min(1_000).max(600_000) })),
  },
  responses: { 200: ran, 409: problemResponse('another worker holds it, or it is not claimable') },
})

const commandRoute = route({
  method: 'post',
  path: '/api/internal/agent-runs/{runId}/commands',
  summary: 'What the lease’s holder records: renew, add or update an item, wait for approval, finish',
  request: { params: RunParams, ...jsonBody(z.object({ ...Tenant, command: WorkerCommandSchema })) },
  responses: {
    200: ran,
    404: problemResponse('no such run'),
    409: problemResponse('RUN_LEASE_LOST: the worker no longer holds the run'),
    422: problemResponse('the command does not apply to the run as it stands'),
  },
})

const loadRoute = route({
  method: 'get',
  path: '/api/internal/agent-runs/{runId}',
  summary: 'A run as it stands',
  request: { params: RunParams, query: z.object(Tenant) },
  responses: { 200: json('the run, or null', z.object({ run: RunSnapshotSchema.nullable() })) },
})

const finishRoute = route({
  method: 'post',
  path: '/api/internal/agent-runs/{runId}/finish',
  summary: 'A finished run frees its thread: the next run starts from the inputs that waited',
  request: { params: RunParams, ...jsonBody(z.object({ ...Tenant, threadId: Uuid })) },
  responses: { 204: { description: 'done (nothing, if the run is still going)' } },
})

const agentRoute = route({
  method: 'get',
  path: '/api/internal/agents/{agentId}',
  summary: 'An agent as its runs need it',
  request: { params: z.object({ agentId: Uuid }), query: z.object(Tenant) },
  responses: {
    200: json(
      'the agent',
      z.object({
        tenantId: Uuid,
        agentId: Uuid,
        name: z.string(),
        model: z.string(),
        rolePrompt: z.string(),
        skillsets: z.array(z.string()).readonly(),
        reasoningEffort: z.enum(['minimal', 'low', 'medium', 'high']).nullable(),
        role: z.enum(['owner', 'admin', 'member', 'guest']),
      }),
    ),
  },
})

const contextRoute = route({
  method: 'get',
  path: '/api/internal/agent-runs/{runId}/context',
  summary: 'What the run’s model calls start from: role prompt, task, memory notes, recent messages',
  request: { params: RunParams, query: z.object(Tenant) },
  responses: {
    200: json(
      'the context in parts',
      z.object({
        system: z.string(),
        task: z.string().nullable(),
        notes: z.array(z.string()).readonly(),
        where: z.string(),
        recent: z.array(z.string()).readonly(),
      }),
    ),
    404: problemResponse('no such run'),
  },
})

const reserveRoute = route({
  method: 'post',
  path: '/api/internal/agent-runs/{runId}/reservations',
  summary: 'Hold budget for a step’s model call before it is made',
  request: {
    params: RunParams,
    ...jsonBody(
      z.object({ ...Tenant, step: z.number().int().nonnegative().max(10_000), inputTokens: Tokens, outputTokens: Tokens }),
    ),
  },
  responses: {
    204: { description: 'reserved' },
    403: problemResponse('SPEND_REFUSED: the org’s policy refuses it'),
    404: problemResponse('no such run'),
    422: problemResponse('LIMIT_REACHED: a cap leaves no room'),
  },
})

const usageRoute = route({
  method: 'post',
  path: '/api/internal/agent-runs/{runId}/usage',
  summary: 'What a step’s model call used (the same step counts once)',
  request: {
    params: RunParams,
    ...jsonBody(
      z.object({
        ...Tenant,
        step: z.number().int().nonnegative().max(10_000),
        usage: z.object({ inputTokens: Tokens, cachedInputTokens: Tokens.default(0), outputTokens: Tokens }),
      }),
    ),
  },
  responses: { 204: { description: 'recorded' }, 404: problemResponse('no such run') },
})

const allowedRoute = route({
  method: 'get',
  path: '/api/internal/agent-runs/{runId}/always-allowed',
  summary: 'Whether people let the run’s agent use this risky tool in its room without asking',
  request: { params: RunParams, query: z.object({ ...Tenant, tool: z.string().min(1).max(100) }) },
  responses: { 200: json('the answer', z.object({ allowed: z.boolean() })), 404: problemResponse('no such run') },
})

const replyRoute = route({
  method: 'post',
  path: '/api/internal/agent-runs/{runId}/reply',
  summary: 'Post the run’s answer as its agent, once under messageId',
  request: { params: RunParams, ...jsonBody(z.object({ ...Tenant, text: z.string().min(1).max(40_000), messageId: Uuid })) },
  responses: { 204: { description: 'posted' }, 404: problemResponse('no such run') },
})

const toolsRoute = route({
  method: 'get',
  path: '/api/internal/agent-tools',
  summary: 'The tools of these skillsets (the core ones always)',
  request: { query: z.object({ skillsets: z.string().max(2_000).default('') }) },
  responses: {
    200: json(
      'the tools',
      z.object({
        tools: z.array(
          z.object({
            name: z.string(),
            description: z.string(),
            parameters: z.record(z.string(), z.unknown()),
            skillset: z.string(),
            risky: z.boolean(),
          }),
        ),
      }),
    ),
  },
})

const toolCallRoute = route({
  method: 'post',
  path: '/api/internal/agent-runs/{runId}/tool-calls',
  summary: 'Run a model’s tool call as the run’s agent, while the caller holds the run',
  request: {
    params: RunParams,
    ...jsonBody(
      z.object({
        ...Tenant,
        ...Held,
        toolCallId: z.string().min(1).max(200),
        tool: z.string().min(1).max(100),
        arguments: z.string().max(200_000),
      }),
    ),
  },
  responses: {
    200: json('what the model reads back', z.object({ output: z.string(), status: z.enum(['completed', 'failed']) })),
    404: problemResponse('no such run'),
    409: problemResponse('RUN_LEASE_LOST: the caller no longer holds the run'),
  },
})

export function internalCommands(deps: AppDeps & { readonly agentRuns?: AgentRunsPort }) {
  const app = router()
  const port = deps.agentRuns
  if (!port) return app
  app.use('/api/internal/agent-runs/*', serviceAuth(deps))
  app.use('/api/internal/agents/*', serviceAuth(deps))
  app.use('/api/internal/agent-tools', serviceAuth(deps))

  const runOf = async (tenantId: string, runId: string): Promise<{ run: HeldRun; agent: RunningAgent }> => {
    const run = await port.load(tenantId, runId)
    if (!run.exists) throw notFound('no such run')
    return { run, agent: await port.agent(tenantId, run.agentId) }
  }

  app.openapi(claimableRoute, async (c) => c.json({ runs: await port.claimable(c.req.valid('query').limit) }, 200))

  app.openapi(stoppedRoute, async (c) => c.json({ runIds: await port.stopped(c.req.valid('query').ids) }, 200))

  app.openapi(claimRoute, async (c) => {
    const { tenantId, workerId, leaseMs } = c.req.valid('json')
    const run = await port.claim(tenantId, c.req.valid('param').runId, { workerId, leaseMs })
    if (!run) {
      throw new HttpProblem({ status: 409, code: 'RUN_NOT_CLAIMABLE', title: 'Conflict', detail: 'not claimable now' })
    }
    return c.json({ run: runSnapshot(run) }, 200)
  })

  app.openapi(commandRoute, async (c) => {
    const { tenantId, command } = c.req.valid('json')
    if (command.runId !== c.req.valid('param').runId) throw notFound('the command names another run')
    return c.json({ run: runSnapshot(await port.command(tenantId, command as WorkerRunCommand)) }, 200)
  })

  app.openapi(loadRoute, async (c) => {
    const run = await port.load(c.req.valid('query').tenantId, c.req.valid('param').runId)
    return c.json({ run: run.exists ? runSnapshot(run) : null }, 200)
  })

  app.openapi(finishRoute, async (c) => {
    const { tenantId, threadId } = c.req.valid('json')
    await port.finishThread(tenantId, threadId, c.req.valid('param').runId)
    return c.body(null, 204)
  })

  app.openapi(agentRoute, async (c) => c.json(await port.agent(c.req.valid('query').tenantId, c.req.valid('param').agentId), 200))

  app.openapi(contextRoute, async (c) => {
    const { run, agent } = await runOf(c.req.valid('query').tenantId, c.req.valid('param').runId)
    return c.json(await port.context(run, agent), 200)
  })

  app.openapi(reserveRoute, async (c) => {
    const b = c.req.valid('json')
    const { run, agent } = await runOf(b.tenantId, c.req.valid('param').runId)
    try {
      await port.reserve(run, agent, b.step, b.inputTokens, b.outputTokens)
    } catch (e) {
      if (!(e instanceof SpendRefused)) throw e
      throw e.reason === 'limit_reached'
        ? new HttpProblem({ status: 422, code: 'LIMIT_REACHED', title: 'Refused', detail: e.message })
        : new HttpProblem({ status: 403, code: 'SPEND_REFUSED', title: 'Forbidden', detail: e.message })
    }
    return c.body(null, 204)
  })

  app.openapi(usageRoute, async (c) => {
    const b = c.req.valid('json')
    const { run, agent } = await runOf(b.tenantId, c.req.valid('param').runId)
    await port.recordUsage(run, agent, b.step, b.usage)
    return c.body(null, 204)
  })

  app.openapi(allowedRoute, async (c) => {
    const q = c.req.valid('query')
    const { run, agent } = await runOf(q.tenantId, c.req.valid('param').runId)
    return c.json({ allowed: await port.alwaysAllowed(run, agent, q.tool) }, 200)
  })

  app.openapi(replyRoute, async (c) => {
    const b = c.req.valid('json')
    const { run, agent } = await runOf(b.tenantId, c.req.valid('param').runId)
    await port.reply(run, agent, b.text, b.messageId)
    return c.body(null, 204)
  })

  app.openapi(toolsRoute, async (c) => {
    const skillsets = c.req.valid('query').skillsets.split(',').filter(Boolean)
    return c.json({ tools: await port.tools(skillsets) }, 200)
  })

  app.openapi(toolCallRoute, async (c) => {
    const b = c.req.valid('json')
    const { run, agent } = await runOf(b.tenantId, c.req.valid('param').runId)
    // A stale holder runs nothing: the call is fenced by the lease the worker says it holds.
    if (!run.lease || run.lease.workerId !== b.workerId || run.generation !== b.generation) {
      throw new RunLostError('the caller no longer holds this run')
    }
    const outcome = await port.runTool(
      run,
      agent,
      { toolCallId: b.toolCallId, tool: b.tool, arguments: b.arguments },
      c.req.raw.signal,
    )
    return c.json(outcome, 200)
  })

  return app
}
