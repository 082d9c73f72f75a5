import { acquireLease, type Lease, releaseLease } from '../adapters/leases.ts'
import type { AnyDb } from '../adapters/postgres.ts'

/**
 * One lease by name in control.processor_leases, for a worker that is not a processor (the timer runner's
 * TimerLease): hold() takes it, or renews it while held, and must be called more often than every `ttlMs`;
 * false means another process holds it and this one must not work meanwhile.
 */
export function namedLease(db: AnyDb, name: string, holder: string, ttlMs: number) {
  let held: Lease | null = null
  return {
    async hold(): Promise<boolean> {
      held = await acquireLease(db, { name, partition: '*' }, holder, ttlMs)
      return held !== null
    },
    async release(): Promise<void> {
      if (held) await releaseLease(db, held)
      held = null
    },
  }
}
