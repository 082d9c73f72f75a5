import { type Kysely, sql } from 'kysely'
import { ROLES } from '../shared.ts'

/**
 * Drafts leave the event store: private scratch text that changes on every keystroke is no history worth keeping
 * forever. `tenant.drafts` stops being a read model of `draft.saved` events and becomes a table the draft command
 * writes directly, as ROLES.draftWriter: a role that may write this table and nothing else, and under a second,
 * restrictive policy only the drafts of the user its transaction is bound to (app.user_id). The rows the old
 * events projected stay: they are what those events said last. No projector writes the table any more, so the
 * projector role loses its writes, and rebuilds of the messages read model no longer touch it.
 *
 * The drafts of one user are looked up by user when that user is erased.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  const writer = sql.id(ROLES.draftWriter)
  await sql`
    do $$ begin
      if not exists (select from pg_roles where rolname = ${sql.lit(ROLES.draftWriter)}) then
        create role ${writer} nologin nobypassrls;
      end if;
    end $$`.execute(db)
  // The server's login switches to it per transaction; tools run by operators (seed) log in as the owner.
  await sql`grant ${writer} to current_user, ${sql.id(ROLES.app)}`.execute(db)
  await sql`grant usage on schema tenant to ${writer}`.execute(db)
  await sql`grant select, insert, update, delete on tenant.drafts to ${writer}`.execute(db)
  await sql`revoke insert, update, delete on tenant.drafts from ${sql.id(ROLES.projector)}`.execute(db)
  await sql`
    create policy own_drafts on tenant.drafts as restrictive to ${writer}
      using (user_id = (select nullif(current_setting('app.user_id', true), '')::uuid))
      with check (user_id = (select nullif(current_setting('app.user_id', true), '')::uuid))`.execute(db)
  await sql`create index drafts_user on tenant.drafts (tenant_id, user_id)`.execute(db)
}
