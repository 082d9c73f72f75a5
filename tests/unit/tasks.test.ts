import { describe, expect, it } from 'vitest'
import { fold } from '../../domain/decider.ts'
import type { RoomState } from '../../domain/rooms.ts'
import {
  type Candidate,
  effectiveStatus,
  type LiveTask,
  TASK_STATUSES,
  TASK_TRANSITIONS,
  type TaskActor,
  type TaskCommand,
  type TaskEvent,
  type TaskState,
  task,
} from '../../domain/tasks.ts'
import { refusal, spec } from './spec.ts'

const at = '2026-12-02T10:00:00.000Z'
const taskId = 'task-1'

const roomOf = (
  members: Record<string, 'user' | 'agent'>,
  over: Partial<Extract<RoomState, { exists: true }>> = {},
): RoomState => ({
  exists: true,
  name: 'Eng',
  description: '',
  visibility: 'private',
  kind: 'room',
  createdBy: 'alice',
  archived: false,
  members: new Map(Object.entries(members)),
  rangeDeleted: new Set(),
  ...over,
})
/** A private room of alice, bob and the bot agent; a public one of alice alone. */
const eng = roomOf({ alice: 'user', bob: 'user', bot: 'agent', gina: 'user' })
const lobby = roomOf({ alice: 'user' }, { visibility: 'public', name: 'Lobby' })

const person = (userId: string, role: TaskActor['role'] = 'member'): TaskActor => ({ userId, role, type: 'user' })
const alice = person('alice')
const bob = person('bob')
const carol = person('carol')
const adam = person('adam', 'admin')
const bot: TaskActor = { userId: 'bot', role: 'member', type: 'agent' }

const candidate = (id: string, over: Partial<NonNullable<Candidate>> = {}): Candidate => ({
  id,
  type: 'user',
  role: 'member',
  active: true,
  ...over,
})

const created = (over: Partial<Extract<TaskEvent, { type: 'task.created' }>['data']> = {}): TaskEvent => ({
  type: 'task.created',
  data: {
    taskId,
    title: 'Ship it',
    description: '',
    roomId: 'eng',
    parentId: null,
    reporterId: 'alice',
    assignee: null,
    reviewGates: { plan: false, result: false },
    at,
    ...over,
  },
})
const statusChanged = (from: string, to: string, by = 'alice'): TaskEvent =>
  ({ type: 'task.status_changed', data: { taskId, from, to, by, at } }) as TaskEvent
const assignedBot = created({ assignee: { id: 'bot', type: 'agent' }, reviewGates: { plan: true, result: true } })
const submitted = (gate: 'plan' | 'result', by = 'bot'): TaskEvent => ({
  type: 'task.review_submitted',
  data: { taskId, gate, text: `the ${gate}`, by, at },
})
const decided = (gate: 'plan' | 'result', decision: 'approve' | 'reject', by = 'alice'): TaskEvent => ({
  type: 'task.review_decided',
  data: { taskId, gate, decision, comment: null, by, at },
})

const create = (over: Partial<Extract<TaskCommand, { type: 'create' }>> = {}): TaskCommand => ({
  type: 'create',
  taskId,
  title: '  Ship it ',
  description: '',
  roomId: 'eng',
  parent: null,
  assignee: null,
  reviewGates: { plan: false, result: false },
  actor: alice,
  room: eng,
  at,
  ...over,
})
const change = (to: string, over: Partial<Extract<TaskCommand, { type: 'change_status' }>> = {}): TaskCommand =>
  ({ type: 'change_status', taskId, to, children: [], parent: null, actor: alice, room: eng, at, ...over }) as TaskCommand
const live = (events: TaskEvent[]) => fold(task, events) as LiveTask

