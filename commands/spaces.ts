import { createRoute, z } from '@hono/zod-openapi'
import { streamName } from '../adapters/event-store.ts'
import { space } from '../domain/spaces.ts'
import type { AppDeps } from '../http/context.ts'
import { actorOf, atLeast, principalOf } from '../http/principal.ts'
import { router } from '../http/router.ts'
import { ClientChosenId, json, jsonBody, Position, problemResponse, Uuid } from '../http/schemas.ts'
import { bearerSecurity, positionOf } from '../http/tenant-route.ts'
import { commandContext, pipelineDeps } from './command-context.ts'
import { handleCommand } from './pipeline.ts'

export const spaceStream = (id: string) => streamName('space', id)

const create = createRoute({
  method: 'post',
  path: '/api/spaces',
  tags: ['spaces'],
  summary: 'Create a space',
  security: bearerSecurity,
  request: jsonBody(
    z.object({ id: ClientChosenId, name: z.string().min(1).max(200), kind: z.enum(['personal', 'public']).default('public') }),
  ),
  responses: {
    201: json('created', z.object({ spaceId: Uuid, position: Position })),
    409: problemResponse('the id is taken by another space'),
    422: problemResponse('refused'),
  },
})

const update = createRoute({
  method: 'patch',
  path: '/api/spaces/{id}',
  tags: ['spaces'],
  summary: 'Rename a space',
  security: bearerSecurity,
  request: { params: z.object({ id: Uuid }), ...jsonBody(z.object({ name: z.string().min(1).max(200) })) },
  responses: { 200: json('updated', z.object({ spaceId: Uuid, position: Position })), 404: problemResponse('no such space') },
})

export function spacesCommands(deps: AppDeps) {
  const app = router()
  app.openapi(create, async (c) => {
    const me = principalOf(c)
    const ctx = commandContext(c, actorOf(me), me.tenantId)
    const body = c.req.valid('json')
    const spaceId = body.id ?? ctx.newId()
    const r = await handleCommand(
      pipelineDeps(deps),
      space,
      spaceStream(spaceId),
      {
        type: 'create',
        spaceId,
        name: body.name,
        kind: body.kind,
        actorId: me.userId,
        actorIsGuest: me.role === 'guest',
        at: ctx.now().toISOString(),
      },
      ctx,
      { create: true },
    )
    return c.json({ spaceId, position: positionOf(r.position) }, 201)
  })
  app.openapi(update, async (c) => {
    const me = principalOf(c)
    const { id } = c.req.valid('param')
    const ctx = commandContext(c, actorOf(me), me.tenantId)
    const r = await handleCommand(
      pipelineDeps(deps),
      space,
      spaceStream(id),
      {
        type: 'update',
        spaceId: id,
        name: c.req.valid('json').name,
        actorId: me.userId,
        actorIsAdmin: atLeast(me, 'admin'),
        at: ctx.now().toISOString(),
      },
      ctx,
    )
    return c.json({ spaceId: id, position: positionOf(r.position) }, 200)
  })
  return app
}
