import { randomUUID } from 'node:crypto'
import {
  type CryptoKey,
  calculateJwkThumbprint,
  decodeProtectedHeader,
  errors,
  exportJWK,
  generateKeyPair,
  importJWK,
  type JWK,
  jwtVerify,
  SignJWT,
} from 'jose'
import { loadOrCreateJsonFile, readJsonFile, writeJsonFile } from './json-file-store.ts'

/**
 * Short-lived agent access tokens (JWT, RFC 9068 `typ: at+jwt`) signed with asymmetric keys that
 * carry a `kid`. A key set holds the current key (signs) and previous keys (still verify), so a
 * rotation never invalidates tokens already issued: keep a previous key at least as long as the
 * token lifetime.
 *
 * Claims: iss, aud, sub = agent id, tenant_id, iat, exp, jti.
 */

export const AGENT_TOKEN_ALGORITHMS = ['ES256', 'EdDSA'] as const
export type AgentTokenAlgorithm = (typeof AGENT_TOKEN_ALGORITHMS)[number]
export const AGENT_TOKEN_TYPE = 'at+jwt'
export const DEFAULT_AGENT_TOKEN_TTL_SECONDS = 15 * 60

export type AgentSigningKey = {
  kid: string
  alg: AgentTokenAlgorithm
  createdAt: string
  privateJwk: JWK
  publicJwk: JWK
}

export type AgentKeySet = {
  current: AgentSigningKey
  /** Newest first. Verify only. */
  previous: AgentSigningKey[]
}

export type AgentTokenClaims = {
  agentId: string
  tenantId: string
  jti: string
  issuer: string
  issuedAt: Date
  expiresAt: Date
}

// ---------------------------------------------------------------------------------------------
// errors

export type AgentTokenRefusal = 'malformed' | 'unknown_key' | 'algorithm' | 'signature' | 'expired' | 'claims'

export class AgentTokenError extends Error {
  override name = 'AgentTokenError'
  readonly reason: AgentTokenRefusal
  constructor(reason: AgentTokenRefusal, message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.reason = reason
  }
}
export class AgentTokenMalformedError extends AgentTokenError {
  override name = 'AgentTokenMalformedError'
  constructor(message = 'agent token is malformed', options?: { cause?: unknown }) {
    super('malformed', message, options)
  }
}
export class AgentTokenUnknownKeyError extends AgentTokenError {
  override name = 'AgentTokenUnknownKeyError'
  constructor(message = 'agent token is signed with an unknown key', options?: { cause?: unknown }) {
    super('unknown_key', message, options)
  }
}
export class AgentTokenAlgorithmError extends AgentTokenError {
  override name = 'AgentTokenAlgorithmError'
  constructor(message = 'agent token algorithm is not allowed', options?: { cause?: unknown }) {
    super('algorithm', message, options)
  }
}
export class AgentTokenSignatureError extends AgentTokenError {
  override name = 'AgentTokenSignatureError'
  constructor(message = 'agent token signature is invalid', options?: { cause?: unknown }) {
    super('signature', message, options)
  }
}
export class AgentTokenExpiredError extends AgentTokenError {
  override name = 'AgentTokenExpiredError'
  constructor(message = 'agent token has expired', options?: { cause?: unknown }) {
    super('expired', message, options)
  }
}
export class AgentTokenClaimsError extends AgentTokenError {
  override name = 'AgentTokenClaimsError'
  constructor(message = 'agent token claims are invalid', options?: { cause?: unknown }) {
    super('claims', message, options)
  }
}

// ---------------------------------------------------------------------------------------------
// keys (pure apart from key generation)

const isAlgorithm = (v: unknown): v is AgentTokenAlgorithm => AGENT_TOKEN_ALGORITHMS.includes(v as AgentTokenAlgorithm)

/** A new signing key; its kid is the RFC 7638 thumbprint of the public key. */
export async function generateAgentSigningKey(
  alg: AgentTokenAlgorithm = 'ES256',
  now: Date = new Date(),
): Promise<AgentSigningKey> {
  const { publicKey, privateKey } = await generateKeyPair(alg, { extractable: true })
  const publicJwk = await exportJWK(publicKey)
  const kid = await calculateJwkThumbprint(publicJwk)
  const privateJwk = await exportJWK(privateKey)
  const meta = { kid, alg, use: 'sig' }
  return { kid, alg, createdAt: now.toISOString(), privateJwk: { ...privateJwk, ...meta }, publicJwk: { ...publicJwk, ...meta } }
}

