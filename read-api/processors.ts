import { createRoute, z } from '@hono/zod-openapi'
import { listLeases } from '../adapters/leases.ts'
import type { MetricsRegistry } from '../adapters/metrics.ts'
import { countParked, listParked } from '../adapters/parked-events.ts'
import { listProcessorCheckpoints } from '../adapters/processor-checkpoints.ts'
import type { AppDeps } from '../http/context.ts'
import { requireOperator } from '../http/operator.ts'
import { router } from '../http/router.ts'
import { json } from '../http/schemas.ts'
import { PARKED_SHOWN, ParkedEventView, parkedViews, SkippedEventView } from './parked-event-views.ts'

/** A processor as the Control API names it (the read API knows processors by name, never their code). */
export type ProcessorDescriptor = { readonly name: string; readonly version: number; readonly partitionBy: 'none' | 'tenant' }

/** What this process's runtime counted since it started (processors/runtime.ts statuses()), when it runs one. */
export type ProcessorCounts = {
  readonly name: string
  readonly partition: string
  readonly eventsHandled: number
  readonly failures: number
}

export type ProcessorSources = {
  readonly processors: readonly ProcessorDescriptor[]
  readonly statuses?: () => readonly ProcessorCounts[]
}

const PartitionView = z.object({
  partition: z.string().openapi({ description: "'*' for a processor not partitioned, 'k/n' for a tenant partition" }),
  status: z.enum(['held', 'free']).openapi({ description: 'held: a live lease; free: nobody handles it now' }),
  holder: z.string().nullable(),
  generation: z.string().nullable().openapi({ description: 'raised at each take-over of the lease' }),
  checkpoint: z.number().int(),
  /** Events appended after the checkpoint (by global position; concurrent commits make it approximate). */
  lag: z.number().int(),
  updatedAt: z.string().nullable(),
})

/** Each processor's partitions (lease holder, checkpoint, lag) and parked events, as the databases see them. */
export async function processorOverview(deps: Pick<AppDeps, 'store' | 'controlDb'>, processors: readonly ProcessorDescriptor[]) {
  const [head, checkpoints, leases, parked, counts] = await Promise.all([
    deps.store.headPosition(),
    listProcessorCheckpoints(deps.controlDb, processors),
    listLeases(
      deps.controlDb,
      processors.map((p) => p.name),
    ),
    listParked(deps.controlDb, 'processor', PARKED_SHOWN),
    countParked(deps.controlDb, 'processor'),
  ])
  const headN = Number(head.sequence)
  return processors.map((p) => {
    const partitions = new Set([
      ...checkpoints.filter((c) => c.name === p.name && c.version === p.version).map((c) => c.partition),
      ...leases.filter((l) => l.name === p.name).map((l) => l.partition),
    ])
    const mine = parked.filter((e) => e.consumer.name === p.name && e.consumer.version === p.version)
    return {
      name: p.name,
      version: p.version,
      partitionBy: p.partitionBy,
      head: headN,
      partitions: [...partitions].sort().map((partition) => {
        const c = checkpoints.find((x) => x.name === p.name && x.version === p.version && x.partition === partition)
        const l = leases.find((x) => x.name === p.name && x.partition === partition)
        const checkpoint = c ? Number(c.position.sequence) : 0
        return {
          partition,
          status: l?.holder ? ('held' as const) : ('free' as const),
          holder: l?.holder ?? null,
          generation: l ? l.generation.toString() : null,
          checkpoint,
          lag: Math.max(0, headN - checkpoint),
          updatedAt: c ? c.updatedAt.toISOString() : null,
        }
      }),
      parkedCount: counts.find((c) => c.name === p.name && c.version === p.version)?.parked ?? 0,
      ...parkedViews(mine),
    }
  })
}

const route = createRoute({
  method: 'get',
  path: '/control/processors',
  tags: ['control'],
  summary: 'Processors: their partitions (lease holder, checkpoint, lag) and parked events (operators)',
  description:
    'A processor that keeps failing on an event parks it and goes on: `parked` lists those events (the oldest ' +
    `${PARKED_SHOWN}; \`parkedCount\` counts them all), to retry or skip with POST ` +
    '`/control/processors/{name}/parked/{eventId}/retry` or `/skip`; `skipped` lists the skipped ones.',
  security: [{ operator: [] }],
  responses: {
    200: json(
      'one entry per processor',
      z.object({
        items: z.array(
          z.object({
            name: z.string(),
            version: z.number().int(),
            partitionBy: z.enum(['none', 'tenant']),
            head: z.number().int(),
            partitions: z.array(PartitionView),
            parkedCount: z.number().int(),
            parked: z.array(ParkedEventView),
            skipped: z.array(SkippedEventView),
          }),
        ),
      }),
    ),
  },
})

export function processorQueries(deps: AppDeps, processors: readonly ProcessorDescriptor[]) {
  const app = router()
  app.use('/control/processors', requireOperator(deps))
  app.openapi(route, async (c) => c.json({ items: await processorOverview(deps, processors) }, 200))
  return app
}

/**
 * The processors' series on /metrics: parked events (from the database, every processor named so alerts see a
 * series), and, where this process runs processors, the events handled and failed attempts of each partition.
 */
export function processorMetrics(registry: MetricsRegistry, deps: Pick<AppDeps, 'controlDb'>, sources: ProcessorSources): void {
  registry.gauge(
    'workspace_processor_parked_events',
    'Events each processor parked after failing on them, not yet retried or skipped.',
    ['processor', 'version'],
    async () => {
      const counts = new Map(sources.processors.map((p) => [`${p.name}@${p.version}`, { p, parked: 0 }]))
      for (const c of await countParked(deps.controlDb, 'processor')) {
        const entry = counts.get(`${c.name}@${c.version}`)
        if (entry) entry.parked = c.parked
      }
      return [...counts.values()].map(({ p, parked }) => ({
        labels: { processor: p.name, version: String(p.version) },
        value: parked,
      }))
    },
  )
  const statuses = sources.statuses
  if (!statuses) return
  registry.gauge(
    'workspace_processor_events_handled',
    'Events this process handled per processor partition since it started.',
    ['processor', 'partition'],
    () => statuses().map((s) => ({ labels: { processor: s.name, partition: s.partition }, value: s.eventsHandled })),
  )
  registry.gauge(
    'workspace_processor_failures',
    "Failed attempts of this process's processor handlers per partition since it started (retried or parked).",
    ['processor', 'partition'],
    () => statuses().map((s) => ({ labels: { processor: s.name, partition: s.partition }, value: s.failures })),
  )
}
