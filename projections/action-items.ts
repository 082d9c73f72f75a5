import { sql } from 'kysely'
import type { RunEvent } from '../domain/runs.ts'
import type { TaskQuestionEvent } from '../domain/task-questions.ts'
import type { TaskEvent } from '../domain/tasks.ts'
import type { BudgetEvent, CapsEvent } from '../domain/usage.ts'
import type { Projector } from './engine.ts'
import { applyRows, type TableModel } from './rows.ts'

/*
 * Action items: what waits for a person, as rows that exist exactly while it waits.
 * - approval (`approval:<task>:<gate>`): a plan or result submitted for review, until it is approved or rejected,
 *   the gate is lifted, the task closes, or it is deleted;
 * - question (`question:<id>`): a question about a task put to one person, until they answer (or the task goes);
 * - limit_reached (`limit:<scope>:<scopeId>`): a spend limit reached, until its cap is raised above what was spent
 *   or removed.
 * - tool_approval (`tool_approval:<run>`): an agent's risky tool call waiting for a person, until it is decided or
 *   the run ends;
 * - failed_run (`failed_run:<thread>`): an agent's run that failed, until a later run of that thread completes.
 *
 * Who sees an item is the read API's to decide (read-api/action-items.ts): approvals whoever may read the task,
 * a question the person asked, a limit its room's readers (an org or agent limit: admins), an agent's call waiting or
 * its failed run the room's readers.
 */

/** The events the action items follow. */
export type ActionItemEvent =
  | Extract<
      TaskEvent,
      {
        type:
          | 'task.review_submitted'
          | 'task.review_decided'
          | 'task.review_gates_changed'
          | 'task.status_changed'
          | 'task.deleted'
      }
    >
  | TaskQuestionEvent
  | Extract<BudgetEvent, { type: 'usage.limit_reached' }>
  | CapsEvent
  | Extract<
      RunEvent,
      { type: 'run.action_required' | 'run.action_decided' | 'run.completed' | 'run.failed' | 'run.incomplete' | 'run.cancelled' }
    >

export type ActionItemKind = 'approval' | 'question' | 'limit_reached' | 'tool_approval' | 'failed_run'

/** A row of tenant.action_items (its tenant_id is the batch's). */
export type ActionItemRow = {
  readonly id: string
  readonly kind: ActionItemKind
  readonly task_id: string | null
  /** The room it is about when the event says (questions, limits); an approval's room is its task's. */
  readonly room_id: string | null
  /** The one person it waits for (a question's), or null: anyone who may act on it. */
  readonly to_user_id: string | null
  /** Who asked or submitted. */
  readonly from_id: string | null
  readonly gate: 'plan' | 'result' | null
  readonly scope: string | null
  readonly scope_id: string | null
  /** The plan or result submitted, or the question. */
  readonly text: string
  readonly limit_micro_usd: number | null
  readonly used_micro_usd: number | null
  /** An agent's run it is about, and the call waiting (tool_approval). */
  readonly run_id: string | null
  readonly tool: string | null
  readonly tool_call_id: string | null
  readonly created_at: string
}

const approvalId = (taskId: string, gate: 'plan' | 'result') => `approval:${taskId}:${gate}`
const limitId = (scope: string, scopeId: string) => `limit:${scope}:${scopeId}`

const bothGates = (taskId: string) => [{ id: approvalId(taskId, 'plan') }, { id: approvalId(taskId, 'result') }]

const blank = {
  task_id: null,
  room_id: null,
  to_user_id: null,
  from_id: null,
  gate: null,
  scope: null,
  scope_id: null,
  text: '',
  limit_micro_usd: null,
  used_micro_usd: null,
  run_id: null,
  tool: null,
  tool_call_id: null,
} as const

