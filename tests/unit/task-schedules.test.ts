import { describe, expect, it } from 'vitest'
import { fold } from '../../domain/decider.ts'
import {
  cadenceOf,
  nextDueAt,
  runTitle,
  type ScheduleCommand,
  type ScheduleHolder,
  type ScheduleSettings,
  type TaskScheduleEvent,
  taskSchedule,
} from '../../domain/task-schedules.ts'
import { refusal, spec } from './spec.ts'

const taskId = 'task-1'
const at = '2026-12-02T10:00:00.000Z'
const holder: ScheduleHolder = { visible: true, editable: true, parentId: null, actorIsGuest: false }
const timerIdFor = (n: number, dueAt: string) => `timer-${n}-${dueAt}`
const runTaskIdFor = (period: string) => `run-${period}`
const hourly: ScheduleSettings = { cadence: { kind: 'every', minutes: 60 }, perRunUsdLimit: 5, instructions: 'Check the build' }

const set = (over: Partial<ScheduleSettings> = {}, h: ScheduleHolder = holder): ScheduleCommand => ({
  type: 'set',
  taskId,
  settings: { ...hourly, ...over },
  holder: h,
  timerIdFor,
  by: 'alice',
  at,
})
const resume = (when = at, h: ScheduleHolder = holder): ScheduleCommand => ({
  type: 'resume',
  taskId,
  holder: h,
  timerIdFor,
  by: 'alice',
  at: when,
})
const pause = (when = at): ScheduleCommand => ({ type: 'pause', taskId, holder, by: 'bob', at: when })
const fire = (timerId: string, when: string, holderLive = true): ScheduleCommand => ({
  type: 'fire',
  taskId,
  timerId,
  holderLive,
  runTaskIdFor,
  timerIdFor,
  at: when,
})

const wasSet: TaskScheduleEvent = { type: 'task_schedule.set', data: { taskId, ...hourly, by: 'alice', at } }
const resumed: TaskScheduleEvent = { type: 'task_schedule.resumed', data: { taskId, by: 'alice', at } }
const scheduled = (n: number, dueAt: string, when = at, replaces: string | null = null): TaskScheduleEvent => ({
  type: 'task_schedule.run_scheduled',
  data: { taskId, timerId: timerIdFor(n, dueAt), dueAt, replacesTimerId: replaces, at: when },
})
const started = (period: string, when: string): TaskScheduleEvent => ({
  type: 'task_schedule.run_started',
  data: {
    taskId,
    runTaskId: runTaskIdFor(period),
    trigger: 'schedule',
    period,
    by: 'alice',
    perRunUsdLimit: 5,
    at: when,
  },
})

const first = '2026-12-02T11:00:00.000Z'
const second = '2026-12-02T12:00:00.000Z'

