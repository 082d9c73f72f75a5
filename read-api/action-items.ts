import { createRoute, z } from '@hono/zod-openapi'
import { type RawBuilder, sql } from 'kysely'
import { inTenant } from '../adapters/tenant-transaction.ts'
import { consistent } from '../http/consistent-after.ts'
import type { AppDeps } from '../http/context.ts'
import { atLeast, type Principal, principalOf } from '../http/principal.ts'
import { badRequest } from '../http/problem.ts'
import { router } from '../http/router.ts'
import { consistentAfterQuery, json, Uuid } from '../http/schemas.ts'
import { bearerSecurity } from '../http/tenant-route.ts'
import { decodeCursor, encodeCursor, pageQuery, pageSchema } from './pagination.ts'
import { taskReadableBy } from './task-schedules.ts'

const PROJECTIONS = ['action-items', 'tasks', 'rooms'] as const
const KINDS = ['approval', 'question', 'limit_reached', 'tool_approval', 'failed_run'] as const

const ActionItem = z
  .object({
    id: z.string().openapi({
      description:
        '`approval:<taskId>:<gate>`, `question:<questionId>`, `limit:<scope>:<scopeId>`, `tool_approval:<runId>` or `failed_run:<threadId>`',
    }),
    kind: z.enum(KINDS),
    taskId: Uuid.nullable(),
    roomId: Uuid.nullable().openapi({ description: 'the room it belongs to (a task’s is its room); null: the workspace’s' }),
    toUserId: Uuid.nullable().openapi({ description: 'the one person it waits for (a question’s)' }),
    fromId: Uuid.nullable().openapi({ description: 'who asked, or submitted for approval' }),
    gate: z.enum(['plan', 'result']).nullable(),
    scope: z.enum(['org', 'agent', 'room', 'task']).nullable(),
    scopeId: z.string().nullable(),
    text: z.string().openapi({ description: 'the plan or result submitted, or the question' }),
    limitMicroUsd: z.number().int().nullable(),
    usedMicroUsd: z.number().int().nullable(),
    questionId: Uuid.nullable().openapi({ description: 'a question’s id: answer it at POST /api/questions/{id}/answer' }),
    runId: Uuid.nullable().openapi({ description: 'an agent’s run: its call waiting for approval, or that failed' }),
    tool: z.string().nullable(),
    toolCallId: z.string().nullable().openapi({ description: 'approve or reject it at POST /api/runs/{runId}/approvals' }),
    createdAt: z.string(),
  })
  .openapi('ActionItem')

const list = createRoute({
  method: 'get',
  path: '/api/action-items',
  tags: ['action items'],
  summary: 'What waits for the caller: approvals, questions put to them, limits reached (newest first)',
  description:
    'Approvals waiting are shown to the people who may read the task (not to agents, nor to who submitted); a ' +
    'question only to the person asked; a limit reached to its room’s (or task’s) readers, and to admins. An item ' +
    'is gone once resolved.',
  security: bearerSecurity,
  request: {
    query: z.object({ roomId: Uuid.optional(), kind: z.enum(KINDS).optional(), ...pageQuery, ...consistentAfterQuery }),
  },
  responses: { 200: json('action items', pageSchema(ActionItem)) },
})

const counts = createRoute({
  method: 'get',
  path: '/api/action-items/counts',
  tags: ['action items'],
  summary: 'How many action items wait for the caller: in the workspace, by kind, and per room',
  security: bearerSecurity,
  request: { query: z.object({ ...consistentAfterQuery }) },
  responses: {
    200: json(
      'counts',
      z.object({
        total: z.number().int(),
        byKind: z.object({
          approval: z.number().int(),
          question: z.number().int(),
          limit_reached: z.number().int(),
          tool_approval: z.number().int(),
          failed_run: z.number().int(),
        }),
        rooms: z.array(z.object({ roomId: Uuid, count: z.number().int() })),
      }),
    ),
  },
})

type Row = {
  id: string
  kind: (typeof KINDS)[number]
  task_id: string | null
  room: string | null
  to_user_id: string | null
  from_id: string | null
  gate: 'plan' | 'result' | null
  scope: 'org' | 'agent' | 'room' | 'task' | null
  scope_id: string | null
  text: string
  limit_micro_usd: string | null
  used_micro_usd: string | null
  run_id: string | null
  tool: string | null
  tool_call_id: string | null
  created_at: Date
}

/**
 * The items the principal may see, `ai` joined to its task `t` (if any): who may act on it, or must know.
 * Aliases are constants of this file.
 */
