import { createRoute, z } from '@hono/zod-openapi'
import { comparePositions, type EventStore, streamName } from '../adapters/event-store.ts'
import { MESSAGE_TEXT_MAX, type Mention, type MessageCommand, type MessageState, message, readMark } from '../domain/messages.ts'
import { type RoomActor, type RoomState, room } from '../domain/rooms.ts'
import { canReadTask, task } from '../domain/tasks.ts'
import type { AppDeps } from '../http/context.ts'
import { actorOf, type Principal, principalOf } from '../http/principal.ts'
import { badRequest, notFound } from '../http/problem.ts'
import { router } from '../http/router.ts'
import { ClientChosenId, json, jsonBody, Position, problemResponse, Uuid } from '../http/schemas.ts'
import { bearerSecurity, positionOf } from '../http/tenant-route.ts'
import { commandContext, pipelineDeps } from './command-context.ts'
import { resolveMentions } from './directory.ts'
import { saveDraft } from './drafts.ts'
import { type CommandContext, type DecisionReader, handleCommand, type PipelineDeps, readTenantStream } from './pipeline.ts'
import { roomActor, roomStream } from './rooms.ts'
import { taskStream } from './tasks.ts'

export const messageStream = (id: string) => streamName('message', id)
const perUser = (category: string, roomId: string, userId: string) => streamName(category, `${roomId}_${userId}`)

const hiddenMessage = () => notFound('no such message')

const routes = {
  post: createRoute({
    method: 'post',
    path: '/api/rooms/{id}/messages',
    tags: ['messages'],
    summary: 'Post a message, or a reply in a thread',
    security: bearerSecurity,
    request: {
      params: z.object({ id: Uuid }),
      ...jsonBody(z.object({ id: ClientChosenId, text: z.string().min(1).max(MESSAGE_TEXT_MAX), threadRootId: Uuid.optional() })),
    },
    responses: {
      201: json('posted', z.object({ messageId: Uuid, position: Position })),
      404: problemResponse('no such room'),
      409: problemResponse('the id is taken by another message'),
      422: problemResponse('archived room or invalid thread'),
    },
  }),
  postToTask: createRoute({
    method: 'post',
    path: '/api/tasks/{id}/messages',
    tags: ['messages', 'tasks'],
    summary: 'Post a message to a task’s conversation (in the task’s room), or a reply in one of its threads',
    description:
      'A task’s conversation is part of its room: its messages are the room’s (same readers and writers, same ' +
      'edits, reactions and deletes) with `taskId` set, and the room’s own timeline leaves them out. ' +
      '`GET /api/tasks/{id}/messages` is its timeline.',
    security: bearerSecurity,
    request: {
      params: z.object({ id: Uuid }),
      ...jsonBody(z.object({ id: ClientChosenId, text: z.string().min(1).max(MESSAGE_TEXT_MAX), threadRootId: Uuid.optional() })),
    },
    responses: {
      201: json('posted', z.object({ messageId: Uuid, taskId: Uuid, position: Position })),
      403: problemResponse('not a member of the task’s room'),
      404: problemResponse('no such task'),
      409: problemResponse('the id is taken by another message'),
      422: problemResponse('archived room or invalid thread'),
    },
  }),
  edit: createRoute({
    method: 'patch',
    path: '/api/messages/{id}',
    tags: ['messages'],
    summary: 'Edit a message (its author); the previous text is kept',
    security: bearerSecurity,
    request: { params: z.object({ id: Uuid }), ...jsonBody(z.object({ text: z.string().min(1).max(MESSAGE_TEXT_MAX) })) },
    responses: {
      200: json('edited', z.object({ messageId: Uuid, position: Position })),
      404: problemResponse('no such message'),
    },
  }),
  remove: createRoute({
    method: 'delete',
    path: '/api/messages/{id}',
    tags: ['messages'],
    summary: 'Delete a message (its author or an admin)',
    security: bearerSecurity,
    request: { params: z.object({ id: Uuid }) },
    responses: {
      200: json('deleted', z.object({ messageId: Uuid, position: Position })),
      404: problemResponse('no such message'),
    },
  }),
  deleteRange: createRoute({
    method: 'post',
    path: '/api/rooms/{id}/messages/delete-range',
    tags: ['messages'],
    summary: 'Delete this message and everything after it (up to toMessageId), to rewind a conversation',
    security: bearerSecurity,
    request: { params: z.object({ id: Uuid }), ...jsonBody(z.object({ fromMessageId: Uuid, toMessageId: Uuid.optional() })) },
    responses: {
      200: json('deleted', z.object({ roomId: Uuid, deleted: z.number().int(), position: Position })),
      404: problemResponse('no such room or message'),
    },
  }),
  react: (method: 'put' | 'delete') =>
    createRoute({
      method,
      path: '/api/messages/{id}/reactions/{emoji}',
      tags: ['messages'],
      summary: method === 'put' ? 'React to a message' : 'Take a reaction back',
      security: bearerSecurity,
      request: { params: z.object({ id: Uuid, emoji: z.string().min(1).max(64) }) },
      responses: {
        200: json('done', z.object({ messageId: Uuid, position: Position })),
        404: problemResponse('no such message'),
      },
    }),
  read: createRoute({
    method: 'post',
    path: '/api/rooms/{id}/read',
    tags: ['messages'],
    summary: 'Mark a room read up to a message',
    security: bearerSecurity,
    request: { params: z.object({ id: Uuid }), ...jsonBody(z.object({ messageId: Uuid })) },
    responses: { 200: json('marked', z.object({ roomId: Uuid, position: Position })), 404: problemResponse('no such room') },
  }),
  draft: createRoute({
    method: 'put',
    path: '/api/rooms/{id}/draft',
    tags: ['messages'],
    summary: 'Save the caller’s draft in a room (empty text clears it)',
    description:
      'A draft is its author’s private scratch text, kept as it is now rather than as events: it appends nothing, ' +
      'reads back at once with the room, and is not delivered over realtime. `position` is the room’s, as for a ' +
      'command that changes nothing.',
    security: bearerSecurity,
    request: { params: z.object({ id: Uuid }), ...jsonBody(z.object({ text: z.string().max(MESSAGE_TEXT_MAX) })) },
    responses: { 200: json('saved', z.object({ roomId: Uuid, position: Position })), 404: problemResponse('no such room') },
  }),
}

