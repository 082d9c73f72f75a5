import { createRoute, z } from '@hono/zod-openapi'
import { type AuthDeps, requireAccountSession } from '../http/account-auth.ts'
import { loadAccount } from '../http/accounts.ts'
import { consistent } from '../http/consistent-after.ts'
import { router } from '../http/router.ts'
import { consistentAfterQuery, json, problemResponse, Uuid } from '../http/schemas.ts'
import { bearerSecurity } from '../http/tenant-route.ts'

const route = createRoute({
  method: 'get',
  path: '/auth/me',
  tags: ['auth'],
  summary: 'The global account and its org memberships',
  description:
    'Only the account session (the login host’s cookie, or its value as a bearer) may: a tenant session, a personal API token or an agent token is 403 ACCOUNT_SESSION_REQUIRED.',
  security: bearerSecurity,
  request: { query: z.object({ ...consistentAfterQuery }) },
  responses: {
    200: json(
      'the account',
      z.object({
        accountId: Uuid,
        email: z.string().nullable(),
        memberships: z.array(
          z.object({ orgId: Uuid, slug: z.string(), name: z.string(), userId: Uuid, role: z.string(), orgStatus: z.string() }),
        ),
      }),
    ),
    403: problemResponse('a credential bound to one org (ACCOUNT_SESSION_REQUIRED)'),
  },
})

export function authQueries(deps: AuthDeps) {
  const app = router()
  app.openapi(route, async (c) => {
    // Every membership in every org: for the account session only, never a credential bound to one org.
    const caller = await requireAccountSession(c, deps)
    await consistent(c, deps, ['memberships', 'orgs'])
    const acct = await loadAccount(deps, caller.credential.accountId)
    // control.memberships is the control plane's own table, read as the owner: it has no tenant rows.
    const rows = await deps.controlDb
      .selectFrom('control.memberships as m')
      .innerJoin('control.orgs as o', 'o.id', 'm.org_id')
      .select(['m.org_id', 'o.slug', 'o.name', 'm.user_id', 'm.role', 'o.status'])
      .where('m.account_id', '=', caller.credential.accountId)
      .where('m.status', '=', 'active')
      .orderBy('o.name')
      .execute()
    return c.json(
      {
        accountId: caller.credential.accountId,
        email: acct.exists ? acct.email : null,
        memberships: rows.map((r) => ({
          orgId: r.org_id,
          slug: r.slug,
          name: r.name,
          userId: r.user_id,
          role: r.role,
          orgStatus: r.status,
        })),
      },
      200,
    )
  })
  return app
}
