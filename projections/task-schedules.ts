import type { TaskScheduleEvent } from '../domain/task-schedules.ts'
import type { TaskEvent } from '../domain/tasks.ts'
import { type RowModel, rowProjector } from './rows.ts'

type Followed = TaskScheduleEvent | Extract<TaskEvent, { type: 'task.deleted' }>

/** A row of tenant.task_schedules (its tenant_id is the batch's). */
export type TaskScheduleRow = {
  readonly task_id: string
  readonly cadence_kind: 'every' | 'daily'
  readonly every_minutes: number | null
  readonly daily_at_utc: string | null
  readonly per_run_usd_limit: number | null
  readonly instructions: string
  readonly status: 'paused' | 'active'
  /** When the pending timer is due; null while paused. */
  readonly next_run_at: string | null
  readonly runs: number
  readonly last_run_at: string | null
  readonly last_run_task_id: string | null
  readonly created_at: string
  readonly updated_at: string
}

/** A schedule's row: made by its first setting (paused), following its runs and pauses; gone with its task. */
export const taskScheduleRows: RowModel<Followed, TaskScheduleRow> = {
  table: 'task_schedules',
  columns: [
    'task_id',
    'cadence_kind',
    'every_minutes',
    'daily_at_utc',
    'per_run_usd_limit',
    'instructions',
    'status',
    'next_run_at',
    'runs',
    'last_run_at',
    'last_run_task_id',
    'created_at',
    'updated_at',
  ],
  key: 'task_id',
  keyOf: (e) => e.data.taskId,
  evolve(row, e) {
    switch (e.type) {
      case 'task_schedule.set': {
        const c = e.data.cadence
        const settings = {
          cadence_kind: c.kind,
          every_minutes: c.kind === 'every' ? c.minutes : null,
          daily_at_utc: c.kind === 'daily' ? c.atUtc : null,
          per_run_usd_limit: e.data.perRunUsdLimit,
          instructions: e.data.instructions,
          updated_at: e.data.at,
        }
        return row
          ? { ...row, ...settings }
          : {
              task_id: e.data.taskId,
              ...settings,
              status: 'paused',
              next_run_at: null,
              runs: 0,
              last_run_at: null,
              last_run_task_id: null,
              created_at: e.data.at,
            }
      }
      case 'task_schedule.resumed':
        return row && { ...row, status: 'active', updated_at: e.data.at }
      case 'task_schedule.paused':
        return row && { ...row, status: 'paused', next_run_at: null, updated_at: e.data.at }
      case 'task_schedule.run_scheduled':
        return row && { ...row, next_run_at: e.data.dueAt, updated_at: e.data.at }
      case 'task_schedule.run_started':
        // A scheduled run ends the wait for its timer (the next one is scheduled in the same decision).
        return (
          row && {
            ...row,
            runs: row.runs + 1,
            last_run_at: e.data.at,
            last_run_task_id: e.data.runTaskId,
            next_run_at: e.data.trigger === 'schedule' ? null : row.next_run_at,
            updated_at: e.data.at,
          }
        )
      case 'task.deleted':
        return null
    }
  },
}

export const TASK_SCHEDULE_EVENT_TYPES: readonly Followed['type'][] = [
  'task_schedule.set',
  'task_schedule.resumed',
  'task_schedule.paused',
  'task_schedule.run_scheduled',
  'task_schedule.run_started',
  'task.deleted',
]

/** tenant.task_schedules. */
export const taskSchedulesProjector = rowProjector({
  name: 'task-schedules',
  version: 1,
  schema: 'tenant',
  eventTypes: TASK_SCHEDULE_EVENT_TYPES,
  model: taskScheduleRows,
})
