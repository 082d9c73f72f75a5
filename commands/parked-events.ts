import { createRoute, z } from '@hono/zod-openapi'
import type { ParkedEventCommands } from '../adapters/parked-events.ts'
import type { AppDeps } from '../http/context.ts'
import { operatorActor, requireOperator } from '../http/operator.ts'
import { HttpProblem, notFound } from '../http/problem.ts'
import { router } from '../http/router.ts'
import { json, problemResponse, Uuid } from '../http/schemas.ts'

/*
 * Operator commands on the events a projector or a processor parked (adapters/parked-events.ts is the port; the
 * projection engine's and the processors' parking carry them out). They append no event: each is logged (with the
 * request and correlation ids) as the audit trail.
 */

/** Who parks: projectors (under /control/projections) or processors (under /control/processors). */
export type ParkingConsumer = {
  /** `projector` or `processor`: in messages and audit lines. */
  readonly kind: 'projector' | 'processor'
  /** The path segment under /control. */
  readonly collection: 'projections' | 'processors'
  readonly retrySummary: string
  readonly retryDescription: string
}

export function parkedEventCommands(deps: AppDeps, parking: ParkedEventCommands, consumer: ParkingConsumer) {
  const { kind, collection } = consumer
  const params = z.object({
    name: z
      .string()
      .min(1)
      .max(200)
      .openapi({ description: `the ${kind}, as GET /control/${collection} names it` }),
    eventId: Uuid,
  })

  const retryRoute = createRoute({
    method: 'post',
    path: `/control/${collection}/{name}/parked/{eventId}/retry`,
    tags: ['control'],
    summary: consumer.retrySummary,
    description: `${consumer.retryDescription} If the ${kind} fails again the event stays parked with the new error and the answer is 422. A skipped event may be retried too.`,
    security: [{ operator: [] }],
    request: { params },
    responses: {
      200: json(
        'applied; no longer parked',
        z.object({ name: z.string(), version: z.number().int(), eventId: Uuid, status: z.literal('applied') }),
      ),
      404: problemResponse(`no such ${kind}, or it has not parked this event`),
      422: problemResponse(`the ${kind} failed on the event again; it stays parked`),
    },
  })

  const skipRoute = createRoute({
    method: 'post',
    path: `/control/${collection}/{name}/parked/{eventId}/skip`,
    tags: ['control'],
    summary: 'Leave a parked event unapplied for good (operators)',
    security: [{ operator: [] }],
    request: {
      params,
      body: {
        content: { 'application/json': { schema: z.object({ reason: z.string().max(500).optional() }) } },
        required: false,
      },
    },
    responses: {
      200: json(
        'skipped',
        z.object({
          name: z.string(),
          version: z.number().int(),
          eventId: Uuid,
          status: z.literal('skipped'),
          skippedBy: z.string(),
          skippedAt: z.string(),
        }),
      ),
      404: problemResponse(`no such ${kind}, or it has not parked this event`),
      409: problemResponse('already skipped'),
    },
  })

  const noSuchEvent = (name: string, eventId: string) => notFound(`${kind} ${name} has no parked event ${eventId}`)

  const app = router()
  app.use(`/control/${collection}/*`, requireOperator(deps))
  app.openapi(retryRoute, async (c) => {
    const { name, eventId } = c.req.valid('param')
    const r = await parking.retry(name, eventId)
    if (r.outcome === 'not_found') throw noSuchEvent(name, eventId)
    const { version } = r.parked.consumer
    const audit = { operator: operatorActor(c).id, [kind]: name, version, eventId, type: r.parked.type }
    if (r.outcome === 'failed') {
      c.get('log').warn({ ...audit, error: r.error }, 'parked event retried by an operator: failed again')
      throw new HttpProblem({
        status: 422,
        code: 'PARKED_EVENT_FAILED',
        title: `The ${kind} failed again`,
        detail: `${name} v${version} failed on event ${eventId} again; it stays parked: ${r.error}`,
      })
    }
    c.get('log').warn(audit, 'parked event retried by an operator')
    return c.json({ name, version, eventId, status: 'applied' as const }, 200)
  })
  app.openapi(skipRoute, async (c) => {
    const { name, eventId } = c.req.valid('param')
    const reason = (c.req.valid('json') as { reason?: string } | undefined)?.reason ?? null
    const r = await parking.skip(name, eventId, operatorActor(c).id, reason)
    if (r.outcome === 'not_found') throw noSuchEvent(name, eventId)
    const { parked } = r
    if (r.outcome === 'already_skipped') {
      throw new HttpProblem({
        status: 409,
        code: 'ALREADY_SKIPPED',
        title: 'Conflict',
        detail: `event ${eventId} was skipped by ${parked.resolvedBy} at ${parked.resolvedAt?.toISOString()}`,
      })
    }
    c.get('log').warn(
      { operator: operatorActor(c).id, [kind]: name, version: parked.consumer.version, eventId, type: parked.type, reason },
      'parked event skipped by an operator',
    )
    return c.json(
      {
        name,
        version: parked.consumer.version,
        eventId,
        status: 'skipped' as const,
        skippedBy: parked.resolvedBy!,
        skippedAt: parked.resolvedAt!.toISOString(),
      },
      200,
    )
  })
  return app
}
