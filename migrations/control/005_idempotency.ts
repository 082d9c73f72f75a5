import { type Kysely, sql } from 'kysely'

/**
 * Answers given to commands sent with an Idempotency-Key, kept 24 hours. Infrastructure, not a read
 * model: it caches answers, while the command's events stay idempotent by their derived ids.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    create table control.idempotency_keys (
      actor text not null,
      key text not null,
      request_hash text not null,
      status int,
      body jsonb,
      created_at timestamptz not null default now(),
      primary key (actor, key)
    );
    create index idempotency_keys_created on control.idempotency_keys (created_at);
  `.execute(db)
}
