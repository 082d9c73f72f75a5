import { sql } from 'kysely'
import type { DomainEvent } from '../domain/decider.ts'
import type { Gate, GateState, PersonType, TaskEvent, TaskStatus } from '../domain/tasks.ts'
import type { CapsEvent, LimitAlert } from '../domain/usage.ts'
import type { Projector } from './engine.ts'
import { applyRows, type RowModel, type TableModel } from './rows.ts'

/** A row of tenant.tasks (its tenant_id is the batch's). */
export type TaskRow = {
  readonly id: string
  readonly room_id: string
  readonly parent_id: string | null
  readonly title: string
  readonly description: string
  readonly reporter_id: string
  readonly assignee_id: string | null
  readonly assignee_type: PersonType | null
  readonly status: TaskStatus
  readonly plan_required: boolean
  readonly plan_state: GateState
  readonly plan_text: string | null
  readonly plan_submitted_by: string | null
  readonly plan_decided_by: string | null
  readonly plan_comment: string | null
  readonly result_required: boolean
  readonly result_state: GateState
  readonly result_text: string | null
  readonly result_submitted_by: string | null
  readonly result_decided_by: string | null
  readonly result_comment: string | null
  readonly created_at: string
  readonly updated_at: string
}

/** A gate as it starts (or starts again): required or not, nothing submitted. */
const freshGate = (g: Gate, required: boolean) =>
  ({
    [`${g}_required`]: required,
    [`${g}_state`]: 'not_submitted',
    [`${g}_text`]: null,
    [`${g}_submitted_by`]: null,
    [`${g}_decided_by`]: null,
    [`${g}_comment`]: null,
  }) as Partial<TaskRow>

/**
 * A task's row: created once (a repeat keeps the first), changed by its events, deleted with it. `limit_reached`
 * is not a column of this model: usage events set it, and a rebuild of tasks leaves it to them.
 */
export const taskRows: RowModel<TaskEvent, TaskRow> = {
  table: 'tasks',
  columns: [
    'id',
    'room_id',
    'parent_id',
    'title',
    'description',
    'reporter_id',
    'assignee_id',
    'assignee_type',
    'status',
    'plan_required',
    'plan_state',
    'plan_text',
    'plan_submitted_by',
    'plan_decided_by',
    'plan_comment',
    'result_required',
    'result_state',
    'result_text',
    'result_submitted_by',
    'result_decided_by',
    'result_comment',
    'created_at',
    'updated_at',
  ],
  key: 'id',
  keyOf: (e) => e.data.taskId,
  evolve(row, e) {
    if (e.type === 'task.created') {
      const d = e.data
      return (
        row ??
        ({
          id: d.taskId,
          room_id: d.roomId,
          parent_id: d.parentId,
          title: d.title,
          description: d.description,
          reporter_id: d.reporterId,
          assignee_id: d.assignee?.id ?? null,
          assignee_type: d.assignee?.type ?? null,
          status: 'open',
          ...(freshGate('plan', d.reviewGates.plan) as object),
          ...(freshGate('result', d.reviewGates.result) as object),
          created_at: d.at,
          updated_at: d.at,
        } as TaskRow)
      )
    }
    if (!row) return row
    switch (e.type) {
      case 'task.updated':
        return {
          ...row,
          title: e.data.title ?? row.title,
          description: e.data.description ?? row.description,
          updated_at: e.data.at,
        }
      case 'task.assigned':
        return {
          ...row,
          assignee_id: e.data.assignee?.id ?? null,
          assignee_type: e.data.assignee?.type ?? null,
          updated_at: e.data.at,
        }
      case 'task.status_changed':
        return {
          ...row,
          status: e.data.to,
          // A reopened task's result is reviewed again (as the decider's state has it).
          ...(e.data.from === 'done' ? freshGate('result', row.result_required) : {}),
          updated_at: e.data.at,
        }
      case 'task.review_gates_changed':
        return {
          ...row,
          ...(e.data.plan === row.plan_required ? {} : freshGate('plan', e.data.plan)),
          ...(e.data.result === row.result_required ? {} : freshGate('result', e.data.result)),
          updated_at: e.data.at,
        }
      case 'task.review_submitted': {
        const g = e.data.gate
        return {
          ...row,
          [`${g}_state`]: 'pending',
          [`${g}_text`]: e.data.text,
          [`${g}_submitted_by`]: e.data.by,
          [`${g}_decided_by`]: null,
          [`${g}_comment`]: null,
          updated_at: e.data.at,
        }
      }
      case 'task.review_decided': {
        const g = e.data.gate
        return {
          ...row,
          [`${g}_state`]: e.data.decision === 'approve' ? 'approved' : 'rejected',
          [`${g}_decided_by`]: e.data.by,
          [`${g}_comment`]: e.data.comment,
          updated_at: e.data.at,
        }
      }
      case 'task.deleted':
        return null
      // People, links and children have tables of their own; the task's row says when it last changed.
      case 'task.assistant_added':
      case 'task.assistant_removed':
      case 'task.watcher_added':
      case 'task.watcher_removed':
      case 'task.dependency_added':
      case 'task.dependency_removed':
        return { ...row, updated_at: e.data.at }
      case 'task.subtask_added':
        return row
    }
  },
}

