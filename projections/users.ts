import type { InviteEvent, InviteRole } from '../domain/accounts.ts'
import type { ErasureEvent } from '../domain/erasure.ts'
import type { OrgEvent, OrgRole, UserType } from '../domain/orgs.ts'
import { ERASED_NAME } from '../domain/personal-data.ts'
import { type RowModel, rowProjector, type TableModel } from './rows.ts'

type UserEvent = Extract<OrgEvent, { type: `user.${string}` }>

/** The events of the users projector: the people and agents of an org, their erasure, the invites. */
type PeopleEvent = UserEvent | ErasureEvent | InviteEvent

/** A row of tenant.users (its tenant_id is the batch's). */
export type UserRow = {
  readonly id: string
  readonly account_id: string | null
  readonly type: UserType
  readonly username: string | null
  readonly display_name: string
  readonly email: string | null
  readonly role: OrgRole
  readonly status: 'active' | 'deactivated'
  readonly created_at: string
  readonly updated_at: string
}

/** A user's row: joined once (a repeat keeps the first), then activated, given roles, deactivated, erased. */
export const userRows: RowModel<PeopleEvent, UserRow> = {
  table: 'users',
  columns: ['id', 'account_id', 'type', 'username', 'display_name', 'email', 'role', 'status', 'created_at', 'updated_at'],
  key: 'id',
  keyOf(e) {
    switch (e.type) {
      case 'invite.created':
      case 'invite.accepted':
      case 'invite.revoked':
        return null
      default:
        return e.data.userId
    }
  },
  evolve(row, e) {
    switch (e.type) {
      case 'user.joined':
        return (
          row ?? {
            id: e.data.userId,
            account_id: e.data.accountId,
            type: e.data.type,
            username: e.data.username ?? null,
            display_name: e.data.displayName,
            email: e.data.email,
            role: e.data.role,
            status: 'active',
            created_at: e.data.at,
            updated_at: e.data.at,
          }
        )
      case 'user.activated':
        return row && { ...row, username: e.data.username, updated_at: e.data.at }
      case 'user.role_changed':
        return row && { ...row, role: e.data.role, updated_at: e.data.at }
      case 'user.deactivated':
        return row && { ...row, status: 'deactivated', updated_at: e.data.at }
      // What the row held came from events that now read erased: a rebuild gives this row too.
      case 'user.erased':
        return row && { ...row, display_name: ERASED_NAME, email: null, updated_at: e.data.at }
      default:
        return row
    }
  },
}

/** A row of tenant.invites. */
export type InviteRow = {
  readonly id: string
  readonly email: string
  readonly role: InviteRole
  readonly status: 'pending' | 'accepted' | 'revoked'
  readonly invited_by: string
  readonly expires_at: string
  readonly created_at: string
}

/** An invite's row: created pending once (a repeat keeps the first), then accepted or revoked. */
export const inviteRows: RowModel<PeopleEvent, InviteRow> = {
  table: 'invites',
  columns: ['id', 'email', 'role', 'status', 'invited_by', 'expires_at', 'created_at'],
  key: 'id',
  keyOf(e) {
    switch (e.type) {
      case 'invite.created':
      case 'invite.accepted':
      case 'invite.revoked':
        return e.data.inviteId
      default:
        return null
    }
  },
  evolve(row, e) {
    switch (e.type) {
      case 'invite.created':
        return (
          row ?? {
            id: e.data.inviteId,
            email: e.data.email,
            role: e.data.role,
            status: 'pending',
            invited_by: e.data.invitedBy,
            expires_at: e.data.expiresAt,
            created_at: e.data.at,
          }
        )
      case 'invite.accepted':
        return row && { ...row, status: 'accepted' }
      case 'invite.revoked':
        return row && { ...row, status: 'revoked' }
      default:
        return row
    }
  },
}

/** tenant.users and tenant.invites: the people and agents of an org, and who was invited. */
export const usersProjector = rowProjector({
  name: 'users',
  version: 1,
  schema: 'tenant',
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
  models: [userRows, inviteRows],
})

type MembershipEvent = Extract<UserEvent, { type: 'user.joined' | 'user.role_changed' | 'user.deactivated' }>

/** A row of control.memberships, the org (its org_id) being the batch's tenant. */
export type MembershipRow = {
  readonly account_id: string
  readonly user_id: string
  readonly role: OrgRole
  readonly status: 'active' | 'deactivated'
}

/**
 * An account's membership of an org, keyed by account: a person who joins (again, as a new user after being
 * deactivated) takes the row over; a change of role or a deactivation names its user, and changes the row only while
 * it is that user's. Agents have no account, hence no membership.
 */
export const membershipRows: TableModel<MembershipEvent, MembershipRow> = {
  table: 'memberships',
  columns: ['account_id', 'user_id', 'role', 'status'],
  key: ['account_id'],
  tenantColumn: 'org_id',
  refsOf: (e) =>
    e.type === 'user.joined' ? (e.data.accountId ? [{ account_id: e.data.accountId }] : []) : [{ user_id: e.data.userId }],
  evolve(row, e) {
    switch (e.type) {
      case 'user.joined':
        return e.data.accountId
          ? { account_id: e.data.accountId, user_id: e.data.userId, role: e.data.role, status: 'active' }
          : row
      case 'user.role_changed':
        return row && { ...row, role: e.data.role }
      case 'user.deactivated':
        return row && { ...row, status: 'deactivated' }
    }
  },
}

/** control.memberships: the orgs each account belongs to. */
export const membershipsProjector = rowProjector({
  name: 'memberships',
  version: 1,
  schema: 'control',
  eventTypes: ['user.joined', 'user.role_changed', 'user.deactivated'],
  models: [membershipRows],
})
