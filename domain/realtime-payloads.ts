import type { AgentEvent } from './agents.ts'
import type { ArtifactEvent } from './artifacts.ts'
import type { ErasureEvent } from './erasure.ts'
import type { MessageEvent } from './messages.ts'
import type { OrgEvent } from './orgs.ts'
import type { RoomEvent } from './rooms.ts'
import type { RunEvent } from './runs.ts'
import type { SpaceEvent } from './spaces.ts'
import type { TaskEvent } from './tasks.ts'
import type { ThreadEvent } from './threads.ts'
import type { BudgetEvent, CapsEvent } from './usage.ts'

/*
 * What each event the fan-out delivers shows its receivers: an allow-list of the event's fields, each paired with
 * the field of the REST resource (read-api) that shows the same thing, so realtime never tells a user more than
 * the REST API would. Every receiver gets the same payload: the fields listed are ones REST shows to every role
 * that may read the resource at all. An email (REST shows it only to its owner, on /api/me) and an account id
 * (REST never shows it) are in no payload; nor are actors (`by`, `addedBy`, ...) or a message's previous text.
 * An event's time is the envelope's `occurredAt`. An event type missing here is not delivered, and the fan-out's
 * event types are this table's keys (deliveredEventTypes), and the realtime types a queue may ask for are its
 * realtime types (realtimeEventTypes): one list, here. It lives in domain/ as a pure rule both the fan-out
 * (projections/realtime.ts) and the gateway (realtime/http.ts) read.
 */

type Delivered =
  | MessageEvent
  | RoomEvent
  | SpaceEvent
  | OrgEvent
  | ErasureEvent
  | TaskEvent
  | AgentEvent
  | ArtifactEvent
  | ThreadEvent
  | CapsEvent
  | Exclude<BudgetEvent, { type: 'usage.reserved' }>
  | Exclude<RunEvent, { type: 'run.lease_renewed' }>
type DataOf<T extends Delivered['type']> = Extract<Delivered, { type: T }>['data']

/** The REST resources (read-api) that show what realtime payloads carry. */
export type RestResource =
  | 'Message'
  | 'Room'
  | 'Space'
  | 'User'
  | 'Task'
  | 'Agent'
  | 'Artifact'
  | 'Thread'
  | 'Run'
  | 'RunItem'
  | 'RunItemGroup'
  | 'Limit'
  | 'Usage'

/** An array field whose items keep only `keys`, as the REST field's items show them. */
export type ItemsField = { readonly field: string; readonly keys: readonly string[] }

export type RealtimePayload<D> = {
  /** The realtime event type clients subscribe to (API.md, Realtime API). */
  readonly type: string
  readonly resource: RestResource
  /** Each field of the event that is delivered, and the field of `resource` that shows it over REST. */
  readonly fields: { readonly [K in keyof D & string]?: string | ItemsField }
}

const members: ItemsField = { field: 'members', keys: ['memberId', 'memberType'] }
const mentions: ItemsField = { field: 'mentions', keys: ['userId', 'username'] }

