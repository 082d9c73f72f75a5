import { type Kysely, sql } from 'kysely'
import { controlTable } from '../shared.ts'

/**
 * Events a subscription could not handle, set aside so the ones after them go on: projectors park here in the
 * transaction that moves their checkpoint past the event, and processors will too (hence `consumer_kind`).
 * A row stays until an operator's retry succeeds (deleted) or they skip it (kept, as `skipped`, with who and
 * why). The event itself stays in the event store; its position, stream and revision find it again.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    create table control.parked_events (
      consumer_kind text not null check (consumer_kind in ('projector', 'processor')),
      consumer text not null,
      version int not null,
      event_id uuid not null,
      commit_position xid8 not null,
      prepare_position bigint not null,
      stream text not null,
      stream_revision bigint not null,
      type text not null,
      error text not null,
      attempts int not null,
      parked_at timestamptz not null default now(),
      last_failed_at timestamptz not null default now(),
      status text not null default 'parked' check (status in ('parked', 'skipped')),
      resolved_by text,
      resolved_at timestamptz,
      resolution_note text,
      primary key (consumer_kind, consumer, version, event_id)
    )`.execute(db)
  await controlTable(db, 'parked_events')
}
