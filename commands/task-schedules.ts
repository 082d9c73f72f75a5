import { createRoute, z } from '@hono/zod-openapi'
import { v5 as uuidv5 } from 'uuid'
import { comparePositions, streamName } from '../adapters/event-store.ts'
import { orgStream } from '../adapters/streams.ts'
import { DomainError } from '../domain/decider.ts'
import { org } from '../domain/orgs.ts'
import { room } from '../domain/rooms.ts'
import {
  cadenceOf,
  runTitle,
  SCHEDULE_INSTRUCTIONS_MAX,
  SCHEDULE_USD_MAX,
  type ScheduleHolder,
  type ScheduleSettings,
  taskSchedule,
} from '../domain/task-schedules.ts'
import { canEditTask, canReadTask, type LiveTask, TASK_TITLE_MAX, type TaskActor, task } from '../domain/tasks.ts'
import type { AppDeps } from '../http/context.ts'
import { actorOf, principalOf } from '../http/principal.ts'
import { router } from '../http/router.ts'
import { json, jsonBody, Position, problemResponse, Uuid } from '../http/schemas.ts'
import { bearerSecurity, positionOf } from '../http/tenant-route.ts'
import { commandContext, pipelineDeps } from './command-context.ts'
import { type CommandContext, type DecisionReader, handleCommand, loadState, type PipelineDeps } from './pipeline.ts'
import { roomStream } from './rooms.ts'
import { type CreateTaskInput, createTask, loadTask, taskActor, taskStream } from './tasks.ts'
import { changeCap } from './usage.ts'

/*
 * Recurring tasks: the schedule a top-level task holds (domain/task-schedules.ts), its routes, and the start of a
 * run (the instance task, a child of the schedule's task). The timers themselves are scheduled and cancelled by
 * the task-schedules processor (processors/task-schedules.ts) from the schedule's events, and fire into it.
 */

export const scheduleStream = (taskId: string) => streamName('task_schedule', taskId)

/** The command type of a schedule's timers: the processor's handler runs it. */
export const TASK_SCHEDULE_FIRE = 'task-schedule.fire'

/** The namespace of the ids a schedule derives (uuid v5): fixed, so a repeat derives the same ids in any release. */
const SCHEDULE_IDS = '3b8f9a52-6c1d-5e7f-8a90-1b2c3d4e5f60'

/** The timer a schedule's nth scheduling, due at `dueAt`, takes: never the same twice (n grows). */
export const scheduleTimerId = (taskId: string, n: number, dueAt: string): string =>
  uuidv5(`timer\n${taskId}\n${n}\n${dueAt}`, SCHEDULE_IDS)

/** The instance task of a schedule's period: one per (schedule, period), whoever fires it and however often. */
export const runTaskIdOf = (taskId: string, period: string): string => uuidv5(`run\n${taskId}\n${period}`, SCHEDULE_IDS)

/** The task holding a schedule, as `actor` may act on it (read, and conditioned on, by the decision). */
async function holderOf(read: DecisionReader, taskId: string, actor: TaskActor): Promise<ScheduleHolder> {
  const t = await read(task, taskStream(taskId))
  const actorIsGuest = actor.role === 'guest'
  if (!t.exists) return { visible: false, editable: false, parentId: null, actorIsGuest }
  const roomState = await read(room, roomStream(t.roomId))
  const visible = canReadTask(t, roomState, actor.userId, actor.role)
  return { visible, editable: visible && canEditTask(t, roomState, actor), parentId: t.parentId, actorIsGuest }
}

type Run = {
  readonly taskId: string
  readonly runTaskId: string
  readonly at: string
  readonly instructions: string
  readonly perRunUsdLimit: number | null
}

/**
 * A run's instance: a child of the schedule's task with its title (and the run's time), the standing instructions as
 * description, its assignee, reported by `actor`. The id is the run's, so a repeat answers as the first time.
 */
const instanceOf = (parent: LiveTask, run: Run, actor: TaskActor): CreateTaskInput => ({
  taskId: run.runTaskId,
  title: runTitle(parent.title, run.at, TASK_TITLE_MAX),
  description: run.instructions,
  parentId: run.taskId,
  assignee: parent.assignee
    ? parent.assignee.type === 'agent'
      ? { agentId: parent.assignee.id }
      : { userId: parent.assignee.id }
    : null,
  actor,
})

