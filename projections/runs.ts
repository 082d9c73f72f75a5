import type { RunEvent } from '../domain/runs.ts'
import type { ThreadEvent } from '../domain/threads.ts'
import { type RowModel, rowProjector } from './rows.ts'

/** The agents' work as people read it: threads, their runs, each run's items and groups (tenant.agent_*). */
type AgentWorkEvent = ThreadEvent | RunEvent

export type ThreadRow = {
  readonly id: string
  readonly agent_id: string
  readonly room_id: string
  readonly task_id: string | null
  readonly work_type: string
  readonly active_run_id: string | null
  /** Inputs waiting for the next run. */
  readonly pending_inputs: number
  readonly created_at: string
  readonly updated_at: string
}

export const threadRows: RowModel<AgentWorkEvent, ThreadRow> = {
  table: 'agent_threads',
  columns: ['id', 'agent_id', 'room_id', 'task_id', 'work_type', 'active_run_id', 'pending_inputs', 'created_at', 'updated_at'],
  key: 'id',
  keyOf: (e) => (e.type.startsWith('thread.') ? (e as ThreadEvent).data.threadId : null),
  evolve(row, e) {
    switch (e.type) {
      case 'thread.created':
        return (
          row ?? {
            id: e.data.threadId,
            agent_id: e.data.agentId,
            room_id: e.data.roomId,
            task_id: e.data.taskId,
            work_type: e.data.workType,
            active_run_id: null,
            pending_inputs: 0,
            created_at: e.data.at,
            updated_at: e.data.at,
          }
        )
      case 'thread.run_queued':
        return row && { ...row, active_run_id: e.data.runId, pending_inputs: 0, updated_at: e.data.at }
      case 'thread.input_queued':
        return row && { ...row, pending_inputs: row.pending_inputs + 1, updated_at: e.data.at }
      case 'thread.run_finished':
        return row && (row.active_run_id === e.data.runId ? { ...row, active_run_id: null, updated_at: e.data.at } : row)
      // A wait shows only as a change of the thread: it ends in a run like any other wake-up.
      case 'thread.task_awaited':
        return row && { ...row, updated_at: e.data.at }
      default:
        return row
    }
  },
}

export type RunRow = {
  readonly id: string
  readonly thread_id: string
  readonly agent_id: string
  readonly room_id: string
  readonly task_id: string | null
  readonly status: string
  /** The inputs it started from, as JSON. */
  readonly inputs: string
  /** The last sequence of its items: a client that saw it has seen everything. */
  readonly sequence: number
  readonly worker_id: string | null
  readonly lease_until: string | null
  readonly pending_tool_call_id: string | null
  readonly pending_tool: string | null
  /** Why it failed (an error code) or stopped (the limit), and how. */
  readonly outcome_code: string | null
  readonly outcome_detail: string | null
  readonly created_at: string
  readonly started_at: string | null
  readonly finished_at: string | null
  readonly updated_at: string
}

const finished = (row: RunRow, status: string, at: string, code: string | null = null, detail: string | null = null): RunRow => ({
  ...row,
  status,
  worker_id: null,
  lease_until: null,
  pending_tool_call_id: null,
  pending_tool: null,
  outcome_code: code,
  outcome_detail: detail,
  finished_at: at,
  updated_at: at,
})

export const runRows: RowModel<AgentWorkEvent, RunRow> = {
  table: 'agent_runs',
  columns: [
    'id',
    'thread_id',
    'agent_id',
    'room_id',
    'task_id',
    'status',
    'inputs',
    'sequence',
    'worker_id',
    'lease_until',
    'pending_tool_call_id',
    'pending_tool',
    'outcome_code',
    'outcome_detail',
    'created_at',
    'started_at',
    'finished_at',
    'updated_at',
  ],
  key: 'id',
  keyOf: (e) => (e.type.startsWith('run.') ? (e as RunEvent).data.runId : null),
  evolve(row, e) {
    if (e.type === 'run.queued') {
      return (
        row ?? {
          id: e.data.runId,
          thread_id: e.data.threadId,
          agent_id: e.data.agentId,
          room_id: e.data.roomId,
          task_id: e.data.taskId,
          status: 'queued',
          inputs: JSON.stringify(e.data.inputs),
          sequence: 0,
          worker_id: null,
          lease_until: null,
          pending_tool_call_id: null,
          pending_tool: null,
          outcome_code: null,
          outcome_detail: null,
          created_at: e.data.at,
          started_at: null,
          finished_at: null,
          updated_at: e.data.at,
        }
      )
    }
    if (!row) return row
    switch (e.type) {
      case 'run.claimed':
        return {
          ...row,
          status: 'in_progress',
          worker_id: e.data.workerId,
          lease_until: e.data.leaseUntil,
          started_at: row.started_at ?? e.data.at,
          updated_at: e.data.at,
        }
      case 'run.lease_renewed':
        return { ...row, lease_until: e.data.leaseUntil }
      case 'run.item_added':
      case 'run.item_updated':
        return { ...row, sequence: e.data.sequence, updated_at: e.data.at }
      case 'run.action_required':
        return {
          ...row,
          status: 'requires_action',
          worker_id: null,
          lease_until: null,
          pending_tool_call_id: e.data.toolCallId,
          pending_tool: e.data.tool,
          updated_at: e.data.at,
        }
      case 'run.action_decided':
        return { ...row, status: 'in_progress', pending_tool_call_id: null, pending_tool: null, updated_at: e.data.at }
      case 'run.completed':
        return finished(row, 'completed', e.data.at)
      case 'run.failed':
        return finished(row, 'failed', e.data.at, e.data.code, e.data.message)
      case 'run.incomplete':
        return finished(row, 'incomplete', e.data.at, e.data.reason, e.data.detail)
      case 'run.cancelled':
        return finished(row, 'cancelled', e.data.at, null, `cancelled by ${e.data.by}`)
      default:
        return row
    }
  },
}

