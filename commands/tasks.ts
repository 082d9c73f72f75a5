import { createRoute, z } from '@hono/zod-openapi'
import { LRUCache } from 'lru-cache'
import { type EventStore, streamName } from '../adapters/event-store.ts'
import { agentStream, orgStream } from '../adapters/streams.ts'
import { agent, mayUseAgent } from '../domain/agents.ts'
import { DomainError } from '../domain/decider.ts'
import { type OrgState, org } from '../domain/orgs.ts'
import { type RoomState, room } from '../domain/rooms.ts'
import {
  type Candidate,
  type Gate,
  type LiveTask,
  type PersonRef,
  type ReviewGates,
  TASK_COMMENT_MAX,
  TASK_DESCRIPTION_MAX,
  TASK_REVIEW_TEXT_MAX,
  TASK_STATUSES,
  TASK_TITLE_MAX,
  type TaskActor,
  type TaskCommand,
  type TaskState,
  type TaskStatus,
  task,
} from '../domain/tasks.ts'
import type { AppDeps } from '../http/context.ts'
import { actorOf, type Principal, principalOf } from '../http/principal.ts'
import { router } from '../http/router.ts'
import { ClientChosenId, json, jsonBody, Position, problemResponse, Uuid } from '../http/schemas.ts'
import { bearerSecurity, positionOf } from '../http/tenant-route.ts'
import { commandContext, pipelineDeps } from './command-context.ts'
import { type CommandContext, type DecisionReader, handleCommand, loadState, type PipelineDeps } from './pipeline.ts'
import { roomStream } from './rooms.ts'

export const taskStream = (id: string) => streamName('task', id)

export const loadTask = (store: EventStore, taskId: string, tenantId: string | null): Promise<TaskState> =>
  loadState(store, task, taskStream(taskId), tenantId)

export const taskActor = (me: Principal): TaskActor => ({
  userId: me.userId,
  role: me.role,
  type: me.type === 'agent' ? 'agent' : 'user',
})

/** How a client names a person on a task: a person by `userId`, an agent by `agentId`. */
export type PersonInput = { userId?: string | undefined; agentId?: string | undefined }

const refOf = (p: PersonInput): PersonRef => (p.agentId ? { id: p.agentId, type: 'agent' } : { id: p.userId!, type: 'user' })

/** Someone as the org stream knows them; null when the org has no such user of that kind. */
export const candidateOf = (o: OrgState, ref: PersonRef): Candidate => {
  if (o.status === 'none') return null
  const m = o.members.get(ref.id)
  if (!m || (m.type === 'agent') !== (ref.type === 'agent')) return null
  return { id: ref.id, type: ref.type, role: m.role, active: m.active }
}

/**
 * Someone put on a task in `roomId`: as the org knows them, and for an agent whether the actor may use it there (its
 * access, read in the decision: a change of access since is a conflict, not a bypass).
 */
async function candidateIn(
  read: DecisionReader,
  tenantId: string,
  ref: PersonRef,
  actor: TaskActor,
  roomId: string,
): Promise<Candidate> {
  const candidate = candidateOf(await read(org, orgStream(tenantId)), ref)
  if (candidate?.type !== 'agent') return candidate
  return { ...candidate, usable: mayUseAgent(await read(agent, agentStream(ref.id)), actor, roomId) }
}

// The home room never changes once onboarding made it: found once per tenant, then remembered.
const homeRooms = new LRUCache<string, string>({ max: 10_000 })

/**
 * The org's home room: the first room of the tenant's history, which onboarding creates right after the org.
 * Null for an org that has none (one made by tools without onboarding): the caller then names the room.
 */
export async function homeRoomOf(store: EventStore, tenantId: string): Promise<string | null> {
  const known = homeRooms.get(tenantId)
  if (known) return known
  const [first] = await store.readTenant(tenantId, { types: ['room.created'], match: { kind: 'room' }, maxCount: 1 })
  const roomId = (first?.data as { roomId?: string } | undefined)?.roomId ?? null
  if (roomId) homeRooms.set(tenantId, roomId)
  return roomId
}

