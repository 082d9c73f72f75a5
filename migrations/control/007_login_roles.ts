import { type Kysely, sql } from 'kysely'
import { createRoles, grantCheckpointsToApp, ROLES } from '../shared.ts'

/*
 * The server logs in as ROLES.app, never as the owner: a non-owner without BYPASSRLS, which FORCE'd row-level
 * security binds whatever role it runs as. It switches to the reader or projector role for tenant data; what
 * it does outside such a transaction is granted to it by name here, table by table (README, "Tenancy in
 * Postgres"). Databases migrated before this get the role here; new ones get it from 001 (createRoles).
 *
 * The event store's and the realtime schema's grants moved to their own sets (eventstore/010, realtime/000),
 * which run in whichever database holds them: the control database may be one of its own. Databases migrated
 * while this file still granted them keep those grants; the new migrations grant the same again.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  const app = sql.id(ROLES.app)
  await createRoles(db)

  await sql`grant usage on schema control to ${app}`.execute(db)
  await sql`grant select on control.orgs, control.memberships to ${app}`.execute(db)
  await sql`grant select, insert, update, delete on control.replay_cache, control.idempotency_keys to ${app}`.execute(db)
  // Operators list and skip parked events; a retry applies the event as the projector role.
  await sql`grant select, update on control.parked_events to ${app}`.execute(db)
  // The read API's role reads the registry for its own org's status, never every account's memberships or
  // the events projectors set aside: those are read as the login (sign-in, /auth/me, the Control API).
  await sql`revoke all on control.memberships, control.parked_events from ${sql.id(ROLES.reader)}`.execute(db)
  await grantCheckpointsToApp(db, 'control')
  const { rows } = await sql<{ t: string | null }>`select to_regclass('tenant.projection_checkpoints')::text as t`.execute(db)
  if (rows[0]?.t) await grantCheckpointsToApp(db, 'tenant')
}
