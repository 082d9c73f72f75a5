import { createHash, randomBytes, timingSafeEqual } from 'node:crypto'
import {
  createRemoteJWKSet,
  customFetch,
  decodeProtectedHeader,
  errors,
  type JWTPayload,
  type JWTVerifyGetKey,
  jwtVerify,
} from 'jose'
import type { ReplayCache } from './replay-cache.ts'

/**
 * OpenID Connect relying party: authorization code flow with PKCE (S256), state and nonce,
 * against any standard issuer (the local dev IdP, Clerk, Auth0, Keycloak, …).
 *
 * Stateless by design: `createAuthorizationRequest` returns the state, nonce and code verifier,
 * and the caller keeps them (signed, http-only, short-lived cookie, or a table) until the
 * callback, where it hands them back to `handleCallback`.
 */

/** Asymmetric algorithms only: never `none`, never HS* (a public key must not become an HMAC secret). */
export const ID_TOKEN_ALGORITHMS = ['RS256', 'ES256', 'PS256', 'EdDSA'] as const
export type IdTokenAlgorithm = (typeof ID_TOKEN_ALGORITHMS)[number]
export const MAX_CLOCK_TOLERANCE_SECONDS = 60

export type FetchLike = (input: string | URL, init?: RequestInit) => Promise<Response>

export type ProviderMetadata = {
  issuer: string
  authorization_endpoint: string
  token_endpoint: string
  jwks_uri: string
  userinfo_endpoint?: string
  end_session_endpoint?: string
  id_token_signing_alg_values_supported?: string[]
  code_challenge_methods_supported?: string[]
  token_endpoint_auth_methods_supported?: string[]
  authorization_response_iss_parameter_supported?: boolean
}

export type TokenEndpointAuthMethod = 'client_secret_basic' | 'client_secret_post'

export type OidcClientConfig = {
  issuer: string
  clientId: string
  clientSecret: string
  redirectUri: string
  /** Default `openid email`. Must contain `openid`. */
  scopes?: string[]
  /** Default: client_secret_basic, or client_secret_post when the issuer supports only that. */
  tokenEndpointAuthMethod?: TokenEndpointAuthMethod
  /** Seconds, at most 60. Default 30. */
  clockToleranceSeconds?: number
  /** A subset of ID_TOKEN_ALGORITHMS. */
  algorithms?: IdTokenAlgorithm[]
  /** Where used nonces are remembered so an ID token (or its nonce) is accepted once. */
  replayCache?: ReplayCache
  fetch?: FetchLike
  /** Per-request timeout for discovery, token and JWKS requests. Default 10 s. */
  timeoutMs?: number
}

/** What the caller stores between login and callback. */
export type PendingAuthorization = {
  state: string
  nonce: string
  codeVerifier: string
}

export type AuthorizationRequest = PendingAuthorization & { url: string }

export type IdTokenClaims = JWTPayload & {
  iss: string
  sub: string
  aud: string | string[]
  exp: number
  iat: number
  nonce?: string
  email?: string
  email_verified?: boolean
  name?: string
}

export type TokenResponse = {
  id_token: string
  access_token?: string
  token_type?: string
  expires_in?: number
  refresh_token?: string
  scope?: string
}

export type CallbackResult = {
  claims: IdTokenClaims
  idToken: string
  tokens: TokenResponse
}

// ---------------------------------------------------------------------------------------------
// typed refusals

export type OidcErrorCode =
  | 'discovery_failed'
  | 'state_mismatch'
  | 'authorization_denied'
  | 'issuer_mismatch_in_response'
  | 'token_exchange_failed'
  | 'jwks_unavailable'
  | 'id_token_malformed'
  | 'id_token_algorithm'
  | 'id_token_signature'
  | 'id_token_expired'
  | 'id_token_issuer'
  | 'id_token_audience'
  | 'id_token_nonce'
  | 'id_token_replayed'
  | 'id_token_claims'

