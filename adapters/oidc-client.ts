import {
  createRemoteJWKSet,
  decodeProtectedHeader,
  errors,
  type JWTPayload,
  type JWTVerifyGetKey,
  customFetch as joseFetch,
  jwtVerify,
} from 'jose'
import * as oidc from 'openid-client'
import type { ReplayCache } from './replay-cache.ts'

/**
 * OpenID Connect relying party: a thin adapter over `openid-client` (discovery, the authorization
 * code flow with PKCE S256, state and nonce, client authentication, the code exchange, ID token
 * validation including its signature, userinfo). What it adds: the nonce is accepted once (replay
 * cache), only asymmetric algorithms, and every refusal as a typed OidcError.
 *
 * Stateless by design: `authorizationRequest` returns the state, nonce and code verifier, and the
 * caller keeps them (signed, http-only, short-lived cookie) until the callback, where it hands them
 * back to `handleCallback`.
 */

/** Asymmetric algorithms only: never `none`, never HS* (a public key must not become an HMAC secret). */
export const ID_TOKEN_ALGORITHMS = ['RS256', 'ES256', 'PS256', 'EdDSA'] as const
export type IdTokenAlgorithm = (typeof ID_TOKEN_ALGORITHMS)[number]
export const MAX_CLOCK_TOLERANCE_SECONDS = 60

export type FetchLike = (input: string | URL, init?: RequestInit) => Promise<Response>

export type ProviderMetadata = Readonly<oidc.ServerMetadata> & {
  readonly authorization_endpoint: string
  readonly token_endpoint: string
  readonly jwks_uri: string
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
  /**
   * Plain http to an http issuer that is not on a loopback address (the dev IdP behind a LAN
   * PUBLIC_URL). An http issuer on a loopback address is always allowed; https is otherwise required.
   */
  allowInsecureRequests?: boolean
  fetch?: FetchLike
  /** Per-request timeout for discovery, token, userinfo and JWKS requests. Default 10 s. */
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

export type TokenResponse = oidc.TokenEndpointResponse & { readonly id_token: string }

export type CallbackResult = {
  claims: IdTokenClaims
  idToken: string
  tokens: TokenResponse
}

export type UserInfo = oidc.UserInfoResponse

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
  constructor(code: OidcErrorCode, message: string, options?: ErrorOptions) {
    super(message, options)
    this.code = code
  }
}
/** The base of a refusal with a code and a default message; an instance is named after its class. */
const refusal = (code: OidcErrorCode, defaultMessage: string) =>
  class extends OidcError {
    constructor(message = defaultMessage, options?: ErrorOptions) {
      super(code, message, options)
      this.name = new.target.name
    }
  }
/** Discovery document unreachable, invalid, or for another issuer. */
export class OidcDiscoveryError extends refusal('discovery_failed', 'discovery failed') {}
/** The callback's `state` is missing or differs from the stored one (CSRF, or a stale tab). */
export class OidcStateMismatchError extends refusal('state_mismatch', 'state does not match') {}
/** RFC 9207: the authorization response names another issuer (mix-up attack). */
export class OidcIssuerMismatchError extends refusal(
  'issuer_mismatch_in_response',
  'authorization response comes from another issuer',
) {}
/** The issuer's JWKS could not be fetched (not a verdict on the token). */
export class OidcJwksError extends refusal('jwks_unavailable', 'JWKS unavailable') {}
export class IdTokenMalformedError extends refusal('id_token_malformed', 'ID token is malformed') {}
/** `alg` is none, HS*, or otherwise outside the allow-list. */
export class IdTokenAlgorithmError extends refusal('id_token_algorithm', 'ID token algorithm is not allowed') {}
/** Signed by a key the issuer does not publish, or the signature does not verify (forged). */
export class IdTokenSignatureError extends refusal('id_token_signature', 'ID token signature is invalid') {}
export class IdTokenExpiredError extends refusal('id_token_expired', 'ID token has expired') {}
export class IdTokenIssuerError extends refusal('id_token_issuer', 'ID token issuer is wrong') {}
/** `aud` does not contain our client id, or `azp` names another client. */
export class IdTokenAudienceError extends refusal('id_token_audience', 'ID token audience is wrong') {}
export class IdTokenNonceError extends refusal('id_token_nonce', 'ID token nonce does not match') {}
/** The nonce was already used by an accepted ID token. */
export class IdTokenReplayedError extends refusal('id_token_replayed', 'ID token nonce was already used') {}
/** Any other claim check (nbf/iat in the future, missing sub, …). */
export class IdTokenClaimsError extends refusal('id_token_claims', 'ID token claims are invalid') {}
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

