import { type CryptoKey, calculateJwkThumbprint, exportJWK, generateKeyPair, type JWK, type JWTPayload, SignJWT } from 'jose'
import { calculatePKCECodeChallenge } from 'openid-client'
import { beforeAll, describe, expect, it } from 'vitest'
import {
  createOidcClient,
  type FetchLike,
  IdTokenAlgorithmError,
  IdTokenAudienceError,
  IdTokenClaimsError,
  IdTokenExpiredError,
  IdTokenIssuerError,
  IdTokenMalformedError,
  IdTokenNonceError,
  IdTokenReplayedError,
  IdTokenSignatureError,
  OidcAuthorizationError,
  type OidcClientConfig,
  OidcDiscoveryError,
  OidcError,
  OidcIssuerMismatchError,
  OidcJwksError,
  OidcStateMismatchError,
  OidcTokenExchangeError,
} from '../../adapters/oidc-client.ts'
import { MemoryReplayCache } from '../../adapters/replay-cache.ts'

const issuer = 'https://idp.example.com'
const clientId = 'workspace'
const nonce = 'n-0S6_WzA2Mj'
/* Tokens are minted at the real current time: openid-client checks them against the clock. */
const nowS = () => Math.floor(Date.now() / 1000)

type Signer = { kid: string; alg: 'RS256' | 'ES256' | 'PS256' | 'EdDSA'; privateKey: CryptoKey; publicJwk: JWK }
async function signer(alg: Signer['alg']): Promise<Signer> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true })
  const publicJwk = await exportJWK(publicKey)
  const kid = await calculateJwkThumbprint(publicJwk)
  return { kid, alg, privateKey, publicJwk: { ...publicJwk, kid, alg, use: 'sig' } }
}

let rsa: Signer
let ec: Signer
let ed: Signer

const baseClaims = (): JWTPayload => ({
  iss: issuer,
  aud: clientId,
  sub: 'user-123',
  nonce,
  iat: nowS() - 5,
  exp: nowS() + 300,
  email: 'alice@example.com',
  email_verified: true,
})

async function mint(s: Signer, claims: JWTPayload = baseClaims(), header: Record<string, unknown> = {}): Promise<string> {
  return new SignJWT(claims).setProtectedHeader({ alg: s.alg, kid: s.kid, typ: 'JWT', ...header }).sign(s.privateKey)
}

const enc = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url')

beforeAll(async () => {
  ;[rsa, ec, ed] = await Promise.all([signer('RS256'), signer('ES256'), signer('EdDSA')])
})

/*
 * The client over openid-client, against an in-memory issuer (its discovery, JWKS, token and
 * userinfo endpoints answered by the `fetch` the client is given).
 */
type Issue = (nonce: string) => Promise<string>

function fakeIssuer(metadata: Record<string, unknown> = {}) {
  const idp = {
    metadata: {
      issuer,
      authorization_endpoint: `${issuer}/authorize?tenant=x`,
      token_endpoint: `${issuer}/token`,
      jwks_uri: `${issuer}/jwks`,
      userinfo_endpoint: `${issuer}/userinfo`,
      response_types_supported: ['code'],
      subject_types_supported: ['public'],
      id_token_signing_alg_values_supported: ['RS256', 'ES256', 'PS256', 'EdDSA'],
      code_challenge_methods_supported: ['S256'],
      ...metadata,
    } as Record<string, unknown>,
    /** The ID token the token endpoint answers with, for the nonce of the sign-in under way. */
    issue: ((n) => mint(rsa, liveClaims(n))) as Issue,
    nonce: '',
    token: undefined as Response | undefined,
    userinfo: { sub: 'user-123', email: 'info@example.com', email_verified: true } as Record<string, unknown>,
    down: new Set<string>(),
    requests: [] as { path: string; headers: Headers; body: URLSearchParams }[],
    fetch: (async (input, init) => {
      const url = new URL(String(input))
      const path = url.pathname.replace(/^\/dev-idp/, '')
      idp.requests.push({
        path,
        headers: new Headers(init?.headers),
        body: new URLSearchParams(String(init?.body ?? '')),
      })
      if (idp.down.has(path)) throw new TypeError('fetch failed')
      switch (path) {
        case '/.well-known/openid-configuration':
          return Response.json(idp.metadata)
        case '/jwks':
          return Response.json({ keys: [rsa.publicJwk, ec.publicJwk, ed.publicJwk] })
        case '/token':
          return idp.token ?? Response.json({ access_token: 'at', token_type: 'Bearer', id_token: await idp.issue(idp.nonce) })
        case '/userinfo':
          return new Headers(init?.headers).get('authorization') === 'Bearer at'
            ? Response.json(idp.userinfo)
            : Response.json({}, { status: 401 })
      }
      return new Response('not found', { status: 404 })
    }) as FetchLike,
    count: (path: string) => idp.requests.filter((r) => r.path === path).length,
  }
  return idp
}

