import { describe, expect, it } from 'vitest'
import { constantTimeEqual } from '../../adapters/constant-time.ts'
import {
  generateToken,
  hashToken,
  isTokenOfKind,
  redactToken,
  TOKEN_PREFIXES,
  tokenKind,
  tokenMatchesHash,
} from '../../adapters/opaque-tokens.ts'

describe('opaque tokens', () => {
  it('are 32 random bytes in base64url behind a readable prefix', () => {
    const session = generateToken('session')
    const personal = generateToken('personal')
    expect(session).toMatch(/^wss_[A-Za-z0-9_-]{43}$/)
    expect(personal).toMatch(/^wsp_[A-Za-z0-9_-]{43}$/)
    expect(Buffer.from(session.slice(4), 'base64url')).toHaveLength(32)
    expect(tokenKind(session)).toBe('session')
    expect(isTokenOfKind(personal, 'personal')).toBe(true)
    expect(isTokenOfKind(personal, 'session')).toBe(false)
    expect(new Set(Array.from({ length: 1000 }, () => generateToken('session'))).size).toBe(1000)
  })

  it('recognises only well-formed tokens', () => {
    const t = generateToken('session')
    expect(tokenKind(`${t}x`)).toBeNull()
    expect(tokenKind(t.slice(0, -1))).toBeNull()
    expect(tokenKind(`wss_${'!'.repeat(43)}`)).toBeNull()
    expect(tokenKind(`zzz_${t.slice(4)}`)).toBeNull()
    expect(tokenKind('')).toBeNull()
  })

  it('distinct prefixes for every kind', () => {
    const prefixes = Object.values(TOKEN_PREFIXES)
    expect(new Set(prefixes).size).toBe(prefixes.length)
  })

  it('hashing never keeps the clear value', () => {
    const token = generateToken('personal')
    const hash = hashToken(token)
    expect(hash).toMatch(/^[0-9a-f]{64}$/)
    expect(hash).not.toContain(token)
    expect(hash).not.toContain(token.slice(4))
    expect(hash).not.toContain(Buffer.from(token.slice(4), 'base64url').toString('hex'))
    expect(hashToken(token)).toBe(hash) // deterministic: the store looks tokens up by hash
    expect(hashToken(generateToken('personal'))).not.toBe(hash)

    // What a store would persist for a token: nothing of it survives but the hash.
    const row = { id: 'tok-1', name: 'ci', hash, prefix: redactToken(token) }
    const stored = JSON.stringify(row)
    expect(stored).not.toContain(token)
    expect(stored).not.toContain(token.slice(8))
  })

  it('matches a presented token against its stored hash', () => {
    const token = generateToken('session')
    const stored = hashToken(token)
    expect(tokenMatchesHash(token, stored)).toBe(true)
    expect(tokenMatchesHash(generateToken('session'), stored)).toBe(false)
    expect(tokenMatchesHash(token, stored.toUpperCase())).toBe(false)
  })

  it('compares in constant time, including different lengths', () => {
    expect(constantTimeEqual('abc', 'abc')).toBe(true)
    expect(constantTimeEqual('abc', 'abd')).toBe(false)
    expect(constantTimeEqual('abc', 'abcd')).toBe(false)
    expect(constantTimeEqual('', '')).toBe(true)
  })

  it('redacts for logs', () => {
    const token = generateToken('personal')
    const label = redactToken(token)
    expect(label).toMatch(/^wsp_.{4}…$/)
    expect(label.length).toBeLessThan(12)
    expect(redactToken('not-a-token')).toBe('[redacted]')
  })

  it('refuses a short random source', () => {
    expect(() => generateToken('session', () => Buffer.alloc(16))).toThrow()
  })
})
