import { expect } from 'vitest'
import { signAgentCredential } from '../../adapters/agent-credentials.ts'
import { CookieJar, location } from './cookie-jar.ts'
import type { TestServer } from './server.ts'

/*
 * People and agents for tests, made through the real flows over HTTP: sign-in at the dev IdP (login form,
 * authorization code with PKCE, /auth/callback), onboarding, invites, tenant sessions, activation, agent
 * login with an HMAC credential.
 */

export type SignedIn = { jar: CookieJar; accountToken: string; accountId: string }

/** Drives the browser from /auth/login through the dev IdP's login form up to (not into) our callback. */
export async function loginUntilCallback(
  server: TestServer,
  email: string,
  returnTo = '/',
  jar = new CookieJar(),
): Promise<{ jar: CookieJar; callbackUrl: string }> {
  let url = `${server.url}/auth/login?returnTo=${encodeURIComponent(returnTo)}`
  let r = await jar.fetch(url)
  expect(r.status, `GET ${url}`).toBe(302)
  // The IdP: authorization endpoint → its login form.
  for (let hops = 0; hops < 5 && !new URL(url).pathname.includes('/interaction/'); hops++) {
    url = location(r, url)
    r = await jar.fetch(url)
  }
  expect(r.status, `GET ${url}`).toBe(200)
  const action = /<form method="post" action="([^"]+\/login)"/.exec(await r.text())?.[1]
  expect(action, 'the dev IdP login form').toBeDefined()
  const submit = new URL(action!.replace(/&amp;/g, '&'), url).href
  r = await jar.fetch(submit, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', origin: server.url },
    body: new URLSearchParams({ email }),
  })
  url = submit
  // Back through the IdP until it redirects to our callback.
  for (let hops = 0; hops < 6; hops++) {
    expect([302, 303], `${url} answered ${r.status}`).toContain(r.status)
    url = location(r, url)
    if (new URL(url).pathname === '/auth/callback') return { jar, callbackUrl: url }
    r = await jar.fetch(url)
  }
  throw new Error('the IdP never redirected to /auth/callback')
}

/**
 * Signs a person in through the browser flow: /auth/login → the dev IdP's login form → /auth/callback,
 * which sets the session cookie. The cookie's value is also a bearer token for the Auth and Orgs APIs.
 */
export async function login(server: TestServer, email: string, returnTo = '/'): Promise<SignedIn & { landed: string }> {
  const { jar, callbackUrl } = await loginUntilCallback(server, email, returnTo)
  const r = await jar.fetch(callbackUrl)
  expect(r.status, `${callbackUrl}: ${r.status === 303 ? '' : await r.clone().text()}`).toBe(303)
  const landed = location(r, callbackUrl)
  const accountToken = /ws_session=([^;]+)/.exec(jar.header(`${server.url}/`))?.[1]
  expect(accountToken, 'the session cookie').toBeDefined()
  const me = await server.request('GET', '/auth/me', { token: accountToken })
  expect(me.status).toBe(200)
  return { jar, accountToken: accountToken!, accountId: me.body.accountId, landed }
}

/**
 * What a browser does with a handoff URL on the org host (`jar.host`): the GET shows a confirmation page,
 * the person presses Continue, and its form posts the ticket from that host. Answers the last response
 * (the page itself when it is a refusal).
 */
export async function followHandoff(jar: CookieJar, url: string): Promise<Response> {
  const page = await jar.fetch(url)
  if (page.status !== 200) return page
  const form = await page.text()
  const action = /<form method="post" action="([^"]+)"/.exec(form)?.[1]
  const ticket = /name="ticket" value="([^"]+)"/.exec(form)?.[1]
  expect(action && ticket, 'the handoff confirmation form').toBeTruthy()
  const origin = new URL(url)
  if (jar.host) origin.host = jar.host
  return jar.fetch(new URL(action!, url).href, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', origin: origin.origin },
    body: new URLSearchParams({ ticket: ticket! }).toString(),
  })
}

