import { createHmac, timingSafeEqual } from 'node:crypto'
import type { ReplayCache } from './replay-cache.ts'

/**
 * Agent credential: the agent proves it holds its secret without sending it.
 *
 *   signature = base64url(HMAC-SHA256(secret, `${agentId}.${timestamp}`))
 *
 * `timestamp` is integer Unix seconds. The server accepts a credential whose timestamp is within
 * the replay window (either side of its clock) and whose signature has not been seen before.
 * Several secrets may be valid at once (current and previous) so a secret rotates without downtime.
 */
export type AgentCredential = {
  agentId: string
  timestamp: number
  signature: string
}

export const DEFAULT_REPLAY_WINDOW_MS = 5 * 60 * 1000

export type AgentCredentialRefusal = 'malformed' | 'stale' | 'bad_signature' | 'replayed'

export class AgentCredentialError extends Error {
  override name = 'AgentCredentialError'
  readonly reason: AgentCredentialRefusal
  constructor(reason: AgentCredentialRefusal, message: string) {
    super(message)
    this.reason = reason
  }
}
export class AgentCredentialMalformedError extends AgentCredentialError {
  override name = 'AgentCredentialMalformedError'
  constructor(message = 'malformed agent credential') {
    super('malformed', message)
  }
}
export class AgentCredentialStaleError extends AgentCredentialError {
  override name = 'AgentCredentialStaleError'
  constructor(message = 'agent credential timestamp is outside the replay window') {
    super('stale', message)
  }
}
export class AgentCredentialSignatureError extends AgentCredentialError {
  override name = 'AgentCredentialSignatureError'
  constructor(message = 'agent credential signature does not match') {
    super('bad_signature', message)
  }
}
export class AgentCredentialReplayedError extends AgentCredentialError {
  override name = 'AgentCredentialReplayedError'
  constructor(message = 'agent credential was already used') {
    super('replayed', message)
  }
}

const AGENT_ID = /^[A-Za-z0-9._:-]{1,128}$/
const SIGNATURE = /^[A-Za-z0-9_-]{43}$/

/** The message that is signed. */
export const agentCredentialMessage = (agentId: string, timestamp: number): string => `${agentId}.${timestamp}`

/** Pure: the signature of `agentId.timestamp` under `secret`. */
export function agentCredentialSignature(secret: string, agentId: string, timestamp: number): string {
  return createHmac('sha256', secret).update(agentCredentialMessage(agentId, timestamp), 'utf8').digest('base64url')
}

/** What an agent (or a test) sends: a credential for now. */
export function signAgentCredential(agentId: string, secret: string, nowMs: number = Date.now()): AgentCredential {
  const timestamp = Math.floor(nowMs / 1000)
  return { agentId, timestamp, signature: agentCredentialSignature(secret, agentId, timestamp) }
}

/** Parses an untrusted body into a credential, or throws AgentCredentialMalformedError. */
export function parseAgentCredential(input: unknown): AgentCredential {
  if (typeof input !== 'object' || input === null) throw new AgentCredentialMalformedError()
  const { agentId, timestamp, signature } = input as Record<string, unknown>
  const ts = typeof timestamp === 'string' && /^\d{1,12}$/.test(timestamp) ? Number(timestamp) : timestamp
  if (typeof agentId !== 'string' || !AGENT_ID.test(agentId)) throw new AgentCredentialMalformedError('malformed agentId')
  if (typeof ts !== 'number' || !Number.isSafeInteger(ts) || ts < 0) {
    throw new AgentCredentialMalformedError('timestamp must be integer Unix seconds')
  }
  if (typeof signature !== 'string' || !SIGNATURE.test(signature)) {
    throw new AgentCredentialMalformedError('signature must be base64url HMAC-SHA256')
  }
  return { agentId, timestamp: ts, signature }
}

/**
 * Pure part of the check: format, window and signature against each candidate secret.
 * Returns the index of the secret that matched (0 = current). Does not record the credential.
 */
export function checkAgentCredential(
  credential: AgentCredential,
  secrets: readonly string[],
  options: { nowMs: number; windowMs?: number },
): { secretIndex: number } {
  const { agentId, timestamp, signature } = parseAgentCredential(credential)
  const windowMs = options.windowMs ?? DEFAULT_REPLAY_WINDOW_MS
  if (Math.abs(options.nowMs - timestamp * 1000) > windowMs) throw new AgentCredentialStaleError()
  const presented = Buffer.from(signature, 'base64url')
  let matched = -1
  // Compare against every secret (no early exit) so timing says nothing about which one matched.
  secrets.forEach((secret, index) => {
    const expected = Buffer.from(agentCredentialSignature(secret, agentId, timestamp), 'base64url')
    if (timingSafeEqual(expected, presented) && matched === -1) matched = index
  })
  if (matched === -1) throw new AgentCredentialSignatureError()
  return { secretIndex: matched }
}

/**
 * Full check: `checkAgentCredential`, then the signature's bytes are claimed in the replay cache for
 * the rest of its window, so the same credential is accepted once, however it is spelled.
 * `secrets` are the agent's valid secrets, current first; an empty list (unknown agent) always fails
 * with AgentCredentialSignatureError, the same answer as a wrong secret.
 */
export async function verifyAgentCredential(
  credential: AgentCredential,
  secrets: readonly string[],
  options: { replayCache: ReplayCache; nowMs?: number; windowMs?: number },
): Promise<{ agentId: string; secretIndex: number }> {
  const nowMs = options.nowMs ?? Date.now()
  const windowMs = options.windowMs ?? DEFAULT_REPLAY_WINDOW_MS
  const { secretIndex } = checkAgentCredential(credential, secrets, { nowMs, windowMs })
  const expiresAtMs = credential.timestamp * 1000 + windowMs + 1000
  // Claimed by its bytes, not its spelling: the last of the 43 characters has two bits that decoding
  // drops, so four strings carry one signature, and each must count as that signature's single use.
  const signature = Buffer.from(credential.signature, 'base64url').toString('base64url')
  const fresh = await options.replayCache.claim(`agent-credential:${credential.agentId}:${signature}`, expiresAtMs)
  if (!fresh) throw new AgentCredentialReplayedError()
  return { agentId: credential.agentId, secretIndex }
}
