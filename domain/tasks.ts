import { type Decider, DomainError, type DomainEvent } from './decider.ts'
import { type ActorRole, canRead, type RoomState } from './rooms.ts'

/*
 * A task (`task-<id>`): a piece of work that lives in a room, with its people (reporter, assignee, agent
 * assistants, watchers), a stored status, review gates, subtasks and depends-on links.
 *
 * What a decision needs from other streams (the room, the assignee as the org knows them, the parent, the
 * children, the tasks a new dependency reaches) is read by the command layer through the pipeline's `read` and
 * passed in: the append is then conditioned on every stream read, so a decision is never taken on a state that
 * moved before it was recorded.
 *
 * "A parent cannot be done while a child is open" is kept without a second append per status change: the parent
 * stream lists its children (`task.subtask_added`, appended before the child's own `task.created`, which is
 * conditioned on the parent), a parent's close reads every listed child, and a child's reopen reads its parent.
 * Whichever of two racing decisions commits first moves a stream the other read, so the other is decided again
 * on fresh state and refused:
 *   - parent closing (reads child C at revision r) vs. C reopening (reads the parent at revision p): the first to
 *     commit moves the stream the other is conditioned on;
 *   - parent closing vs. a new child being created: the new child is listed on the parent first (which moves
 *     the parent, so a close decided before that fails its append and reads the new child), and the child's
 *     creation is conditioned on the parent's revision, so a close that commits in between refuses it.
 */

export const TASK_TITLE_MAX = 200
export const TASK_DESCRIPTION_MAX = 20_000
export const TASK_REVIEW_TEXT_MAX = 20_000
export const TASK_COMMENT_MAX = 4_000
export const TASK_SUBTASKS_MAX = 200
export const TASK_DEPENDENCIES_MAX = 50
export const TASK_ASSISTANTS_MAX = 10
export const TASK_WATCHERS_MAX = 200

export type TaskStatus = 'open' | 'in_progress' | 'blocked' | 'done' | 'cancelled'
export const TASK_STATUSES = ['open', 'in_progress', 'blocked', 'done', 'cancelled'] as const

/** Where a stored status may go next: done and cancelled only reopen. */
export const TASK_TRANSITIONS: { readonly [S in TaskStatus]: readonly TaskStatus[] } = {
  open: ['in_progress', 'blocked', 'done', 'cancelled'],
  in_progress: ['open', 'blocked', 'done', 'cancelled'],
  // Work that is blocked is unblocked (back to open or in progress) before it is done.
  blocked: ['open', 'in_progress', 'cancelled'],
  done: ['open'],
  cancelled: ['open'],
}

export const isClosed = (s: TaskStatus): boolean => s === 'done' || s === 'cancelled'

export type Gate = 'plan' | 'result'
export type GateState = 'not_submitted' | 'pending' | 'approved' | 'rejected'
export type ReviewGates = { readonly plan: boolean; readonly result: boolean }

/** What the effective status is, for display: done (done or cancelled) first, then a reached limit, then waits. */
export type EffectiveStatus =
  | 'done'
  | 'limit_reached'
  | 'waiting_for_approval'
  | 'waiting_for_dependencies'
  | 'working'
  | 'open'
  | 'blocked'

export function effectiveStatus(t: {
  status: TaskStatus
  limitReached: boolean
  gatePending: boolean
  openDependencies: number
}): EffectiveStatus {
  if (isClosed(t.status)) return 'done'
  if (t.limitReached) return 'limit_reached'
  if (t.gatePending) return 'waiting_for_approval'
  if (t.openDependencies > 0) return 'waiting_for_dependencies'
  if (t.status === 'in_progress') return 'working'
  return t.status === 'blocked' ? 'blocked' : 'open'
}

export type PersonType = 'user' | 'agent'
export type PersonRef = { readonly id: string; readonly type: PersonType }

/** Who acts: their user id, org role, and whether they are a person or an agent. */
export type TaskActor = { readonly userId: string; readonly role: ActorRole; readonly type: PersonType }

/**
 * Someone a command names (an assignee, an assistant, a watcher) as the org stream knows them; `null` when the
 * org has no such user (or the reference names a person as an agent, or the other way round).
 */