export class OidcError extends Error {
  override name = 'OidcError'
  readonly code: OidcErrorCode
  constructor(code: OidcErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.code = code
  }
}
/** Discovery document unreachable, invalid, or for another issuer. */
export class OidcDiscoveryError extends OidcError {
  override name = 'OidcDiscoveryError'
  constructor(message: string, options?: { cause?: unknown }) {
    super('discovery_failed', message, options)
  }
}
/** The callback's `state` is missing or differs from the stored one (CSRF, or a stale tab). */
export class OidcStateMismatchError extends OidcError {
  override name = 'OidcStateMismatchError'
  constructor(message = 'state does not match', options?: { cause?: unknown }) {
    super('state_mismatch', message, options)
  }
}
/** The issuer answered the authorization request with an error (e.g. access_denied). */
export class OidcAuthorizationError extends OidcError {
  override name = 'OidcAuthorizationError'
  readonly error: string
  readonly errorDescription: string | undefined
  constructor(error: string, errorDescription?: string) {
    super('authorization_denied', `authorization failed: ${error}${errorDescription ? ` (${errorDescription})` : ''}`)
    this.error = error
    this.errorDescription = errorDescription
  }
}
/** RFC 9207: the authorization response names another issuer (mix-up attack). */
export class OidcIssuerMismatchError extends OidcError {
  override name = 'OidcIssuerMismatchError'
  constructor(message = 'authorization response comes from another issuer', options?: { cause?: unknown }) {
    super('issuer_mismatch_in_response', message, options)
  }
}
/** The token endpoint refused the code or answered something unusable. */
export class OidcTokenExchangeError extends OidcError {
  override name = 'OidcTokenExchangeError'
  readonly status: number | undefined
  readonly error: string | undefined
  constructor(message: string, details: { status?: number; error?: string; cause?: unknown } = {}) {
    super('token_exchange_failed', message, { cause: details.cause })
    this.status = details.status
    this.error = details.error
  }
}
/** The issuer's JWKS could not be fetched (not a verdict on the token). */
export class OidcJwksError extends OidcError {
  override name = 'OidcJwksError'
  constructor(message = 'JWKS unavailable', options?: { cause?: unknown }) {
    super('jwks_unavailable', message, options)
  }
}
export class IdTokenMalformedError extends OidcError {
  override name = 'IdTokenMalformedError'
  constructor(message = 'ID token is malformed', options?: { cause?: unknown }) {
    super('id_token_malformed', message, options)
  }
}
/** `alg` is none, HS*, or otherwise outside the allow-list. */
export class IdTokenAlgorithmError extends OidcError {
  override name = 'IdTokenAlgorithmError'
  constructor(message = 'ID token algorithm is not allowed', options?: { cause?: unknown }) {
    super('id_token_algorithm', message, options)
  }
}
/** Signed by a key the issuer does not publish, or the signature does not verify (forged). */
export class IdTokenSignatureError extends OidcError {
  override name = 'IdTokenSignatureError'
  constructor(message = 'ID token signature is invalid', options?: { cause?: unknown }) {
    super('id_token_signature', message, options)
  }
}
export class IdTokenExpiredError extends OidcError {
  override name = 'IdTokenExpiredError'
  constructor(message = 'ID token has expired', options?: { cause?: unknown }) {
    super('id_token_expired', message, options)
  }
}
export class IdTokenIssuerError extends OidcError {
  override name = 'IdTokenIssuerError'
  constructor(message = 'ID token issuer is wrong', options?: { cause?: unknown }) {
    super('id_token_issuer', message, options)
  }
}
/** `aud` does not contain our client id, or `azp` names another client. */
export class IdTokenAudienceError extends OidcError {
  override name = 'IdTokenAudienceError'
  constructor(message = 'ID token audience is wrong', options?: { cause?: unknown }) {
    super('id_token_audience', message, options)
  }
}
export class IdTokenNonceError extends OidcError {
  override name = 'IdTokenNonceError'
  constructor(message = 'ID token nonce does not match', options?: { cause?: unknown }) {
    super('id_token_nonce', message, options)
  }
}
/** The nonce was already used by an accepted ID token. */
export class IdTokenReplayedError extends OidcError {
  override name = 'IdTokenReplayedError'
  constructor(message = 'ID token nonce was already used', options?: { cause?: unknown }) {
    super('id_token_replayed', message, options)
  }
}
/** Any other claim check (nbf/iat in the future, missing sub, …). */
export class IdTokenClaimsError extends OidcError {
  override name = 'IdTokenClaimsError'
  constructor(message = 'ID token claims are invalid', options?: { cause?: unknown }) {
    super('id_token_claims', message, options)
  }
}

