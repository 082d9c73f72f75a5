import { createRoute, z } from '@hono/zod-openapi'
import { type EventStore, streamName } from '../adapters/event-store.ts'
import { type AppDeps, commandContext, pipelineDeps, router } from '../adapters/http/context.ts'
import { actorOf, type Principal, principalOf } from '../adapters/http/principal.ts'
import { badRequest, notFound } from '../adapters/http/problem.ts'
import { json, jsonBody, Position, problemResponse, Uuid } from '../adapters/http/schemas.ts'
import { bearerSecurity, positionOf } from '../adapters/http/tenant-route.ts'
import { draft, MESSAGE_TEXT_MAX, type MessageState, message, readMark } from '../domain/messages.ts'
import { room } from '../domain/rooms.ts'
import { inTenant } from '../read-api/scope.ts'
import { resolveMentions } from './directory.ts'
import { handleCommand, loadState } from './pipeline.ts'
import { loadRoom, roomActor, roomStream } from './rooms.ts'

export const messageStream = (id: string) => streamName('message', id)
const perUser = (category: string, roomId: string, userId: string) => streamName(category, `${roomId}_${userId}`)

export const loadMessage = (store: EventStore, messageId: string, tenantId: string | null): Promise<MessageState> =>
  loadState(store, message, messageStream(messageId), tenantId)

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
      ...jsonBody(z.object({ text: z.string().min(1).max(MESSAGE_TEXT_MAX), threadRootId: Uuid.optional() })),
    },
    responses: {
      201: json('posted', z.object({ messageId: Uuid, position: Position })),
      404: problemResponse('no such room'),
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
    security: bearerSecurity,
    request: { params: z.object({ id: Uuid }), ...jsonBody(z.object({ text: z.string().max(MESSAGE_TEXT_MAX) })) },
    responses: { 200: json('saved', z.object({ roomId: Uuid, position: Position })), 404: problemResponse('no such room') },
  }),
}

