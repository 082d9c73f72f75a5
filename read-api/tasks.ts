import { createRoute, z } from '@hono/zod-openapi'
import { type RawBuilder, sql } from 'kysely'
import { inTenant } from '../adapters/tenant-transaction.ts'
import { effectiveStatus, type GateState, type PersonType, TASK_STATUSES, type TaskStatus } from '../domain/tasks.ts'
import { consistent } from '../http/consistent-after.ts'
import type { AppDeps } from '../http/context.ts'
import { type Principal, principalOf } from '../http/principal.ts'
import { notFound } from '../http/problem.ts'
import { router } from '../http/router.ts'
import { consistentAfterQuery, json, Uuid } from '../http/schemas.ts'
import { bearerSecurity } from '../http/tenant-route.ts'
import { decodeCursor, encodeCursor, pageQuery, pageSchema } from './pagination.ts'

/** Who may read a task is decided on rooms' membership as well as on the task's people. */
export const TASK_PROJECTIONS = ['tasks', 'rooms'] as const

/**
 * Tasks `alias` names that the principal may read (domain/tasks.ts canReadTask): whoever may read the task's room
 * (members; anyone but guests in a public room that is not a DM), and its reporter, assignee, assistants and
 * watchers. `alias` is one of this file's constants, never client input.
 */
const readableTask = (me: Principal, alias: 't' | 'c' | 'dt'): RawBuilder<boolean> => {
  const t = sql.raw(alias)
  return sql<boolean>`(
    exists (select 1 from tenant.room_members rm
             where rm.tenant_id = ${t}.tenant_id and rm.room_id = ${t}.room_id and rm.member_id = ${me.userId})
    or (${me.role !== 'guest'}::boolean and exists (select 1 from tenant.rooms r
             where r.tenant_id = ${t}.tenant_id and r.id = ${t}.room_id and r.visibility = 'public' and r.kind = 'room'))
    or ${t}.reporter_id = ${me.userId} or ${t}.assignee_id = ${me.userId}
    or exists (select 1 from tenant.task_people p
             where p.tenant_id = ${t}.tenant_id and p.task_id = ${t}.id and p.user_id = ${me.userId}))`
}

const Person = z.object({ id: Uuid, type: z.enum(['user', 'agent']) })
const GateView = z
  .object({
    required: z.boolean(),
    state: z.enum(['not_submitted', 'pending', 'approved', 'rejected']),
    text: z.string().nullable().openapi({ description: 'the submitted plan or result' }),
    submittedBy: Uuid.nullable(),
    decidedBy: Uuid.nullable(),
    comment: z.string().nullable(),
  })
  .openapi('ReviewGate')

const EFFECTIVE = [
  'done',
  'limit_reached',
  'waiting_for_approval',
  'waiting_for_dependencies',
  'working',
  'open',
  'blocked',
] as const

const Task = z
  .object({
    id: Uuid,
    title: z.string(),
    description: z.string(),
    roomId: Uuid,
    parentId: Uuid.nullable(),
    reporterId: Uuid,
    assignee: Person.nullable(),
    status: z.enum(TASK_STATUSES),
    effectiveStatus: z.enum(EFFECTIVE).openapi({
      description:
        'for display: done (done or cancelled), limit_reached (a spend limit stopped it), waiting_for_approval (a plan or ' +
        'result awaits a person), waiting_for_dependencies (a task it depends on is not done), working (in progress), else open or blocked',
    }),
    limitReached: z.boolean(),
    openDependencies: z.number().int(),
    reviewGates: z.object({ plan: GateView, result: GateView }),
    createdAt: z.string(),
    updatedAt: z.string(),
  })
  .openapi('Task')

