import { type Kysely, sql } from 'kysely'
import { ROLES } from '../shared.ts'

/*
 * The tasks agents' threads wait for, as the agent-task-waits processor keeps them (processors/agents/task-waits.ts):
 * a row when it handles a thread.task_awaited whose task is still open, deleted once the thread is woken for the
 * task's close. Not a read model: only that processor reads and writes it, in event order per tenant, so a close
 * finds every wait recorded before it. A control table without row-level security (`org_id`, as control.timers).
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    create table control.agent_task_waits (
      org_id uuid not null,
      task_id uuid not null,
      wait_id uuid not null,
      thread_id uuid not null,
      note text,
      awaited_at timestamptz not null,
      primary key (org_id, task_id, wait_id)
    )`.execute(db)
  await sql`grant select, insert, delete on control.agent_task_waits to ${sql.id(ROLES.app)}`.execute(db)
}
