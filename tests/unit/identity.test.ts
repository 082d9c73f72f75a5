import fc from 'fast-check'
import { Hono } from 'hono'
import { describe, expect, it } from 'vitest'
import { loadAuthKeys, parseSecretKey, Sealer } from '../../adapters/auth-keys.ts'
import { redactTokensIn } from '../../adapters/opaque-tokens.ts'
import { credential, handoff, invite, usable } from '../../domain/accounts.ts'
import { agent, liveSecrets } from '../../domain/agents.ts'
import { fold } from '../../domain/decider.ts'
import { type MemberJoined, type OrgEvent, org, usernameReservation } from '../../domain/orgs.ts'
import { expiringSignedCookie, setExpiringSignedCookie } from '../../http/cookies.ts'
import { hostSlug } from '../../http/org-resolution.ts'
import { deciderSpec } from '../support/given-when-then.ts'

const orgId = '01935c7e-0000-7000-8000-0000000000aa'
const at = '2026-11-28T10:00:00.000Z'
const later = (ms: number) => new Date(Date.parse(at) + ms).toISOString()
const created: OrgEvent = {
  type: 'org.created',
  data: { orgId, name: 'Acme', slug: 'acme', createdBy: { type: 'user', id: 'acc' }, at },
}
const member = (userId: string, role: MemberJoined['role'], type: MemberJoined['type'] = 'human'): MemberJoined => ({
  userId,
  accountId: type === 'human' ? `acc-${userId}` : null,
  type,
  role,
  email: null,
  displayName: userId,
  at,
})
const joined = (m: MemberJoined): OrgEvent => ({ type: 'user.joined', data: m })

describe('org membership: roles and the last owner', () => {
  const spec = deciderSpec(org)
  const base = [created, joined(member('o1', 'owner')), joined(member('a1', 'admin')), joined(member('m1', 'member'))]
  const change = (userId: string, role: MemberJoined['role'], actor: string) =>
    ({ type: 'change_role', userId, role, actor: { userId: actor, role: 'owner' }, at }) as const

  it('the last owner can be neither demoted nor removed', () => {
    spec
      .given(base)
      .when(change('o1', 'admin', 'o1'))
      .thenRefused('LAST_OWNER')
    spec
      .given(base)
      .when({ type: 'deactivate', userId: 'o1', actor: { userId: 'o1', role: 'owner' }, at })
      .thenRefused('LAST_OWNER')
  })

  it('with two owners one may step down', () =>
    spec
      .given([...base, { type: 'user.role_changed', data: { userId: 'a1', role: 'owner', by: 'o1', at } }])
      .when(change('o1', 'admin', 'o1'))
      .then([{ type: 'user.role_changed', data: { userId: 'o1', role: 'admin', by: 'o1', at } }]))

  it('the actor’s role is the stream’s, not what the caller claims', () => {
    // m1 claims to be an owner; the stream knows a member.
    spec
      .given(base)
      .when(change('a1', 'member', 'm1'))
      .thenRefused('FORBIDDEN')
    spec
      .given(base)
      .when(change('m1', 'admin', 'stranger'))
      .thenRefused('FORBIDDEN')
  })

  it('admins promote members but touch neither owners nor other admins', () => {
    spec
      .given(base)
      .when(change('m1', 'admin', 'a1'))
      .then([{ type: 'user.role_changed', data: { userId: 'm1', role: 'admin', by: 'a1', at } }])
    spec
      .given(base)
      .when(change('o1', 'member', 'a1'))
      .thenRefused('FORBIDDEN')
    spec
      .given(base)
      .when(change('m1', 'owner', 'a1'))
      .thenRefused('FORBIDDEN')
    spec
      .given([...base, joined(member('a2', 'admin'))])
      .when(change('a2', 'member', 'a1'))
      .thenRefused('FORBIDDEN')
  })

  it('agents never own an org; an account joins once', () => {
    spec
      .given([...base, joined(member('bot', 'member', 'agent'))])
      .when(change('bot', 'owner', 'o1'))
      .thenRefused('AGENT_OWNER')
    spec
      .given(base)
      .when({ type: 'join', member: { ...member('m2', 'member'), accountId: 'acc-m1' } })
      .thenRefused('ALREADY_MEMBER')
  })

  it('property: whatever the role changes, an org with members keeps an active owner', () => {
    const users = ['o1', 'a1', 'm1', 'm2']
    const roles = ['owner', 'admin', 'member', 'guest'] as const
    const step = fc.record({
      kind: fc.constantFrom('role', 'remove'),
      userId: fc.constantFrom(...users),
      actor: fc.constantFrom(...users),
      role: fc.constantFrom(...roles),
    })
    fc.assert(
      fc.property(fc.array(step, { maxLength: 30 }), (steps) => {
        let history: OrgEvent[] = [...base, joined(member('m2', 'member'))]
        for (const s of steps) {
          const command =
            s.kind === 'role'
              ? ({ type: 'change_role', userId: s.userId, role: s.role, actor: { userId: s.actor, role: 'owner' }, at } as const)
              : ({ type: 'deactivate', userId: s.userId, actor: { userId: s.actor, role: 'owner' }, at } as const)
          try {
            history = [...history, ...org.decide(command, fold(org, history))]
          } catch {}
          const state = fold(org, history)
          if (state.status === 'none') throw new Error('no org')
          expect([...state.members.values()].some((m) => m.active && m.role === 'owner')).toBe(true)
        }
      }),
    )
  })
})