const TaskDetail = Task.extend({
  assistants: z.array(Uuid),
  watchers: z.array(Uuid),
  dependencies: z
    .array(z.object({ taskId: Uuid, title: z.string().nullable(), status: z.enum(TASK_STATUSES).nullable() }))
    .openapi({ description: 'tasks this one depends on; title and status only of those the caller may read' }),
  subtasks: z.array(z.object({ taskId: Uuid, title: z.string(), status: z.enum(TASK_STATUSES) })),
}).openapi('TaskDetail')

type Row = {
  id: string
  room_id: string
  parent_id: string | null
  title: string
  description: string
  reporter_id: string
  assignee_id: string | null
  assignee_type: PersonType | null
  status: TaskStatus
  plan_required: boolean
  plan_state: GateState
  plan_text: string | null
  plan_submitted_by: string | null
  plan_decided_by: string | null
  plan_comment: string | null
  result_required: boolean
  result_state: GateState
  result_text: string | null
  result_submitted_by: string | null
  result_decided_by: string | null
  result_comment: string | null
  limit_reached: boolean
  open_dependencies: number
  created_at: Date
  updated_at: Date
}

const gate = (r: Row, g: 'plan' | 'result') => ({
  required: r[`${g}_required`],
  state: r[`${g}_state`],
  text: r[`${g}_text`],
  submittedBy: r[`${g}_submitted_by`],
  decidedBy: r[`${g}_decided_by`],
  comment: r[`${g}_comment`],
})

const toTask = (r: Row) => ({
  id: r.id,
  title: r.title,
  description: r.description,
  roomId: r.room_id,
  parentId: r.parent_id,
  reporterId: r.reporter_id,
  assignee: r.assignee_id && r.assignee_type ? { id: r.assignee_id, type: r.assignee_type } : null,
  status: r.status,
  effectiveStatus: effectiveStatus({
    status: r.status,
    limitReached: r.limit_reached,
    gatePending: r.plan_state === 'pending' || r.result_state === 'pending',
    openDependencies: r.open_dependencies,
  }),
  limitReached: r.limit_reached,
  openDependencies: r.open_dependencies,
  reviewGates: { plan: gate(r, 'plan'), result: gate(r, 'result') },
  createdAt: new Date(r.created_at).toISOString(),
  updatedAt: new Date(r.updated_at).toISOString(),
})

const openDependencies = sql<number>`(select count(*)::int from tenant.task_dependencies d
    join tenant.tasks dt on dt.tenant_id = d.tenant_id and dt.id = d.depends_on_id
   where d.tenant_id = t.tenant_id and d.task_id = t.id and dt.status not in ('done', 'cancelled'))`

const routes = {
  list: createRoute({
    method: 'get',
    path: '/api/tasks',
    tags: ['tasks'],
    summary: 'Tasks the caller can read, newest first',
    security: bearerSecurity,
    request: {
      query: z.object({
        ...pageQuery,
        ...consistentAfterQuery,
        status: z.enum(TASK_STATUSES).optional().openapi({ description: 'the stored status' }),
        assignee: z
          .union([Uuid, z.literal('me'), z.literal('none')])
          .optional()
          .openapi({ description: 'a user or agent id, `me`, or `none` (unassigned)' }),
        roomId: Uuid.optional(),
        parentId: Uuid.optional(),
        reviewPending: z.enum(['true']).optional().openapi({ description: 'only tasks whose plan or result awaits a decision' }),
      }),
    },
    responses: { 200: json('tasks', pageSchema(Task)) },
  }),
  get: createRoute({
    method: 'get',
    path: '/api/tasks/{id}',
    tags: ['tasks'],
    summary: 'One task with its people, depends-on links and subtasks',
    security: bearerSecurity,
    request: { params: z.object({ id: Uuid }), query: z.object({ ...consistentAfterQuery }) },
    responses: { 200: json('the task', TaskDetail) },
  }),
}

