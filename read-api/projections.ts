import { createRoute, z } from '@hono/zod-openapi'
import { sql } from 'kysely'
import { countParked, listParked } from '../adapters/parked-events.ts'
import type { AppDeps } from '../http/context.ts'
import { requireOperator } from '../http/operator.ts'
import { router } from '../http/router.ts'
import { json } from '../http/schemas.ts'
import { databaseOf, type Projector } from '../projections/engine.ts'
import { PARKED_SHOWN, ParkedEventView, parkedViews, SkippedEventView } from './parked-event-views.ts'

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
    const row = await sql<{ sequence: string; updated_at: Date }>`
      select prepare_position::text as sequence, updated_at from ${sql.table(`${p.schema}.projection_checkpoints`)}
       where name = ${p.name} and version = ${p.version}`
      .execute(databaseOf(deps, p))
      .then((r) => r.rows[0])
    const checkpoint = row ? Number(row.sequence) : 0
    const headN = Number(head.sequence)
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

/** How many events each projector has parked now, every projector named (0 included) so alerts see a series. */
export async function parkedCounts(
  deps: AppDeps,
  projectors: readonly Projector[],
): Promise<{ name: string; version: number; parked: number }[]> {
  const counts = new Map(projectors.map((p) => [`${p.name}@${p.version}`, { name: p.name, version: p.version, parked: 0 }]))
  for (const c of await countParked(deps.controlDb, 'projector')) counts.set(`${c.name}@${c.version}`, c)
  return [...counts.values()]
}

/** Each projector's lag, with the events it parked (oldest first, at most PARKED_SHOWN of each status). */
async function projectionsWithParked(deps: AppDeps, projectors: readonly Projector[]) {
  const [lag, parked, counts] = await Promise.all([
    projectionLag(deps, projectors),
    listParked(deps.controlDb, 'projector', PARKED_SHOWN),
    parkedCounts(deps, projectors),
  ])
  return lag.map((p) => {
    const mine = parked.filter((e) => e.consumer.name === p.name)
    return {
      ...p,
      parkedCount: counts.filter((c) => c.name === p.name).reduce((n, c) => n + c.parked, 0),
      ...parkedViews(mine),
    }
  })
}

const route = createRoute({
  method: 'get',
  path: '/control/projections',
  tags: ['control'],
  summary: 'Projectors, their checkpoints, lag and parked events (operators)',
  description:
    'A projector that keeps failing on an event parks it and goes on: `parked` lists those events (the oldest ' +
    `${PARKED_SHOWN}; \`parkedCount\` counts them all), to retry or skip with POST ` +
    '`/control/projections/{name}/parked/{eventId}/retry` or `/skip`; `skipped` lists the skipped ones.',
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
            parkedCount: z.number().int(),
            parked: z.array(ParkedEventView),
            skipped: z.array(SkippedEventView),
          }),
        ),
      }),
    ),
  },
})

export function projectionQueries(deps: AppDeps, projectors: readonly Projector[]) {
  const app = router()
  app.use('/control/projections', requireOperator(deps))
  app.openapi(route, async (c) => c.json({ items: await projectionsWithParked(deps, projectors) }, 200))
  return app
}
