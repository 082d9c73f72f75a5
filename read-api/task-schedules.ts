import { createRoute, z } from '@hono/zod-openapi'
import { type RawBuilder, sql } from 'kysely'
import { inTenant } from '../adapters/tenant-transaction.ts'
import { consistent } from '../http/consistent-after.ts'
import type { AppDeps } from '../http/context.ts'
import type { Principal } from '../http/principal.ts'
import { principalOf } from '../http/principal.ts'
import { notFound } from '../http/problem.ts'
import { router } from '../http/router.ts'
import { consistentAfterQuery, json, Uuid } from '../http/schemas.ts'
import { bearerSecurity } from '../http/tenant-route.ts'

/**
 * Whether the principal may read the task `alias` names (domain/tasks.ts canReadTask, as read-api/tasks.ts reads
 * it): whoever may read its room, and its reporter, assignee, assistants and watchers. `alias` is a constant of
 * this layer, never client input.
 */
export const taskReadableBy = (me: Principal, alias: string): RawBuilder<boolean> => {
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

const Schedule = z
  .object({
    taskId: Uuid,
    every: z.object({ minutes: z.number().int() }).nullable(),
    dailyAtUtc: z.string().nullable(),
    perRunUsdLimit: z.number().nullable(),
    instructions: z.string(),
    status: z.enum(['paused', 'active']),
    nextRunAt: z.string().nullable().openapi({ description: 'when the pending timer is due; null while paused' }),
    runs: z.number().int(),
    lastRunAt: z.string().nullable(),
    lastRunTaskId: Uuid.nullable(),
    createdAt: z.string(),
    updatedAt: z.string(),
  })
  .openapi('TaskSchedule')

const get = createRoute({
  method: 'get',
  path: '/api/tasks/{id}/schedule',
  tags: ['tasks'],
  summary: 'A recurring task’s schedule (whoever may read the task)',
  security: bearerSecurity,
  request: { params: z.object({ id: Uuid }), query: z.object({ ...consistentAfterQuery }) },
  responses: { 200: json('the schedule', Schedule) },
})

type ScheduleRow = {
  task_id: string
  cadence_kind: string
  every_minutes: number | null
  daily_at_utc: string | null
  per_run_usd_limit: number | null
  instructions: string
  status: 'paused' | 'active'
  next_run_at: Date | null
  runs: number
  last_run_at: Date | null
  last_run_task_id: string | null
  created_at: Date
  updated_at: Date
}

const iso = (d: Date | string | null) => (d === null ? null : new Date(d).toISOString())

export function taskSchedulesQueries(deps: AppDeps) {
  const app = router()
  app.openapi(get, async (c) => {
    const me = principalOf(c)
    const { id } = c.req.valid('param')
    await consistent(c, deps, ['task-schedules', 'tasks', 'rooms'])
    const row = await inTenant(deps.db, me, async (trx) => {
      const { rows } = await sql<ScheduleRow>`
        select s.* from tenant.task_schedules s
          join tenant.tasks t on t.tenant_id = s.tenant_id and t.id = s.task_id
         where s.tenant_id = ${me.tenantId} and s.task_id = ${id} and ${taskReadableBy(me, 't')}`.execute(trx)
      return rows[0]
    })
    if (!row) throw notFound('no such task or schedule')
    return c.json(
      {
        taskId: row.task_id,
        every: row.every_minutes === null ? null : { minutes: row.every_minutes },
        dailyAtUtc: row.daily_at_utc,
        perRunUsdLimit: row.per_run_usd_limit,
        instructions: row.instructions,
        status: row.status,
        nextRunAt: iso(row.next_run_at),
        runs: row.runs,
        lastRunAt: iso(row.last_run_at),
        lastRunTaskId: row.last_run_task_id,
        createdAt: iso(row.created_at)!,
        updatedAt: iso(row.updated_at)!,
      },
      200,
    )
  })
  return app
}
