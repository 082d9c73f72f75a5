import { decodeProtectedHeader } from 'jose'
import * as oidc from 'openid-client'
import {
  IdTokenAlgorithmError,
  IdTokenClaimsError,
  IdTokenReplayedError,
  OidcDiscoveryError,
  OidcJwksError,
  OidcTokenExchangeError,
  rethrow,
} from './oidc-errors.ts'
import type { ReplayCache } from './replay-cache.ts'

export * from './oidc-errors.ts'

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

export type OidcClient = {
  readonly config: Readonly<OidcClientConfig>
  /** Discovery, fetched once and cached (a failure is retried on the next call). */
  metadata(): Promise<ProviderMetadata>
  /** Builds the redirect to the issuer. Store the returned state, nonce and codeVerifier. */
  authorizationRequest(options?: { extra?: Record<string, string> }): Promise<AuthorizationRequest>
  /** The whole callback: state, code exchange, ID token verification, the nonce used once. */
  handleCallback(params: URLSearchParams, pending: PendingAuthorization): Promise<CallbackResult>
  /** An ID token on its own, checked as in the callback (signature against the JWKS, claims, the nonce used once). */
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
  const requests = { timeout: config.timeout ?? 10, execute: insecure ? [oidc.allowInsecureRequests] : [] }

  let jwksUri: string | undefined
  /** A JWKS that does not answer makes the issuer unavailable (503), not the token bad (401). */
  const send: oidc.CustomFetch = async (url, init) => {
    const response = await fetchImpl(url, init as RequestInit).catch((cause: unknown) => {
      throw new (url === jwksUri ? OidcJwksError : OidcTokenExchangeError)(`${url} unreachable`, { cause })
    })
    if (url === jwksUri && !response.ok) throw new OidcJwksError(`JWKS at ${url} answered ${response.status}`)
    return response
  }

  const discover = async () => {
    let metadata: ReturnType<oidc.Configuration['serverMetadata']>
    try {
      const discovered = await oidc.discovery(issuerUrl, config.clientId, undefined, undefined, {
        ...requests,
        [oidc.customFetch]: send,
      })
      metadata = discovered.serverMetadata()
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
      configuration.timeout = requests.timeout
      for (const extend of [...requests.execute, oidc.enableNonRepudiationChecks, ...more]) extend(configuration)
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
