import { type Decider, DomainError, type DomainEvent } from './decider.ts'

/*
 * An agent's run (`run-<id>`): one unit of work in a thread, modelled on OpenAI's Responses API and Linear's agent
 * sessions. It is queued, claimed by exactly one worker under a lease (a generation fences a worker that lost it),
 * records every step as an item with a per-run sequence (a client resumes after the last it saw), may stop for a
 * person's approval of a risky tool call, and ends completed, failed, cancelled, or incomplete when a limit stopped
 * it (which one is said). Consecutive activity (reasoning, tool calls and outputs, context) collapses into one
 * group; each message the agent writes is a group of its own.
 */

export type RunStatus = 'queued' | 'in_progress' | 'requires_action' | 'completed' | 'failed' | 'cancelled' | 'incomplete'

/** What stopped an incomplete run. */
export type IncompleteReason = 'max_steps' | 'max_time' | 'budget' | 'limit_reached'

export const RUN_ITEM_KINDS = ['message', 'tool_call', 'tool_output', 'reasoning', 'context', 'error'] as const
export type RunItemKind = (typeof RUN_ITEM_KINDS)[number]
export const RUN_ITEM_STATUSES = ['in_progress', 'completed', 'failed'] as const
export type RunItemStatus = (typeof RUN_ITEM_STATUSES)[number]
export type RunGroupKind = 'activity' | 'message'

/**
 * What woke the agent: a mention in a message, a task assigned, a wake-up it scheduled, a person asking, a task it
 * waited for closing.
 */
export type RunTrigger =
  | { readonly type: 'mention'; readonly messageId: string }
  /** `assignmentId`: the event that assigned it (assigned again later, it wakes the agent again). */
  | { readonly type: 'task_assigned'; readonly taskId: string; readonly assignmentId: string }
  | { readonly type: 'wakeup'; readonly timerId: string }
  | { readonly type: 'request'; readonly userId: string; readonly requestId: string }
  /** `waitId`: the event that recorded the wait (thread.task_awaited); a wait is woken once, by the first close after it. */
  | { readonly type: 'task_closed'; readonly taskId: string; readonly waitId: string }

/** The same trigger twice (a message edited to mention again, a repeated delivery) wakes nothing new. */
export const triggerKey = (t: RunTrigger): string => {
  switch (t.type) {
    case 'mention':
      return `mention:${t.messageId}`
    case 'task_assigned':
      return `task_assigned:${t.assignmentId}`
    case 'wakeup':
      return `wakeup:${t.timerId}`
    case 'request':
      return `request:${t.requestId}`
    case 'task_closed':
      return `task_closed:${t.waitId}`
  }
}

export type RunInput = { readonly trigger: RunTrigger; readonly text: string }

export type RunItem = {
  readonly itemId: string
  readonly kind: RunItemKind
  readonly status: RunItemStatus
  readonly content: string
  readonly toolCallId: string | null
  readonly tool: string | null
  /** The tool call's arguments as the model wrote them (JSON text). */
  readonly arguments: string | null
}

/**
 * Every event after run.queued names the run's room too (who may see it, realtime, is who may read that room); a
 * worker's, its thread too (what a failed run leaves for people, action items, is the thread's).
 */
type Fenced = {
  readonly runId: string
  readonly roomId: string
  readonly threadId: string
  readonly generation: number
  readonly at: string
}

export type RunEvent =
  | DomainEvent<
      'run.queued',
      {
        runId: string
        threadId: string
        agentId: string
        roomId: string
        taskId: string | null
        inputs: RunInput[]
        at: string
      }
    >
  | DomainEvent<'run.claimed', Fenced & { workerId: string; leaseUntil: string; resumed: boolean }>
  | DomainEvent<'run.lease_renewed', Fenced & { leaseUntil: string }>
  | DomainEvent<'run.item_added', Fenced & RunItem & { sequence: number; groupId: string }>
  | DomainEvent<'run.item_updated', Fenced & { itemId: string; sequence: number; status: RunItemStatus; content: string }>
  | DomainEvent<
      'run.item_group_updated',
      { runId: string; roomId: string; groupId: string; kind: RunGroupKind; status: 'in_progress' | 'completed'; at: string }
    >
  | DomainEvent<'run.action_required', Fenced & { itemId: string; toolCallId: string; tool: string; arguments: string }>
  | DomainEvent<
      'run.action_decided',
      { runId: string; roomId: string; toolCallId: string; decision: 'approve' | 'reject'; by: string; at: string }
    >
  | DomainEvent<'run.completed', Fenced>
  | DomainEvent<'run.failed', Fenced & { code: string; message: string }>
  | DomainEvent<'run.incomplete', Fenced & { reason: IncompleteReason; detail: string }>
  | DomainEvent<'run.cancelled', { runId: string; roomId: string; by: string; at: string }>