export type CreateTaskInput = {
  /** The new task's id (a retried create under it answers as the first time); a fresh one by default. */
  readonly taskId?: string | undefined
  readonly title: string
  readonly description?: string | undefined
  /** The room it lives in: by default its parent's, else the org's home room. */
  readonly roomId?: string | undefined
  readonly parentId?: string | undefined
  readonly assignee?: PersonInput | null | undefined
  readonly reviewGates?: Partial<ReviewGates> | undefined
  readonly actor: TaskActor
}

/**
 * Creates a task (the routes' and any other context's way, e.g. recurring tasks' instances): a subtask is first
 * listed on its parent's stream, then created conditioned on the parent (see domain/tasks.ts for why that order
 * keeps "a parent is done only once its children are" safe under concurrency).
 */
export async function createTask(deps: PipelineDeps, ctx: CommandContext, input: CreateTaskInput) {
  if (!ctx.tenantId) throw new Error('a task is created in a tenant')
  const tenantId = ctx.tenantId
  const taskId = input.taskId ?? ctx.newId()
  const at = ctx.now().toISOString()
  // The room: the one named, else the parent's, else the home room (none of these is decided on: the creation
  // reads the room it settles on, and is conditioned on it).
  const parentNow = input.parentId ? await loadState(deps.store, task, taskStream(input.parentId), tenantId) : null
  const roomId =
    input.roomId ??
    (parentNow?.exists && !parentNow.deleted ? parentNow.roomId : ((await homeRoomOf(deps.store, tenantId)) ?? null))
  if (!roomId) throw new DomainError('TASK_ROOM_REQUIRED', 'this org has no home room: name the room the task lives in')
  const creation = async (read: DecisionReader) => {
    const ref = input.assignee ? refOf(input.assignee) : null
    const [roomState, parent, candidate] = await Promise.all([
      read(room, roomStream(roomId)),
      input.parentId ? readTaskInRoom(read, input.parentId) : null,
      ref ? candidateIn(read, tenantId, ref, input.actor, roomId) : null,
    ])
    return {
      type: 'create' as const,
      taskId,
      title: input.title,
      description: input.description ?? '',
      roomId,
      parent,
      assignee: ref ? { ref, candidate } : null,
      reviewGates: { plan: input.reviewGates?.plan ?? false, result: input.reviewGates?.result ?? false },
      actor: input.actor,
      room: roomState,
      at,
    }
  }
  if (input.parentId) {
    const parentId = input.parentId
    const existing = await deps.store.readStream(taskStream(taskId), { maxCount: 1 })
    if (existing[0] && existing[0].metadata.tenantId !== tenantId)
      throw new DomainError('NOT_FOUND', 'no such resource', 'not_found')
    if (!existing[0]) {
      // A creation that would be refused lists nothing on the parent: it is decided first on the streams as they
      // stand, with the listing it would add (a refusal here appends nothing; a race is left to the real decisions).
      const dry = await creation((d, stream) => loadState(deps.store, d, stream, tenantId))
      const listed = dry.parent?.task.exists ? { ...dry.parent.task, subtasks: [...dry.parent.task.subtasks, taskId] } : null
      task.decide({ ...dry, parent: dry.parent && listed ? { ...dry.parent, task: listed } : dry.parent }, task.initialState)
    }
    await handleCommand(
      deps,
      task,
      taskStream(parentId),
      async (parent, read) => {
        if (!parent.exists || parent.deleted) throw parentNotFound()
        return {
          type: 'add_subtask' as const,
          taskId: parentId,
          subtaskId: taskId,
          actor: input.actor,
          room: await read(room, roomStream(parent.roomId)),
          at,
        }
      },
      ctx,
    ).catch((e) => {
      throw e instanceof DomainError && e.code === 'TASK_NOT_FOUND' ? parentNotFound() : e
    })
  }
  const result = await handleCommand(deps, task, taskStream(taskId), (_, read) => creation(read), ctx, { create: true })
  return { taskId, position: result.position }
}

