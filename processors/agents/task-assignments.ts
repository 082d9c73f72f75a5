import type { PipelineDeps } from '../../commands/pipeline.ts'
import { wakeAgent } from '../../commands/runs.ts'
import { loadTask } from '../../commands/tasks.ts'
import { isClosed, type PersonRef, type TaskEvent, type TaskState } from '../../domain/tasks.ts'
import { commandContextFor } from '../context.ts'
import type { Processor } from '../processor.ts'

type Assigning = Extract<TaskEvent, { type: 'task.created' | 'task.assigned' }>

export const TASK_ASSIGNMENTS_PROCESSOR = 'agent-task-assignments'

/** What the agent reads first when it wakes for a task. */
export const assignmentText = (t: { readonly title: string; readonly description: string }): string =>
  [`You were assigned the task “${t.title}”.`, t.description.trim()].filter(Boolean).join('\n\n')

/**
 * Whether an assignment still stands for the agent when it is handled: the task is there and open, and the agent is
 * still its assignee (a task handed on meanwhile is the next assignee's). An agent that assigned itself (a task it
 * created for later, say) is not woken: it knows, and waking it would let an agent wake itself forever.
 */
export function wakesAgent(assignee: PersonRef | null, by: string, task: TaskState): assignee is PersonRef {
  if (assignee?.type !== 'agent' || assignee.id === by) return false
  return task.exists && !task.deleted && !isClosed(task.status) && task.assignee?.id === assignee.id
}

/**
 * A task created for an agent, or assigned to one, wakes it in its thread for the task (in the task's room): a run
 * starts, or the assignment joins the next. The trigger names the assigning event, so a repeat wakes nothing new and
 * a later assignment to the same agent wakes it again.
 */
export const agentTaskAssignmentsProcessor = (deps: PipelineDeps): Processor<Assigning> => ({
  name: TASK_ASSIGNMENTS_PROCESSOR,
  version: 1,
  eventTypes: ['task.created', 'task.assigned'],
  partitionBy: 'tenant',
  // Deployed onto a live system, it must not wake agents for every assignment in history.
  startAt: 'head',
  async handle(event, ctx) {
    const tenantId = event.metadata.tenantId
    if (!tenantId) return
    const assignee = event.data.assignee
    if (assignee?.type !== 'agent') return
    const by = event.type === 'task.created' ? event.data.reporterId : event.data.by
    const t = await loadTask(deps.store, event.data.taskId, tenantId)
    if (!wakesAgent(assignee, by, t) || !t.exists) return
    await wakeAgent(deps, commandContextFor(TASK_ASSIGNMENTS_PROCESSOR, event, ctx), {
      agentId: assignee.id,
      roomId: t.roomId,
      taskId: event.data.taskId,
      workType: 'conversation',
      input: {
        trigger: { type: 'task_assigned', taskId: event.data.taskId, assignmentId: event.id },
        text: assignmentText(t),
      },
    })
  },
})
