import { v7 as uuid } from 'uuid'
import { expect } from 'vitest'
import { pipelineDeps } from '../../adapters/http/context.ts'
import { issueCredential, SESSION_TTL_MS, signInAccount } from '../../commands/accounts.ts'
import type { TestServer } from './server.ts'

/**
 * An account session as the OIDC callback would issue it (the login flow itself is tested over HTTP
 * against the dev IdP in tests/e2e/login.test.ts); everything after it goes through the HTTP API.
 */
export async function accountSession(server: TestServer, email: string): Promise<{ accountId: string; token: string }> {
  const deps = pipelineDeps(server.services)
  const ctx = {
    tenantId: null,
    actor: { type: 'system' as const, id: 'tests' },
    correlationId: uuid(),
    causationId: null,
    now: () => new Date(),
    newId: uuid,
  }
  const { accountId } = await signInAccount(deps, ctx, { issuer: 'https://idp.test', subject: email, email, emailVerified: true })
  const { token } = await issueCredential(deps, ctx, {
    kind: 'session',
    accountId,
    tenantId: null,
    userId: null,
    ttlMs: SESSION_TTL_MS,
  })
  return { accountId, token }
}

async function tenantSession(server: TestServer, accountToken: string, orgId: string) {
  const r = await server.request('POST', '/auth/tenant-session', { token: accountToken, body: { org: orgId } })
  expect(r.status, JSON.stringify(r.body)).toBe(200)
  return r.body as { token: string; userId: string }
}

async function activate(server: TestServer, token: string, username: string) {
  const r = await server.request('POST', '/api/me/activate', { token, body: { username } })
  expect(r.status, JSON.stringify(r.body)).toBe(200)
}

/** A new account that onboards an org, takes a tenant session and picks a username. */
export async function signUp(server: TestServer, who: { email: string; orgName: string; username: string }) {
  const account = await accountSession(server, who.email)
  const onboarded = await server.request('POST', '/orgs/onboard', { token: account.token, body: { name: who.orgName } })
  expect(onboarded.status, JSON.stringify(onboarded.body)).toBe(201)
  const session = await tenantSession(server, account.token, onboarded.body.orgId)
  await activate(server, session.token, who.username)
  return {
    orgId: onboarded.body.orgId as string,
    slug: onboarded.body.slug as string,
    homeRoomId: onboarded.body.homeRoomId as string,
    userId: session.userId,
    accountId: account.accountId,
    accountToken: account.token,
    token: session.token,
  }
}

/** Invited by an admin, accepted by a new account, activated: a second user of the same org. */
export async function join(
  server: TestServer,
  adminToken: string,
  who: { email: string; role: 'admin' | 'member' | 'guest'; username: string },
) {
  const invite = await server.request('POST', '/api/invites', { token: adminToken, body: { email: who.email, role: who.role } })
  expect(invite.status, JSON.stringify(invite.body)).toBe(201)
  const account = await accountSession(server, who.email)
  const accepted = await server.request('POST', `/orgs/invites/${invite.body.token}/accept`, { token: account.token })
  expect(accepted.status, JSON.stringify(accepted.body)).toBe(200)
  const session = await tenantSession(server, account.token, accepted.body.orgId)
  await activate(server, session.token, who.username)
  return { userId: session.userId, accountId: account.accountId, accountToken: account.token, token: session.token }
}
