import { mkdtemp, readFile, rm, stat } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { decodeJwt, decodeProtectedHeader, exportJWK, generateKeyPair, SignJWT } from 'jose'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  type AgentKeySet,
  AgentTokenAlgorithmError,
  AgentTokenClaimsError,
  AgentTokenExpiredError,
  AgentTokenMalformedError,
  AgentTokenSignatureError,
  AgentTokenUnknownKeyError,
  createAgentKeySet,
  createAgentTokenService,
  generateAgentSigningKey,
  issueAgentToken,
  loadOrCreateAgentKeySetFile,
  parseAgentKeySet,
  publicAgentJwks,
  rotateAgentKeySet,
  rotateAgentKeySetFile,
  verifyAgentToken,
} from '../../adapters/agent-tokens.ts'

const issuer = 'http://localhost:3000'
const audience = 'workspace-api'
const agentId = '01900000-0000-7000-8000-00000000a6e1'
const tenantId = '01900000-0000-7000-8000-0000000000f1'
const now = Date.UTC(2025, 0, 1, 12, 0, 0)
const opts = { issuer, audience, nowMs: now }

let set: AgentKeySet
beforeAll(async () => {
  set = await createAgentKeySet('ES256')
})

describe('agent tokens', () => {
  it('carry iss, aud, sub = agent, tenant, short exp, jti and the kid', async () => {
    const { token, jti, expiresAt } = await issueAgentToken(set, { ...opts, agentId, tenantId })
    const header = decodeProtectedHeader(token)
    expect(header).toMatchObject({ alg: 'ES256', kid: set.current.kid, typ: 'at+jwt' })
    const claims = decodeJwt(token)
    expect(claims).toMatchObject({ iss: issuer, aud: audience, sub: agentId, tenant_id: tenantId, jti })
    expect(claims.exp! - claims.iat!).toBe(15 * 60)
    expect(expiresAt.getTime()).toBe(claims.exp! * 1000)
    await expect(verifyAgentToken(token, set, opts)).resolves.toMatchObject({ agentId, tenantId, jti, expiresAt })
  })

  it('EdDSA keys work too', async () => {
    const ed = await createAgentKeySet('EdDSA')
    const { token } = await issueAgentToken(ed, { ...opts, agentId, tenantId })
    expect(decodeProtectedHeader(token).alg).toBe('EdDSA')
    await expect(verifyAgentToken(token, ed, opts)).resolves.toMatchObject({ agentId })
  })

  it('a token signed with the previous key still verifies after rotation; an unknown kid is refused', async () => {
    const before = await issueAgentToken(set, { ...opts, agentId, tenantId })
    const rotated = rotateAgentKeySet(set, await generateAgentSigningKey('ES256'))
    expect(rotated.previous[0]?.kid).toBe(set.current.kid)
    const after = await issueAgentToken(rotated, { ...opts, agentId, tenantId })
    expect(decodeProtectedHeader(after.token).kid).toBe(rotated.current.kid)
    await expect(verifyAgentToken(before.token, rotated, opts)).resolves.toMatchObject({ agentId })
    await expect(verifyAgentToken(after.token, rotated, opts)).resolves.toMatchObject({ agentId })
    // The old set never learnt the new key: its kid is unknown there.
    await expect(verifyAgentToken(after.token, set, opts)).rejects.toBeInstanceOf(AgentTokenUnknownKeyError)
    // Once the old key is dropped, its tokens die.
    const twice = rotateAgentKeySet(rotated, await generateAgentSigningKey('ES256'), { keepPrevious: 1 })
    expect(twice.previous.map((k) => k.kid)).toEqual([rotated.current.kid])
    await expect(verifyAgentToken(before.token, twice, opts)).rejects.toBeInstanceOf(AgentTokenUnknownKeyError)
  })

  it('refuses a forged token that reuses a known kid', async () => {
    const { privateKey } = await generateKeyPair('ES256')
    const forged = await new SignJWT({ tenant_id: tenantId })
      .setProtectedHeader({ alg: 'ES256', kid: set.current.kid, typ: 'at+jwt' })
      .setIssuer(issuer)
      .setAudience(audience)
      .setSubject(agentId)
      .setIssuedAt(now / 1000)
      .setExpirationTime(now / 1000 + 600)
      .setJti('x')
      .sign(privateKey)
    await expect(verifyAgentToken(forged, set, opts)).rejects.toBeInstanceOf(AgentTokenSignatureError)
  })

  it('refuses expired tokens, beyond the clock tolerance', async () => {
    const { token } = await issueAgentToken(set, { ...opts, agentId, tenantId, ttlSeconds: 60 })
    await expect(verifyAgentToken(token, set, { ...opts, nowMs: now + 80_000 })).resolves.toBeDefined() // 20 s late, tolerated
    await expect(verifyAgentToken(token, set, { ...opts, nowMs: now + 100_000 })).rejects.toBeInstanceOf(AgentTokenExpiredError)
    await expect(
      verifyAgentToken(token, set, { ...opts, nowMs: now + 200_000, clockToleranceSeconds: 3600 }),
    ).rejects.toBeInstanceOf(AgentTokenExpiredError)
  })

  it('refuses another audience or issuer', async () => {
    const { token } = await issueAgentToken(set, { ...opts, agentId, tenantId })
    await expect(verifyAgentToken(token, set, { ...opts, audience: 'other' })).rejects.toBeInstanceOf(AgentTokenClaimsError)
    await expect(verifyAgentToken(token, set, { ...opts, issuer: 'http://evil' })).rejects.toBeInstanceOf(AgentTokenClaimsError)
  })

  it('refuses alg none, HS256 and garbage', async () => {
    const { token } = await issueAgentToken(set, { ...opts, agentId, tenantId })
    const [, payload] = token.split('.')
    const enc = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url')
    const none = `${enc({ alg: 'none', typ: 'at+jwt', kid: set.current.kid })}.${payload}.`
    await expect(verifyAgentToken(none, set, opts)).rejects.toBeInstanceOf(AgentTokenAlgorithmError)
    const hs = await new SignJWT(decodeJwt(token))
      .setProtectedHeader({ alg: 'HS256', kid: set.current.kid, typ: 'at+jwt' })
      .sign(new TextEncoder().encode(JSON.stringify(set.current.publicJwk)))
    await expect(verifyAgentToken(hs, set, opts)).rejects.toBeInstanceOf(AgentTokenAlgorithmError)
    await expect(verifyAgentToken('garbage', set, opts)).rejects.toBeInstanceOf(AgentTokenMalformedError)
    // An ID token (typ JWT) is not an agent token even if signed by the right key.
    const wrongTyp = await new SignJWT(decodeJwt(token))
      .setProtectedHeader({ alg: 'ES256', kid: set.current.kid, typ: 'JWT' })
      .sign(await import('jose').then((j) => j.importJWK(set.current.privateJwk, 'ES256')))
    await expect(verifyAgentToken(wrongTyp, set, opts)).rejects.toBeInstanceOf(AgentTokenMalformedError)
  })

  it('refuses a token without tenant', async () => {
    const { importJWK } = await import('jose')
    const noTenant = await new SignJWT({})
      .setProtectedHeader({ alg: 'ES256', kid: set.current.kid, typ: 'at+jwt' })
      .setIssuer(issuer)
      .setAudience(audience)
      .setSubject(agentId)
      .setIssuedAt(now / 1000)
      .setExpirationTime(now / 1000 + 600)
      .setJti('j')
      .sign(await importJWK(set.current.privateJwk, 'ES256'))
    await expect(verifyAgentToken(noTenant, set, opts)).rejects.toBeInstanceOf(AgentTokenClaimsError)
  })

  it('publishes only public keys', async () => {
    const jwks = publicAgentJwks(rotateAgentKeySet(set, await generateAgentSigningKey()))
    expect(jwks.keys).toHaveLength(2)
    for (const k of jwks.keys) expect(k).not.toHaveProperty('d')
  })
})

