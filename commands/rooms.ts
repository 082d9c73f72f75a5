import { createRoute, z } from '@hono/zod-openapi'
import { v5 as uuidv5 } from 'uuid'
import { type EventStore, streamName } from '../adapters/event-store.ts'
import { type RoomActor, type RoomState, room } from '../domain/rooms.ts'
import { space } from '../domain/spaces.ts'
import type { AppDeps } from '../http/context.ts'
import { actorOf, type Principal, principalOf } from '../http/principal.ts'
import { badRequest, notFound } from '../http/problem.ts'
import { router } from '../http/router.ts'
import { ClientChosenId, json, jsonBody, Position, problemResponse, Uuid } from '../http/schemas.ts'
import { bearerSecurity, positionOf } from '../http/tenant-route.ts'
import { commandContext, pipelineDeps } from './command-context.ts'
import { findUser } from './directory.ts'
import { handleCommand, loadState } from './pipeline.ts'
import { spaceStream } from './spaces.ts'

export const roomStream = (id: string) => streamName('room', id)

export const loadRoom = (store: EventStore, roomId: string, tenantId: string | null): Promise<RoomState> =>
  loadState(store, room, roomStream(roomId), tenantId)

export const roomActor = (me: Principal): RoomActor => ({ userId: me.userId, role: me.role })

/** The one DM room of two users, whoever opens it first: its id follows from the pair. */
const DM_NAMESPACE = '6f1c2d8e-8a51-4c1e-9d4b-3f0f5b7f2a10'
export const dmRoomId = (tenantId: string, a: string, b: string) => uuidv5(`${tenantId}:${[a, b].sort().join(':')}`, DM_NAMESPACE)

const MemberRef = z
  .object({ userId: Uuid.optional(), agentId: Uuid.optional() })
  .refine((m) => Boolean(m.userId) !== Boolean(m.agentId), { message: 'give exactly one of userId and agentId' })

const Answer = z.object({ roomId: Uuid, position: Position })
const roomParams = z.object({ id: Uuid })

const routes = {
  create: createRoute({
    method: 'post',
    path: '/api/rooms',
    tags: ['rooms'],
    summary: 'Create a room',
    security: bearerSecurity,
    request: jsonBody(
      z.object({
        id: ClientChosenId,
        name: z.string().min(1).max(200),
        description: z.string().max(4_000).optional(),
        spaceId: Uuid.optional(),
        visibility: z.enum(['public', 'private']).default('public'),
      }),
    ),
    responses: {
      201: json('created', Answer),
      403: problemResponse('guests do not create rooms'),
      409: problemResponse('the id is taken by another room'),
    },
  }),
  update: createRoute({
    method: 'patch',
    path: '/api/rooms/{id}',
    tags: ['rooms'],
    summary: 'Rename a room or change its description',
    security: bearerSecurity,
    request: {
      params: roomParams,
      ...jsonBody(z.object({ name: z.string().min(1).max(200).optional(), description: z.string().max(4_000).optional() })),
    },
    responses: { 200: json('updated', Answer), 404: problemResponse('no such room'), 422: problemResponse('archived') },
  }),
  addMember: createRoute({
    method: 'post',
    path: '/api/rooms/{id}/members',
    tags: ['rooms'],
    summary: 'Add a user or an agent to a room (or join a public room yourself)',
    security: bearerSecurity,
    request: { params: roomParams, ...jsonBody(MemberRef) },
    responses: { 200: json('added', Answer.extend({ memberId: Uuid })), 404: problemResponse('no such room or user') },
  }),
  removeMember: createRoute({
    method: 'delete',
    path: '/api/rooms/{id}/members/{memberId}',
    tags: ['rooms'],
    summary: 'Remove a member (or leave)',
    security: bearerSecurity,
    request: { params: z.object({ id: Uuid, memberId: Uuid }) },
    responses: { 200: json('removed', Answer), 404: problemResponse('no such room') },
  }),
  archive: createRoute({
    method: 'post',
    path: '/api/rooms/{id}/archive',
    tags: ['rooms'],
    summary: 'Archive a room: it stays readable and refuses new messages',
    security: bearerSecurity,
    request: { params: roomParams },
    responses: { 200: json('archived', Answer), 403: problemResponse('not allowed') },
  }),
  dm: createRoute({
    method: 'post',
    path: '/api/dms',
    tags: ['rooms'],
    summary: 'The direct-message room of the caller and another user or agent, created once',
    security: bearerSecurity,
    request: jsonBody(MemberRef),
    responses: { 200: json('the room', Answer.extend({ created: z.boolean() })), 404: problemResponse('no such user') },
  }),
}