describe('tasks: creating', () => {
  const rules = spec(task)

  it('a reader of the room creates a task it lives in; the caller reports it; the title is trimmed', () =>
    rules.given([]).when(create()).then([created()]))

  it('a room the caller cannot read is not there; an archived room takes no task; a task is created once', () => {
    rules
      .given([])
      .when(create({ actor: carol }))
      .thenRefused('ROOM_NOT_FOUND', 'not_found')
    rules
      .given([])
      .when(create({ room: roomOf({ alice: 'user' }, { archived: true }) }))
      .thenRefused('ROOM_ARCHIVED')
    rules.given([created()]).when(create()).thenRefused('TASK_EXISTS', 'conflict')
    rules
      .given([])
      .when(create({ title: '   ' }))
      .thenRefused('TASK_TITLE_INVALID')
  })

  it('anyone but a guest who reads a public room files a task there without joining it', () => {
    rules
      .given([])
      .when(create({ actor: carol, room: lobby, roomId: 'lobby' }))
      .then([created({ reporterId: 'carol', roomId: 'lobby' })])
    rules
      .given([])
      .when(create({ actor: person('gina', 'guest'), room: lobby }))
      .thenRefused('ROOM_NOT_FOUND', 'not_found')
  })

  it('an assignee is an active user who reads the room (a guest as its member), an agent a member of it: 422 otherwise', () => {
    const assign = (id: string, c: Candidate, room = eng) =>
      create({ room, assignee: { ref: { id, type: c?.type ?? 'user' }, candidate: c } })
    rules.given([]).when(assign('ghost', null)).thenRefused('TASK_ASSIGNEE_UNKNOWN')
    rules
      .given([])
      .when(assign('bob', candidate('bob', { active: false })))
      .thenRefused('TASK_ASSIGNEE_DEACTIVATED')
    rules
      .given([])
      .when(assign('gina', candidate('gina', { role: 'guest' }), lobby))
      .thenRefused('TASK_ASSIGNEE_NO_ACCESS')
    rules
      .given([])
      .when(assign('carol', candidate('carol')))
      .thenRefused('TASK_ASSIGNEE_NO_ACCESS')
    rules
      .given([])
      .when(assign('other-bot', candidate('other-bot', { type: 'agent' })))
      .thenRefused('TASK_ASSIGNEE_NOT_IN_ROOM')
    // A guest member of the room, an agent in it, anyone in a public room.
    rules
      .given([])
      .when(assign('gina', candidate('gina', { role: 'guest' })))
      .then([created({ assignee: { id: 'gina', type: 'user' } })])
    rules
      .given([])
      .when(assign('bot', candidate('bot', { type: 'agent' })))
      .then([created({ assignee: { id: 'bot', type: 'agent' } })])
    rules
      .given([])
      .when(assign('carol', candidate('carol'), lobby))
      .then([created({ assignee: { id: 'carol', type: 'user' } })])
  })
})

describe('tasks: stored status', () => {
  const rules = spec(task)

  it('moves only along the allowed transitions; any other is 422 naming the allowed targets', () => {
    for (const from of TASK_STATUSES) {
      const history: TaskEvent[] =
        from === 'open'
          ? [created()]
          : from === 'done' || from === 'cancelled'
            ? [created(), statusChanged('open', from)]
            : [created(), statusChanged('open', from)]
      for (const to of TASK_STATUSES) {
        if (to === from) {
          rules.given(history).when(change(to)).then([])
        } else if (TASK_TRANSITIONS[from].includes(to)) {
          rules
            .given(history)
            .when(change(to))
            .then([statusChanged(from, to)])
        } else {
          rules.given(history).when(change(to)).thenRefused('TASK_TRANSITION_INVALID')
          const error = refusal(() => task.decide(change(to), fold(task, history)))
          expect(error.message).toContain(`allowed: ${TASK_TRANSITIONS[from].join(', ')}`)
        }
      }
    }
    expect(TASK_TRANSITIONS.done).toEqual(['open'])
    expect(TASK_TRANSITIONS.cancelled).toEqual(['open'])
  })

  it('its people, its room’s members and admins change it; a reader of a public room does not; others do not see it', () => {
    const inLobby = [created({ roomId: 'lobby' })]
    rules
      .given(inLobby)
      .when(change('in_progress', { actor: carol, room: lobby }))
      .thenRefused('FORBIDDEN', 'forbidden')
    rules
      .given(inLobby)
      .when(change('in_progress', { actor: adam, room: lobby }))
      .then([statusChanged('open', 'in_progress', 'adam')])
    rules
      .given([created()])
      .when(change('in_progress', { actor: bob }))
      .then([statusChanged('open', 'in_progress', 'bob')])
    rules
      .given([created()])
      .when(change('in_progress', { actor: carol }))
      .thenRefused('TASK_NOT_FOUND', 'not_found')
    // The assignee keeps it when they cannot read the room.
    rules
      .given([created({ assignee: { id: 'carol', type: 'user' } })])
      .when(change('in_progress', { actor: carol }))
      .then([statusChanged('open', 'in_progress', 'carol')])
  })

  it('a deleted task, or one never created, is not there', () => {
    rules.given([]).when(change('done')).thenRefused('TASK_NOT_FOUND', 'not_found')
    rules
      .given([created(), { type: 'task.deleted', data: { taskId, by: 'alice', at } }])
      .when(change('done'))
      .thenRefused('TASK_NOT_FOUND', 'not_found')
  })

  it('several changes are decided as one: a refused one refuses them all', () => {
    const patch = (changes: Extract<TaskCommand, { type: 'patch' }>['changes']): TaskCommand => ({
      type: 'patch',
      taskId,
      changes,
    })
    const rename = { type: 'update' as const, taskId, title: 'Renamed', actor: alice, room: eng, at }
    rules
      .given([created()])
      .when(patch([rename, change('in_progress') as never]))
      .then([{ type: 'task.updated', data: { taskId, title: 'Renamed', at } }, statusChanged('open', 'in_progress')])
    rules
      .given([created(), statusChanged('open', 'blocked')])
      .when(patch([rename, change('done') as never]))
      .thenRefused('TASK_TRANSITION_INVALID')
  })
})

