import { mkdtemp, readFile, rm } from 'node:fs/promises'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { type HttpBindings, type ServerType, serve } from '@hono/node-server'
import { Hono } from 'hono'
import { calculateJwkThumbprint, decodeProtectedHeader, exportJWK, generateKeyPair, SignJWT } from 'jose'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createDevIdp, type DevIdp, devIdpAccountId, devIdpRoutes } from '../../adapters/dev-idp.ts'
import {
  createOidcClient,
  IdTokenReplayedError,
  IdTokenSignatureError,
  OidcAuthorizationError,
  type OidcClient,
  OidcTokenExchangeError,
  type PendingAuthorization,
} from '../../adapters/oidc-client.ts'
import { MemoryReplayCache } from '../../adapters/replay-cache.ts'
import { CookieJar, location } from '../support/cookie-jar.ts'

const clientId = 'workspace-dev'
const clientSecret = 'dev-secret-0123456789abcdef0123456789'

type Running = { server: ServerType; publicUrl: string; idp: DevIdp; close: () => Promise<void> }

/** The dev IdP mounted at /dev-idp of a hono app served by @hono/node-server on an ephemeral port. */
async function startServer(
  dataDir: string,
  tokenEndpointAuthMethod?: 'client_secret_basic' | 'client_secret_post',
): Promise<Running> {
  let fetchImpl: (req: Request, env: HttpBindings) => Response | Promise<Response> = () =>
    new Response('starting', { status: 503 })
  const server = await new Promise<ServerType>((resolve) => {
    const s = serve({ fetch: (req, env) => fetchImpl(req, env as HttpBindings), hostname: '127.0.0.1', port: 0 }, () =>
      resolve(s),
    )
  })
  const { port } = server.address() as AddressInfo
  const publicUrl = `http://127.0.0.1:${port}`
  const idp = await createDevIdp({
    publicUrl,
    dataDir,
    environment: 'test',
    client: { clientId, clientSecret, redirectUris: [`${publicUrl}/auth/callback`], tokenEndpointAuthMethod },
  })
  const app = new Hono<{ Bindings: HttpBindings }>()
  app.get('/', (c) => c.text('app'))
  app.route('/dev-idp', devIdpRoutes(idp))
  fetchImpl = app.fetch
  const close = () =>
    new Promise<void>((resolve, reject) => {
      server.close((e) => (e ? reject(e) : resolve()))
      ;(server as { closeAllConnections?: () => void }).closeAllConnections?.()
    })
  return { server, publicUrl, idp, close }
}

/** Drives the browser side: authorization → login page → submit email → resume → redirect to the app. */
async function browserLogin(
  authorizationUrl: string,
  email: string,
  jar = new CookieJar(),
): Promise<{ callback: URL; loginPage: string; jar: CookieJar }> {
  const start = await jar.fetch(authorizationUrl)
  expect(start.status).toBe(303)
  const interactionUrl = location(start, authorizationUrl)
  expect(new URL(interactionUrl).pathname).toMatch(/^\/dev-idp\/interaction\/[\w-]+$/)

  const page = await jar.fetch(interactionUrl)
  expect(page.status).toBe(200)
  expect(page.headers.get('content-type')).toMatch(/text\/html/)
  const loginPage = await page.text()
  expect(loginPage).toMatch(/<input[^>]+name="email"/)
  const action = /<form method="post" action="([^"]+\/login)"/.exec(loginPage)?.[1]
  expect(action).toBeDefined()

  const submitUrl = new URL(action!.replace(/&amp;/g, '&'), interactionUrl).href
  const submitted = await jar.fetch(submitUrl, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', origin: new URL(interactionUrl).origin },
    body: new URLSearchParams({ email }),
  })
  expect(submitted.status).toBe(303)
  let next = location(submitted, submitUrl)
  // The provider resumes the authorization and redirects to the client.
  for (let hops = 0; hops < 5 && new URL(next).pathname.startsWith('/dev-idp/'); hops++) {
    const r = await jar.fetch(next)
    expect([302, 303]).toContain(r.status)
    next = location(r, next)
  }
  return { callback: new URL(next), loginPage, jar }
}

