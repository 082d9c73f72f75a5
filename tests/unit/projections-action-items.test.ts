import { describe, expect, it } from 'vitest'
import type { TaskQuestionEvent } from '../../domain/task-questions.ts'
import type { TaskScheduleEvent } from '../../domain/task-schedules.ts'
import type { CapsEvent } from '../../domain/usage.ts'
import { type ActionItemEvent, type ActionItemRow, actionItemRows } from '../../projections/action-items.ts'
import { evolveTable } from '../../projections/rows.ts'
import { type TaskScheduleRow, taskScheduleRows } from '../../projections/task-schedules.ts'
import { projectionSpec } from '../support/projection-spec.ts'

const t0 = '2026-12-02T10:00:00.000Z'
const t1 = '2026-12-02T11:00:00.000Z'
const t2 = '2026-12-02T12:00:00.000Z'

const noRun = { run_id: null, tool: null, tool_call_id: null } as const

const items = (rows: readonly ActionItemRow[], ...events: ActionItemEvent[]) => evolveTable(actionItemRows, rows, events)

const submitted = (gate: 'plan' | 'result', text = 'the plan', at = t0): ActionItemEvent => ({
  type: 'task.review_submitted',
  data: { taskId: 'task-1', gate, text, by: 'bob', at },
})
const decided = (gate: 'plan' | 'result', decision: 'approve' | 'reject' = 'approve'): ActionItemEvent => ({
  type: 'task.review_decided',
  data: { taskId: 'task-1', gate, decision, comment: null, by: 'alice', at: t1 },
})
const approval = (gate: 'plan' | 'result', text = 'the plan', at = t0): ActionItemRow => ({
  id: `approval:task-1:${gate}`,
  kind: 'approval',
  task_id: 'task-1',
  room_id: null,
  to_user_id: null,
  from_id: 'bob',
  gate,
  scope: null,
  scope_id: null,
  text,
  limit_micro_usd: null,
  used_micro_usd: null,
  ...noRun,
  created_at: at,
})
const asked: TaskQuestionEvent = {
  type: 'task_question.asked',
  data: { questionId: 'q-1', taskId: 'task-1', roomId: 'room-1', askedBy: 'agent-1', toUserId: 'alice', text: 'Which?', at: t0 },
}
const question: ActionItemRow = {
  id: 'question:q-1',
  kind: 'question',
  task_id: 'task-1',
  room_id: 'room-1',
  to_user_id: 'alice',
  from_id: 'agent-1',
  gate: null,
  scope: null,
  scope_id: null,
  text: 'Which?',
  limit_micro_usd: null,
  used_micro_usd: null,
  ...noRun,
  created_at: t0,
}
const alert = {
  orgId: 'org-1',
  scope: 'room',
  scopeId: 'room-1',
  agentId: null,
  roomId: 'room-1',
  taskId: null,
  month: '2026-12',
} as const
const reached = (used: number, at = t0): ActionItemEvent => ({
  type: 'usage.limit_reached',
  data: { ...alert, limitMicroUsd: 1_000_000, usedMicroUsd: used, at },
})
const capSet = (limit: number | null, used: number): CapsEvent => ({
  type: 'usage.cap_set',
  data: { ...alert, limitMicroUsd: limit, previousMicroUsd: 1_000_000, usedMicroUsd: used, at: t1 } as CapsEvent['data'],
})
const limit = (used: number): ActionItemRow => ({
  id: 'limit:room:room-1',
  kind: 'limit_reached',
  task_id: null,
  room_id: 'room-1',
  to_user_id: null,
  from_id: null,
  gate: null,
  scope: 'room',
  scope_id: 'room-1',
  text: '',
  limit_micro_usd: 1_000_000,
  used_micro_usd: used,
  ...noRun,
  created_at: t0,
})