describe('agent key set persistence', () => {
  let dir: string
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'agent-keys-'))
  })
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true })
  })

  it('is created once (mode 0600) and reused', async () => {
    const path = join(dir, 'agent-keys.json')
    const [a, b] = await Promise.all([loadOrCreateAgentKeySetFile(path), loadOrCreateAgentKeySetFile(path)])
    expect(a.current.kid).toBe(b.current.kid)
    expect((await loadOrCreateAgentKeySetFile(path)).current.kid).toBe(a.current.kid)
    expect((await stat(path)).mode & 0o777).toBe(0o600)
  })

  it('rotates on disk; a service reloads on an unknown kid and verifies old and new tokens', async () => {
    const path = join(dir, 'rotating.json')
    let clock = now
    const service = createAgentTokenService({
      issuer,
      audience,
      loadKeySet: () => loadOrCreateAgentKeySetFile(path),
      now: () => clock,
      reloadCooldownMs: 1_000,
    })
    const old = await service.issue({ agentId, tenantId })
    // Another process rotates the file and signs with the new key.
    const rotated = await rotateAgentKeySetFile(path)
    const fresh = await issueAgentToken(rotated, { issuer, audience, agentId, tenantId, nowMs: clock })
    clock += 2_000
    await expect(service.verify(fresh.token)).resolves.toMatchObject({ agentId, tenantId })
    await expect(service.verify(old.token)).resolves.toMatchObject({ agentId })
    const issuedAfter = await service.issue({ agentId, tenantId })
    expect(decodeProtectedHeader(issuedAfter.token).kid).toBe(rotated.current.kid)
    // Unknown kid from nowhere: refused (and reloads stay rate-limited).
    const stranger = await issueAgentToken(await createAgentKeySet(), { issuer, audience, agentId, tenantId, nowMs: clock })
    await expect(service.verify(stranger.token)).rejects.toBeInstanceOf(AgentTokenUnknownKeyError)
    expect((await service.jwks()).keys.map((k) => k.kid)).toEqual([rotated.current.kid, rotated.previous[0]?.kid])
  })

  it('parses the same JSON from an environment variable (plain or base64)', async () => {
    const json = JSON.stringify(set)
    expect(parseAgentKeySet(json).current.kid).toBe(set.current.kid)
    expect(parseAgentKeySet(Buffer.from(json).toString('base64')).current.kid).toBe(set.current.kid)
    expect(() => parseAgentKeySet({ current: { ...set.current, privateJwk: set.current.publicJwk } })).toThrow(/private/)
    expect(() => parseAgentKeySet({ current: { ...set.current, alg: 'HS256' } })).toThrow(/alg/)
    const other = await exportJWK((await generateKeyPair('ES256', { extractable: true })).privateKey)
    expect(() => parseAgentKeySet({ current: { ...set.current, privateJwk: other } })).toThrow(/differ/)
    const text = await readFile(join(dir, 'agent-keys.json'), 'utf8')
    expect(parseAgentKeySet(text).previous).toEqual([])
  })
})
