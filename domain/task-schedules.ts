import { isDeepStrictEqual } from 'node:util'
import { type Decider, DomainError, type DomainEvent } from './decider.ts'

/*
 * A recurring task (`task_schedule-<taskId>`): the schedule a top-level task holds. Each period a durable timer
 * fires; its handler records the run here and creates the child instance task, whose id follows from (schedule,
 * period) so that a repeat creates nothing new. The schedule names the timer it waits for (`pending`): a timer it no
 * longer waits for (paused, rescheduled, already handled) fires into nothing, so each period runs once however many
 * runners race or restart.
 *
 * Created paused. Resuming schedules the next period from then; pausing cancels the pending timer. Periods missed
 * while nothing ran (every runner down longer than a period) are skipped, not caught up in a burst: the next run is
 * the first period after the fire.
 */

export const SCHEDULE_INSTRUCTIONS_MAX = 20_000
/** The shortest interval: a minute (a timer fires within a poll of its due time, about a second). */
export const SCHEDULE_MINUTES_MAX = 60 * 24 * 366
export const SCHEDULE_HOURS_MAX = 24 * 366
export const SCHEDULE_USD_MAX = 1_000_000

/** Every N minutes (hours are stored as minutes), or every day at a UTC time of day. */
export type Cadence = { readonly kind: 'every'; readonly minutes: number } | { readonly kind: 'daily'; readonly atUtc: string }

export type ScheduleSettings = {
  readonly cadence: Cadence
  /** The most one run may spend, in USD; null: no limit of its own (the task's and the org's still hold). */
  readonly perRunUsdLimit: number | null
  /** Standing instructions, given to every instance. */
  readonly instructions: string
}

export type RunTrigger = 'schedule' | 'manual'

export type TaskScheduleEvent =
  | DomainEvent<'task_schedule.set', { taskId: string } & ScheduleSettings & { by: string; at: string }>
  /** `by` is who the scheduled runs are started for: their instances are created as this person's. */
  | DomainEvent<'task_schedule.resumed', { taskId: string; by: string; at: string }>
  | DomainEvent<'task_schedule.paused', { taskId: string; cancelledTimerId: string | null; by: string; at: string }>
  /** The timer the schedule now waits for, due at `dueAt` (the period it fires for); it replaces any it waited for. */
  | DomainEvent<
      'task_schedule.run_scheduled',
      { taskId: string; timerId: string; dueAt: string; replacesTimerId: string | null; at: string }
    >
  /**
   * A run began: its instance task is `runTaskId`, started for `by`; `period` is the due time it ran for, null when
   * run by hand; `perRunUsdLimit` what the run may spend (the schedule's, as it was then).
   */
  | DomainEvent<
      'task_schedule.run_started',
      {
        taskId: string
        runTaskId: string
        trigger: RunTrigger
        period: string | null
        by: string
        perRunUsdLimit: number | null
        at: string
      }
    >

export type ScheduleState =
  | { readonly exists: false }
  | {
      readonly exists: true
      readonly settings: ScheduleSettings
      readonly status: 'paused' | 'active'
      /** Who last resumed it: its scheduled runs are started for them. */
      readonly activatedBy: string | null
      /** The timer the schedule waits for, and the period it fires for. */
      readonly pending: { readonly timerId: string; readonly dueAt: string } | null
      /** How many timers it has scheduled: a seed for the next one's id, so no two are the same. */
      readonly scheduled: number
      readonly runs: number
      /** The last run the timer started: a repeat of its fire finds it here (and creates its instance again, a no-op). */
      readonly lastScheduledRun: { readonly timerId: string; readonly period: string; readonly runTaskId: string } | null
      /** The last run started by hand: a retried "run now" (same run id) is not a second run. */
      readonly lastManualRunTaskId: string | null
    }

/** The task a schedule is held by, as the command layer read it from the task's stream. */
export type ScheduleHolder = {
  /** Exists for this tenant, is not deleted, and the actor may change it. */
  readonly editable: boolean
  /** Readable by the actor: a task they cannot read does not exist for them. */
  readonly visible: boolean
  readonly parentId: string | null
  /** The actor is a guest of the org. */
  readonly actorIsGuest: boolean
}

type Holder = { readonly holder: ScheduleHolder }

/** The timer id a schedule's nth timer due at `dueAt` takes: derived by the command layer (ids are passed in). */
export type TimerIdFor = (n: number, dueAt: string) => string

export type ScheduleCommand =
  | (Holder & { type: 'set'; taskId: string; settings: ScheduleSettings; timerIdFor: TimerIdFor; by: string; at: string })
  | (Holder & { type: 'resume'; taskId: string; timerIdFor: TimerIdFor; by: string; at: string })
  | (Holder & { type: 'pause'; taskId: string; by: string; at: string })
  | (Holder & { type: 'run_now'; taskId: string; runTaskId: string; by: string; at: string })
  /** A timer fired: `runTaskIdFor(period)` names the period's instance. */
  | {
      type: 'fire'
      taskId: string
      timerId: string
      /** Whether the task still exists (not deleted): a deleted task's schedule runs no more. */
      holderLive: boolean
      runTaskIdFor: (period: string) => string
      timerIdFor: TimerIdFor
      at: string
    }