function visibleTo(me: Principal): RawBuilder<boolean> {
  const roomReadable = sql<boolean>`(
    exists (select 1 from tenant.room_members rm
             where rm.tenant_id = ai.tenant_id and rm.room_id = ai.room_id and rm.member_id = ${me.userId})
    or (${me.role !== 'guest'}::boolean and exists (select 1 from tenant.rooms r
             where r.tenant_id = ai.tenant_id and r.id = ai.room_id and r.visibility = 'public' and r.kind = 'room')))`
  return sql<boolean>`(
    (ai.kind = 'question' and ai.to_user_id = ${me.userId} and t.id is not null)
    or (ai.kind = 'approval' and ${me.type !== 'agent'}::boolean and ai.from_id is distinct from ${me.userId}
        and t.id is not null and ${taskReadableBy(me, 't')})
    or (ai.kind = 'limit_reached' and (
          ${atLeast(me, 'admin')}::boolean
          or (ai.task_id is not null and t.id is not null and ${taskReadableBy(me, 't')})
          or (ai.task_id is null and ai.room_id is not null and ${roomReadable})))
    or (ai.kind = 'tool_approval' and ${me.type !== 'agent'}::boolean and ${roomReadable})
    or (ai.kind = 'failed_run' and ${roomReadable}))`
}

const toItem = (r: Row) => ({
  id: r.id,
  kind: r.kind,
  taskId: r.task_id,
  roomId: r.room,
  toUserId: r.to_user_id,
  fromId: r.from_id,
  gate: r.gate,
  scope: r.scope,
  scopeId: r.scope_id,
  text: r.text,
  limitMicroUsd: r.limit_micro_usd === null ? null : Number(r.limit_micro_usd),
  usedMicroUsd: r.used_micro_usd === null ? null : Number(r.used_micro_usd),
  questionId: r.kind === 'question' ? r.id.slice('question:'.length) : null,
  runId: r.run_id,
  tool: r.tool,
  toolCallId: r.tool_call_id,
  createdAt: new Date(r.created_at).toISOString(),
})

export function actionItemsQueries(deps: AppDeps) {
  const app = router()

  app.openapi(list, async (c) => {
    const me = principalOf(c)
    const { roomId, kind, limit, cursor } = c.req.valid('query')
    const after = decodeCursor(cursor, 2)
    if (after && (typeof after[0] !== 'string' || Number.isNaN(Date.parse(after[0])) || typeof after[1] !== 'string')) {
      throw badRequest('cursor is not one this server gave out', [{ path: 'cursor', message: 'invalid cursor' }])
    }
    await consistent(c, deps, [...PROJECTIONS])
    const rows = await inTenant(deps.db, me, async (trx) => {
      const { rows } = await sql<Row>`
        select ai.id, ai.kind, ai.task_id, coalesce(t.room_id, ai.room_id) as room, ai.to_user_id, ai.from_id, ai.gate,
               ai.scope, ai.scope_id, ai.text, ai.limit_micro_usd::text as limit_micro_usd,
               ai.used_micro_usd::text as used_micro_usd, ai.run_id, ai.tool, ai.tool_call_id, ai.created_at
          from tenant.action_items ai
          left join tenant.tasks t on t.tenant_id = ai.tenant_id and t.id = ai.task_id
         where ai.tenant_id = ${me.tenantId} and ${visibleTo(me)}
           ${roomId ? sql`and coalesce(t.room_id, ai.room_id) = ${roomId}` : sql``}
           ${kind ? sql`and ai.kind = ${kind}` : sql``}
           ${after ? sql`and (ai.created_at, ai.id) < (${after[0]}::timestamptz, ${after[1]})` : sql``}
         order by ai.created_at desc, ai.id desc
         limit ${limit + 1}`.execute(trx)
      return rows
    })
    const page = rows.slice(0, limit)
    const last = page.at(-1)
    return c.json(
      {
        items: page.map(toItem),
        nextCursor: rows.length > limit && last ? encodeCursor([new Date(last.created_at).toISOString(), last.id]) : null,
      },
      200,
    )
  })

  app.openapi(counts, async (c) => {
    const me = principalOf(c)
    await consistent(c, deps, [...PROJECTIONS])
    const rows = await inTenant(deps.db, me, async (trx) => {
      const { rows } = await sql<{ room: string | null; kind: Row['kind']; n: number }>`
        select coalesce(t.room_id, ai.room_id) as room, ai.kind, count(*)::int as n
          from tenant.action_items ai
          left join tenant.tasks t on t.tenant_id = ai.tenant_id and t.id = ai.task_id
         where ai.tenant_id = ${me.tenantId} and ${visibleTo(me)}
         group by 1, 2`.execute(trx)
      return rows
    })
    const byKind = { approval: 0, question: 0, limit_reached: 0, tool_approval: 0, failed_run: 0 }
    const perRoom = new Map<string, number>()
    for (const r of rows) {
      byKind[r.kind] += r.n
      if (r.room) perRoom.set(r.room, (perRoom.get(r.room) ?? 0) + r.n)
    }
    return c.json(
      {
        total: byKind.approval + byKind.question + byKind.limit_reached,
        byKind,
        rooms: [...perRoom].sort(([a], [b]) => (a < b ? -1 : 1)).map(([roomId, count]) => ({ roomId, count })),
      },
      200,
    )
  })

  return app
}