export async function createAgentKeySet(alg: AgentTokenAlgorithm = 'ES256', now?: Date): Promise<AgentKeySet> {
  return { current: await generateAgentSigningKey(alg, now), previous: [] }
}

/** Pure: `next` becomes current, the old current joins the previous keys; at most `keepPrevious` are kept. */
export function rotateAgentKeySet(set: AgentKeySet, next: AgentSigningKey, options: { keepPrevious?: number } = {}): AgentKeySet {
  const keep = options.keepPrevious ?? 2
  if (next.kid === set.current.kid) throw new Error('rotation needs a new key')
  const previous = [set.current, ...set.previous.filter((k) => k.kid !== next.kid)].slice(0, Math.max(0, keep))
  return { current: next, previous }
}

/** Public keys, for a JWKS endpoint if other services must verify agent tokens. */
export function publicAgentJwks(set: AgentKeySet): { keys: JWK[] } {
  return { keys: [set.current, ...set.previous].map((k) => k.publicJwk) }
}

function parseKey(value: unknown, where: string): AgentSigningKey {
  if (typeof value !== 'object' || value === null) throw new Error(`${where}: not an object`)
  const k = value as Record<string, unknown>
  if (typeof k.kid !== 'string' || !k.kid) throw new Error(`${where}.kid: missing`)
  if (!isAlgorithm(k.alg)) throw new Error(`${where}.alg: must be one of ${AGENT_TOKEN_ALGORITHMS.join(', ')}`)
  const priv = k.privateJwk as JWK | undefined
  const pub = k.publicJwk as JWK | undefined
  if (typeof priv !== 'object' || priv === null || typeof priv.d !== 'string')
    throw new Error(`${where}.privateJwk: not a private JWK`)
  if (typeof pub !== 'object' || pub === null || 'd' in pub) throw new Error(`${where}.publicJwk: not a public JWK`)
  if (priv.kty !== pub.kty || priv.x !== pub.x) throw new Error(`${where}: private and public keys differ`)
  return {
    kid: k.kid,
    alg: k.alg,
    createdAt: typeof k.createdAt === 'string' ? k.createdAt : new Date(0).toISOString(),
    privateJwk: { ...priv, kid: k.kid, alg: k.alg, use: 'sig' },
    publicJwk: { ...pub, kid: k.kid, alg: k.alg, use: 'sig' },
  }
}

/** Validates a key set read from a file or an environment variable (JSON, or base64 of the JSON). */
export function parseAgentKeySet(value: unknown): AgentKeySet {
  let v = value
  if (typeof v === 'string') {
    const text = v.trim().startsWith('{') ? v : Buffer.from(v, 'base64').toString('utf8')
    v = JSON.parse(text)
  }
  if (typeof v !== 'object' || v === null) throw new Error('agent key set: not an object')
  const s = v as Record<string, unknown>
  const current = parseKey(s.current, 'current')
  const previous = Array.isArray(s.previous) ? s.previous.map((p, i) => parseKey(p, `previous[${i}]`)) : []
  const kids = new Set([current.kid, ...previous.map((p) => p.kid)])
  if (kids.size !== previous.length + 1) throw new Error('agent key set: duplicate kid')
  return { current, previous }
}

// ---------------------------------------------------------------------------------------------
// persistence: a JSON file under the data dir (or the same JSON in an environment variable)

export const loadOrCreateAgentKeySetFile = (path: string, alg: AgentTokenAlgorithm = 'ES256'): Promise<AgentKeySet> =>
  loadOrCreateJsonFile(path, parseAgentKeySet, () => createAgentKeySet(alg))

export const readAgentKeySetFile = (path: string): Promise<AgentKeySet | undefined> => readJsonFile(path, parseAgentKeySet)