describe('usernames', () => {
  const spec = deciderSpec(usernameReservation)
  it('one user per name per org; the same user again is a no-op', () => {
    const reserved = [{ type: 'user.username_reserved' as const, data: { orgId, userId: 'u1', username: 'ada' } }]
    spec.given(reserved).when({ orgId, userId: 'u2', username: 'ada' }).thenRefused('USERNAME_TAKEN')
    spec.given(reserved).when({ orgId, userId: 'u1', username: 'ada' }).then([])
    spec.given([]).when({ orgId, userId: 'u1', username: 'Ada!' }).thenRefused('USERNAME_INVALID')
  })
})

describe('invites', () => {
  const spec = deciderSpec(invite)
  const createdInvite = {
    type: 'invite.created' as const,
    data: {
      inviteId: 'i1',
      orgId,
      email: 'ivy@acme.test',
      role: 'member' as const,
      tokenHash: 'h',
      invitedBy: 'o1',
      expiresAt: later(7 * 24 * 3600_000),
      at,
    },
  }
  const accept = (when: string, email = 'Ivy@Acme.test', verified = true) =>
    ({
      type: 'accept',
      inviteId: 'i1',
      accountId: 'acc',
      accountEmail: email,
      emailVerified: verified,
      userId: 'u9',
      at: when,
    }) as const

  it('is accepted once, by its verified email, within 7 days', () => {
    spec
      .given([createdInvite])
      .when(accept(later(3600_000)))
      .then([{ type: 'invite.accepted', data: { inviteId: 'i1', accountId: 'acc', userId: 'u9', at: later(3600_000) } }])
    spec
      .given([createdInvite])
      .when(accept(later(7 * 24 * 3600_000)))
      .thenRefused('INVITE_EXPIRED')
    spec
      .given([createdInvite])
      .when(accept(later(1), 'eve@acme.test'))
      .thenRefused('INVITE_EMAIL_MISMATCH')
    spec
      .given([createdInvite])
      .when(accept(later(1), 'ivy@acme.test', false))
      .thenRefused('INVITE_EMAIL_MISMATCH')
    const acceptedInvite = { type: 'invite.accepted' as const, data: { inviteId: 'i1', accountId: 'acc', userId: 'u9', at } }
    spec
      .given([createdInvite, acceptedInvite])
      .when(accept(later(1)))
      .thenRefused('INVITE_USED')
    const revoked = { type: 'invite.revoked' as const, data: { inviteId: 'i1', by: 'o1', at } }
    spec
      .given([createdInvite, revoked])
      .when(accept(later(1)))
      .thenRefused('INVITE_REVOKED')
  })
})