const MINUTE = 60_000
const DAY = 24 * 60 * MINUTE
const HHMM = /^([01]\d|2[0-3]):([0-5]\d)$/

/** A cadence as asked: `{ minutes }`, `{ hours }` or a daily UTC time `HH:MM`. */
export function cadenceOf(input: { every?: { minutes?: number; hours?: number }; dailyAtUtc?: string }): Cadence {
  if ((input.every === undefined) === (input.dailyAtUtc === undefined)) {
    throw new DomainError('SCHEDULE_CADENCE_INVALID', 'a schedule runs either every N minutes or hours, or daily at a UTC time')
  }
  if (input.dailyAtUtc !== undefined) {
    if (!HHMM.test(input.dailyAtUtc)) throw new DomainError('SCHEDULE_CADENCE_INVALID', 'a daily time is HH:MM, in UTC')
    return { kind: 'daily', atUtc: input.dailyAtUtc }
  }
  const { minutes, hours } = input.every!
  if ((minutes === undefined) === (hours === undefined)) {
    throw new DomainError('SCHEDULE_CADENCE_INVALID', 'an interval is given in minutes or in hours')
  }
  const n = minutes ?? hours! * 60
  const max = SCHEDULE_MINUTES_MAX
  if (!Number.isInteger(n) || n < 1 || n > max) {
    throw new DomainError('SCHEDULE_CADENCE_INVALID', `an interval is a whole number of minutes, 1 to ${max}`)
  }
  return { kind: 'every', minutes: n }
}

/**
 * The first due time of a cadence strictly after `after` (ISO), counted from `from` (the period the schedule is at:
 * the fired period, or the moment it resumed). Every N minutes: `from` + k·N for the least k ≥ 1 past `after`.
 * Daily: the next HH:MM UTC past `after`.
 */
export function nextDueAt(cadence: Cadence, from: string, after: string): string {
  const f = Date.parse(from)
  const a = Math.max(Date.parse(after), f)
  if (cadence.kind === 'every') {
    const step = cadence.minutes * MINUTE
    const k = Math.max(1, Math.floor((a - f) / step) + 1)
    return new Date(f + k * step).toISOString()
  }
  const [h, m] = cadence.atUtc.split(':').map(Number) as [number, number]
  const day = new Date(a)
  let t = Date.UTC(day.getUTCFullYear(), day.getUTCMonth(), day.getUTCDate(), h, m)
  if (t <= a) t += DAY
  return new Date(t).toISOString()
}

const validSettings = (s: ScheduleSettings): ScheduleSettings => {
  if (s.instructions.length > SCHEDULE_INSTRUCTIONS_MAX) {
    throw new DomainError('SCHEDULE_INSTRUCTIONS_INVALID', `instructions have at most ${SCHEDULE_INSTRUCTIONS_MAX} characters`)
  }
  const usd = s.perRunUsdLimit
  if (usd !== null && (!Number.isFinite(usd) || usd <= 0 || usd > SCHEDULE_USD_MAX)) {
    throw new DomainError('SCHEDULE_LIMIT_INVALID', `a per-run limit is more than 0 and at most ${SCHEDULE_USD_MAX} USD`)
  }
  return { cadence: s.cadence, perRunUsdLimit: usd, instructions: s.instructions.trim() }
}

const notFound = () => new DomainError('TASK_NOT_FOUND', 'no such task', 'not_found')

/** The holder as the actor may act on it: visible, editable, top-level. */
function holding(h: ScheduleHolder): void {
  if (!h.visible) throw notFound()
  if (!h.editable) throw new DomainError('FORBIDDEN', 'only who may change the task changes its schedule', 'forbidden')
  // A schedule spends the org's money every period, as who resumed it: an outsider does not set one going or stop it.
  if (h.actorIsGuest) throw new DomainError('FORBIDDEN', 'guests do not run recurring tasks', 'forbidden')
}

function existing(s: ScheduleState) {
  if (!s.exists) throw new DomainError('SCHEDULE_NOT_FOUND', 'this task has no schedule', 'not_found')
  return s
}

/** The timer that replaces whatever the schedule waited for, due at the cadence's next period after `at`. */
const scheduleNext = (
  taskId: string,
  n: number,
  dueAt: string,
  replaces: string | null,
  timerIdFor: TimerIdFor,
  at: string,
): TaskScheduleEvent => ({
  type: 'task_schedule.run_scheduled',
  data: { taskId, timerId: timerIdFor(n, dueAt), dueAt, replacesTimerId: replaces, at },
})