// ---------------------------------------------------------------------------------------------
// pure helpers

const b64url = (bytes: Buffer): string => bytes.toString('base64url')

/** 32 random bytes, base64url (43 chars): state, nonce and PKCE verifier alike. */
export const randomToken = (random: (size: number) => Buffer = randomBytes): string => b64url(random(32))

/** RFC 7636 S256 code challenge. */
export const pkceChallenge = (codeVerifier: string): string => b64url(createHash('sha256').update(codeVerifier, 'ascii').digest())

const sameSecret = (a: string, b: string): boolean => {
  const ha = createHash('sha256').update(a).digest()
  const hb = createHash('sha256').update(b).digest()
  return timingSafeEqual(ha, hb) && a.length === b.length
}

/** Trailing slash removed; the issuer identifier is otherwise compared exactly. */
const trimSlash = (url: string): string => url.replace(/\/+$/, '')

export const discoveryUrl = (issuer: string): string => `${trimSlash(issuer)}/.well-known/openid-configuration`

/** Validates a discovery document for `issuer` (exact issuer match, required endpoints, https unless the issuer is http). */
export function parseProviderMetadata(issuer: string, document: unknown): ProviderMetadata {
  if (typeof document !== 'object' || document === null) throw new OidcDiscoveryError('discovery document is not an object')
  const doc = document as Record<string, unknown>
  if (typeof doc.issuer !== 'string' || trimSlash(doc.issuer) !== trimSlash(issuer)) {
    throw new OidcDiscoveryError(`discovery document names issuer ${String(doc.issuer)}, expected ${issuer}`)
  }
  const secure = new URL(issuer).protocol === 'https:'
  for (const field of ['authorization_endpoint', 'token_endpoint', 'jwks_uri'] as const) {
    const value = doc[field]
    if (typeof value !== 'string') throw new OidcDiscoveryError(`discovery document lacks ${field}`)
    const url = URL.parse(value)
    if (!url || (url.protocol !== 'https:' && (secure || url.protocol !== 'http:'))) {
      throw new OidcDiscoveryError(`${field} must be an https URL`)
    }
  }
  const methods = doc.code_challenge_methods_supported
  if (Array.isArray(methods) && !methods.includes('S256')) throw new OidcDiscoveryError('issuer does not support PKCE S256')
  const stringArray = (v: unknown): string[] | undefined =>
    Array.isArray(v) && v.every((x) => typeof x === 'string') ? (v as string[]) : undefined
  return {
    issuer: doc.issuer,
    authorization_endpoint: doc.authorization_endpoint as string,
    token_endpoint: doc.token_endpoint as string,
    jwks_uri: doc.jwks_uri as string,
    userinfo_endpoint: typeof doc.userinfo_endpoint === 'string' ? doc.userinfo_endpoint : undefined,
    end_session_endpoint: typeof doc.end_session_endpoint === 'string' ? doc.end_session_endpoint : undefined,
    id_token_signing_alg_values_supported: stringArray(doc.id_token_signing_alg_values_supported),
    code_challenge_methods_supported: stringArray(methods),
    token_endpoint_auth_methods_supported: stringArray(doc.token_endpoint_auth_methods_supported),
    authorization_response_iss_parameter_supported: doc.authorization_response_iss_parameter_supported === true,
  }
}

