import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import type { InviteEvent } from '../../domain/accounts.ts'
import type { ErasureEvent } from '../../domain/erasure.ts'
import type { MemberJoined, OrgEvent, OrgRole } from '../../domain/orgs.ts'
import { ERASED_NAME } from '../../domain/personal-data.ts'
import { evolveTable } from '../../projections/rows.ts'
import {
  type InviteRow,
  inviteRows,
  type MembershipRow,
  membershipRows,
  membershipsProjector,
  type UserRow,
  userRows,
  usersProjector,
} from '../../projections/users.ts'
import { projectionSpec } from '../support/projection-spec.ts'

const t0 = '2026-11-28T10:00:00.000Z'
const t1 = '2026-11-28T11:00:00.000Z'
const t2 = '2026-11-28T12:00:00.000Z'
const week = '2026-12-05T10:00:00.000Z'

const joined = (over: Partial<MemberJoined> = {}) =>
  ({
    type: 'user.joined',
    data: {
      userId: 'u1',
      accountId: 'acc-1',
      type: 'human',
      role: 'member',
      email: 'ann@example.com',
      displayName: 'Ann',
      at: t0,
      ...over,
    },
  }) satisfies OrgEvent
const activated = (username: string, at = t1, userId = 'u1') =>
  ({ type: 'user.activated', data: { userId, username, at } }) satisfies OrgEvent
const roleChanged = (role: OrgRole, at = t1, userId = 'u1') =>
  ({ type: 'user.role_changed', data: { userId, role, by: 'owner', at } }) satisfies OrgEvent
const deactivated = (at = t2, userId = 'u1') =>
  ({ type: 'user.deactivated', data: { userId, by: 'owner', at } }) satisfies OrgEvent
const erased = (at = t2, userId = 'u1') => ({ type: 'user.erased', data: { userId, at } }) satisfies ErasureEvent
const invited = (inviteId = 'inv-1', at = t0) =>
  ({
    type: 'invite.created',
    data: {
      inviteId,
      orgId: 'org-1',
      email: 'bob@example.com',
      role: 'member',
      tokenHash: 'hash',
      invitedBy: 'u1',
      expiresAt: week,
      at,
    },
  }) satisfies InviteEvent
const accepted = (inviteId = 'inv-1') =>
  ({ type: 'invite.accepted', data: { inviteId, accountId: 'acc-2', userId: 'u2', at: t1 } }) satisfies InviteEvent
const revoked = (inviteId = 'inv-1') => ({ type: 'invite.revoked', data: { inviteId, by: 'u1', at: t1 } }) satisfies InviteEvent

const ann: UserRow = {
  id: 'u1',
  account_id: 'acc-1',
  type: 'human',
  username: null,
  display_name: 'Ann',
  email: 'ann@example.com',
  role: 'member',
  status: 'active',
  created_at: t0,
  updated_at: t0,
}
const invite: InviteRow = {
  id: 'inv-1',
  email: 'bob@example.com',
  role: 'member',
  status: 'pending',
  invited_by: 'u1',
  expires_at: week,
  created_at: t0,
}

describe('users read model', () => {
  const users = projectionSpec(userRows)

  it('a person who joins is an active row without a username; an agent joins with its username', () => {
    users.given([]).when(joined()).then([ann])
    users
      .given([])
      .when(joined({ userId: 'a1', accountId: null, type: 'agent', email: null, displayName: 'Bot', username: 'bot' }))
      .then([{ ...ann, id: 'a1', account_id: null, type: 'agent', email: null, display_name: 'Bot', username: 'bot' }])
  })

  it('activation gives the username, a role change the role, deactivation the status, each with its time', () => {
    users
      .given([ann])
      .when(activated('ann'))
      .then([{ ...ann, username: 'ann', updated_at: t1 }])
    users
      .given([ann])
      .when(roleChanged('admin'))
      .then([{ ...ann, role: 'admin', updated_at: t1 }])
    users
      .given([ann])
      .when(deactivated())
      .then([{ ...ann, status: 'deactivated', updated_at: t2 }])
  })

  it('an erased user keeps their row, without their name or email', () =>
    users
      .given([{ ...ann, username: 'ann' }])
      .when(erased())
      .then([{ ...ann, username: 'ann', display_name: ERASED_NAME, email: null, updated_at: t2 }]))

  it('a repeated join keeps the first row (and writes nothing)', () =>
    users
      .given([ann])
      .when(joined({ displayName: 'Other', at: t1 }))
      .thenWrites({ upserts: [], deletes: [] }))

  it('events about a user with no row, and invites, change no user row', () =>
    users
      .given([ann])
      .when(
        activated('x', t1, 'u9'),
        roleChanged('owner', t1, 'u9'),
        deactivated(t2, 'u9'),
        erased(t2, 'u9'),
        invited(),
        accepted(),
      )
      .thenWrites({ upserts: [], deletes: [] }))

  it('a user joined, activated and promoted in one batch is written once, as they end up', () =>
    users
      .given([])
      .when(joined(), activated('ann'), roleChanged('admin', t2))
      .thenWrites({ upserts: [{ ...ann, username: 'ann', role: 'admin', updated_at: t2 }], deletes: [] }))
})

describe('invites read model', () => {
  const invites = projectionSpec(inviteRows)

  it('a created invite is pending', () => invites.given([]).when(invited()).then([invite]))

  it('an accepted or revoked invite says so, and keeps when it was created', () => {
    invites
      .given([invite])
      .when(accepted())
      .then([{ ...invite, status: 'accepted' }])
    invites
      .given([invite])
      .when(revoked())
      .then([{ ...invite, status: 'revoked' }])
  })

  it('a repeated creation keeps the first row; events about an invite with no row change nothing', () => {
    invites.given([invite]).when(invited('inv-1', t1)).thenWrites({ upserts: [], deletes: [] })
    invites.given([invite]).when(accepted('inv-9'), revoked('inv-9')).then([invite])
  })

  it('user events change no invite row', () =>
    invites.given([invite]).when(joined(), activated('ann'), erased()).thenWrites({ upserts: [], deletes: [] }))
})