export const realtimePayloads: { readonly [T in Delivered['type']]?: RealtimePayload<DataOf<T>> } = {
  'message.created': {
    type: 'message.created',
    resource: 'Message',
    fields: {
      messageId: 'id',
      roomId: 'roomId',
      authorId: 'authorId',
      authorType: 'authorType',
      text: 'text',
      threadRootId: 'threadRootId',
      taskId: 'taskId',
      mentions,
    },
  },
  'message.updated': {
    type: 'message.updated',
    resource: 'Message',
    fields: { messageId: 'id', roomId: 'roomId', text: 'text', mentions },
  },
  'message.deleted': { type: 'message.deleted', resource: 'Message', fields: { messageId: 'id', roomId: 'roomId' } },
  'message.range_deleted': { type: 'message.range_deleted', resource: 'Message', fields: { roomId: 'roomId', messageIds: 'id' } },
  'message.reaction_changed': {
    type: 'message.reaction_changed',
    resource: 'Message',
    fields: { messageId: 'id', roomId: 'roomId', userId: 'reactions', emoji: 'reactions', reacted: 'reactions' },
  },
  'room.created': {
    type: 'workspace.room_changed',
    resource: 'Room',
    fields: {
      roomId: 'id',
      name: 'name',
      description: 'description',
      spaceId: 'spaceId',
      visibility: 'visibility',
      kind: 'kind',
      members,
    },
  },
  'room.updated': {
    type: 'workspace.room_changed',
    resource: 'Room',
    fields: { roomId: 'id', name: 'name', description: 'description' },
  },
  'room.member_added': {
    type: 'workspace.room_changed',
    resource: 'Room',
    fields: { roomId: 'id', memberId: 'members', memberType: 'members' },
  },
  'room.member_removed': { type: 'workspace.room_changed', resource: 'Room', fields: { roomId: 'id', memberId: 'members' } },
  'room.archived': { type: 'workspace.room_changed', resource: 'Room', fields: { roomId: 'id' } },
  'space.created': {
    type: 'workspace.space_changed',
    resource: 'Space',
    fields: { spaceId: 'id', name: 'name', kind: 'kind', ownerId: 'ownerId' },
  },
  'space.updated': { type: 'workspace.space_changed', resource: 'Space', fields: { spaceId: 'id', name: 'name' } },
  'user.joined': {
    type: 'workspace.user_changed',
    resource: 'User',
    fields: { userId: 'id', type: 'type', role: 'role', displayName: 'displayName', username: 'username' },
  },
  'user.activated': { type: 'workspace.user_changed', resource: 'User', fields: { userId: 'id', username: 'username' } },
  'user.role_changed': { type: 'workspace.user_changed', resource: 'User', fields: { userId: 'id', role: 'role' } },
  'user.deactivated': { type: 'workspace.user_changed', resource: 'User', fields: { userId: 'id' } },
  'user.erased': { type: 'workspace.user_changed', resource: 'User', fields: { userId: 'id' } },
  // Tasks (GET /api/tasks/:id, TaskDetail): everyone who may read the task gets the same payload.
  'task.created': {
    type: 'workspace.task_changed',
    resource: 'Task',
    fields: {
      taskId: 'id',
      title: 'title',
      description: 'description',
      roomId: 'roomId',
      parentId: 'parentId',
      reporterId: 'reporterId',
      assignee: 'assignee',
      reviewGates: 'reviewGates',
    },
  },
  'task.updated': {
    type: 'workspace.task_changed',
    resource: 'Task',
    fields: { taskId: 'id', title: 'title', description: 'description' },
  },
  'task.assigned': { type: 'workspace.task_changed', resource: 'Task', fields: { taskId: 'id', assignee: 'assignee' } },
  'task.status_changed': {
    type: 'workspace.task_changed',
    resource: 'Task',
    fields: { taskId: 'id', from: 'status', to: 'status' },
  },
  'task.review_gates_changed': {
    type: 'workspace.task_changed',
    resource: 'Task',
    fields: { taskId: 'id', plan: 'reviewGates', result: 'reviewGates' },
  },
  'task.review_submitted': {
    type: 'workspace.task_changed',
    resource: 'Task',
    fields: { taskId: 'id', gate: 'reviewGates', text: 'reviewGates' },
  },
  'task.review_decided': {
    type: 'workspace.task_changed',
    resource: 'Task',
    fields: { taskId: 'id', gate: 'reviewGates', decision: 'reviewGates', comment: 'reviewGates' },
  },
  'task.assistant_added': { type: 'workspace.task_changed', resource: 'Task', fields: { taskId: 'id', agentId: 'assistants' } },
  'task.assistant_removed': { type: 'workspace.task_changed', resource: 'Task', fields: { taskId: 'id', agentId: 'assistants' } },
  'task.watcher_added': { type: 'workspace.task_changed', resource: 'Task', fields: { taskId: 'id', userId: 'watchers' } },
  'task.watcher_removed': { type: 'workspace.task_changed', resource: 'Task', fields: { taskId: 'id', userId: 'watchers' } },
  'task.subtask_added': { type: 'workspace.task_changed', resource: 'Task', fields: { taskId: 'id', subtaskId: 'subtasks' } },
  'task.dependency_added': {
    type: 'workspace.task_changed',
    resource: 'Task',
    fields: { taskId: 'id', dependsOnId: 'dependencies' },
  },
  'task.dependency_removed': {
    type: 'workspace.task_changed',
    resource: 'Task',
    fields: { taskId: 'id', dependsOnId: 'dependencies' },
  },
  'task.deleted': { type: 'workspace.task_changed', resource: 'Task', fields: { taskId: 'id' } },
  // A new version of an agent's role prompt (GET /api/agents/:id): every user of the org, as REST shows agents.
  'agent.role_prompt_set': {
    type: 'agent.role_prompt_changed',
    resource: 'Agent',
    fields: { agentId: 'id', version: 'rolePromptVersion' },
  },
  // Spend caps (GET /api/limits): a cap set, 80 % of it spent, all of it: to the org's admins, and to who may read
  // the room or task a cap is about. Amounts in micro-USD (REST shows USD).
  'usage.cap_set': {
    type: 'workspace.limits_changed',
    resource: 'Limit',
    fields: { scope: 'scope', scopeId: 'scopeId', limitMicroUsd: 'limitUsd', usedMicroUsd: 'usedUsd' },
  },
  'usage.limit_warning': {
    type: 'workspace.limits_changed',
    resource: 'Limit',
    fields: { scope: 'scope', scopeId: 'scopeId', limitMicroUsd: 'limitUsd', usedMicroUsd: 'usedUsd' },
  },
  'usage.limit_reached': {
    type: 'workspace.limits_changed',
    resource: 'Limit',
    fields: { scope: 'scope', scopeId: 'scopeId', limitMicroUsd: 'limitUsd', usedMicroUsd: 'usedUsd' },
  },
  // Spend recorded (GET /api/usage, admins only): what it cost and what is billed, for the admins' usage views.
  'usage.recorded': {
    type: 'workspace.billing_changed',
    resource: 'Usage',
    fields: { costMicroUsd: 'totals', billedMicroUsd: 'totals' },
  },
  // Artifacts (GET /api/artifacts/:id): what a list shows of one; the content is read over REST.
  'artifact.created': {
    type: 'workspace.artifact_changed',
    resource: 'Artifact',
    fields: {
      artifactId: 'id',
      roomId: 'roomId',
      taskId: 'taskId',
      kind: 'kind',
      title: 'title',
      runId: 'runId',
      fileId: 'fileId',
      url: 'url',
    },
  },
  'artifact.updated': {
    type: 'workspace.artifact_changed',
    resource: 'Artifact',
    fields: { artifactId: 'id', roomId: 'roomId', taskId: 'taskId', kind: 'kind', title: 'title', version: 'version' },
  },
  // Agents' threads and runs (GET /api/threads/:id: the Thread, its runs, their items and groups), to the readers of
  // their room. A run's lifecycle is a change of its thread; a lease renewed is nobody's news.
  'thread.created': {
    type: 'agent.thread_changed',
    resource: 'Thread',
    fields: { threadId: 'id', agentId: 'agentId', roomId: 'roomId', taskId: 'taskId', workType: 'workType' },
  },
  'thread.run_queued': {
    type: 'agent.thread_changed',
    resource: 'Thread',
    fields: { threadId: 'id', roomId: 'roomId', runId: 'activeRunId' },
  },
  'thread.input_queued': { type: 'agent.thread_changed', resource: 'Thread', fields: { threadId: 'id', roomId: 'roomId' } },
  'thread.run_finished': { type: 'agent.thread_changed', resource: 'Thread', fields: { threadId: 'id', roomId: 'roomId' } },
  'thread.task_awaited': { type: 'agent.thread_changed', resource: 'Thread', fields: { threadId: 'id', roomId: 'roomId' } },
  'run.queued': {
    type: 'agent.thread_changed',
    resource: 'Run',
    fields: { runId: 'id', threadId: 'threadId', agentId: 'agentId', roomId: 'roomId', taskId: 'taskId', inputs: 'inputs' },
  },
  'run.claimed': { type: 'agent.thread_changed', resource: 'Run', fields: { runId: 'id', roomId: 'roomId' } },
  'run.action_required': {
    type: 'agent.thread_changed',
    resource: 'Run',
    fields: { runId: 'id', roomId: 'roomId', toolCallId: 'pendingAction', tool: 'pendingAction' },
  },
  'run.action_decided': { type: 'agent.thread_changed', resource: 'Run', fields: { runId: 'id', roomId: 'roomId' } },
  'run.completed': { type: 'agent.thread_changed', resource: 'Run', fields: { runId: 'id', roomId: 'roomId' } },
  'run.failed': {
    type: 'agent.thread_changed',
    resource: 'Run',
    fields: { runId: 'id', roomId: 'roomId', code: 'outcome', message: 'outcome' },
  },
  'run.incomplete': {
    type: 'agent.thread_changed',
    resource: 'Run',
    fields: { runId: 'id', roomId: 'roomId', reason: 'outcome', detail: 'outcome' },
  },
  'run.cancelled': { type: 'agent.thread_changed', resource: 'Run', fields: { runId: 'id', roomId: 'roomId' } },
  'run.item_added': {
    type: 'agent.run_item_updated',
    resource: 'RunItem',
    fields: {
      runId: 'runId',
      itemId: 'id',
      groupId: 'groupId',
      sequence: 'sequence',
      kind: 'kind',
      status: 'status',
      content: 'content',
      toolCallId: 'toolCallId',
      tool: 'tool',
      arguments: 'arguments',
    },
  },
  'run.item_updated': {
    type: 'agent.run_item_updated',
    resource: 'RunItem',
    fields: { runId: 'runId', itemId: 'id', sequence: 'sequence', status: 'status', content: 'content' },
  },
  'run.item_group_updated': {
    type: 'agent.run_item_group_updated',
    resource: 'RunItemGroup',
    fields: { runId: 'runId', groupId: 'id', kind: 'kind', status: 'status' },
  },
  'artifact.deleted': {
    type: 'workspace.artifact_changed',
    resource: 'Artifact',
    fields: { artifactId: 'id', roomId: 'roomId', taskId: 'taskId' },
  },
}