const parentNotFound = () => new DomainError('TASK_PARENT_NOT_FOUND', 'no such parent task', 'not_found')

/** A task and its room, read for a decision on another task (its parent, a child, a dependency). */
async function readTaskInRoom(read: DecisionReader, taskId: string) {
  const t = await read(task, taskStream(taskId))
  const roomState: RoomState = t.exists ? await read(room, roomStream(t.roomId)) : { exists: false }
  return { taskId, task: t, room: roomState }
}

const readChildren = (read: DecisionReader, t: LiveTask) => Promise.all(t.subtasks.map((id) => read(task, taskStream(id))))

/** How many tasks a cycle check reads at most before it gives up (and refuses the link). */
export const DEPENDENCY_WALK_MAX = 500

/**
 * Whether `from` reaches `target` along depends-on links, reading each task through the decision's reader (so the
 * link's append is conditioned on every task the walk read: a link closing a cycle elsewhere at the same time
 * moves one of them, and one of the two decisions is taken again and refused).
 */
async function dependencyWalk(read: DecisionReader, from: string, target: string): Promise<'clear' | 'cycle' | 'too_large'> {
  const seen = new Set<string>([from])
  let frontier = [from]
  while (frontier.length > 0) {
    const states = await Promise.all(frontier.map((id) => read(task, taskStream(id))))
    const next: string[] = []
    for (const s of states) {
      if (!s.exists || s.deleted) continue
      for (const id of s.dependsOn) {
        if (id === target) return 'cycle'
        if (seen.has(id)) continue
        if (seen.size >= DEPENDENCY_WALK_MAX) return 'too_large'
        seen.add(id)
        next.push(id)
      }
    }
    frontier = next
  }
  return 'clear'
}

type Change = Exclude<TaskCommand, { type: 'patch' | 'create' }>

/**
 * Decides changes on an existing task: the builder gets the task, its room (read, so the append is conditioned on
 * it) and the reader for any other stream it needs.
 */
async function onTask(
  deps: PipelineDeps,
  ctx: CommandContext,
  taskId: string,
  build: (t: LiveTask, roomState: RoomState, read: DecisionReader) => Promise<Change[]> | Change[],
) {
  return handleCommand(
    deps,
    task,
    taskStream(taskId),
    async (state, read) => {
      if (!state.exists || state.deleted) throw new DomainError('TASK_NOT_FOUND', 'no such task', 'not_found')
      const changes = await build(state, await read(room, roomStream(state.roomId)), read)
      return { type: 'patch' as const, taskId, changes }
    },
    ctx,
  )
}

/** Links a task to one it depends on (across rooms), refusing a cycle: the route's and the seed's way. */
export const addDependency = (deps: PipelineDeps, ctx: CommandContext, taskId: string, dependsOnId: string, actor: TaskActor) =>
  onTask(deps, ctx, taskId, async (_, roomState, read) => [
    {
      type: 'add_dependency',
      taskId,
      dependsOn: await readTaskInRoom(read, dependsOnId),
      walk: dependsOnId === taskId ? 'cycle' : await dependencyWalk(read, dependsOnId, taskId),
      actor,
      room: roomState,
      at: ctx.now().toISOString(),
    },
  ])

/** Deletes a task (admins and its reporter): the route's, and the agents' delete_task tool's, way. */
export const deleteTask = (deps: PipelineDeps, ctx: CommandContext, taskId: string, actor: TaskActor) =>
  onTask(deps, ctx, taskId, async (t, roomState, read) => [
    { type: 'delete', taskId, actor, room: roomState, children: await readChildren(read, t), at: ctx.now().toISOString() },
  ])