/** Pure: the authorization URL for the given state, nonce and verifier. */
export function buildAuthorizationUrl(
  metadata: ProviderMetadata,
  params: {
    clientId: string
    redirectUri: string
    scopes: string[]
    state: string
    nonce: string
    codeVerifier: string
    extra?: Record<string, string>
  },
): string {
  if (!params.scopes.includes('openid')) throw new TypeError('scopes must include openid')
  const url = new URL(metadata.authorization_endpoint)
  const query: Record<string, string> = {
    ...params.extra,
    response_type: 'code',
    client_id: params.clientId,
    redirect_uri: params.redirectUri,
    scope: params.scopes.join(' '),
    state: params.state,
    nonce: params.nonce,
    code_challenge: pkceChallenge(params.codeVerifier),
    code_challenge_method: 'S256',
  }
  for (const [k, v] of Object.entries(query)) url.searchParams.set(k, v)
  return url.href
}

/** New state, nonce and verifier, and the URL that carries them. Store the three, redirect to `url`. */
export function createAuthorizationRequest(
  metadata: ProviderMetadata,
  config: Pick<OidcClientConfig, 'clientId' | 'redirectUri' | 'scopes'>,
  options: { extra?: Record<string, string>; random?: (size: number) => Buffer } = {},
): AuthorizationRequest {
  const pending = {
    state: randomToken(options.random),
    nonce: randomToken(options.random),
    codeVerifier: randomToken(options.random),
  }
  const url = buildAuthorizationUrl(metadata, {
    clientId: config.clientId,
    redirectUri: config.redirectUri,
    scopes: config.scopes ?? ['openid', 'email'],
    extra: options.extra,
    ...pending,
  })
  return { url, ...pending }
}

/**
 * Pure: checks the redirect's query against the stored state (and RFC 9207 `iss` when present or
 * required) and returns the code. Throws OidcStateMismatchError, OidcAuthorizationError or
 * OidcIssuerMismatchError.
 */
export function parseCallbackParams(
  params: URLSearchParams,
  expected: { state: string; issuer: string; requireIss?: boolean },
): { code: string } {
  const state = params.get('state')
  if (!state || !sameSecret(state, expected.state)) throw new OidcStateMismatchError()
  const iss = params.get('iss')
  if (iss !== null ? trimSlash(iss) !== trimSlash(expected.issuer) : expected.requireIss) throw new OidcIssuerMismatchError()
  const error = params.get('error')
  if (error) throw new OidcAuthorizationError(error, params.get('error_description') ?? undefined)
  const code = params.get('code')
  if (!code) throw new OidcAuthorizationError('invalid_request', 'no code in the authorization response')
  return { code }
}

/** Pure: the token request (URL-encoded body and headers) for an authorization code. */
export function tokenRequest(
  params: { code: string; codeVerifier: string; redirectUri: string; clientId: string; clientSecret: string },
  method: TokenEndpointAuthMethod,
): { headers: Record<string, string>; body: URLSearchParams } {
  const body = new URLSearchParams({
    grant_type: 'authorization_code',
    code: params.code,
    redirect_uri: params.redirectUri,
    code_verifier: params.codeVerifier,
  })
  const headers: Record<string, string> = {
    'content-type': 'application/x-www-form-urlencoded',
    accept: 'application/json',
  }
  if (method === 'client_secret_basic') {
    // RFC 6749 §2.3.1: both parts are form-urlencoded before base64.
    const enc = (s: string) => encodeURIComponent(s).replace(/%20/g, '+')
    headers.authorization = `Basic ${Buffer.from(`${enc(params.clientId)}:${enc(params.clientSecret)}`).toString('base64')}`
  } else {
    body.set('client_id', params.clientId)
    body.set('client_secret', params.clientSecret)
  }
  return { headers, body }
}