type MembershipEvent = Parameters<typeof membershipRows.evolve>[1]
const memberships = (given: readonly MembershipRow[], ...events: MembershipEvent[]) => evolveTable(membershipRows, given, events)
const annIn: MembershipRow = { account_id: 'acc-1', user_id: 'u1', role: 'member', status: 'active' }

describe('memberships read model', () => {
  it('a person who joins has an active membership with their role; an agent, none', () => {
    expect(memberships([], joined()).rows).toEqual([annIn])
    expect(memberships([], joined({ userId: 'a1', accountId: null, type: 'agent' }))).toEqual({
      rows: [],
      upserts: [],
      deletes: [],
    })
  })

  it('a role change and a deactivation, named by user, change the membership of their account', () => {
    expect(memberships([annIn], roleChanged('admin')).rows).toEqual([{ ...annIn, role: 'admin' }])
    expect(memberships([annIn], deactivated()).rows).toEqual([{ ...annIn, status: 'deactivated' }])
  })

  it('events about a user with no membership change nothing', () =>
    expect(memberships([annIn], roleChanged('owner', t1, 'u9'), deactivated(t2, 'u9'))).toEqual({
      rows: [annIn],
      upserts: [],
      deletes: [],
    }))

  it('an account that joins again as another user takes its membership over: events about the old user no longer touch it', () => {
    const out = memberships(
      [annIn],
      deactivated(t1),
      joined({ userId: 'u2', role: 'guest', at: t1 }),
      roleChanged('admin', t2, 'u1'),
    )
    expect(out.rows).toEqual([{ account_id: 'acc-1', user_id: 'u2', role: 'guest', status: 'active' }])
    expect(out.upserts).toEqual(out.rows)
  })

  it('a membership joined and changed in one batch is found by its user', () =>
    expect(memberships([], joined(), roleChanged('admin'), deactivated()).upserts).toEqual([
      { ...annIn, role: 'admin', status: 'deactivated' },
    ]))

  /**
   * What the projector did before it was an evolve, one statement an event: a join upserts the account's row, a role
   * change or deactivation updates the row that has the user. The evolve must leave the same rows, batch or not.
   */
  const statements = (rows: readonly MembershipRow[], events: readonly MembershipEvent[]): MembershipRow[] => {
    const table = new Map(rows.map((r) => [r.account_id, r]))
    const where = (userId: string, change: (r: MembershipRow) => MembershipRow) => {
      for (const [k, r] of table) if (r.user_id === userId) table.set(k, change(r))
    }
    for (const e of events) {
      if (e.type === 'user.joined') {
        if (e.data.accountId)
          table.set(e.data.accountId, {
            account_id: e.data.accountId,
            user_id: e.data.userId,
            role: e.data.role,
            status: 'active',
          })
      } else if (e.type === 'user.role_changed') where(e.data.userId, (r) => ({ ...r, role: e.data.role }))
      else where(e.data.userId, (r) => ({ ...r, status: 'deactivated' }))
    }
    return [...table.values()].sort((a, b) => a.account_id.localeCompare(b.account_id))
  }

  // A user id is one account's (or an agent's, without one) for good, as the org decider has it; an account may join
  // again as another user.
  const accountOf: Record<string, string | null> = { u1: 'acc-1', u2: 'acc-1', u3: 'acc-2', a1: null }
  const user = fc.constantFrom(...Object.keys(accountOf))
  const events = fc.array(
    fc.oneof(
      fc
        .record({ userId: user, role: fc.constantFrom<OrgRole>('owner', 'member') })
        .map(({ userId, role }) => joined({ userId, role, accountId: accountOf[userId] ?? null })),
      fc
        .record({ userId: user, role: fc.constantFrom<OrgRole>('admin', 'guest') })
        .map(({ userId, role }) => roleChanged(role, t1, userId)),
      user.map((userId) => deactivated(t2, userId)),
    ),
    { maxLength: 25 },
  )

  it('leaves the rows the statements did, whether the events come in one batch or several', () => {
    fc.assert(
      fc.property(events, fc.array(fc.nat(25)), (batch, cuts) => {
        const expected = statements([], batch)
        expect(memberships([], ...batch).rows).toEqual(expected)
        const bounds = [...new Set([0, ...cuts.map((c) => Math.min(c, batch.length)), batch.length])].sort((a, b) => a - b)
        let rows: MembershipRow[] = []
        for (let i = 1; i < bounds.length; i++) rows = memberships(rows, ...batch.slice(bounds[i - 1], bounds[i])).rows
        expect(rows).toEqual(expected)
      }),
    )
  })
})

describe('users and memberships projectors', () => {
  it('keep the names, versions, schemas, tables and event types of their checkpoints', () => {
    expect(usersProjector).toMatchObject({
      name: 'users',
      version: 1,
      schema: 'tenant',
      tables: ['users', 'invites'],
      eventTypes: [
        'user.joined',
        'user.activated',
        'user.role_changed',
        'user.deactivated',
        'user.erased',
        'invite.created',
        'invite.accepted',
        'invite.revoked',
      ],
    })
    expect(membershipsProjector).toMatchObject({
      name: 'memberships',
      version: 1,
      schema: 'control',
      tables: ['memberships'],
      eventTypes: ['user.joined', 'user.role_changed', 'user.deactivated'],
    })
  })
})
