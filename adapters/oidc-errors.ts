import * as oidc from 'openid-client'

/*
 * The relying party's refusals, one class per reason (commands/auth answers 503 to the issuer being
 * unavailable, 401 to the rest), and openid-client's errors translated into them.
 */
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
export class OidcAuthorizationError extends refusal('authorization_denied', 'authorization failed') {
  readonly error: string
  readonly errorDescription: string | undefined
  constructor(error: string, errorDescription?: string) {
    super(`authorization failed: ${error}${errorDescription ? ` (${errorDescription})` : ''}`)
    this.error = error
    this.errorDescription = errorDescription
  }
}
/** The token endpoint refused the code or answered something unusable; its status and OAuth error when it said so. */
export class OidcTokenExchangeError extends refusal('token_exchange_failed', 'token exchange failed') {
  readonly status?: number
  readonly error?: string
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
    return Object.assign(new OidcTokenExchangeError(`the issuer answered ${e.status} (${error})`, { cause: e }), {
      status: e.status,
      error,
    })
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
  return as(OidcTokenExchangeError)
}
/** For `.catch`: rethrows what openid-client threw as a refusal. */
export const rethrow = (e: unknown): never => {
  throw refusalOf(e)
}