export function chooseAuthMethod(metadata: ProviderMetadata, preferred?: TokenEndpointAuthMethod): TokenEndpointAuthMethod {
  if (preferred) return preferred
  const supported = metadata.token_endpoint_auth_methods_supported
  if (!supported || supported.includes('client_secret_basic')) return 'client_secret_basic'
  if (supported.includes('client_secret_post')) return 'client_secret_post'
  throw new OidcDiscoveryError('issuer supports neither client_secret_basic nor client_secret_post')
}

export function allowedAlgorithms(requested?: readonly string[]): IdTokenAlgorithm[] {
  const list = requested ?? ID_TOKEN_ALGORITHMS
  for (const alg of list) {
    if (!ID_TOKEN_ALGORITHMS.includes(alg as IdTokenAlgorithm)) throw new TypeError(`ID token algorithm ${alg} is not allowed`)
  }
  if (list.length === 0) throw new TypeError('no ID token algorithm allowed')
  return [...list] as IdTokenAlgorithm[]
}

const clampTolerance = (seconds: number | undefined): number => Math.min(Math.max(seconds ?? 30, 0), MAX_CLOCK_TOLERANCE_SECONDS)

// ---------------------------------------------------------------------------------------------
// ID token verification

export type VerifyIdTokenOptions = {
  issuer: string
  clientId: string
  /** The nonce stored with the authorization request. */
  nonce: string
  /** Key resolver: `createRemoteJWKSet(jwks_uri)` in production, `createLocalJWKSet` in tests. */
  keys: JWTVerifyGetKey
  algorithms?: readonly IdTokenAlgorithm[]
  clockToleranceSeconds?: number
  replayCache?: ReplayCache
  now?: Date
}

/** Verifies an ID token (OIDC Core §3.1.3.7) and throws a typed OidcError for every refusal. */
export async function verifyIdToken(idToken: string, options: VerifyIdTokenOptions): Promise<IdTokenClaims> {
  const algorithms = allowedAlgorithms(options.algorithms)
  if (typeof idToken !== 'string' || idToken.split('.').length !== 3)
    throw new IdTokenMalformedError('ID token is not a compact JWS')
  let alg: unknown
  try {
    alg = decodeProtectedHeader(idToken).alg
  } catch (cause) {
    throw new IdTokenMalformedError('ID token header is not valid', { cause })
  }
  // Checked before any key lookup: `none` and HS* never reach the verifier.
  if (typeof alg !== 'string' || !algorithms.includes(alg as IdTokenAlgorithm)) {
    throw new IdTokenAlgorithmError(`ID token algorithm ${String(alg)} is not allowed`)
  }

  const tolerance = clampTolerance(options.clockToleranceSeconds)
  const now = options.now ?? new Date()
  let payload: JWTPayload
  try {
    ;({ payload } = await jwtVerify(idToken, options.keys, {
      issuer: options.issuer,
      audience: options.clientId,
      algorithms,
      clockTolerance: tolerance,
      currentDate: now,
      requiredClaims: ['iss', 'sub', 'aud', 'exp', 'iat'],
    }))
  } catch (e) {
    throw toOidcError(e)
  }

  const claims = payload as IdTokenClaims
  if (typeof claims.sub !== 'string' || claims.sub.length === 0 || claims.sub.length > 255) {
    throw new IdTokenClaimsError('sub must be a non-empty string of at most 255 characters')
  }
  if (typeof claims.iat !== 'number' || claims.iat > now.getTime() / 1000 + tolerance)
    throw new IdTokenClaimsError('iat is in the future')
  const aud = Array.isArray(claims.aud) ? claims.aud : [claims.aud]
  if (claims.azp !== undefined ? claims.azp !== options.clientId : aud.length > 1) {
    throw new IdTokenAudienceError('azp must name this client when the token has several audiences')
  }
  if (typeof claims.nonce !== 'string' || !sameSecret(claims.nonce, options.nonce)) throw new IdTokenNonceError()

  if (options.replayCache) {
    const expiresAtMs = (claims.exp + tolerance) * 1000
    const fresh = await options.replayCache.claim(`oidc-nonce:${options.issuer}:${claims.nonce}`, expiresAtMs)
    if (!fresh) throw new IdTokenReplayedError()
  }
  return claims
}