describe('tasks: subtasks', () => {
  const rules = spec(task)
  const open: TaskState = live([created({ taskId: 'child' })])
  const done: TaskState = live([created({ taskId: 'child' }), statusChanged('open', 'done')])
  const cancelled: TaskState = live([created({ taskId: 'child' }), statusChanged('open', 'cancelled')])
  const deleted: TaskState = live([
    created({ taskId: 'child' }),
    { type: 'task.deleted', data: { taskId: 'child', by: 'a', at } },
  ])
  const listed: TaskEvent = { type: 'task.subtask_added', data: { taskId, subtaskId: 'child', at } }

  it('a parent is done once every subtask is done or cancelled (deleted and never-created ones do not count)', () => {
    rules
      .given([created(), listed])
      .when(change('done', { children: [done, open] }))
      .thenRefused('TASK_SUBTASKS_OPEN')
    rules
      .given([created(), listed])
      .when(change('done', { children: [done, cancelled, deleted, { exists: false }] }))
      .then([statusChanged('open', 'done')])
  })

  it('a subtask of a done parent does not reopen', () => {
    const parentDone = live([created({ taskId: 'parent' }), statusChanged('open', 'done')])
    const child = [created({ parentId: 'parent' }), statusChanged('open', 'done')]
    rules
      .given(child)
      .when(change('open', { parent: parentDone }))
      .thenRefused('TASK_PARENT_CLOSED')
    rules
      .given(child)
      .when(change('open', { parent: live([created({ taskId: 'parent' })]) }))
      .then([statusChanged('done', 'open')])
  })

  it('a parent lists a subtask once, while it is not closed, up to its bound', () => {
    const add: TaskCommand = { type: 'add_subtask', taskId, subtaskId: 'child', actor: bob, room: eng, at }
    rules.given([created()]).when(add).then([listed])
    rules.given([created(), listed]).when(add).then([])
    rules
      .given([created(), statusChanged('open', 'cancelled')])
      .when(add)
      .thenRefused('TASK_PARENT_CLOSED')
  })

  it('a subtask is created under a parent that lists it and is not closed', () => {
    const parent = (events: TaskEvent[]) => ({ taskId: 'parent', task: fold(task, events), room: eng })
    const parentCreated = created({ taskId: 'parent' })
    const listing: TaskEvent = { type: 'task.subtask_added', data: { taskId: 'parent', subtaskId: taskId, at } }
    rules
      .given([])
      .when(create({ parent: parent([parentCreated, listing]) }))
      .then([created({ parentId: 'parent' })])
    rules
      .given([])
      .when(create({ parent: parent([parentCreated]) }))
      .thenRefused('TASK_PARENT_NOT_LISTED')
    rules
      .given([])
      .when(create({ parent: parent([parentCreated, listing, { ...statusChanged('open', 'done') }]) }))
      .thenRefused('TASK_PARENT_CLOSED')
    rules
      .given([])
      .when(create({ parent: parent([]) }))
      .thenRefused('TASK_PARENT_NOT_FOUND', 'not_found')
  })
})

