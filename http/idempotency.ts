import { createHash } from 'node:crypto'
import type { Context, MiddlewareHandler } from 'hono'
import { sql } from 'kysely'
import type { Logger } from '../adapters/logger.ts'
import type { AnyDb } from '../adapters/postgres.ts'
import type { AppEnv } from './context.ts'
import { HttpProblem } from './problem.ts'

const KEY = /^[\w.:-]{1,200}$/
const TTL = "interval '24 hours'"
/** A claimed key whose request never finished (the process died) may be retried after this. */
const STALE_CLAIM = "interval '2 minutes'"
const SWEEP_EVERY_MS = 10 * 60_000

export type IdempotencyOptions = {
  readonly db: AnyDb
  /** Who is asking: answers are never shared between actors. Null when the request is anonymous. */
  readonly actorOf: (c: Context<AppEnv>) => string | null
}

/**
 * `Idempotency-Key` on a command: the same key from the same actor within 24 hours gets the first answer
 * again and appends nothing. The key also seeds the ids the command generates (see commandContext), so a
 * retry after a crash between the append and the stored answer decides the same events with the same ids,
 * which the event store takes as a no-op.
 */
export const idempotency =
  ({ db, actorOf }: IdempotencyOptions): MiddlewareHandler<AppEnv> =>
  async (c: Context<AppEnv>, next) => {
    const key = c.req.header('idempotency-key')
    if (key === undefined || c.req.method === 'GET' || c.req.method === 'HEAD') return next()
    if (!KEY.test(key)) {
      throw new HttpProblem({
        status: 400,
        code: 'INVALID_INPUT',
        title: 'Invalid input',
        detail: 'Idempotency-Key is 1 to 200 of [A-Za-z0-9_.:-]',
      })
    }
    const actor = actorOf(c)
    if (!actor) return next()
    const body = await c.req.raw.clone().text()
    const requestHash = createHash('sha256').update(`${c.req.method} ${c.req.path}\n${body}`).digest('hex')

    // A stale claim is taken over with its first time kept: the retry then generates the same ids.
    const claimed = await sql<{ ms: string }>`
      insert into control.idempotency_keys as k (actor, key, request_hash) values (${actor}, ${key}, ${requestHash})
      on conflict (actor, key) do update
        set request_hash = excluded.request_hash, status = null, body = null,
            created_at = case when k.created_at < now() - ${sql.raw(TTL)} then now() else k.created_at end
        where k.created_at < now() - ${sql.raw(TTL)}
           or (k.status is null and k.request_hash = excluded.request_hash and k.created_at < now() - ${sql.raw(STALE_CLAIM)})
      returning (extract(epoch from k.created_at) * 1000)::bigint::text as ms`.execute(db)
    if (claimed.rows.length === 0) {
      const previous = await db
        .selectFrom('control.idempotency_keys')
        .select(['request_hash', 'status', 'body'])
        .where('actor', '=', actor)
        .where('key', '=', key)
        .executeTakeFirst()
      if (previous && previous.request_hash !== requestHash) {
        throw new HttpProblem({
          status: 422,
          code: 'IDEMPOTENCY_KEY_REUSED',
          title: 'Refused',
          detail: 'this Idempotency-Key was used for another request',
        })
      }
      if (!previous || previous.status === null) {
        throw new HttpProblem({
          status: 409,
          code: 'IDEMPOTENCY_IN_PROGRESS',
          title: 'Conflict',
          detail: 'a request with this Idempotency-Key is still being processed',
          headers: { 'retry-after': '1' },
        })
      }
      const status = previous.status as number
      return new Response(JSON.stringify(previous.body), {
        status,
        // A replayed refusal is still a problem document.
        headers: {
          'content-type': status >= 400 ? 'application/problem+json' : 'application/json',
          'idempotent-replayed': 'true',
        },
      })
    }

    c.set('idempotencySeed', { seed: `${actor}:${key}`, msecs: Number(claimed.rows[0]!.ms) })
    try {
      await next()
    } catch (e) {
      await release(db, actor, key)
      throw e
    }
    const res = c.res
    const json = res.headers.get('content-type')?.includes('json')
      ? await res
          .clone()
          .json()
          .catch(() => null)
      : null
    // An answer carrying a secret (Cache-Control: no-store) is never kept: a retry is then refused by the
    // command itself (its seeded ids already exist), which is safe, rather than replaying the secret.
    const secret = /no-store/.test(res.headers.get('cache-control') ?? '')
    if (res.status < 500 && json !== null && !secret) {
      await sql`update control.idempotency_keys set status = ${res.status}, body = ${JSON.stringify(json)}::jsonb
                 where actor = ${actor} and key = ${key}`.execute(db)
    } else {
      await release(db, actor, key)
    }
  }

/** A failed attempt is not an answer: the key may be used again at once. */
const release = (db: AnyDb, actor: string, key: string) =>
  sql`delete from control.idempotency_keys where actor = ${actor} and key = ${key} and status is null`.execute(db)

/**
 * Deletes the answers older than 24 hours (a claim treats them as absent already), a batch at a time so that no
 * statement runs long or locks many rows; returns how many. Rows another process is sweeping, or a request is
 * taking over, are skipped rather than waited for: every API process sweeps.
 */
export async function sweepIdempotencyKeys(db: AnyDb, { batchSize = 1_000 }: { batchSize?: number } = {}): Promise<number> {
  let swept = 0
  for (;;) {
    const r = await sql`
      delete from control.idempotency_keys k
       using (select actor, key from control.idempotency_keys where created_at < now() - ${sql.raw(TTL)}
               order by created_at limit ${batchSize} for update skip locked) old
       where k.actor = old.actor and k.key = old.key`.execute(db)
    const n = Number(r.numAffectedRows ?? 0)
    swept += n
    if (n < batchSize) return swept
  }
}

/**
 * Sweeps at start and then every 10 minutes, one sweep at a time; a failed sweep is logged and the next one
 * catches up. Returns the stop, which waits for a sweep under way (the pool is closed next).
 */
export function startIdempotencySweep(db: AnyDb, logger: Logger): () => Promise<void> {
  let running: Promise<void> | null = null
  const sweep = () => {
    running ??= sweepIdempotencyKeys(db)
      .then(
        (swept) => {
          if (swept) logger.info({ swept }, 'expired idempotency keys swept')
        },
        (e: Error) => logger.warn({ err: e.message }, 'idempotency key sweep failed'),
      )
      .finally(() => {
        running = null
      })
  }
  sweep()
  const timer = setInterval(sweep, SWEEP_EVERY_MS).unref()
  return async () => {
    clearInterval(timer)
    await running
  }
}
