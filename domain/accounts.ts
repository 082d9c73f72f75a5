import { type Decider, DomainError, type DomainEvent } from './decider.ts'

// --- A global account: one per person, keyed by issuer + subject (`account-<id>`).

export type AccountEvent = DomainEvent<
  'account.registered',
  { accountId: string; issuer: string; subject: string; email: string; emailVerified: boolean; at: string }
>
export type AccountState =
  | { readonly exists: false }
  | { readonly exists: true; readonly email: string; readonly emailVerified: boolean }

export const account: Decider<
  { accountId: string; issuer: string; subject: string; email: string; emailVerified: boolean; at: string },
  AccountEvent,
  AccountState
> = {
  initialState: { exists: false },
  decide: (c, s) => (s.exists ? [] : [{ type: 'account.registered', data: c }]),
  evolve: (_, e) => ({ exists: true, email: e.data.email, emailVerified: e.data.emailVerified }),
}

// --- Identity reservation (`account_identity-<hash of issuer and subject>`): find-or-create without a race.

export type IdentityEvent = DomainEvent<'account.identity_claimed', { accountId: string }>
export const identity: Decider<{ accountId: string }, IdentityEvent, { accountId: string | null }> = {
  initialState: { accountId: null },
  decide: (c, s) => (s.accountId ? [] : [{ type: 'account.identity_claimed', data: c }]),
  evolve: (_, e) => ({ accountId: e.data.accountId }),
}

// --- Credentials (`credential-<id>`): sessions and personal API tokens, stored as hashes only.

export type CredentialKind = 'session' | 'personal_token'

export type CredentialEvent =
  | DomainEvent<
      'credential.issued',
      {
        credentialId: string
        kind: CredentialKind
        accountId: string
        tenantId: string | null
        userId: string | null
        name: string | null
        tokenHash: string
        expiresAt: string
        /** A tenant session opened from an account session ends with it (logout ends the whole sign-in). */
        parentId?: string | null
        at: string
      }
    >
  | DomainEvent<'credential.revoked', { credentialId: string; at: string }>

export type CredentialState =
  | { readonly exists: false }
  | {
      readonly exists: true
      readonly kind: CredentialKind
      readonly accountId: string
      readonly tenantId: string | null
      readonly userId: string | null
      readonly tokenHash: string
      readonly expiresAt: string
      readonly parentId: string | null
      readonly revoked: boolean
    }

export type CredentialCommand =
  | { type: 'issue'; data: Extract<CredentialEvent, { type: 'credential.issued' }>['data'] }
  | { type: 'revoke'; credentialId: string; byAccountId: string; at: string }

export const credential: Decider<CredentialCommand, CredentialEvent, CredentialState> = {
  initialState: { exists: false },
  decide(c, s) {
    if (c.type === 'issue') {
      if (s.exists) throw new DomainError('CREDENTIAL_EXISTS', 'this credential exists', 'conflict')
      return [{ type: 'credential.issued', data: c.data }]
    }
    if (!s.exists || s.accountId !== c.byAccountId) throw new DomainError('NOT_FOUND', 'no such token', 'not_found')
    return s.revoked ? [] : [{ type: 'credential.revoked', data: { credentialId: c.credentialId, at: c.at } }]
  },
  evolve(s, e) {
    if (e.type === 'credential.issued') return { exists: true, ...e.data, parentId: e.data.parentId ?? null, revoked: false }
    return s.exists ? { ...s, revoked: true } : s
  },
}

/** Whether a credential may be used at `now`. */
export const usable = (s: CredentialState, now: Date): s is Extract<CredentialState, { exists: true }> =>
  s.exists && !s.revoked && new Date(s.expiresAt) > now

// --- Invites (`invite-<id>`): by email, expiring after 7 days.

export const INVITE_TTL_DAYS = 7

export type InviteRole = 'admin' | 'member' | 'guest'

export type InviteEvent =
  | DomainEvent<
      'invite.created',
      {
        inviteId: string
        orgId: string
        email: string
        role: InviteRole
        tokenHash: string
        invitedBy: string
        expiresAt: string
        at: string
      }
    >
  | DomainEvent<'invite.accepted', { inviteId: string; accountId: string; userId: string; at: string }>
  | DomainEvent<'invite.revoked', { inviteId: string; by: string; at: string }>

export type InviteState =
  | { readonly status: 'none' }
  | {
      readonly status: 'pending' | 'accepted' | 'revoked'
      readonly orgId: string
      readonly email: string
      readonly role: InviteRole
      readonly tokenHash: string
      readonly expiresAt: string
    }

export type InviteCommand =
  | { type: 'create'; data: Extract<InviteEvent, { type: 'invite.created' }>['data'] }
  | {
      type: 'accept'
      inviteId: string
      accountId: string
      accountEmail: string
      emailVerified: boolean
      userId: string
      at: string
    }
  | { type: 'revoke'; inviteId: string; by: string; at: string }

