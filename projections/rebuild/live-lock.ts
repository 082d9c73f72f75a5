import { sql } from 'kysely'
import type { AnyDb } from '../../adapters/postgres.ts'
import { batchLockKey, type ProjectionTransaction, type Projector } from '../engine.ts'

/*
 * Holding the live projector: a rebuild's swap and a verify's diff take its batch lock (the batch in flight commits
 * first, the next one waits for this transaction), in a transaction retried when a lock wait times out.
 */

/** One attempt of a transaction that waits for locks; retried when a lock wait times out or deadlocks. */
async function withLockRetries<T>(work: () => Promise<T>, attempts = 10): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await work()
    } catch (e) {
      const code = (e as { code?: string }).code
      if (attempt >= attempts || (code !== '55P03' && code !== '40P01')) throw e
      await new Promise((r) => setTimeout(r, 50 * attempt + Math.random() * 100))
    }
  }
}

/**
 * Runs `work` in one transaction holding the live projector's batch lock; the whole transaction is tried again
 * when a lock wait times out or deadlocks.
 */
export function whileLiveBatchesWait<T>(db: AnyDb, p: Projector, work: (trx: ProjectionTransaction) => Promise<T>): Promise<T> {
  return withLockRetries(() =>
    db.transaction().execute(async (trx) => {
      await sql`set local lock_timeout = '3s'`.execute(trx)
      // Stops the live projector's batches: the one in flight commits first, the next waits for this transaction.
      await sql`select pg_advisory_xact_lock(hashtext(${batchLockKey(p.schema, p.name)}))`.execute(trx)
      return work(trx)
    }),
  )
}

/** Back to the connecting role and its search_path, after applyBatchIn switched them for the transaction. */
export async function asOwner(trx: ProjectionTransaction): Promise<void> {
  await sql`set local role none`.execute(trx)
  await sql`set local search_path to default`.execute(trx)
  await sql`select set_config('app.tenant_id', '', true)`.execute(trx)
}