describe('dev IdP + relying party: authorization code with PKCE over HTTP', () => {
  let dataDir: string
  let running: Running
  let client: OidcClient
  let replayCache: MemoryReplayCache

  beforeAll(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'dev-idp-'))
    running = await startServer(dataDir)
    replayCache = new MemoryReplayCache()
    client = createOidcClient({
      issuer: running.idp.issuer,
      clientId,
      clientSecret,
      redirectUri: `${running.publicUrl}/auth/callback`,
      replayCache,
    })
  })
  afterAll(async () => {
    await running?.close()
    await rm(dataDir, { recursive: true, force: true })
  })

  it('publishes discovery and JWKS under /dev-idp', async () => {
    const md = await client.metadata()
    expect(md.issuer).toBe(`${running.publicUrl}/dev-idp`)
    expect(md.authorization_endpoint).toBe(`${running.publicUrl}/dev-idp/auth`)
    expect(md.token_endpoint).toBe(`${running.publicUrl}/dev-idp/token`)
    expect(md.code_challenge_methods_supported).toEqual(['S256'])
    const jwks = (await (await fetch(md.jwks_uri)).json()) as { keys: Record<string, unknown>[] }
    expect(jwks.keys.length).toBeGreaterThan(0)
    for (const k of jwks.keys) {
      expect(k).not.toHaveProperty('d')
      expect(k.kid).toBeTypeOf('string')
    }
    // Not every path under the app belongs to the IdP.
    expect(await (await fetch(`${running.publicUrl}/`)).text()).toBe('app')
  })

  it('signs a person in by email and ends with a verified ID token carrying the email', async () => {
    const request = await client.authorizationRequest()
    const pending: PendingAuthorization = { state: request.state, nonce: request.nonce, codeVerifier: request.codeVerifier }
    const { callback, jar } = await browserLogin(request.url, 'Alice@Example.com')
    expect(callback.origin + callback.pathname).toBe(`${running.publicUrl}/auth/callback`)
    expect(callback.searchParams.get('state')).toBe(request.state)
    expect(callback.searchParams.get('iss')).toBe(running.idp.issuer)
    // Dev cookies over plain http: never Secure, always HttpOnly.
    expect(jar.names()).toContain('_devidp_session')

    const { claims, idToken, tokens } = await client.handleCallback(callback.searchParams, pending)
    expect(claims).toMatchObject({
      iss: running.idp.issuer,
      aud: clientId,
      sub: devIdpAccountId('alice@example.com'),
      email: 'alice@example.com',
      email_verified: true,
      nonce: request.nonce,
    })
    expect(decodeProtectedHeader(idToken).alg).toBe('RS256')
    expect(tokens.access_token).toBeTypeOf('string')

    // The code is single use.
    await expect(client.handleCallback(callback.searchParams, pending)).rejects.toBeInstanceOf(OidcTokenExchangeError)
    // The ID token (its nonce) is accepted once.
    await expect(client.verifyIdToken(idToken, request.nonce)).rejects.toBeInstanceOf(IdTokenReplayedError)
  })

  it('sends Set-Cookie without Secure on http, HttpOnly and SameSite=Lax', async () => {
    const request = await client.authorizationRequest()
    const r = await fetch(request.url, { redirect: 'manual' })
    const cookies = r.headers.getSetCookie()
    expect(cookies.length).toBeGreaterThan(0)
    for (const c of cookies) {
      expect(c).toMatch(/path=\/dev-idp(\/|;|$)/i)
      expect(c.toLowerCase()).toContain('httponly')
      expect(c.toLowerCase()).toContain('samesite=lax')
      expect(c.toLowerCase()).not.toContain('secure')
    }
  })

  it('the same email always gets the same subject; another email another one', async () => {
    const a = await client.authorizationRequest()
    const first = await browserLogin(a.url, 'bob@example.com')
    const r1 = await client.handleCallback(first.callback.searchParams, a)
    const b = await client.authorizationRequest()
    const second = await browserLogin(b.url, 'carol@example.com')
    const r2 = await client.handleCallback(second.callback.searchParams, b)
    expect(r1.claims.sub).toBe(devIdpAccountId('bob@example.com'))
    expect(r2.claims.sub).not.toBe(r1.claims.sub)
    expect(r2.claims.email).toBe('carol@example.com')
  })

  it('requires PKCE: an authorization request without a code challenge is refused', async () => {
    const request = await client.authorizationRequest()
    const url = new URL(request.url)
    url.searchParams.delete('code_challenge')
    url.searchParams.delete('code_challenge_method')
    const r = await fetch(url, { redirect: 'manual' })
    expect([302, 303]).toContain(r.status)
    const back = new URL(location(r, url.href))
    expect(back.searchParams.get('error')).toBe('invalid_request')
    await expect(client.handleCallback(back.searchParams, request)).rejects.toBeInstanceOf(OidcAuthorizationError)
  })

  it('refuses a code redeemed with the wrong PKCE verifier', async () => {
    const request = await client.authorizationRequest()
    const { callback } = await browserLogin(request.url, 'dave@example.com')
    const error = await client
      .handleCallback(callback.searchParams, { ...request, codeVerifier: 'x'.repeat(43) })
      .catch((e: unknown) => e)
    expect(error).toBeInstanceOf(OidcTokenExchangeError)
    expect((error as OidcTokenExchangeError).error).toBe('invalid_grant')
  })

  it('refuses a wrong client secret at the token endpoint', async () => {
    const bad = createOidcClient({
      issuer: running.idp.issuer,
      clientId,
      clientSecret: 'wrong',
      redirectUri: `${running.publicUrl}/auth/callback`,
    })
    const request = await bad.authorizationRequest()
    const { callback } = await browserLogin(request.url, 'erin@example.com')
    const error = await bad.handleCallback(callback.searchParams, request).catch((e: unknown) => e)
    expect(error).toBeInstanceOf(OidcTokenExchangeError)
    expect((error as OidcTokenExchangeError).error).toBe('invalid_client')
  })

  it('refuses an ID token forged with another key, against the live JWKS', async () => {
    const { privateKey, publicKey } = await generateKeyPair('RS256')
    const kid = await calculateJwkThumbprint(await exportJWK(publicKey))
    const now = Math.floor(Date.now() / 1000)
    const forged = await new SignJWT({ nonce: 'n', email: 'mallory@example.com', email_verified: true })
      .setProtectedHeader({ alg: 'RS256', kid })
      .setIssuer(running.idp.issuer)
      .setAudience(clientId)
      .setSubject(devIdpAccountId('alice@example.com'))
      .setIssuedAt(now)
      .setExpirationTime(now + 300)
      .sign(privateKey)
    await expect(client.verifyIdToken(forged, 'n')).rejects.toBeInstanceOf(IdTokenSignatureError)
    // Same kid as the real key, wrong key material.
    const r = await client.authorizationRequest()
    const { callback } = await browserLogin(r.url, 'frank@example.com')
    const realKid = decodeProtectedHeader((await client.handleCallback(callback.searchParams, r)).idToken).kid
    const sameKid = await new SignJWT({ nonce: 'n2' })
      .setProtectedHeader({ alg: 'RS256', kid: realKid })
      .setIssuer(running.idp.issuer)
      .setAudience(clientId)
      .setSubject('x')
      .setIssuedAt(now)
      .setExpirationTime(now + 300)
      .sign(privateKey)
    await expect(client.verifyIdToken(sameKid, 'n2')).rejects.toBeInstanceOf(IdTokenSignatureError)
  })

  it('answers an interaction without its cookie with an error page, not a login', async () => {
    const request = await client.authorizationRequest()
    const start = await fetch(request.url, { redirect: 'manual' })
    const r = await fetch(location(start, request.url))
    expect(r.status).toBe(400)
    expect(await r.text()).not.toMatch(/name="email"/)
  })

  it('shows the login form again for an invalid email', async () => {
    const request = await client.authorizationRequest()
    const jar = new CookieJar()
    const start = await jar.fetch(request.url)
    const interactionUrl = location(start, request.url)
    const r = await jar.fetch(`${interactionUrl}/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ email: 'not an email' }),
    })
    expect(r.status).toBe(400)
    expect(await r.text()).toMatch(/valid email/)
  })

  it('keeps its signing keys across restarts', async () => {
    const stored = JSON.parse(await readFile(join(dataDir, 'jwks.json'), 'utf8')) as { keys: { kid: string }[] }
    const before = (await (await fetch(`${running.idp.issuer}/jwks`)).json()) as { keys: { kid: string }[] }
    const restarted = await startServer(dataDir, 'client_secret_post')
    try {
      const after = (await (await fetch(`${restarted.idp.issuer}/jwks`)).json()) as { keys: { kid: string }[] }
      expect(after.keys.map((k) => k.kid).sort()).toEqual(before.keys.map((k) => k.kid).sort())
      expect(after.keys.map((k) => k.kid).sort()).toEqual(stored.keys.map((k) => k.kid).sort())

      // And a full login works there too, with client_secret_post.
      const rp = createOidcClient({
        issuer: restarted.idp.issuer,
        clientId,
        clientSecret,
        redirectUri: `${restarted.publicUrl}/auth/callback`,
        tokenEndpointAuthMethod: 'client_secret_post',
      })
      const request = await rp.authorizationRequest()
      const { callback } = await browserLogin(request.url, 'grace@example.com')
      const { claims } = await rp.handleCallback(callback.searchParams, request)
      expect(claims.email).toBe('grace@example.com')
    } finally {
      await restarted.close()
    }
  })

  it('refuses to start in production', async () => {
    await expect(
      createDevIdp({
        publicUrl: 'https://example.com',
        dataDir,
        environment: 'production',
        client: { clientId, clientSecret, redirectUris: ['https://example.com/auth/callback'] },
      }),
    ).rejects.toThrow(/production/)
  })
})