/** Rotates the key set stored in `path` (creating it if absent) and returns the new set. */
export async function rotateAgentKeySetFile(
  path: string,
  options: { alg?: AgentTokenAlgorithm; keepPrevious?: number } = {},
): Promise<AgentKeySet> {
  const set = await loadOrCreateAgentKeySetFile(path, options.alg)
  const rotated = rotateAgentKeySet(set, await generateAgentSigningKey(options.alg ?? set.current.alg), options)
  await writeJsonFile(path, rotated)
  return rotated
}

// ---------------------------------------------------------------------------------------------
// issue and verify (pure given the key set and the clock)

const importedKeys = new WeakMap<JWK, Promise<CryptoKey | Uint8Array>>()
function cryptoKey(jwk: JWK, alg: AgentTokenAlgorithm): Promise<CryptoKey | Uint8Array> {
  let key = importedKeys.get(jwk)
  if (!key) {
    key = importJWK(jwk, alg)
    importedKeys.set(jwk, key)
  }
  return key
}

export type IssueAgentTokenInput = {
  issuer: string
  audience: string
  agentId: string
  tenantId: string
  ttlSeconds?: number
  nowMs?: number
  jti?: string
}

export async function issueAgentToken(
  set: AgentKeySet,
  input: IssueAgentTokenInput,
): Promise<{ token: string; jti: string; expiresAt: Date }> {
  const ttl = input.ttlSeconds ?? DEFAULT_AGENT_TOKEN_TTL_SECONDS
  if (!Number.isInteger(ttl) || ttl <= 0 || ttl > 3600) throw new RangeError('agent token ttl must be 1..3600 seconds')
  if (!input.agentId || !input.tenantId) throw new TypeError('agentId and tenantId are required')
  const iat = Math.floor((input.nowMs ?? Date.now()) / 1000)
  const exp = iat + ttl
  const jti = input.jti ?? randomUUID()
  const key = set.current
  const token = await new SignJWT({ tenant_id: input.tenantId })
    .setProtectedHeader({ alg: key.alg, kid: key.kid, typ: AGENT_TOKEN_TYPE })
    .setIssuer(input.issuer)
    .setAudience(input.audience)
    .setSubject(input.agentId)
    .setIssuedAt(iat)
    .setExpirationTime(exp)
    .setJti(jti)
    .sign(await cryptoKey(key.privateJwk, key.alg))
  return { token, jti, expiresAt: new Date(exp * 1000) }
}

export type VerifyAgentTokenOptions = {
  issuer: string
  audience: string
  nowMs?: number
  /** Seconds; at most 60. Default 30. */
  clockToleranceSeconds?: number
}

/** Verifies with whichever key of the set the token's `kid` names; throws a typed AgentTokenError. */
export async function verifyAgentToken(
  token: string,
  set: AgentKeySet,
  options: VerifyAgentTokenOptions,
): Promise<AgentTokenClaims> {
  let header: ReturnType<typeof decodeProtectedHeader>
  try {
    header = decodeProtectedHeader(token)
  } catch (cause) {
    throw new AgentTokenMalformedError('agent token is not a JWS', { cause })
  }
  if (token.split('.').length !== 3) throw new AgentTokenMalformedError('agent token is not a compact JWS')
  if (!isAlgorithm(header.alg)) throw new AgentTokenAlgorithmError(`algorithm ${String(header.alg)} is not allowed`)
  if (header.typ !== AGENT_TOKEN_TYPE) throw new AgentTokenMalformedError(`token type must be ${AGENT_TOKEN_TYPE}`)
  if (typeof header.kid !== 'string') throw new AgentTokenUnknownKeyError('agent token has no kid')
  const key = [set.current, ...set.previous].find((k) => k.kid === header.kid)
  if (!key) throw new AgentTokenUnknownKeyError()
  if (key.alg !== header.alg) throw new AgentTokenAlgorithmError('algorithm does not match the key')

  const tolerance = Math.min(Math.max(options.clockToleranceSeconds ?? 30, 0), 60)
  try {
    const { payload } = await jwtVerify(token, await cryptoKey(key.publicJwk, key.alg), {
      issuer: options.issuer,
      audience: options.audience,
      algorithms: [key.alg],
      typ: AGENT_TOKEN_TYPE,
      clockTolerance: tolerance,
      currentDate: new Date(options.nowMs ?? Date.now()),
      requiredClaims: ['iss', 'aud', 'sub', 'exp', 'iat', 'jti', 'tenant_id'],
    })
    const tenantId = payload.tenant_id
    if (typeof tenantId !== 'string' || !tenantId) throw new AgentTokenClaimsError('tenant_id must be a string')
    if (typeof payload.sub !== 'string' || typeof payload.jti !== 'string') throw new AgentTokenClaimsError()
    return {
      agentId: payload.sub,
      tenantId,
      jti: payload.jti,
      issuer: options.issuer,
      issuedAt: new Date((payload.iat ?? 0) * 1000),
      expiresAt: new Date((payload.exp ?? 0) * 1000),
    }
  } catch (e) {
    throw toAgentTokenError(e)
  }
}