export type RunItemRow = {
  readonly item_id: string
  readonly run_id: string
  readonly group_id: string
  /** The sequence of its last change: items after a client's `afterSequence` are those it has not seen. */
  readonly sequence: number
  readonly kind: string
  readonly status: string
  readonly content: string
  readonly tool_call_id: string | null
  readonly tool: string | null
  readonly arguments: string | null
  readonly created_at: string
  readonly updated_at: string
}

export const runItemRows: RowModel<AgentWorkEvent, RunItemRow> = {
  table: 'agent_run_items',
  columns: [
    'item_id',
    'run_id',
    'group_id',
    'sequence',
    'kind',
    'status',
    'content',
    'tool_call_id',
    'tool',
    'arguments',
    'created_at',
    'updated_at',
  ],
  key: 'item_id',
  keyOf: (e) => (e.type === 'run.item_added' || e.type === 'run.item_updated' ? e.data.itemId : null),
  evolve(row, e) {
    switch (e.type) {
      case 'run.item_added':
        return (
          row ?? {
            item_id: e.data.itemId,
            run_id: e.data.runId,
            group_id: e.data.groupId,
            sequence: e.data.sequence,
            kind: e.data.kind,
            status: e.data.status,
            content: e.data.content,
            tool_call_id: e.data.toolCallId,
            tool: e.data.tool,
            arguments: e.data.arguments,
            created_at: e.data.at,
            updated_at: e.data.at,
          }
        )
      case 'run.item_updated':
        return row && { ...row, sequence: e.data.sequence, status: e.data.status, content: e.data.content, updated_at: e.data.at }
      default:
        return row
    }
  },
}

export type RunGroupRow = {
  readonly group_id: string
  readonly run_id: string
  readonly kind: string
  readonly status: string
  readonly created_at: string
  readonly updated_at: string
}

export const runGroupRows: RowModel<AgentWorkEvent, RunGroupRow> = {
  table: 'agent_run_groups',
  columns: ['group_id', 'run_id', 'kind', 'status', 'created_at', 'updated_at'],
  key: 'group_id',
  keyOf: (e) => (e.type === 'run.item_group_updated' ? e.data.groupId : null),
  evolve(row, e) {
    if (e.type !== 'run.item_group_updated') return row
    return row
      ? { ...row, status: e.data.status, updated_at: e.data.at }
      : {
          group_id: e.data.groupId,
          run_id: e.data.runId,
          kind: e.data.kind,
          status: e.data.status,
          created_at: e.data.at,
          updated_at: e.data.at,
        }
  },
}

/** tenant.agent_threads, agent_runs, agent_run_items, agent_run_groups. */
export const runsProjector = rowProjector<AgentWorkEvent>({
  name: 'agent_runs',
  version: 1,
  schema: 'tenant',
  eventTypes: [
    'thread.created',
    'thread.run_queued',
    'thread.input_queued',
    'thread.run_finished',
    'thread.task_awaited',
    'run.queued',
    'run.claimed',
    'run.lease_renewed',
    'run.item_added',
    'run.item_updated',
    'run.item_group_updated',
    'run.action_required',
    'run.action_decided',
    'run.completed',
    'run.failed',
    'run.incomplete',
    'run.cancelled',
  ],
  models: [threadRows, runRows, runItemRows, runGroupRows],
})