type RangeMessages = { readonly messageIds: string[]; readonly authors: string[] }

/**
 * The live messages of a room from one message on (to another, inclusive), in the global order, read from the
 * event store: only this tenant's events, so no other tenant's write volume slows it down. Null when a bound
 * is not a message of this room.
 */
async function rangeOf(
  store: EventStore,
  tenantId: string,
  roomId: string,
  fromMessageId: string,
  toMessageId: string | undefined,
): Promise<RangeMessages | null> {
  const creation = async (id: string) => {
    const [created] = await readTenantStream(store, messageStream(id), tenantId)
    return created?.type === 'message.created' && (created.data as { roomId: string }).roomId === roomId ? created : null
  }
  const [from, to] = await Promise.all([creation(fromMessageId), toMessageId ? creation(toMessageId) : null])
  if (!from || (toMessageId && !to)) return null
  if (to && comparePositions(to.position, from.position) < 0) throw badRequest('toMessageId comes before fromMessageId')
  const events = await store.readTenant(tenantId, {
    types: ['message.created', 'message.deleted'],
    from: from.position,
    ...(to ? { to: to.position } : {}),
    match: { roomId },
  })
  const live = new Map<string, string>()
  for (const e of events) {
    const data = e.data as { messageId: string; authorId?: string }
    if (e.type === 'message.created') live.set(data.messageId, data.authorId!)
    else live.delete(data.messageId)
  }
  return { messageIds: [...live.keys()], authors: [...live.values()] }
}

/** Who posts: a person, or an agent (the agents worker posts its runs' answers as the agent). */
export type MessageAuthor = RoomActor & { readonly type: 'user' | 'agent' }

