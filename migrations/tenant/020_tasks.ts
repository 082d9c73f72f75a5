import { type Kysely, sql } from 'kysely'
import { tenantTable } from '../shared.ts'

/**
 * Tasks' read model (projections/tasks.ts): the tasks, the people on them besides reporter and assignee
 * (assistants, watchers), and their depends-on links. `limit_reached` is set by usage events that name a task
 * (a reached spend limit); the effective status is computed on read from these columns.
 *
 * And the realtime fan-out's view of tasks (projections/realtime.ts): each task's room and the people who may
 * read it whatever the room says, kept in event order like fanout_rooms and fanout_members.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    create table tenant.tasks (
      tenant_id uuid not null,
      id uuid not null,
      room_id uuid not null,
      parent_id uuid,
      title text not null,
      description text not null default '',
      reporter_id uuid not null,
      assignee_id uuid,
      assignee_type text,
      status text not null,
      plan_required boolean not null,
      plan_state text not null,
      plan_text text,
      plan_submitted_by uuid,
      plan_decided_by uuid,
      plan_comment text,
      result_required boolean not null,
      result_state text not null,
      result_text text,
      result_submitted_by uuid,
      result_decided_by uuid,
      result_comment text,
      limit_reached boolean not null default false,
      created_at timestamptz not null,
      updated_at timestamptz not null,
      primary key (tenant_id, id)
    );
    create index tasks_created on tenant.tasks (tenant_id, created_at desc, id desc);
    create index tasks_room on tenant.tasks (tenant_id, room_id, created_at desc);
    create index tasks_assignee on tenant.tasks (tenant_id, assignee_id) where assignee_id is not null;
    create index tasks_parent on tenant.tasks (tenant_id, parent_id) where parent_id is not null;
    create table tenant.task_people (
      tenant_id uuid not null,
      task_id uuid not null,
      relation text not null,
      user_id uuid not null,
      added_at timestamptz not null,
      primary key (tenant_id, task_id, relation, user_id)
    );
    create index task_people_user on tenant.task_people (tenant_id, user_id);
    create table tenant.task_dependencies (
      tenant_id uuid not null,
      task_id uuid not null,
      depends_on_id uuid not null,
      added_at timestamptz not null,
      primary key (tenant_id, task_id, depends_on_id)
    );
    create index task_dependencies_target on tenant.task_dependencies (tenant_id, depends_on_id);
    create table tenant.fanout_tasks (
      tenant_id uuid not null,
      task_id uuid not null,
      room_id uuid not null,
      primary key (tenant_id, task_id)
    );
    create table tenant.fanout_task_people (
      tenant_id uuid not null,
      task_id uuid not null,
      user_id uuid not null,
      relation text not null,
      primary key (tenant_id, task_id, user_id, relation)
    );
  `.execute(db)
  for (const t of ['tasks', 'task_people', 'task_dependencies', 'fanout_tasks', 'fanout_task_people']) await tenantTable(db, t)
}
