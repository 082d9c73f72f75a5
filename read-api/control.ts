import { createRoute, z } from '@hono/zod-openapi'
import { consistent } from '../http/consistent-after.ts'
import type { AppDeps } from '../http/context.ts'
import { requireOperator } from '../http/operator.ts'
import { router } from '../http/router.ts'
import { consistentAfterQuery, json, Uuid } from '../http/schemas.ts'
import { decodeCursor, encodeCursor, pageQuery, pageSchema } from './pagination.ts'

const Org = z
  .object({
    id: Uuid,
    name: z.string(),
    slug: z.string(),
    status: z.enum(['active', 'suspended']),
    createdAt: z.string(),
  })
  .openapi('Org')

const listOrgs = createRoute({
  method: 'get',
  path: '/control/orgs',
  tags: ['control'],
  summary: 'List orgs (operators)',
  security: [{ operator: [] }],
  request: { query: z.object({ ...pageQuery, ...consistentAfterQuery }) },
  responses: { 200: json('orgs, oldest first', pageSchema(Org)) },
})

export function controlQueries(deps: AppDeps) {
  const app = router()
  app.use('/control/*', requireOperator(deps.config.OPERATOR_TOKEN))
  app.openapi(listOrgs, async (c) => {
    const { limit, cursor } = c.req.valid('query')
    await consistent(c, deps, ['orgs'])
    const after = decodeCursor(cursor, 2)
    let q = deps.controlDb
      .selectFrom('control.orgs')
      .select(['id', 'name', 'slug', 'status', 'created_at'])
      .orderBy('created_at')
      .orderBy('id')
      .limit(limit + 1)
    if (after)
      q = q.where(
        (eb) => eb.refTuple('created_at', 'id'),
        '>',
        (eb) => eb.tuple(String(after[0]), String(after[1])),
      )
    const rows = await q.execute()
    const page = rows.slice(0, limit)
    const last = page[page.length - 1]
    return c.json(
      {
        items: page.map((r) => ({
          id: r.id,
          name: r.name,
          slug: r.slug,
          status: r.status,
          createdAt: new Date(r.created_at).toISOString(),
        })),
        nextCursor: rows.length > limit && last ? encodeCursor([new Date(last.created_at).toISOString(), last.id]) : null,
      },
      200,
    )
  })
  return app
}
