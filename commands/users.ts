import { createRoute, z } from '@hono/zod-openapi'
import { streamName } from '../adapters/event-store.ts'
import type { IdentityDeps } from '../adapters/identity.ts'
import { orgStream } from '../adapters/streams.ts'
import { notificationSettings } from '../domain/notifications.ts'
import { org } from '../domain/orgs.ts'
import type { AppDeps } from '../http/context.ts'
import { actorOf, principalOf, requireRole } from '../http/principal.ts'
import { router } from '../http/router.ts'
import { json, jsonBody, Position, problemResponse, Uuid } from '../http/schemas.ts'
import { bearerSecurity, positionOf } from '../http/tenant-route.ts'
import { commandContext, pipelineDeps } from './command-context.ts'
import { createInvite, revokeInvite } from './invites.ts'
import { activateUser } from './orgs.ts'
import { handleCommand, loadState, type PipelineDeps } from './pipeline.ts'

// --- A user's notification settings (domain/notifications.ts), on a stream of their own.

export const notificationSettingsStream = (userId: string) => streamName('notification_settings', userId)

export const loadNotificationSettings = (deps: PipelineDeps, tenantId: string, userId: string) =>
  loadState(deps.store, notificationSettings, notificationSettingsStream(userId), tenantId)

const Role = z.enum(['owner', 'admin', 'member', 'guest'])

const routes = {
  activate: createRoute({
    method: 'post',
    path: '/api/me/activate',
    tags: ['identity'],
    summary: 'Pick a username: required before the rest of /api opens',
    security: bearerSecurity,
    request: jsonBody(z.object({ username: z.string().min(1).max(40) })),
    responses: {
      200: json('activated', z.object({ userId: Uuid, username: z.string(), position: Position })),
      409: problemResponse('taken'),
    },
  }),
  setRole: createRoute({
    method: 'patch',
    path: '/api/users/{id}',
    tags: ['identity'],
    summary: 'Change a user’s role (owners set any role; admins promote members; the last owner stays)',
    security: bearerSecurity,
    request: { params: z.object({ id: Uuid }), ...jsonBody(z.object({ role: Role })) },
    responses: {
      200: json('changed', z.object({ userId: Uuid, position: Position })),
      403: problemResponse('not allowed'),
      422: problemResponse('last owner'),
    },
  }),
  remove: createRoute({
    method: 'delete',
    path: '/api/users/{id}',
    tags: ['identity'],
    summary: 'Remove a user from the org (or leave it); the last owner stays',
    security: bearerSecurity,
    request: { params: z.object({ id: Uuid }) },
    responses: { 200: json('removed', z.object({ userId: Uuid, position: Position })), 422: problemResponse('last owner') },
  }),
  invite: createRoute({
    method: 'post',
    path: '/api/invites',
    tags: ['identity'],
    summary: 'Invite someone by email (expires after 7 days; the token is shown once)',
    security: bearerSecurity,
    request: jsonBody(z.object({ email: z.email().max(320), role: z.enum(['admin', 'member', 'guest']).default('member') })),
    responses: {
      201: json('invited', z.object({ inviteId: Uuid, token: z.string(), expiresAt: z.string(), position: Position })),
    },
  }),
  notifications: createRoute({
    method: 'patch',
    path: '/api/me/notifications',
    tags: ['identity'],
    summary: 'Turn missed-mention emails off (or on again): at most one per conversation per hour otherwise',
    security: bearerSecurity,
    request: jsonBody(z.object({ email: z.boolean() })),
    responses: { 200: json('changed', z.object({ email: z.boolean(), position: Position })) },
  }),
  revokeInvite: createRoute({
    method: 'delete',
    path: '/api/invites/{id}',
    tags: ['identity'],
    summary: 'Revoke a pending invite',
    security: bearerSecurity,
    request: { params: z.object({ id: Uuid }) },
    responses: { 200: json('revoked', z.object({ inviteId: Uuid, position: Position })), 404: problemResponse('no such invite') },
  }),
}

export function usersCommands(deps: AppDeps & IdentityDeps) {
  const app = router()
  const pd = pipelineDeps(deps)
  // Invite tokens are derived from the invite id with the server's key: the invite email makes the link again.
  const invites = { ...pd, inviteTokenKey: deps.identity.keys.inviteTokenKey }

  app.openapi(routes.activate, async (c) => {
    const me = principalOf(c)
    const ctx = commandContext(c, actorOf(me), me.tenantId)
    const r = await activateUser(pd, ctx, me.tenantId, me.userId, c.req.valid('json').username)
    const username = r.state.status === 'none' ? null : r.state.members.get(me.userId)?.username
    return c.json({ userId: me.userId, username: username ?? '', position: positionOf(r.position) }, 200)
  })

  app.openapi(routes.setRole, async (c) => {
    const me = principalOf(c)
    const { id } = c.req.valid('param')
    const ctx = commandContext(c, actorOf(me), me.tenantId)
    const r = await handleCommand(
      pd,
      org,
      orgStream(me.tenantId),
      {
        type: 'change_role',
        userId: id,
        role: c.req.valid('json').role,
        actor: { userId: me.userId, role: me.role },
        at: ctx.now().toISOString(),
      },
      ctx,
    )
    return c.json({ userId: id, position: positionOf(r.position) }, 200)
  })

  app.openapi(routes.remove, async (c) => {
    const me = principalOf(c)
    const { id } = c.req.valid('param')
    const ctx = commandContext(c, actorOf(me), me.tenantId)
    const r = await handleCommand(
      pd,
      org,
      orgStream(me.tenantId),
      { type: 'deactivate', userId: id, actor: { userId: me.userId, role: me.role }, at: ctx.now().toISOString() },
      ctx,
    )
    return c.json({ userId: id, position: positionOf(r.position) }, 200)
  })

  app.openapi(routes.invite, async (c) => {
    const me = principalOf(c)
    requireRole(me, 'admin')
    const { email, role } = c.req.valid('json')
    const r = await createInvite(invites, commandContext(c, actorOf(me), me.tenantId), {
      orgId: me.tenantId,
      email,
      role,
      invitedBy: me.userId,
    })
    // A secret: never cached, by a proxy or by the idempotency store.
    c.header('cache-control', 'no-store')
    return c.json({ inviteId: r.inviteId, token: r.token, expiresAt: r.expiresAt, position: positionOf(r.position) }, 201)
  })

  app.openapi(routes.notifications, async (c) => {
    const me = principalOf(c)
    const ctx = commandContext(c, actorOf(me), me.tenantId)
    const r = await handleCommand(
      pd,
      notificationSettings,
      notificationSettingsStream(me.userId),
      { type: 'change', userId: me.userId, email: c.req.valid('json').email, at: ctx.now().toISOString() },
      ctx,
    )
    return c.json({ email: r.state.email, position: positionOf(r.position) }, 200)
  })

  app.openapi(routes.revokeInvite, async (c) => {
    const me = principalOf(c)
    requireRole(me, 'admin')
    const { id } = c.req.valid('param')
    const r = await revokeInvite(pd, commandContext(c, actorOf(me), me.tenantId), {
      inviteId: id,
      orgId: me.tenantId,
      by: me.userId,
    })
    return c.json({ inviteId: id, position: positionOf(r.position) }, 200)
  })
  return app
}
