import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { CookieJar } from '../support/cookie-jar.ts'
import { activate, login, tenantSession } from '../support/identity.ts'
import { startTestServer, type TestServer } from '../support/server.ts'

/*
 * Login CSRF through the handoff: a ticket is a bearer of someone's sign-in, so a link carrying it must
 * not sign in whoever opens it. Opening the link shows who you would become; only a POST from a page of
 * the org host itself (its Origin or Referer) redeems the ticket.
 */

let server: TestServer
let port: string
beforeAll(async () => {
  server = await startTestServer()
  port = new URL(server.url).port
})
afterAll(async () => {
  await server?.close()
})

const ORG_NAME = `Mallory <script>alert("x")</script> & 'Sons'`

let attacker: { accountToken: string; orgId: string; slug: string; host: string }

beforeAll(async () => {
  const signedIn = await login(server, 'mallory@example.test')
  const org = await server.request('POST', '/orgs/onboard', { token: signedIn.accountToken, body: { name: ORG_NAME } })
  expect(org.status, JSON.stringify(org.body)).toBe(201)
  const session = await tenantSession(server, signedIn.accountToken, org.body.orgId)
  await activate(server, session.token, 'mallory')
  attacker = {
    accountToken: signedIn.accountToken,
    orgId: org.body.orgId,
    slug: org.body.slug,
    host: `${org.body.slug}.localhost:${port}`,
  }
})

/** A fresh handoff URL of the attacker's, pointed at this server (the Host header names the org host). */
async function ticketUrl(returnTo = '/rooms') {
  const r = await server.request('POST', '/auth/handoff', {
    token: attacker.accountToken,
    body: { org: attacker.slug, returnTo },
  })
  expect(r.status, JSON.stringify(r.body)).toBe(200)
  const url = new URL(r.body.url)
  expect(url.host).toBe(attacker.host)
  return { url: `${server.url}${url.pathname}${url.search}`, ticket: url.searchParams.get('ticket')! }
}

const redeem = (jar: CookieJar, ticket: string, headers: Record<string, string> = {}) =>
  jar.fetch(`${server.url}/auth/handoff/redeem`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers },
    body: new URLSearchParams({ ticket }).toString(),
  })

describe('handoff: opening the link asks before it signs in', () => {
  it('the link sets no cookie and spends no ticket: it shows whom you would continue as, escaped, never cached', async () => {
    const { url, ticket } = await ticketUrl()
    const victim = new CookieJar({ host: attacker.host })
    const page = await victim.fetch(url)
    expect(page.status).toBe(200)
    expect(page.headers.getSetCookie()).toEqual([])
    expect(victim.names()).not.toContain('ws_session')
    expect(page.headers.get('content-type')).toMatch(/^text\/html/)
    expect(page.headers.get('cache-control')).toBe('no-store')
    expect(page.headers.get('content-security-policy')).toMatch(/frame-ancestors 'none'/)
    const html = await page.text()
    expect(html).toContain('mallory@example.test')
    expect(html).toContain('Mallory &lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#39;Sons&#39;')
    expect(html).not.toContain('<script')
    expect(html).toMatch(/<form method="post" action="\/auth\/handoff\/redeem">/)
    expect(html).toContain(`name="ticket" value="${ticket}"`)

    // Not signed in on the org host.
    expect((await victim.fetch(`${server.url}/api/me`)).status).toBe(401)
    // The ticket is still good: the person who asked for it can go on.
    const on = await redeem(victim, ticket, { origin: `http://${attacker.host}` })
    expect(on.status).toBe(303)
    expect(on.headers.get('location')).toBe('/rooms')
    expect(victim.names()).toContain('ws_session')
    const me = await victim.fetch(`${server.url}/api/me`)
    expect(me.status).toBe(200)
    expect(await me.json()).toMatchObject({ orgId: attacker.orgId, username: 'mallory' })
  })

  it('a POST that does not come from the org host is refused (403 CSRF_REJECTED) and leaves the ticket unused', async () => {
    const { ticket } = await ticketUrl()
    const victim = new CookieJar({ host: attacker.host })
    for (const headers of [
      {},
      { origin: 'http://evil.test' },
      { origin: 'null' },
      { origin: `http://other.localhost:${port}` },
      { referer: 'http://evil.test/page' },
      // The login host is not the org host either.
      { origin: server.url },
    ] as Record<string, string>[]) {
      const r = await redeem(victim, ticket, headers)
      expect(r.status, JSON.stringify(headers)).toBe(403)
      expect(r.headers.get('content-type')).toMatch(/^application\/problem\+json/)
      expect(((await r.json()) as { code: string }).code).toBe('CSRF_REJECTED')
      expect(victim.names()).not.toContain('ws_session')
    }
    // A Referer of the org host's confirmation page will do, once.
    const viaReferer = await redeem(victim, ticket, { referer: `http://${attacker.host}/auth/handoff?ticket=x` })
    expect(viaReferer.status).toBe(303)
    const again = await redeem(new CookieJar({ host: attacker.host }), ticket, { origin: `http://${attacker.host}` })
    expect(again.status).toBe(409)
    // A used ticket shows no confirmation page either.
    const page = `${server.url}/auth/handoff?ticket=${encodeURIComponent(ticket)}`
    expect((await new CookieJar({ host: attacker.host }).fetch(page)).status).toBe(409)
  })

  it('on another org’s host neither the page nor the POST accepts the ticket', async () => {
    const other = await server.request('POST', '/orgs/onboard', { token: attacker.accountToken, body: { name: 'Mallory Two' } })
    expect(other.status).toBe(201)
    const otherHost = `${other.body.slug}.localhost:${port}`
    const { url, ticket } = await ticketUrl()
    expect((await new CookieJar({ host: otherHost }).fetch(url)).status).toBe(404)
    expect((await redeem(new CookieJar({ host: otherHost }), ticket, { origin: `http://${otherHost}` })).status).toBe(404)
    expect((await redeem(new CookieJar({ host: attacker.host }), ticket, { origin: `http://${attacker.host}` })).status).toBe(303)
  })

  it('a malformed redeem is a 4xx problem, never a 500', async () => {
    const jar = new CookieJar({ host: attacker.host })
    const origin = { origin: `http://${attacker.host}` }
    expect((await redeem(jar, 'wsh_nope.00000000-0000-7000-8000-000000000000', origin)).status).toBe(404)
    const noTicket = await jar.fetch(`${server.url}/auth/handoff/redeem`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', ...origin },
      body: '',
    })
    expect(noTicket.status).toBe(400)
    const asJson = await jar.fetch(`${server.url}/auth/handoff/redeem`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...origin },
      body: JSON.stringify({ ticket: 'x' }),
    })
    expect(asJson.status).toBe(415)
    expect(asJson.headers.get('content-type')).toMatch(/^application\/problem\+json/)
    expect((await jar.fetch(`${server.url}/auth/handoff?ticket=garbage`)).status).toBe(404)
  })
})
