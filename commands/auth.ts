import { createRoute, z } from '@hono/zod-openapi'
import type { Context } from 'hono'
import type { Actor } from '../adapters/event-store.ts'
import { type AppDeps, type AppEnv, commandContext, pipelineDeps, router } from '../adapters/http/context.ts'
import { notFound, unauthorized } from '../adapters/http/problem.ts'
import { json, jsonBody, problemResponse, Uuid } from '../adapters/http/schemas.ts'
import { bearerSecurity } from '../adapters/http/tenant-route.ts'
import { membershipOf } from '../domain/orgs.ts'
import { issueCredential, revokeCredential, TENANT_SESSION_TTL_MS } from './accounts.ts'
import { type Caller, requireAccount } from './authenticate.ts'
import { loadOrg, orgNameStream } from './orgs.ts'

export const accountActor = (caller: Caller): Actor => ({ type: 'user', id: caller.credential.accountId })

/** An org named by id or by slug; null when neither names one. */
export async function resolveOrg(deps: AppDeps, ref: string): Promise<string | null> {
  if (z.uuid().safeParse(ref).success) return ref
  const reserved = await deps.store.readStream(orgNameStream(ref.toLowerCase()), { maxCount: 1 })
  return (reserved[0]?.data as { orgId?: string } | undefined)?.orgId ?? null
}

const routes = {
  tenantSession: createRoute({
    method: 'post',
    path: '/auth/tenant-session',
    tags: ['auth'],
    summary: 'A tenant session for an org the account belongs to',
    security: bearerSecurity,
    request: jsonBody(z.object({ org: z.string().min(1).max(200).openapi({ description: 'org id or slug' }) })),
    responses: {
      200: json('the session', z.object({ token: z.string(), expiresAt: z.string(), orgId: Uuid, userId: Uuid })),
      404: problemResponse('not a member of that org'),
    },
  }),
  createToken: createRoute({
    method: 'post',
    path: '/auth/tokens',
    tags: ['auth'],
    summary: 'A personal API token acting as the caller in the caller’s org (shown once)',
    security: bearerSecurity,
    request: jsonBody(
      z.object({ name: z.string().min(1).max(100), expiresInDays: z.number().int().min(1).max(365).default(90) }),
    ),
    responses: { 201: json('the token', z.object({ id: Uuid, token: z.string(), expiresAt: z.string() })) },
  }),
  deleteToken: createRoute({
    method: 'delete',
    path: '/auth/tokens/{id}',
    tags: ['auth'],
    summary: 'Revoke a personal API token',
    security: bearerSecurity,
    request: { params: z.object({ id: Uuid }) },
    responses: { 200: json('revoked', z.object({ id: Uuid })), 404: problemResponse('no such token') },
  }),
  logout: createRoute({
    method: 'post',
    path: '/auth/logout',
    tags: ['auth'],
    summary: 'End the session the request carries',
    security: bearerSecurity,
    responses: { 200: json('ended', z.object({ loggedOut: z.boolean() })) },
  }),
}

export function authCommands(deps: AppDeps) {
  const app = router()
  const pd = pipelineDeps(deps)
  const ctxOf = (c: Context<AppEnv>, caller: Caller) => commandContext(c, accountActor(caller), caller.credential.tenantId)

  app.openapi(routes.tenantSession, async (c) => {
    const caller = await requireAccount(c, deps)
    const orgId = await resolveOrg(deps, c.req.valid('json').org)
    const state = orgId ? await loadOrg(pd, orgId) : null
    const membership = state ? membershipOf(state, caller.credential.accountId) : null
    if (!orgId || !membership) throw notFound('no such org among yours')
    const r = await issueCredential(pd, ctxOf(c, caller), {
      kind: 'session',
      accountId: caller.credential.accountId,
      tenantId: orgId,
      userId: membership[0],
      ttlMs: TENANT_SESSION_TTL_MS,
    })
    // A secret: never cached, by a proxy or by the idempotency store.
    c.header('cache-control', 'no-store')
    return c.json({ token: r.token, expiresAt: r.expiresAt, orgId, userId: membership[0] }, 200)
  })

  app.openapi(routes.createToken, async (c) => {
    const caller = await requireAccount(c, deps)
    const { credential } = caller
    if (!credential.tenantId || !credential.userId) throw unauthorized('personal tokens are made from a tenant session')
    const { name, expiresInDays } = c.req.valid('json')
    const r = await issueCredential(pd, ctxOf(c, caller), {
      kind: 'personal_token',
      accountId: credential.accountId,
      tenantId: credential.tenantId,
      userId: credential.userId,
      name,
      ttlMs: expiresInDays * 24 * 3600_000,
    })
    // A secret: never cached, by a proxy or by the idempotency store.
    c.header('cache-control', 'no-store')
    return c.json({ id: r.credentialId, token: r.token, expiresAt: r.expiresAt }, 201)
  })

  app.openapi(routes.deleteToken, async (c) => {
    const caller = await requireAccount(c, deps)
    const { id } = c.req.valid('param')
    await revokeCredential(pd, ctxOf(c, caller), { credentialId: id, accountId: caller.credential.accountId })
    return c.json({ id }, 200)
  })

  app.openapi(routes.logout, async (c) => {
    const caller = await requireAccount(c, deps)
    await revokeCredential(pd, ctxOf(c, caller), {
      credentialId: caller.credential.credentialId,
      accountId: caller.credential.accountId,
    })
    return c.json({ loggedOut: true }, 200)
  })
  return app
}
