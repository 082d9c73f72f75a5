import { createRoute, z } from '@hono/zod-openapi'
import { inTenant, type TenantTransaction } from '../adapters/tenant-transaction.ts'
import { RUN_ITEM_KINDS, RUN_ITEM_STATUSES } from '../domain/runs.ts'
import { consistent } from '../http/consistent-after.ts'
import type { AppDeps } from '../http/context.ts'
import { atLeast, type Principal, principalOf } from '../http/principal.ts'
import { notFound } from '../http/problem.ts'
import { router } from '../http/router.ts'
import { consistentAfterQuery, json, problemResponse, Uuid } from '../http/schemas.ts'
import { bearerSecurity } from '../http/tenant-route.ts'
import { decodeCursor, encodeCursor, pageQuery, pageSchema } from './pagination.ts'
import { readableRoom } from './rooms.ts'

/*
 * The agents' work as people see it: threads and their runs, each run's groups and items (resumable after a
 * sequence), and "working now". What a thread or run shows is its room's: who may read the room may read them.
 */

const PROJECTORS = ['agent_runs', 'rooms'] as const
const iso = (v: unknown) => (v === null || v === undefined ? null : new Date(v as string).toISOString())

const RunStatus = z.enum(['queued', 'in_progress', 'requires_action', 'completed', 'failed', 'cancelled', 'incomplete'])

const Thread = z
  .object({
    id: Uuid,
    agentId: Uuid,
    roomId: Uuid,
    taskId: Uuid.nullable(),
    workType: z.enum(['conversation', 'role_learning', 'task_memory']),
    activeRunId: Uuid.nullable(),
    pendingInputs: z.number().int(),
    createdAt: z.string(),
    updatedAt: z.string(),
  })
  .openapi('Thread')

const RunItem = z
  .object({
    id: Uuid,
    runId: Uuid,
    groupId: Uuid,
    sequence: z.number().int(),
    kind: z.enum(RUN_ITEM_KINDS),
    status: z.enum(RUN_ITEM_STATUSES),
    content: z.string(),
    toolCallId: z.string().nullable(),
    tool: z.string().nullable(),
    arguments: z.string().nullable(),
    createdAt: z.string(),
    updatedAt: z.string(),
  })
  .openapi('RunItem')

const RunGroup = z
  .object({
    id: Uuid,
    runId: Uuid,
    kind: z.enum(['activity', 'message']),
    status: z.enum(['in_progress', 'completed']),
    itemIds: z.array(Uuid),
    createdAt: z.string(),
  })
  .openapi('RunItemGroup')

const Run = z
  .object({
    id: Uuid,
    threadId: Uuid,
    agentId: Uuid,
    roomId: Uuid,
    taskId: Uuid.nullable(),
    status: RunStatus,
    inputs: z.array(z.object({ trigger: z.record(z.string(), z.string()), text: z.string() })),
    sequence: z.number().int().openapi({ description: 'the last sequence of its items: resume with ?afterSequence=' }),
    pendingAction: z.object({ toolCallId: z.string(), tool: z.string() }).nullable(),
    outcome: z.object({ code: z.string().nullable(), detail: z.string().nullable() }).nullable().openapi({
      description: 'why it failed (an error code) or stopped incomplete (the limit: max_steps, max_time, budget, limit_reached)',
    }),
    createdAt: z.string(),
    startedAt: z.string().nullable(),
    finishedAt: z.string().nullable(),
  })
  .openapi('Run')

// biome-ignore lint/suspicious/noExplicitAny: rows of the agent_* read models
type AnyRow = Record<string, any>

const threadOf = (t: AnyRow) => ({
  id: t.id,
  agentId: t.agent_id,
  roomId: t.room_id,
  taskId: t.task_id,
  workType: t.work_type,
  activeRunId: t.active_run_id,
  pendingInputs: t.pending_inputs,
  createdAt: iso(t.created_at)!,
  updatedAt: iso(t.updated_at)!,
})

const runOf = (r: AnyRow) => ({
  id: r.id,
  threadId: r.thread_id,
  agentId: r.agent_id,
  roomId: r.room_id,
  taskId: r.task_id,
  status: r.status,
  inputs: JSON.parse(r.inputs),
  sequence: r.sequence,
  pendingAction: r.pending_tool_call_id ? { toolCallId: r.pending_tool_call_id, tool: r.pending_tool } : null,
  outcome: r.outcome_code || r.outcome_detail ? { code: r.outcome_code, detail: r.outcome_detail } : null,
  createdAt: iso(r.created_at)!,
  startedAt: iso(r.started_at),
  finishedAt: iso(r.finished_at),
})

