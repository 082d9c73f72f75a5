import { decodeProtectedHeader } from 'jose'
import * as oidc from 'openid-client'
import type { ReplayCache } from './replay-cache.ts'

/**
 * OpenID Connect relying party over `openid-client`, which does discovery, the authorization code
 * flow (PKCE S256, state, nonce, RFC 9207 `iss`), client authentication, the code exchange, ID token
 * validation with its signature against the issuer's JWKS, userinfo, https-only and timeouts. What
 * this adds: a narrower list of asymmetric algorithms, the nonce accepted once (replay cache), and
 * every refusal as a typed OidcError.
 *
 * Stateless: `authorizationRequest` returns the state, nonce and code verifier; the caller keeps them
 * (signed, http-only, short-lived cookie) and hands them back to `handleCallback`.
 */

/** Asymmetric only: never `none`, never HS* (a public key must not become an HMAC secret). */
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
  /** Plain http to an http issuer off loopback (the dev IdP behind a LAN PUBLIC_URL); loopback is always allowed. */
  allowInsecureRequests?: boolean
  fetch?: FetchLike
  /** openid-client's per-request timeout (discovery, token, userinfo, JWKS), in seconds. Default 10. */
  timeout?: number
}

/** What the caller stores between login and callback. */
export type PendingAuthorization = { state: string; nonce: string; codeVerifier: string }
export type AuthorizationRequest = PendingAuthorization & { url: string }
export type IdTokenClaims = oidc.IDToken & { email?: string; email_verified?: boolean; name?: string }
export type TokenResponse = oidc.TokenEndpointResponse & { readonly id_token: string }
export type CallbackResult = { claims: IdTokenClaims; idToken: string; tokens: TokenResponse }
export type UserInfo = oidc.UserInfoResponse

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
type Refusal = new (message?: string, options?: ErrorOptions) => OidcError
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
export class OidcIssuerMismatchError extends refusal('issuer_mismatch_in_response', 'response from another issuer') {}
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

/** openid-client names the failed JWT claim in its error's details. */
const byClaim: Record<string, Refusal> = {
  exp: IdTokenExpiredError,
  iss: IdTokenIssuerError,
  aud: IdTokenAudienceError,
  azp: IdTokenAudienceError,
  nonce: IdTokenNonceError,
}

/**
 * openid-client's errors as typed refusals: ClientError (code `OAUTH_*`, its cause the failed check
 * with details), ResponseBodyError and WWWAuthenticateChallengeError (the issuer's OAuth error),
 * AuthorizationResponseError (the callback's `error`). Our own fetch's refusals come back as causes.
 */