export const taskSchedule: Decider<ScheduleCommand, TaskScheduleEvent, ScheduleState> = {
  initialState: { exists: false },
  decide(c, s) {
    switch (c.type) {
      case 'set': {
        holding(c.holder)
        if (c.holder.parentId !== null) {
          throw new DomainError('SCHEDULE_NOT_TOP_LEVEL', 'only a top-level task holds a schedule (its runs are its children)')
        }
        const settings = validSettings(c.settings)
        if (s.exists && isDeepStrictEqual(s.settings, settings)) return []
        const set: TaskScheduleEvent = { type: 'task_schedule.set', data: { taskId: c.taskId, ...settings, by: c.by, at: c.at } }
        // A running schedule whose cadence changed waits for the new cadence's next period instead.
        if (s.exists && s.status === 'active' && !isDeepStrictEqual(s.settings.cadence, settings.cadence)) {
          const due = nextDueAt(settings.cadence, c.at, c.at)
          return [set, scheduleNext(c.taskId, s.scheduled, due, s.pending?.timerId ?? null, c.timerIdFor, c.at)]
        }
        return [set]
      }
      case 'resume': {
        holding(c.holder)
        const e = existing(s)
        if (e.status === 'active') return []
        const due = nextDueAt(e.settings.cadence, c.at, c.at)
        return [
          { type: 'task_schedule.resumed', data: { taskId: c.taskId, by: c.by, at: c.at } },
          scheduleNext(c.taskId, e.scheduled, due, null, c.timerIdFor, c.at),
        ]
      }
      case 'pause': {
        holding(c.holder)
        const e = existing(s)
        if (e.status === 'paused') return []
        return [
          {
            type: 'task_schedule.paused',
            data: { taskId: c.taskId, cancelledTimerId: e.pending?.timerId ?? null, by: c.by, at: c.at },
          },
        ]
      }
      case 'run_now': {
        holding(c.holder)
        const e = existing(s)
        if (e.lastManualRunTaskId === c.runTaskId) return []
        return [
          {
            type: 'task_schedule.run_started',
            data: {
              taskId: c.taskId,
              runTaskId: c.runTaskId,
              trigger: 'manual',
              period: null,
              by: c.by,
              perRunUsdLimit: e.settings.perRunUsdLimit,
              at: c.at,
            },
          },
        ]
      }
      case 'fire': {
        // A timer the schedule no longer waits for (paused, rescheduled, deleted task, handled before) starts nothing.
        if (!s.exists || s.status !== 'active' || s.pending?.timerId !== c.timerId || !c.holderLive) return []
        if (s.activatedBy === null) return []
        const period = s.pending.dueAt
        const due = nextDueAt(s.settings.cadence, period, c.at)
        return [
          {
            type: 'task_schedule.run_started',
            data: {
              taskId: c.taskId,
              runTaskId: c.runTaskIdFor(period),
              trigger: 'schedule',
              period,
              by: s.activatedBy,
              perRunUsdLimit: s.settings.perRunUsdLimit,
              at: c.at,
            },
          },
          scheduleNext(c.taskId, s.scheduled, due, null, c.timerIdFor, c.at),
        ]
      }
    }
  },
  evolve(s, e) {
    switch (e.type) {
      case 'task_schedule.set': {
        const settings: ScheduleSettings = {
          cadence: e.data.cadence,
          perRunUsdLimit: e.data.perRunUsdLimit,
          instructions: e.data.instructions,
        }
        if (s.exists) return { ...s, settings }
        return {
          exists: true,
          settings,
          status: 'paused',
          activatedBy: null,
          pending: null,
          scheduled: 0,
          runs: 0,
          lastScheduledRun: null,
          lastManualRunTaskId: null,
        }
      }
      case 'task_schedule.resumed':
        return s.exists ? { ...s, status: 'active', activatedBy: e.data.by } : s
      case 'task_schedule.paused':
        return s.exists ? { ...s, status: 'paused', pending: null } : s
      case 'task_schedule.run_scheduled':
        return s.exists ? { ...s, pending: { timerId: e.data.timerId, dueAt: e.data.dueAt }, scheduled: s.scheduled + 1 } : s
      case 'task_schedule.run_started': {
        if (!s.exists) return s
        const runs = s.runs + 1
        if (e.data.trigger === 'manual') return { ...s, runs, lastManualRunTaskId: e.data.runTaskId }
        const timerId = s.pending?.timerId ?? ''
        return {
          ...s,
          runs,
          pending: null,
          lastScheduledRun: { timerId, period: e.data.period ?? '', runTaskId: e.data.runTaskId },
        }
      }
    }
  },
}

/** The title of a run's instance: the parent's, with the period it ran for (or when it was run by hand). */
export const runTitle = (parentTitle: string, at: string, max: number): string => {
  const when = `${at.slice(0, 10)} ${at.slice(11, 16)} UTC`
  const suffix = ` — ${when}`
  return parentTitle.length + suffix.length <= max
    ? `${parentTitle}${suffix}`
    : `${parentTitle.slice(0, max - suffix.length)}${suffix}`
}