/** What a change of a task names; what it leaves out stays as it is. */
export type TaskUpdate = {
  readonly title?: string | undefined
  readonly description?: string | undefined
  readonly status?: TaskStatus | undefined
  /** Someone new, or null for nobody. */
  readonly assignee?: PersonInput | null | undefined
  readonly reviewGates?: Partial<ReviewGates> | undefined
}

/**
 * Changes a task's title, description, assignee, review gates and status, all decided as one (all recorded or
 * none): the PATCH route's, and the agents' update_task tool's, way. What is already so records nothing.
 */
export const updateTask = (deps: PipelineDeps, ctx: CommandContext, taskId: string, change: TaskUpdate, actor: TaskActor) =>
  onTask(deps, ctx, taskId, async (t, roomState, read) => {
    const common = { taskId, actor, room: roomState, at: ctx.now().toISOString() }
    const changes: Change[] = []
    if (change.title !== undefined || change.description !== undefined)
      changes.push({ ...common, type: 'update', title: change.title, description: change.description })
    if (change.assignee !== undefined) {
      if (!ctx.tenantId) throw new Error('a task is changed in a tenant')
      const ref = change.assignee ? refOf(change.assignee) : null
      const candidate = ref ? await candidateIn(read, ctx.tenantId, ref, actor, t.roomId) : null
      changes.push({ ...common, type: 'assign', assignee: ref ? { ref, candidate } : null })
    }
    if (change.reviewGates) changes.push({ ...common, type: 'set_review_gates', ...change.reviewGates })
    if (change.status !== undefined) {
      // What the rules on subtasks need: the children for a close, the parent for a reopen.
      const closing = change.status === 'done'
      const reopening = (t.status === 'done' || t.status === 'cancelled') && change.status !== t.status
      const [children, parent] = await Promise.all([
        closing ? readChildren(read, t) : [],
        reopening && t.parentId ? read(task, taskStream(t.parentId)) : null,
      ])
      changes.push({ ...common, type: 'change_status', to: change.status, children, parent })
    }
    return changes
  })

/** Submits a task's plan or result for a person's approval: the route's, and the agents' tool's, way. */
export const submitReview = (
  deps: PipelineDeps,
  ctx: CommandContext,
  taskId: string,
  gate: Gate,
  text: string,
  actor: TaskActor,
) =>
  onTask(deps, ctx, taskId, (_, roomState) => [
    { type: 'submit_review', taskId, gate, text, actor, room: roomState, at: ctx.now().toISOString() },
  ])

// --- HTTP

const PersonRefBody = z
  .object({ userId: Uuid.optional(), agentId: Uuid.optional() })
  .refine((m) => Boolean(m.userId) !== Boolean(m.agentId), { message: 'give exactly one of userId and agentId' })
  .openapi('TaskPersonRef')

const Gates = z.object({ plan: z.boolean().optional(), result: z.boolean().optional() }).openapi('ReviewGatesInput', {
  description:
    'plan: a person approves the agent’s plan before work starts (in_progress); result: a person approves the result before the task is done',
})

const Answer = z.object({ taskId: Uuid, position: Position })
const params = z.object({ id: Uuid })

