import pg from 'pg'
import { afterAll, beforeAll, expect, it } from 'vitest'
import type { MemberJoined } from '../../domain/orgs.ts'
import { batchLockKey } from '../../projections/engine.ts'
import { login, signUp } from '../support/identity.ts'
import { startTestServer, type TestServer } from '../support/server.ts'

/*
 * GET /api/me for a user the users read model does not know yet (it trails their joining): the answer comes
 * from what the org stream recorded, never from values made up on the spot.
 */

let server: TestServer
let owner: Awaited<ReturnType<typeof signUp>>
let hold: pg.Client

beforeAll(async () => {
  server = await startTestServer()
  owner = await signUp(server, { email: 'olive@lag.test', orgName: 'Lagging', username: 'olive' })
  hold = new pg.Client({ connectionString: server.database.url })
  await hold.connect()
})
afterAll(async () => {
  await hold?.end()
  await server?.close()
})

/**
 * Until users and orgs have projected every event written so far. The newest row, not the store's head: the head
 * stays below transactions other tests hold open on the cluster, which may be older than our last event.
 */
async function caughtUp() {
  const { rows } = await server.services.pool.query<{ last: string }>(
    'select max(global_position)::text as last from eventstore.events',
  )
  const deadline = Date.now() + 20_000
  while (true) {
    try {
      return await server.services.waiter.waitFor(['users', 'orgs'], BigInt(rows[0]!.last))
    } catch (e) {
      if (Date.now() > deadline) throw e
    }
  }
}

it('answers the org stream’s displayName, email and createdAt while the users projection lags', async () => {
  const invite = await server.request('POST', '/api/invites', {
    token: owner.token,
    body: { email: 'Bea.Lag@lag.test', role: 'member' },
  })
  expect(invite.status).toBe(201)
  const bea = await login(server, 'bea.lag@lag.test')
  await caughtUp()

  // The users projector's next batch waits on its lock: the read model stops before Bea joins.
  const users = server.services.projectors.find((p) => p.name === 'users')!
  await hold.query('select pg_advisory_lock(hashtext($1))', [batchLockKey(users.schema, users.name)])
  try {
    const accepted = await server.request('POST', `/orgs/invites/${invite.body.token}/accept`, { token: bea.accountToken })
    expect(accepted.status).toBe(200)
    const userId: string = accepted.body.userId
    const projected = await hold.query('select 1 from tenant.users where id = $1', [userId])
    expect(projected.rowCount, 'the users read model lags behind the join').toBe(0)

    const joined = (await server.services.store.readStream(`org-${owner.orgId}`))
      .filter((e) => e.type === 'user.joined')
      .map((e) => e.data as MemberJoined)
      .find((d) => d.userId === userId)!
    // The browser's cookie with the org named by X-Org: the account session predates the join, so nothing waits.
    const cookie = { headers: { cookie: `ws_session=${bea.accountToken}`, 'x-org': owner.slug } }
    const lagging = await server.request('GET', '/api/me', cookie)
    expect(lagging.status, JSON.stringify(lagging.body)).toBe(200)
    const truth = {
      id: userId,
      orgId: owner.orgId,
      type: 'human',
      role: 'member',
      status: 'active',
      username: null,
      activated: false,
      displayName: joined.displayName,
      email: joined.email,
      createdAt: new Date(joined.at).toISOString(),
    }
    expect(joined.displayName).not.toBe('')
    expect(lagging.body).toEqual(truth)

    await hold.query('select pg_advisory_unlock(hashtext($1))', [batchLockKey(users.schema, users.name)])
    // Once projected, the read model says the same.
    await caughtUp()
    expect((await hold.query('select 1 from tenant.users where id = $1', [userId])).rowCount).toBe(1)
    const later = await server.request('GET', '/api/me', cookie)
    expect(later.status).toBe(200)
    expect(later.body).toEqual(truth)
  } finally {
    await hold.query('select pg_advisory_unlock_all()')
  }
})