const liveParent = async (deps: PipelineDeps, taskId: string, tenantId: string): Promise<LiveTask> => {
  const parent = await loadTask(deps.store, taskId, tenantId)
  if (!parent.exists || parent.deleted) throw new DomainError('TASK_NOT_FOUND', 'no such task', 'not_found')
  return parent
}

/**
 * Creates a run's instance and holds what it may spend to the per-run limit: a cap on the instance task (usage's
 * task scope), which every reservation for work on it is checked against. A limit above the org's ceiling is not set
 * (the caps refuse it): the ceiling, lower, binds the run anyway. A repeat sets the same cap again, a no-op.
 */
async function createInstance(deps: PipelineDeps, ctx: CommandContext, parent: LiveTask, run: Run, actor: TaskActor) {
  const created = await createTask(deps, ctx, instanceOf(parent, run, actor))
  if (run.perRunUsdLimit === null) return created
  try {
    const capped = await changeCap(deps, ctx, {
      type: 'set',
      orgId: ctx.tenantId!,
      scope: 'task',
      scopeId: run.runTaskId,
      limitMicroUsd: Math.round(run.perRunUsdLimit * 1_000_000),
      byOperator: false,
    })
    const later =
      capped.position && created.position && comparePositions(capped.position, created.position) > 0 ? capped.position : null
    return { taskId: created.taskId, position: later ?? created.position }
  } catch (e) {
    if (e instanceof DomainError && e.kind === 'rule') return created
    throw e
  }
}

/** Creates a scheduled run's instance, as the person who resumed the schedule (`by`) if they are still active. */
export async function startInstance(deps: PipelineDeps, ctx: CommandContext, run: Run & { readonly by: string }) {
  const tenantId = ctx.tenantId!
  const parent = await liveParent(deps, run.taskId, tenantId)
  const o = await loadState(deps.store, org, orgStream(tenantId), tenantId)
  const member = o.status === 'none' ? undefined : o.members.get(run.by)
  if (!member?.active) {
    throw new DomainError('SCHEDULE_OWNER_INACTIVE', 'who resumed this schedule is no longer active: resume it as someone who is')
  }
  return createInstance(deps, ctx, parent, run, {
    userId: run.by,
    role: member.role,
    type: member.type === 'agent' ? 'agent' : 'user',
  })
}

const HHMM = /^([01]\d|2[0-3]):([0-5]\d)$/

const ScheduleBody = z
  .object({
    every: z
      .object({ minutes: z.number().int().min(1).optional(), hours: z.number().int().min(1).optional() })
      .optional()
      .openapi({ description: 'every N minutes or N hours (exactly one); or give dailyAtUtc' }),
    dailyAtUtc: z.string().regex(HHMM, 'HH:MM, in UTC').optional().openapi({ description: 'every day at this UTC time' }),
    perRunUsdLimit: z.number().positive().max(SCHEDULE_USD_MAX).nullable().default(null),
    instructions: z.string().max(SCHEDULE_INSTRUCTIONS_MAX).default(''),
  })
  .superRefine((b, ctx) => {
    if ((b.every === undefined) === (b.dailyAtUtc === undefined))
      ctx.addIssue({ code: 'custom', path: ['every'], message: 'give either every or dailyAtUtc' })
    else if (b.every && (b.every.minutes === undefined) === (b.every.hours === undefined))
      ctx.addIssue({ code: 'custom', path: ['every'], message: 'give either minutes or hours' })
  })

const params = z.object({ id: Uuid })
const Answer = z.object({ taskId: Uuid, position: Position })