const routes = {
  create: createRoute({
    method: 'post',
    path: '/api/tasks',
    tags: ['tasks'],
    summary: 'Create a task (or a subtask, with parentId)',
    description:
      'roomId defaults to the parent’s room for a subtask, else to the org’s home room. The caller must be able to read the room. ' +
      'An assignee must be an active user of the org who can read the room (an agent: a member of it): 422 TASK_ASSIGNEE_* otherwise.',
    security: bearerSecurity,
    request: jsonBody(
      z.object({
        id: ClientChosenId,
        title: z.string().min(1).max(TASK_TITLE_MAX),
        description: z.string().max(TASK_DESCRIPTION_MAX).optional(),
        roomId: Uuid.optional(),
        parentId: Uuid.optional(),
        assignee: PersonRefBody.nullable().optional(),
        reviewGates: Gates.optional(),
      }),
    ),
    responses: {
      201: json('created', Answer),
      404: problemResponse('no such room or parent'),
      409: problemResponse('the id is taken by another task'),
      422: problemResponse('refused: assignee, archived room, closed parent'),
    },
  }),
  update: createRoute({
    method: 'patch',
    path: '/api/tasks/{id}',
    tags: ['tasks'],
    summary: 'Change a task’s title, description, assignee, review gates or status, all at once or none',
    description:
      'Stored statuses move open → in_progress → blocked → done | cancelled, and done or cancelled reopen (to open); ' +
      'any other move is 422 TASK_TRANSITION_INVALID naming the allowed ones. A parent is done only once its subtasks are ' +
      'done or cancelled (TASK_SUBTASKS_OPEN). With a plan gate, work starts once the plan is approved (TASK_PLAN_NOT_APPROVED); ' +
      'with a result gate, the task is done when its result is approved (TASK_RESULT_NOT_APPROVED).',
    security: bearerSecurity,
    request: {
      params,
      ...jsonBody(
        z
          .object({
            title: z.string().min(1).max(TASK_TITLE_MAX).optional(),
            description: z.string().max(TASK_DESCRIPTION_MAX).optional(),
            status: z.enum(TASK_STATUSES).optional(),
            assignee: PersonRefBody.nullable().optional(),
            reviewGates: Gates.optional(),
          })
          // An empty change would answer for a task the caller may not even see.
          .refine((b) => Object.values(b).some((v) => v !== undefined), { message: 'name at least one field to change' }),
      ),
    },
    responses: {
      200: json('changed', Answer),
      403: problemResponse('not one of its people, its room’s members or an admin'),
      404: problemResponse('no such task'),
      422: problemResponse('refused transition or assignee'),
    },
  }),
  remove: createRoute({
    method: 'delete',
    path: '/api/tasks/{id}',
    tags: ['tasks'],
    summary: 'Delete a task (admins and its reporter); a task with subtasks keeps them until they are deleted',
    security: bearerSecurity,
    request: { params },
    responses: {
      200: json('deleted', Answer),
      403: problemResponse('not an admin or the reporter'),
      404: problemResponse('no such task'),
      422: problemResponse('it has subtasks (TASK_HAS_SUBTASKS)'),
    },
  }),
  addDependency: createRoute({
    method: 'post',
    path: '/api/tasks/{id}/dependencies',
    tags: ['tasks'],
    summary: 'This task depends on another (of any room the caller can read)',
    description:
      'A link that would close a cycle is 422 TASK_DEPENDENCY_CYCLE; a task the caller cannot read, or of another org, is 404.',
    security: bearerSecurity,
    request: { params, ...jsonBody(z.object({ taskId: Uuid })) },
    responses: {
      200: json('linked', Answer.extend({ dependsOnId: Uuid })),
      404: problemResponse('no such task'),
      422: problemResponse('a cycle'),
    },
  }),
  removeDependency: createRoute({
    method: 'delete',
    path: '/api/tasks/{id}/dependencies/{dependsOnId}',
    tags: ['tasks'],
    summary: 'Remove a depends-on link',
    security: bearerSecurity,
    request: { params: z.object({ id: Uuid, dependsOnId: Uuid }) },
    responses: { 200: json('unlinked', Answer), 404: problemResponse('no such task') },
  }),
  person: (method: 'put' | 'delete', kind: 'watchers' | 'assistants') =>
    createRoute({
      method,
      path: `/api/tasks/{id}/${kind}/{${kind === 'watchers' ? 'userId' : 'agentId'}}`,
      tags: ['tasks'],
      summary:
        kind === 'watchers'
          ? method === 'put'
            ? 'Watch a task (yourself: anyone who reads it; someone else: who may change it)'
            : 'Stop watching a task (or remove a watcher)'
          : method === 'put'
            ? 'Add an agent assistant beside the task’s human assignee (the agent must be in the task’s room)'
            : 'Remove an agent assistant',
      security: bearerSecurity,
      request: {
        params: kind === 'watchers' ? z.object({ id: Uuid, userId: Uuid }) : z.object({ id: Uuid, agentId: Uuid }),
      },
      responses: {
        200: json('done', Answer),
        403: problemResponse('not allowed'),
        404: problemResponse('no such task'),
        422: problemResponse('refused person'),
      },
    }),
  submit: (gate: 'plan' | 'result') =>
    createRoute({
      method: 'post',
      path: `/api/tasks/{id}/${gate}`,
      tags: ['tasks'],
      summary:
        gate === 'plan'
          ? 'Submit the plan for a person’s approval (the assignee or an assistant)'
          : 'Submit the result for a person’s approval (the assignee or an assistant, while in progress); approval closes the task',
      security: bearerSecurity,
      request: { params, ...jsonBody(z.object({ text: z.string().min(1).max(TASK_REVIEW_TEXT_MAX) })) },
      responses: {
        200: json('submitted', Answer),
        403: problemResponse('not the assignee or an assistant'),
        404: problemResponse('no such task'),
        422: problemResponse('no such gate, or approved already'),
      },
    }),
  approve: createRoute({
    method: 'post',
    path: '/api/tasks/{id}/approvals',
    tags: ['tasks'],
    summary: 'Approve or reject the submitted plan or result (a person who may change the task, not its submitter)',
    description: 'Approving the result closes the task (done), under the same rule on subtasks as any close.',
    security: bearerSecurity,
    request: {
      params,
      ...jsonBody(
        z.object({
          gate: z.enum(['plan', 'result']),
          decision: z.enum(['approve', 'reject']),
          comment: z.string().max(TASK_COMMENT_MAX).optional(),
        }),
      ),
    },
    responses: {
      200: json('decided', Answer),
      403: problemResponse('an agent, or the submitter'),
      404: problemResponse('no such task'),
      422: problemResponse('nothing waits for a decision'),
    },
  }),
}

