import { type Kysely, sql } from 'kysely'

/**
 * One data key per subject (a user or an account), wrapped by a key derived from AUTH_SECRET_KEY: the personal
 * fields of events are encrypted under it (adapters/personal-data-store.ts). Erasing a subject destroys the
 * wrapped key and keeps the row, so the subject can never get a new key and whatever is still written about
 * them is stored erased. Not a read model: nothing rebuilds it, and losing a row loses that person's data.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    create table control.data_keys (
      user_id text primary key,
      wrapped_key text,
      created_at timestamptz not null default now(),
      erased_at timestamptz,
      check ((wrapped_key is null) = (erased_at is not null))
    )`.execute(db)
  // Only the server's own login uses keys, the reader and projector roles (tenant data) never. Where the server
  // still logs in as the owner (before migration 007 made the ws_app login), the owner needs no grant.
  await sql`
    do $$ begin
      if exists (select from pg_roles where rolname = 'ws_app') then
        grant select, insert, update on control.data_keys to ws_app;
      end if;
    end $$`.execute(db)
}
