import { type Kysely, sql } from 'kysely'
import { createRoles, ROLES } from '../shared.ts'

/*
 * The app's login appends and reads streams (commands, authentication, projectors following $all). Granted here,
 * in the event store's own set, so that an event store in a database of its own gets it too; on a database
 * that holds every logical database, control/007 granted the same before.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await createRoles(db)
  await sql`grant usage on schema eventstore to ${sql.id(ROLES.app)}`.execute(db)
  await sql`grant select, insert on eventstore.events to ${sql.id(ROLES.app)}`.execute(db)
}
