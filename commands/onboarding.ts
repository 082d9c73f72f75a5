import { createRoute, z } from '@hono/zod-openapi'
import { room } from '../domain/rooms.ts'
import { type AuthDeps, requireAccountSession } from '../http/account-auth.ts'
import { loadAccount } from '../http/accounts.ts'
import { router } from '../http/router.ts'
import { json, jsonBody, Position, problemResponse, Uuid } from '../http/schemas.ts'
import { bearerSecurity, positionOf } from '../http/tenant-route.ts'
import { ACCOUNT_ONLY, accountActor } from './auth.ts'
import { commandContext, pipelineDeps } from './command-context.ts'
import { acceptInvite } from './invites.ts'
import { createOrg, joinOrg } from './orgs.ts'
import { handleCommand } from './pipeline.ts'
import { roomStream } from './rooms.ts'

const routes = {
  onboard: createRoute({
    method: 'post',
    path: '/orgs/onboard',
    tags: ['orgs'],
    summary: 'Create an org: the signed-in account becomes its owner and lands in its home room',
    description: ACCOUNT_ONLY,
    security: bearerSecurity,
    request: jsonBody(z.object({ name: z.string().min(1).max(200) })),
    responses: {
      201: json('created', z.object({ orgId: Uuid, slug: z.string(), userId: Uuid, homeRoomId: Uuid, position: Position })),
      403: problemResponse('a credential bound to one org (ACCOUNT_SESSION_REQUIRED)'),
      409: problemResponse('name taken'),
      422: problemResponse('name refused'),
    },
  }),
  accept: createRoute({
    method: 'post',
    path: '/orgs/invites/{token}/accept',
    tags: ['orgs'],
    summary: 'Join an org with an invite sent to the signed-in account’s email',
    description: ACCOUNT_ONLY,
    security: bearerSecurity,
    request: { params: z.object({ token: z.string().min(1).max(200) }) },
    responses: {
      200: json('joined', z.object({ orgId: Uuid, userId: Uuid, position: Position })),
      403: problemResponse('the invite is for another email, or a credential bound to one org (ACCOUNT_SESSION_REQUIRED)'),
      404: problemResponse('no such invite'),
      422: problemResponse('expired or revoked'),
    },
  }),
}

export function onboardingCommands(deps: AuthDeps) {
  const app = router()
  const pd = pipelineDeps(deps)

  app.openapi(routes.onboard, async (c) => {
    const caller = await requireAccountSession(c, deps)
    const acct = await loadAccount(pd, caller.credential.accountId)
    const ctx = commandContext(c, accountActor(caller), null)
    const orgId = ctx.newId()
    const created = await createOrg(pd, ctx, { orgId, name: c.req.valid('json').name })
    const userId = ctx.newId()
    const at = ctx.now().toISOString()
    const orgCtx = { ...ctx, tenantId: orgId }
    await joinOrg(pd, orgCtx, orgId, {
      userId,
      accountId: caller.credential.accountId,
      type: 'human',
      role: 'owner',
      email: acct.exists ? acct.email : null,
      displayName: acct.exists ? acct.email.split('@')[0]! : 'owner',
      at,
    })
    const homeRoomId = ctx.newId()
    const home = await handleCommand(
      pd,
      room,
      roomStream(homeRoomId),
      {
        type: 'create',
        roomId: homeRoomId,
        name: 'Home',
        description: 'Everyone in the org',
        spaceId: null,
        visibility: 'public',
        actor: { userId, role: 'owner' },
        at,
      },
      { ...orgCtx, actor: { type: 'user', id: userId } },
    )
    return c.json({ orgId, slug: created.slug, userId, homeRoomId, position: positionOf(home.position) }, 201)
  })

  app.openapi(routes.accept, async (c) => {
    const caller = await requireAccountSession(c, deps)
    const ctx = commandContext(c, accountActor(caller), null)
    const r = await acceptInvite(pd, ctx, { token: c.req.valid('param').token, accountId: caller.credential.accountId })
    return c.json({ orgId: r.orgId, userId: r.userId, position: positionOf(r.position) }, 200)
  })
  return app
}
