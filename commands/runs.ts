import { createRoute, z } from '@hono/zod-openapi'
import { v5 as uuidv5 } from 'uuid'
import { streamName } from '../adapters/event-store.ts'
import { DomainError } from '../domain/decider.ts'
import { canRead, room } from '../domain/rooms.ts'
import { type RunCommand, type RunInput, type RunState, run } from '../domain/runs.ts'
import { type ThreadWorkType, thread } from '../domain/threads.ts'
import type { AppDeps } from '../http/context.ts'
import { actorOf, atLeast, type Principal, principalOf } from '../http/principal.ts'
import { router } from '../http/router.ts'
import { json, jsonBody, Position, problemResponse, Uuid } from '../http/schemas.ts'
import { bearerSecurity, positionOf } from '../http/tenant-route.ts'
import { agentActorOf, allowTool } from './agents.ts'
import { commandContext, pipelineDeps } from './command-context.ts'
import {
  type CommandContext,
  type CommandResult,
  type DecisionReader,
  handleCommand,
  loadState,
  type PipelineDeps,
} from './pipeline.ts'
import { loadRoom, roomStream } from './rooms.ts'

/*
 * Agents' threads and runs: waking an agent (a thread starts a run, or queues the input for the next), the worker's
 * commands on a run it holds (claim, renew, record items, ask for approval, finish), and what people do to a run
 * (ask, approve or reject a call, cancel). Each is a decision on one stream, appended at the revision it read.
 */

export const threadStream = (id: string) => streamName('thread', id)
export const runStream = (id: string) => streamName('run', id)

/** The namespace of thread ids (uuid v5): an agent has one thread per room (or task) and work type. */
const THREAD_IDS = '3b8f0c52-7a0e-5d4c-8e21-9f6a4b1c2d70'

export const threadIdFor = (t: {
  readonly tenantId: string
  readonly agentId: string
  readonly roomId: string
  readonly taskId: string | null
  readonly workType: ThreadWorkType
}): string => uuidv5([t.tenantId, t.agentId, t.roomId, t.taskId ?? '', t.workType].join('\n'), THREAD_IDS)

export type Wake = {
  readonly agentId: string
  readonly roomId: string
  readonly taskId: string | null
  readonly workType: ThreadWorkType
  readonly input: RunInput
}

/**
 * Wakes an agent in its thread: a run starts when none is active; otherwise the input waits for the next run. The
 * run's stream is written right after the thread's; should this process die in between, the runs processor
 * (thread.run_queued) writes it.
 */
export async function wakeAgent(
  deps: PipelineDeps,
  ctx: CommandContext,
  wake: Wake,
): Promise<{ threadId: string; runId: string | null; position: CommandResult<unknown, unknown>['position'] }> {
  if (!ctx.tenantId) throw new Error('an agent is woken within a tenant')
  const threadId = threadIdFor({ tenantId: ctx.tenantId, ...wake })
  const r = await handleCommand(
    deps,
    thread,
    threadStream(threadId),
    { type: 'wake', threadId, ...wake, runId: ctx.newId(), at: ctx.now().toISOString() },
    ctx,
  )
  const started = r.events.find((e) => e.type === 'thread.run_queued')
  if (!started) return { threadId, runId: null, position: r.position }
  const queued = await queueRun(deps, ctx, { ...started.data, roomId: wake.roomId, taskId: wake.taskId })
  return { threadId, runId: started.data.runId, position: queued.position ?? r.position }
}

/** Writes a run the thread queued; a repeat finds it queued and writes nothing. */
export const queueRun = (
  deps: PipelineDeps,
  ctx: CommandContext,
  q: {
    readonly threadId: string
    readonly runId: string
    readonly agentId: string
    readonly roomId: string
    readonly taskId: string | null
    readonly inputs: RunInput[]
  },
) =>
  handleCommand(
    deps,
    run,
    runStream(q.runId),
    {
      type: 'queue',
      runId: q.runId,
      threadId: q.threadId,
      agentId: q.agentId,
      roomId: q.roomId,
      taskId: q.taskId,
      inputs: q.inputs,
      at: ctx.now().toISOString(),
    },
    ctx,
  )