export type Candidate = {
  readonly id: string
  readonly type: PersonType
  readonly role: ActorRole
  readonly active: boolean
  /**
   * An agent put to work (assignee, assistant): whether its access lets the actor use it in the task's room
   * (domain/agents.ts mayUseAgent), as for a mention. Unset: not a question here (a watcher).
   */
  readonly usable?: boolean
} | null

export type TaskCreated = {
  taskId: string
  title: string
  description: string
  roomId: string
  parentId: string | null
  reporterId: string
  assignee: PersonRef | null
  reviewGates: ReviewGates
  at: string
}

export type TaskEvent =
  | DomainEvent<'task.created', TaskCreated>
  | DomainEvent<'task.updated', { taskId: string; title?: string; description?: string; at: string }>
  | DomainEvent<'task.assigned', { taskId: string; assignee: PersonRef | null; by: string; at: string }>
  | DomainEvent<'task.status_changed', { taskId: string; from: TaskStatus; to: TaskStatus; by: string; at: string }>
  | DomainEvent<'task.review_gates_changed', { taskId: string; plan: boolean; result: boolean; by: string; at: string }>
  | DomainEvent<'task.review_submitted', { taskId: string; gate: Gate; text: string; by: string; at: string }>
  | DomainEvent<
      'task.review_decided',
      { taskId: string; gate: Gate; decision: 'approve' | 'reject'; comment: string | null; by: string; at: string }
    >
  | DomainEvent<'task.assistant_added', { taskId: string; agentId: string; by: string; at: string }>
  | DomainEvent<'task.assistant_removed', { taskId: string; agentId: string; by: string; at: string }>
  | DomainEvent<'task.watcher_added', { taskId: string; userId: string; by: string; at: string }>
  | DomainEvent<'task.watcher_removed', { taskId: string; userId: string; by: string; at: string }>
  | DomainEvent<'task.subtask_added', { taskId: string; subtaskId: string; at: string }>
  | DomainEvent<'task.dependency_added', { taskId: string; dependsOnId: string; by: string; at: string }>
  | DomainEvent<'task.dependency_removed', { taskId: string; dependsOnId: string; by: string; at: string }>
  | DomainEvent<'task.deleted', { taskId: string; by: string; at: string }>

export type GateView = {
  readonly required: boolean
  readonly state: GateState
  readonly text: string | null
  readonly submittedBy: string | null
}

export type LiveTask = {
  readonly exists: true
  readonly deleted: boolean
  readonly title: string
  readonly description: string
  readonly roomId: string
  readonly parentId: string | null
  readonly reporterId: string
  readonly assignee: PersonRef | null
  readonly status: TaskStatus
  readonly assistants: ReadonlySet<string>
  readonly watchers: ReadonlySet<string>
  readonly gates: { readonly plan: GateView; readonly result: GateView }
  /** Children in the order they were added; some may never have been created or may be deleted since. */
  readonly subtasks: readonly string[]
  readonly dependsOn: ReadonlySet<string>
}

export type TaskState = { readonly exists: false } | LiveTask

/** A task with its room, as a command that reads it (a parent, a dependency, a child) sees it. */
export type TaskInRoom = { readonly taskId: string; readonly task: TaskState; readonly room: RoomState }

type Common = { readonly taskId: string; readonly actor: TaskActor; readonly room: RoomState; readonly at: string }