describe('tasks: depends-on links', () => {
  const rules = spec(task)
  const other = { taskId: 'task-2', task: fold(task, [created({ taskId: 'task-2', roomId: 'lobby' })]), room: lobby }
  const link = (over: Partial<Extract<TaskCommand, { type: 'add_dependency' }>> = {}): TaskCommand => ({
    type: 'add_dependency',
    taskId,
    dependsOn: other,
    walk: 'clear',
    actor: alice,
    room: eng,
    at,
    ...over,
  })
  const linked: TaskEvent = { type: 'task.dependency_added', data: { taskId, dependsOnId: 'task-2', by: 'alice', at } }

  it('links to a task of any room the caller reads, once', () => {
    rules.given([created()]).when(link()).then([linked])
    rules.given([created(), linked]).when(link()).then([])
  })

  it('a link closing a cycle, or to itself, is 422; a walk past its bound refuses too', () => {
    rules
      .given([created()])
      .when(link({ walk: 'cycle' }))
      .thenRefused('TASK_DEPENDENCY_CYCLE')
    rules
      .given([created()])
      .when(link({ dependsOn: { taskId, task: fold(task, [created()]), room: eng } }))
      .thenRefused('TASK_DEPENDENCY_CYCLE')
    rules
      .given([created()])
      .when(link({ walk: 'too_large' }))
      .thenRefused('TASK_DEPENDENCY_GRAPH_TOO_LARGE')
  })

  it('a task the caller cannot read (another room, another org: empty) is not found', () => {
    rules
      .given([created()])
      .when(
        link({
          dependsOn: {
            taskId: 'task-2',
            task: fold(task, [created({ taskId: 'task-2', reporterId: 'zed' })]),
            room: roomOf({ zed: 'user' }),
          },
        }),
      )
      .thenRefused('TASK_DEPENDENCY_NOT_FOUND', 'not_found')
    rules
      .given([created()])
      .when(link({ dependsOn: { taskId: 'theirs', task: { exists: false }, room: { exists: false } } }))
      .thenRefused('TASK_DEPENDENCY_NOT_FOUND', 'not_found')
  })
})

