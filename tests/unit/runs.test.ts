import { describe, expect, it } from 'vitest'
import { fold } from '../../domain/decider.ts'
import { type RunCommand, type RunEvent, run } from '../../domain/runs.ts'
import { spec } from './spec.ts'

const at = '2026-12-02T10:00:00.000Z'
const later = '2026-12-02T10:01:00.000Z'
const runId = 'run-1'
const input = { trigger: { type: 'mention' as const, messageId: 'm1' }, text: '@ada what broke?' }
const queued: RunEvent = {
  type: 'run.queued',
  data: { runId, threadId: 't1', agentId: 'ada', roomId: 'r1', taskId: null, inputs: [input], at },
}
const claimed = (
  generation = 1,
  workerId = 'w1',
  leaseUntil = '2026-12-02T10:00:30.000Z',
  resumed = false,
  when = at,
): RunEvent => ({
  type: 'run.claimed',
  data: { runId, roomId: 'r1', threadId: 't1', generation, workerId, leaseUntil, resumed, at: when },
})
const w = (generation = 1, workerId = 'w1') => ({ runId, workerId, generation, at })
/** What a worker's command records of it: the lease's generation, not the worker. */
const f = (generation = 1) => ({ runId, roomId: 'r1', threadId: 't1', generation, at })
const item = (itemId: string, kind: 'message' | 'tool_call' | 'reasoning' | 'tool_output', extra: object = {}) => ({
  itemId,
  kind,
  content: '',
  toolCallId: null,
  tool: null,
  arguments: null,
  ...extra,
})
const added = (
  itemId: string,
  kind: 'message' | 'tool_call' | 'reasoning' | 'tool_output',
  sequence: number,
  groupId: string,
  extra: object = {},
): RunEvent => ({
  type: 'run.item_added',
  data: { ...f(), ...item(itemId, kind, extra), status: 'completed', sequence, groupId } as never,
})
const group = (groupId: string, kind: 'activity' | 'message', status: 'in_progress' | 'completed'): RunEvent => ({
  type: 'run.item_group_updated',
  data: { runId, roomId: 'r1', groupId, kind, status, at },
})
const call = { toolCallId: 'call_1', tool: 'delete_task', arguments: '{"taskId":"x"}' }

