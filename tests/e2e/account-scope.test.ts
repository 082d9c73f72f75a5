import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { CookieJar } from '../support/cookie-jar.ts'
import { followHandoff, signInAgent, signUp } from '../support/identity.ts'
import { startTestServer, type TestServer } from '../support/server.ts'

/*
 * A credential bound to one org (a tenant session, bearer or cookie on the org host; a personal API token;
 * an agent token) acts in that org only. Whoever holds one must not reach the account behind it: open
 * sessions for the account's other orgs, hand the browser off, create orgs, accept invites, mint and
 * revoke personal tokens, or list the account's memberships (GET /auth/me). Those need the account session itself.
 */

let server: TestServer
let port: string
let owner: Awaited<ReturnType<typeof signUp>>
let second: { orgId: string; slug: string }
let inviteToken: string
let orgHost: string

beforeAll(async () => {
  server = await startTestServer()
  port = new URL(server.url).port
  owner = await signUp(server, { email: 'scope@example.test', orgName: 'Scope One', username: 'scope' })
  orgHost = `${owner.slug}.localhost:${port}`
  const onboarded = await server.request('POST', '/orgs/onboard', { token: owner.accountToken, body: { name: 'Scope Two' } })
  expect(onboarded.status, JSON.stringify(onboarded.body)).toBe(201)
  second = { orgId: onboarded.body.orgId, slug: onboarded.body.slug }
  // Someone else's org invites the owner's email: accepting it is the account's to do.
  const outsider = await signUp(server, { email: 'outsider@example.test', orgName: 'Outside Co', username: 'outsider' })
  const invite = await server.request('POST', '/api/invites', {
    token: outsider.token,
    body: { email: 'scope@example.test', role: 'member' },
  })
  expect(invite.status, JSON.stringify(invite.body)).toBe(201)
  inviteToken = invite.body.token
})
afterAll(async () => {
  await server?.close()
})

type Answer = { status: number; body: any }
/** Sends a request with one credential: a bearer token, or the org host's cookie from a browser on that host. */
type Send = (method: string, path: string, body?: unknown) => Promise<Answer>

const bearer =
  (token: string): Send =>
  (method, path, body) =>
    server.request(method, path, { token, ...(body === undefined ? {} : { body }) })

const orgHostCookie =
  (jar: CookieJar): Send =>
  async (method, path, body) => {
    const r = await jar.fetch(`${server.url}${path}`, {
      method,
      headers: { origin: `http://${orgHost}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    })
    return { status: r.status, body: await r.json() }
  }

/** A personal API token of the owner's, in the owner's first org, made by the account session. */
async function personalToken(name: string) {
  const r = await server.request('POST', '/auth/tokens', { token: owner.accountToken, body: { org: owner.slug, name } })
  expect(r.status, JSON.stringify(r.body)).toBe(201)
  return r.body as { id: string; token: string }
}

/** Every account-level route; each refusal must leave no trace (checked after the refusals). */
const accountRoutes = (): [string, string, unknown?][] => [
  // The account and every membership of it, in every org: not for a credential bound to one.
  ['GET', '/auth/me'],
  ['POST', '/auth/tenant-session', { org: second.slug }],
  ['POST', '/auth/handoff', { org: second.slug, returnTo: '/' }],
  ['POST', '/orgs/onboard', { name: 'Spawned By Tenant' }],
  ['POST', `/orgs/invites/${inviteToken}/accept`],
  ['POST', '/auth/tokens', { org: owner.slug, name: 'spawned' }],
]

async function expectRefusedEverywhere(send: Send) {
  const refused = async (method: string, path: string, body?: unknown) => {
    const r = await send(method, path, body)
    expect(r.status, `${method} ${path}: ${JSON.stringify(r.body)}`).toBe(403)
    expect(r.body.code, `${method} ${path}`).toBe('ACCOUNT_SESSION_REQUIRED')
  }
  for (const [method, path, body] of accountRoutes()) await refused(method, path, body)
  const target = await personalToken('target')
  await refused('DELETE', `/auth/tokens/${target.id}`)
  // Nothing happened: the name is free, the invite unused (accepted below), the token alive.
  expect((await server.request('GET', '/orgs/name-check?name=Spawned%20By%20Tenant')).body.available).toBe(true)
  expect((await server.request('GET', '/api/me', { token: target.token })).status).toBe(200)
}

describe('credentials bound to a tenant cannot act for the account', () => {
  it('a tenant session (bearer) is refused with 403 ACCOUNT_SESSION_REQUIRED', async () => {
    await expectRefusedEverywhere(bearer(owner.token))
  })

  it('the org host’s session cookie is refused the same way', async () => {
    const handoff = await server.request('POST', '/auth/handoff', { token: owner.accountToken, body: { org: owner.slug } })
    expect(handoff.status).toBe(200)
    const jar = new CookieJar({ host: orgHost })
    const url = new URL(handoff.body.url)
    expect((await followHandoff(jar, `${server.url}${url.pathname}${url.search}`)).status).toBe(303)
    expect((await orgHostCookie(jar)('GET', '/api/me')).status).toBe(200)
    await expectRefusedEverywhere(orgHostCookie(jar))
  })

  it('a personal API token is refused the same way', async () => {
    const { token } = await personalToken('ci')
    await expectRefusedEverywhere(bearer(token))
  })

  it('an agent token is refused the same way (and a forged one is 401)', async () => {
    const agent = await signInAgent(server, owner.token, { name: 'Scope Bot' })
    await expectRefusedEverywhere(bearer(agent.token))
    const [header, payload] = agent.token.split('.')
    const forged = await server.request('POST', '/auth/tenant-session', {
      token: `${header}.${payload}.${'A'.repeat(86)}`,
      body: { org: second.slug },
    })
    expect(forged.status).toBe(401)
  })
})

describe('the account session does all of it', () => {
  it('sessions and handoffs for any of its orgs, personal tokens for a named org, onboarding, invites', async () => {
    const send = bearer(owner.accountToken)
    const account = await send('GET', '/auth/me')
    expect(account.status).toBe(200)
    expect(account.body.memberships.map((m: { orgId: string }) => m.orgId)).toEqual(
      expect.arrayContaining([owner.orgId, second.orgId]),
    )
    const session = await send('POST', '/auth/tenant-session', { org: second.slug })
    expect(session.status).toBe(200)
    expect(session.body.orgId).toBe(second.orgId)
    expect((await send('POST', '/auth/handoff', { org: second.slug })).status).toBe(200)

    const created = await send('POST', '/auth/tokens', { org: second.slug, name: 'deploys', expiresInDays: 7 })
    expect(created.status, JSON.stringify(created.body)).toBe(201)
    const me = await server.request('GET', '/api/me', { token: created.body.token })
    expect(me.body.orgId).toBe(second.orgId)
    expect((await send('DELETE', `/auth/tokens/${created.body.id}`)).status).toBe(200)
    expect((await server.request('GET', '/api/me', { token: created.body.token })).status).toBe(401)
    // A personal token for an org the account is not in (or without naming one) is refused.
    expect((await send('POST', '/auth/tokens', { org: 'outside-co', name: 'nope' })).status).toBe(404)
    expect((await send('POST', '/auth/tokens', { name: 'nope' })).status).toBe(400)

    expect((await send('POST', '/orgs/onboard', { name: 'Scope Three' })).status).toBe(201)
    const accepted = await send('POST', `/orgs/invites/${inviteToken}/accept`)
    expect(accepted.status, JSON.stringify(accepted.body)).toBe(200)
  })
})
