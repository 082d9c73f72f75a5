import { type Kysely, sql } from 'kysely'

/**
 * A task's conversation is messages of the task's room that name the task: the room's timeline leaves them out
 * (as it leaves out thread replies) and the task's timeline reads them by task, in the room's order.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`alter table tenant.messages add column task_id uuid`.execute(db)
  await sql`create index messages_task on tenant.messages (tenant_id, task_id, seq) where task_id is not null`.execute(db)
}
