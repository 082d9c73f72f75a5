import { createHash } from 'node:crypto'
import type { Context } from 'hono'
import { v7 as uuid } from 'uuid'
import type { Actor } from '../adapters/event-store.ts'
import type { AppDeps, AppEnv } from '../http/context.ts'
import type { CommandContext, PipelineDeps } from './pipeline.ts'

export const pipelineDeps = (deps: AppDeps): PipelineDeps => ({
  store: deps.store,
  upcasters: deps.upcasters,
  streamCache: deps.streamCache,
})

/**
 * UUIDv7s that the same idempotency seed always yields in the same order: a retried command decides the
 * same events with the same ids, and the event store answers the retry without appending.
 */
export const seededIds = (seed: string, msecs: number): (() => string) => {
  let n = 0
  return () => {
    const random = createHash('sha256').update(`${seed}#${n}`).digest().subarray(0, 16)
    return uuid({ msecs, seq: n++, random })
  }
}

/** The command context of an HTTP request: the request is the cause, its correlation id flows on. */
export const commandContext = (c: Context<AppEnv>, actor: Actor, tenantId: string | null): CommandContext => {
  const seeded = c.get('idempotencySeed')
  return {
    tenantId,
    actor,
    correlationId: c.get('correlationId'),
    causationId: c.get('requestId'),
    now: seeded ? () => new Date(seeded.msecs) : () => new Date(),
    newId: seeded ? seededIds(seeded.seed, seeded.msecs) : uuid,
  }
}
