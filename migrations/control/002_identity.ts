import { type Kysely, sql } from 'kysely'
import { controlTable } from '../shared.ts'

/** Which orgs an account belongs to: answers /auth/me without visiting every tenant. */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    create table control.memberships (
      account_id uuid not null,
      org_id uuid not null,
      user_id uuid not null,
      role text not null,
      status text not null,
      primary key (account_id, org_id)
    );
  `.execute(db)
  await controlTable(db, 'memberships')
}
