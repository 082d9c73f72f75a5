import { type Kysely, sql } from 'kysely'
import { controlTable, createCheckpointTable, createRoles } from '../shared.ts'

export async function up(db: Kysely<unknown>): Promise<void> {
  await createRoles(db)
  await createCheckpointTable(db, 'control')
  // The orgs registry. Names are unique by the reservation stream, never by this table.
  await sql`
    create table control.orgs (
      id uuid primary key,
      name text not null,
      slug text not null unique,
      status text not null default 'active',
      created_at timestamptz not null,
      updated_at timestamptz not null
    )`.execute(db)
  await controlTable(db, 'orgs')
}
