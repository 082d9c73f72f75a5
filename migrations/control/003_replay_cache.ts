import { type Kysely, sql } from 'kysely'

/**
 * Single-use values (agent credential signatures, OIDC nonces) remembered until they expire, shared by
 * every API process: a key is claimed by one insert, so of two concurrent claims exactly one wins.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    create table control.replay_cache (
      key text primary key,
      expires_at timestamptz not null
    );
    create index replay_cache_expires on control.replay_cache (expires_at);
  `.execute(db)
}
