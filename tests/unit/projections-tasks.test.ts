import { describe, expect, it } from 'vitest'
import type { TaskEvent } from '../../domain/tasks.ts'
import { evolveTable } from '../../projections/rows.ts'
import { type TaskRow, taskDependencyRows, taskPeopleRows, taskRows } from '../../projections/tasks.ts'
import { projectionSpec } from '../support/projection-spec.ts'

const t0 = '2026-12-02T10:00:00.000Z'
const t1 = '2026-12-02T11:00:00.000Z'
const t2 = '2026-12-02T12:00:00.000Z'

const created = (taskId: string, over: Partial<Extract<TaskEvent, { type: 'task.created' }>['data']> = {}): TaskEvent => ({
  type: 'task.created',
  data: {
    taskId,
    title: 'Ship it',
    description: 'soon',
    roomId: 'room-1',
    parentId: null,
    reporterId: 'alice',
    assignee: { id: 'bot', type: 'agent' },
    reviewGates: { plan: true, result: false },
    at: t0,
    ...over,
  },
})
const ev = <T extends TaskEvent['type']>(type: T, data: Omit<Extract<TaskEvent, { type: T }>['data'], 'at'>, at = t1) =>
  ({ type, data: { ...data, at } }) as TaskEvent

const gate = (g: 'plan' | 'result', required: boolean) => ({
  [`${g}_required`]: required,
  [`${g}_state`]: 'not_submitted',
  [`${g}_text`]: null,
  [`${g}_submitted_by`]: null,
  [`${g}_decided_by`]: null,
  [`${g}_comment`]: null,
})

const row: TaskRow = {
  id: 'task-1',
  room_id: 'room-1',
  parent_id: null,
  title: 'Ship it',
  description: 'soon',
  reporter_id: 'alice',
  assignee_id: 'bot',
  assignee_type: 'agent',
  status: 'open',
  ...(gate('plan', true) as object),
  ...(gate('result', false) as object),
  created_at: t0,
  updated_at: t0,
} as TaskRow

describe('tasks read model', () => {
  const tasks = projectionSpec(taskRows)

  it('a created task is a row with its room, people, status and gates', () => tasks.given([]).when(created('task-1')).then([row]))

  it('a repeated creation keeps the first row; events of a task with no row change nothing', () => {
    tasks
      .given([row])
      .when(created('task-1', { title: 'Again', at: t1 }))
      .thenWrites({ upserts: [], deletes: [] })
    tasks
      .given([row])
      .when(ev('task.updated', { taskId: 'task-9', title: 'Ghost' }))
      .then([row])
  })

  it('edits, assignment and status change the row and when it changed', () =>
    tasks
      .given([row])
      .when(
        ev('task.updated', { taskId: 'task-1', title: 'Ship it now' }),
        ev('task.assigned', { taskId: 'task-1', assignee: null, by: 'alice' }),
        ev('task.status_changed', { taskId: 'task-1', from: 'open', to: 'blocked', by: 'alice' }, t2),
      )
      .then([{ ...row, title: 'Ship it now', assignee_id: null, assignee_type: null, status: 'blocked', updated_at: t2 }]))

  it('a gate goes pending with what was submitted, then approved or rejected with who decided and why', () => {
    tasks
      .given([row])
      .when(
        ev('task.review_submitted', { taskId: 'task-1', gate: 'plan', text: 'the plan', by: 'bot' }),
        ev('task.review_decided', { taskId: 'task-1', gate: 'plan', decision: 'reject', comment: 'no', by: 'alice' }, t2),
      )
      .then([
        {
          ...row,
          plan_state: 'rejected',
          plan_text: 'the plan',
          plan_submitted_by: 'bot',
          plan_decided_by: 'alice',
          plan_comment: 'no',
          updated_at: t2,
        },
      ])
  })

  it('a gate turned on starts afresh; reopening a done task asks for its result again', () =>
    tasks
      .given([{ ...row, status: 'done', result_required: true, result_state: 'approved', result_text: 'done it' }])
      .when(
        ev('task.review_gates_changed', { taskId: 'task-1', plan: false, result: true, by: 'alice' }),
        ev('task.status_changed', { taskId: 'task-1', from: 'done', to: 'open', by: 'alice' }, t2),
      )
      .then([{ ...row, ...(gate('plan', false) as object), ...(gate('result', true) as object), updated_at: t2 } as TaskRow]))

  it('a deleted task has no row', () =>
    tasks
      .given([row])
      .when(ev('task.deleted', { taskId: 'task-1', by: 'alice' }))
      .thenWrites({ upserts: [], deletes: ['task-1'] }))
})

describe('task people and links', () => {
  it('assistants and watchers are added once and removed', () => {
    const r = evolveTable(
      taskPeopleRows,
      [],
      [
        ev('task.assistant_added', { taskId: 'task-1', agentId: 'bot', by: 'alice' }),
        ev('task.watcher_added', { taskId: 'task-1', userId: 'carol', by: 'carol' }),
        ev('task.watcher_added', { taskId: 'task-1', userId: 'carol', by: 'carol' }, t2),
        ev('task.watcher_added', { taskId: 'task-1', userId: 'dan', by: 'alice' }),
        ev('task.watcher_removed', { taskId: 'task-1', userId: 'dan', by: 'dan' }),
      ],
    )
    expect(r.rows).toEqual([
      { task_id: 'task-1', relation: 'assistant', user_id: 'bot', added_at: t1 },
      { task_id: 'task-1', relation: 'watcher', user_id: 'carol', added_at: t1 },
    ])
  })

  it('depends-on links are added and removed', () => {
    const r = evolveTable(
      taskDependencyRows,
      [{ task_id: 'task-1', depends_on_id: 'task-2', added_at: t0 }],
      [
        ev('task.dependency_added', { taskId: 'task-1', dependsOnId: 'task-3', by: 'alice' }),
        ev('task.dependency_removed', { taskId: 'task-1', dependsOnId: 'task-2', by: 'alice' }),
      ],
    )
    expect(r.rows).toEqual([{ task_id: 'task-1', depends_on_id: 'task-3', added_at: t1 }])
    expect(r.deletes).toHaveLength(1)
  })
})