function toOidcError(e: unknown): OidcError {
  if (e instanceof OidcError) return e
  if (e instanceof errors.JWTExpired) return new IdTokenExpiredError(undefined, { cause: e })
  if (e instanceof errors.JWTClaimValidationFailed) {
    if (e.claim === 'iss') return new IdTokenIssuerError(undefined, { cause: e })
    if (e.claim === 'aud') return new IdTokenAudienceError(undefined, { cause: e })
    return new IdTokenClaimsError(`claim ${e.claim}: ${e.reason}`, { cause: e })
  }
  if (e instanceof errors.JOSEAlgNotAllowed) return new IdTokenAlgorithmError(undefined, { cause: e })
  if (e instanceof errors.JWSSignatureVerificationFailed) return new IdTokenSignatureError(undefined, { cause: e })
  if (e instanceof errors.JWKSNoMatchingKey || e instanceof errors.JWKSMultipleMatchingKeys) {
    return new IdTokenSignatureError('ID token is signed with a key the issuer does not publish', { cause: e })
  }
  if (e instanceof errors.JWKSTimeout || e instanceof errors.JWKSInvalid) return new OidcJwksError(undefined, { cause: e })
  if (e instanceof errors.JWSInvalid || e instanceof errors.JWTInvalid || e instanceof errors.JOSENotSupported) {
    return new IdTokenMalformedError(undefined, { cause: e })
  }
  if (e instanceof errors.JOSEError) return new IdTokenMalformedError(e.message, { cause: e })
  return new OidcJwksError('could not obtain the issuer keys', { cause: e })
}

// ---------------------------------------------------------------------------------------------
// I/O: discovery, token exchange, and a client bundling them

async function fetchWithTimeout(fetchImpl: FetchLike, url: string, init: RequestInit, timeoutMs: number): Promise<Response> {
  return fetchImpl(url, { ...init, redirect: 'manual', signal: AbortSignal.timeout(timeoutMs) })
}

/** Fetches and validates `<issuer>/.well-known/openid-configuration`. */
export async function discover(
  issuer: string,
  options: { fetch?: FetchLike; timeoutMs?: number } = {},
): Promise<ProviderMetadata> {
  let response: Response
  try {
    response = await fetchWithTimeout(
      options.fetch ?? fetch,
      discoveryUrl(issuer),
      { headers: { accept: 'application/json' } },
      options.timeoutMs ?? 10_000,
    )
  } catch (cause) {
    throw new OidcDiscoveryError(`discovery at ${discoveryUrl(issuer)} failed`, { cause })
  }
  if (response.status !== 200) throw new OidcDiscoveryError(`discovery at ${discoveryUrl(issuer)} answered ${response.status}`)
  let document: unknown
  try {
    document = await response.json()
  } catch (cause) {
    throw new OidcDiscoveryError('discovery document is not JSON', { cause })
  }
  return parseProviderMetadata(issuer, document)
}

/** Exchanges an authorization code at the token endpoint. */
export async function exchangeCode(
  metadata: ProviderMetadata,
  params: { code: string; codeVerifier: string; redirectUri: string; clientId: string; clientSecret: string },
  options: { method?: TokenEndpointAuthMethod; fetch?: FetchLike; timeoutMs?: number } = {},
): Promise<TokenResponse> {
  const { headers, body } = tokenRequest(params, chooseAuthMethod(metadata, options.method))
  let response: Response
  try {
    response = await fetchWithTimeout(
      options.fetch ?? fetch,
      metadata.token_endpoint,
      { method: 'POST', headers, body },
      options.timeoutMs ?? 10_000,
    )
  } catch (cause) {
    throw new OidcTokenExchangeError('token endpoint unreachable', { cause })
  }
  let json: Record<string, unknown>
  try {
    json = (await response.json()) as Record<string, unknown>
  } catch (cause) {
    throw new OidcTokenExchangeError(`token endpoint answered ${response.status} without JSON`, {
      status: response.status,
      cause,
    })
  }
  if (!response.ok) {
    const error = typeof json?.error === 'string' ? json.error : undefined
    const description = typeof json?.error_description === 'string' ? `: ${json.error_description}` : ''
    throw new OidcTokenExchangeError(`token endpoint refused the code (${error ?? response.status}${description})`, {
      status: response.status,
      error,
    })
  }
  if (typeof json?.id_token !== 'string')
    throw new OidcTokenExchangeError('token response has no id_token', { status: response.status })
  if (json.token_type !== undefined && typeof json.token_type === 'string' && json.token_type.toLowerCase() !== 'bearer') {
    // DPoP-bound or other token types are not requested by this client.
    throw new OidcTokenExchangeError(`unexpected token_type ${json.token_type}`, { status: response.status })
  }
  return json as unknown as TokenResponse
}