const liveClaims = (n: string): JWTPayload => ({ ...baseClaims(), nonce: n })

const clientFor = (idp: ReturnType<typeof fakeIssuer>, config: Partial<OidcClientConfig> = {}) =>
  createOidcClient({
    issuer,
    clientId,
    clientSecret: 'secret',
    redirectUri: 'https://app.example.com/auth/callback',
    fetch: idp.fetch,
    ...config,
  })

/** A sign-in through the callback, the token endpoint answering with `issue(nonce)`. */
async function signIn(client: ReturnType<typeof createOidcClient>, idp: ReturnType<typeof fakeIssuer>, issue?: Issue) {
  if (issue) idp.issue = issue
  const request = await client.authorizationRequest()
  idp.nonce = request.nonce
  const params = new URLSearchParams({ code: 'the-code', state: request.state })
  return { request, params, result: client.handleCallback(params, request) }
}

const refusal = async (p: Promise<unknown>) => {
  const e = await p.then(
    () => null,
    (e: unknown) => e,
  )
  expect(e).toBeInstanceOf(OidcError)
  return (e as OidcError).code
}

/* An ID token on its own (client.verifyIdToken), against the issuer's JWKS. */
describe('ID token verification', () => {
  const verify = (token: string, config: Partial<OidcClientConfig> = {}) =>
    clientFor(fakeIssuer(), config).verifyIdToken(token, nonce)

  it('accepts a good token (RS256, ES256, EdDSA)', async () => {
    for (const s of [rsa, ec, ed]) {
      const claims = await verify(await mint(s))
      expect(claims).toMatchObject({ sub: 'user-123', email: 'alice@example.com', email_verified: true })
    }
  })

  it('refuses a forged token: unknown key, or a known kid with another key', async () => {
    const forger = await signer('RS256')
    await expect(verify(await mint(forger))).rejects.toBeInstanceOf(IdTokenSignatureError)
    await expect(verify(await mint(forger, baseClaims(), { kid: rsa.kid }))).rejects.toBeInstanceOf(IdTokenSignatureError)
    // Tampered payload, genuine signature.
    const genuine = await mint(rsa)
    const [h, , sig] = genuine.split('.')
    const tampered = `${h}.${enc({ ...baseClaims(), sub: 'admin' })}.${sig}`
    await expect(verify(tampered)).rejects.toBeInstanceOf(IdTokenSignatureError)
  })

  it('refuses an expired token, allowing at most 60 s of clock skew', async () => {
    const expired = await mint(rsa, { ...baseClaims(), iat: nowS() - 3600, exp: nowS() - 120 })
    await expect(verify(expired)).rejects.toBeInstanceOf(IdTokenExpiredError)
    await expect(verify(expired, { clockToleranceSeconds: 3600 })).rejects.toBeInstanceOf(IdTokenExpiredError)
    const justExpired = await mint(rsa, { ...baseClaims(), iat: nowS() - 3600, exp: nowS() - 20 })
    await expect(verify(justExpired)).resolves.toBeDefined()
    await expect(verify(justExpired, { clockToleranceSeconds: 0 })).rejects.toBeInstanceOf(IdTokenExpiredError)
  })

  it('refuses a wrong audience, or a multi-audience token whose azp is not us', async () => {
    await expect(verify(await mint(rsa, { ...baseClaims(), aud: 'another-client' }))).rejects.toBeInstanceOf(IdTokenAudienceError)
    await expect(verify(await mint(rsa, { ...baseClaims(), aud: [clientId, 'other'] }))).rejects.toBeInstanceOf(
      IdTokenAudienceError,
    )
    await expect(verify(await mint(rsa, { ...baseClaims(), aud: [clientId, 'other'], azp: 'other' }))).rejects.toBeInstanceOf(
      IdTokenAudienceError,
    )
    await expect(verify(await mint(rsa, { ...baseClaims(), aud: [clientId, 'other'], azp: clientId }))).resolves.toBeDefined()
  })

  it('refuses a wrong issuer', async () => {
    await expect(verify(await mint(rsa, { ...baseClaims(), iss: 'https://evil.example.com' }))).rejects.toBeInstanceOf(
      IdTokenIssuerError,
    )
    await expect(verify(await mint(rsa, { ...baseClaims(), iss: `${issuer}/` }))).rejects.toBeInstanceOf(IdTokenIssuerError)
  })

  it('refuses alg none, and HS256 keyed with the public key', async () => {
    const none = `${enc({ alg: 'none', typ: 'JWT' })}.${enc(baseClaims())}.`
    await expect(verify(none)).rejects.toBeInstanceOf(IdTokenAlgorithmError)
    const noneKid = `${enc({ alg: 'none', kid: rsa.kid })}.${enc(baseClaims())}.`
    await expect(verify(noneKid)).rejects.toBeInstanceOf(IdTokenAlgorithmError)
    const publicBytes = new TextEncoder().encode(JSON.stringify(rsa.publicJwk))
    const hs = await new SignJWT(baseClaims()).setProtectedHeader({ alg: 'HS256', kid: rsa.kid }).sign(publicBytes)
    await expect(verify(hs)).rejects.toBeInstanceOf(IdTokenAlgorithmError)
    // Even when the issuer announces them.
    const lax = clientFor(fakeIssuer({ id_token_signing_alg_values_supported: ['none', 'HS256', 'RS256'] }))
    await expect(lax.verifyIdToken(none, nonce)).rejects.toBeInstanceOf(IdTokenAlgorithmError)
    await expect(lax.verifyIdToken(hs, nonce)).rejects.toBeInstanceOf(IdTokenAlgorithmError)
    // A narrower allow-list is honoured.
    await expect(verify(await mint(ec), { algorithms: ['RS256'] })).rejects.toBeInstanceOf(IdTokenAlgorithmError)
    // The allow-list cannot be widened.
    expect(() => clientFor(fakeIssuer(), { algorithms: ['HS256' as 'RS256'] })).toThrow(/not allowed/)
    expect(() => clientFor(fakeIssuer(), { algorithms: [] })).toThrow(/not allowed/)
  })

  it('refuses a wrong or missing nonce', async () => {
    await expect(verify(await mint(rsa, { ...baseClaims(), nonce: 'other' }))).rejects.toBeInstanceOf(IdTokenNonceError)
    const { nonce: _omit, ...withoutNonce } = baseClaims()
    await expect(verify(await mint(rsa, withoutNonce))).rejects.toBeInstanceOf(IdTokenNonceError)
  })

  it('refuses a replayed nonce', async () => {
    const client = clientFor(fakeIssuer(), { replayCache: new MemoryReplayCache() })
    const token = await mint(rsa)
    await expect(client.verifyIdToken(token, nonce)).resolves.toBeDefined()
    const error = await client.verifyIdToken(token, nonce).catch((e: unknown) => e)
    expect(error).toBeInstanceOf(IdTokenReplayedError)
    expect((error as OidcError).code).toBe('id_token_replayed')
    // Another token minted with the same nonce is a replay too.
    await expect(client.verifyIdToken(await mint(ec), nonce)).rejects.toBeInstanceOf(IdTokenReplayedError)
  })

  it('refuses malformed tokens and bad claims', async () => {
    await expect(verify('not-a-jwt')).rejects.toBeInstanceOf(IdTokenMalformedError)
    await expect(verify('a.b.c')).rejects.toBeInstanceOf(IdTokenMalformedError)
    const { sub: _s, ...noSub } = baseClaims()
    await expect(verify(await mint(rsa, noSub))).rejects.toBeInstanceOf(IdTokenClaimsError)
    await expect(verify(await mint(rsa, { ...baseClaims(), sub: 'x'.repeat(256) }))).rejects.toBeInstanceOf(IdTokenClaimsError)
    await expect(verify(await mint(rsa, { ...baseClaims(), iat: nowS() + 3600 }))).rejects.toBeInstanceOf(IdTokenClaimsError)
    await expect(verify(await mint(rsa, { ...baseClaims(), nbf: nowS() + 3600 }))).rejects.toBeInstanceOf(IdTokenClaimsError)
  })
})