describe('runs', () => {
  const rules = spec(run)

  it('a run is queued once, from at least one input', () => {
    const queue: RunCommand = {
      type: 'queue',
      runId,
      threadId: 't1',
      agentId: 'ada',
      roomId: 'r1',
      taskId: null,
      inputs: [input],
      at,
    }
    rules.given([]).when(queue).then([queued])
    rules.given([queued]).when(queue).then([])
    rules
      .given([])
      .when({ ...queue, inputs: [] })
      .thenRefused('RUN_INPUT_REQUIRED')
  })

  it('one worker claims a queued run; another cannot while the lease holds, and may once it lapsed', () => {
    rules.given([queued]).when({ type: 'claim', runId, workerId: 'w1', leaseMs: 30_000, at }).then([claimed()])
    rules
      .given([queued, claimed()])
      .when({ type: 'claim', runId, workerId: 'w2', leaseMs: 30_000, at })
      .thenRefused('RUN_NOT_CLAIMABLE', 'conflict')
    rules
      .given([queued, claimed()])
      .when({ type: 'claim', runId, workerId: 'w2', leaseMs: 30_000, at: later })
      .then([claimed(2, 'w2', '2026-12-02T10:01:30.000Z', true, later)])
  })

  it('the holder renews its lease, even after it lapsed while nobody else claimed the run', () =>
    rules
      .given([queued, claimed()])
      .when({ type: 'renew', ...w(), leaseMs: 30_000, at: later })
      .then([{ type: 'run.lease_renewed', data: { ...f(), at: later, leaseUntil: '2026-12-02T10:01:30.000Z' } }]))

  it('a worker that lost its lease can record nothing more', () =>
    rules
      .given([queued, claimed(), claimed(2, 'w2', '2026-12-02T10:01:30.000Z', true)])
      .when({ type: 'add_item', ...w(1), item: item('i1', 'message', { content: 'hi' }), groupId: 'g1' })
      .thenRefused('RUN_LEASE_LOST', 'conflict'))

  it('items get a per-run sequence; consecutive activity shares a group, each message is a group of its own', () => {
    const history = [queued, claimed()]
    rules
      .given(history)
      .when({ type: 'add_item', ...w(), item: item('i1', 'reasoning', { content: 'look at logs' }), groupId: 'g1' })
      .then([group('g1', 'activity', 'in_progress'), added('i1', 'reasoning', 1, 'g1', { content: 'look at logs' })])
    const h2 = [
      ...history,
      group('g1', 'activity', 'in_progress'),
      added('i1', 'reasoning', 1, 'g1', { content: 'look at logs' }),
    ]
    rules
      .given(h2)
      .when({ type: 'add_item', ...w(), item: item('i2', 'tool_call', call), groupId: 'g2' })
      .then([added('i2', 'tool_call', 2, 'g1', call)])
    rules
      .given(h2)
      .when({ type: 'add_item', ...w(), item: item('i2', 'message', { content: 'Found it' }), groupId: 'g2' })
      .then([
        group('g1', 'activity', 'completed'),
        group('g2', 'message', 'in_progress'),
        added('i2', 'message', 2, 'g2', { content: 'Found it' }),
      ])
    // A repeated item (a worker retrying after a lost answer) records nothing.
    rules
      .given(h2)
      .when({ type: 'add_item', ...w(), item: item('i1', 'reasoning'), groupId: 'gx' })
      .then([])
  })

  it('a streamed item is updated in place with the next sequence until it is finished', () => {
    const streaming: RunEvent = {
      type: 'run.item_added',
      data: { ...f(), ...item('i1', 'message', { content: 'Hel' }), status: 'in_progress', sequence: 1, groupId: 'g1' } as never,
    }
    const history = [queued, claimed(), group('g1', 'message', 'in_progress'), streaming]
    rules
      .given(history)
      .when({ type: 'update_item', ...w(), itemId: 'i1', content: 'Hello', status: 'completed' })
      .then([{ type: 'run.item_updated', data: { ...f(), itemId: 'i1', sequence: 2, status: 'completed', content: 'Hello' } }])
    const done: RunEvent = {
      type: 'run.item_updated',
      data: { ...f(), itemId: 'i1', sequence: 2, status: 'completed', content: 'Hello' },
    }
    rules
      .given([...history, done])
      .when({ type: 'update_item', ...w(), itemId: 'i1', content: 'Hello!' })
      .thenRefused('RUN_ITEM_FINISHED', 'conflict')
    rules
      .given([...history, done])
      .when({ type: 'update_item', ...w(), itemId: 'i1', content: 'Hello' })
      .then([])
  })

  it('a risky call waits for a person, with nobody holding the run; approving puts it back to be claimed', () => {
    const history = [queued, claimed(), group('g1', 'activity', 'in_progress'), added('i1', 'tool_call', 1, 'g1', call)]
    const required: RunEvent = { type: 'run.action_required', data: { ...f(), itemId: 'i1', ...call } }
    rules
      .given(history)
      .when({ type: 'require_action', ...w(), itemId: 'i1' })
      .then([required])
    const waiting = [...history, required]
    expect(fold(run, waiting)).toMatchObject({ status: 'requires_action', lease: null })
    rules
      .given(waiting)
      .when({ type: 'add_item', ...w(), item: item('i2', 'message'), groupId: 'g2' })
      .thenRefused('RUN_LEASE_LOST', 'conflict')
    rules
      .given(waiting)
      .when({ type: 'claim', runId, workerId: 'w2', leaseMs: 1000, at })
      .thenRefused('RUN_NOT_CLAIMABLE', 'conflict')
    const decided: RunEvent = {
      type: 'run.action_decided',
      data: { runId, roomId: 'r1', toolCallId: 'call_1', decision: 'approve', by: 'bob', at },
    }
    rules
      .given(waiting)
      .when({ type: 'decide_action', runId, toolCallId: 'call_1', decision: 'approve', by: 'bob', at })
      .then([decided])
    rules
      .given([...waiting, decided])
      .when({ type: 'decide_action', runId, toolCallId: 'call_1', decision: 'reject', by: 'bob', at })
      .thenRefused('RUN_NO_ACTION_PENDING', 'conflict')
    rules
      .given([...waiting, decided])
      .when({ type: 'claim', runId, workerId: 'w2', leaseMs: 30_000, at })
      .then([claimed(2, 'w2', '2026-12-02T10:00:30.000Z', true)])
    rules
      .given([...waiting, decided, claimed(2, 'w2')])
      .when({ type: 'require_action', ...w(2, 'w2'), itemId: 'i1' })
      .thenRefused('RUN_ACTION_DECIDED', 'conflict')
  })

  it('only a tool call waits for approval', () =>
    rules
      .given([queued, claimed(), group('g1', 'message', 'in_progress'), added('i1', 'message', 1, 'g1')])
      .when({ type: 'require_action', ...w(), itemId: 'i1' })
      .thenRefused('RUN_ITEM_NOT_A_TOOL_CALL'))

  it('a run ends completed, failed, or incomplete saying which limit stopped it, closing its open group', () => {
    const history = [queued, claimed(), group('g1', 'message', 'in_progress'), added('i1', 'message', 1, 'g1')]
    rules
      .given(history)
      .when({ type: 'complete', ...w() })
      .then([group('g1', 'message', 'completed'), { type: 'run.completed', data: f() }])
    rules
      .given(history)
      .when({ type: 'stop_incomplete', ...w(), reason: 'max_steps', detail: '25 steps' })
      .then([
        group('g1', 'message', 'completed'),
        { type: 'run.incomplete', data: { ...f(), reason: 'max_steps', detail: '25 steps' } },
      ])
    rules
      .given([queued, claimed()])
      .when({ type: 'fail', ...w(), code: 'NO_MODEL', message: 'no model is configured' })
      .then([{ type: 'run.failed', data: { ...f(), code: 'NO_MODEL', message: 'no model is configured' } }])
  })

  it('cancelling a finished run is a conflict; a queued or running one is cancelled', () => {
    const cancelled: RunEvent = { type: 'run.cancelled', data: { runId, roomId: 'r1', by: 'bob', at } }
    rules.given([queued]).when({ type: 'cancel', runId, by: 'bob', at }).then([cancelled])
    rules.given([queued, claimed()]).when({ type: 'cancel', runId, by: 'bob', at }).then([cancelled])
    rules
      .given([queued, claimed(), { type: 'run.completed', data: f() }])
      .when({ type: 'cancel', runId, by: 'bob', at })
      .thenRefused('RUN_FINISHED', 'conflict')
    rules
      .given([queued, cancelled])
      .when({ type: 'add_item', ...w(), item: item('i1', 'message'), groupId: 'g' })
      .thenRefused('RUN_FINISHED', 'conflict')
  })

  it('an unknown run is 404', () =>
    rules.given([]).when({ type: 'cancel', runId, by: 'bob', at }).thenRefused('RUN_NOT_FOUND', 'not_found'))
})
