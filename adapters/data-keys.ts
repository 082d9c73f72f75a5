import { randomBytes } from 'node:crypto'
import { sql } from 'kysely'
import type { Sealer } from './auth-keys.ts'
import type { AnyDb } from './postgres.ts'

/** A subject's 32-byte data key, or null once it was destroyed (the subject is erased). */
export type DataKey = Buffer | null

/**
 * Per-subject data keys (control.data_keys), wrapped at rest by a key derived from AUTH_SECRET_KEY. Unwrapped
 * keys are cached in the process for `cacheTtlMs`: destroying one here takes effect here at once, and in other
 * processes when their copy expires (or when they read the erasing event, see personal-data-store.ts).
 */
export interface DataKeys {
  /** Keys to encrypt with: a subject that has none gets one now. */
  forWriting(subjects: readonly string[]): Promise<Map<string, DataKey>>
  /** Keys to decrypt with; a subject that never had a key is absent from the answer. */
  forReading(subjects: readonly string[]): Promise<Map<string, DataKey>>
  /** Destroys the subject's key for good; a subject without one can never get one. */
  destroy(subject: string): Promise<void>
  /** Drops this process's copy of the subject's key, so the next use asks the database. */
  forget(subject: string): void
}

export class DataKeyUnwrapError extends Error {
  override readonly name = 'DataKeyUnwrapError'
  /** A process with another AUTH_SECRET_KEY waits to be configured right; it must not park every event it reads. */
  readonly transient = true
}

const context = (subject: string) => `data-key:${subject}`

export class PostgresDataKeys implements DataKeys {
  readonly #db: AnyDb
  readonly #wrapper: () => Promise<Sealer>
  readonly #ttlMs: number
  readonly #maxCached: number
  /** Destroyed keys stay cached (a destroyed key never comes back); live ones until `expires`. */
  readonly #cache = new Map<string, { key: DataKey; expires: number }>()

  /** `wrapper` is asked for only when a key is wrapped or unwrapped: tools that never need one create no secret. */
  constructor(db: AnyDb, wrapper: () => Promise<Sealer>, options: { cacheTtlMs?: number; maxCached?: number } = {}) {
    this.#db = db
    this.#wrapper = wrapper
    this.#ttlMs = options.cacheTtlMs ?? 60_000
    this.#maxCached = options.maxCached ?? 100_000
  }

  async forReading(subjects: readonly string[]): Promise<Map<string, DataKey>> {
    const found = new Map<string, DataKey>()
    const missing: string[] = []
    const now = Date.now()
    for (const s of new Set(subjects)) {
      const hit = this.#cache.get(s)
      if (hit && (hit.key === null || hit.expires > now)) found.set(s, hit.key)
      else missing.push(s)
    }
    if (missing.length === 0) return found
    const { rows } = await sql<{ user_id: string; wrapped_key: string | null }>`
      select user_id, wrapped_key from control.data_keys where user_id = any(${missing}::text[])`.execute(this.#db)
    for (const r of rows) {
      const key = r.wrapped_key === null ? null : await this.#unwrap(r.user_id, r.wrapped_key)
      this.#remember(r.user_id, key)
      found.set(r.user_id, key)
    }
    return found
  }

  async forWriting(subjects: readonly string[]): Promise<Map<string, DataKey>> {
    const found = await this.forReading(subjects)
    const missing = [...new Set(subjects)].filter((s) => !found.has(s))
    if (missing.length === 0) return found
    const wrapper = await this.#wrapper()
    const fresh = missing.map((s) => ({ user_id: s, wrapped_key: wrapper.seal(randomBytes(32).toString('base64'), context(s)) }))
    // Another process may create the same subject's key meanwhile: whichever row landed first is the key.
    await sql`
      insert into control.data_keys (user_id, wrapped_key)
      select x.user_id, x.wrapped_key from jsonb_to_recordset(${JSON.stringify(fresh)}::jsonb) as x(user_id text, wrapped_key text)
      on conflict (user_id) do nothing`.execute(this.#db)
    for (const [s, key] of await this.forReading(missing)) found.set(s, key)
    return found
  }

  async destroy(subject: string): Promise<void> {
    await sql`
      insert into control.data_keys (user_id, wrapped_key, erased_at) values (${subject}, null, now())
      on conflict (user_id) do update set wrapped_key = null, erased_at = coalesce(control.data_keys.erased_at, now())`.execute(
      this.#db,
    )
    this.#remember(subject, null)
  }

  forget(subject: string): void {
    this.#cache.delete(subject)
  }

  async #unwrap(subject: string, wrapped: string): Promise<Buffer> {
    const opened = (await this.#wrapper()).open(wrapped, context(subject))
    // Never read this as "erased": a process with another AUTH_SECRET_KEY would silently drop everyone's data.
    if (opened === null) {
      throw new DataKeyUnwrapError(
        `the data key of ${subject} does not open with this AUTH_SECRET_KEY (not the one that wrapped it)`,
      )
    }
    return Buffer.from(opened, 'base64')
  }

  #remember(subject: string, key: DataKey) {
    this.#cache.delete(subject)
    this.#cache.set(subject, { key, expires: Date.now() + this.#ttlMs })
    // Oldest first: a Map iterates in insertion order, and a refreshed entry was re-inserted.
    for (const oldest of this.#cache.keys()) {
      if (this.#cache.size <= this.#maxCached) break
      this.#cache.delete(oldest)
    }
  }
}