const authorOf = (me: Principal): MessageAuthor => ({ ...roomActor(me), type: me.type === 'agent' ? 'agent' : 'user' })

/**
 * Posts a message in a room, or in a task's conversation (in the task's room): the room (and the task, and the
 * thread's root) are read and the append conditioned on them, so a message never lands in a room its author just
 * left or a task just deleted. Under a client-chosen id, a retry answers as the first time.
 */
export function postMessage(
  deps: PipelineDeps,
  ctx: CommandContext,
  input: {
    readonly messageId: string
    readonly in: { readonly roomId: string } | { readonly taskId: string }
    readonly text: string
    readonly threadRootId?: string | undefined
    readonly mentions: Mention[]
    readonly author: MessageAuthor
  },
) {
  const { messageId, threadRootId, author } = input
  return handleCommand(
    deps,
    message,
    messageStream(messageId),
    async (_, read) => {
      // The task is read (and the append conditioned on it) like the room: a task deleted meanwhile takes no message.
      const t = 'taskId' in input.in ? await read(task, taskStream(input.in.taskId)) : null
      const roomId = 'roomId' in input.in ? input.in.roomId : t?.exists ? t.roomId : ''
      const [roomState, threadRoot] = await Promise.all([
        roomId ? read(room, roomStream(roomId)) : ({ exists: false } as const),
        threadRootId ? read(message, messageStream(threadRootId)).then((state) => ({ messageId: threadRootId, state })) : null,
      ])
      return {
        type: 'post' as const,
        messageId,
        roomId,
        text: input.text,
        threadRoot,
        ...(t && 'taskId' in input.in
          ? {
              task: {
                taskId: input.in.taskId,
                live: canReadTask(t, roomState, author.userId, author.role),
                roomId: t.exists ? t.roomId : null,
              },
            }
          : {}),
        mentions: input.mentions,
        room: roomState,
        actor: author,
        at: ctx.now().toISOString(),
      }
    },
    ctx,
    { create: true },
  )
}

