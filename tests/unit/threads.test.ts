import { describe, it } from 'vitest'
import type { RunInput } from '../../domain/runs.ts'
import { MAX_AWAITED_TASKS, type ThreadCommand, type ThreadEvent, thread } from '../../domain/threads.ts'
import { spec } from './spec.ts'

const at = '2026-12-02T10:00:00.000Z'
const mention = (messageId: string): RunInput => ({ trigger: { type: 'mention', messageId }, text: `@ada ${messageId}` })
const wake = (messageId: string, runId: string): Extract<ThreadCommand, { type: 'wake' }> => ({
  type: 'wake',
  threadId: 't1',
  agentId: 'ada',
  roomId: 'r1',
  taskId: null,
  workType: 'conversation',
  input: mention(messageId),
  runId,
  at,
})
const created: ThreadEvent = {
  type: 'thread.created',
  data: { threadId: 't1', agentId: 'ada', roomId: 'r1', taskId: null, workType: 'conversation', at },
}
const runQueued = (runId: string, ...messageIds: string[]): ThreadEvent => ({
  type: 'thread.run_queued',
  data: { threadId: 't1', roomId: 'r1', runId, agentId: 'ada', inputs: messageIds.map(mention), at },
})
const inputQueued = (messageId: string, activeRunId = 'run-1'): ThreadEvent => ({
  type: 'thread.input_queued',
  data: { threadId: 't1', roomId: 'r1', activeRunId, input: mention(messageId), at },
})
const finished = (runId: string): ThreadEvent => ({
  type: 'thread.run_finished',
  data: { threadId: 't1', roomId: 'r1', runId, at },
})

describe('threads', () => {
  const rules = spec(thread)

  it('a first mention opens the thread and starts a run', () =>
    rules
      .given([])
      .when(wake('m1', 'run-1'))
      .then([created, runQueued('run-1', 'm1')]))

  it('a mention during a run joins the next run', () =>
    rules
      .given([created, runQueued('run-1', 'm1')])
      .when(wake('m2', 'run-2'))
      .then([inputQueued('m2')]))

  it('the same trigger again (an edit that mentions again) starts nothing', () => {
    rules
      .given([created, runQueued('run-1', 'm1')])
      .when(wake('m1', 'run-2'))
      .then([])
    rules
      .given([created, runQueued('run-1', 'm1'), finished('run-1')])
      .when(wake('m1', 'run-2'))
      .then([])
    rules
      .given([created, runQueued('run-1', 'm1'), inputQueued('m2')])
      .when(wake('m2', 'run-2'))
      .then([])
  })

  it('when a run finishes, the inputs that waited start the next one together', () => {
    const history = [created, runQueued('run-1', 'm1'), inputQueued('m2'), inputQueued('m3')]
    rules
      .given(history)
      .when({ type: 'finish_run', threadId: 't1', runId: 'run-1', nextRunId: 'run-2', at })
      .then([finished('run-1'), runQueued('run-2', 'm2', 'm3')])
    rules
      .given([created, runQueued('run-1', 'm1')])
      .when({ type: 'finish_run', threadId: 't1', runId: 'run-1', nextRunId: 'run-2', at })
      .then([finished('run-1')])
  })

  it('finishing a run that is not the active one (told twice) does nothing', () =>
    rules
      .given([created, runQueued('run-1', 'm1'), finished('run-1')])
      .when({ type: 'finish_run', threadId: 't1', runId: 'run-1', nextRunId: 'run-2', at })
      .then([]))

  it('after a run finished, a new mention starts a new run', () =>
    rules
      .given([created, runQueued('run-1', 'm1'), finished('run-1')])
      .when(wake('m2', 'run-2'))
      .then([runQueued('run-2', 'm2')]))

  it('a thread belongs to one agent', () =>
    rules
      .given([created])
      .when({ ...wake('m9', 'run-9'), agentId: 'bob' } as ThreadCommand)
      .thenRefused('THREAD_AGENT_MISMATCH', 'conflict'))

  describe('waiting for a task', () => {
    const awaitTask = (taskId: string, agentId = 'ada'): ThreadCommand => ({
      type: 'await_task',
      threadId: 't1',
      agentId,
      awaitedTaskId: taskId,
      runId: 'run-1',
      note: 'then ship it',
      at,
    })
    const awaited = (taskId: string): ThreadEvent => ({
      type: 'thread.task_awaited',
      data: { threadId: 't1', roomId: 'r1', agentId: 'ada', awaitedTaskId: taskId, runId: 'run-1', note: 'then ship it', at },
    })
    const closed = (taskId: string, waitId: string): RunInput => ({
      trigger: { type: 'task_closed', taskId, waitId },
      text: `task ${taskId} is done`,
    })

    it('a run records the task its thread waits for', () =>
      rules
        .given([created, runQueued('run-1', 'm1')])
        .when(awaitTask('task-1'))
        .then([awaited('task-1')]))

    it('the same task awaited twice is recorded once', () =>
      rules
        .given([created, runQueued('run-1', 'm1'), awaited('task-1')])
        .when(awaitTask('task-1'))
        .then([]))

    it('woken for the close, the thread waits no more: a reopened task may be awaited again', () => {
      const wokenLater: ThreadEvent = {
        type: 'thread.input_queued',
        data: { threadId: 't1', roomId: 'r1', activeRunId: 'run-1', input: closed('task-1', 'wait-1'), at },
      }
      rules
        .given([created, runQueued('run-1', 'm1'), awaited('task-1'), wokenLater])
        .when(awaitTask('task-1'))
        .then([awaited('task-1')])
    })

    it('the close of a task wakes the thread once', () =>
      rules
        .given([created, runQueued('run-1', 'm1'), awaited('task-1'), finished('run-1')])
        .when({ ...wake('m2', 'run-2'), input: closed('task-1', 'wait-1') })
        .then([
          {
            type: 'thread.run_queued',
            data: { threadId: 't1', roomId: 'r1', runId: 'run-2', agentId: 'ada', inputs: [closed('task-1', 'wait-1')], at },
          },
        ]))

    it('a repeated close wakes nothing new', () =>
      rules
        .given([
          created,
          runQueued('run-1', 'm1'),
          awaited('task-1'),
          finished('run-1'),
          {
            type: 'thread.run_queued',
            data: { threadId: 't1', roomId: 'r1', runId: 'run-2', agentId: 'ada', inputs: [closed('task-1', 'wait-1')], at },
          },
        ])
        .when({ ...wake('m2', 'run-3'), input: closed('task-1', 'wait-1') })
        .then([]))

    it('a thread waits for a bounded number of tasks at once', () => {
      const many = Array.from({ length: MAX_AWAITED_TASKS }, (_, i) => awaited(`task-${i}`))
      rules
        .given([created, runQueued('run-1', 'm1'), ...many])
        .when(awaitTask('one-more'))
        .thenRefused('THREAD_WAITS_FULL')
    })

    it('only the thread’s agent waits in it, and only in a thread that exists', () => {
      rules.given([created]).when(awaitTask('task-1', 'bob')).thenRefused('THREAD_AGENT_MISMATCH', 'conflict')
      rules.given([]).when(awaitTask('task-1')).thenRefused('THREAD_NOT_FOUND', 'not_found')
    })
  })
})
