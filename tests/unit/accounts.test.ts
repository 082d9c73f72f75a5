import { describe, expect, it } from 'vitest'
import {
  type AccountEvent,
  account,
  type CredentialEvent,
  credential,
  type HandoffEvent,
  handoff,
  type InviteEvent,
  identity,
  invite,
  normalizeEmail,
  usable,
} from '../../domain/accounts.ts'
import { fold } from '../../domain/decider.ts'
import { spec } from './spec.ts'

const at = '2026-11-28T10:00:00.000Z'
const later = (ms: number) => new Date(Date.parse(at) + ms).toISOString()
const orgId = '01935c7e-0000-7000-8000-0000000000aa'

describe('accounts and identities', () => {
  const registration = {
    accountId: 'acc',
    issuer: 'https://idp',
    subject: 'sub',
    email: 'ada@acme.test',
    emailVerified: true,
    at,
  }
  const registered: AccountEvent = { type: 'account.registered', data: registration }

  it('an account is registered once; registering it again changes nothing', () => {
    spec(account).given([]).when(registration).then([registered])
    spec(account)
      .given([registered])
      .when({ ...registration, email: 'other@acme.test' })
      .then([])
  })

  it('an account is its email and whether the provider verified it', () => {
    expect(account.initialState).toEqual({ exists: false })
    expect(fold(account, [registered])).toEqual({ exists: true, email: 'ada@acme.test', emailVerified: true })
  })

  it('an identity is claimed by the first account; later claims change nothing', () => {
    const claimed = { type: 'account.identity_claimed' as const, data: { accountId: 'acc' } }
    spec(identity).given([]).when({ accountId: 'acc' }).then([claimed])
    spec(identity).given([claimed]).when({ accountId: 'acc-2' }).then([])
    expect(identity.initialState).toEqual({ accountId: null })
    expect(fold(identity, [claimed])).toEqual({ accountId: 'acc' })
  })
})

describe('credentials', () => {
  const rules = spec(credential)
  const data = {
    credentialId: 'c1',
    kind: 'personal_token' as const,
    accountId: 'acc',
    tenantId: orgId,
    userId: 'u1',
    name: 'ci',
    tokenHash: 'h',
    expiresAt: later(3600_000),
    at,
  }
  const issued: CredentialEvent = { type: 'credential.issued', data }
  const revoked: CredentialEvent = { type: 'credential.revoked', data: { credentialId: 'c1', at: later(5) } }
  const revoke = (byAccountId = 'acc') => ({ type: 'revoke' as const, credentialId: 'c1', byAccountId, at: later(5) })

  it('a credential is issued once', () => {
    rules.given([]).when({ type: 'issue', data }).then([issued])
    rules.given([issued]).when({ type: 'issue', data }).thenRefused('CREDENTIAL_EXISTS', 'conflict')
  })

  it('its account revokes it, once', () => {
    rules.given([issued]).when(revoke()).then([revoked])
    rules.given([issued, revoked]).when(revoke()).then([])
  })

  it('another account, or a credential that does not exist, is not found', () => {
    rules.given([issued]).when(revoke('other')).thenRefused('NOT_FOUND', 'not_found')
    rules.given([]).when(revoke()).thenRefused('NOT_FOUND', 'not_found')
  })

  it('the state is the issued credential, with its parent session or none', () => {
    expect(credential.initialState).toEqual({ exists: false })
    expect(fold(credential, [issued])).toEqual({
      exists: true,
      credentialId: 'c1',
      kind: 'personal_token',
      accountId: 'acc',
      tenantId: orgId,
      userId: 'u1',
      name: 'ci',
      tokenHash: 'h',
      expiresAt: later(3600_000),
      at,
      parentId: null,
      revoked: false,
    })
    expect(fold(credential, [{ type: 'credential.issued', data: { ...data, parentId: 'c0' } }])).toMatchObject({
      parentId: 'c0',
    })
    expect(fold(credential, [issued, revoked])).toMatchObject({ exists: true, revoked: true })
    expect(fold(credential, [revoked])).toEqual({ exists: false })
  })

  it('a credential is usable until the instant it expires, unless revoked', () => {
    const s = fold(credential, [issued])
    expect(usable(s, new Date(later(3600_000 - 1)))).toBe(true)
    expect(usable(s, new Date(later(3600_000)))).toBe(false)
    expect(usable(fold(credential, [issued, revoked]), new Date(at))).toBe(false)
    expect(usable(credential.initialState, new Date(at))).toBe(false)
  })
})