export function messagesCommands(deps: AppDeps) {
  const app = router()
  const pd = pipelineDeps(deps)

  app.openapi(routes.post, async (c) => {
    const me = principalOf(c)
    const { id: roomId } = c.req.valid('param')
    const body = c.req.valid('json')
    const ctx = commandContext(c, actorOf(me), me.tenantId)
    const messageId = body.id ?? ctx.newId()
    const r = await postMessage(pd, ctx, {
      messageId,
      in: { roomId },
      text: body.text,
      threadRootId: body.threadRootId,
      mentions: await resolveMentions(deps.db, me, body.text),
      author: authorOf(me),
    })
    return c.json({ messageId, position: positionOf(r.position) }, 201)
  })

  app.openapi(routes.postToTask, async (c) => {
    const me = principalOf(c)
    const { id: taskId } = c.req.valid('param')
    const body = c.req.valid('json')
    const ctx = commandContext(c, actorOf(me), me.tenantId)
    const messageId = body.id ?? ctx.newId()
    const r = await postMessage(pd, ctx, {
      messageId,
      in: { taskId },
      text: body.text,
      threadRootId: body.threadRootId,
      mentions: await resolveMentions(deps.db, me, body.text),
      author: authorOf(me),
    })
    return c.json({ messageId, taskId, position: positionOf(r.position) }, 201)
  })

  /** A command on a message, decided on the room it lives in (read, and conditioned on, in the same attempt). */
  const inItsRoom =
    (build: (roomState: RoomState) => MessageCommand) =>
    async (state: MessageState, read: DecisionReader): Promise<MessageCommand> => {
      if (!state.exists) throw hiddenMessage()
      return build(await read(room, roomStream(state.roomId)))
    }

  /** Read marks are a member's own: a room the caller is not in does not exist for them. */
  const memberRoom = async (read: DecisionReader, roomId: string, me: Principal) => {
    const state = await read(room, roomStream(roomId))
    if (!state.exists || !state.members.has(me.userId)) throw notFound('no such room')
    return state
  }

  app.openapi(routes.edit, async (c) => {
    const me = principalOf(c)
    const { id } = c.req.valid('param')
    const { text } = c.req.valid('json')
    const ctx = commandContext(c, actorOf(me), me.tenantId)
    const mentions = await resolveMentions(deps.db, me, text)
    const r = await handleCommand(
      pd,
      message,
      messageStream(id),
      inItsRoom((roomState) => ({
        type: 'edit',
        messageId: id,
        text,
        mentions,
        room: roomState,
        actor: roomActor(me),
        at: ctx.now().toISOString(),
      })),
      ctx,
    )
    return c.json({ messageId: id, position: positionOf(r.position) }, 200)
  })

  app.openapi(routes.remove, async (c) => {
    const me = principalOf(c)
    const { id } = c.req.valid('param')
    const ctx = commandContext(c, actorOf(me), me.tenantId)
    const r = await handleCommand(
      pd,
      message,
      messageStream(id),
      inItsRoom((roomState) => ({
        type: 'delete',
        messageId: id,
        room: roomState,
        actor: roomActor(me),
        at: ctx.now().toISOString(),
      })),
      ctx,
    )
    return c.json({ messageId: id, position: positionOf(r.position) }, 200)
  })

  for (const method of ['put', 'delete'] as const) {
    app.openapi(routes.react(method), async (c) => {
      const me = principalOf(c)
      const { id, emoji } = c.req.valid('param')
      const ctx = commandContext(c, actorOf(me), me.tenantId)
      const r = await handleCommand(
        pd,
        message,
        messageStream(id),
        inItsRoom((roomState) => ({
          type: 'react',
          messageId: id,
          emoji,
          reacted: method === 'put',
          room: roomState,
          actor: roomActor(me),
          at: ctx.now().toISOString(),
        })),
        ctx,
      )
      return c.json({ messageId: id, position: positionOf(r.position) }, 200)
    })
  }

  app.openapi(routes.deleteRange, async (c) => {
    const me = principalOf(c)
    const { id: roomId } = c.req.valid('param')
    const { fromMessageId, toMessageId } = c.req.valid('json')
    const ctx = commandContext(c, actorOf(me), me.tenantId)
    // The range is decided on the room's stream, which a post into the room is conditioned on: a message posted
    // after the range was read sorts after the range delete (and is not part of it).
    const r = await handleCommand(
      pd,
      room,
      roomStream(roomId),
      async () => {
        const range = await rangeOf(deps.store, me.tenantId, roomId, fromMessageId, toMessageId)
        if (!range) throw hiddenMessage()
        return {
          type: 'delete_range' as const,
          roomId,
          fromMessageId,
          toMessageId: toMessageId ?? range.messageIds.at(-1) ?? fromMessageId,
          ...range,
          actor: roomActor(me),
          at: ctx.now().toISOString(),
        }
      },
      ctx,
    )
    const deleted = r.events[0]?.type === 'message.range_deleted' ? r.events[0].data.messageIds.length : 0
    return c.json({ roomId, deleted, position: positionOf(r.position) }, 200)
  })

  app.openapi(routes.read, async (c) => {
    const me = principalOf(c)
    const { id: roomId } = c.req.valid('param')
    const { messageId } = c.req.valid('json')
    const ctx = commandContext(c, actorOf(me), me.tenantId)
    const r = await handleCommand(
      pd,
      readMark,
      perUser('room_read', roomId, me.userId),
      async (_, read) => {
        const [, msg] = await Promise.all([memberRoom(read, roomId, me), read(message, messageStream(messageId))])
        if (!msg.exists || msg.roomId !== roomId) throw hiddenMessage()
        return { roomId, userId: me.userId, messageId, at: ctx.now().toISOString() }
      },
      ctx,
    )
    return c.json({ roomId, position: positionOf(r.position) }, 200)
  })

  app.openapi(routes.draft, async (c) => {
    const me = principalOf(c)
    const { id: roomId } = c.req.valid('param')
    const { text } = c.req.valid('json')
    const r = await saveDraft(deps, me, roomId, text, new Date())
    return c.json({ roomId, position: positionOf(r.position) }, 200)
  })

  return app
}