describe('the client: authorization request', () => {
  it('builds the URL with state, nonce and the S256 challenge', async () => {
    const client = clientFor(fakeIssuer())
    const req = await client.authorizationRequest()
    const url = new URL(req.url)
    expect(url.origin + url.pathname).toBe(`${issuer}/authorize`)
    expect(Object.fromEntries(url.searchParams)).toEqual({
      tenant: 'x',
      response_type: 'code',
      client_id: clientId,
      redirect_uri: 'https://app.example.com/auth/callback',
      scope: 'openid email',
      state: req.state,
      nonce: req.nonce,
      code_challenge: await calculatePKCECodeChallenge(req.codeVerifier),
      code_challenge_method: 'S256',
    })
    for (const v of [req.state, req.nonce, req.codeVerifier]) expect(v).toMatch(/^[A-Za-z0-9_-]{43}$/)
    expect(new Set([req.state, req.nonce, req.codeVerifier]).size).toBe(3)
    // RFC 7636 appendix B.
    expect(await calculatePKCECodeChallenge('dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk')).toBe(
      'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM',
    )
    expect(() => clientFor(fakeIssuer(), { scopes: ['email'] })).toThrow(/openid/)
    expect(() => clientFor(fakeIssuer(), { algorithms: ['HS256' as 'RS256'] })).toThrow(/not allowed/)
  })

  it('validates discovery, and tries it again after a failure', async () => {
    const discoveryCode = (metadata: Record<string, unknown>, config: Partial<OidcClientConfig> = {}) =>
      refusal(clientFor(fakeIssuer(metadata), config).authorizationRequest())
    expect(await discoveryCode({ issuer: 'https://evil.example.com' })).toBe('discovery_failed')
    expect(await discoveryCode({ jwks_uri: undefined })).toBe('discovery_failed')
    expect(await discoveryCode({ token_endpoint: 'http://idp.example.com/token' })).toBe('discovery_failed')
    expect(await discoveryCode({ code_challenge_methods_supported: ['plain'] })).toBe('discovery_failed')
    expect(await discoveryCode({ token_endpoint_auth_methods_supported: ['private_key_jwt'] })).toBe('discovery_failed')

    const idp = fakeIssuer()
    const client = clientFor(idp)
    idp.down.add('/.well-known/openid-configuration')
    await expect(client.metadata()).rejects.toBeInstanceOf(OidcDiscoveryError)
    idp.down.clear()
    expect((await client.metadata()).token_endpoint).toBe(`${issuer}/token`)
    await client.metadata()
    expect(idp.count('/.well-known/openid-configuration')).toBe(2)
  })

  it('speaks plain http only to a loopback issuer, or when allowed', async () => {
    const at = (base: string) => ({
      issuer: base,
      authorization_endpoint: `${base}/authorize`,
      token_endpoint: `${base}/token`,
      jwks_uri: `${base}/jwks`,
    })
    const local = 'http://127.0.0.1:3000/dev-idp'
    expect((await clientFor(fakeIssuer(at(local)), { issuer: local }).metadata()).issuer).toBe(local)
    const lan = 'http://192.168.1.5:3000/dev-idp'
    await expect(clientFor(fakeIssuer(at(lan)), { issuer: lan }).metadata()).rejects.toBeInstanceOf(OidcDiscoveryError)
    expect((await clientFor(fakeIssuer(at(lan)), { issuer: lan, allowInsecureRequests: true }).metadata()).issuer).toBe(lan)
  })
})

