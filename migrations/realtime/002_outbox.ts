import { type Kysely, sql } from 'kysely'
import { ROLES } from '../shared.ts'

/*
 * The realtime fan-out's outbox. A fan-out batch records, in its own transaction, each event it delivers once
 * (outbox_events) and each user it goes to (outbox); after the commit, deliveries are appended to the user
 * streams and leave the outbox, so a crash or a Redis outage between the two loses nothing and holds no
 * transaction open. outbox_heads keeps each user's last delivered id: every entry names the one before it.
 *
 * Ids are (commit, prepare) global positions, as in user_events; deliveries drain in that order.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    create table realtime.outbox_events (
      commit_position bigint not null,
      prepare_position bigint not null,
      type text not null,
      occurred_at text not null,
      data jsonb not null,
      primary key (commit_position, prepare_position)
    );

    create table realtime.outbox (
      commit_position bigint not null,
      prepare_position bigint not null,
      user_id text not null,
      primary key (commit_position, prepare_position, user_id)
    );

    create table realtime.outbox_heads (
      user_id text primary key,
      last_commit bigint not null,
      last_prepare bigint not null
    );
  `.execute(db)
  // Fan-out batches run as the projector role; the delivery runs as the connecting role, like the user streams.
  await sql`grant usage on schema realtime to ${sql.id(ROLES.projector)}`.execute(db)
  await sql`grant insert on realtime.outbox_events, realtime.outbox to ${sql.id(ROLES.projector)}`.execute(db)
}