export const actionItemRows: TableModel<ActionItemEvent, ActionItemRow> = {
  table: 'action_items',
  columns: [
    'id',
    'kind',
    'task_id',
    'room_id',
    'to_user_id',
    'from_id',
    'gate',
    'scope',
    'scope_id',
    'text',
    'limit_micro_usd',
    'used_micro_usd',
    'run_id',
    'tool',
    'tool_call_id',
    'created_at',
  ],
  key: ['id'],
  refsOf(e) {
    switch (e.type) {
      case 'task.review_submitted':
      case 'task.review_decided':
        return [{ id: approvalId(e.data.taskId, e.data.gate) }]
      case 'task.review_gates_changed':
      case 'task.deleted':
        return bothGates(e.data.taskId)
      case 'task.status_changed':
        return e.data.to === 'done' || e.data.to === 'cancelled' ? bothGates(e.data.taskId) : []
      case 'task_question.asked':
      case 'task_question.answered':
        return [{ id: `question:${e.data.questionId}` }]
      case 'usage.limit_reached':
      case 'usage.cap_set':
        return [{ id: limitId(e.data.scope, e.data.scopeId) }]
      case 'run.action_required':
      case 'run.action_decided':
      case 'run.incomplete':
      case 'run.cancelled':
        return [{ id: `tool_approval:${e.data.runId}` }]
      case 'run.failed':
        return [{ id: `tool_approval:${e.data.runId}` }, { id: `failed_run:${e.data.threadId}` }]
      case 'run.completed':
        return [{ id: `tool_approval:${e.data.runId}` }, { id: `failed_run:${e.data.threadId}` }]
    }
  },
  evolve(row, e, ref) {
    switch (e.type) {
      case 'task.review_submitted':
        // Submitted again after a rejection: the item is the new submission.
        return {
          ...blank,
          id: ref.id!,
          kind: 'approval',
          task_id: e.data.taskId,
          from_id: e.data.by,
          gate: e.data.gate,
          text: e.data.text,
          created_at: e.data.at,
        }
      case 'task.review_decided':
      case 'task.deleted':
      case 'task.status_changed':
        return null
      case 'task.review_gates_changed': {
        const gate = row?.gate
        return gate && !e.data[gate] ? null : row
      }
      case 'task_question.asked':
        return (
          row ?? {
            ...blank,
            id: ref.id!,
            kind: 'question',
            task_id: e.data.taskId,
            room_id: e.data.roomId,
            to_user_id: e.data.toUserId,
            from_id: e.data.askedBy,
            text: e.data.text,
            created_at: e.data.at,
          }
        )
      case 'task_question.answered':
        return null
      case 'usage.limit_reached':
        return {
          ...blank,
          id: ref.id!,
          kind: 'limit_reached',
          task_id: e.data.taskId,
          room_id: e.data.roomId,
          scope: e.data.scope,
          scope_id: e.data.scopeId,
          limit_micro_usd: e.data.limitMicroUsd,
          used_micro_usd: e.data.usedMicroUsd,
          created_at: row?.created_at ?? e.data.at,
        }
      case 'usage.cap_set': {
        // Raised above what was spent, or removed: nothing is blocked by it any more.
        const limit = e.data.limitMicroUsd
        return row && (limit === null || limit > e.data.usedMicroUsd) ? null : row
      }
      case 'run.action_required':
        return {
          ...blank,
          id: ref.id!,
          kind: 'tool_approval',
          room_id: e.data.roomId,
          run_id: e.data.runId,
          tool: e.data.tool,
          tool_call_id: e.data.toolCallId,
          text: e.data.arguments,
          created_at: e.data.at,
        }
      case 'run.failed':
        return ref.id!.startsWith('failed_run:')
          ? {
              ...blank,
              id: ref.id!,
              kind: 'failed_run',
              room_id: e.data.roomId,
              run_id: e.data.runId,
              text: `${e.data.code}: ${e.data.message}`,
              created_at: e.data.at,
            }
          : null
      case 'run.action_decided':
      case 'run.completed':
      case 'run.incomplete':
      case 'run.cancelled':
        return null
    }
  },
}

export const ACTION_ITEM_EVENT_TYPES: readonly ActionItemEvent['type'][] = [
  'task.review_submitted',
  'task.review_decided',
  'task.review_gates_changed',
  'task.status_changed',
  'task.deleted',
  'task_question.asked',
  'task_question.answered',
  'usage.limit_reached',
  'usage.cap_set',
  'run.action_required',
  'run.action_decided',
  'run.completed',
  'run.failed',
  'run.incomplete',
  'run.cancelled',
]

/**
 * tenant.action_items. A deleted task takes its questions with it: they are found by task (a task's questions are
 * not named by the deletion), after the batch's rows are folded.
 */
export const actionItemsProjector: Projector<ActionItemEvent> = {
  name: 'action-items',
  version: 2,
  schema: 'tenant',
  eventTypes: ACTION_ITEM_EVENT_TYPES,
  tables: ['action_items'],
  async apply(trx, events) {
    await applyRows(trx, actionItemRows, 'tenant', events)
    const deleted = events.filter((e) => e.type === 'task.deleted').map((e) => e.data.taskId)
    if (deleted.length === 0) return
    const tenantId = events[0]!.metadata.tenantId
    await sql`delete from action_items where tenant_id = ${tenantId} and task_id = any(${deleted}::uuid[])`.execute(trx)
  },
}
