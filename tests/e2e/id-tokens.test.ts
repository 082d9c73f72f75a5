import type { AddressInfo } from 'node:net'
import { serve } from '@hono/node-server'
import { Hono } from 'hono'
import { type CryptoKey, exportJWK, generateKeyPair, type JWK, SignJWT } from 'jose'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { CookieJar, location } from '../support/cookie-jar.ts'
import { startTestServer, type TestServer } from '../support/server.ts'

/*
 * The relying party against a production-style issuer (OIDC_ISSUER set, NODE_ENV=production): a small
 * OpenID Provider the test controls, whose token endpoint answers with whatever ID token the test mints.
 * Every bad token goes through /auth/callback and must be refused.
 */

const CLIENT_ID = 'workspace-app'
const CLIENT_SECRET = 'client-secret-0123456789abcdef0123456789'

type Mint = (nonce: string) => Promise<string>

let idp: { url: string; close(): Promise<void> }
let key: { privateKey: CryptoKey; jwk: JWK }
let mint: Mint
let server: TestServer
const userinfo = { email: 'info@example.test' }

const b64 = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url')

async function startIdp() {
  const { publicKey, privateKey } = await generateKeyPair('RS256', { extractable: true })
  key = { privateKey, jwk: { ...(await exportJWK(publicKey)), kid: 'k1', alg: 'RS256', use: 'sig' } }
  let issuer = ''
  const app = new Hono()
  app.get('/.well-known/openid-configuration', (c) =>
    c.json({
      issuer,
      authorization_endpoint: `${issuer}/authorize`,
      token_endpoint: `${issuer}/token`,
      jwks_uri: `${issuer}/jwks`,
      userinfo_endpoint: `${issuer}/userinfo`,
      response_types_supported: ['code'],
      subject_types_supported: ['public'],
      id_token_signing_alg_values_supported: ['RS256'],
      code_challenge_methods_supported: ['S256'],
      token_endpoint_auth_methods_supported: ['client_secret_basic'],
    }),
  )
  app.get('/jwks', (c) => c.json({ keys: [key.jwk] }))
  let pendingNonce = ''
  app.get('/authorize', (c) => {
    pendingNonce = c.req.query('nonce') ?? ''
    return c.text('login page')
  })
  app.post('/token', async (c) => {
    const auth = c.req.header('authorization') ?? ''
    // RFC 6749 §2.3.1: client id and secret are each form-urlencoded before Basic, so decode both.
    const decoded = Buffer.from(auth.replace(/^Basic /, ''), 'base64').toString()
    const colon = decoded.indexOf(':')
    const formDecode = (s: string) => decodeURIComponent(s.replace(/\+/g, ' '))
    const id = colon < 0 ? '' : formDecode(decoded.slice(0, colon))
    const secret = colon < 0 ? '' : formDecode(decoded.slice(colon + 1))
    if (id !== CLIENT_ID || secret !== CLIENT_SECRET) return c.json({ error: 'invalid_client' }, 401)
    return c.json({ id_token: await mint(pendingNonce), access_token: 'access-token', token_type: 'Bearer' })
  })
  app.get('/userinfo', (c) =>
    c.req.header('authorization') === 'Bearer access-token' ? c.json({ sub: 'user-2', ...userinfo }) : c.json({}, 401),
  )
  const s = await new Promise<ReturnType<typeof serve>>((resolve) => {
    const srv = serve({ fetch: app.fetch, hostname: '127.0.0.1', port: 0 }, () => resolve(srv))
  })
  issuer = `http://127.0.0.1:${(s.address() as AddressInfo).port}`
  return {
    url: issuer,
    close: () =>
      new Promise<void>((r) => {
        if ('closeAllConnections' in s) s.closeAllConnections()
        s.close(() => r())
      }),
  }
}

/** A well-formed ID token; `over` replaces claims, `sign` the way it is signed. */
const idToken =
  (over: Record<string, unknown> = {}, sign?: (claims: Record<string, unknown>) => Promise<string>): Mint =>
  async (nonce) => {
    const now = Math.floor(Date.now() / 1000)
    const claims = {
      iss: idp.url,
      aud: CLIENT_ID,
      sub: 'user-1',
      email: 'user1@example.test',
      email_verified: true,
      iat: now,
      exp: now + 300,
      nonce,
      ...over,
    }
    if (sign) return sign(claims)
    return new SignJWT(claims).setProtectedHeader({ alg: 'RS256', kid: 'k1' }).sign(key.privateKey)
  }

/** /auth/login, then the callback as the provider would send the browser back. */
async function attempt(token: Mint) {
  mint = token
  const jar = new CookieJar()
  const login = await jar.fetch(`${server.url}/auth/login`)
  expect(login.status).toBe(302)
  const authorize = new URL(location(login, server.url))
  expect(authorize.origin).toBe(idp.url)
  expect(authorize.searchParams.get('code_challenge_method')).toBe('S256')
  await fetch(authorize) // the provider sees the nonce
  const callbackUrl = `${server.url}/auth/callback?code=the-code&state=${authorize.searchParams.get('state')}`
  const loginCookie = jar.header(callbackUrl)
  const r = await jar.fetch(callbackUrl)
  const body = r.status === 303 ? null : ((await r.json()) as { code: string; detail: string })
  return { status: r.status, body, jar, callbackUrl, loginCookie }
}