function refusalOf(e: unknown): unknown {
  for (let c: unknown = e; c instanceof Error; c = c.cause) if (c instanceof OidcError) return c
  if (e instanceof oidc.AuthorizationResponseError) return new OidcAuthorizationError(e.error, e.error_description)
  if (e instanceof oidc.ResponseBodyError || e instanceof oidc.WWWAuthenticateChallengeError) {
    const error = e instanceof oidc.ResponseBodyError ? e.error : e.cause.find((c) => c.parameters.error)?.parameters.error
    return new OidcTokenExchangeError(`the issuer answered ${e.status} (${error})`, { status: e.status, error, cause: e })
  }
  if (!(e instanceof oidc.ClientError)) return e // a TypeError is a bug here, not a refusal
  const { message, cause } = e.cause instanceof Error ? e.cause : e
  const detail = (typeof cause === 'object' && cause !== null ? cause : {}) as Record<string, unknown>
  const as = (Refused: Refusal) => new Refused(message, { cause: e })
  if (typeof detail.claim === 'string') return as(byClaim[detail.claim] ?? IdTokenClaimsError)
  if (e.code === 'OAUTH_KEY_SELECTION_FAILED' || detail.signature) return as(IdTokenSignatureError)
  if (detail.alg || detail.header) return as(IdTokenAlgorithmError)
  if (detail.parameters) return as(/"state"/.test(message) ? OidcStateMismatchError : OidcIssuerMismatchError)
  if (detail.claims) return as(/"nonce"/.test(message) ? IdTokenNonceError : IdTokenClaimsError)
  if (/authorization code/.test(message)) return new OidcAuthorizationError('invalid_request', message)
  if (e.code === 'OAUTH_PARSE_ERROR' || (e.code === 'OAUTH_INVALID_RESPONSE' && !detail.body)) return as(IdTokenMalformedError)
  return new OidcTokenExchangeError(message, { cause: e })
}
const rethrow = (e: unknown): never => {
  throw refusalOf(e)
}

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
  const algorithms: readonly string[] = config.algorithms ?? ID_TOKEN_ALGORITHMS
  if (!algorithms.length || !algorithms.every((alg) => (ID_TOKEN_ALGORITHMS as readonly string[]).includes(alg)))
    throw new TypeError(`ID token algorithms [${algorithms}] not allowed: a subset of ${ID_TOKEN_ALGORITHMS} is`)
  const tolerance = Math.min(Math.max(config.clockToleranceSeconds ?? 30, 0), MAX_CLOCK_TOLERANCE_SECONDS)
  const fetchImpl = config.fetch ?? fetch
  const issuerUrl = new URL(config.issuer)
  const insecure = issuerUrl.protocol === 'http:' && (isLoopback(issuerUrl) || config.allowInsecureRequests === true)
  const extensions = insecure ? [oidc.allowInsecureRequests] : []
  const timeout = config.timeout ?? 10

  let jwksUri: string | undefined
  /** A JWKS that does not answer makes the issuer unavailable (503), not the token bad (401). */
  const send: oidc.CustomFetch = async (url, init) => {
    const response = await fetchImpl(url, init as RequestInit).catch((cause: unknown) => {
      throw url === jwksUri
        ? new OidcJwksError(`JWKS at ${url} unreachable`, { cause })
        : new OidcTokenExchangeError(`${url} unreachable`, { cause })
    })
    if (url === jwksUri && !response.ok) throw new OidcJwksError(`JWKS at ${url} answered ${response.status}`)
    return response
  }

  const discover = async () => {
    let metadata: ReturnType<oidc.Configuration['serverMetadata']>
    try {
      metadata = (
        await oidc.discovery(issuerUrl, config.clientId, undefined, undefined, {
          [oidc.customFetch]: send,
          timeout,
          execute: extensions,
        })
      ).serverMetadata()
    } catch (cause) {
      throw new OidcDiscoveryError(`discovery of ${config.issuer} failed: ${(cause as Error).message}`, { cause })
    }
    // openid-client checks these only when it uses them: refusing here makes a misconfigured issuer
    // unavailable at /auth/login rather than a failed sign-in after the person has logged in.
    const { authorization_endpoint, token_endpoint, jwks_uri } = metadata
    for (const endpoint of [authorization_endpoint, token_endpoint, jwks_uri]) {
      const protocol = URL.parse(endpoint ?? '')?.protocol
      if (protocol !== 'https:' && !(insecure && protocol === 'http:'))
        throw new OidcDiscoveryError(`${endpoint} is not an https URL`)
    }
    if (metadata.code_challenge_methods_supported && !metadata.supportsPKCE())
      throw new OidcDiscoveryError('issuer does not support PKCE S256')
    const authenticate =
      authMethod(metadata, config.tokenEndpointAuthMethod) === 'client_secret_post'
        ? oidc.ClientSecretPost
        : oidc.ClientSecretBasic
    jwksUri = new URL(jwks_uri!).href
    /** Signatures are checked against the JWKS (non-repudiation), even for an ID token straight from the token endpoint. */
    const configure = (...more: ((c: oidc.Configuration) => void)[]) => {
      const client = { client_secret: config.clientSecret, [oidc.clockTolerance]: tolerance }
      const configuration = new oidc.Configuration(metadata, config.clientId, client, authenticate(config.clientSecret))
      configuration[oidc.customFetch] = send
      configuration.timeout = timeout
      for (const extend of [...extensions, oidc.enableNonRepudiationChecks, ...more]) extend(configuration)
      return configuration
    }
    // An ID token on its own is what openid-client validates as an implicit (response_type=id_token) response.
    return { code: configure(), idToken: configure(oidc.useIdTokenResponseType), metadata: metadata as ProviderMetadata }
  }
  let configuration: ReturnType<typeof discover> | undefined
  const configured = () => {
    configuration ??= discover().catch((e) => {
      configuration = undefined
      throw e
    })
    return configuration
  }

  /** After openid-client's checks: our algorithms, iat not in the future, sub within 255 characters, the nonce used once. */
  const accept = async (idToken: string, claims: oidc.IDToken): Promise<IdTokenClaims> => {
    const { alg } = decodeProtectedHeader(idToken)
    if (!algorithms.includes(alg!)) throw new IdTokenAlgorithmError(`ID token algorithm ${alg} is not allowed`)
    if (claims.iat > Date.now() / 1000 + tolerance) throw new IdTokenClaimsError('iat is in the future')
    if (claims.sub.length > 255) throw new IdTokenClaimsError('sub is longer than 255 characters')
    const fresh = await config.replayCache?.claim(`oidc-nonce:${claims.iss}:${claims.nonce}`, (claims.exp + tolerance) * 1000)
    if (fresh === false) throw new IdTokenReplayedError()
    return claims as IdTokenClaims
  }

  return {
    config,
    metadata: async () => (await configured()).metadata,
    async authorizationRequest(options = {}) {
      const { code } = await configured()
      const pending = { state: oidc.randomState(), nonce: oidc.randomNonce(), codeVerifier: oidc.randomPKCECodeVerifier() }
      const url = oidc.buildAuthorizationUrl(code, {
        ...options.extra,
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
      const { code } = await configured()
      // The redirect as our redirect URI received it: openid-client sends its query-less form as redirect_uri.
      const callbackUrl = new URL(config.redirectUri)
      for (const [k, v] of params) callbackUrl.searchParams.append(k, v)
      const checks = { expectedState: pending.state, expectedNonce: pending.nonce, pkceCodeVerifier: pending.codeVerifier }
      const tokens = await oidc.authorizationCodeGrant(code, callbackUrl, checks).catch(rethrow)
      const idToken = tokens.id_token!
      return { claims: await accept(idToken, tokens.claims()!), idToken, tokens: tokens as TokenResponse }
    },
    async verifyIdToken(idToken, nonce) {
      const response = new URL(config.redirectUri)
      response.hash = new URLSearchParams({ id_token: idToken }).toString()
      const claims = await oidc.implicitAuthentication((await configured()).idToken, response, nonce).catch(rethrow)
      return accept(idToken, claims)
    },
    async userinfo(accessToken, subject) {
      const { code, metadata } = await configured()
      if (!metadata.userinfo_endpoint) return null
      return oidc.fetchUserInfo(code, accessToken, subject).catch(rethrow)
    },
  }
}
