import { v7 as uuid } from 'uuid'
import type { Logger } from '../adapters/logger.ts'
import { type CommandContext, handleCommand, type PipelineDeps } from '../commands/pipeline.ts'
import { runTaskIdOf, scheduleStream, scheduleTimerId, startInstance, TASK_SCHEDULE_FIRE } from '../commands/task-schedules.ts'
import { taskStream } from '../commands/tasks.ts'
import { cancelTimer, scheduleTimer } from '../commands/timers.ts'
import { DomainError } from '../domain/decider.ts'
import type { TaskScheduleEvent } from '../domain/task-schedules.ts'
import { taskSchedule } from '../domain/task-schedules.ts'
import { task } from '../domain/tasks.ts'
import type { Processor, RecordedOf, TimerCommand } from './processor.ts'
import type { TimerHandler } from './timers.ts'

/*
 * Recurring tasks, the processors' side:
 * - the `task-schedules` processor keeps the durable timers in step with the schedules: the timer a
 *   task_schedule.run_scheduled names is scheduled (and the one it replaces cancelled), a paused schedule's timer is
 *   cancelled. The schedule's stream says which timer it waits for; this makes it so, at least once.
 * - the handler of TASK_SCHEDULE_FIRE: when a schedule's timer fires (exactly once, by the timer runner), the run
 *   is recorded on the schedule (which also schedules the next period), then its instance task is created under the
 *   id of (schedule, period). A repeat of the handler records nothing new and creates nothing new.
 */

type Handled = Extract<TaskScheduleEvent, { type: 'task_schedule.run_scheduled' | 'task_schedule.paused' }>

const ACTOR: CommandContext['actor'] = { type: 'system', id: 'task-schedules' }

export type TaskSchedulesDeps = PipelineDeps & { readonly now?: () => Date }

const isFire = (data: Readonly<Record<string, unknown>>): data is { tenantId: string; taskId: string } =>
  typeof data.tenantId === 'string' && typeof data.taskId === 'string'

/*
 * Event ids are fresh: what makes a repeat harmless is the decisions (a fired timer the schedule no longer waits for
 * starts nothing; a listed subtask is not listed again; an instance already created answers as created), and the
 * instance's id, derived from (schedule, period). Ids counted from the handled event would not do: a repeat whose
 * first decision is a no-op would hand the next one an id the first attempt had already used.
 */

export function taskSchedules(deps: TaskSchedulesDeps): { processor: Processor<Handled>; fire: TimerHandler } {
  const now = deps.now ?? (() => new Date())

  const processor: Processor<Handled> = {
    name: 'task-schedules',
    version: 1,
    eventTypes: ['task_schedule.run_scheduled', 'task_schedule.paused'],
    partitionBy: 'tenant',
    async handle(event: RecordedOf<Handled>) {
      const tenantId = event.metadata.tenantId
      const cctx: CommandContext = {
        tenantId,
        actor: ACTOR,
        correlationId: event.metadata.correlationId,
        causationId: event.id,
        now,
        newId: uuid,
      }
      if (event.type === 'task_schedule.paused') {
        if (event.data.cancelledTimerId) await cancelTimer(deps, cctx, event.data.cancelledTimerId)
        return
      }
      const { taskId, timerId, dueAt, replacesTimerId } = event.data
      if (replacesTimerId) await cancelTimer(deps, cctx, replacesTimerId)
      const command: TimerCommand = { type: TASK_SCHEDULE_FIRE, data: { tenantId, taskId } }
      await scheduleTimer(deps, cctx, { timerId, dueAt: new Date(dueAt), command })
    },
  }

  const fire: TimerHandler = async (command, ctx) => {
    if (!isFire(command.data)) throw new Error(`${TASK_SCHEDULE_FIRE}: malformed command`)
    const { tenantId, taskId } = command.data
    const log: Logger = ctx.logger.child({ processor: 'task-schedules', tenantId, taskId, timerId: ctx.timerId })
    const cctx: CommandContext = {
      tenantId,
      actor: ACTOR,
      correlationId: ctx.timerId,
      causationId: null,
      now,
      newId: uuid,
    }
    const recorded = await handleCommand(
      deps,
      taskSchedule,
      scheduleStream(taskId),
      async (_, read) => {
        const t = await read(task, taskStream(taskId))
        return {
          type: 'fire' as const,
          taskId,
          timerId: ctx.timerId,
          holderLive: t.exists && !t.deleted,
          runTaskIdFor: (period: string) => runTaskIdOf(taskId, period),
          timerIdFor: (n: number, dueAt: string) => scheduleTimerId(taskId, n, dueAt),
          at: now().toISOString(),
        }
      },
      cctx,
    )
    const s = recorded.state
    // Nothing was started for this timer (the schedule stopped waiting for it): nothing to create.
    if (!s.exists || s.lastScheduledRun?.timerId !== ctx.timerId || s.activatedBy === null) return
    const run = s.lastScheduledRun
    try {
      await startInstance(deps, cctx, {
        taskId,
        runTaskId: run.runTaskId,
        at: run.period,
        by: s.activatedBy,
        instructions: s.settings.instructions,
        perRunUsdLimit: s.settings.perRunUsdLimit,
      })
      log.info({ runTaskId: run.runTaskId, period: run.period }, 'recurring task: instance created')
    } catch (err) {
      // A refusal (the task closed or full of subtasks, its runner gone) will not change by retrying: the run
      // is recorded without an instance, and the next period tries again.
      if (!(err instanceof DomainError)) throw err
      log.warn({ err, runTaskId: run.runTaskId, period: run.period }, 'recurring task: no instance for this run')
    }
  }

  return { processor, fire }
}