export type TaskCommand =
  | (Common & {
      type: 'create'
      title: string
      description: string
      roomId: string
      /** The parent, which must already list this task (add_subtask, decided first on the parent's stream). */
      parent: TaskInRoom | null
      assignee: { readonly ref: PersonRef; readonly candidate: Candidate } | null
      reviewGates: ReviewGates
    })
  | (Common & { type: 'update'; title?: string; description?: string })
  | (Common & { type: 'assign'; assignee: { readonly ref: PersonRef; readonly candidate: Candidate } | null })
  | (Common & {
      type: 'change_status'
      to: TaskStatus
      /** Every listed child as it stands (read for a close); the parent (read for a reopen). */
      children: readonly TaskState[]
      parent: TaskState | null
    })
  | (Common & { type: 'set_review_gates'; plan?: boolean; result?: boolean })
  | (Common & { type: 'submit_review'; gate: Gate; text: string })
  | (Common & {
      type: 'decide_review'
      gate: Gate
      decision: 'approve' | 'reject'
      comment: string | null
      children: readonly TaskState[]
    })
  | (Common & { type: 'add_assistant'; agentId: string; candidate: Candidate })
  | (Common & { type: 'remove_assistant'; agentId: string })
  | (Common & { type: 'watch'; userId: string; candidate: Candidate })
  | (Common & { type: 'unwatch'; userId: string })
  | (Common & { type: 'add_subtask'; subtaskId: string })
  | (Common & {
      type: 'add_dependency'
      dependsOn: TaskInRoom
      /** What a walk from the dependency along depends-on links found: this task (a cycle), or the bound. */
      walk: 'clear' | 'cycle' | 'too_large'
    })
  | (Common & { type: 'remove_dependency'; dependsOnId: string })
  | (Common & { type: 'delete'; children: readonly TaskState[] })
  /** Several changes decided as one (a PATCH): each on the state the previous ones leave, all recorded or none. */
  | { type: 'patch'; taskId: string; changes: readonly Exclude<TaskCommand, { type: 'patch' | 'create' }>[] }

const isAdmin = (role: ActorRole) => role === 'owner' || role === 'admin'

/** Whether someone works on or follows the task: they may read it whatever room it lives in. */
export const isInvolved = (t: LiveTask, userId: string): boolean =>
  t.reporterId === userId || t.assignee?.id === userId || t.assistants.has(userId) || t.watchers.has(userId)

/**
 * Who may read a task (REST and realtime alike): whoever may read its room, and the people on it (reporter,
 * assignee, assistants, watchers), who keep seeing the task if they lose the room.
 */
export const canReadTask = (t: TaskState, room: RoomState, userId: string, role: ActorRole): boolean =>
  t.exists && !t.deleted && (canRead(room, userId, role) || isInvolved(t, userId))

/** Who may change a task: the people working on it, its room's members, and admins who can read it. */
export const canEditTask = (t: LiveTask, room: RoomState, actor: TaskActor): boolean =>
  isAdmin(actor.role) ||
  t.reporterId === actor.userId ||
  t.assignee?.id === actor.userId ||
  t.assistants.has(actor.userId) ||
  (room.exists && room.members.has(actor.userId))

const notFound = () => new DomainError('TASK_NOT_FOUND', 'no such task', 'not_found')

/** The task as the actor may see it: a task they cannot read does not exist for them. */
const readable = (s: TaskState, c: Common): LiveTask => {
  if (!s.exists || s.deleted || !canReadTask(s, c.room, c.actor.userId, c.actor.role)) throw notFound()
  return s
}

const editable = (s: TaskState, c: Common): LiveTask => {
  const t = readable(s, c)
  if (!canEditTask(t, c.room, c.actor)) {
    throw new DomainError('FORBIDDEN', 'only its people, its room’s members and admins change a task', 'forbidden')
  }
  return t
}

const title = (t: string) => {
  const v = t.trim()
  if (v.length === 0 || v.length > TASK_TITLE_MAX)
    throw new DomainError('TASK_TITLE_INVALID', `a task title has 1 to ${TASK_TITLE_MAX} characters`)
  return v
}
const description = (d: string) => {
  if (d.length > TASK_DESCRIPTION_MAX)
    throw new DomainError('TASK_DESCRIPTION_INVALID', `a description has at most ${TASK_DESCRIPTION_MAX} characters`)
  return d.trim()
}

/**
 * Whether someone may be put on a task in this room, with the reason if not: an active user of the org; a
 * person who can read the room (a guest only as its member); an agent only as a member of the room.
 */
function refuseNewcomer(candidate: Candidate, room: RoomState, as: 'assignee' | 'assistant' | 'watcher'): void {
  const code = `TASK_${as.toUpperCase()}`
  if (!candidate) throw new DomainError(`${code}_UNKNOWN`, `no such ${as === 'assistant' ? 'agent' : 'user'} in this org`)
  if (!candidate.active) throw new DomainError(`${code}_DEACTIVATED`, `this ${as} is deactivated`)
  if (!room.exists) throw new DomainError('ROOM_NOT_FOUND', 'no such room', 'not_found')
  if (candidate.type === 'agent') {
    if (!room.members.has(candidate.id))
      throw new DomainError(`${code}_NOT_IN_ROOM`, `an agent is added to the task’s room before it becomes its ${as}`)
    // Putting an agent to work on a task is using it, as a mention is: its access says who may, room by room.
    if (candidate.usable === false)
      throw new DomainError('TASK_AGENT_ACCESS', 'this agent’s access does not let you put it to work in this room', 'forbidden')
    return
  }
  if (!canRead(room, candidate.id, candidate.role)) {
    throw new DomainError(
      `${code}_NO_ACCESS`,
      candidate.role === 'guest'
        ? `a guest is added to the task’s room before they become its ${as}`
        : `this person cannot read the task’s room: add them to it first`,
    )
  }
}

