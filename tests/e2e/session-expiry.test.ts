import { v7 as uuid } from 'uuid'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { issueCredential } from '../../commands/accounts.ts'
import { signUp } from '../support/identity.ts'
import { startTestServer, type TestServer } from '../support/server.ts'

/*
 * A tenant session opened from an account session lives no longer than it: its expiresAt is capped at
 * the account session's, and when the account session expires (not only when it is revoked, by logout),
 * every session opened from it stops working.
 */

const PARENT_TTL_MS = 2_500

let server: TestServer
beforeAll(async () => {
  server = await startTestServer()
})
afterAll(async () => {
  await server?.close()
})

it('a tenant session is refused once the account session it was opened from has expired', async () => {
  const owner = await signUp(server, { email: 'short@expiry.test', orgName: 'Short Lived', username: 'short' })
  // An account session like the one /auth/callback issues, with a lifetime a test can wait out.
  const parent = await issueCredential(
    { store: server.services.store, upcasters: server.services.upcasters },
    {
      tenantId: null,
      actor: { type: 'system', id: 'test' },
      correlationId: uuid(),
      causationId: null,
      now: () => new Date(),
      newId: uuid,
    },
    { kind: 'session', accountId: owner.accountId, tenantId: null, userId: null, ttlMs: PARENT_TTL_MS },
  )
  const opened = await server.request('POST', '/auth/tenant-session', { token: parent.token, body: { org: owner.orgId } })
  expect(opened.status, JSON.stringify(opened.body)).toBe(200)
  const child: string = opened.body.token
  // Capped at its parent's expiry: it never announces (or sets a cookie for) a lifetime it will not have.
  expect(new Date(opened.body.expiresAt).getTime()).toBeLessThanOrEqual(new Date(parent.expiresAt).getTime())
  expect((await server.request('GET', '/api/me', { token: child })).status).toBe(200)

  await new Promise((r) => setTimeout(r, new Date(parent.expiresAt).getTime() - Date.now() + 100))

  expect((await server.request('GET', '/auth/me', { token: parent.token })).status).toBe(401)
  const refused = await server.request('GET', '/api/me', { token: child })
  expect(refused.status, JSON.stringify(refused.body)).toBe(401)
  expect(refused.headers.get('content-type')).toContain('application/problem+json')
  // The owner's own sessions, from another sign-in, are untouched.
  expect((await server.request('GET', '/api/me', { token: owner.token })).status).toBe(200)
})
