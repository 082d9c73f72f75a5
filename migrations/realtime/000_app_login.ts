import { type Kysely, sql } from 'kysely'
import { createRoles, ROLES } from '../shared.ts'

/*
 * Every realtime table is plumbing the app runs outside any tenant transaction (user streams, queues, the
 * fan-out's outbox): the migrating owner's default privileges grant each to the app's login, so later realtime
 * migrations need no grant of their own. First in its set, so that a tenant database of its own gets it; on a
 * database that holds every logical database, control/007 did the same before.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  const app = sql.id(ROLES.app)
  await createRoles(db)
  await sql`grant usage on schema realtime to ${app}`.execute(db)
  await sql`grant select, insert, update, delete on all tables in schema realtime to ${app}`.execute(db)
  await sql`alter default privileges in schema realtime grant select, insert, update, delete on tables to ${app}`.execute(db)
}
