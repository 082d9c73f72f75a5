import { createRoute, z } from '@hono/zod-openapi'
import { v7 as uuid } from 'uuid'
import { publicPosition } from '../adapters/event-store.ts'
import type { AppDeps } from '../http/context.ts'
import { operatorActor, requireOperator } from '../http/operator.ts'
import { router } from '../http/router.ts'
import { json, jsonBody, Position, problemResponse, Uuid } from '../http/schemas.ts'
import { commandContext, pipelineDeps } from './command-context.ts'
import { eraseUser } from './erasure.ts'
import { createOrg, reactivateOrg, suspendOrg } from './orgs.ts'

const createOrgRoute = createRoute({
  method: 'post',
  path: '/control/orgs',
  tags: ['control'],
  summary: 'Provision an org (operators)',
  security: [{ operator: [] }],
  request: jsonBody(z.object({ name: z.string().min(1).max(200) })),
  responses: {
    201: json('created', z.object({ orgId: Uuid, slug: z.string(), position: Position })),
    400: problemResponse('invalid input'),
    409: problemResponse('name taken'),
    422: problemResponse('name refused'),
  },
})

const orgActionRoute = (action: 'suspend' | 'reactivate') =>
  createRoute({
    method: 'post',
    path: `/control/orgs/{id}/${action}`,
    tags: ['control'],
    summary: `${action === 'suspend' ? 'Suspend' : 'Reactivate'} an org (operators)`,
    security: [{ operator: [] }],
    request: {
      params: z.object({ id: Uuid }),
      body: {
        content: { 'application/json': { schema: z.object({ reason: z.string().max(500).optional() }) } },
        required: false,
      },
    },
    responses: {
      200: json('done', z.object({ orgId: Uuid, position: Position })),
      404: problemResponse('no such org'),
    },
  })

const eraseUserRoute = createRoute({
  method: 'post',
  path: '/control/users/{id}/erase',
  tags: ['control'],
  summary: 'Erase a person (operators)',
  description:
    'Destroys the data key their names, email, messages and drafts are encrypted under, and records user.erased: ' +
    'from then on events read their texts as "" and their display name as "[erased]", read models and realtime ' +
    'streams scrub what they kept. Irreversible; asking again answers the same.',
  security: [{ operator: [] }],
  request: { params: z.object({ id: Uuid }) },
  responses: {
    200: json('erased', z.object({ userId: Uuid, orgId: Uuid, position: Position })),
    404: problemResponse('no such user'),
  },
})

export function controlCommands(deps: AppDeps) {
  const app = router()
  app.use('/control/*', requireOperator(deps.config.OPERATOR_TOKEN))
  app.openapi(createOrgRoute, async (c) => {
    const { name } = c.req.valid('json')
    const r = await createOrg(pipelineDeps(deps), commandContext(c, operatorActor, null), {
      orgId: uuid(),
      name,
    })
    return c.json({ orgId: r.orgId, slug: r.slug, position: r.position && publicPosition(r.position) }, 201)
  })
  app.openapi(orgActionRoute('suspend'), async (c) => {
    const { id } = c.req.valid('param')
    const body = c.req.valid('json') as { reason?: string } | undefined
    const r = await suspendOrg(pipelineDeps(deps), commandContext(c, operatorActor, id), {
      orgId: id,
      reason: body?.reason ?? 'suspended by an operator',
    })
    return c.json({ orgId: id, position: r.position && publicPosition(r.position) }, 200)
  })
  app.openapi(orgActionRoute('reactivate'), async (c) => {
    const { id } = c.req.valid('param')
    const r = await reactivateOrg(pipelineDeps(deps), commandContext(c, operatorActor, id), { orgId: id })
    return c.json({ orgId: id, position: r.position && publicPosition(r.position) }, 200)
  })
  app.openapi(eraseUserRoute, async (c) => {
    const { id } = c.req.valid('param')
    const r = await eraseUser(
      { ...pipelineDeps(deps), db: deps.db, controlDb: deps.controlDb },
      commandContext(c, operatorActor, null),
      id,
    )
    return c.json({ userId: id, orgId: r.orgId, position: r.position && publicPosition(r.position) }, 200)
  })
  return app
}