export type RunLease = { readonly workerId: string; readonly generation: number; readonly until: string }

export type RunState =
  | { readonly exists: false }
  | {
      readonly exists: true
      readonly runId: string
      readonly threadId: string
      readonly agentId: string
      /** A task's run happens in the task's room. */
      readonly roomId: string
      readonly taskId: string | null
      readonly status: RunStatus
      readonly inputs: readonly RunInput[]
      /** The lease's generation counts every claim; a worker's commands name the one it holds. */
      readonly generation: number
      /** Null while nobody holds it: queued, waiting for a person, or released. */
      readonly lease: RunLease | null
      readonly items: ReadonlyMap<string, RunItem>
      /** The last sequence given to an item's addition or update. */
      readonly sequence: number
      readonly group: { readonly groupId: string; readonly kind: RunGroupKind } | null
      readonly pendingAction: { readonly toolCallId: string; readonly tool: string; readonly itemId: string } | null
      /** Tool calls a person approved or rejected, by call id. */
      readonly decisions: ReadonlyMap<string, 'approve' | 'reject'>
    }

type WorkerCommand = { readonly runId: string; readonly workerId: string; readonly generation: number; readonly at: string }

export type RunCommand =
  | {
      type: 'queue'
      runId: string
      threadId: string
      agentId: string
      roomId: string
      taskId: string | null
      inputs: RunInput[]
      at: string
    }
  | { type: 'claim'; runId: string; workerId: string; leaseMs: number; at: string }
  | (WorkerCommand & { type: 'renew'; leaseMs: number })
  | (WorkerCommand & {
      type: 'add_item'
      item: Omit<RunItem, 'status'> & { status?: RunItemStatus }
      /** The id a new group gets, should this item start one (the caller derives it, like the item's). */
      groupId: string
    })
  | (WorkerCommand & { type: 'update_item'; itemId: string; content: string; status?: RunItemStatus })
  | (WorkerCommand & { type: 'require_action'; itemId: string })
  | { type: 'decide_action'; runId: string; toolCallId: string; decision: 'approve' | 'reject'; by: string; at: string }
  | (WorkerCommand & { type: 'complete' })
  | (WorkerCommand & { type: 'fail'; code: string; message: string })
  | (WorkerCommand & { type: 'stop_incomplete'; reason: IncompleteReason; detail: string })
  | { type: 'cancel'; runId: string; by: string; at: string }

export const RUN_ITEM_CONTENT_MAX = 200_000
const FINISHED: ReadonlySet<RunStatus> = new Set(['completed', 'failed', 'cancelled', 'incomplete'])
export const isFinished = (status: RunStatus): boolean => FINISHED.has(status)

const groupKindOf = (kind: RunItemKind): RunGroupKind => (kind === 'message' ? 'message' : 'activity')

const plus = (at: string, ms: number) => new Date(new Date(at).getTime() + ms).toISOString()

type Existing = Extract<RunState, { exists: true }>

const existing = (s: RunState): Existing => {
  if (!s.exists) throw new DomainError('RUN_NOT_FOUND', 'no such run', 'not_found')
  return s
}

/** A worker's command stands only while it holds the run's current lease. */
const holding = (s: Existing, c: WorkerCommand): void => {
  if (isFinished(s.status)) throw new DomainError('RUN_FINISHED', `the run is ${s.status}`, 'conflict')
  if (!s.lease || s.lease.workerId !== (c as { workerId: string }).workerId || s.generation !== c.generation) {
    throw new DomainError('RUN_LEASE_LOST', 'another worker holds this run now', 'conflict')
  }
}

/** Closing the open group, when the next item starts another or the run ends. */
const closeGroup = (s: Existing, at: string): RunEvent[] =>
  s.group
    ? [
        {
          type: 'run.item_group_updated',
          data: { runId: s.runId, roomId: s.roomId, groupId: s.group.groupId, kind: s.group.kind, status: 'completed', at },
        },
      ]
    : []

const cleanContent = (content: string): string => {
  if (content.length > RUN_ITEM_CONTENT_MAX) {
    throw new DomainError('RUN_ITEM_TOO_LARGE', `an item holds at most ${RUN_ITEM_CONTENT_MAX} characters`)
  }
  return content
}