const pick = (item: Record<string, unknown>, keys: readonly string[]) =>
  Object.fromEntries(keys.filter((k) => item[k] !== undefined).map((k) => [k, item[k]]))

/**
 * The realtime event a domain event becomes, its data cut to the allow-list; null when it is not delivered. An
 * event grouped under a broader realtime type (`workspace.room_changed`) names what happened as `change`.
 */
export function realtimePayload(type: string, data: unknown): { type: string; data: Record<string, unknown> } | null {
  const payload = (realtimePayloads as Readonly<Record<string, RealtimePayload<Record<string, unknown>>>>)[type]
  if (!payload) return null
  const source = data as Record<string, unknown>
  const out: Record<string, unknown> = payload.type === type ? {} : { change: type }
  for (const [key, shown] of Object.entries(payload.fields)) {
    const value = source[key]
    if (value === undefined || shown === undefined) continue
    out[key] = typeof shown === 'string' ? value : (value as Record<string, unknown>[]).map((item) => pick(item, shown.keys))
  }
  return { type: payload.type, data: out }
}

/** The domain event types the fan-out delivers: those the table lists, and no other. */
export const deliveredEventTypes: ReadonlySet<string> = new Set(Object.keys(realtimePayloads))

/** Every realtime event type a queue may ask for: those the table delivers (every type API.md names). */
export const realtimeEventTypes = [...new Set(Object.values(realtimePayloads).map((p) => p!.type))] as [string, ...string[]]