describe('tasks: review gates', () => {
  const rules = spec(task)
  const submit = (gate: 'plan' | 'result', actor = bot): TaskCommand => ({
    type: 'submit_review',
    taskId,
    gate,
    text: ` the ${gate} `,
    actor,
    room: eng,
    at,
  })
  const decide = (
    gate: 'plan' | 'result',
    decision: 'approve' | 'reject',
    actor = alice,
    children: TaskState[] = [],
  ): TaskCommand => ({
    type: 'decide_review',
    taskId,
    gate,
    decision,
    comment: null,
    children,
    actor,
    room: eng,
    at,
  })

  it('work starts once a person approved the plan the assignee submitted', () => {
    rules
      .given([assignedBot])
      .when(change('in_progress', { actor: bot }))
      .thenRefused('TASK_PLAN_NOT_APPROVED')
    rules
      .given([assignedBot])
      .when(submit('plan'))
      .then([submitted('plan')])
    rules
      .given([assignedBot, submitted('plan'), decided('plan', 'reject')])
      .when(change('in_progress', { actor: bot }))
      .thenRefused('TASK_PLAN_NOT_APPROVED')
    rules
      .given([assignedBot, submitted('plan'), decided('plan', 'approve')])
      .when(change('in_progress', { actor: bot }))
      .then([statusChanged('open', 'in_progress', 'bot')])
  })

  it('a rejected plan is submitted again; an approved one is not', () => {
    rules
      .given([assignedBot, submitted('plan'), decided('plan', 'reject')])
      .when(submit('plan'))
      .then([submitted('plan')])
    rules
      .given([assignedBot, submitted('plan'), decided('plan', 'approve')])
      .when(submit('plan'))
      .thenRefused('TASK_GATE_APPROVED')
  })

  it('only the assignee or an assistant submits, and only for a gate the task has', () => {
    rules.given([assignedBot]).when(submit('plan', bob)).thenRefused('FORBIDDEN', 'forbidden')
    rules
      .given([created({ assignee: { id: 'bot', type: 'agent' } })])
      .when(submit('plan'))
      .thenRefused('TASK_GATE_NOT_REQUIRED')
  })

  it('only a person approves, not the one who submitted, and only what waits for a decision', () => {
    const waiting = [assignedBot, submitted('plan')]
    rules
      .given(waiting)
      .when(decide('plan', 'approve', bot))
      .thenRefused('FORBIDDEN', 'forbidden')
    rules
      .given([
        created({ assignee: { id: 'alice', type: 'user' }, reviewGates: { plan: true, result: false } }),
        submitted('plan', 'alice'),
      ])
      .when(decide('plan', 'approve', alice))
      .thenRefused('FORBIDDEN', 'forbidden')
    // A guest (gina, in the room) is an outsider: a person of the org judges an agent's work.
    rules
      .given(waiting)
      .when(decide('plan', 'approve', person('gina', 'guest')))
      .thenRefused('FORBIDDEN', 'forbidden')
    rules.given([assignedBot]).when(decide('plan', 'approve')).thenRefused('TASK_NOTHING_TO_REVIEW')
    rules
      .given(waiting)
      .when(decide('plan', 'approve', carol))
      .thenRefused('TASK_NOT_FOUND', 'not_found')
    rules
      .given(waiting)
      .when(decide('plan', 'approve', bob))
      .then([decided('plan', 'approve', 'bob')])
  })

  it('the task is done when a person approves its result, which is submitted while in progress', () => {
    const started = [assignedBot, submitted('plan'), decided('plan', 'approve'), statusChanged('open', 'in_progress', 'bot')]
    rules
      .given(started)
      .when(change('done', { actor: bot }))
      .thenRefused('TASK_RESULT_NOT_APPROVED')
    rules.given(started.slice(0, 3)).when(submit('result')).thenRefused('TASK_NOT_IN_PROGRESS')
    rules
      .given(started)
      .when(submit('result'))
      .then([submitted('result')])
    rules
      .given([...started, submitted('result')])
      .when(decide('result', 'approve'))
      .then([decided('result', 'approve'), statusChanged('in_progress', 'done')])
    rules
      .given([...started, submitted('result')])
      .when(decide('result', 'reject'))
      .then([decided('result', 'reject')])
    rules
      .given([...started, submitted('result')])
      .when(decide('result', 'approve', alice, [live([created({ taskId: 'child' })])]))
      .thenRefused('TASK_SUBTASKS_OPEN')
  })

  it('a reopened task’s result is reviewed again', () => {
    const closed = [
      assignedBot,
      submitted('plan'),
      decided('plan', 'approve'),
      statusChanged('open', 'in_progress'),
      submitted('result'),
      decided('result', 'approve'),
      statusChanged('in_progress', 'done'),
      statusChanged('done', 'open'),
    ]
    expect(live(closed).gates).toEqual({
      plan: { required: true, state: 'approved', text: 'the plan', submittedBy: 'bot' },
      result: { required: true, state: 'not_submitted', text: null, submittedBy: null },
    })
  })

  it('people change the gates, agents do not', () => {
    const gates = (actor: TaskActor): TaskCommand => ({ type: 'set_review_gates', taskId, plan: false, actor, room: eng, at })
    rules.given([assignedBot]).when(gates(bot)).thenRefused('FORBIDDEN', 'forbidden')
    rules
      .given([assignedBot])
      .when(gates(bob))
      .then([{ type: 'task.review_gates_changed', data: { taskId, plan: false, result: true, by: 'bob', at } }])
  })
})

