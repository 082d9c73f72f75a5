import {
  type CryptoKey,
  calculateJwkThumbprint,
  createLocalJWKSet,
  exportJWK,
  generateKeyPair,
  type JWK,
  type JWTPayload,
  SignJWT,
} from 'jose'
import { beforeAll, describe, expect, it } from 'vitest'
import {
  buildAuthorizationUrl,
  createAuthorizationRequest,
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
  OidcDiscoveryError,
  type OidcError,
  OidcIssuerMismatchError,
  OidcStateMismatchError,
  type ProviderMetadata,
  parseCallbackParams,
  parseProviderMetadata,
  pkceChallenge,
  tokenRequest,
  verifyIdToken,
} from '../../adapters/oidc-client.ts'
import { MemoryReplayCache } from '../../adapters/replay-cache.ts'

const issuer = 'https://idp.example.com'
const clientId = 'workspace'
const nonce = 'n-0S6_WzA2Mj'
const now = new Date(Date.UTC(2025, 0, 1, 12, 0, 0))
const nowS = Math.floor(now.getTime() / 1000)

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
let keys: ReturnType<typeof createLocalJWKSet>

const baseClaims = (): JWTPayload => ({
  iss: issuer,
  aud: clientId,
  sub: 'user-123',
  nonce,
  iat: nowS - 5,
  exp: nowS + 300,
  email: 'alice@example.com',
  email_verified: true,
})

async function mint(s: Signer, claims: JWTPayload = baseClaims(), header: Record<string, unknown> = {}): Promise<string> {
  return new SignJWT(claims).setProtectedHeader({ alg: s.alg, kid: s.kid, typ: 'JWT', ...header }).sign(s.privateKey)
}

const verify = (token: string, extra: Partial<Parameters<typeof verifyIdToken>[1]> = {}) =>
  verifyIdToken(token, { issuer, clientId, nonce, keys, now, ...extra })

const enc = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url')

beforeAll(async () => {
  ;[rsa, ec, ed] = await Promise.all([signer('RS256'), signer('ES256'), signer('EdDSA')])
  keys = createLocalJWKSet({ keys: [rsa.publicJwk, ec.publicJwk, ed.publicJwk] })
})

describe('ID token verification', () => {
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
    const expired = await mint(rsa, { ...baseClaims(), iat: nowS - 3600, exp: nowS - 120 })
    await expect(verify(expired)).rejects.toBeInstanceOf(IdTokenExpiredError)
    await expect(verify(expired, { clockToleranceSeconds: 3600 })).rejects.toBeInstanceOf(IdTokenExpiredError)
    const justExpired = await mint(rsa, { ...baseClaims(), iat: nowS - 3600, exp: nowS - 20 })
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
    // A narrower allow-list is honoured.
    await expect(verify(await mint(ec), { algorithms: ['RS256'] })).rejects.toBeInstanceOf(IdTokenAlgorithmError)
    // The allow-list cannot be widened.
    await expect(verify(await mint(rsa), { algorithms: ['HS256' as 'RS256'] })).rejects.toThrow(/not allowed/)
  })

  it('refuses a wrong or missing nonce', async () => {
    await expect(verify(await mint(rsa, { ...baseClaims(), nonce: 'other' }))).rejects.toBeInstanceOf(IdTokenNonceError)
    const { nonce: _omit, ...withoutNonce } = baseClaims()
    await expect(verify(await mint(rsa, withoutNonce))).rejects.toBeInstanceOf(IdTokenNonceError)
  })

  it('refuses a replayed nonce', async () => {
    const replayCache = new MemoryReplayCache({ now: () => now.getTime() })
    const token = await mint(rsa)
    await expect(verify(token, { replayCache })).resolves.toBeDefined()
    const error = await verify(token, { replayCache }).catch((e) => e)
    expect(error).toBeInstanceOf(IdTokenReplayedError)
    expect((error as OidcError).code).toBe('id_token_replayed')
    // Another token minted with the same nonce is a replay too.
    await expect(verify(await mint(ec), { replayCache })).rejects.toBeInstanceOf(IdTokenReplayedError)
  })

  it('refuses malformed tokens and bad claims', async () => {
    await expect(verify('not-a-jwt')).rejects.toBeInstanceOf(IdTokenMalformedError)
    await expect(verify('a.b.c')).rejects.toBeInstanceOf(IdTokenMalformedError)
    const { sub: _s, ...noSub } = baseClaims()
    await expect(verify(await mint(rsa, noSub))).rejects.toBeInstanceOf(IdTokenClaimsError)
    await expect(verify(await mint(rsa, { ...baseClaims(), iat: nowS + 3600 }))).rejects.toBeInstanceOf(IdTokenClaimsError)
    await expect(verify(await mint(rsa, { ...baseClaims(), nbf: nowS + 3600 }))).rejects.toBeInstanceOf(IdTokenClaimsError)
  })
})

