import { createHash, randomBytes } from 'node:crypto'
import { constantTimeEqual } from './constant-time.ts'

/**
 * Opaque bearer secrets: 32 random bytes, base64url, behind a readable prefix that says what
 * the token is (and lets secret scanners recognise a leaked one). Only the SHA-256 hash is
 * stored; the clear value is shown once to its owner and never persisted or logged.
 *
 * SHA-256 without salt or stretching is right here: 256 bits of entropy cannot be guessed,
 * and a fast, deterministic hash lets the store look a token up by its hash.
 */
export const TOKEN_PREFIXES = {
  session: 'wss_',
  personal: 'wsp_',
  handoff: 'wsh_',
  invite: 'wsi_',
  agentSecret: 'wsa_',
  service: 'wsv_',
} as const

export type TokenKind = keyof typeof TOKEN_PREFIXES

export const TOKEN_RANDOM_BYTES = 32
const BODY_LENGTH = 43 // base64url of 32 bytes, unpadded
const BODY = /^[A-Za-z0-9_-]{43}$/

/** A new token of that kind, e.g. `wss_…` for a session. */
export function generateToken(kind: TokenKind, random: (size: number) => Buffer = randomBytes): string {
  const bytes = random(TOKEN_RANDOM_BYTES)
  if (bytes.length !== TOKEN_RANDOM_BYTES) throw new Error('random source returned the wrong number of bytes')
  return TOKEN_PREFIXES[kind] + bytes.toString('base64url')
}

/** The kind of a well-formed token, or null when it is not one of ours (wrong prefix, length or alphabet). */
export function tokenKind(token: string): TokenKind | null {
  for (const [kind, prefix] of Object.entries(TOKEN_PREFIXES) as [TokenKind, string][]) {
    if (token.startsWith(prefix)) {
      const body = token.slice(prefix.length)
      return body.length === BODY_LENGTH && BODY.test(body) ? kind : null
    }
  }
  return null
}

/** True when `token` is a well-formed token of `kind`. Check this before any lookup. */
export const isTokenOfKind = (token: string, kind: TokenKind): boolean => tokenKind(token) === kind

/** What is stored: lowercase hex SHA-256 of the whole token (prefix included). */
export function hashToken(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex')
}

/** Constant-time check of a presented token against a stored hash. */
export function tokenMatchesHash(token: string, storedHash: string): boolean {
  return constantTimeEqual(hashToken(token), storedHash)
}

/** A short, non-secret label for logs and UIs ("wsp_Ab3d…"): enough to recognise, useless to replay. */
export function redactToken(token: string): string {
  const kind = tokenKind(token)
  return kind
    ? `${TOKEN_PREFIXES[kind]}${token.slice(TOKEN_PREFIXES[kind].length, TOKEN_PREFIXES[kind].length + 4)}…`
    : '[redacted]'
}

const ANY_TOKEN = /\b(ws[a-z])_[A-Za-z0-9_-]{43}/g

/** The text with every token of ours in it replaced by its label (for paths and messages that get logged). */
export const redactTokensIn = (text: string): string => text.replace(ANY_TOKEN, '$1_[redacted]')
