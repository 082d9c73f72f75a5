import { type Kysely, sql } from 'kysely'
import { tenantTable } from '../shared.ts'

/**
 * Recurring tasks' schedules (projections/task-schedules.ts), one per top-level task, and action items
 * (projections/action-items.ts): what waits for a person, per room and workspace: a plan or result waiting for
 * approval, a question put to someone, a spend limit reached. A row is deleted when what it waits for is resolved.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    create table tenant.task_schedules (
      tenant_id uuid not null,
      task_id uuid not null,
      cadence_kind text not null,
      every_minutes int,
      daily_at_utc text,
      per_run_usd_limit double precision,
      instructions text not null,
      status text not null,
      next_run_at timestamptz,
      runs int not null,
      last_run_at timestamptz,
      last_run_task_id uuid,
      created_at timestamptz not null,
      updated_at timestamptz not null,
      primary key (tenant_id, task_id)
    );
    create table tenant.action_items (
      tenant_id uuid not null,
      id text not null,
      kind text not null,
      task_id uuid,
      room_id uuid,
      to_user_id uuid,
      from_id uuid,
      gate text,
      scope text,
      scope_id text,
      text text not null,
      limit_micro_usd bigint,
      used_micro_usd bigint,
      created_at timestamptz not null,
      primary key (tenant_id, id)
    );
    create index action_items_task on tenant.action_items (tenant_id, task_id) where task_id is not null;
    create index action_items_room on tenant.action_items (tenant_id, room_id) where room_id is not null;
    create index action_items_to on tenant.action_items (tenant_id, to_user_id) where to_user_id is not null;
  `.execute(db)
  for (const t of ['task_schedules', 'action_items']) await tenantTable(db, t)
}