describe('authorization request and callback', () => {
  const metadata: ProviderMetadata = {
    issuer,
    authorization_endpoint: `${issuer}/authorize?tenant=x`,
    token_endpoint: `${issuer}/token`,
    jwks_uri: `${issuer}/jwks`,
  }

  it('PKCE S256 matches RFC 7636 appendix B', () => {
    expect(pkceChallenge('dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk')).toBe('E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM')
  })

  it('builds the URL with state, nonce and the S256 challenge', () => {
    const req = createAuthorizationRequest(metadata, { clientId, redirectUri: 'https://app.example.com/auth/callback' })
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
      code_challenge: pkceChallenge(req.codeVerifier),
      code_challenge_method: 'S256',
    })
    for (const v of [req.state, req.nonce, req.codeVerifier]) expect(v).toMatch(/^[A-Za-z0-9_-]{43}$/)
    expect(new Set([req.state, req.nonce, req.codeVerifier]).size).toBe(3)
    expect(() =>
      buildAuthorizationUrl(metadata, {
        clientId,
        redirectUri: 'x',
        scopes: ['email'],
        state: 's',
        nonce: 'n',
        codeVerifier: 'v',
      }),
    ).toThrow(/openid/)
  })

  it('checks the callback: state, error, RFC 9207 iss', () => {
    const q = (o: Record<string, string>) => new URLSearchParams(o)
    expect(parseCallbackParams(q({ code: 'c', state: 's' }), { state: 's', issuer })).toEqual({ code: 'c' })
    expect(() => parseCallbackParams(q({ code: 'c', state: 't' }), { state: 's', issuer })).toThrow(OidcStateMismatchError)
    expect(() => parseCallbackParams(q({ code: 'c' }), { state: 's', issuer })).toThrow(OidcStateMismatchError)
    expect(() => parseCallbackParams(q({ error: 'access_denied', state: 's' }), { state: 's', issuer })).toThrow(
      OidcAuthorizationError,
    )
    expect(() => parseCallbackParams(q({ code: 'c', state: 's', iss: 'https://evil' }), { state: 's', issuer })).toThrow(
      OidcIssuerMismatchError,
    )
    expect(() => parseCallbackParams(q({ code: 'c', state: 's' }), { state: 's', issuer, requireIss: true })).toThrow(
      OidcIssuerMismatchError,
    )
  })

  it('authenticates at the token endpoint with basic or post', () => {
    const params = { code: 'c', codeVerifier: 'v', redirectUri: 'r', clientId: 'id:x', clientSecret: 's e/cr%t' }
    const basic = tokenRequest(params, 'client_secret_basic')
    expect(Buffer.from(basic.headers.authorization!.slice(6), 'base64').toString()).toBe('id%3Ax:s+e%2Fcr%25t')
    expect(basic.body.get('client_secret')).toBeNull()
    expect(basic.body.get('code_verifier')).toBe('v')
    const post = tokenRequest(params, 'client_secret_post')
    expect(post.headers.authorization).toBeUndefined()
    expect(post.body.get('client_secret')).toBe('s e/cr%t')
  })

  it('validates discovery documents', () => {
    expect(parseProviderMetadata(issuer, { ...metadata }).token_endpoint).toBe(`${issuer}/token`)
    expect(() => parseProviderMetadata(issuer, { ...metadata, issuer: 'https://evil' })).toThrow(OidcDiscoveryError)
    expect(() => parseProviderMetadata(issuer, { ...metadata, jwks_uri: undefined })).toThrow(OidcDiscoveryError)
    expect(() => parseProviderMetadata(issuer, { ...metadata, token_endpoint: 'http://idp.example.com/token' })).toThrow(
      OidcDiscoveryError,
    )
    expect(() => parseProviderMetadata(issuer, { ...metadata, code_challenge_methods_supported: ['plain'] })).toThrow(/S256/)
    expect(
      parseProviderMetadata('http://localhost:3000/dev-idp', {
        ...metadata,
        issuer: 'http://localhost:3000/dev-idp',
        token_endpoint: 'http://localhost:3000/dev-idp/token',
      }).issuer,
    ).toBe('http://localhost:3000/dev-idp')
  })
})
