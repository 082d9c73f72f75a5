import { type Decider, DomainError, type DomainEvent } from './decider.ts'
import { type RunInput, triggerKey } from './runs.ts'

/*
 * An agent's thread (`thread-<id>`): its ongoing work in one room or on one task. It decides which run is active:
 * a wake-up while none is starts one; a wake-up during a run joins the next (queued here, started when the active
 * run finishes, all pending inputs together); the same trigger twice starts nothing new. It also records the tasks
 * the agent waits for (a processor wakes the thread when one closes).
 */

export type ThreadWorkType = 'conversation' | 'role_learning' | 'task_memory'

export type ThreadEvent =
  | DomainEvent<
      'thread.created',
      { threadId: string; agentId: string; roomId: string; taskId: string | null; workType: ThreadWorkType; at: string }
    >
  // Each names the thread's room: who may see the thread (realtime) is who may read its room.
  | DomainEvent<
      'thread.run_queued',
      { threadId: string; roomId: string; runId: string; agentId: string; inputs: RunInput[]; at: string }
    >
  | DomainEvent<'thread.input_queued', { threadId: string; roomId: string; activeRunId: string; input: RunInput; at: string }>
  | DomainEvent<'thread.run_finished', { threadId: string; roomId: string; runId: string; at: string }>
  // `runId`: the run that decided to wait; `note`: what the agent means to do then, read back when it is woken.
  | DomainEvent<
      'thread.task_awaited',
      { threadId: string; roomId: string; agentId: string; awaitedTaskId: string; runId: string; note: string | null; at: string }
    >

/** Trigger keys a thread remembers, newest last: enough to refuse a repeat, bounded so its state stays small. */
export const REMEMBERED_TRIGGERS = 500

/** Tasks a thread may wait for at once: a wait ends when the thread is woken for the task's close. */
export const MAX_AWAITED_TASKS = 20

export type ThreadState =
  | { readonly exists: false }
  | {
      readonly exists: true
      readonly threadId: string
      readonly agentId: string
      /** A task's thread is in the task's room. */
      readonly roomId: string
      readonly taskId: string | null
      readonly workType: ThreadWorkType
      readonly activeRunId: string | null
      /** Inputs that arrived during the active run, for the next. */
      readonly pending: readonly RunInput[]
      readonly seen: readonly string[]
      /** Tasks awaited and not yet woken for. */
      readonly awaiting: readonly string[]
    }

export type ThreadCommand =
  | {
      type: 'wake'
      threadId: string
      agentId: string
      roomId: string
      taskId: string | null
      workType: ThreadWorkType
      input: RunInput
      /** The id the run gets should this wake-up start one. */
      runId: string
      at: string
    }
  | { type: 'finish_run'; threadId: string; runId: string; nextRunId: string; at: string }
  | {
      type: 'await_task'
      threadId: string
      agentId: string
      awaitedTaskId: string
      runId: string
      note: string | null
      at: string
    }

export const thread: Decider<ThreadCommand, ThreadEvent, ThreadState> = {
  initialState: { exists: false },
  decide(c, s) {
    switch (c.type) {
      case 'wake': {
        if (s.exists && s.agentId !== c.agentId)
          throw new DomainError('THREAD_AGENT_MISMATCH', 'this thread is another agent’s', 'conflict')
        if (s.exists && s.seen.includes(triggerKey(c.input.trigger))) return []
        const created: ThreadEvent[] = s.exists
          ? []
          : [
              {
                type: 'thread.created',
                data: {
                  threadId: c.threadId,
                  agentId: c.agentId,
                  roomId: c.roomId,
                  taskId: c.taskId,
                  workType: c.workType,
                  at: c.at,
                },
              },
            ]
        const active = s.exists ? s.activeRunId : null
        if (active) {
          return [
            ...created,
            {
              type: 'thread.input_queued',
              data: { threadId: c.threadId, roomId: c.roomId, activeRunId: active, input: c.input, at: c.at },
            },
          ]
        }
        return [
          ...created,
          {
            type: 'thread.run_queued',
            data: { threadId: c.threadId, roomId: c.roomId, runId: c.runId, agentId: c.agentId, inputs: [c.input], at: c.at },
          },
        ]
      }
      case 'finish_run': {
        if (!s.exists) throw new DomainError('THREAD_NOT_FOUND', 'no such thread', 'not_found')
        // Told twice (the worker, then the processor that makes sure), it acts once.
        if (s.activeRunId !== c.runId) return []
        const finished: ThreadEvent = {
          type: 'thread.run_finished',
          data: { threadId: s.threadId, roomId: s.roomId, runId: c.runId, at: c.at },
        }
        if (s.pending.length === 0) return [finished]
        return [
          finished,
          {
            type: 'thread.run_queued',
            data: {
              threadId: s.threadId,
              roomId: s.roomId,
              runId: c.nextRunId,
              agentId: s.agentId,
              inputs: [...s.pending],
              at: c.at,
            },
          },
        ]
      }
      case 'await_task': {
        if (!s.exists) throw new DomainError('THREAD_NOT_FOUND', 'no such thread', 'not_found')
        if (s.agentId !== c.agentId) throw new DomainError('THREAD_AGENT_MISMATCH', 'this thread is another agent’s', 'conflict')
        // Waiting again for what it already waits for: the first wait wakes it, once.
        if (s.awaiting.includes(c.awaitedTaskId)) return []
        if (s.awaiting.length >= MAX_AWAITED_TASKS)
          throw new DomainError('THREAD_WAITS_FULL', `a thread waits for at most ${MAX_AWAITED_TASKS} tasks at once`)
        return [
          {
            type: 'thread.task_awaited',
            data: {
              threadId: s.threadId,
              roomId: s.roomId,
              agentId: s.agentId,
              awaitedTaskId: c.awaitedTaskId,
              runId: c.runId,
              note: c.note,
              at: c.at,
            },
          },
        ]
      }
    }
  },
  evolve(s, e) {
    const remember = (seen: readonly string[], inputs: readonly RunInput[]) =>
      [...new Set([...seen, ...inputs.map((i) => triggerKey(i.trigger))])].slice(-REMEMBERED_TRIGGERS)
    // Woken for a task's close, the thread waits for it no more (it may wait again, should the task reopen).
    const woken = (awaiting: readonly string[], inputs: readonly RunInput[]) => {
      const closed = new Set(inputs.flatMap((i) => (i.trigger.type === 'task_closed' ? [i.trigger.taskId] : [])))
      return closed.size === 0 ? awaiting : awaiting.filter((t) => !closed.has(t))
    }
    if (e.type === 'thread.created') {
      return { exists: true, ...e.data, activeRunId: null, pending: [], seen: [], awaiting: [] }
    }
    if (!s.exists) return s
    switch (e.type) {
      case 'thread.run_queued':
        // A next run starts from every pending input: none stay behind.
        return {
          ...s,
          activeRunId: e.data.runId,
          pending: [],
          seen: remember(s.seen, e.data.inputs),
          awaiting: woken(s.awaiting, e.data.inputs),
        }
      case 'thread.input_queued':
        return {
          ...s,
          pending: [...s.pending, e.data.input],
          seen: remember(s.seen, [e.data.input]),
          awaiting: woken(s.awaiting, [e.data.input]),
        }
      case 'thread.run_finished':
        return { ...s, activeRunId: null }
      case 'thread.task_awaited':
        return { ...s, awaiting: [...s.awaiting, e.data.awaitedTaskId] }
    }
  },
}