// ---------------------------------------------------------------------------------------------
// checks the libraries leave to us

function allowedAlgorithms(requested?: readonly string[]): IdTokenAlgorithm[] {
  const list = requested ?? ID_TOKEN_ALGORITHMS
  for (const alg of list) {
    if (!ID_TOKEN_ALGORITHMS.includes(alg as IdTokenAlgorithm)) throw new TypeError(`ID token algorithm ${alg} is not allowed`)
  }
  if (list.length === 0) throw new TypeError('no ID token algorithm allowed')
  return [...list] as IdTokenAlgorithm[]
}

/** Throws IdTokenMalformedError or IdTokenAlgorithmError unless the token's `alg` is allowed. */
function checkAlgorithm(idToken: string, algorithms: readonly IdTokenAlgorithm[]): void {
  if (typeof idToken !== 'string' || idToken.split('.').length !== 3)
    throw new IdTokenMalformedError('ID token is not a compact JWS')
  let alg: unknown
  try {
    alg = decodeProtectedHeader(idToken).alg
  } catch (cause) {
    throw new IdTokenMalformedError('ID token header is not valid', { cause })
  }
  if (typeof alg !== 'string' || !algorithms.includes(alg as IdTokenAlgorithm)) {
    throw new IdTokenAlgorithmError(`ID token algorithm ${String(alg)} is not allowed`)
  }
}

const clampTolerance = (seconds: number | undefined): number => Math.min(Math.max(seconds ?? 30, 0), MAX_CLOCK_TOLERANCE_SECONDS)

type ClaimChecks = {
  issuer: string
  clientId: string
  nonce: string
  tolerance: number
  now: Date
  replayCache?: ReplayCache
}

/** After the signature, issuer, audience and expiry: sub, iat, azp, nonce, and the nonce used once. */
async function checkClaims(claims: IdTokenClaims, checks: ClaimChecks): Promise<IdTokenClaims> {
  if (typeof claims.sub !== 'string' || claims.sub.length === 0 || claims.sub.length > 255) {
    throw new IdTokenClaimsError('sub must be a non-empty string of at most 255 characters')
  }
  if (typeof claims.iat !== 'number' || claims.iat > checks.now.getTime() / 1000 + checks.tolerance) {
    throw new IdTokenClaimsError('iat is in the future')
  }
  const aud = Array.isArray(claims.aud) ? claims.aud : [claims.aud]
  if (claims.azp !== undefined ? claims.azp !== checks.clientId : aud.length > 1) {
    throw new IdTokenAudienceError('azp must name this client when the token has several audiences')
  }
  if (typeof claims.nonce !== 'string' || claims.nonce !== checks.nonce) throw new IdTokenNonceError()
  if (checks.replayCache) {
    const expiresAtMs = (claims.exp + checks.tolerance) * 1000
    const fresh = await checks.replayCache.claim(`oidc-nonce:${checks.issuer}:${claims.nonce}`, expiresAtMs)
    if (!fresh) throw new IdTokenReplayedError()
  }
  return claims
}

// ---------------------------------------------------------------------------------------------
// an ID token on its own (outside the callback): jose against the issuer's keys

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
  // Checked before any key lookup: `none` and HS* never reach the verifier.
  checkAlgorithm(idToken, algorithms)
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
    throw fromJose(e)
  }
  return checkClaims(payload as IdTokenClaims, { ...options, tolerance, now })
}

function fromJose(e: unknown): OidcError {
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
  if (e instanceof errors.JOSEError) return new IdTokenMalformedError(e.message, { cause: e })
  return new OidcJwksError('could not obtain the issuer keys', { cause: e })
}