const openChild = (children: readonly TaskState[]) => children.some((c) => c.exists && !c.deleted && !isClosed(c.status))

const transitionRefused = (from: TaskStatus, to: TaskStatus) => {
  const allowed = TASK_TRANSITIONS[from]
  return new DomainError('TASK_TRANSITION_INVALID', `a task that is ${from} cannot become ${to}; allowed: ${allowed.join(', ')}`)
}

const freshGate = (required: boolean): GateView => ({ required, state: 'not_submitted', text: null, submittedBy: null })

export const task: Decider<TaskCommand, TaskEvent, TaskState> = {
  initialState: { exists: false },
  decide(c, s) {
    switch (c.type) {
      case 'patch': {
        let state = s
        const events: TaskEvent[] = []
        for (const change of c.changes) {
          const decided = task.decide(change, state)
          state = decided.reduce(task.evolve, state)
          events.push(...decided)
        }
        return events
      }
      case 'create': {
        if (s.exists) throw new DomainError('TASK_EXISTS', 'this task exists', 'conflict')
        if (!canRead(c.room, c.actor.userId, c.actor.role)) throw new DomainError('ROOM_NOT_FOUND', 'no such room', 'not_found')
        if (c.room.exists && c.room.archived) throw new DomainError('ROOM_ARCHIVED', 'this room is archived')
        if (c.parent) {
          const p = c.parent.task
          if (!p.exists || p.deleted || !canReadTask(p, c.parent.room, c.actor.userId, c.actor.role))
            throw new DomainError('TASK_PARENT_NOT_FOUND', 'no such parent task', 'not_found')
          if (isClosed(p.status)) throw new DomainError('TASK_PARENT_CLOSED', `the parent task is ${p.status}: reopen it first`)
          if (!p.subtasks.includes(c.taskId))
            throw new DomainError('TASK_PARENT_NOT_LISTED', 'the parent does not list this task as its subtask')
        }
        if (c.assignee) refuseNewcomer(c.assignee.candidate, c.room, 'assignee')
        return [
          {
            type: 'task.created',
            data: {
              taskId: c.taskId,
              title: title(c.title),
              description: description(c.description),
              roomId: c.roomId,
              parentId: c.parent?.taskId ?? null,
              reporterId: c.actor.userId,
              assignee: c.assignee ? { id: c.assignee.ref.id, type: c.assignee.ref.type } : null,
              reviewGates: { plan: c.reviewGates.plan, result: c.reviewGates.result },
              at: c.at,
            },
          },
        ]
      }
      case 'update': {
        const t = editable(s, c)
        const data: { taskId: string; title?: string; description?: string; at: string } = { taskId: c.taskId, at: c.at }
        if (c.title !== undefined && title(c.title) !== t.title) data.title = title(c.title)
        if (c.description !== undefined && description(c.description) !== t.description)
          data.description = description(c.description)
        return data.title === undefined && data.description === undefined ? [] : [{ type: 'task.updated', data }]
      }
      case 'assign': {
        const t = editable(s, c)
        const next = c.assignee?.ref ?? null
        if ((next?.id ?? null) === (t.assignee?.id ?? null)) return []
        if (c.assignee) refuseNewcomer(c.assignee.candidate, c.room, 'assignee')
        const events: TaskEvent[] = [
          { type: 'task.assigned', data: { taskId: c.taskId, assignee: next, by: c.actor.userId, at: c.at } },
        ]
        // Assistants stand beside a person: an agent (or nobody) taking the task over leaves no one to assist.
        if (next?.type !== 'user') {
          for (const agentId of t.assistants)
            events.push({ type: 'task.assistant_removed', data: { taskId: c.taskId, agentId, by: c.actor.userId, at: c.at } })
        }
        return events
      }
      case 'change_status': {
        const t = editable(s, c)
        if (c.to === t.status) return []
        if (!TASK_TRANSITIONS[t.status].includes(c.to)) throw transitionRefused(t.status, c.to)
        if (c.to === 'in_progress' && t.gates.plan.required && t.gates.plan.state !== 'approved')
          throw new DomainError('TASK_PLAN_NOT_APPROVED', 'the plan needs a person’s approval before work starts')
        if (c.to === 'done' && t.gates.result.required && t.gates.result.state !== 'approved')
          throw new DomainError(
            'TASK_RESULT_NOT_APPROVED',
            'the result needs a person’s approval before the task closes: submit it for review',
          )
        if (c.to === 'done' && openChild(c.children))
          throw new DomainError('TASK_SUBTASKS_OPEN', 'a task is done once its subtasks are done or cancelled')
        if (isClosed(t.status) && !isClosed(c.to) && c.parent?.exists && !c.parent.deleted && c.parent.status === 'done')
          throw new DomainError('TASK_PARENT_CLOSED', 'the parent task is done: reopen it first')
        return [
          { type: 'task.status_changed', data: { taskId: c.taskId, from: t.status, to: c.to, by: c.actor.userId, at: c.at } },
        ]
      }
      case 'set_review_gates': {
        const t = editable(s, c)
        // Gates hold agents to a person's judgement: the agent does not lift its own.
        if (c.actor.type === 'agent') throw new DomainError('FORBIDDEN', 'only people change review gates', 'forbidden')
        const plan = c.plan ?? t.gates.plan.required
        const result = c.result ?? t.gates.result.required
        if (plan === t.gates.plan.required && result === t.gates.result.required) return []
        return [{ type: 'task.review_gates_changed', data: { taskId: c.taskId, plan, result, by: c.actor.userId, at: c.at } }]
      }
      case 'submit_review': {
        const t = readable(s, c)
        if (t.assignee?.id !== c.actor.userId && !t.assistants.has(c.actor.userId))
          throw new DomainError('FORBIDDEN', 'the assignee or an assistant submits work for review', 'forbidden')
        const gate = t.gates[c.gate]
        if (!gate.required) throw new DomainError('TASK_GATE_NOT_REQUIRED', `this task has no ${c.gate} review gate`)
        if (gate.state === 'approved') throw new DomainError('TASK_GATE_APPROVED', `the ${c.gate} is approved already`)
        if (isClosed(t.status)) throw new DomainError('TASK_CLOSED', `the task is ${t.status}`)
        if (c.gate === 'result' && t.status !== 'in_progress')
          throw new DomainError('TASK_NOT_IN_PROGRESS', 'a result is submitted while the task is in progress')
        const text = c.text.trim()
        if (text.length === 0 || text.length > TASK_REVIEW_TEXT_MAX)
          throw new DomainError('TASK_REVIEW_TEXT_INVALID', `a ${c.gate} has 1 to ${TASK_REVIEW_TEXT_MAX} characters`)
        return [{ type: 'task.review_submitted', data: { taskId: c.taskId, gate: c.gate, text, by: c.actor.userId, at: c.at } }]
      }
      case 'decide_review': {
        const t = editable(s, c)
        if (c.actor.type === 'agent') throw new DomainError('FORBIDDEN', 'only people approve or reject', 'forbidden')
        // A gate holds work to the judgement of the org's people: a guest is an outsider, in the room as a visitor.
        if (c.actor.role === 'guest') throw new DomainError('FORBIDDEN', 'guests do not approve or reject', 'forbidden')
        const gate = t.gates[c.gate]
        if (!gate.required || gate.state !== 'pending')
          throw new DomainError('TASK_NOTHING_TO_REVIEW', `no ${c.gate} is waiting for a decision`)
        if (gate.submittedBy === c.actor.userId)
          throw new DomainError('FORBIDDEN', 'someone else approves what you submitted', 'forbidden')
        const comment = c.comment?.trim() || null
        if (comment && comment.length > TASK_COMMENT_MAX)
          throw new DomainError('TASK_COMMENT_INVALID', `a comment has at most ${TASK_COMMENT_MAX} characters`)
        const decided: TaskEvent = {
          type: 'task.review_decided',
          data: { taskId: c.taskId, gate: c.gate, decision: c.decision, comment, by: c.actor.userId, at: c.at },
        }
        // An approved result is the task's close: the rule on subtasks holds for it as for any other.
        if (c.gate === 'result' && c.decision === 'approve') {
          if (openChild(c.children))
            throw new DomainError('TASK_SUBTASKS_OPEN', 'a task is done once its subtasks are done or cancelled')
          return [
            decided,
            { type: 'task.status_changed', data: { taskId: c.taskId, from: t.status, to: 'done', by: c.actor.userId, at: c.at } },
          ]
        }
        return [decided]
      }
      case 'add_assistant': {
        const t = editable(s, c)
        if (t.assistants.has(c.agentId)) return []
        if (c.candidate && c.candidate.type !== 'agent')
          throw new DomainError('TASK_ASSISTANT_NOT_AGENT', 'assistants are agents; people watch or take the task')
        refuseNewcomer(c.candidate, c.room, 'assistant')
        if (t.assignee?.type !== 'user')
          throw new DomainError('TASK_ASSISTANT_NEEDS_PERSON', 'assistants stand beside a person assigned to the task')
        if (t.assistants.size >= TASK_ASSISTANTS_MAX)
          throw new DomainError('TASK_ASSISTANTS_FULL', `a task has at most ${TASK_ASSISTANTS_MAX} assistants`)
        return [{ type: 'task.assistant_added', data: { taskId: c.taskId, agentId: c.agentId, by: c.actor.userId, at: c.at } }]
      }
      case 'remove_assistant': {
        const t = editable(s, c)
        if (!t.assistants.has(c.agentId)) return []
        return [{ type: 'task.assistant_removed', data: { taskId: c.taskId, agentId: c.agentId, by: c.actor.userId, at: c.at } }]
      }
      case 'watch': {
        // Anyone who reads a task may follow it; putting someone else on it takes the right to change it.
        const t = c.userId === c.actor.userId ? readable(s, c) : editable(s, c)
        if (t.watchers.has(c.userId)) return []
        if (c.userId !== c.actor.userId) refuseNewcomer(c.candidate, c.room, 'watcher')
        if (t.watchers.size >= TASK_WATCHERS_MAX)
          throw new DomainError('TASK_WATCHERS_FULL', `a task has at most ${TASK_WATCHERS_MAX} watchers`)
        return [{ type: 'task.watcher_added', data: { taskId: c.taskId, userId: c.userId, by: c.actor.userId, at: c.at } }]
      }
      case 'unwatch': {
        const t = c.userId === c.actor.userId ? readable(s, c) : editable(s, c)
        if (!t.watchers.has(c.userId)) return []
        return [{ type: 'task.watcher_removed', data: { taskId: c.taskId, userId: c.userId, by: c.actor.userId, at: c.at } }]
      }
      case 'add_subtask': {
        const t = editable(s, c)
        if (t.subtasks.includes(c.subtaskId)) return []
        if (isClosed(t.status)) throw new DomainError('TASK_PARENT_CLOSED', `the parent task is ${t.status}: reopen it first`)
        if (t.subtasks.length >= TASK_SUBTASKS_MAX)
          throw new DomainError('TASK_SUBTASKS_FULL', `a task has at most ${TASK_SUBTASKS_MAX} subtasks`)
        return [{ type: 'task.subtask_added', data: { taskId: c.taskId, subtaskId: c.subtaskId, at: c.at } }]
      }
      case 'add_dependency': {
        const t = editable(s, c)
        const d = c.dependsOn
        if (!canReadTask(d.task, d.room, c.actor.userId, c.actor.role))
          throw new DomainError('TASK_DEPENDENCY_NOT_FOUND', 'no such task to depend on', 'not_found')
        if (t.dependsOn.has(d.taskId)) return []
        if (d.taskId === c.taskId || c.walk === 'cycle')
          throw new DomainError('TASK_DEPENDENCY_CYCLE', 'that task depends on this one already (directly or through others)')
        if (c.walk === 'too_large')
          throw new DomainError(
            'TASK_DEPENDENCY_GRAPH_TOO_LARGE',
            'too many tasks depend on each other here to check for a cycle',
          )
        if (t.dependsOn.size >= TASK_DEPENDENCIES_MAX)
          throw new DomainError('TASK_DEPENDENCIES_FULL', `a task depends on at most ${TASK_DEPENDENCIES_MAX} others`)
        return [
          { type: 'task.dependency_added', data: { taskId: c.taskId, dependsOnId: d.taskId, by: c.actor.userId, at: c.at } },
        ]
      }
      case 'remove_dependency': {
        const t = editable(s, c)
        if (!t.dependsOn.has(c.dependsOnId)) return []
        return [
          {
            type: 'task.dependency_removed',
            data: { taskId: c.taskId, dependsOnId: c.dependsOnId, by: c.actor.userId, at: c.at },
          },
        ]
      }
      case 'delete': {
        const t = readable(s, c)
        if (!isAdmin(c.actor.role) && t.reporterId !== c.actor.userId)
          throw new DomainError('FORBIDDEN', 'only admins and its reporter delete a task', 'forbidden')
        if (c.children.some((ch) => ch.exists && !ch.deleted))
          throw new DomainError('TASK_HAS_SUBTASKS', 'delete or move its subtasks first')
        return [{ type: 'task.deleted', data: { taskId: c.taskId, by: c.actor.userId, at: c.at } }]
      }
    }
  },
  evolve(s, e) {
    if (e.type === 'task.created') {
      const d = e.data
      return {
        exists: true,
        deleted: false,
        title: d.title,
        description: d.description,
        roomId: d.roomId,
        parentId: d.parentId,
        reporterId: d.reporterId,
        assignee: d.assignee,
        status: 'open',
        assistants: new Set(),
        watchers: new Set(),
        gates: { plan: freshGate(d.reviewGates.plan), result: freshGate(d.reviewGates.result) },
        subtasks: [],
        dependsOn: new Set(),
      }
    }
    if (e.type === 'task.subtask_added') {
      if (!s.exists) return s
      return s.subtasks.includes(e.data.subtaskId) ? s : { ...s, subtasks: [...s.subtasks, e.data.subtaskId] }
    }
    if (!s.exists) return s
    const gate = (g: Gate, change: (v: GateView) => GateView) => ({ ...s.gates, [g]: change(s.gates[g]) })
    switch (e.type) {
      case 'task.updated':
        return { ...s, title: e.data.title ?? s.title, description: e.data.description ?? s.description }
      case 'task.assigned':
        return { ...s, assignee: e.data.assignee }
      case 'task.status_changed':
        return {
          ...s,
          status: e.data.to,
          // A reopened task's result is reviewed again when it is done again.
          gates: e.data.from === 'done' ? gate('result', (g) => freshGate(g.required)) : s.gates,
        }
      case 'task.review_gates_changed':
        return {
          ...s,
          gates: {
            plan: e.data.plan === s.gates.plan.required ? s.gates.plan : freshGate(e.data.plan),
            result: e.data.result === s.gates.result.required ? s.gates.result : freshGate(e.data.result),
          },
        }
      case 'task.review_submitted':
        return { ...s, gates: gate(e.data.gate, (g) => ({ ...g, state: 'pending', text: e.data.text, submittedBy: e.data.by })) }
      case 'task.review_decided':
        return {
          ...s,
          gates: gate(e.data.gate, (g) => ({ ...g, state: e.data.decision === 'approve' ? 'approved' : 'rejected' })),
        }
      case 'task.assistant_added':
        return { ...s, assistants: new Set(s.assistants).add(e.data.agentId) }
      case 'task.assistant_removed': {
        const assistants = new Set(s.assistants)
        assistants.delete(e.data.agentId)
        return { ...s, assistants }
      }
      case 'task.watcher_added':
        return { ...s, watchers: new Set(s.watchers).add(e.data.userId) }
      case 'task.watcher_removed': {
        const watchers = new Set(s.watchers)
        watchers.delete(e.data.userId)
        return { ...s, watchers }
      }
      case 'task.dependency_added':
        return { ...s, dependsOn: new Set(s.dependsOn).add(e.data.dependsOnId) }
      case 'task.dependency_removed': {
        const dependsOn = new Set(s.dependsOn)
        dependsOn.delete(e.data.dependsOnId)
        return { ...s, dependsOn }
      }
      case 'task.deleted':
        return { ...s, deleted: true }
    }
  },
}
