import type { EventStore } from '../adapters/event-store.ts'
import type { Logger } from '../adapters/logger.ts'
import {
  type Consumer,
  errorText,
  findParked,
  markSkipped,
  type ParkedEventCommands,
  recordFailure,
  unpark,
} from '../adapters/parked-events.ts'
import type { AnyDb } from '../adapters/postgres.ts'
import { isTransient } from '../adapters/transient.ts'
import { noTimers, processorContext } from './context.ts'
import type { Processor, ProcessorTimers } from './processor.ts'

/*
 * What an operator does with an event a processor parked: run its handler on it again (once its code, or the
 * service it tripped on, is fixed), or skip it for good. A retry runs in the process that serves the command, with
 * no lease: the handler's effects are idempotent by ctx.idFor, so a retry racing the partition's holder repeats
 * nothing. It runs long after the checkpoint passed the event, after events that followed it.
 */

const consumerOf = (p: Processor): Consumer => ({ kind: 'processor', name: p.name, version: p.version })

export function processorParking(deps: {
  readonly store: EventStore
  readonly controlDb: AnyDb
  readonly logger: Logger
  readonly processors: readonly Processor[]
  readonly timers?: ProcessorTimers
  /** How long a retried handler may run before ctx.signal aborts it. */
  readonly retryTimeoutMs?: number
}): ParkedEventCommands {
  const byName = new Map(deps.processors.map((p) => [p.name, p]))
  const db = deps.controlDb
  return {
    async retry(name, eventId) {
      const p = byName.get(name)
      const parked = p && (await findParked(db, consumerOf(p), eventId))
      if (!p || !parked) return { outcome: 'not_found' }
      const [event] = await deps.store.readStream(parked.stream, { fromRevision: parked.revision, maxCount: 1 })
      try {
        if (event?.id !== eventId) throw new Error(`the event is no longer at ${parked.stream} revision ${parked.revision}`)
        const signal = AbortSignal.timeout(deps.retryTimeoutMs ?? 60_000)
        await p.handle(
          event as never,
          processorContext(p, event, { logger: deps.logger, timers: deps.timers ?? noTimers, signal }),
        )
      } catch (e) {
        // A backing service's failure is not the event's: it answers as such, and the attempt is not counted.
        if (isTransient(e)) throw e
        await recordFailure(db, consumerOf(p), eventId, e)
        return { outcome: 'failed', parked, error: errorText(e) }
      }
      await unpark(db, consumerOf(p), eventId)
      return { outcome: 'applied', parked }
    },

    async skip(name, eventId, by, reason) {
      const p = byName.get(name)
      if (!p) return { outcome: 'not_found' }
      const skipped = await markSkipped(db, consumerOf(p), eventId, by, reason)
      if (skipped) return { outcome: 'skipped', parked: skipped }
      const existing = await findParked(db, consumerOf(p), eventId)
      return existing ? { outcome: 'already_skipped', parked: existing } : { outcome: 'not_found' }
    },
  }
}
