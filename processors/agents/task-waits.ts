import { sql } from 'kysely'
import type { AnyDb } from '../../adapters/postgres.ts'
import type { PipelineDeps } from '../../commands/pipeline.ts'
import { loadThread, wakeAgent } from '../../commands/runs.ts'
import { loadTask } from '../../commands/tasks.ts'
import { isClosed, type TaskEvent, type TaskState } from '../../domain/tasks.ts'
import type { ThreadEvent } from '../../domain/threads.ts'
import { commandContextFor } from '../context.ts'
import type { Processor, ProcessorContext, RecordedOf } from '../processor.ts'

type Handled =
  | Extract<ThreadEvent, { type: 'thread.task_awaited' }>
  | Extract<TaskEvent, { type: 'task.status_changed' | 'task.deleted' }>

export const TASK_WAITS_PROCESSOR = 'agent-task-waits'

export type TaskWaitsDeps = PipelineDeps & {
  /** The control database: the processor's own index of the waits (control.agent_task_waits). */
  readonly controlDb: AnyDb
}

/** How a task ended, as the woken agent reads it. */
export type TaskClose = { readonly status: 'done' | 'cancelled' | 'deleted' }

/** What the agent reads when a task it waited for closes: which task, how it ended, its result, its own note. */
export const taskClosedText = (taskId: string, task: TaskState, close: TaskClose, note: string | null): string => {
  const named = task.exists ? `“${task.title}” (${taskId})` : taskId
  const result = task.exists && task.gates.result.text ? `Its result: ${task.gates.result.text}` : 'It has no result recorded.'
  return [
    `The task ${named} you were waiting for is ${close.status === 'deleted' ? 'deleted' : close.status}.`,
    close.status === 'deleted' ? null : result,
    note ? `Your note: ${note}` : null,
  ]
    .filter(Boolean)
    .join('\n\n')
}

/** Whether the task is over for a waiter, as the store says now: closed, deleted, or gone. */
const closedNow = (t: TaskState): TaskClose | null => {
  if (!t.exists || t.deleted) return { status: 'deleted' }
  if (t.status === 'done' || t.status === 'cancelled') return { status: t.status }
  return null
}

/**
 * Wakes an agent's thread when a task it waits for (thread.task_awaited) closes: done, cancelled or deleted. It keeps
 * its own index of the open waits, written as it handles each wait; both event kinds come in log order per tenant, so
 * a close finds every wait recorded before it, and a wait whose task closed first finds the task closed in the store
 * and wakes at once. A wait is woken once: the trigger names the wait, so a repeat (at-least-once handling) wakes
 * nothing new, and the row goes once the thread is woken.
 */
export const agentTaskWaitsProcessor = (deps: TaskWaitsDeps): Processor<Handled> => {
  const wake = async (
    event: RecordedOf<Handled>,
    ctx: ProcessorContext,
    w: { readonly waitId: string; readonly threadId: string; readonly taskId: string; readonly note: string | null },
    task: TaskState,
    close: TaskClose,
  ) => {
    const tenantId = event.metadata.tenantId
    const t = await loadThread(deps.store, w.threadId, tenantId)
    if (t.exists) {
      // One event may wake several waits: each wake's ids are its wait's, so a retry that finds some done reuses none.
      const commands = commandContextFor(TASK_WAITS_PROCESSOR, event, { idFor: (p) => ctx.idFor(`${w.waitId}:${p}`) })
      await wakeAgent(deps, commands, {
        agentId: t.agentId,
        roomId: t.roomId,
        taskId: t.taskId,
        workType: t.workType,
        input: {
          trigger: { type: 'task_closed', taskId: w.taskId, waitId: w.waitId },
          text: taskClosedText(w.taskId, task, close, w.note),
        },
      })
    }
    await sql`delete from control.agent_task_waits
               where org_id = ${tenantId} and task_id = ${w.taskId} and wait_id = ${w.waitId}`.execute(deps.controlDb)
  }

  return {
    name: TASK_WAITS_PROCESSOR,
    version: 1,
    eventTypes: ['thread.task_awaited', 'task.status_changed', 'task.deleted'],
    partitionBy: 'tenant',
    // Deployed onto a live system, it has no waits to catch up on: none were recorded before it.
    startAt: 'head',
    async handle(event, ctx) {
      const tenantId = event.metadata.tenantId
      if (!tenantId) return
      if (event.type === 'thread.task_awaited') {
        const { awaitedTaskId: taskId, threadId, note } = event.data
        const task = await loadTask(deps.store, taskId, tenantId)
        const closed = closedNow(task)
        const w = { waitId: event.id, threadId, taskId, note }
        // It closed before this wait was handled (its close found no wait to wake): wake now.
        if (closed) return wake(event, ctx, w, task, closed)
        await sql`insert into control.agent_task_waits (org_id, task_id, wait_id, thread_id, note, awaited_at)
                  values (${tenantId}, ${taskId}, ${event.id}, ${threadId}, ${note}, ${event.data.at})
                  on conflict do nothing`.execute(deps.controlDb)
        return
      }
      if (event.type === 'task.status_changed' && !isClosed(event.data.to)) return
      const close: TaskClose =
        event.type === 'task.deleted' ? { status: 'deleted' } : { status: event.data.to as 'done' | 'cancelled' }
      const taskId = event.data.taskId
      const waits = await sql<{ wait_id: string; thread_id: string; note: string | null }>`
        select wait_id, thread_id, note from control.agent_task_waits
         where org_id = ${tenantId} and task_id = ${taskId} order by wait_id`.execute(deps.controlDb)
      if (waits.rows.length === 0) return
      const task = await loadTask(deps.store, taskId, tenantId)
      for (const w of waits.rows) {
        await wake(event, ctx, { waitId: w.wait_id, threadId: w.thread_id, taskId, note: w.note }, task, close)
      }
    },
  }
}