describe('recurring tasks: the schedule', () => {
  const rules = spec(taskSchedule)

  it('is created paused: no timer until it is resumed', () => {
    rules.given([]).when(set()).then([wasSet])
    const s = fold(taskSchedule, [wasSet])
    expect(s).toMatchObject({ exists: true, status: 'paused', pending: null })
  })

  it('is held by a top-level task its setter may change', () => {
    rules
      .given([])
      .when(set({}, { ...holder, parentId: 'parent' }))
      .thenRefused('SCHEDULE_NOT_TOP_LEVEL')
    rules
      .given([])
      .when(set({}, { ...holder, editable: false }))
      .thenRefused('FORBIDDEN', 'forbidden')
    rules
      .given([])
      .when(set({}, { ...holder, visible: false, editable: false }))
      .thenRefused('TASK_NOT_FOUND', 'not_found')
  })

  it('guests neither set, resume, pause nor run a schedule', () => {
    const guest = { ...holder, actorIsGuest: true }
    rules.given([]).when(set({}, guest)).thenRefused('FORBIDDEN', 'forbidden')
    rules.given([wasSet]).when(resume(at, guest)).thenRefused('FORBIDDEN', 'forbidden')
    rules
      .given([wasSet, resumed, scheduled(0, first)])
      .when({ type: 'pause', taskId, holder: guest, by: 'gus', at })
      .thenRefused('FORBIDDEN', 'forbidden')
    rules
      .given([wasSet])
      .when({ type: 'run_now', taskId, runTaskId: 'r', holder: guest, by: 'gus', at })
      .thenRefused('FORBIDDEN', 'forbidden')
  })

  it('refuses a bad limit or instructions; the same settings again change nothing', () => {
    rules
      .given([])
      .when(set({ perRunUsdLimit: 0 }))
      .thenRefused('SCHEDULE_LIMIT_INVALID')
    rules
      .given([])
      .when(set({ perRunUsdLimit: -1 }))
      .thenRefused('SCHEDULE_LIMIT_INVALID')
    rules
      .given([])
      .when(set({ instructions: 'x'.repeat(20_001) }))
      .thenRefused('SCHEDULE_INSTRUCTIONS_INVALID')
    rules.given([wasSet]).when(set()).then([])
  })

  it('resuming schedules the next period from now; resuming again does nothing', () => {
    rules
      .given([wasSet])
      .when(resume())
      .then([resumed, scheduled(0, first)])
    rules
      .given([wasSet, resumed, scheduled(0, first)])
      .when(resume())
      .then([])
    rules.given([]).when(resume()).thenRefused('SCHEDULE_NOT_FOUND', 'not_found')
  })

  it('pausing cancels the pending timer', () =>
    rules
      .given([wasSet, resumed, scheduled(0, first)])
      .when(pause())
      .then([{ type: 'task_schedule.paused', data: { taskId, cancelledTimerId: timerIdFor(0, first), by: 'bob', at } }]))

  it('the pending timer starts its period’s run and schedules the next period', () =>
    rules
      .given([wasSet, resumed, scheduled(0, first)])
      .when(fire(timerIdFor(0, first), first))
      .then([started(first, first), scheduled(1, second, first)]))

  it('a timer fires its period once: a repeat, a stale timer, a paused schedule, a deleted task start nothing', () => {
    const afterFirst = [wasSet, resumed, scheduled(0, first), started(first, first), scheduled(1, second, first)]
    rules
      .given(afterFirst)
      .when(fire(timerIdFor(0, first), first))
      .then([])
    rules.given(afterFirst).when(fire('some-other-timer', second)).then([])
    const paused: TaskScheduleEvent = {
      type: 'task_schedule.paused',
      data: { taskId, cancelledTimerId: timerIdFor(1, second), by: 'bob', at: first },
    }
    rules
      .given([...afterFirst, paused])
      .when(fire(timerIdFor(1, second), second))
      .then([])
    rules
      .given(afterFirst)
      .when(fire(timerIdFor(1, second), second, false))
      .then([])
    // A repeat of the first fire finds its run as the last the timer started (its instance is created again: a no-op).
    expect(fold(taskSchedule, afterFirst)).toMatchObject({
      lastScheduledRun: { timerId: timerIdFor(0, first), period: first, runTaskId: runTaskIdFor(first) },
      pending: { timerId: timerIdFor(1, second), dueAt: second },
      runs: 1,
    })
  })

  it('periods missed while nothing fired are skipped, not caught up', () =>
    rules
      .given([wasSet, resumed, scheduled(0, first)])
      .when(fire(timerIdFor(0, first), '2026-12-02T14:30:00.000Z'))
      .then([
        { ...started(first, '2026-12-02T14:30:00.000Z') },
        scheduled(1, '2026-12-02T15:00:00.000Z', '2026-12-02T14:30:00.000Z'),
      ]))

  it('a new cadence on a running schedule replaces the pending timer', () =>
    rules
      .given([wasSet, resumed, scheduled(0, first)])
      .when(set({ cadence: { kind: 'daily', atUtc: '09:30' } }))
      .then([
        { type: 'task_schedule.set', data: { ...wasSet.data, cadence: { kind: 'daily', atUtc: '09:30' } } },
        scheduled(1, '2026-12-03T09:30:00.000Z', at, timerIdFor(0, first)),
      ]))

  it('run now starts a run at once, paused or not; the same run again is one run', () => {
    const runNow: ScheduleCommand = { type: 'run_now', taskId, runTaskId: 'manual-1', holder, by: 'carol', at }
    const ran: TaskScheduleEvent = {
      type: 'task_schedule.run_started',
      data: { taskId, runTaskId: 'manual-1', trigger: 'manual', period: null, by: 'carol', perRunUsdLimit: 5, at },
    }
    rules.given([wasSet]).when(runNow).then([ran])
    rules.given([wasSet, ran]).when(runNow).then([])
    rules.given([]).when(runNow).thenRefused('SCHEDULE_NOT_FOUND', 'not_found')
    // A manual run leaves the pending timer alone.
    expect(fold(taskSchedule, [wasSet, resumed, scheduled(0, first), ran])).toMatchObject({
      pending: { timerId: timerIdFor(0, first) },
      runs: 1,
    })
  })
})

