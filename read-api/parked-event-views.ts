import { z } from '@hono/zod-openapi'
import type { ParkedEvent } from '../adapters/parked-events.ts'
import { Uuid } from '../http/schemas.ts'

/** How many parked (and skipped) events of each consumer an overview lists; its count covers them all. */
export const PARKED_SHOWN = 100

/** A parked event as operators see it, for projectors and processors alike. */
export const ParkedEventView = z.object({
  eventId: Uuid,
  version: z.number().int(),
  position: z.number().int(),
  stream: z.string(),
  type: z.string(),
  error: z.string().openapi({ description: 'the last failure' }),
  attempts: z.number().int().openapi({ description: 'failed attempts, the retries before parking included' }),
  parkedAt: z.string(),
  lastFailedAt: z.string(),
})

export const SkippedEventView = ParkedEventView.extend({
  skippedBy: z.string(),
  skippedAt: z.string(),
  reason: z.string().nullable(),
})

const view = (e: ParkedEvent) => ({
  eventId: e.eventId,
  version: e.consumer.version,
  position: Number(e.position.sequence),
  stream: e.stream,
  type: e.type,
  error: e.error,
  attempts: e.attempts,
  parkedAt: e.parkedAt.toISOString(),
  lastFailedAt: e.lastFailedAt.toISOString(),
})

/** One consumer's parked and skipped events, as the overviews list them. */
export const parkedViews = (events: readonly ParkedEvent[]) => ({
  parked: events.filter((e) => e.status === 'parked').map(view),
  skipped: events
    .filter((e) => e.status === 'skipped')
    .map((e) => ({ ...view(e), skippedBy: e.resolvedBy!, skippedAt: e.resolvedAt!.toISOString(), reason: e.note })),
})