export const normalizeEmail = (email: string) => email.trim().toLowerCase()

export const invite: Decider<InviteCommand, InviteEvent, InviteState> = {
  initialState: { status: 'none' },
  decide(c, s) {
    switch (c.type) {
      case 'create':
        if (s.status !== 'none') throw new DomainError('INVITE_EXISTS', 'this invite exists', 'conflict')
        return [{ type: 'invite.created', data: { ...c.data, email: normalizeEmail(c.data.email) } }]
      case 'accept':
        if (s.status === 'none') throw new DomainError('INVITE_NOT_FOUND', 'no such invite', 'not_found')
        if (s.status === 'revoked') throw new DomainError('INVITE_REVOKED', 'this invite was revoked')
        if (s.status === 'accepted') throw new DomainError('INVITE_USED', 'this invite was used already', 'conflict')
        if (new Date(s.expiresAt) <= new Date(c.at)) throw new DomainError('INVITE_EXPIRED', 'this invite has expired')
        if (!c.emailVerified || normalizeEmail(c.accountEmail) !== s.email) {
          throw new DomainError('INVITE_EMAIL_MISMATCH', 'this invite is for another email address', 'forbidden')
        }
        return [{ type: 'invite.accepted', data: { inviteId: c.inviteId, accountId: c.accountId, userId: c.userId, at: c.at } }]
      case 'revoke':
        if (s.status === 'none') throw new DomainError('INVITE_NOT_FOUND', 'no such invite', 'not_found')
        if (s.status !== 'pending') return []
        return [{ type: 'invite.revoked', data: { inviteId: c.inviteId, by: c.by, at: c.at } }]
    }
  },
  evolve(s, e) {
    switch (e.type) {
      case 'invite.created':
        return {
          status: 'pending',
          orgId: e.data.orgId,
          email: e.data.email,
          role: e.data.role,
          tokenHash: e.data.tokenHash,
          expiresAt: e.data.expiresAt,
        }
      case 'invite.accepted':
        return s.status === 'none' ? s : { ...s, status: 'accepted' }
      case 'invite.revoked':
        return s.status === 'none' ? s : { ...s, status: 'revoked' }
    }
  },
}

// --- Handoff tickets (`handoff-<id>`): carry a signed-in account from the login host to an org host, once.

export const HANDOFF_TTL_MS = 60_000

export type HandoffEvent =
  | DomainEvent<
      'handoff.issued',
      {
        ticketId: string
        accountId: string
        orgId: string
        userId: string
        tokenHash: string
        returnTo: string
        /** The login host's session: the org host's session ends with it. */
        parentId: string | null
        expiresAt: string
        at: string
      }
    >
  | DomainEvent<'handoff.redeemed', { ticketId: string; at: string }>

export type HandoffState =
  | { readonly status: 'none' }
  | {
      readonly status: 'issued' | 'redeemed'
      readonly accountId: string
      readonly orgId: string
      readonly userId: string
      readonly tokenHash: string
      readonly returnTo: string
      readonly parentId: string | null
      readonly expiresAt: string
    }

export type HandoffCommand =
  | { type: 'issue'; data: Extract<HandoffEvent, { type: 'handoff.issued' }>['data'] }
  | { type: 'redeem'; ticketId: string; at: string }

/** Redeeming appends at the revision it read: of two uses of one ticket, one wins and the other is refused. */
export const handoff: Decider<HandoffCommand, HandoffEvent, HandoffState> = {
  initialState: { status: 'none' },
  decide(c, s) {
    if (c.type === 'issue') {
      if (s.status !== 'none') throw new DomainError('HANDOFF_EXISTS', 'this ticket exists', 'conflict')
      return [{ type: 'handoff.issued', data: c.data }]
    }
    if (s.status === 'none') throw new DomainError('HANDOFF_NOT_FOUND', 'no such ticket', 'not_found')
    if (s.status === 'redeemed') throw new DomainError('HANDOFF_USED', 'this ticket was used already', 'conflict')
    if (new Date(s.expiresAt) <= new Date(c.at)) throw new DomainError('HANDOFF_EXPIRED', 'this ticket has expired')
    return [{ type: 'handoff.redeemed', data: { ticketId: c.ticketId, at: c.at } }]
  },
  evolve(s, e) {
    if (e.type === 'handoff.issued') {
      const { accountId, orgId, userId, tokenHash, returnTo, parentId, expiresAt } = e.data
      return { status: 'issued', accountId, orgId, userId, tokenHash, returnTo, parentId, expiresAt }
    }
    return s.status === 'none' ? s : { ...s, status: 'redeemed' }
  },
}