describe('action items read model', () => {
  it('a submitted plan or result waits until it is decided, either way', () => {
    expect(items([], submitted('plan')).rows).toEqual([approval('plan')])
    expect(items([approval('plan')], decided('plan')).rows).toEqual([])
    expect(items([approval('plan')], decided('plan', 'reject')).rows).toEqual([])
    // A decision on the other gate leaves it.
    expect(items([approval('plan')], decided('result')).rows).toEqual([approval('plan')])
  })

  it('submitted again after a rejection, the item is the new submission', () =>
    expect(items([], submitted('plan'), decided('plan', 'reject'), submitted('plan', 'better', t2)).rows).toEqual([
      approval('plan', 'better', t2),
    ]))

  it('lifting a gate, closing or deleting the task resolves what waited on it', () => {
    const both = [approval('plan'), approval('result')]
    const lifted: ActionItemEvent = {
      type: 'task.review_gates_changed',
      data: { taskId: 'task-1', plan: false, result: true, by: 'alice', at: t1 },
    }
    expect(items(both, lifted).rows).toEqual([approval('result')])
    const cancelled: ActionItemEvent = {
      type: 'task.status_changed',
      data: { taskId: 'task-1', from: 'open', to: 'cancelled', by: 'alice', at: t1 },
    }
    expect(items(both, cancelled).rows).toEqual([])
    const working: ActionItemEvent = {
      type: 'task.status_changed',
      data: { taskId: 'task-1', from: 'open', to: 'in_progress', by: 'alice', at: t1 },
    }
    expect(items(both, working).rows).toEqual(both)
    const deleted: ActionItemEvent = { type: 'task.deleted', data: { taskId: 'task-1', by: 'alice', at: t1 } }
    expect(items(both, deleted).deletes.sort()).toEqual(['approval:task-1:plan', 'approval:task-1:result'])
  })

  it('a question waits for the person asked until answered; a repeat keeps the first', () => {
    expect(items([], asked).rows).toEqual([question])
    expect(items([question], { ...asked, data: { ...asked.data, text: 'again', at: t1 } }).upserts).toEqual([])
    const answered: TaskQuestionEvent = {
      type: 'task_question.answered',
      data: { questionId: 'q-1', taskId: 'task-1', roomId: 'room-1', answeredBy: 'alice', text: 'That one', at: t1 },
    }
    expect(items([question], answered).rows).toEqual([])
  })

  it('a reached limit waits until its cap is raised above what was spent, or removed', () => {
    expect(items([], reached(1_200_000)).rows).toEqual([limit(1_200_000)])
    // Reached again (a later crossing): the item says what is spent now, since when it waits stays.
    expect(items([limit(1_200_000)], reached(1_500_000, t2)).rows).toEqual([limit(1_500_000)])
    expect(items([limit(1_200_000)], capSet(1_100_000, 1_200_000)).rows).toEqual([limit(1_200_000)])
    expect(items([limit(1_200_000)], capSet(2_000_000, 1_200_000)).rows).toEqual([])
    expect(items([limit(1_200_000)], capSet(null, 1_200_000)).rows).toEqual([])
    // A cap set where nothing was reached writes nothing.
    expect(items([], capSet(2_000_000, 0))).toMatchObject({ rows: [], upserts: [], deletes: [] })
  })
})