describe('invites', () => {
  const rules = spec(invite)
  const data = {
    inviteId: 'i1',
    orgId,
    email: 'ivy@acme.test',
    role: 'admin' as const,
    tokenHash: 'h',
    invitedBy: 'o1',
    expiresAt: later(7 * 24 * 3600_000),
    at,
  }
  const created: InviteEvent = { type: 'invite.created', data }
  const accept = (when = later(1), email = 'ivy@acme.test', emailVerified = true) =>
    ({ type: 'accept', inviteId: 'i1', accountId: 'acc', accountEmail: email, emailVerified, userId: 'u9', at: when }) as const
  const accepted: InviteEvent = { type: 'invite.accepted', data: { inviteId: 'i1', accountId: 'acc', userId: 'u9', at } }
  const revoked: InviteEvent = { type: 'invite.revoked', data: { inviteId: 'i1', by: 'o1', at } }
  const revoke = { type: 'revoke', inviteId: 'i1', by: 'o1', at } as const

  it('an email is compared trimmed and lowercased', () => expect(normalizeEmail('  Ivy@ACME.test ')).toBe('ivy@acme.test'))

  it('an invite is created once, for the normalized email', () => {
    rules
      .given([])
      .when({ type: 'create', data: { ...data, email: ' Ivy@Acme.TEST ' } })
      .then([created])
    rules.given([created]).when({ type: 'create', data }).thenRefused('INVITE_EXISTS', 'conflict')
  })

  it('it is accepted until the instant it expires', () => {
    rules
      .given([created])
      .when(accept(later(7 * 24 * 3600_000 - 1)))
      .then([
        { type: 'invite.accepted', data: { inviteId: 'i1', accountId: 'acc', userId: 'u9', at: later(7 * 24 * 3600_000 - 1) } },
      ])
    rules
      .given([created])
      .when(accept(later(7 * 24 * 3600_000)))
      .thenRefused('INVITE_EXPIRED')
  })

  it('it is accepted by a verified account with its email, written any case', () => {
    rules
      .given([created])
      .when(accept(later(1), ' IVY@acme.test'))
      .then([{ type: 'invite.accepted', data: { inviteId: 'i1', accountId: 'acc', userId: 'u9', at: later(1) } }])
    rules
      .given([created])
      .when(accept(later(1), 'ivy@acme.test', false))
      .thenRefused('INVITE_EMAIL_MISMATCH', 'forbidden')
    rules
      .given([created])
      .when(accept(later(1), 'eve@acme.test'))
      .thenRefused('INVITE_EMAIL_MISMATCH', 'forbidden')
  })

  it('a used, revoked or unknown invite is refused, each for what it is', () => {
    rules.given([created, accepted]).when(accept()).thenRefused('INVITE_USED', 'conflict')
    rules.given([created, revoked]).when(accept()).thenRefused('INVITE_REVOKED')
    rules.given([]).when(accept()).thenRefused('INVITE_NOT_FOUND', 'not_found')
  })

  it('a pending invite is revoked; revoking a used or revoked one changes nothing', () => {
    rules.given([created]).when(revoke).then([revoked])
    rules.given([created, accepted]).when(revoke).then([])
    rules.given([created, revoked]).when(revoke).then([])
    rules.given([]).when(revoke).thenRefused('INVITE_NOT_FOUND', 'not_found')
  })

  it('the state is the invite and where it stands', () => {
    expect(invite.initialState).toEqual({ status: 'none' })
    const pending = {
      status: 'pending',
      orgId,
      email: 'ivy@acme.test',
      role: 'admin',
      tokenHash: 'h',
      expiresAt: later(7 * 24 * 3600_000),
    }
    expect(fold(invite, [created])).toEqual(pending)
    expect(fold(invite, [created, accepted])).toEqual({ ...pending, status: 'accepted' })
    expect(fold(invite, [created, revoked])).toEqual({ ...pending, status: 'revoked' })
    expect(fold(invite, [accepted])).toEqual({ status: 'none' })
    expect(fold(invite, [revoked])).toEqual({ status: 'none' })
  })
})

describe('handoff tickets', () => {
  const rules = spec(handoff)
  const data = {
    ticketId: 't1',
    accountId: 'acc',
    orgId,
    userId: 'u1',
    tokenHash: 'h',
    returnTo: '/rooms',
    parentId: null,
    expiresAt: later(60_000),
    at,
  }
  const issued: HandoffEvent = { type: 'handoff.issued', data }
  const redeemed: HandoffEvent = { type: 'handoff.redeemed', data: { ticketId: 't1', at } }

  it('a ticket is issued once', () => {
    rules.given([]).when({ type: 'issue', data }).then([issued])
    rules.given([issued]).when({ type: 'issue', data }).thenRefused('HANDOFF_EXISTS', 'conflict')
  })

  it('it is redeemed until the instant it expires, once', () => {
    rules
      .given([issued])
      .when({ type: 'redeem', ticketId: 't1', at: later(59_999) })
      .then([{ type: 'handoff.redeemed', data: { ticketId: 't1', at: later(59_999) } }])
    rules
      .given([issued])
      .when({ type: 'redeem', ticketId: 't1', at: later(60_000) })
      .thenRefused('HANDOFF_EXPIRED')
    rules
      .given([issued, redeemed])
      .when({ type: 'redeem', ticketId: 't1', at: later(1) })
      .thenRefused('HANDOFF_USED', 'conflict')
    rules.given([]).when({ type: 'redeem', ticketId: 't1', at }).thenRefused('HANDOFF_NOT_FOUND', 'not_found')
  })

  it('the state is where the ticket leads and whether it was used', () => {
    expect(handoff.initialState).toEqual({ status: 'none' })
    const ticket = {
      status: 'issued',
      accountId: 'acc',
      orgId,
      userId: 'u1',
      tokenHash: 'h',
      returnTo: '/rooms',
      parentId: null,
      expiresAt: later(60_000),
    }
    expect(fold(handoff, [issued])).toEqual(ticket)
    expect(fold(handoff, [issued, redeemed])).toEqual({ ...ticket, status: 'redeemed' })
    expect(fold(handoff, [redeemed])).toEqual({ status: 'none' })
  })
})