export function tasksCommands(deps: AppDeps) {
  const app = router()
  const pd = pipelineDeps(deps)

  app.openapi(routes.create, async (c) => {
    const me = principalOf(c)
    const body = c.req.valid('json')
    const ctx = commandContext(c, actorOf(me), me.tenantId)
    const r = await createTask(pd, ctx, {
      taskId: body.id,
      title: body.title,
      description: body.description,
      roomId: body.roomId,
      parentId: body.parentId,
      assignee: body.assignee,
      reviewGates: body.reviewGates,
      actor: taskActor(me),
    })
    return c.json({ taskId: r.taskId, position: positionOf(r.position) }, 201)
  })

  app.openapi(routes.update, async (c) => {
    const me = principalOf(c)
    const { id } = c.req.valid('param')
    const ctx = commandContext(c, actorOf(me), me.tenantId)
    const r = await updateTask(pd, ctx, id, c.req.valid('json'), taskActor(me))
    return c.json({ taskId: id, position: positionOf(r.position) }, 200)
  })

  app.openapi(routes.remove, async (c) => {
    const me = principalOf(c)
    const { id } = c.req.valid('param')
    const ctx = commandContext(c, actorOf(me), me.tenantId)
    const r = await deleteTask(pd, ctx, id, taskActor(me))
    return c.json({ taskId: id, position: positionOf(r.position) }, 200)
  })

  app.openapi(routes.addDependency, async (c) => {
    const me = principalOf(c)
    const { id } = c.req.valid('param')
    const { taskId: dependsOnId } = c.req.valid('json')
    const ctx = commandContext(c, actorOf(me), me.tenantId)
    const r = await addDependency(pd, ctx, id, dependsOnId, taskActor(me))
    return c.json({ taskId: id, dependsOnId, position: positionOf(r.position) }, 200)
  })

  app.openapi(routes.removeDependency, async (c) => {
    const me = principalOf(c)
    const { id, dependsOnId } = c.req.valid('param')
    const ctx = commandContext(c, actorOf(me), me.tenantId)
    const r = await onTask(pd, ctx, id, (_, roomState) => [
      { type: 'remove_dependency', taskId: id, dependsOnId, actor: taskActor(me), room: roomState, at: ctx.now().toISOString() },
    ])
    return c.json({ taskId: id, position: positionOf(r.position) }, 200)
  })

  for (const method of ['put', 'delete'] as const) {
    app.openapi(routes.person(method, 'watchers'), async (c) => {
      const me = principalOf(c)
      const { id, userId } = c.req.valid('param') as { id: string; userId: string }
      const ctx = commandContext(c, actorOf(me), me.tenantId)
      const r = await onTask(pd, ctx, id, async (_, roomState, read) => {
        const common = { taskId: id, userId, actor: taskActor(me), room: roomState, at: ctx.now().toISOString() }
        if (method === 'delete') return [{ ...common, type: 'unwatch' }]
        // Anyone of the org may watch: a person by their user id, an agent by its id (its user id too).
        const o = userId === me.userId ? null : await read(org, orgStream(me.tenantId))
        const member = o && o.status !== 'none' ? o.members.get(userId) : undefined
        const candidate: Candidate = member
          ? { id: userId, type: member.type === 'agent' ? 'agent' : 'user', role: member.role, active: member.active }
          : null
        return [{ ...common, type: 'watch', candidate }]
      })
      return c.json({ taskId: id, position: positionOf(r.position) }, 200)
    })
    app.openapi(routes.person(method, 'assistants'), async (c) => {
      const me = principalOf(c)
      const { id, agentId } = c.req.valid('param') as { id: string; agentId: string }
      const ctx = commandContext(c, actorOf(me), me.tenantId)
      const r = await onTask(pd, ctx, id, async (t, roomState, read) => {
        const common = { taskId: id, agentId, actor: taskActor(me), room: roomState, at: ctx.now().toISOString() }
        if (method === 'delete') return [{ ...common, type: 'remove_assistant' }]
        // Named as an agent or not, the decider says which it is: a person is no assistant.
        const o = await read(org, orgStream(me.tenantId))
        const asAgent = o.status !== 'none' && o.members.get(agentId)?.type === 'agent'
        const ref: PersonRef = { id: agentId, type: asAgent ? 'agent' : 'user' }
        return [
          { ...common, type: 'add_assistant', candidate: await candidateIn(read, me.tenantId, ref, common.actor, t.roomId) },
        ]
      })
      return c.json({ taskId: id, position: positionOf(r.position) }, 200)
    })
  }

  for (const gate of ['plan', 'result'] as const) {
    app.openapi(routes.submit(gate), async (c) => {
      const me = principalOf(c)
      const { id } = c.req.valid('param')
      const { text } = c.req.valid('json')
      const ctx = commandContext(c, actorOf(me), me.tenantId)
      const r = await submitReview(pd, ctx, id, gate, text, taskActor(me))
      return c.json({ taskId: id, position: positionOf(r.position) }, 200)
    })
  }

  app.openapi(routes.approve, async (c) => {
    const me = principalOf(c)
    const { id } = c.req.valid('param')
    const body = c.req.valid('json')
    const ctx = commandContext(c, actorOf(me), me.tenantId)
    const r = await onTask(pd, ctx, id, async (t, roomState, read) => [
      {
        type: 'decide_review',
        taskId: id,
        gate: body.gate,
        decision: body.decision,
        comment: body.comment ?? null,
        // An approved result closes the task: its children are read for the rule on subtasks.
        children: body.gate === 'result' && body.decision === 'approve' ? await readChildren(read, t) : [],
        actor: taskActor(me),
        room: roomState,
        at: ctx.now().toISOString(),
      },
    ])
    return c.json({ taskId: id, position: positionOf(r.position) }, 200)
  })

  return app
}
