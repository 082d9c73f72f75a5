import { createRoute, z } from '@hono/zod-openapi'
import { orgNameStream } from '../adapters/streams.ts'
import { checkOrgName } from '../domain/orgs.ts'
import { consistent } from '../http/consistent-after.ts'
import type { AppDeps } from '../http/context.ts'
import { principalOf, requireRole } from '../http/principal.ts'
import { router } from '../http/router.ts'
import { consistentAfterQuery, json, problemResponse } from '../http/schemas.ts'

const nameCheck = createRoute({
  method: 'get',
  path: '/orgs/name-check',
  tags: ['orgs'],
  summary: 'Whether a name can become an org',
  request: { query: z.object({ name: z.string().max(500) }) },
  responses: {
    200: json(
      'the verdict',
      z.object({
        name: z.string(),
        slug: z.string(),
        available: z.boolean(),
        reason: z.enum(['taken', 'reserved', 'invalid']).optional(),
        detail: z.string().optional(),
      }),
    ),
  },
})

export function orgsQueries(deps: AppDeps) {
  const app = router()
  // The reservation stream is the truth about a name, and reading it is one indexed lookup.
  app.openapi(nameCheck, async (c) => {
    const { name } = c.req.valid('query')
    const verdict = checkOrgName(name)
    if (!verdict.ok)
      return c.json({ name, slug: verdict.slug, available: false, reason: verdict.reason, detail: verdict.detail }, 200)
    const taken = (await deps.store.readStream(orgNameStream(verdict.slug), { maxCount: 1 })).length > 0
    return c.json(
      taken
        ? { name, slug: verdict.slug, available: false, reason: 'taken' as const }
        : { name, slug: verdict.slug, available: true },
      200,
    )
  })
  return app
}

const llmPolicy = createRoute({
  method: 'get',
  path: '/api/org/llm-policy',
  tags: ['orgs'],
  summary: 'The org’s LLM policy, as operators set it (admins)',
  description:
    'Which models the org’s agents may call, whose key pays (`platform` or the `org`’s own), the monthly token budget ' +
    '(null: none). `policy` is null while no operator has set one: the platform’s defaults apply.',
  security: [{ bearer: [] }],
  request: { query: z.object({ ...consistentAfterQuery }) },
  responses: {
    200: json(
      'the policy',
      z.object({
        policy: z
          .object({
            allowedModels: z.array(z.string()),
            keySource: z.enum(['platform', 'org']),
            monthlyTokenBudget: z.number().int().nullable(),
          })
          .nullable(),
      }),
    ),
    403: problemResponse('not an admin'),
  },
})

/** The Tenant API's view of what operators set on the org. */
export function orgTenantQueries(deps: AppDeps) {
  const app = router()
  app.openapi(llmPolicy, async (c) => {
    const p = principalOf(c)
    requireRole(p, 'admin')
    await consistent(c, deps, ['orgs'])
    const row = await deps.controlDb
      .selectFrom('control.orgs')
      .select(['llm_allowed_models', 'llm_key_source', 'llm_monthly_token_budget'])
      .where('id', '=', p.tenantId)
      .executeTakeFirst()
    const policy =
      row && row.llm_key_source !== null
        ? {
            allowedModels: JSON.parse((row.llm_allowed_models as string | null) ?? '[]') as string[],
            keySource: row.llm_key_source as 'platform' | 'org',
            monthlyTokenBudget: row.llm_monthly_token_budget === null ? null : Number(row.llm_monthly_token_budget),
          }
        : null
    return c.json({ policy }, 200)
  })
  return app
}