describe('credentials and handoff tickets', () => {
  const issued = {
    type: 'credential.issued' as const,
    data: {
      credentialId: 'c1',
      kind: 'session' as const,
      accountId: 'acc',
      tenantId: null,
      userId: null,
      name: null,
      tokenHash: 'h',
      expiresAt: later(3600_000),
      at,
    },
  }
  it('a credential is usable until it expires or is revoked; only its account revokes it', () => {
    const state = fold(credential, [issued])
    expect(usable(state, new Date(later(1)))).toBe(true)
    expect(usable(state, new Date(later(3600_000)))).toBe(false)
    expect(
      usable(fold(credential, [issued, { type: 'credential.revoked', data: { credentialId: 'c1', at } }]), new Date(at)),
    ).toBe(false)
    expect(state.exists && state.parentId).toBe(null)
    deciderSpec(credential)
      .given([issued])
      .when({ type: 'revoke', credentialId: 'c1', byAccountId: 'other', at })
      .thenRefused('NOT_FOUND')
  })

  it('a handoff ticket is redeemed once, within its minute', () => {
    const spec = deciderSpec(handoff)
    const ticket = {
      type: 'handoff.issued' as const,
      data: {
        ticketId: 't1',
        accountId: 'acc',
        orgId,
        userId: 'u1',
        tokenHash: 'h',
        returnTo: '/',
        parentId: 'c1',
        expiresAt: later(60_000),
        at,
      },
    }
    spec
      .given([ticket])
      .when({ type: 'redeem', ticketId: 't1', at: later(1_000) })
      .then([{ type: 'handoff.redeemed', data: { ticketId: 't1', at: later(1_000) } }])
    spec
      .given([ticket])
      .when({ type: 'redeem', ticketId: 't1', at: later(60_000) })
      .thenRefused('HANDOFF_EXPIRED')
    spec
      .given([ticket, { type: 'handoff.redeemed', data: { ticketId: 't1', at } }])
      .when({ type: 'redeem', ticketId: 't1', at: later(1) })
      .thenRefused('HANDOFF_USED')
    spec.given([]).when({ type: 'redeem', ticketId: 't1', at }).thenRefused('HANDOFF_NOT_FOUND')
  })
})

describe('agents', () => {
  const spec = deciderSpec(agent)
  const made = {
    type: 'agent.created' as const,
    data: { agentId: 'g1', name: 'Bot', username: 'bot', rolePrompt: '', model: null, tools: [], createdBy: 'm1', at },
  }
  type Actor = { userId: string; role: 'owner' | 'admin' | 'member' | 'guest' }
  const rotate = (secretId: string, graceSeconds: number, actor: Actor = { userId: 'm1', role: 'member' }, when = at) =>
    ({
      type: 'rotate_secret',
      agentId: 'g1',
      secretId,
      sealedSecret: `sealed-${secretId}`,
      graceSeconds,
      actor,
      at: when,
    }) as const

  it('its creator or an admin rotates the secret; others may not', () => {
    spec
      .given([made])
      .when(rotate('s1', 0, { userId: 'x', role: 'member' }))
      .thenRefused('FORBIDDEN')
    spec
      .given([made])
      .when(rotate('s1', 0, { userId: 'x', role: 'admin' }))
      .then([
        {
          type: 'agent.secret_rotated',
          data: { agentId: 'g1', secretId: 's1', sealedSecret: 'sealed-s1', previousValidUntil: null, by: 'x', at },
        },
      ])
    spec.given([]).when(rotate('s1', 0)).thenRefused('AGENT_NOT_FOUND')
    spec.given([made]).when(rotate('s1', -1)).thenRefused('GRACE_INVALID')
  })

  it('a rotation retires the previous secret at once, or after its grace period', () => {
    const history = (grace: number) => {
      let h: Parameters<typeof agent.evolve>[1][] = [made]
      h = [...h, ...agent.decide(rotate('s1', 0), fold(agent, h))]
      h = [...h, ...agent.decide(rotate('s2', grace, undefined, later(1_000)), fold(agent, h))]
      return fold(agent, h)
    }
    expect(liveSecrets(history(0), new Date(later(2_000))).map((s) => s.secretId)).toEqual(['s2'])
    const graced = history(60)
    expect(liveSecrets(graced, new Date(later(30_000))).map((s) => s.secretId)).toEqual(['s2', 's1'])
    expect(liveSecrets(graced, new Date(later(61_001))).map((s) => s.secretId)).toEqual(['s2'])
  })
})