describe('recurring tasks: cadences', () => {
  it('every N minutes or hours, or daily at HH:MM UTC; exactly one of them', () => {
    expect(cadenceOf({ every: { minutes: 15 } })).toEqual({ kind: 'every', minutes: 15 })
    expect(cadenceOf({ every: { hours: 2 } })).toEqual({ kind: 'every', minutes: 120 })
    expect(cadenceOf({ dailyAtUtc: '07:05' })).toEqual({ kind: 'daily', atUtc: '07:05' })
    for (const bad of [
      {},
      { every: { minutes: 5 }, dailyAtUtc: '07:00' },
      { every: {} },
      { every: { minutes: 5, hours: 1 } },
      { every: { minutes: 0 } },
      { every: { minutes: 1.5 } },
      { dailyAtUtc: '24:00' },
      { dailyAtUtc: '7:00' },
    ]) {
      expect(refusal(() => cadenceOf(bad)).code, JSON.stringify(bad)).toBe('SCHEDULE_CADENCE_INVALID')
    }
  })

  it('the next due time is the first period strictly after the moment', () => {
    const every = { kind: 'every', minutes: 30 } as const
    expect(nextDueAt(every, at, at)).toBe('2026-12-02T10:30:00.000Z')
    expect(nextDueAt(every, at, '2026-12-02T10:30:00.000Z')).toBe('2026-12-02T11:00:00.000Z')
    expect(nextDueAt(every, at, '2026-12-02T11:10:00.000Z')).toBe('2026-12-02T11:30:00.000Z')
    const daily = { kind: 'daily', atUtc: '09:00' } as const
    expect(nextDueAt(daily, at, at)).toBe('2026-12-03T09:00:00.000Z')
    expect(nextDueAt(daily, '2026-12-02T08:00:00.000Z', '2026-12-02T08:00:00.000Z')).toBe('2026-12-02T09:00:00.000Z')
    expect(nextDueAt(daily, '2026-12-02T09:00:00.000Z', '2026-12-02T09:00:00.000Z')).toBe('2026-12-03T09:00:00.000Z')
    // Across a month's end.
    expect(nextDueAt(daily, '2026-12-31T10:00:00.000Z', '2026-12-31T10:00:00.000Z')).toBe('2027-01-01T09:00:00.000Z')
  })

  it('an instance is titled after its parent and period, within the title limit', () => {
    expect(runTitle('Standup notes', first, 200)).toBe('Standup notes — 2026-12-02 11:00 UTC')
    const long = runTitle('x'.repeat(200), first, 200)
    expect(long).toHaveLength(200)
    expect(long.endsWith('— 2026-12-02 11:00 UTC')).toBe(true)
  })
})
