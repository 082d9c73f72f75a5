import { createRoute, z } from '@hono/zod-openapi'
import { orgNameStream } from '../adapters/streams.ts'
import { checkOrgName } from '../domain/orgs.ts'
import type { AppDeps } from '../http/context.ts'
import { router } from '../http/router.ts'
import { json } from '../http/schemas.ts'

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