async function existingUser(deps: AppDeps, me: Principal, ref: { userId?: string | undefined; agentId?: string | undefined }) {
  const id = (ref.userId ?? ref.agentId)!
  const user = await findUser(deps.db, me, id)
  if (!user || (ref.agentId && user.type !== 'agent') || (ref.userId && user.type !== 'human'))
    throw notFound('no such user in this org')
  return user
}

export function roomsCommands(deps: AppDeps) {
  const app = router()
  const pd = pipelineDeps(deps)

  app.openapi(routes.create, async (c) => {
    const me = principalOf(c)
    const body = c.req.valid('json')
    const ctx = commandContext(c, actorOf(me), me.tenantId)
    const roomId = body.id ?? ctx.newId()
    const r = await handleCommand(
      pd,
      room,
      roomStream(roomId),
      async (_, read) => {
        if (body.spaceId && !(await read(space, spaceStream(body.spaceId))).exists) {
          throw badRequest('no such space', [{ path: 'spaceId', message: 'no such space' }])
        }
        return {
          type: 'create' as const,
          roomId,
          name: body.name,
          description: body.description ?? '',
          spaceId: body.spaceId ?? null,
          visibility: body.visibility,
          actor: roomActor(me),
          at: ctx.now().toISOString(),
        }
      },
      ctx,
      { create: true },
    )
    return c.json({ roomId, position: positionOf(r.position) }, 201)
  })

  app.openapi(routes.update, async (c) => {
    const me = principalOf(c)
    const { id } = c.req.valid('param')
    const body = c.req.valid('json')
    const ctx = commandContext(c, actorOf(me), me.tenantId)
    const r = await handleCommand(
      pd,
      room,
      roomStream(id),
      { type: 'update', roomId: id, ...body, actor: roomActor(me), at: ctx.now().toISOString() },
      ctx,
    )
    return c.json({ roomId: id, position: positionOf(r.position) }, 200)
  })

  app.openapi(routes.addMember, async (c) => {
    const me = principalOf(c)
    const { id } = c.req.valid('param')
    const ref = c.req.valid('json')
    const user = await existingUser(deps, me, ref)
    const ctx = commandContext(c, actorOf(me), me.tenantId)
    const r = await handleCommand(
      pd,
      room,
      roomStream(id),
      {
        type: 'add_member',
        roomId: id,
        memberId: user.id,
        memberType: user.type === 'agent' ? 'agent' : 'user',
        actor: roomActor(me),
        at: ctx.now().toISOString(),
      },
      ctx,
    )
    return c.json({ roomId: id, memberId: user.id, position: positionOf(r.position) }, 200)
  })

  app.openapi(routes.removeMember, async (c) => {
    const me = principalOf(c)
    const { id, memberId } = c.req.valid('param')
    const ctx = commandContext(c, actorOf(me), me.tenantId)
    const r = await handleCommand(
      pd,
      room,
      roomStream(id),
      { type: 'remove_member', roomId: id, memberId, actor: roomActor(me), at: ctx.now().toISOString() },
      ctx,
    )
    return c.json({ roomId: id, position: positionOf(r.position) }, 200)
  })

  app.openapi(routes.archive, async (c) => {
    const me = principalOf(c)
    const { id } = c.req.valid('param')
    const ctx = commandContext(c, actorOf(me), me.tenantId)
    const r = await handleCommand(
      pd,
      room,
      roomStream(id),
      { type: 'archive', roomId: id, actor: roomActor(me), at: ctx.now().toISOString() },
      ctx,
    )
    return c.json({ roomId: id, position: positionOf(r.position) }, 200)
  })

  app.openapi(routes.dm, async (c) => {
    const me = principalOf(c)
    const ref = c.req.valid('json')
    const other = await existingUser(deps, me, ref)
    const roomId = dmRoomId(me.tenantId, me.userId, other.id)
    const ctx = commandContext(c, actorOf(me), me.tenantId)
    const r = await handleCommand(
      pd,
      room,
      roomStream(roomId),
      {
        type: 'open_dm',
        roomId,
        actor: roomActor(me),
        other: { memberId: other.id, memberType: other.type === 'agent' ? 'agent' : 'user' },
        at: ctx.now().toISOString(),
      },
      ctx,
    )
    return c.json({ roomId, created: r.events.length > 0, position: positionOf(r.position) }, 200)
  })

  return app
}