describe('tasks: people', () => {
  const rules = spec(task)
  const forBob = created({ assignee: { id: 'bob', type: 'user' } })
  const addAssistant = (agentId: string, c: Candidate): TaskCommand => ({
    type: 'add_assistant',
    taskId,
    agentId,
    candidate: c,
    actor: alice,
    room: eng,
    at,
  })
  const assistantAdded: TaskEvent = { type: 'task.assistant_added', data: { taskId, agentId: 'bot', by: 'alice', at } }

  it('an agent in the room assists a person assigned to the task', () => {
    rules
      .given([forBob])
      .when(addAssistant('bot', candidate('bot', { type: 'agent' })))
      .then([assistantAdded])
    rules
      .given([assignedBot])
      .when(addAssistant('bot', candidate('bot', { type: 'agent' })))
      .thenRefused('TASK_ASSISTANT_NEEDS_PERSON')
    rules
      .given([forBob])
      .when(addAssistant('x', candidate('x', { type: 'agent' })))
      .thenRefused('TASK_ASSISTANT_NOT_IN_ROOM')
    rules
      .given([forBob])
      .when(addAssistant('carol', candidate('carol')))
      .thenRefused('TASK_ASSISTANT_NOT_AGENT')
  })

  it('an agent whose access does not let the actor use it in the room is put to work neither as assistant nor assignee', () => {
    rules
      .given([forBob])
      .when(addAssistant('bot', candidate('bot', { type: 'agent', usable: false })))
      .thenRefused('TASK_AGENT_ACCESS', 'forbidden')
    rules
      .given([forBob])
      .when(addAssistant('bot', candidate('bot', { type: 'agent', usable: true })))
      .then([assistantAdded])
    rules
      .given([])
      .when(
        create({
          room: eng,
          assignee: { ref: { id: 'bot', type: 'agent' }, candidate: candidate('bot', { type: 'agent', usable: false }) },
        }),
      )
      .thenRefused('TASK_AGENT_ACCESS', 'forbidden')
  })

  it('an agent (or nobody) taking the task over leaves no one to assist: the assistants go', () =>
    rules
      .given([forBob, assistantAdded])
      .when({
        type: 'assign',
        taskId,
        assignee: { ref: { id: 'bot', type: 'agent' }, candidate: candidate('bot', { type: 'agent' }) },
        actor: alice,
        room: eng,
        at,
      })
      .then([
        { type: 'task.assigned', data: { taskId, assignee: { id: 'bot', type: 'agent' }, by: 'alice', at } },
        { type: 'task.assistant_removed', data: { taskId, agentId: 'bot', by: 'alice', at } },
      ]))

  it('a reader watches a task; someone else is put on it by who may change it, if they can read its room', () => {
    const watch = (userId: string, actor: TaskActor, c: Candidate = null): TaskCommand => ({
      type: 'watch',
      taskId,
      userId,
      candidate: c,
      actor,
      room: lobby,
      at,
    })
    const inLobby = [created({ roomId: 'lobby' })]
    rules
      .given(inLobby)
      .when(watch('carol', carol))
      .then([{ type: 'task.watcher_added', data: { taskId, userId: 'carol', by: 'carol', at } }])
    rules
      .given(inLobby)
      .when(watch('dan', carol, candidate('dan')))
      .thenRefused('FORBIDDEN', 'forbidden')
    rules
      .given(inLobby)
      .when(watch('gina', alice, candidate('gina', { role: 'guest' })))
      .thenRefused('TASK_WATCHER_NO_ACCESS')
    rules
      .given(inLobby)
      .when(watch('dan', alice, candidate('dan')))
      .then([{ type: 'task.watcher_added', data: { taskId, userId: 'dan', by: 'alice', at } }])
  })
})

describe('tasks: deleting', () => {
  const rules = spec(task)
  const del = (actor: TaskActor, children: TaskState[] = [], room = eng): TaskCommand => ({
    type: 'delete',
    taskId,
    children,
    actor,
    room,
    at,
  })

  it('admins and the reporter delete a task; nobody else; an admin outside a private room does not see its tasks', () => {
    rules.given([created()]).when(del(bob)).thenRefused('FORBIDDEN', 'forbidden')
    rules
      .given([created()])
      .when(del(alice))
      .then([{ type: 'task.deleted', data: { taskId, by: 'alice', at } }])
    rules
      .given([created({ roomId: 'lobby' })])
      .when(del(adam, [], lobby))
      .then([{ type: 'task.deleted', data: { taskId, by: 'adam', at } }])
    rules.given([created()]).when(del(adam)).thenRefused('TASK_NOT_FOUND', 'not_found')
  })

  it('a task with subtasks is deleted after them', () =>
    rules
      .given([created()])
      .when(del(alice, [live([created({ taskId: 'child' }), statusChanged('open', 'done')])]))
      .thenRefused('TASK_HAS_SUBTASKS'))
})

describe('effective status', () => {
  const base = { status: 'open' as const, limitReached: false, gatePending: false, openDependencies: 0 }
  it('done first, then a reached limit, then approval, then dependencies, then working', () => {
    expect(effectiveStatus({ ...base, status: 'cancelled', limitReached: true, gatePending: true })).toBe('done')
    expect(effectiveStatus({ ...base, status: 'in_progress', limitReached: true, gatePending: true })).toBe('limit_reached')
    expect(effectiveStatus({ ...base, gatePending: true, openDependencies: 2 })).toBe('waiting_for_approval')
    expect(effectiveStatus({ ...base, status: 'in_progress', openDependencies: 1 })).toBe('waiting_for_dependencies')
    expect(effectiveStatus({ ...base, status: 'in_progress' })).toBe('working')
    expect(effectiveStatus({ ...base, status: 'blocked' })).toBe('blocked')
    expect(effectiveStatus(base)).toBe('open')
  })
})
