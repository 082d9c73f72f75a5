import { createRoute, z } from '@hono/zod-openapi'
import type { Context } from 'hono'
import { v7 as uuid } from 'uuid'
import { publicPosition } from '../adapters/event-store.ts'
import type { AppDeps } from '../http/context.ts'
import { operatorActor, operatorDirectory, operatorOf, requireOperator } from '../http/operator.ts'
import { forbidden } from '../http/problem.ts'
import { router } from '../http/router.ts'
import { json, jsonBody, Position, problemResponse, Uuid } from '../http/schemas.ts'
import { commandContext, pipelineDeps } from './command-context.ts'
import { eraseUser } from './erasure.ts'
import { bootstrapOperator, grantOperator, revokeOperator } from './operators.ts'
import { createOrg, reactivateOrg, setLlmPolicy, setOrgLimits, suspendOrg } from './orgs.ts'

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

const orgActionRoute = (action: 'suspend' | 'unsuspend' | 'reactivate') =>
  createRoute({
    method: 'post',
    path: `/control/orgs/{id}/${action}`,
    tags: ['control'],
    summary:
      action === 'suspend'
        ? 'Suspend an org (operators): its commands answer 403 ORG_SUSPENDED, its reads go on (export)'
        : action === 'unsuspend'
          ? 'Lift an org’s suspension (operators)'
          : 'Lift an org’s suspension (operators): the older name of /unsuspend',
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

const NullableCount = (max: number, what: string) =>
  z
    .number()
    .int()
    .min(0)
    .max(max)
    .nullable()
    .openapi({ description: `${what}; null: no limit` })

const limitsRoute = createRoute({
  method: 'put',
  path: '/control/orgs/{id}/limits',
  tags: ['control'],
  summary: 'Set an org’s seats and storage limits (operators)',
  description:
    'Seats count the org’s active people (agents take none); a join past them is 422 SEAT_LIMIT_REACHED. Lowering seats ' +
    'below the people active now is 422 SEATS_BELOW_USAGE, naming both numbers. The storage limit is recorded and ' +
    'shown; uploads are held to it by the files context.',
  security: [{ operator: [] }],
  request: {
    params: z.object({ id: Uuid }),
    ...jsonBody(
      z.object({
        seats: NullableCount(1_000_000, 'active people at most'),
        storageBytes: NullableCount(Number.MAX_SAFE_INTEGER, 'stored bytes at most'),
      }),
    ),
  },
  responses: {
    200: json('set', z.object({ orgId: Uuid, position: Position.nullable() })),
    400: problemResponse('invalid input'),
    404: problemResponse('no such org'),
    422: problemResponse('fewer seats than people active (SEATS_BELOW_USAGE)'),
  },
})

const llmPolicyRoute = createRoute({
  method: 'put',
  path: '/control/orgs/{id}/llm-policy',
  tags: ['control'],
  summary: 'Set an org’s LLM policy (operators)',
  description:
    'Which models its agents may call (an empty list: none), whose key pays (the platform’s, or the org’s own), and ' +
    'how many tokens a calendar month (null: no budget). Differs from the first contract: `keySource` is added.',
  security: [{ operator: [] }],
  request: {
    params: z.object({ id: Uuid }),
    ...jsonBody(
      z.object({
        allowedModels: z.array(z.string().trim().min(1).max(200)).max(100),
        keySource: z.enum(['platform', 'org']).default('platform'),
        monthlyTokenBudget: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER).nullable(),
      }),
    ),
  },
  responses: {
    200: json('set', z.object({ orgId: Uuid, position: Position.nullable() })),
    400: problemResponse('invalid input'),
    404: problemResponse('no such org'),
  },
})

const grantRoute = createRoute({
  method: 'post',
  path: '/control/operators',
  tags: ['control'],
  summary: 'Grant an account the operator role',
  description:
    'An operator grants it, with their account session. The shared OPERATOR_TOKEN may grant the first operator only; ' +
    'once one exists it is 403 BOOTSTRAP_CLOSED. The account is the person’s global account (`accountId` of ' +
    'GET /auth/me): they sign in once first.',
  security: [{ operator: [] }],
  request: jsonBody(z.object({ accountId: Uuid })),
  responses: {
    201: json('granted (or held already)', z.object({ accountId: Uuid, position: Position.nullable() })),
    400: problemResponse('invalid input'),
    403: problemResponse('not an operator, or the bootstrap is closed (BOOTSTRAP_CLOSED)'),
    404: problemResponse('no such account'),
  },
})

const revokeRoute = createRoute({
  method: 'delete',
  path: '/control/operators/{accountId}',
  tags: ['control'],
  summary: 'Revoke an operator (operators)',
  security: [{ operator: [] }],
  request: { params: z.object({ accountId: Uuid }) },
  responses: {
    200: json('revoked', z.object({ accountId: Uuid, position: Position })),
    404: problemResponse('no such operator'),
    422: problemResponse('the last operator (LAST_OPERATOR)'),
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

const positionOf = (p: Parameters<typeof publicPosition>[0] | null) => (p ? publicPosition(p) : null)

/** The operator's account: what only a signed-in operator (never the bootstrap token) may do. */
const operatorAccount = (c: Context): string => {
  const p = operatorOf(c)
  if (p.kind !== 'operator') throw forbidden('sign in as an operator', 'OPERATORS_ONLY')
  return p.accountId
}

export function controlCommands(deps: AppDeps) {
  const app = router()
  app.use('/control/*', requireOperator(deps))
  const pd = pipelineDeps(deps)
  // Every route but the bootstrap's is an operator's own: their account is the actor of what it records.
  const ctxOf = (c: Context, tenantId: string | null) => {
    operatorAccount(c)
    return commandContext(c, operatorActor(c), tenantId)
  }

  app.openapi(createOrgRoute, async (c) => {
    const { name } = c.req.valid('json')
    const r = await createOrg(pd, ctxOf(c, null), { orgId: uuid(), name })
    return c.json({ orgId: r.orgId, slug: r.slug, position: r.position && publicPosition(r.position) }, 201)
  })
  app.openapi(orgActionRoute('suspend'), async (c) => {
    const { id } = c.req.valid('param')
    const body = c.req.valid('json') as { reason?: string } | undefined
    const r = await suspendOrg(pd, ctxOf(c, id), { orgId: id, reason: body?.reason ?? 'suspended by an operator' })
    return c.json({ orgId: id, position: r.position && publicPosition(r.position) }, 200)
  })
  for (const action of ['unsuspend', 'reactivate'] as const) {
    app.openapi(orgActionRoute(action), async (c) => {
      const { id } = c.req.valid('param')
      const r = await reactivateOrg(pd, ctxOf(c, id), { orgId: id })
      return c.json({ orgId: id, position: r.position && publicPosition(r.position) }, 200)
    })
  }
  app.openapi(limitsRoute, async (c) => {
    const { id } = c.req.valid('param')
    const { seats, storageBytes } = c.req.valid('json')
    const r = await setOrgLimits(pd, ctxOf(c, id), { orgId: id, seats, storageBytes })
    return c.json({ orgId: id, position: positionOf(r.position) }, 200)
  })
  app.openapi(llmPolicyRoute, async (c) => {
    const { id } = c.req.valid('param')
    const body = c.req.valid('json')
    const r = await setLlmPolicy(pd, ctxOf(c, id), { orgId: id, ...body })
    return c.json({ orgId: id, position: positionOf(r.position) }, 200)
  })
  app.openapi(grantRoute, async (c) => {
    const { accountId } = c.req.valid('json')
    const p = operatorOf(c)
    const ctx = commandContext(c, operatorActor(c), null)
    const r =
      p.kind === 'bootstrap'
        ? await bootstrapOperator(pd, ctx, accountId)
        : await grantOperator(pd, ctx, { accountId, by: p.accountId })
    operatorDirectory(deps).invalidate()
    return c.json({ accountId, position: positionOf(r.position) }, 201)
  })
  app.openapi(revokeRoute, async (c) => {
    const { accountId } = c.req.valid('param')
    const r = await revokeOperator(pd, ctxOf(c, null), { accountId, by: operatorAccount(c) })
    operatorDirectory(deps).invalidate()
    return c.json({ accountId, position: publicPosition(r.position!) }, 200)
  })
  app.openapi(eraseUserRoute, async (c) => {
    const { id } = c.req.valid('param')
    const r = await eraseUser({ ...pd, db: deps.db, controlDb: deps.controlDb }, ctxOf(c, null), id)
    return c.json({ userId: id, orgId: r.orgId, position: r.position && publicPosition(r.position) }, 200)
  })
  return app
}