describe('server keys', () => {
  const key = Buffer.alloc(32, 7)

  it('sealed secrets open only with the same key and context, and not when tampered with', () => {
    const sealer = new Sealer(key)
    const sealed = sealer.seal('wsa_secret', 'agent-1')
    expect(sealed).not.toContain('wsa_secret')
    expect(sealer.open(sealed, 'agent-1')).toBe('wsa_secret')
    expect(sealer.open(sealed, 'agent-2')).toBeNull()
    expect(new Sealer(Buffer.alloc(32, 8)).open(sealed, 'agent-1')).toBeNull()
    const [v, iv, body] = sealed.split('.')
    const flipped = `${v}.${iv}.${body!.slice(0, -2)}${body!.endsWith('AA') ? 'BB' : 'AA'}`
    expect(sealer.open(flipped, 'agent-1')).toBeNull()
    expect(sealer.open('garbage', 'agent-1')).toBeNull()
  })

  it('signed cookie values (hono signed cookies) verify under their name and key until they expire', async () => {
    const secret = new Uint8Array(key)
    const options = { publicUrl: 'https://example.test', path: '/auth/callback', secret }
    const app = new Hono()
    app.get('/set', async (c) => {
      await setExpiringSignedCookie(c, 'ws_login', { state: 's' }, 600_000, options)
      return c.text('ok')
    })
    app.get('/read', async (c) => {
      const now = Number(c.req.query('now') ?? Date.now())
      const other = c.req.query('key') === 'other' ? new Uint8Array(Buffer.alloc(32, 8)) : secret
      return c.json({ value: await expiringSignedCookie(c, c.req.query('name') ?? 'ws_login', other, now) })
    })
    const setCookie = (await app.request('/set')).headers.get('set-cookie')!
    expect(setCookie).toMatch(/^ws_login=[^;]+; Max-Age=600; Path=\/auth\/callback; HttpOnly; Secure; SameSite=Lax$/)
    const value = setCookie.slice('ws_login='.length, setCookie.indexOf(';'))
    const read = async (cookie: string, query = '') =>
      ((await (await app.request(`/read?${query}`, { headers: { cookie } })).json()) as { value: unknown }).value
    expect(await read(`ws_login=${value}`)).toEqual({ state: 's' })
    expect(await read(`ws_login=${value}`, `now=${Date.now() + 600_001}`)).toBeNull()
    expect(await read(`ws_login=${value}`, 'key=other')).toBeNull()
    expect(await read(`other=${value}`, 'name=other')).toBeNull()
    const [body, mac] = decodeURIComponent(value).split('.')
    const forged = Buffer.from(JSON.stringify({ n: 'ws_login', v: { state: 'x' }, exp: Date.now() + 600_000 })).toString(
      'base64url',
    )
    expect(await read(`ws_login=${encodeURIComponent(`${forged}.${mac}`)}`)).toBeNull()
    expect(await read(`ws_login=${body}.`)).toBeNull()
    expect(await read('')).toBeNull()
  })

  it('AUTH_SECRET_KEY is 32 bytes, hex or base64; the derived keys follow from it', async () => {
    expect(parseSecretKey('ab'.repeat(32))).toHaveLength(32)
    expect(parseSecretKey(Buffer.alloc(32, 1).toString('base64'))).toHaveLength(32)
    expect(() => parseSecretKey('short')).toThrow(/32 bytes/)
    const a = await loadAuthKeys({ secretKey: 'ab'.repeat(32), dataDir: '/nonexistent' })
    const b = await loadAuthKeys({ secretKey: 'ab'.repeat(32), dataDir: '/nonexistent' })
    expect(b.sealer.open(a.sealer.seal('x', 'c'), 'c')).toBe('x')
  })
})

describe('tokens in logs and org hosts', () => {
  it('redacts every token of ours inside a path or message', () => {
    const token = `wsi_${'A'.repeat(43)}`
    expect(redactTokensIn(`/orgs/invites/${token}.0193/accept`)).toBe('/orgs/invites/wsi_[redacted].0193/accept')
    expect(redactTokensIn('no tokens here')).toBe('no tokens here')
  })

  it('an org host is one label under BASE_DOMAIN', () => {
    expect(hostSlug('acme.example.com', 'example.com')).toBe('acme')
    expect(hostSlug('Acme.Example.com:8443', 'example.com')).toBe('acme')
    expect(hostSlug('example.com', 'example.com')).toBeNull()
    expect(hostSlug('a.b.example.com', 'example.com')).toBeNull()
    expect(hostSlug('acme.example.com.evil.test', 'example.com')).toBeNull()
    expect(hostSlug('evilexample.com', 'example.com')).toBeNull()
    expect(hostSlug(undefined, 'example.com')).toBeNull()
  })
})