// ---------------------------------------------------------------------------------------------
// openid-client's errors as typed refusals

type Detail = {
  claim?: unknown
  alg?: unknown
  header?: unknown
  signature?: unknown
  claims?: unknown
  parameters?: unknown
  body?: unknown
}

/**
 * openid-client throws ClientError (code `OAUTH_*`, cause the failed check with its details),
 * ResponseBodyError (the token endpoint's OAuth error) and AuthorizationResponseError (the
 * callback's `error`). Errors this adapter raised itself (from its fetch) come back as causes.
 */
function fromLibrary(e: unknown): unknown {
  for (let c: unknown = e; c instanceof Error; c = c.cause) if (c instanceof OidcError) return c
  if (e instanceof oidc.AuthorizationResponseError) return new OidcAuthorizationError(e.error, e.error_description)
  if (e instanceof oidc.ResponseBodyError) {
    const description = e.error_description ? `: ${e.error_description}` : ''
    return new OidcTokenExchangeError(`token endpoint refused the code (${e.error}${description})`, {
      status: e.status,
      error: e.error,
      cause: e,
    })
  }
  if (e instanceof oidc.WWWAuthenticateChallengeError) {
    const error = e.cause.find((challenge) => challenge.parameters.error)?.parameters.error
    return new OidcTokenExchangeError(`${e.status} from the issuer (${error ?? e.cause[0]?.scheme})`, {
      status: e.status,
      error,
      cause: e,
    })
  }
  if (!(e instanceof oidc.ClientError)) return e // a TypeError is a bug here, not a refusal
  const failed = e.cause instanceof Error ? e.cause : e
  const detail: Detail = typeof failed.cause === 'object' && failed.cause !== null ? (failed.cause as Detail) : {}
  const message = failed.message
  const options = { cause: e }
  switch (e.code) {
    case 'OAUTH_JWT_TIMESTAMP_CHECK_FAILED':
      return detail.claim === 'exp' ? new IdTokenExpiredError(undefined, options) : new IdTokenClaimsError(message, options)
    case 'OAUTH_JWT_CLAIM_COMPARISON_FAILED':
      if (detail.claim === 'iss') return new IdTokenIssuerError(undefined, options)
      if (detail.claim === 'aud' || detail.claim === 'azp') return new IdTokenAudienceError(undefined, options)
      if (detail.claim === 'nonce') return new IdTokenNonceError(undefined, options)
      return new IdTokenClaimsError(message, options)
    case 'OAUTH_KEY_SELECTION_FAILED':
      return new IdTokenSignatureError('ID token is signed with a key the issuer does not publish', options)
    case 'OAUTH_UNSUPPORTED_OPERATION':
      if (detail.alg !== undefined)
        return new IdTokenAlgorithmError(`ID token algorithm ${String(detail.alg)} is not allowed`, options)
      return new OidcTokenExchangeError(message, options)
    case 'OAUTH_PARSE_ERROR':
      return new IdTokenMalformedError(message, options)
    case 'OAUTH_INVALID_RESPONSE':
      if (/authorization code/.test(message))
        return new OidcAuthorizationError('invalid_request', 'no code in the authorization response')
      if (detail.parameters !== undefined) {
        return /"state"/.test(message)
          ? new OidcStateMismatchError(undefined, options)
          : new OidcIssuerMismatchError(undefined, options)
      }
      if (detail.body !== undefined) return new OidcTokenExchangeError(message, options)
      if (detail.signature !== undefined) return new IdTokenSignatureError(undefined, options)
      if (detail.header !== undefined) return new IdTokenAlgorithmError(undefined, options)
      if (detail.claims !== undefined)
        return /"nonce"/.test(message) ? new IdTokenNonceError(message, options) : new IdTokenClaimsError(message, options)
      return new IdTokenMalformedError(message, options)
    default:
      return new OidcTokenExchangeError(message, options)
  }
}

// ---------------------------------------------------------------------------------------------
// the client

