import { createHmac } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import {
  type AgentCredentialError,
  AgentCredentialMalformedError,
  AgentCredentialReplayedError,
  AgentCredentialSignatureError,
  AgentCredentialStaleError,
  agentCredentialSignature,
  DEFAULT_REPLAY_WINDOW_MS,
  parseAgentCredential,
  signAgentCredential,
  verifyAgentCredential,
} from '../../adapters/agent-credentials.ts'
import { generateToken } from '../../adapters/opaque-tokens.ts'
import { MemoryReplayCache } from '../../adapters/replay-cache.ts'

const agentId = '01900000-0000-7000-8000-000000000001'

const BASE64URL = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'
/**
 * The four spellings of a 32-byte value in 43 base64url characters: the last character carries two bits
 * beyond the data, which decoders ignore. The canonical spelling (those bits zero) comes first.
 */
const base64urlSpellings = (value: string) => {
  const last = BASE64URL.indexOf(value.at(-1)!)
  return [0, 1, 2, 3].map((bits) => value.slice(0, -1) + BASE64URL[(last & ~3) | bits])
}
const secret = generateToken('agentSecret')
const now = Date.UTC(2025, 0, 1, 12, 0, 0)

describe('agent HMAC credentials', () => {
  it('signature is base64url HMAC-SHA256(secret, "agentId.timestamp")', () => {
    const ts = Math.floor(now / 1000)
    const expected = createHmac('sha256', secret).update(`${agentId}.${ts}`).digest('base64url')
    expect(agentCredentialSignature(secret, agentId, ts)).toBe(expected)
    expect(signAgentCredential(agentId, secret, now)).toEqual({ agentId, timestamp: ts, signature: expected })
  })

  it('accepts a good credential', async () => {
    const replayCache = new MemoryReplayCache({ now: () => now })
    const credential = signAgentCredential(agentId, secret, now)
    await expect(verifyAgentCredential(credential, [secret], { replayCache, nowMs: now + 1_000 })).resolves.toEqual({
      agentId,
      secretIndex: 0,
    })
  })

  it('refuses a wrong secret, and an unknown agent the same way', async () => {
    const replayCache = new MemoryReplayCache({ now: () => now })
    const credential = signAgentCredential(agentId, generateToken('agentSecret'), now)
    await expect(verifyAgentCredential(credential, [secret], { replayCache, nowMs: now })).rejects.toBeInstanceOf(
      AgentCredentialSignatureError,
    )
    await expect(verifyAgentCredential(credential, [], { replayCache, nowMs: now })).rejects.toBeInstanceOf(
      AgentCredentialSignatureError,
    )
  })

  it('refuses a credential signed for another agent id', async () => {
    const replayCache = new MemoryReplayCache({ now: () => now })
    const credential = { ...signAgentCredential(agentId, secret, now), agentId: 'another-agent' }
    await expect(verifyAgentCredential(credential, [secret], { replayCache, nowMs: now })).rejects.toBeInstanceOf(
      AgentCredentialSignatureError,
    )
  })

  it('refuses a stale timestamp, and one too far in the future', async () => {
    const replayCache = new MemoryReplayCache({ now: () => now })
    const old = signAgentCredential(agentId, secret, now - DEFAULT_REPLAY_WINDOW_MS - 1_000)
    await expect(verifyAgentCredential(old, [secret], { replayCache, nowMs: now })).rejects.toBeInstanceOf(
      AgentCredentialStaleError,
    )
    const future = signAgentCredential(agentId, secret, now + DEFAULT_REPLAY_WINDOW_MS + 1_000)
    await expect(verifyAgentCredential(future, [secret], { replayCache, nowMs: now })).rejects.toBeInstanceOf(
      AgentCredentialStaleError,
    )
    const edge = signAgentCredential(agentId, secret, now - DEFAULT_REPLAY_WINDOW_MS + 1_000)
    await expect(verifyAgentCredential(edge, [secret], { replayCache, nowMs: now })).resolves.toMatchObject({ agentId })
    const short = signAgentCredential(agentId, secret, now - 60_000)
    await expect(verifyAgentCredential(short, [secret], { replayCache, nowMs: now, windowMs: 30_000 })).rejects.toBeInstanceOf(
      AgentCredentialStaleError,
    )
  })

  it('refuses a replayed credential within the window', async () => {
    const replayCache = new MemoryReplayCache({ now: () => now })
    const credential = signAgentCredential(agentId, secret, now)
    await verifyAgentCredential(credential, [secret], { replayCache, nowMs: now })
    const error = await verifyAgentCredential({ ...credential }, [secret], { replayCache, nowMs: now + 2_000 }).catch((e) => e)
    expect(error).toBeInstanceOf(AgentCredentialReplayedError)
    expect((error as AgentCredentialError).reason).toBe('replayed')
    // A new timestamp makes a new credential.
    const next = signAgentCredential(agentId, secret, now + 1_000)
    await expect(verifyAgentCredential(next, [secret], { replayCache, nowMs: now + 2_000 })).resolves.toMatchObject({ agentId })
  })

  it('one signature spelled four ways is one credential: accepted once', async () => {
    const replayCache = new MemoryReplayCache({ now: () => now })
    const credential = signAgentCredential(agentId, secret, now)
    const spellings = base64urlSpellings(credential.signature)
    expect(new Set(spellings).size).toBe(4)
    for (const spelling of spellings)
      expect(Buffer.from(spelling, 'base64url')).toEqual(Buffer.from(credential.signature, 'base64url'))
    // A non-canonical spelling first: the canonical one is then a replay too.
    const [first, ...rest] = [...spellings].reverse()
    await expect(
      verifyAgentCredential({ ...credential, signature: first! }, [secret], { replayCache, nowMs: now }),
    ).resolves.toEqual({
      agentId,
      secretIndex: 0,
    })
    for (const signature of rest) {
      await expect(
        verifyAgentCredential({ ...credential, signature }, [secret], { replayCache, nowMs: now + 1_000 }),
        signature,
      ).rejects.toBeInstanceOf(AgentCredentialReplayedError)
    }
  })

  it('a refused credential does not consume the replay slot', async () => {
    const replayCache = new MemoryReplayCache({ now: () => now })
    const credential = signAgentCredential(agentId, secret, now)
    await expect(verifyAgentCredential(credential, ['wrong'], { replayCache, nowMs: now })).rejects.toBeInstanceOf(
      AgentCredentialSignatureError,
    )
    expect(replayCache.size).toBe(0)
    await expect(verifyAgentCredential(credential, [secret], { replayCache, nowMs: now })).resolves.toMatchObject({ agentId })
  })

  it('rotates: the previous secret still works, and says so', async () => {
    const replayCache = new MemoryReplayCache({ now: () => now })
    const next = generateToken('agentSecret')
    const withOld = signAgentCredential(agentId, secret, now)
    await expect(verifyAgentCredential(withOld, [next, secret], { replayCache, nowMs: now })).resolves.toEqual({
      agentId,
      secretIndex: 1,
    })
    const withNew = signAgentCredential(agentId, next, now)
    await expect(verifyAgentCredential(withNew, [next, secret], { replayCache, nowMs: now })).resolves.toEqual({
      agentId,
      secretIndex: 0,
    })
  })

  it('refuses malformed input', () => {
    const good = signAgentCredential(agentId, secret, now)
    expect(parseAgentCredential({ ...good, timestamp: String(good.timestamp) }).timestamp).toBe(good.timestamp)
    for (const bad of [
      null,
      'x',
      { ...good, agentId: '' },
      { ...good, agentId: 'a b' },
      { ...good, timestamp: 1.5 },
      { ...good, timestamp: -1 },
      { ...good, timestamp: 'soon' },
      { ...good, signature: 'short' },
      { ...good, signature: `${good.signature}=` },
    ]) {
      expect(() => parseAgentCredential(bad), JSON.stringify(bad)).toThrow(AgentCredentialMalformedError)
    }
  })
})
