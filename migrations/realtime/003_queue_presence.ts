import { type Kysely, sql } from 'kysely'

/*
 * Presence (UserStreams.hasLiveQueue): whether a user holds a queue seen lately, asked for each person a
 * missed-mention email would go to. event_queues had only indexes by queue and by last_seen_at (the sweep);
 * this one answers it from the user's few rows.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`create index event_queues_user_seen on realtime.event_queues (user_id, last_seen_at)`.execute(db)
}