/** Tells the thread its run finished: what waited meanwhile starts the next run. Told twice, it acts once. */
export async function finishThreadRun(deps: PipelineDeps, ctx: CommandContext, finished: { threadId: string; runId: string }) {
  const r = await handleCommand(
    deps,
    thread,
    threadStream(finished.threadId),
    { type: 'finish_run', ...finished, nextRunId: ctx.newId(), at: ctx.now().toISOString() },
    ctx,
  )
  const next = r.events.find((e) => e.type === 'thread.run_queued')
  if (next && r.state.exists) await queueRun(deps, ctx, { ...next.data, roomId: r.state.roomId, taskId: r.state.taskId })
  return r
}

/** A command on a run, by the worker that holds it or by a person (their access checked before, by the caller). */
export const runCommand = (
  deps: PipelineDeps,
  ctx: CommandContext,
  command: RunCommand | ((s: RunState, read: DecisionReader) => Promise<RunCommand>),
  runId: string,
) => handleCommand(deps, run, runStream(runId), command, ctx)

/**
 * A person acts on a run only if they may read its room (404 otherwise: it does not exist for them); admins may
 * cancel any run ("working now").
 */
const asReader = async (me: Principal, s: RunState, read: DecisionReader, adminsToo = false): Promise<void> => {
  if (!s.exists) throw new DomainError('RUN_NOT_FOUND', 'no such run', 'not_found')
  if (adminsToo && atLeast(me, 'admin')) return
  const r = await read(room, roomStream(s.roomId))
  if (!canRead(r, me.userId, me.role)) throw new DomainError('RUN_NOT_FOUND', 'no such run', 'not_found')
}

const routes = {
  ask: createRoute({
    method: 'post',
    path: '/api/threads/{id}/runs',
    tags: ['agents'],
    summary: 'Ask the thread’s agent: starts a run, or joins the next one while a run is active',
    security: bearerSecurity,
    request: { params: z.object({ id: Uuid }), ...jsonBody(z.object({ input: z.string().min(1).max(20_000) })) },
    responses: {
      202: json('queued', z.object({ threadId: Uuid, runId: Uuid.nullable(), position: Position })),
      404: problemResponse('no such thread'),
    },
  }),
  cancel: createRoute({
    method: 'post',
    path: '/api/runs/{id}/cancel',
    tags: ['agents'],
    summary: 'Cancel a run: its model call and running tool are aborted within a second',
    security: bearerSecurity,
    request: { params: z.object({ id: Uuid }) },
    responses: {
      200: json('cancelled', z.object({ runId: Uuid, position: Position })),
      404: problemResponse('no such run'),
      409: problemResponse('the run has finished'),
    },
  }),
  approve: createRoute({
    method: 'post',
    path: '/api/runs/{id}/approvals',
    tags: ['agents'],
    summary: 'Approve or reject the tool call a run waits on',
    security: bearerSecurity,
    request: {
      params: z.object({ id: Uuid }),
      ...jsonBody(
        z.object({
          toolCallId: z.string().min(1).max(200),
          decision: z.enum(['approve', 'reject']),
          alwaysAllow: z
            .boolean()
            .default(false)
            .openapi({ description: 'approving, also let this agent use this tool in this room without asking again' }),
        }),
      ),
    },
    responses: {
      200: json('decided', z.object({ runId: Uuid, position: Position })),
      403: problemResponse('agents do not approve'),
      404: problemResponse('no such run'),
      409: problemResponse('the run waits for no decision on that call'),
    },
  }),
}