describe('task schedules read model', () => {
  const schedules = projectionSpec(taskScheduleRows)
  const set: TaskScheduleEvent = {
    type: 'task_schedule.set',
    data: {
      taskId: 'task-1',
      cadence: { kind: 'every', minutes: 30 },
      perRunUsdLimit: 2,
      instructions: 'Do it',
      by: 'alice',
      at: t0,
    },
  }
  const paused: TaskScheduleRow = {
    task_id: 'task-1',
    cadence_kind: 'every',
    every_minutes: 30,
    daily_at_utc: null,
    per_run_usd_limit: 2,
    instructions: 'Do it',
    status: 'paused',
    next_run_at: null,
    runs: 0,
    last_run_at: null,
    last_run_task_id: null,
    created_at: t0,
    updated_at: t0,
  }
  const resumed: TaskScheduleEvent = { type: 'task_schedule.resumed', data: { taskId: 'task-1', by: 'alice', at: t1 } }
  const scheduled = (dueAt: string, at = t1): TaskScheduleEvent => ({
    type: 'task_schedule.run_scheduled',
    data: { taskId: 'task-1', timerId: `timer-${dueAt}`, dueAt, replacesTimerId: null, at },
  })
  const started = (trigger: 'schedule' | 'manual', at: string): TaskScheduleEvent => ({
    type: 'task_schedule.run_started',
    data: {
      taskId: 'task-1',
      runTaskId: `run-${at}`,
      trigger,
      period: trigger === 'schedule' ? at : null,
      by: 'alice',
      perRunUsdLimit: 2,
      at,
    },
  })

  it('a schedule is created paused', () => schedules.given([]).when(set).then([paused]))

  it('resumed, it shows when the next run is due; each run is counted', () =>
    schedules
      .given([paused])
      .when(resumed, scheduled('2026-12-02T11:30:00.000Z'), started('schedule', '2026-12-02T11:30:00.000Z'))
      .then([
        {
          ...paused,
          status: 'active',
          next_run_at: null,
          runs: 1,
          last_run_at: '2026-12-02T11:30:00.000Z',
          last_run_task_id: 'run-2026-12-02T11:30:00.000Z',
          updated_at: '2026-12-02T11:30:00.000Z',
        },
      ]))

  it('a manual run leaves the next due time; pausing clears it; a new daily time changes the cadence', () => {
    const active = { ...paused, status: 'active' as const, next_run_at: t2 }
    schedules
      .given([active])
      .when(started('manual', t1))
      .then([{ ...active, runs: 1, last_run_at: t1, last_run_task_id: `run-${t1}`, updated_at: t1 }])
    schedules
      .given([active])
      .when({ type: 'task_schedule.paused', data: { taskId: 'task-1', cancelledTimerId: 'x', by: 'bob', at: t1 } })
      .then([{ ...active, status: 'paused', next_run_at: null, updated_at: t1 }])
    schedules
      .given([paused])
      .when({ ...set, data: { ...set.data, cadence: { kind: 'daily', atUtc: '09:00' }, at: t1 } })
      .then([{ ...paused, cadence_kind: 'daily', every_minutes: null, daily_at_utc: '09:00', updated_at: t1 }])
  })

  it('goes with its task; events about no schedule change nothing', () => {
    schedules
      .given([paused])
      .when({ type: 'task.deleted', data: { taskId: 'task-1', by: 'alice', at: t1 } })
      .then([])
    schedules.given([]).when(resumed, scheduled(t2)).then([])
  })
})

describe('action items of agents’ runs', () => {
  const run = { runId: 'run-1', roomId: 'room-1', threadId: 'thread-1', generation: 1 }
  const required: ActionItemEvent = {
    type: 'run.action_required',
    data: { ...run, itemId: 'item-1', toolCallId: 'call-1', tool: 'delete_task', arguments: '{"taskId":"x"}', at: t0 },
  }
  const waiting: ActionItemRow = {
    ...noRun,
    id: 'tool_approval:run-1',
    kind: 'tool_approval',
    task_id: null,
    room_id: 'room-1',
    to_user_id: null,
    from_id: null,
    gate: null,
    scope: null,
    scope_id: null,
    text: '{"taskId":"x"}',
    limit_micro_usd: null,
    used_micro_usd: null,
    run_id: 'run-1',
    tool: 'delete_task',
    tool_call_id: 'call-1',
    created_at: t0,
  }
  const failed = (runId: string): ActionItemEvent => ({
    type: 'run.failed',
    data: { ...run, runId, code: 'MODEL_UNAVAILABLE', message: 'the model did not answer', at: t1 },
  })
  const failure = (runId: string): ActionItemRow => ({
    ...waiting,
    id: 'failed_run:thread-1',
    kind: 'failed_run',
    run_id: runId,
    tool: null,
    tool_call_id: null,
    text: 'MODEL_UNAVAILABLE: the model did not answer',
    created_at: t1,
  })

  it('a risky call waits for a person until it is decided or its run ends', () => {
    expect(items([], required).rows).toEqual([waiting])
    expect(
      items([waiting], {
        type: 'run.action_decided',
        data: { runId: 'run-1', roomId: 'room-1', toolCallId: 'call-1', decision: 'approve', by: 'bob', at: t1 },
      }).rows,
    ).toEqual([])
    expect(
      items([waiting], { type: 'run.cancelled', data: { runId: 'run-1', roomId: 'room-1', by: 'bob', at: t1 } }).rows,
    ).toEqual([])
  })

  it('a failed run stays until a later run of its thread completes', () => {
    expect(items([], failed('run-1')).rows).toEqual([failure('run-1')])
    expect(items([failure('run-1')], failed('run-2')).rows).toEqual([failure('run-2')])
    expect(items([failure('run-1')], { type: 'run.completed', data: { ...run, runId: 'run-2', at: t2 } }).rows).toEqual([])
  })
})