/** A row of tenant.task_people: an assistant or a watcher of a task (reporter and assignee are the task's columns). */
export type TaskPersonRow = {
  readonly task_id: string
  readonly relation: 'assistant' | 'watcher'
  readonly user_id: string
  readonly added_at: string
}

export const taskPeopleRows: TableModel<TaskEvent, TaskPersonRow> = {
  table: 'task_people',
  columns: ['task_id', 'relation', 'user_id', 'added_at'],
  key: ['task_id', 'relation', 'user_id'],
  refsOf(e) {
    switch (e.type) {
      case 'task.assistant_added':
      case 'task.assistant_removed':
        return [{ task_id: e.data.taskId, relation: 'assistant', user_id: e.data.agentId }]
      case 'task.watcher_added':
      case 'task.watcher_removed':
        return [{ task_id: e.data.taskId, relation: 'watcher', user_id: e.data.userId }]
      default:
        return []
    }
  },
  evolve(row, e, ref) {
    switch (e.type) {
      case 'task.assistant_added':
      case 'task.watcher_added':
        return row ?? { task_id: ref.task_id!, relation: ref.relation!, user_id: ref.user_id!, added_at: e.data.at }
      case 'task.assistant_removed':
      case 'task.watcher_removed':
        return null
      default:
        return row
    }
  },
}

/** A row of tenant.task_dependencies: the task depends on another. */
export type TaskDependencyRow = { readonly task_id: string; readonly depends_on_id: string; readonly added_at: string }

export const taskDependencyRows: TableModel<TaskEvent, TaskDependencyRow> = {
  table: 'task_dependencies',
  columns: ['task_id', 'depends_on_id', 'added_at'],
  key: ['task_id', 'depends_on_id'],
  refsOf: (e) =>
    e.type === 'task.dependency_added' || e.type === 'task.dependency_removed'
      ? [{ task_id: e.data.taskId, depends_on_id: e.data.dependsOnId }]
      : [],
  evolve(row, e) {
    switch (e.type) {
      case 'task.dependency_added':
        return row ?? { task_id: e.data.taskId, depends_on_id: e.data.dependsOnId, added_at: e.data.at }
      case 'task.dependency_removed':
        return null
      default:
        return row
    }
  },
}

export const TASK_EVENT_TYPES: readonly TaskEvent['type'][] = [
  'task.created',
  'task.updated',
  'task.assigned',
  'task.status_changed',
  'task.review_gates_changed',
  'task.review_submitted',
  'task.review_decided',
  'task.assistant_added',
  'task.assistant_removed',
  'task.watcher_added',
  'task.watcher_removed',
  'task.subtask_added',
  'task.dependency_added',
  'task.dependency_removed',
  'task.deleted',
]

/**
 * tenant.tasks, task_people and task_dependencies. A deleted task takes its people and its links (both ways)
 * with it: after the rows of the batch are folded, since no later event of a deleted task's stream exists and a
 * link to it is refused once it is deleted.
 */
/** A task's cap reached, or set again: what its `limit_reached` follows. */
type TaskLimitEvent = DomainEvent<'usage.limit_reached', LimitAlert> | CapsEvent

export const tasksProjector: Projector<TaskEvent | TaskLimitEvent> = {
  name: 'tasks',
  version: 2,
  schema: 'tenant',
  eventTypes: [...TASK_EVENT_TYPES, 'usage.limit_reached', 'usage.cap_set'],
  tables: ['tasks', 'task_people', 'task_dependencies'],
  async apply(trx, all) {
    if (all.length === 0) return
    const events = all.filter((e): e is Extract<typeof e, { type: TaskEvent['type'] }> => e.type.startsWith('task.'))
    await applyRows(trx, taskRows, 'tenant', events)
    await applyRows(trx, taskPeopleRows, 'tenant', events)
    await applyRows(trx, taskDependencyRows, 'tenant', events)
    // A task's spend cap reached stops it ("limit reached") until the cap is raised past what it spent, or lifted.
    for (const e of all) {
      if (e.type !== 'usage.limit_reached' && e.type !== 'usage.cap_set') continue
      if (e.data.scope !== 'task' || !e.data.taskId) continue
      const reached =
        e.type === 'usage.limit_reached' ||
        (e.data.limitMicroUsd !== null && e.data.limitMicroUsd <= (e.data as { usedMicroUsd: number }).usedMicroUsd)
      await sql`update tasks set limit_reached = ${reached}
                 where tenant_id = ${e.metadata.tenantId} and id = ${e.data.taskId}`.execute(trx)
    }
    if (events.length === 0) return
    const deleted = events.filter((e) => e.type === 'task.deleted').map((e) => e.data.taskId)
    if (deleted.length === 0) return
    const tenantId = all[0]!.metadata.tenantId
    await sql`delete from task_people where tenant_id = ${tenantId} and task_id = any(${deleted}::uuid[])`.execute(trx)
    await sql`delete from task_dependencies where tenant_id = ${tenantId}
               and (task_id = any(${deleted}::uuid[]) or depends_on_id = any(${deleted}::uuid[]))`.execute(trx)
  },
}