describe('the client: callback', () => {
  it('exchanges the code with the PKCE verifier, as client_secret_basic, and accepts the nonce once', async () => {
    const idp = fakeIssuer()
    const client = clientFor(idp, { clientId: 'id:x-app', clientSecret: 's e/cr%t-_.!~*', replayCache: new MemoryReplayCache() })
    const { request, params, result } = await signIn(client, idp, (n) => mint(rsa, { ...liveClaims(n), aud: 'id:x-app' }))
    const { claims, idToken, tokens } = await result
    expect(claims).toMatchObject({ sub: 'user-123', email: 'alice@example.com', email_verified: true, nonce: request.nonce })
    expect(idToken.split('.')).toHaveLength(3)
    expect(tokens.access_token).toBe('at')

    const token = idp.requests.find((r) => r.path === '/token')!
    expect(Object.fromEntries(token.body)).toEqual({
      grant_type: 'authorization_code',
      code: 'the-code',
      redirect_uri: 'https://app.example.com/auth/callback',
      code_verifier: request.codeVerifier,
    })
    // RFC 6749 §2.3.1: both parts form-urlencoded before base64 (openid-client's ClientSecretBasic,
    // which escapes `-_.!~*` too; an issuer decodes them).
    const basic = token.headers.get('authorization')!
    expect(Buffer.from(basic.replace(/^Basic /, ''), 'base64').toString()).toBe('id%3Ax%2Dapp:s+e%2Fcr%25t%2D%5F%2E%21%7E%2A')

    // The same redirect again: the issuer answers with the same ID token, whose nonce is spent.
    await expect(client.handleCallback(params, request)).rejects.toBeInstanceOf(IdTokenReplayedError)
  })

  it('authenticates with client_secret_post when that is all the issuer offers', async () => {
    const idp = fakeIssuer({ token_endpoint_auth_methods_supported: ['client_secret_post', 'private_key_jwt'] })
    await (await signIn(clientFor(idp), idp)).result
    const token = idp.requests.find((r) => r.path === '/token')!
    expect(token.headers.get('authorization')).toBeNull()
    expect(token.body.get('client_id')).toBe(clientId)
    expect(token.body.get('client_secret')).toBe('secret')
  })

  it('checks the redirect: state, error, RFC 9207 iss, before any token request', async () => {
    const idp = fakeIssuer()
    const client = clientFor(idp)
    const request = await client.authorizationRequest()
    const q = (o: Record<string, string>) => client.handleCallback(new URLSearchParams(o), request)
    await expect(q({ code: 'c', state: 'other' })).rejects.toBeInstanceOf(OidcStateMismatchError)
    await expect(q({ code: 'c' })).rejects.toBeInstanceOf(OidcStateMismatchError)
    const denied = await q({ error: 'access_denied', error_description: 'no', state: request.state }).catch((e) => e)
    expect(denied).toBeInstanceOf(OidcAuthorizationError)
    expect(denied).toMatchObject({ error: 'access_denied', errorDescription: 'no' })
    await expect(q({ state: request.state })).rejects.toBeInstanceOf(OidcAuthorizationError)
    await expect(q({ code: 'c', state: request.state, iss: 'https://evil' })).rejects.toBeInstanceOf(OidcIssuerMismatchError)
    const strict = fakeIssuer({ authorization_response_iss_parameter_supported: true })
    const strictClient = clientFor(strict)
    const r = await strictClient.authorizationRequest()
    await expect(strictClient.handleCallback(new URLSearchParams({ code: 'c', state: r.state }), r)).rejects.toBeInstanceOf(
      OidcIssuerMismatchError,
    )
    expect(idp.count('/token') + strict.count('/token')).toBe(0)
  })

  it('refuses every bad ID token from the token endpoint with its reason', async () => {
    const idp = fakeIssuer()
    const client = clientFor(idp)
    const now = () => Math.floor(Date.now() / 1000)
    const forger = await signer('RS256')
    const publicBytes = new TextEncoder().encode(JSON.stringify(rsa.publicJwk))
    const cases: [string, Issue][] = [
      ['id_token_signature', (n) => mint(forger, liveClaims(n), { kid: rsa.kid })],
      ['id_token_signature', (n) => mint(forger, liveClaims(n))],
      ['id_token_expired', (n) => mint(rsa, { ...liveClaims(n), iat: now() - 3600, exp: now() - 120 })],
      ['id_token_audience', (n) => mint(rsa, { ...liveClaims(n), aud: 'another-client' })],
      ['id_token_audience', (n) => mint(rsa, { ...liveClaims(n), aud: [clientId, 'other'] })],
      ['id_token_audience', (n) => mint(rsa, { ...liveClaims(n), aud: [clientId, 'other'], azp: 'other' })],
      ['id_token_issuer', (n) => mint(rsa, { ...liveClaims(n), iss: 'https://evil.example.com' })],
      ['id_token_algorithm', async (n) => `${enc({ alg: 'none', typ: 'JWT' })}.${enc(liveClaims(n))}.`],
      [
        'id_token_algorithm',
        (n) => new SignJWT(liveClaims(n)).setProtectedHeader({ alg: 'HS256', kid: rsa.kid }).sign(publicBytes),
      ],
      ['id_token_nonce', (n) => mint(rsa, { ...liveClaims(n), nonce: 'other' })],
      ['id_token_nonce', (n) => mint(rsa, { ...liveClaims(n), nonce: undefined })],
      ['id_token_claims', (n) => mint(rsa, { ...liveClaims(n), sub: undefined })],
      ['id_token_claims', (n) => mint(rsa, { ...liveClaims(n), iat: now() + 3600 })],
      ['id_token_claims', (n) => mint(rsa, { ...liveClaims(n), nbf: now() + 3600 })],
      ['id_token_malformed', async () => 'a.b.c'],
    ]
    for (const [code, issue] of cases)
      expect([code, await refusal((await signIn(client, idp, issue)).result)]).toEqual([code, code])

    // 30 s of clock skew by default, at most 60.
    const justExpired: Issue = (n) => mint(rsa, { ...liveClaims(n), iat: now() - 3600, exp: now() - 20 })
    await expect((await signIn(client, idp, justExpired)).result).resolves.toBeDefined()
    expect(await refusal((await signIn(clientFor(idp, { clockToleranceSeconds: 0 }), idp, justExpired)).result)).toBe(
      'id_token_expired',
    )
    const longExpired: Issue = (n) => mint(rsa, { ...liveClaims(n), iat: now() - 3600, exp: now() - 120 })
    const lenient = clientFor(idp, { clockToleranceSeconds: 3600 })
    expect(await refusal((await signIn(lenient, idp, longExpired)).result)).toBe('id_token_expired')
    // Several audiences with azp naming us, and every allowed algorithm, are fine.
    await expect(
      (await signIn(client, idp, (n) => mint(rsa, { ...liveClaims(n), aud: [clientId, 'other'], azp: clientId }))).result,
    ).resolves.toBeDefined()
    for (const s of [ec, ed])
      await expect((await signIn(client, idp, (n) => mint(s, liveClaims(n)))).result).resolves.toBeDefined()
    // A narrower allow-list is honoured.
    const rsaOnly = clientFor(idp, { algorithms: ['RS256'] })
    expect(await refusal((await signIn(rsaOnly, idp, (n) => mint(ec, liveClaims(n)))).result)).toBe('id_token_algorithm')
    // An algorithm the issuer does not announce.
    const announcesRsa = fakeIssuer({ id_token_signing_alg_values_supported: ['RS256'] })
    expect(await refusal((await signIn(clientFor(announcesRsa), announcesRsa, (n) => mint(ec, liveClaims(n)))).result)).toBe(
      'id_token_algorithm',
    )
  })

  it('names what failed at the token endpoint and the JWKS', async () => {
    const idp = fakeIssuer()
    const client = clientFor(idp)
    idp.token = Response.json({ error: 'invalid_grant', error_description: 'code expired' }, { status: 400 })
    const refused = await (await signIn(client, idp)).result.catch((e) => e)
    expect(refused).toBeInstanceOf(OidcTokenExchangeError)
    expect(refused).toMatchObject({ status: 400, error: 'invalid_grant' })
    // A refused client authentication, said in a challenge (RFC 6750 §3).
    const challenge = { 'www-authenticate': 'Basic realm="idp", error="invalid_client"' }
    idp.token = Response.json({ error: 'invalid_client' }, { status: 401, headers: challenge })
    expect(await (await signIn(client, idp)).result.catch((e) => e)).toMatchObject({ status: 401, error: 'invalid_client' })
    idp.token = Response.json({ token_type: 'Bearer', access_token: 'at' })
    expect(await refusal((await signIn(client, idp)).result)).toBe('token_exchange_failed')
    idp.token = undefined
    idp.down.add('/token')
    expect(await refusal((await signIn(client, idp)).result)).toBe('token_exchange_failed')
    idp.down.clear()
    idp.down.add('/jwks')
    await expect((await signIn(client, idp)).result).rejects.toBeInstanceOf(OidcJwksError)
  })

  it('reads userinfo for the subject of the sign-in only', async () => {
    const idp = fakeIssuer()
    const client = clientFor(idp)
    expect(await client.userinfo('at', 'user-123')).toMatchObject({ email: 'info@example.com', email_verified: true })
    await expect(client.userinfo('at', 'someone-else')).rejects.toBeInstanceOf(OidcError)
    const none = fakeIssuer({ userinfo_endpoint: undefined })
    expect(await clientFor(none).userinfo('at', 'user-123')).toBeNull()
  })
})
