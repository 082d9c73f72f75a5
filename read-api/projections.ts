import { createRoute, z } from '@hono/zod-openapi'
import { sql } from 'kysely'
import { type AppDeps, router } from '../adapters/http/context.ts'
import { requireOperator } from '../adapters/http/operator.ts'
import { json } from '../adapters/http/schemas.ts'
import type { Projector } from '../projections/engine.ts'

export type ProjectionLag = {
  name: string
  version: number
  checkpoint: number
  head: number
  /** Events appended after the checkpoint (by global position; concurrent commits make it approximate). */
  lag: number
  updatedAt: string | null
}

/** Projection lag as the database sees it, so it is right whichever process runs the projectors. */
export async function projectionLag(deps: AppDeps, projectors: readonly Projector[]): Promise<ProjectionLag[]> {
  const head = await deps.store.headPosition()
  const out: ProjectionLag[] = []
  for (const p of projectors) {
    const row = await sql<{ prepare: string; updated_at: Date }>`
      select prepare_position::text as prepare, updated_at from ${sql.table(`${p.schema}.projection_checkpoints`)}
       where name = ${p.name} and version = ${p.version}`
      .execute(deps.db)
      .then((r) => r.rows[0])
    const checkpoint = row ? Number(row.prepare) : 0
    const headN = Number(head.prepare)
    out.push({
      name: p.name,
      version: p.version,
      checkpoint,
      head: headN,
      lag: Math.max(0, headN - checkpoint),
      updatedAt: row ? new Date(row.updated_at).toISOString() : null,
    })
  }
  return out
}

const route = createRoute({
  method: 'get',
  path: '/control/projections',
  tags: ['control'],
  summary: 'Projectors, their checkpoints and lag (operators)',
  security: [{ operator: [] }],
  responses: {
    200: json(
      'one entry per projector',
      z.object({
        items: z.array(
          z.object({
            name: z.string(),
            version: z.number(),
            checkpoint: z.number(),
            head: z.number(),
            lag: z.number(),
            updatedAt: z.string().nullable(),
          }),
        ),
      }),
    ),
  },
})

export function projectionQueries(deps: AppDeps, projectors: readonly Projector[]) {
  const app = router()
  app.use('/control/projections', requireOperator(deps.config.OPERATOR_TOKEN))
  app.openapi(route, async (c) => c.json({ items: await projectionLag(deps, projectors) }, 200))
  return app
}