const itemOf = (i: AnyRow) => ({
  id: i.item_id,
  runId: i.run_id,
  groupId: i.group_id,
  sequence: i.sequence,
  kind: i.kind,
  status: i.status,
  content: i.content,
  toolCallId: i.tool_call_id,
  tool: i.tool,
  arguments: i.arguments,
  createdAt: iso(i.created_at)!,
  updatedAt: iso(i.updated_at)!,
})

/** The thread's or run's room, when the caller may read it. */
const readable = (trx: TenantTransaction, me: Principal, roomId: string) =>
  trx
    .selectFrom('tenant.rooms as r')
    .select('r.id')
    .where('r.tenant_id', '=', me.tenantId)
    .where('r.id', '=', roomId)
    .where(readableRoom(me))
    .executeTakeFirst()

const listThreads = createRoute({
  method: 'get',
  path: '/api/threads',
  tags: ['agents'],
  summary: 'Agents’ threads in rooms the caller may read, most recently active first',
  security: bearerSecurity,
  request: { query: z.object({ agentId: Uuid.optional(), roomId: Uuid.optional(), ...pageQuery, ...consistentAfterQuery }) },
  responses: { 200: json('threads', pageSchema(Thread)) },
})

const getThread = createRoute({
  method: 'get',
  path: '/api/threads/{id}',
  tags: ['agents'],
  summary: 'A thread with its latest runs, each run’s item groups and items',
  security: bearerSecurity,
  request: {
    params: z.object({ id: Uuid }),
    query: z.object({ runs: z.coerce.number().int().min(1).max(50).default(10), ...consistentAfterQuery }),
  },
  responses: {
    200: json('the thread', Thread.extend({ runs: z.array(Run.extend({ groups: z.array(RunGroup), items: z.array(RunItem) })) })),
    404: problemResponse('no such thread'),
  },
})

const runItems = createRoute({
  method: 'get',
  path: '/api/runs/{id}/items',
  tags: ['agents'],
  summary: 'A run with its items changed after a sequence (what a client missed)',
  security: bearerSecurity,
  request: {
    params: z.object({ id: Uuid }),
    query: z.object({ afterSequence: z.coerce.number().int().min(0).default(0), ...consistentAfterQuery }),
  },
  responses: {
    200: json('the run and its items after the sequence, by sequence', Run.extend({ items: z.array(RunItem) })),
    404: problemResponse('no such run'),
  },
})

const working = createRoute({
  method: 'get',
  path: '/api/agents/working',
  tags: ['agents'],
  summary: 'Runs not finished: in rooms the caller may read, or all of them for admins (who may cancel any)',
  security: bearerSecurity,
  request: { query: z.object({ ...consistentAfterQuery }) },
  responses: { 200: json('runs queued, in progress or waiting for approval, oldest first', z.object({ items: z.array(Run) })) },
})

