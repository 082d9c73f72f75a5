import { createHash } from 'node:crypto'
import { sql } from 'kysely'
import type { AnyDb } from './postgres.ts'
import type { ReplayCache } from './replay-cache.ts'

/**
 * The replay cache on Postgres (`control.replay_cache`), shared by every API process. A claim is one
 * statement: insert the key, or take over an expired row; the row comes back only to the one claimant
 * that wrote it. Keys are stored hashed (they may embed signatures). Expired rows are swept now and then.
 */
export class PostgresReplayCache implements ReplayCache {
  readonly #db: AnyDb
  readonly #now: () => number
  readonly #sweepEvery: number
  #claims = 0

  constructor(db: AnyDb, options: { now?: () => number; sweepEvery?: number } = {}) {
    this.#db = db
    this.#now = options.now ?? Date.now
    this.#sweepEvery = options.sweepEvery ?? 500
  }

  async claim(key: string, expiresAtMs: number): Promise<boolean> {
    const now = new Date(this.#now())
    if (++this.#claims % this.#sweepEvery === 0) await this.sweep()
    const hashed = createHash('sha256').update(key, 'utf8').digest('hex')
    const { rows } = await sql<{ key: string }>`
      insert into control.replay_cache as r (key, expires_at) values (${hashed}, ${new Date(expiresAtMs)})
      on conflict (key) do update set expires_at = excluded.expires_at where r.expires_at <= ${now}
      returning r.key`.execute(this.#db)
    return rows.length === 1
  }

  /** Deletes expired keys; returns how many. */
  async sweep(): Promise<number> {
    const r = await sql`delete from control.replay_cache where expires_at <= ${new Date(this.#now())}`.execute(this.#db)
    return Number(r.numAffectedRows ?? 0)
  }
}