beforeAll(async () => {
  idp = await startIdp()
  server = await startTestServer({
    NODE_ENV: 'production',
    OIDC_ISSUER: idp.url,
    OIDC_CLIENT_ID: CLIENT_ID,
    OIDC_CLIENT_SECRET: CLIENT_SECRET,
  })
})
afterAll(async () => {
  await server?.close()
  await idp?.close()
})

describe('ID tokens through /auth/callback (a production issuer)', () => {
  it('a genuine ID token signs the person in', async () => {
    const ok = await attempt(idToken())
    expect(ok.status).toBe(303)
    const me = await ok.jar.fetch(`${server.url}/auth/me`)
    expect(me.status).toBe(200)
    expect(((await me.json()) as { email: string }).email).toBe('user1@example.test')
    // No dev IdP in this configuration.
    expect((await fetch(`${server.url}/dev-idp/.well-known/openid-configuration`)).status).toBe(404)
  })

  it.each([
    [
      'forged (signed with another key under the published kid)',
      'id_token_signature',
      async () => {
        const other = await generateKeyPair('RS256')
        return idToken({}, (claims) => new SignJWT(claims).setProtectedHeader({ alg: 'RS256', kid: 'k1' }).sign(other.privateKey))
      },
    ],
    [
      'expired',
      'id_token_expired',
      async () => idToken({ iat: Math.floor(Date.now() / 1000) - 7200, exp: Math.floor(Date.now() / 1000) - 3600 }),
    ],
    ['for another audience', 'id_token_audience', async () => idToken({ aud: 'someone-else' })],
    ['from another issuer', 'id_token_issuer', async () => idToken({ iss: 'https://evil.example' })],
    [
      'unsigned (alg: none)',
      'id_token_algorithm',
      async () => idToken({}, async (claims) => `${b64({ alg: 'none', typ: 'JWT' })}.${b64(claims)}.`),
    ],
    [
      'HMAC-signed with the client secret (alg confusion)',
      'id_token_algorithm',
      async () =>
        idToken({}, (claims) =>
          new SignJWT(claims).setProtectedHeader({ alg: 'HS256', kid: 'k1' }).sign(new TextEncoder().encode(CLIENT_SECRET)),
        ),
    ],
    ['with another nonce', 'id_token_nonce', async () => idToken({ nonce: 'not-the-nonce' })],
  ] as const)('refuses an ID token %s', async (_name, refusal, make) => {
    const r = await attempt(await make())
    expect(r.status).toBe(401)
    expect(r.body!.code).toBe('LOGIN_FAILED')
    expect(r.body!.detail).toContain(refusal)
    expect(r.jar.names()).not.toContain('ws_session')
  })

  it('refuses a replayed ID token (its nonce is used once)', async () => {
    const first = await attempt(idToken({ sub: 'user-replay', email: 'replay@example.test' }))
    expect(first.status).toBe(303)
    // The same redirect again, login cookie and all: the provider hands out the same ID token.
    const replay = await fetch(first.callbackUrl, { headers: { cookie: first.loginCookie }, redirect: 'manual' })
    expect(replay.status).toBe(401)
    expect(((await replay.json()) as { detail: string }).detail).toContain('id_token_replayed')
  })

  it('takes the email from userinfo when the ID token has none', async () => {
    const r = await attempt(idToken({ sub: 'user-2', email: undefined, email_verified: undefined }))
    expect(r.status).toBe(303)
    const me = (await (await r.jar.fetch(`${server.url}/auth/me`)).json()) as { email: string }
    expect(me.email).toBe(userinfo.email)
  })

  it('in production the X-Org fallback is off: a cookie reaches an org only on its host', async () => {
    const r = await attempt(idToken({ sub: 'user-3', email: 'prod@example.test' }))
    const token = /ws_session=([^;]+)/.exec(r.jar.header(`${server.url}/`))![1]!
    const org = await server.request('POST', '/orgs/onboard', { token, body: { name: 'Prod Org' } })
    expect(org.status).toBe(201)
    const viaHeader = await r.jar.fetch(`${server.url}/api/me`, { headers: { 'x-org': org.body.slug } })
    expect(viaHeader.status).toBe(403)
    expect(((await viaHeader.json()) as { code: string }).code).toBe('TENANT_REQUIRED')
    const ticket = await server.request('POST', '/auth/handoff', { token, body: { org: org.body.slug } })
    // A ticket is redeemed on its org's host only.
    const elsewhere = await new CookieJar().fetch(ticket.body.url.replace(/\/\/[^/]+/, `//${new URL(server.url).host}`))
    expect(elsewhere.status).toBe(404)
  })
})
