import { sql } from 'kysely'
import type { EventStore } from '../adapters/event-store.ts'
import {
  type Consumer,
  errorText,
  findParked,
  markSkipped,
  type ParkedEventCommands,
  type RetryOutcome,
  recordFailure,
  unpark,
} from '../adapters/parked-events.ts'
import { isTransient } from '../adapters/transient.ts'
import { applyEventsIn, databaseOf, enterProjection, type ProjectionDatabases, type Projector } from './engine.ts'

/*
 * What an operator does with an event a projector parked: retry it through the projector (once its code or the
 * data it tripped on is fixed), or skip it for good. A retry applies the event long after the checkpoint passed
 * it, so after events that followed it: the projector must cope with that order, as it does for a replay.
 */

const consumerOf = (p: Projector): Consumer => ({ kind: 'projector', name: p.name, version: p.version })

export function projectorParking(
  deps: ProjectionDatabases & { store: EventStore },
  projectors: readonly Projector[],
): ParkedEventCommands {
  const byName = new Map(projectors.map((p) => [p.name, p]))
  const control = deps.controlDb ?? deps.db
  return {
    async retry(name, eventId) {
      const p = byName.get(name)
      const seen = p && (await findParked(control, consumerOf(p), eventId))
      if (!p || !seen) return { outcome: 'not_found' }
      // Read before the transactions open: the store may be another database.
      const [event] = await deps.store.readStream(seen.stream, { fromRevision: seen.revision, maxCount: 1 })
      const db = databaseOf(deps, p)
      const trx = await db.startTransaction().execute()
      // The parked row in the control database: in the projector's transaction when that is the same database,
      // else in one of its own that commits after the projector's (a crash in between leaves the event parked, and
      // a retry applies it again, as a replay would).
      const own = db === control ? null : await control.startTransaction().execute()
      const parking = own ?? trx
      try {
        // The batch lock before the row, in the order batches and a rebuild's swap take them: no deadlock.
        await enterProjection(trx, p, p.schema)
        const parked = await findParked(parking, consumerOf(p), eventId, { forUpdate: true })
        let result: RetryOutcome
        if (!parked) {
          result = { outcome: 'not_found' }
        } else {
          await sql`savepoint retry_parked`.execute(trx)
          try {
            if (event?.id !== eventId) throw new Error(`the event is no longer at ${parked.stream} revision ${parked.revision}`)
            await applyEventsIn(trx, p, [event])
            await unpark(parking, consumerOf(p), eventId)
            await sql`release savepoint retry_parked`.execute(trx)
            result = { outcome: 'applied', parked }
          } catch (e) {
            // A backing service's failure is not the event's: it answers as such, and the attempt is not counted.
            if (isTransient(e)) throw e
            await sql`rollback to savepoint retry_parked`.execute(trx)
            await recordFailure(parking, consumerOf(p), eventId, e)
            result = { outcome: 'failed', parked, error: errorText(e) }
          }
        }
        await trx.commit().execute()
        await own?.commit().execute()
        // As after a batch: what the retry left for outside the database (the fan-out's outbox) goes out now.
        if (result.outcome === 'applied') p.afterCommit?.()
        return result
      } catch (e) {
        await trx
          .rollback()
          .execute()
          .catch(() => {})
        await own
          ?.rollback()
          .execute()
          .catch(() => {})
        throw e
      }
    },

    async skip(name, eventId, by, reason) {
      const p = byName.get(name)
      if (!p) return { outcome: 'not_found' }
      const skipped = await markSkipped(control, consumerOf(p), eventId, by, reason)
      if (skipped) return { outcome: 'skipped', parked: skipped }
      const existing = await findParked(control, consumerOf(p), eventId)
      return existing ? { outcome: 'already_skipped', parked: existing } : { outcome: 'not_found' }
    },
  }
}