export const run: Decider<RunCommand, RunEvent, RunState> = {
  initialState: { exists: false },
  decide(c, state) {
    if (c.type === 'queue') {
      if (state.exists) return []
      if (c.inputs.length === 0) throw new DomainError('RUN_INPUT_REQUIRED', 'a run starts from at least one input')
      const { type: _type, ...data } = c
      return [{ type: 'run.queued', data }]
    }
    const s = existing(state)
    switch (c.type) {
      case 'claim': {
        const claimable = s.status === 'queued' || (s.status === 'in_progress' && (s.lease === null || s.lease.until <= c.at))
        if (!claimable) {
          if (isFinished(s.status)) throw new DomainError('RUN_FINISHED', `the run is ${s.status}`, 'conflict')
          throw new DomainError('RUN_NOT_CLAIMABLE', `the run is ${s.status}, held until ${s.lease?.until}`, 'conflict')
        }
        return [
          {
            type: 'run.claimed',
            data: {
              runId: s.runId,
              roomId: s.roomId,
              threadId: s.threadId,
              generation: s.generation + 1,
              workerId: c.workerId,
              leaseUntil: plus(c.at, c.leaseMs),
              resumed: s.status !== 'queued',
              at: c.at,
            },
          },
        ]
      }
      case 'renew':
        holding(s, c)
        return [
          {
            type: 'run.lease_renewed',
            data: {
              runId: s.runId,
              roomId: s.roomId,
              threadId: s.threadId,
              generation: c.generation,
              leaseUntil: plus(c.at, c.leaseMs),
              at: c.at,
            },
          },
        ]
      case 'add_item': {
        holding(s, c)
        if (s.status !== 'in_progress') throw new DomainError('RUN_NOT_IN_PROGRESS', `the run is ${s.status}`, 'conflict')
        if (s.items.has(c.item.itemId)) return []
        const kind = groupKindOf(c.item.kind)
        // A message is a group of its own; activity joins the open activity group.
        const joins = s.group !== null && kind === 'activity' && s.group.kind === 'activity'
        const groupId = joins ? s.group!.groupId : c.groupId
        const events: RunEvent[] = joins
          ? []
          : [
              ...closeGroup(s, c.at),
              {
                type: 'run.item_group_updated',
                data: { runId: s.runId, roomId: s.roomId, groupId, kind, status: 'in_progress', at: c.at },
              },
            ]
        events.push({
          type: 'run.item_added',
          data: {
            runId: s.runId,
            roomId: s.roomId,
            threadId: s.threadId,
            generation: c.generation,
            itemId: c.item.itemId,
            kind: c.item.kind,
            status: c.item.status ?? 'completed',
            content: cleanContent(c.item.content),
            toolCallId: c.item.toolCallId,
            tool: c.item.tool,
            arguments: c.item.arguments,
            sequence: s.sequence + 1,
            groupId,
            at: c.at,
          },
        })
        return events
      }
      case 'update_item': {
        holding(s, c)
        const item = s.items.get(c.itemId)
        if (!item) throw new DomainError('RUN_ITEM_NOT_FOUND', 'no such item in this run', 'not_found')
        const status = c.status ?? item.status
        if (item.content === c.content && item.status === status) return []
        if (item.status !== 'in_progress') throw new DomainError('RUN_ITEM_FINISHED', `the item is ${item.status}`, 'conflict')
        return [
          {
            type: 'run.item_updated',
            data: {
              runId: s.runId,
              roomId: s.roomId,
              threadId: s.threadId,
              generation: c.generation,
              itemId: c.itemId,
              sequence: s.sequence + 1,
              status,
              content: cleanContent(c.content),
              at: c.at,
            },
          },
        ]
      }
      case 'require_action': {
        holding(s, c)
        const item = s.items.get(c.itemId)
        if (!item || item.kind !== 'tool_call' || !item.toolCallId || !item.tool) {
          throw new DomainError('RUN_ITEM_NOT_A_TOOL_CALL', 'only a tool call waits for approval')
        }
        if (s.decisions.has(item.toolCallId)) throw new DomainError('RUN_ACTION_DECIDED', 'this call was decided', 'conflict')
        return [
          {
            type: 'run.action_required',
            data: {
              runId: s.runId,
              roomId: s.roomId,
              threadId: s.threadId,
              generation: c.generation,
              itemId: item.itemId,
              toolCallId: item.toolCallId,
              tool: item.tool,
              arguments: item.arguments ?? '{}',
              at: c.at,
            },
          },
        ]
      }
      case 'decide_action': {
        if (s.status !== 'requires_action' || s.pendingAction?.toolCallId !== c.toolCallId) {
          throw new DomainError('RUN_NO_ACTION_PENDING', 'this run waits for no decision on that call', 'conflict')
        }
        return [
          {
            type: 'run.action_decided',
            data: { runId: s.runId, roomId: s.roomId, toolCallId: c.toolCallId, decision: c.decision, by: c.by, at: c.at },
          },
        ]
      }
      case 'complete':
        holding(s, c)
        return [
          ...closeGroup(s, c.at),
          {
            type: 'run.completed',
            data: { runId: s.runId, roomId: s.roomId, threadId: s.threadId, generation: c.generation, at: c.at },
          },
        ]
      case 'fail':
        holding(s, c)
        return [
          ...closeGroup(s, c.at),
          {
            type: 'run.failed',
            data: {
              runId: s.runId,
              roomId: s.roomId,
              threadId: s.threadId,
              generation: c.generation,
              code: c.code,
              message: c.message,
              at: c.at,
            },
          },
        ]
      case 'stop_incomplete':
        holding(s, c)
        return [
          ...closeGroup(s, c.at),
          {
            type: 'run.incomplete',
            data: {
              runId: s.runId,
              roomId: s.roomId,
              threadId: s.threadId,
              generation: c.generation,
              reason: c.reason,
              detail: c.detail,
              at: c.at,
            },
          },
        ]
      case 'cancel':
        if (isFinished(s.status)) throw new DomainError('RUN_FINISHED', `the run is ${s.status}: nothing to cancel`, 'conflict')
        return [...closeGroup(s, c.at), { type: 'run.cancelled', data: { runId: s.runId, roomId: s.roomId, by: c.by, at: c.at } }]
    }
  },
  evolve(state, e) {
    if (e.type === 'run.queued') {
      return {
        exists: true,
        runId: e.data.runId,
        threadId: e.data.threadId,
        agentId: e.data.agentId,
        roomId: e.data.roomId,
        taskId: e.data.taskId,
        status: 'queued',
        inputs: e.data.inputs,
        generation: 0,
        lease: null,
        items: new Map(),
        sequence: 0,
        group: null,
        pendingAction: null,
        decisions: new Map(),
      }
    }
    if (!state.exists) return state
    const s = state
    switch (e.type) {
      case 'run.claimed':
        return {
          ...s,
          status: 'in_progress',
          generation: e.data.generation,
          lease: { workerId: e.data.workerId, generation: e.data.generation, until: e.data.leaseUntil },
        }
      case 'run.lease_renewed':
        return s.lease ? { ...s, lease: { ...s.lease, until: e.data.leaseUntil } } : s
      case 'run.item_added': {
        const { runId: _r, generation: _g, sequence, groupId: _gid, at: _at, ...item } = e.data
        return { ...s, sequence, items: new Map(s.items).set(item.itemId, item) }
      }
      case 'run.item_updated': {
        const item = s.items.get(e.data.itemId)
        if (!item) return { ...s, sequence: e.data.sequence }
        return {
          ...s,
          sequence: e.data.sequence,
          items: new Map(s.items).set(item.itemId, { ...item, status: e.data.status, content: e.data.content }),
        }
      }
      case 'run.item_group_updated':
        return { ...s, group: e.data.status === 'in_progress' ? { groupId: e.data.groupId, kind: e.data.kind } : null }
      case 'run.action_required':
        // Nobody holds a run while it waits for a person: that may take days.
        return {
          ...s,
          status: 'requires_action',
          lease: null,
          pendingAction: { toolCallId: e.data.toolCallId, tool: e.data.tool, itemId: e.data.itemId },
        }
      case 'run.action_decided':
        return {
          ...s,
          status: 'in_progress',
          pendingAction: null,
          decisions: new Map(s.decisions).set(e.data.toolCallId, e.data.decision),
        }
      case 'run.completed':
        return { ...s, status: 'completed', lease: null, pendingAction: null }
      case 'run.failed':
        return { ...s, status: 'failed', lease: null, pendingAction: null }
      case 'run.incomplete':
        return { ...s, status: 'incomplete', lease: null, pendingAction: null }
      case 'run.cancelled':
        return { ...s, status: 'cancelled', lease: null, pendingAction: null }
    }
  },
}

/**
 * The channel the run queue's projector notifies when a run becomes claimable or is cancelled (`<event>:<runId>`):
 * workers LISTEN on it to claim at once and to abort a run they hold.
 */
export const AGENT_RUNS_CHANNEL = 'agent_runs'