export type OidcClient = {
  readonly config: Readonly<OidcClientConfig>
  /** Discovery, fetched once and cached (a failure is retried on the next call). */
  metadata(): Promise<ProviderMetadata>
  /** Builds the redirect to the issuer. Store the returned state, nonce and codeVerifier. */
  authorizationRequest(options?: { extra?: Record<string, string> }): Promise<AuthorizationRequest>
  /** The whole callback: state, code exchange, ID token verification. */
  handleCallback(params: URLSearchParams, pending: PendingAuthorization): Promise<CallbackResult>
  verifyIdToken(idToken: string, nonce: string): Promise<IdTokenClaims>
}

export function createOidcClient(config: OidcClientConfig): OidcClient {
  if (!config.clientId || !config.clientSecret) throw new TypeError('clientId and clientSecret are required')
  const algorithms = allowedAlgorithms(config.algorithms)
  const timeoutMs = config.timeoutMs ?? 10_000
  let metadataPromise: Promise<ProviderMetadata> | undefined
  let keys: JWTVerifyGetKey | undefined

  const metadata = (): Promise<ProviderMetadata> => {
    metadataPromise ??= discover(config.issuer, { fetch: config.fetch, timeoutMs }).catch((e) => {
      metadataPromise = undefined
      throw e
    })
    return metadataPromise
  }
  const jwks = async (): Promise<JWTVerifyGetKey> => {
    if (!keys) {
      const md = await metadata()
      const options: Parameters<typeof createRemoteJWKSet>[1] = { timeoutDuration: timeoutMs }
      if (config.fetch) {
        const f = config.fetch
        options[customFetch] = (url, init) => f(url, init as RequestInit)
      }
      keys = createRemoteJWKSet(new URL(md.jwks_uri), options)
    }
    return keys
  }
  const verify = async (idToken: string, nonce: string): Promise<IdTokenClaims> =>
    verifyIdToken(idToken, {
      issuer: (await metadata()).issuer,
      clientId: config.clientId,
      nonce,
      keys: await jwks(),
      algorithms,
      clockToleranceSeconds: config.clockToleranceSeconds,
      replayCache: config.replayCache,
    })

  return {
    config,
    metadata,
    async authorizationRequest(options = {}) {
      return createAuthorizationRequest(await metadata(), config, options)
    },
    async handleCallback(params, pending) {
      const md = await metadata()
      const { code } = parseCallbackParams(params, {
        state: pending.state,
        issuer: md.issuer,
        requireIss: md.authorization_response_iss_parameter_supported,
      })
      const tokens = await exchangeCode(
        md,
        {
          code,
          codeVerifier: pending.codeVerifier,
          redirectUri: config.redirectUri,
          clientId: config.clientId,
          clientSecret: config.clientSecret,
        },
        { method: config.tokenEndpointAuthMethod, fetch: config.fetch, timeoutMs },
      )
      const claims = await verify(tokens.id_token, pending.nonce)
      return { claims, idToken: tokens.id_token, tokens }
    },
    verifyIdToken: verify,
  }
}
