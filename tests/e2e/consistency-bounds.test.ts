import pg from 'pg'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { MAX_WAITS_PER_CALLER } from '../../projections/consistency.ts'
import { batchLockKey } from '../../projections/engine.ts'
import { signUp } from '../support/identity.ts'
import { startTestServer, type TestServer } from '../support/server.ts'

/*
 * consistentAfter makes a read wait, so it is bounded: a position no event holds is refused at once, one
 * caller holds a few waits at a time, and a caller over their rate limit is refused before anything waits.
 */

const TIMEOUT_MS = 5_000
const USER_LIMIT = 30

let server: TestServer
let hold: pg.Client

beforeAll(async () => {
  server = await startTestServer({
    CONSISTENCY_TIMEOUT_MS: String(TIMEOUT_MS),
    RATE_LIMIT_USER_PER_MINUTE: String(USER_LIMIT),
  })
  hold = new pg.Client({ connectionString: server.database.url })
  await hold.connect()
}, 60_000)
afterAll(async () => {
  await hold?.end()
  await server?.close()
})

const timed = async <T>(f: () => Promise<T>) => {
  const started = performance.now()
  const result = await f()
  return { result, ms: performance.now() - started }
}

/**
 * While it runs, the rooms projector's batches wait on their lock (a projector that reads none of a batch takes no
 * lock for it, so the users projector would not lag for a room): a room written meanwhile is not reached until it
 * returns.
 */
async function withRoomsLagging<T>(f: () => Promise<T>): Promise<T> {
  const rooms = server.services.projectors.find((p) => p.name === 'rooms')!
  await hold.query('select pg_advisory_lock(hashtext($1))', [batchLockKey(rooms.schema, rooms.name)])
  try {
    return await f()
  } finally {
    await hold.query('select pg_advisory_unlock_all()')
  }
}

/** A command whose position the lagging rooms projector has not passed. */
async function write(owner: { token: string }, name: string) {
  const r = await server.request('POST', '/api/rooms', { token: owner.token, body: { name, visibility: 'public' } })
  expect(r.status, JSON.stringify(r.body)).toBe(201)
  return r.body.position as number
}

describe('a position beyond the head', () => {
  it('answers 400 POSITION_UNKNOWN at once, by query or by header, instead of waiting for the timeout', async () => {
    const owner = await signUp(server, { email: 'far@bounds.test', orgName: 'Far Ahead', username: 'far' })
    const far = '999999999999'
    for (const [path, headers] of [
      [`/api/rooms?consistentAfter=${far}`, {}],
      ['/api/me', { 'consistent-after': far }],
      [`/auth/me?consistentAfter=${far}`, {}],
    ] as const) {
      const token = path.startsWith('/auth') ? owner.accountToken : owner.token
      const { result: r, ms } = await timed(() => server.request('GET', path, { token, headers }))
      expect(r.status, `${path}: ${JSON.stringify(r.body)}`).toBe(400)
      expect(r.headers.get('content-type')).toContain('application/problem+json')
      expect(r.body).toMatchObject({ status: 400, code: 'POSITION_UNKNOWN' })
      expect(ms, path).toBeLessThan(TIMEOUT_MS / 5)
    }
  })

  it('a position the store holds still reads the write', async () => {
    const owner = await signUp(server, { email: 'near@bounds.test', orgName: 'Near By', username: 'near' })
    const position = await write(owner, 'near room')
    const r = await server.request('GET', `/api/rooms?consistentAfter=${position}`, { token: owner.token })
    expect(r.status).toBe(200)
    expect(r.body.items.map((x: { name: string }) => x.name)).toContain('near room')
  })
})

describe('waits per caller', () => {
  it(`a caller's ${MAX_WAITS_PER_CALLER + 1}th concurrent wait is refused with 429 and Retry-After; the others complete`, async () => {
    const owner = await signUp(server, { email: 'many@bounds.test', orgName: 'Many Waits', username: 'many' })
    const other = await signUp(server, { email: 'other@bounds.test', orgName: 'Other Waits', username: 'other' })
    await withRoomsLagging(async () => {
      const position = await write(owner, 'waited for')
      const reads = Array.from({ length: MAX_WAITS_PER_CALLER + 1 }, () =>
        timed(() => server.request('GET', `/api/rooms?consistentAfter=${position}`, { token: owner.token })),
      )
      const never = new Promise<never>(() => {})
      const refused = await Promise.race([
        ...reads.map((p) => p.then((x) => (x.result.status === 429 ? x : never))),
        new Promise<null>((r) => setTimeout(() => r(null), TIMEOUT_MS / 2)),
      ])
      if (!refused) throw new Error('no read was refused while the others waited')
      expect(refused.result.body).toMatchObject({ status: 429, code: 'TOO_MANY_WAITS' })
      expect(refused.result.headers.get('content-type')).toContain('application/problem+json')
      expect(Number(refused.result.headers.get('retry-after'))).toBeGreaterThan(0)
      expect(refused.ms).toBeLessThan(TIMEOUT_MS / 2)
      // Another caller is not held back by this one's waits.
      const theirs = await server.request('GET', '/api/rooms?consistentAfter=0', { token: other.token })
      expect(theirs.status).toBe(200)
      return reads
    }).then(async (reads) => {
      const statuses = (await Promise.all(reads)).map((x) => x.result.status).sort()
      expect(statuses).toEqual([...Array(MAX_WAITS_PER_CALLER).fill(200), 429])
    })
  }, 30_000)
})

describe('the per-user rate limit', () => {
  it('refuses a caller over their limit with 429 before their consistentAfter makes the server wait', async () => {
    const owner = await signUp(server, { email: 'limited@bounds.test', orgName: 'Rate Limited', username: 'limited' })
    await withRoomsLagging(async () => {
      const position = await write(owner, 'limited room')
      let status = 0
      for (let i = 0; i < USER_LIMIT && status !== 429; i++) {
        status = (await server.request('GET', '/api/rooms?consistentAfter=0', { token: owner.token })).status
      }
      const { result: r, ms } = await timed(() =>
        server.request('GET', `/api/rooms?consistentAfter=${position}`, { token: owner.token }),
      )
      expect(r.status, JSON.stringify(r.body)).toBe(429)
      expect(r.body).toMatchObject({ code: 'RATE_LIMITED' })
      expect(r.headers.get('retry-after')).toBeTruthy()
      expect(ms).toBeLessThan(TIMEOUT_MS / 5)
    })
  }, 30_000)
})