export type OidcClient = {
  readonly config: Readonly<OidcClientConfig>
  /** Discovery, fetched once and cached (a failure is retried on the next call). */
  metadata(): Promise<ProviderMetadata>
  /** Builds the redirect to the issuer. Store the returned state, nonce and codeVerifier. */
  authorizationRequest(options?: { extra?: Record<string, string> }): Promise<AuthorizationRequest>
  /** The whole callback: state, code exchange, ID token verification, the nonce used once. */
  handleCallback(params: URLSearchParams, pending: PendingAuthorization): Promise<CallbackResult>
  verifyIdToken(idToken: string, nonce: string): Promise<IdTokenClaims>
  /** The userinfo of the access token's subject (which must be `subject`); null when the issuer has no userinfo endpoint. */
  userinfo(accessToken: string, subject: string): Promise<UserInfo | null>
}

const isLoopback = ({ hostname }: URL): boolean =>
  hostname === 'localhost' || hostname.endsWith('.localhost') || hostname === '[::1]' || /^127(\.\d{1,3}){3}$/.test(hostname)

function authMethod(metadata: oidc.ServerMetadata, preferred?: TokenEndpointAuthMethod): TokenEndpointAuthMethod {
  if (preferred) return preferred
  const supported = metadata.token_endpoint_auth_methods_supported
  if (!supported || supported.includes('client_secret_basic')) return 'client_secret_basic'
  if (supported.includes('client_secret_post')) return 'client_secret_post'
  throw new OidcDiscoveryError('issuer supports neither client_secret_basic nor client_secret_post')
}

