import { type Kysely, sql } from 'kysely'

/** Action items of agents' runs (projections/action-items.ts): a tool call waiting for a person, a failed run. */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`alter table tenant.action_items add column run_id uuid, add column tool text, add column tool_call_id text`.execute(
    db,
  )
}