const routes = {
  set: createRoute({
    method: 'put',
    path: '/api/tasks/{id}/schedule',
    tags: ['tasks'],
    summary: 'Make a top-level task recurring, or change its schedule (created paused)',
    description:
      'Each period a durable timer starts a run: a child instance task titled after the task and the period, its ' +
      'description the standing instructions, assigned like the task. `every` counts from when the schedule was ' +
      'resumed; `dailyAtUtc` runs at that UTC time. Periods missed while nothing could fire are skipped, not caught ' +
      'up. A new cadence on a running schedule replaces its pending timer.',
    security: bearerSecurity,
    request: { params, ...jsonBody(ScheduleBody) },
    responses: {
      200: json('set', Answer),
      403: problemResponse('may not change the task'),
      404: problemResponse('no such task'),
      422: problemResponse('a subtask, or an invalid cadence or limit'),
    },
  }),
  action: (action: 'pause' | 'resume') =>
    createRoute({
      method: 'post',
      path: `/api/tasks/{id}/schedule/${action}`,
      tags: ['tasks'],
      summary:
        action === 'pause'
          ? 'Pause a schedule: its pending timer is cancelled'
          : 'Resume a schedule: the next period is scheduled from now; its runs are started as the caller',
      security: bearerSecurity,
      request: { params },
      responses: {
        200: json('done', Answer),
        403: problemResponse('may not change the task'),
        404: problemResponse('no such task or schedule'),
      },
    }),
  runNow: createRoute({
    method: 'post',
    path: '/api/tasks/{id}/schedule/run-now',
    tags: ['tasks'],
    summary: 'Start a run at once (paused or not): its instance task is created now, reported by the caller',
    security: bearerSecurity,
    request: { params },
    responses: {
      201: json('started', z.object({ taskId: Uuid, runTaskId: Uuid, position: Position })),
      403: problemResponse('may not change the task'),
      404: problemResponse('no such task or schedule'),
      422: problemResponse('the task is closed, or has as many subtasks as it may'),
    },
  }),
}

export function taskSchedulesCommands(deps: AppDeps) {
  const app = router()
  const pd = pipelineDeps(deps)
  const timerIdFor = (taskId: string) => (n: number, dueAt: string) => scheduleTimerId(taskId, n, dueAt)

  app.openapi(routes.set, async (c) => {
    const me = principalOf(c)
    const { id } = c.req.valid('param')
    const body = c.req.valid('json')
    const ctx = commandContext(c, actorOf(me), me.tenantId)
    const settings: ScheduleSettings = {
      cadence: cadenceOf({ every: body.every, dailyAtUtc: body.dailyAtUtc }),
      perRunUsdLimit: body.perRunUsdLimit,
      instructions: body.instructions,
    }
    const r = await handleCommand(
      pd,
      taskSchedule,
      scheduleStream(id),
      async (_, read) => ({
        type: 'set' as const,
        taskId: id,
        settings,
        holder: await holderOf(read, id, taskActor(me)),
        timerIdFor: timerIdFor(id),
        by: me.userId,
        at: ctx.now().toISOString(),
      }),
      ctx,
    )
    return c.json({ taskId: id, position: positionOf(r.position) }, 200)
  })

  for (const action of ['pause', 'resume'] as const) {
    app.openapi(routes.action(action), async (c) => {
      const me = principalOf(c)
      const { id } = c.req.valid('param')
      const ctx = commandContext(c, actorOf(me), me.tenantId)
      const r = await handleCommand(
        pd,
        taskSchedule,
        scheduleStream(id),
        async (_, read) => {
          const holder = await holderOf(read, id, taskActor(me))
          const at = ctx.now().toISOString()
          return action === 'pause'
            ? { type: 'pause' as const, taskId: id, holder, by: me.userId, at }
            : { type: 'resume' as const, taskId: id, holder, timerIdFor: timerIdFor(id), by: me.userId, at }
        },
        ctx,
      )
      return c.json({ taskId: id, position: positionOf(r.position) }, 200)
    })
  }

  app.openapi(routes.runNow, async (c) => {
    const me = principalOf(c)
    const { id } = c.req.valid('param')
    const ctx = commandContext(c, actorOf(me), me.tenantId)
    // Seeded by an Idempotency-Key, a retry takes the same run id: the schedule records it once, the task is made once.
    const runTaskId = ctx.newId()
    const at = ctx.now().toISOString()
    const recorded = await handleCommand(
      pd,
      taskSchedule,
      scheduleStream(id),
      async (_, read) => ({
        type: 'run_now' as const,
        taskId: id,
        runTaskId,
        holder: await holderOf(read, id, taskActor(me)),
        by: me.userId,
        at,
      }),
      ctx,
    )
    const s = recorded.state
    if (!s.exists) throw new DomainError('SCHEDULE_NOT_FOUND', 'this task has no schedule', 'not_found')
    const parent = await liveParent(pd, id, me.tenantId)
    const created = await createInstance(
      pd,
      ctx,
      parent,
      { taskId: id, runTaskId, at, instructions: s.settings.instructions, perRunUsdLimit: s.settings.perRunUsdLimit },
      taskActor(me),
    )
    return c.json({ taskId: id, runTaskId, position: positionOf(created.position) }, 201)
  })

  return app
}
