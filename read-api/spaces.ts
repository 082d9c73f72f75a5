import { createRoute, z } from '@hono/zod-openapi'
import { inTenant } from '../adapters/tenant-transaction.ts'
import { consistent } from '../http/consistent-after.ts'
import type { AppDeps } from '../http/context.ts'
import { principalOf } from '../http/principal.ts'
import { router } from '../http/router.ts'
import { consistentAfterQuery, json, Uuid } from '../http/schemas.ts'
import { bearerSecurity } from '../http/tenant-route.ts'
import { decodeCursor, encodeCursor, pageQuery, pageSchema } from './pagination.ts'

const Space = z
  .object({ id: Uuid, name: z.string(), kind: z.enum(['personal', 'public']), ownerId: Uuid, createdAt: z.string() })
  .openapi('Space')

const list = createRoute({
  method: 'get',
  path: '/api/spaces',
  tags: ['spaces'],
  summary: 'Public spaces and the caller’s personal ones',
  security: bearerSecurity,
  request: { query: z.object({ ...pageQuery, ...consistentAfterQuery }) },
  responses: { 200: json('spaces by name', pageSchema(Space)) },
})

export function spacesQueries(deps: AppDeps) {
  const app = router()
  app.openapi(list, async (c) => {
    const me = principalOf(c)
    const { limit, cursor } = c.req.valid('query')
    await consistent(c, deps, ['spaces'])
    const after = decodeCursor(cursor, 2)
    const rows = await inTenant(deps.db, me, (trx) => {
      let q = trx
        .selectFrom('tenant.spaces')
        .selectAll()
        .where('tenant_id', '=', me.tenantId)
        .where((eb) => eb.or([eb('kind', '=', 'public'), eb('owner_id', '=', me.userId)]))
        .orderBy('name')
        .orderBy('id')
        .limit(limit + 1)
      if (after)
        q = q.where(
          (eb) => eb.refTuple('name', 'id'),
          '>',
          (eb) => eb.tuple(String(after[0]), String(after[1])),
        )
      return q.execute()
    })
    const page = rows.slice(0, limit)
    const last = page.at(-1)
    return c.json(
      {
        items: page.map((s) => ({
          id: s.id,
          name: s.name,
          kind: s.kind,
          ownerId: s.owner_id,
          createdAt: new Date(s.created_at).toISOString(),
        })),
        nextCursor: rows.length > limit && last ? encodeCursor([last.name, last.id]) : null,
      },
      200,
    )
  })
  return app
}