export function runsCommands(deps: AppDeps) {
  const app = router()
  app.openapi(routes.ask, async (c) => {
    const me = principalOf(c)
    const { id } = c.req.valid('param')
    const ctx = commandContext(c, actorOf(me), me.tenantId)
    const events = await deps.store.readStream(threadStream(id))
    const created = events[0]
    if (!created || created.metadata.tenantId !== me.tenantId || created.type !== 'thread.created') {
      throw new DomainError('THREAD_NOT_FOUND', 'no such thread', 'not_found')
    }
    const t = created.data as { agentId: string; roomId: string; taskId: string | null; workType: ThreadWorkType }
    if (!canRead(await loadRoom(deps.store, t.roomId, me.tenantId), me.userId, me.role)) {
      throw new DomainError('THREAD_NOT_FOUND', 'no such thread', 'not_found')
    }
    const woken = await wakeAgent(pipelineDeps(deps), ctx, {
      ...t,
      input: { trigger: { type: 'request', userId: me.userId, requestId: ctx.newId() }, text: c.req.valid('json').input },
    })
    return c.json({ threadId: woken.threadId, runId: woken.runId, position: positionOf(woken.position) }, 202)
  })
  app.openapi(routes.cancel, async (c) => {
    const me = principalOf(c)
    const { id } = c.req.valid('param')
    const ctx = commandContext(c, actorOf(me), me.tenantId)
    const r = await runCommand(
      pipelineDeps(deps),
      ctx,
      async (s, read) => {
        await asReader(me, s, read, true)
        return { type: 'cancel', runId: id, by: me.userId, at: ctx.now().toISOString() }
      },
      id,
    )
    return c.json({ runId: id, position: positionOf(r.position) }, 200)
  })
  app.openapi(routes.approve, async (c) => {
    const me = principalOf(c)
    if (me.type === 'agent') throw new DomainError('FORBIDDEN', 'a person approves an agent’s call, not an agent', 'forbidden')
    const { id } = c.req.valid('param')
    const body = c.req.valid('json')
    const ctx = commandContext(c, actorOf(me), me.tenantId)
    const r = await runCommand(
      pipelineDeps(deps),
      ctx,
      async (s, read) => {
        await asReader(me, s, read)
        return {
          type: 'decide_action',
          runId: id,
          toolCallId: body.toolCallId,
          decision: body.decision,
          by: me.userId,
          at: ctx.now().toISOString(),
        }
      },
      id,
    )
    const tool = r.state.exists ? [...r.state.items.values()].find((i) => i.toolCallId === body.toolCallId)?.tool : undefined
    if (body.decision === 'approve' && body.alwaysAllow && r.state.exists && tool) {
      const allowed = await allowTool(pipelineDeps(deps), ctx, {
        agentId: r.state.agentId,
        roomId: r.state.roomId,
        tool,
        allowed: true,
        actor: agentActorOf(me),
      })
      return c.json({ runId: id, position: positionOf(allowed.position ?? r.position) }, 200)
    }
    return c.json({ runId: id, position: positionOf(r.position) }, 200)
  })
  return app
}

/** A thread as its stream says, in the tenant (an unknown or another tenant's thread does not exist). */
export const loadThread = (store: PipelineDeps['store'], threadId: string, tenantId: string | null) =>
  loadState(store, thread, threadStream(threadId), tenantId)

/**
 * Records, on the thread of the run that asks, that its agent waits for a task: the agent-task-waits processor wakes
 * the thread when the task closes. Asked again for a task it waits for, nothing new is recorded.
 */
export async function awaitTask(
  deps: PipelineDeps,
  ctx: CommandContext,
  w: { readonly runId: string; readonly agentId: string; readonly awaitedTaskId: string; readonly note: string | null },
) {
  const r = await loadState(deps.store, run, runStream(w.runId), ctx.tenantId)
  if (!r.exists || r.agentId !== w.agentId) throw new DomainError('RUN_NOT_FOUND', 'no such run', 'not_found')
  return handleCommand(
    deps,
    thread,
    threadStream(r.threadId),
    { type: 'await_task', threadId: r.threadId, ...w, at: ctx.now().toISOString() },
    ctx,
  )
}
