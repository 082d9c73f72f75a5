import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createPool, type PgPool } from '../../adapters/postgres.ts'
import { startIdempotencySweep, sweepIdempotencyKeys } from '../../http/idempotency.ts'
import { operatorToken } from '../support/operator.ts'
import { startTestServer, type TestServer } from '../support/server.ts'

let server: TestServer
/** The database's owner login: ages entries by hand, whatever the app's login may write. */
let owner: PgPool

beforeAll(async () => {
  server = await startTestServer()
  owner = createPool(server.database.url)
}, 60_000)
afterAll(async () => {
  await owner?.end()
  await server?.close()
})

const createOrg = async (name: string, key: string) =>
  server.request('POST', '/control/orgs', {
    token: await operatorToken(server),
    body: { name },
    headers: { 'idempotency-key': key },
  })

const age = (key: string, hours: number) =>
  owner.query(`update control.idempotency_keys set created_at = now() - $2::float8 * interval '1 hour' where key = $1`, [
    key,
    hours,
  ])

const stored = async (key: string) =>
  (await owner.query('select key from control.idempotency_keys where key = $1', [key])).rows.length

describe('Idempotency-Key answers are kept 24 hours', () => {
  it('a key older than 24 hours is a new request even before any sweep ran', async () => {
    expect((await createOrg('Sweep One', 'sweep-early')).status).toBe(201)
    expect((await createOrg('Sweep Two', 'sweep-early')).body.code).toBe('IDEMPOTENCY_KEY_REUSED')
    await age('sweep-early', 25)
    const again = await createOrg('Sweep Two', 'sweep-early')
    expect(again.status).toBe(201)
    expect(again.headers.get('idempotent-replayed')).toBeNull()
  })

  it('a sweep deletes entries older than 24 hours, in bounded batches, and keeps younger ones', async () => {
    const first = await createOrg('Sweep Three', 'sweep-old')
    expect(first.status).toBe(201)
    expect((await createOrg('Sweep Three', 'sweep-old')).headers.get('idempotent-replayed')).toBe('true')
    expect((await createOrg('Sweep Four', 'sweep-young')).status).toBe(201)
    await owner.query(
      `insert into control.idempotency_keys (actor, key, request_hash, status, body, created_at)
       select 'someone', 'stale-' || i, 'hash', 200, '{}', now() - interval '30 hours' from generate_series(1, 5) i`,
    )
    await age('sweep-old', 24.5)
    await age('sweep-young', 23)

    // As the server's own login: its grants must allow the sweep.
    expect(await sweepIdempotencyKeys(server.services.db, { batchSize: 2 })).toBeGreaterThanOrEqual(6)
    expect(await stored('sweep-old')).toBe(0)
    expect((await owner.query(`select 1 from control.idempotency_keys where key like 'stale-%'`)).rows).toEqual([])
    expect(await stored('sweep-young')).toBe(1)
    expect(await sweepIdempotencyKeys(server.services.db, { batchSize: 2 })).toBe(0)

    // Swept, the key is free: the same request runs again (the org exists now, so it is refused, not replayed).
    const again = await createOrg('Sweep Three', 'sweep-old')
    expect(again.headers.get('idempotent-replayed')).toBeNull()
    expect(again.status).toBe(409)
    expect(await stored('sweep-old')).toBe(1)
  })

  it('the periodic sweep runs once at start, and its stop waits for it', async () => {
    expect((await createOrg('Sweep Five', 'sweep-at-start')).status).toBe(201)
    await age('sweep-at-start', 48)
    const stop = startIdempotencySweep(server.services.db, server.services.logger)
    await stop()
    expect(await stored('sweep-at-start')).toBe(0)
  })
})