export function tasksQueries(deps: AppDeps) {
  const app = router()

  app.openapi(routes.list, async (c) => {
    const me = principalOf(c)
    const q = c.req.valid('query')
    await consistent(c, deps, TASK_PROJECTIONS)
    const after = decodeCursor(q.cursor, 2)
    const assignee = q.assignee === 'me' ? me.userId : q.assignee
    const rows = await inTenant(deps.db, me, async (trx) => {
      const { rows } = await sql<Row>`
        select t.*, ${openDependencies} as open_dependencies from tenant.tasks t
         where t.tenant_id = ${me.tenantId} and ${readableTask(me, 't')}
           ${q.status ? sql`and t.status = ${q.status}` : sql``}
           ${assignee === 'none' ? sql`and t.assignee_id is null` : assignee ? sql`and t.assignee_id = ${assignee}` : sql``}
           ${q.roomId ? sql`and t.room_id = ${q.roomId}` : sql``}
           ${q.parentId ? sql`and t.parent_id = ${q.parentId}` : sql``}
           ${q.reviewPending ? sql`and (t.plan_state = 'pending' or t.result_state = 'pending')` : sql``}
           ${after ? sql`and (t.created_at, t.id) < (${String(after[0])}::timestamptz, ${String(after[1])}::uuid)` : sql``}
         order by t.created_at desc, t.id desc
         limit ${q.limit + 1}`.execute(trx)
      return rows
    })
    const page = rows.slice(0, q.limit)
    const last = page.at(-1)
    return c.json(
      {
        items: page.map(toTask),
        nextCursor: rows.length > q.limit && last ? encodeCursor([new Date(last.created_at).toISOString(), last.id]) : null,
      },
      200,
    )
  })

  app.openapi(routes.get, async (c) => {
    const me = principalOf(c)
    const { id } = c.req.valid('param')
    await consistent(c, deps, TASK_PROJECTIONS)
    const found = await inTenant(deps.db, me, async (trx) => {
      const { rows } = await sql<Row>`
        select t.*, ${openDependencies} as open_dependencies from tenant.tasks t
         where t.tenant_id = ${me.tenantId} and t.id = ${id} and ${readableTask(me, 't')}`.execute(trx)
      const row = rows[0]
      if (!row) return null
      const [people, dependencies, subtasks] = await Promise.all([
        sql<{ relation: string; user_id: string }>`
          select relation, user_id from tenant.task_people
           where tenant_id = ${me.tenantId} and task_id = ${id} order by added_at, user_id`.execute(trx),
        sql<{ depends_on_id: string; title: string | null; status: TaskStatus | null }>`
          select d.depends_on_id,
                 case when ${readableTask(me, 'dt')} then dt.title end as title,
                 case when ${readableTask(me, 'dt')} then dt.status end as status
            from tenant.task_dependencies d
            left join tenant.tasks dt on dt.tenant_id = d.tenant_id and dt.id = d.depends_on_id
           where d.tenant_id = ${me.tenantId} and d.task_id = ${id} order by d.added_at, d.depends_on_id`.execute(trx),
        sql<{ id: string; title: string; status: TaskStatus }>`
          select c.id, c.title, c.status from tenant.tasks c
           where c.tenant_id = ${me.tenantId} and c.parent_id = ${id} and ${readableTask(me, 'c')}
           order by c.created_at, c.id`.execute(trx),
      ])
      return { row, people: people.rows, dependencies: dependencies.rows, subtasks: subtasks.rows }
    })
    if (!found) throw notFound('no such task')
    return c.json(
      {
        ...toTask(found.row),
        assistants: found.people.filter((p) => p.relation === 'assistant').map((p) => p.user_id),
        watchers: found.people.filter((p) => p.relation === 'watcher').map((p) => p.user_id),
        dependencies: found.dependencies.map((d) => ({
          taskId: d.depends_on_id,
          title: d.title ?? null,
          status: d.status ?? null,
        })),
        subtasks: found.subtasks.map((s) => ({ taskId: s.id, title: s.title, status: s.status })),
      },
      200,
    )
  })

  return app
}
