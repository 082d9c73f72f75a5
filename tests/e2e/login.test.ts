import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { CookieJar, fetchWithHost, location } from '../support/cookie-jar.ts'
import { activate, followHandoff, login, loginUntilCallback, tenantSession } from '../support/identity.ts'
import { startTestServer, type TestServer } from '../support/server.ts'

let server: TestServer
let port: string
beforeAll(async () => {
  server = await startTestServer()
  port = new URL(server.url).port
})
afterAll(async () => {
  await server?.close()
})

const json = async (r: Response) => (await r.json()) as any
const post = (body: unknown, headers: Record<string, string> = {}) => ({
  method: 'POST',
  headers: { 'content-type': 'application/json', ...headers },
  body: JSON.stringify(body),
})

/** A signed-in person with an org of their own, activated. */
async function founder(email: string, orgName: string, username: string) {
  const signedIn = await login(server, email)
  const org = await server.request('POST', '/orgs/onboard', { token: signedIn.accountToken, body: { name: orgName } })
  expect(org.status).toBe(201)
  const session = await tenantSession(server, signedIn.accountToken, org.body.orgId)
  await activate(server, session.token, username)
  return { ...signedIn, orgId: org.body.orgId as string, slug: org.body.slug as string, token: session.token }
}

describe('sign-in over HTTP against the dev IdP', () => {
  it('login → IdP form → callback → session cookie → GET /auth/me', async () => {
    const { jar, landed, accountToken } = await login(server, 'Ada@Example.test', '/welcome')
    expect(landed).toBe(`${server.url}/welcome`)
    expect(accountToken).toMatch(/^wss_/)
    const me = await jar.fetch(`${server.url}/auth/me`)
    expect(me.status).toBe(200)
    const body = await json(me)
    expect(body.email).toBe('ada@example.test')
    expect(body.memberships).toEqual([])
    // The same person signing in again is the same account.
    const again = await login(server, 'ada@example.test')
    expect(again.accountId).toBe(body.accountId)
  })

  it('sets the session cookie HttpOnly and SameSite=Lax, and never redirects off-site', async () => {
    const { jar, callbackUrl } = await loginUntilCallback(server, 'cookie@example.test', '//evil.test/steal')
    const r = await jar.fetch(callbackUrl)
    expect(r.status).toBe(303)
    expect(location(r, callbackUrl)).toBe(`${server.url}/`)
    const cookie = r.headers.getSetCookie().find((h) => h.startsWith('ws_session='))!
    expect(cookie).toMatch(/HttpOnly/i)
    expect(cookie).toMatch(/SameSite=Lax/i)
    expect(cookie).toMatch(/Path=\//)
    expect(cookie).not.toMatch(/Secure/) // PUBLIC_URL is http here
  })

  it('refuses a callback with a forged state, or without a sign-in in progress', async () => {
    const { jar, callbackUrl } = await loginUntilCallback(server, 'state@example.test')
    const forged = new URL(callbackUrl)
    forged.searchParams.set('state', 'forged-state-value')
    const r = await jar.fetch(forged.href)
    expect(r.status).toBe(401)
    expect((await json(r)).detail).toMatch(/state_mismatch/)
    // The login cookie was spent: the genuine redirect now has nothing to match.
    const late = await jar.fetch(callbackUrl)
    expect(late.status).toBe(400)
    expect((await json(late)).code).toBe('LOGIN_EXPIRED')
    const stranger = await fetch(callbackUrl, { redirect: 'manual' })
    expect(stranger.status).toBe(400)
  })

  it('a stolen session token is useless after logout, and so are the org sessions opened from it', async () => {
    const me = await founder('grace@example.test', 'Grace Labs', 'grace')
    const stolen = me.accountToken
    const orgSession = me.token
    expect((await server.request('GET', '/auth/me', { token: stolen })).status).toBe(200)
    expect((await server.request('GET', '/api/me', { token: orgSession })).status).toBe(200)

    const out = await me.jar.fetch(`${server.url}/auth/logout`, { method: 'POST', headers: { origin: server.url } })
    expect(out.status).toBe(200)
    expect(out.headers.getSetCookie().some((h) => /^ws_session=;/.test(h) || /ws_session=.*Max-Age=0/i.test(h))).toBe(true)

    expect((await server.request('GET', '/auth/me', { token: stolen })).status).toBe(401)
    expect((await server.request('POST', '/auth/tenant-session', { token: stolen, body: { org: me.slug } })).status).toBe(401)
    expect((await server.request('GET', '/api/me', { token: orgSession })).status).toBe(401)
    expect((await me.jar.fetch(`${server.url}/auth/me`)).status).toBe(401)
  })

  it('logging out with a bearer session ends that session only for that token', async () => {
    const a = await login(server, 'bearer-out@example.test')
    const b = await login(server, 'bearer-out@example.test')
    expect((await server.request('POST', '/auth/logout', { token: a.accountToken })).status).toBe(200)
    expect((await server.request('GET', '/auth/me', { token: a.accountToken })).status).toBe(401)
    expect((await server.request('GET', '/auth/me', { token: b.accountToken })).status).toBe(200)
  })

  it('garbage, truncated and tampered tokens are 401', async () => {
    const a = await login(server, 'tamper@example.test')
    const [secret, id] = a.accountToken.split('.')
    const tampered = `${secret!.slice(0, -1)}${secret!.endsWith('A') ? 'B' : 'A'}.${id}`
    for (const token of ['nope', a.accountToken.slice(0, -2), tampered, `${secret}.00000000-0000-7000-8000-000000000000`]) {
      expect((await server.request('GET', '/auth/me', { token })).status).toBe(401)
    }
    expect((await server.request('GET', '/auth/me')).status).toBe(401)
  })
})

describe('tenancy for browsers: handoff to the org host, host-resolved tenant, CSRF', () => {
  let owner: Awaited<ReturnType<typeof founder>>
  let orgHost: string

  beforeAll(async () => {
    owner = await founder('hopper@example.test', 'Hopper Works', 'hopper')
    orgHost = `${owner.slug}.localhost:${port}`
  })

  const ticketFor = async (org: string, returnTo?: string) => {
    const r = await owner.jar.fetch(`${server.url}/auth/handoff`, post({ org, returnTo }, { origin: server.url }))
    expect(r.status).toBe(200)
    const { url } = await json(r)
    expect(new URL(url).host).toBe(`${org}.localhost:${port}`)
    return url.replace(`//${org}.localhost:`, '//127.0.0.1:') as string
  }

  it('a handoff ticket sets the session cookie on the org host, once', async () => {
    const url = await ticketFor(owner.slug, '/rooms')
    const orgJar = new CookieJar({ host: orgHost })
    const redeemed = await followHandoff(orgJar, url)
    expect(redeemed.status).toBe(303)
    expect(redeemed.headers.get('location')).toBe('/rooms')
    expect(orgJar.names()).toContain('ws_session')

    const me = await orgJar.fetch(`${server.url}/api/me`)
    expect(me.status).toBe(200)
    expect(await json(me)).toMatchObject({ orgId: owner.orgId, username: 'hopper', role: 'owner' })

    // The ticket is spent.
    const again = await followHandoff(new CookieJar({ host: orgHost }), url)
    expect(again.status).toBe(409)
  })

  it('a ticket is refused on another org’s host (and stays usable on its own)', async () => {
    const other = await server.request('POST', '/orgs/onboard', { token: owner.accountToken, body: { name: 'Hopper Two' } })
    expect(other.status).toBe(201)
    const url = await ticketFor(owner.slug)
    const wrong = await followHandoff(new CookieJar({ host: `${other.body.slug}.localhost:${port}` }), url)
    expect(wrong.status).toBe(404)
    const right = await followHandoff(new CookieJar({ host: orgHost }), url)
    expect(right.status).toBe(303)
  })

  it('an org host’s cookie is refused on another org’s host', async () => {
    const orgJar = new CookieJar({ host: orgHost })
    expect((await followHandoff(orgJar, await ticketFor(owner.slug))).status).toBe(303)
    const other = await server.request('POST', '/orgs/onboard', { token: owner.accountToken, body: { name: 'Hopper Three' } })
    const r = await fetchWithHost(`${server.url}/api/me`, `${other.body.slug}.localhost:${port}`, {
      headers: { cookie: orgJar.header(`${server.url}/`) },
    })
    expect(r.status).toBe(401)
  })

  it('cookie-authenticated changes need an Origin of this site; bearer requests do not', async () => {
    const orgJar = new CookieJar({ host: orgHost })
    expect((await followHandoff(orgJar, await ticketFor(owner.slug))).status).toBe(303)
    const room = { name: 'CSRF check', visibility: 'public' }

    const bare = await orgJar.fetch(`${server.url}/api/rooms`, post(room))
    expect(bare.status).toBe(403)
    expect((await json(bare)).code).toBe('CSRF_REJECTED')
    const evil = await orgJar.fetch(`${server.url}/api/rooms`, post(room, { origin: 'http://evil.test' }))
    expect(evil.status).toBe(403)
    const sibling = await orgJar.fetch(`${server.url}/api/rooms`, post(room, { origin: `http://other.localhost:${port}` }))
    expect(sibling.status).toBe(403)
    const viaReferer = await orgJar.fetch(`${server.url}/api/rooms`, post(room, { referer: `http://${orgHost}/rooms` }))
    expect(viaReferer.status).toBe(201)
    const good = await orgJar.fetch(`${server.url}/api/rooms`, post(room, { origin: `http://${orgHost}` }))
    expect(good.status).toBe(201)
    // Reads need no Origin.
    expect((await orgJar.fetch(`${server.url}/api/rooms`)).status).toBe(200)
    // A bearer token is no ambient credential: no Origin needed.
    expect((await server.request('POST', '/api/rooms', { token: owner.token, body: room })).status).toBe(201)
    // The login host's cookie is guarded the same way.
    const logout = await owner.jar.fetch(`${server.url}/auth/tenant-session`, post({ org: owner.slug }))
    expect(logout.status).toBe(403)
  })

  it('development fallback: the login host’s cookie with X-Org (or ?org=) names the tenant', async () => {
    const viaHeader = await owner.jar.fetch(`${server.url}/api/me`, { headers: { 'x-org': owner.slug } })
    expect(viaHeader.status).toBe(200)
    expect((await json(viaHeader)).orgId).toBe(owner.orgId)
    expect((await owner.jar.fetch(`${server.url}/api/me?org=${owner.orgId}`)).status).toBe(200)
    const none = await owner.jar.fetch(`${server.url}/api/me`)
    expect(none.status).toBe(403)
    expect((await json(none)).code).toBe('TENANT_REQUIRED')
    expect((await owner.jar.fetch(`${server.url}/api/me`, { headers: { 'x-org': 'no-such-org' } })).status).toBe(404)
    // An org the account is not in.
    const stranger = await founder('stranger@example.test', 'Stranger Things', 'stranger')
    const notMine = await owner.jar.fetch(`${server.url}/api/me`, { headers: { 'x-org': stranger.slug } })
    expect(notMine.status).toBe(403)
  })
})

describe('tokens for API clients', () => {
  it('an account session is not an org credential: /api wants a tenant session', async () => {
    const a = await login(server, 'api-client@example.test')
    const r = await server.request('GET', '/api/me', { token: a.accountToken })
    expect(r.status).toBe(403)
    expect(r.body.code).toBe('TENANT_SESSION_REQUIRED')
    expect(
      (await server.request('POST', '/auth/tenant-session', { token: a.accountToken, body: { org: 'nowhere' } })).status,
    ).toBe(404)
  })

  it('personal API tokens: shown once, act in one org, cannot mint sessions, revocable', async () => {
    const me = await founder('tokens@example.test', 'Token Co', 'tokens')
    const created = await server.request('POST', '/auth/tokens', {
      token: me.accountToken,
      body: { org: me.slug, name: 'ci', expiresInDays: 30 },
    })
    expect(created.status).toBe(201)
    const { id, token } = created.body
    expect(token).toMatch(/^wsp_/)

    const who = await server.request('GET', '/api/me', { token })
    expect(who.status).toBe(200)
    expect(who.body.username).toBe('tokens')
    expect((await server.request('POST', '/api/rooms', { token, body: { name: 'From CI', visibility: 'public' } })).status).toBe(
      201,
    )

    for (const [path, body] of [
      ['/auth/tenant-session', { org: me.slug }],
      ['/auth/handoff', { org: me.slug }],
      ['/auth/tokens', { org: me.slug, name: 'more' }],
      ['/orgs/onboard', { name: 'Token Spawn' }],
    ] as const) {
      const r = await server.request('POST', path, { token, body })
      expect(r.status, path).toBe(403)
      expect(r.body.code).toBe('ACCOUNT_SESSION_REQUIRED')
    }
    // Only its account revokes it.
    const other = await login(server, 'not-tokens@example.test')
    expect((await server.request('DELETE', `/auth/tokens/${id}`, { token: other.accountToken })).status).toBe(404)
    expect((await server.request('DELETE', `/auth/tokens/${id}`, { token: me.accountToken })).status).toBe(200)
    expect((await server.request('GET', '/api/me', { token })).status).toBe(401)
  })
})