function toAgentTokenError(e: unknown): AgentTokenError {
  if (e instanceof AgentTokenError) return e
  if (e instanceof errors.JWTExpired) return new AgentTokenExpiredError(undefined, { cause: e })
  if (e instanceof errors.JWSSignatureVerificationFailed) return new AgentTokenSignatureError(undefined, { cause: e })
  if (e instanceof errors.JOSEAlgNotAllowed) return new AgentTokenAlgorithmError(undefined, { cause: e })
  if (e instanceof errors.JWTClaimValidationFailed) return new AgentTokenClaimsError(`claim ${e.claim} ${e.reason}`, { cause: e })
  return new AgentTokenMalformedError(undefined, { cause: e })
}

// ---------------------------------------------------------------------------------------------
// service: a key set that may change under it (rotation by another process)

export type AgentTokenServiceOptions = {
  issuer: string
  audience: string
  /** Loads the current key set (file, env, database). Called at start and again when a token names an unknown kid. */
  loadKeySet: () => Promise<AgentKeySet>
  ttlSeconds?: number
  clockToleranceSeconds?: number
  /** Minimum time between two reloads triggered by unknown kids. Default 30 s. */
  reloadCooldownMs?: number
  now?: () => number
}

export type AgentTokenService = {
  issue(input: {
    agentId: string
    tenantId: string
    ttlSeconds?: number
  }): Promise<{ token: string; jti: string; expiresAt: Date }>
  verify(token: string): Promise<AgentTokenClaims>
  /** Reloads the key set now (after a rotation by this process). */
  reload(): Promise<AgentKeySet>
  jwks(): Promise<{ keys: JWK[] }>
}

export function createAgentTokenService(options: AgentTokenServiceOptions): AgentTokenService {
  const now = options.now ?? Date.now
  const cooldown = options.reloadCooldownMs ?? 30_000
  let cached: AgentKeySet | undefined
  let loading: Promise<AgentKeySet> | undefined
  let lastLoad = Number.NEGATIVE_INFINITY

  // One load at a time; a failed load keeps the previous key set.
  const reload = (): Promise<AgentKeySet> => {
    loading ??= options
      .loadKeySet()
      .then((set) => {
        cached = set
        return set
      })
      .finally(() => {
        lastLoad = now()
        loading = undefined
      })
    return loading
  }
  const keySet = (): Promise<AgentKeySet> => (cached ? Promise.resolve(cached) : reload())

  return {
    async issue(input) {
      return issueAgentToken(await keySet(), {
        issuer: options.issuer,
        audience: options.audience,
        ttlSeconds: input.ttlSeconds ?? options.ttlSeconds,
        agentId: input.agentId,
        tenantId: input.tenantId,
        nowMs: now(),
      })
    },
    async verify(token) {
      const verifyOptions = {
        issuer: options.issuer,
        audience: options.audience,
        clockToleranceSeconds: options.clockToleranceSeconds,
        nowMs: now(),
      }
      try {
        return await verifyAgentToken(token, await keySet(), verifyOptions)
      } catch (e) {
        if (!(e instanceof AgentTokenUnknownKeyError) || now() - lastLoad < cooldown) throw e
        return verifyAgentToken(token, await reload(), verifyOptions)
      }
    },
    reload,
    async jwks() {
      return publicAgentJwks(await keySet())
    },
  }
}