/** A tenant session (bearer) for one of the account's orgs. */
export async function tenantSession(server: TestServer, accountToken: string, org: string) {
  const r = await server.request('POST', '/auth/tenant-session', { token: accountToken, body: { org } })
  expect(r.status, JSON.stringify(r.body)).toBe(200)
  return r.body as { token: string; userId: string; orgId: string; expiresAt: string }
}

export async function activate(server: TestServer, token: string, username: string) {
  const r = await server.request('POST', '/api/me/activate', { token, body: { username } })
  expect(r.status, JSON.stringify(r.body)).toBe(200)
  return r.body as { userId: string; username: string; position: number }
}

/** A new person who signs in, onboards an org (becoming its owner), takes a tenant session and picks a username. */
export async function signUp(server: TestServer, who: { email: string; orgName: string; username: string }) {
  const account = await login(server, who.email)
  const onboarded = await server.request('POST', '/orgs/onboard', { token: account.accountToken, body: { name: who.orgName } })
  expect(onboarded.status, JSON.stringify(onboarded.body)).toBe(201)
  const session = await tenantSession(server, account.accountToken, onboarded.body.orgId)
  await activate(server, session.token, who.username)
  return {
    orgId: onboarded.body.orgId as string,
    slug: onboarded.body.slug as string,
    homeRoomId: onboarded.body.homeRoomId as string,
    userId: session.userId,
    accountId: account.accountId,
    accountToken: account.accountToken,
    token: session.token,
  }
}

/** Invited by an admin, signed in, accepted, activated: another user of the same org. */
export async function join(
  server: TestServer,
  adminToken: string,
  who: { email: string; role: 'admin' | 'member' | 'guest'; username: string },
) {
  const invite = await server.request('POST', '/api/invites', { token: adminToken, body: { email: who.email, role: who.role } })
  expect(invite.status, JSON.stringify(invite.body)).toBe(201)
  const account = await login(server, who.email)
  const accepted = await server.request('POST', `/orgs/invites/${invite.body.token}/accept`, { token: account.accountToken })
  expect(accepted.status, JSON.stringify(accepted.body)).toBe(200)
  const session = await tenantSession(server, account.accountToken, accepted.body.orgId)
  const activated = await activate(server, session.token, who.username)
  return {
    userId: session.userId,
    accountId: account.accountId,
    accountToken: account.accountToken,
    token: session.token,
    /** Of the activation: pass it as consistentAfter to see the new user in read models. */
    position: activated.position,
  }
}

/** An agent created by `ownerToken`'s user, given a secret, signed in with an HMAC credential. */
export async function createAgent(server: TestServer, ownerToken: string, who: { name: string; username?: string }) {
  const created = await server.request('POST', '/api/agents', { token: ownerToken, body: { ...who, rolePrompt: 'helps' } })
  expect(created.status, JSON.stringify(created.body)).toBe(201)
  const rotated = await server.request('POST', `/api/agents/${created.body.agentId}/secret`, { token: ownerToken, body: {} })
  expect(rotated.status, JSON.stringify(rotated.body)).toBe(200)
  return {
    agentId: created.body.agentId as string,
    username: created.body.username as string,
    secret: rotated.body.secret as string,
    /** Pass as consistentAfter to see the agent in read models. */
    position: Math.max(created.body.position, rotated.body.position) as number,
  }
}

/**
 * A credential is its signature of `agentId.timestamp` (whole seconds) and is accepted once: two logins of
 * one agent within a second need different `nowMs`.
 */
export async function agentLogin(server: TestServer, agent: { agentId: string; secret: string }, nowMs = Date.now()) {
  const r = await server.request('POST', '/auth/agent-login', { body: signAgentCredential(agent.agentId, agent.secret, nowMs) })
  expect(r.status, JSON.stringify(r.body)).toBe(200)
  return r.body as { token: string; expiresAt: string }
}

/** An agent of the org with a fresh agent token: `{agentId, userId, username, secret, token}`. */
export async function signInAgent(server: TestServer, ownerToken: string, who: { name: string; username?: string }) {
  const agent = await createAgent(server, ownerToken, who)
  const { token } = await agentLogin(server, agent)
  return { ...agent, userId: agent.agentId, token }
}