export function messagesCommands(deps: AppDeps) {
  const app = router()
  const pd = pipelineDeps(deps)

  app.openapi(routes.post, async (c) => {
    const me = principalOf(c)
    const { id: roomId } = c.req.valid('param')
    const body = c.req.valid('json')
    const ctx = commandContext(c, actorOf(me), me.tenantId)
    const [roomState, mentions, threadRoot] = await Promise.all([
      loadRoom(deps.store, roomId, me.tenantId),
      resolveMentions(deps.db, me, body.text),
      body.threadRootId
        ? loadMessage(deps.store, body.threadRootId, me.tenantId).then((state) => ({ messageId: body.threadRootId!, state }))
        : null,
    ])
    const messageId = ctx.newId()
    const r = await handleCommand(
      pd,
      message,
      messageStream(messageId),
      {
        type: 'post',
        messageId,
        roomId,
        text: body.text,
        threadRoot,
        mentions,
        room: roomState,
        actor: { ...roomActor(me), type: me.type === 'agent' ? 'agent' : 'user' },
        at: ctx.now().toISOString(),
      },
      ctx,
    )
    return c.json({ messageId, position: positionOf(r.position) }, 201)
  })

  /** Read marks and drafts are a member's own: a room the caller is not in does not exist for them. */
  const memberRoom = async (roomId: string, me: Principal) => {
    const state = await loadRoom(deps.store, roomId, me.tenantId)
    if (!state.exists || !state.members.has(me.userId)) throw notFound('no such room')
    return state
  }

  /** Loads what a message command needs: the message, and the room it lives in. */
  const withRoom = async (messageId: string, tenantId: string) => {
    const state = await loadMessage(deps.store, messageId, tenantId)
    if (!state.exists) throw hiddenMessage()
    return { roomState: await loadRoom(deps.store, state.roomId, tenantId) }
  }

  app.openapi(routes.edit, async (c) => {
    const me = principalOf(c)
    const { id } = c.req.valid('param')
    const { text } = c.req.valid('json')
    const { roomState } = await withRoom(id, me.tenantId)
    const ctx = commandContext(c, actorOf(me), me.tenantId)
    const mentions = await resolveMentions(deps.db, me, text)
    const r = await handleCommand(
      pd,
      message,
      messageStream(id),
      { type: 'edit', messageId: id, text, mentions, room: roomState, actor: roomActor(me), at: ctx.now().toISOString() },
      ctx,
    )
    return c.json({ messageId: id, position: positionOf(r.position) }, 200)
  })

  app.openapi(routes.remove, async (c) => {
    const me = principalOf(c)
    const { id } = c.req.valid('param')
    const { roomState } = await withRoom(id, me.tenantId)
    const ctx = commandContext(c, actorOf(me), me.tenantId)
    const r = await handleCommand(
      pd,
      message,
      messageStream(id),
      { type: 'delete', messageId: id, room: roomState, actor: roomActor(me), at: ctx.now().toISOString() },
      ctx,
    )
    return c.json({ messageId: id, position: positionOf(r.position) }, 200)
  })

  for (const method of ['put', 'delete'] as const) {
    app.openapi(routes.react(method), async (c) => {
      const me = principalOf(c)
      const { id, emoji } = c.req.valid('param')
      const { roomState } = await withRoom(id, me.tenantId)
      const ctx = commandContext(c, actorOf(me), me.tenantId)
      const r = await handleCommand(
        pd,
        message,
        messageStream(id),
        {
          type: 'react',
          messageId: id,
          emoji,
          reacted: method === 'put',
          room: roomState,
          actor: roomActor(me),
          at: ctx.now().toISOString(),
        },
        ctx,
      )
      return c.json({ messageId: id, position: positionOf(r.position) }, 200)
    })
  }

  app.openapi(routes.deleteRange, async (c) => {
    const me = principalOf(c)
    const { id: roomId } = c.req.valid('param')
    const { fromMessageId, toMessageId } = c.req.valid('json')
    // The range is what the timeline shows between the two messages: resolved from the read model,
    // as of the latest position, then decided on the room's stream.
    await deps.waiter.waitFor(['messages'], BigInt(Number((await deps.store.headPosition()).prepare)))
    const range = await inTenant(deps.db, me, async (trx) => {
      const bounds = await trx
        .selectFrom('tenant.messages')
        .select(['id', 'seq'])
        .where('tenant_id', '=', me.tenantId)
        .where('room_id', '=', roomId)
        .where('id', 'in', [fromMessageId, toMessageId ?? fromMessageId])
        .execute()
      const from = bounds.find((b) => b.id === fromMessageId)
      const to = toMessageId ? bounds.find((b) => b.id === toMessageId) : undefined
      if (!from || (toMessageId && !to)) return null
      let q = trx
        .selectFrom('tenant.messages')
        .select(['id', 'author_id'])
        .where('tenant_id', '=', me.tenantId)
        .where('room_id', '=', roomId)
        .where('seq', '>=', from.seq)
        .where('deleted_at', 'is', null)
        .orderBy('seq')
      if (to) q = q.where('seq', '<=', to.seq)
      return q.execute()
    })
    if (!range) throw hiddenMessage()
    if (toMessageId && range.length === 0) throw badRequest('toMessageId comes before fromMessageId')
    const ctx = commandContext(c, actorOf(me), me.tenantId)
    const r = await handleCommand(
      pd,
      room,
      roomStream(roomId),
      {
        type: 'delete_range',
        roomId,
        fromMessageId,
        toMessageId: toMessageId ?? range[range.length - 1]?.id ?? fromMessageId,
        messageIds: range.map((m) => m.id as string),
        authors: range.map((m) => m.author_id as string),
        actor: roomActor(me),
        at: ctx.now().toISOString(),
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
    const [, msg] = await Promise.all([memberRoom(roomId, me), loadMessage(deps.store, messageId, me.tenantId)])
    if (!msg.exists || msg.roomId !== roomId) throw hiddenMessage()
    const ctx = commandContext(c, actorOf(me), me.tenantId)
    const r = await handleCommand(
      pd,
      readMark,
      perUser('room_read', roomId, me.userId),
      { roomId, userId: me.userId, messageId, at: ctx.now().toISOString() },
      ctx,
    )
    return c.json({ roomId, position: positionOf(r.position) }, 200)
  })

  app.openapi(routes.draft, async (c) => {
    const me = principalOf(c)
    const { id: roomId } = c.req.valid('param')
    const { text } = c.req.valid('json')
    await memberRoom(roomId, me)
    const ctx = commandContext(c, actorOf(me), me.tenantId)
    const r = await handleCommand(
      pd,
      draft,
      perUser('draft', roomId, me.userId),
      { roomId, userId: me.userId, text, at: ctx.now().toISOString() },
      ctx,
    )
    return c.json({ roomId, position: positionOf(r.position) }, 200)
  })

  return app
}