export function createOidcClient(config: OidcClientConfig): OidcClient {
  if (!config.clientId || !config.clientSecret) throw new TypeError('clientId and clientSecret are required')
  const scopes = config.scopes ?? ['openid', 'email']
  if (!scopes.includes('openid')) throw new TypeError('scopes must include openid')
  const algorithms = allowedAlgorithms(config.algorithms)
  const tolerance = clampTolerance(config.clockToleranceSeconds)
  const timeoutMs = config.timeoutMs ?? 10_000
  const fetchImpl = config.fetch ?? fetch
  const issuerUrl = new URL(config.issuer)
  const insecure = issuerUrl.protocol === 'http:' && (isLoopback(issuerUrl) || config.allowInsecureRequests === true)

  let jwksUri: string | undefined
  let tokenEndpoint: string | undefined
  /** openid-client's requests, failures named by endpoint (they come back as a ClientError's cause). */
  const send: oidc.CustomFetch = async (url, init) => {
    let response: Response
    try {
      response = await fetchImpl(url, init as RequestInit)
    } catch (cause) {
      if (url === jwksUri) throw new OidcJwksError(`JWKS at ${url} unreachable`, { cause })
      if (url === tokenEndpoint) throw new OidcTokenExchangeError('token endpoint unreachable', { cause })
      if (tokenEndpoint === undefined) throw new OidcDiscoveryError(`${url} unreachable`, { cause })
      throw new OidcTokenExchangeError(`${url} unreachable`, { cause })
    }
    if (url === jwksUri && !response.ok) throw new OidcJwksError(`JWKS at ${url} answered ${response.status}`)
    return response
  }
  const authenticate: oidc.ClientAuth = (as, client, body, headers) =>
    // client_secret_basic form-urlencodes id and secret (RFC 6749 §2.3.1), `-_.!~*'()` included.
    (authMethod(as, config.tokenEndpointAuthMethod) === 'client_secret_post' ? oidc.ClientSecretPost : oidc.ClientSecretBasic)(
      config.clientSecret,
    )(as, client, body, headers)

  let configuration: Promise<{ server: oidc.Configuration; metadata: ProviderMetadata }> | undefined
  const discover = async () => {
    let server: oidc.Configuration
    try {
      server = await oidc.discovery(
        issuerUrl,
        config.clientId,
        { client_secret: config.clientSecret, [oidc.clockTolerance]: tolerance },
        authenticate,
        {
          [oidc.customFetch]: send,
          timeout: Math.ceil(timeoutMs / 1000),
          execute: [oidc.enableNonRepudiationChecks, ...(insecure ? [oidc.allowInsecureRequests] : [])],
        },
      )
    } catch (cause) {
      throw new OidcDiscoveryError(`discovery of ${config.issuer} failed: ${(cause as Error).message}`, { cause })
    }
    const metadata = server.serverMetadata()
    for (const field of ['authorization_endpoint', 'token_endpoint', 'jwks_uri'] as const) {
      const url = URL.parse(metadata[field] ?? '')
      if (!url || (url.protocol !== 'https:' && !(insecure && url.protocol === 'http:'))) {
        throw new OidcDiscoveryError(`${field} must be an https URL`)
      }
    }
    if (metadata.code_challenge_methods_supported && !metadata.supportsPKCE()) {
      throw new OidcDiscoveryError('issuer does not support PKCE S256')
    }
    authMethod(metadata, config.tokenEndpointAuthMethod)
    jwksUri = new URL(metadata.jwks_uri!).href
    tokenEndpoint = new URL(metadata.token_endpoint!).href
    return { server, metadata: metadata as ProviderMetadata }
  }
  const configured = () => {
    configuration ??= discover().catch((e) => {
      configuration = undefined
      throw e
    })
    return configuration
  }

  let keys: JWTVerifyGetKey | undefined
  const verify = async (idToken: string, nonce: string): Promise<IdTokenClaims> => {
    const { metadata } = await configured()
    keys ??= createRemoteJWKSet(new URL(metadata.jwks_uri), {
      timeoutDuration: timeoutMs,
      [joseFetch]: (url, init) => fetchImpl(url, init as RequestInit),
    })
    const { issuer } = metadata
    return verifyIdToken(idToken, {
      issuer,
      clientId: config.clientId,
      nonce,
      keys,
      algorithms,
      clockToleranceSeconds: tolerance,
      replayCache: config.replayCache,
    })
  }

  return {
    config,
    metadata: async () => (await configured()).metadata,
    async authorizationRequest(options = {}) {
      const { server } = await configured()
      const pending = { state: oidc.randomState(), nonce: oidc.randomNonce(), codeVerifier: oidc.randomPKCECodeVerifier() }
      const url = oidc.buildAuthorizationUrl(server, {
        ...options.extra,
        response_type: 'code',
        client_id: config.clientId,
        redirect_uri: config.redirectUri,
        scope: scopes.join(' '),
        state: pending.state,
        nonce: pending.nonce,
        code_challenge: await oidc.calculatePKCECodeChallenge(pending.codeVerifier),
        code_challenge_method: 'S256',
      })
      return { url: url.href, ...pending }
    },
    async handleCallback(params, pending) {
      const { server, metadata } = await configured()
      // The redirect as our redirect URI received it: openid-client sends its query-less form as redirect_uri.
      const callbackUrl = new URL(config.redirectUri)
      for (const [k, v] of params) callbackUrl.searchParams.append(k, v)
      let tokens: Awaited<ReturnType<typeof oidc.authorizationCodeGrant>>
      try {
        tokens = await oidc.authorizationCodeGrant(server, callbackUrl, {
          expectedState: pending.state,
          expectedNonce: pending.nonce,
          pkceCodeVerifier: pending.codeVerifier,
        })
      } catch (e) {
        throw fromLibrary(e)
      }
      // openid-client has checked the signature, issuer, audience, azp, expiry and nonce.
      const idToken = tokens.id_token!
      checkAlgorithm(idToken, algorithms)
      const claims = await checkClaims(tokens.claims() as IdTokenClaims, {
        issuer: metadata.issuer,
        clientId: config.clientId,
        nonce: pending.nonce,
        tolerance,
        now: new Date(),
        replayCache: config.replayCache,
      })
      return { claims, idToken, tokens: tokens as TokenResponse }
    },
    verifyIdToken: verify,
    async userinfo(accessToken, subject) {
      const { server, metadata } = await configured()
      if (!metadata.userinfo_endpoint) return null
      try {
        return await oidc.fetchUserInfo(server, accessToken, subject)
      } catch (e) {
        throw fromLibrary(e)
      }
    },
  }
}
