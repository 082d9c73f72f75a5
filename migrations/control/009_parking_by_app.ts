import { type Kysely, sql } from 'kysely'
import { ROLES } from '../shared.ts'

/*
 * A projector of the tenant database parks into the control database, and when that is a database of its own it
 * does so as the app's login (no projector transaction spans both): the app may set events aside and, when an
 * operator's retry applies one, take it back.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`grant insert, delete on control.parked_events to ${sql.id(ROLES.app)}`.execute(db)
}
