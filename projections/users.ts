import type { InviteEvent } from '../domain/accounts.ts'
import type { ErasureEvent } from '../domain/erasure.ts'
import type { OrgEvent } from '../domain/orgs.ts'
import { ERASED_NAME } from '../domain/personal-data.ts'
import type { Projector } from './engine.ts'

type UserEvent = Extract<OrgEvent, { type: `user.${string}` }>

/** tenant.users and tenant.invites: the people and agents of an org, and who was invited. */
export const usersProjector: Projector<UserEvent | ErasureEvent | InviteEvent> = {
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
  async apply(trx, events) {
    for (const e of events) {
      const tenantId = e.metadata.tenantId!
      const user = (userId: string) => trx.updateTable('users').where('tenant_id', '=', tenantId).where('id', '=', userId)
      const inviteRow = (inviteId: string) =>
        trx.updateTable('invites').where('tenant_id', '=', tenantId).where('id', '=', inviteId)
      switch (e.type) {
        case 'user.joined': {
          const d = e.data
          await trx
            .insertInto('users')
            .values({
              tenant_id: tenantId,
              id: d.userId,
              account_id: d.accountId,
              type: d.type,
              username: d.username ?? null,
              display_name: d.displayName,
              email: d.email,
              role: d.role,
              status: 'active',
              created_at: d.at,
              updated_at: d.at,
            })
            .onConflict((oc) => oc.columns(['tenant_id', 'id']).doNothing())
            .execute()
          break
        }
        case 'user.activated':
          await user(e.data.userId).set({ username: e.data.username, updated_at: e.data.at }).execute()
          break
        case 'user.role_changed':
          await user(e.data.userId).set({ role: e.data.role, updated_at: e.data.at }).execute()
          break
        case 'user.deactivated':
          await user(e.data.userId).set({ status: 'deactivated', updated_at: e.data.at }).execute()
          break
        // What the row held came from events that now read erased: a rebuild gives this row too.
        case 'user.erased':
          await user(e.data.userId).set({ display_name: ERASED_NAME, email: null, updated_at: e.data.at }).execute()
          break
        case 'invite.created': {
          const d = e.data
          await trx
            .insertInto('invites')
            .values({
              tenant_id: tenantId,
              id: d.inviteId,
              email: d.email,
              role: d.role,
              status: 'pending',
              invited_by: d.invitedBy,
              expires_at: d.expiresAt,
              created_at: d.at,
            })
            .onConflict((oc) => oc.columns(['tenant_id', 'id']).doNothing())
            .execute()
          break
        }
        case 'invite.accepted':
          await inviteRow(e.data.inviteId).set({ status: 'accepted' }).execute()
          break
        case 'invite.revoked':
          await inviteRow(e.data.inviteId).set({ status: 'revoked' }).execute()
          break
      }
    }
  },
}

/** control.memberships: the orgs each account belongs to. */
export const membershipsProjector: Projector<
  Extract<UserEvent, { type: 'user.joined' | 'user.role_changed' | 'user.deactivated' }>
> = {
  name: 'memberships',
  version: 1,
  schema: 'control',
  tables: ['memberships'],
  eventTypes: ['user.joined', 'user.role_changed', 'user.deactivated'],
  async apply(trx, events) {
    for (const e of events) {
      const orgId = e.metadata.tenantId!
      if (e.type === 'user.joined') {
        if (!e.data.accountId) continue
        await trx
          .insertInto('memberships')
          .values({ account_id: e.data.accountId, org_id: orgId, user_id: e.data.userId, role: e.data.role, status: 'active' })
          .onConflict((oc) =>
            oc.columns(['account_id', 'org_id']).doUpdateSet({ user_id: e.data.userId, role: e.data.role, status: 'active' }),
          )
          .execute()
      } else if (e.type === 'user.role_changed') {
        await trx
          .updateTable('memberships')
          .set({ role: e.data.role })
          .where('org_id', '=', orgId)
          .where('user_id', '=', e.data.userId)
          .execute()
      } else if (e.type === 'user.deactivated') {
        await trx
          .updateTable('memberships')
          .set({ status: 'deactivated' })
          .where('org_id', '=', orgId)
          .where('user_id', '=', e.data.userId)
          .execute()
      }
    }
  },
}