export function runsQueries(deps: AppDeps) {
  const app = router()
  app.openapi(listThreads, async (c) => {
    const me = principalOf(c)
    const q = c.req.valid('query')
    await consistent(c, deps, PROJECTORS)
    const after = decodeCursor(q.cursor, 2)
    const rows = await inTenant(deps.db, me, (trx) => {
      let query = trx
        .selectFrom('tenant.agent_threads as t')
        .innerJoin('tenant.rooms as r', (j) => j.onRef('r.tenant_id', '=', 't.tenant_id').onRef('r.id', '=', 't.room_id'))
        .selectAll('t')
        .where('t.tenant_id', '=', me.tenantId)
        .where(readableRoom(me))
        .orderBy('t.updated_at', 'desc')
        .orderBy('t.id', 'desc')
        .limit(q.limit + 1)
      if (q.agentId) query = query.where('t.agent_id', '=', q.agentId)
      if (q.roomId) query = query.where('t.room_id', '=', q.roomId)
      if (after) {
        query = query.where(
          (eb) => eb.refTuple('t.updated_at', 't.id'),
          '<',
          (eb) => eb.tuple(String(after[0]), String(after[1])),
        )
      }
      return query.execute()
    })
    const page = rows.slice(0, q.limit)
    const last = page.at(-1)
    return c.json(
      {
        items: page.map(threadOf),
        nextCursor: rows.length > q.limit && last ? encodeCursor([iso(last.updated_at)!, last.id]) : null,
      },
      200,
    )
  })

  app.openapi(getThread, async (c) => {
    const me = principalOf(c)
    const { id } = c.req.valid('param')
    const { runs: howMany } = c.req.valid('query')
    await consistent(c, deps, PROJECTORS)
    const found = await inTenant(deps.db, me, async (trx) => {
      const thread = await trx
        .selectFrom('tenant.agent_threads')
        .selectAll()
        .where('tenant_id', '=', me.tenantId)
        .where('id', '=', id)
        .executeTakeFirst()
      if (!thread || !(await readable(trx, me, thread.room_id))) return null
      const runs = await trx
        .selectFrom('tenant.agent_runs')
        .selectAll()
        .where('tenant_id', '=', me.tenantId)
        .where('thread_id', '=', id)
        .orderBy('id', 'desc')
        .limit(howMany)
        .execute()
      const runIds = runs.map((r) => r.id)
      const [groups, items] = runIds.length
        ? await Promise.all([
            trx
              .selectFrom('tenant.agent_run_groups')
              .selectAll()
              .where('tenant_id', '=', me.tenantId)
              .where('run_id', 'in', runIds)
              .orderBy('created_at')
              .orderBy('group_id')
              .execute(),
            trx
              .selectFrom('tenant.agent_run_items')
              .selectAll()
              .where('tenant_id', '=', me.tenantId)
              .where('run_id', 'in', runIds)
              .orderBy('created_at')
              .orderBy('item_id')
              .execute(),
          ])
        : [[], []]
      return { thread, runs: runs.reverse(), groups, items }
    })
    if (!found) throw notFound('no such thread')
    return c.json(
      {
        ...threadOf(found.thread),
        runs: found.runs.map((r) => {
          const items = found.items.filter((i) => i.run_id === r.id)
          return {
            ...runOf(r),
            groups: found.groups
              .filter((g) => g.run_id === r.id)
              .map((g) => ({
                id: g.group_id,
                runId: g.run_id,
                kind: g.kind,
                status: g.status,
                itemIds: items.filter((i) => i.group_id === g.group_id).map((i) => i.item_id),
                createdAt: iso(g.created_at)!,
              })),
            items: items.map(itemOf),
          }
        }),
      },
      200,
    )
  })

  app.openapi(runItems, async (c) => {
    const me = principalOf(c)
    const { id } = c.req.valid('param')
    const { afterSequence } = c.req.valid('query')
    await consistent(c, deps, PROJECTORS)
    const found = await inTenant(deps.db, me, async (trx) => {
      const r = await trx
        .selectFrom('tenant.agent_runs')
        .selectAll()
        .where('tenant_id', '=', me.tenantId)
        .where('id', '=', id)
        .executeTakeFirst()
      if (!r || !(await readable(trx, me, r.room_id))) return null
      const items = await trx
        .selectFrom('tenant.agent_run_items')
        .selectAll()
        .where('tenant_id', '=', me.tenantId)
        .where('run_id', '=', id)
        .where('sequence', '>', afterSequence)
        .orderBy('sequence')
        .execute()
      return { r, items }
    })
    if (!found) throw notFound('no such run')
    return c.json({ ...runOf(found.r), items: found.items.map(itemOf) }, 200)
  })

  app.openapi(working, async (c) => {
    const me = principalOf(c)
    await consistent(c, deps, PROJECTORS)
    const rows = await inTenant(deps.db, me, (trx) => {
      let q = trx
        .selectFrom('tenant.agent_runs as a')
        .innerJoin('tenant.rooms as r', (j) => j.onRef('r.tenant_id', '=', 'a.tenant_id').onRef('r.id', '=', 'a.room_id'))
        .selectAll('a')
        .select((eb) => readableRoom(me)(eb).as('readable'))
        .where('a.tenant_id', '=', me.tenantId)
        .where('a.finished_at', 'is', null)
        .orderBy('a.created_at')
        .orderBy('a.id')
        .limit(500)
      if (!atLeast(me, 'admin')) q = q.where(readableRoom(me))
      return q.execute()
    })
    // An admin sees every run to cancel it, but not what was asked in a room they may not read.
    return c.json({ items: rows.map((r) => ({ ...runOf(r), inputs: r.readable ? JSON.parse(r.inputs) : [] })) }, 200)
  })
  return app
}
