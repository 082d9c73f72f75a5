import { type Kysely, sql } from 'kysely'
import { tenantTable } from '../shared.ts'

/** The agents' threads, runs, run items and groups (projections/runs.ts). */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    create table tenant.agent_threads (
      tenant_id uuid not null,
      id uuid not null,
      agent_id uuid not null,
      room_id uuid not null,
      task_id uuid,
      work_type text not null,
      active_run_id uuid,
      pending_inputs int not null,
      created_at timestamptz not null,
      updated_at timestamptz not null,
      primary key (tenant_id, id)
    );
    create index agent_threads_agent on tenant.agent_threads (tenant_id, agent_id, updated_at);
    create index agent_threads_room on tenant.agent_threads (tenant_id, room_id, updated_at);
    create table tenant.agent_runs (
      tenant_id uuid not null,
      id uuid not null,
      thread_id uuid not null,
      agent_id uuid not null,
      room_id uuid not null,
      task_id uuid,
      status text not null,
      inputs text not null,
      sequence int not null,
      worker_id text,
      lease_until timestamptz,
      pending_tool_call_id text,
      pending_tool text,
      outcome_code text,
      outcome_detail text,
      created_at timestamptz not null,
      started_at timestamptz,
      finished_at timestamptz,
      updated_at timestamptz not null,
      primary key (tenant_id, id)
    );
    create index agent_runs_thread on tenant.agent_runs (tenant_id, thread_id, id);
    -- "Working now": the runs not finished, per agent.
    create index agent_runs_active on tenant.agent_runs (tenant_id, agent_id) where finished_at is null;
    create table tenant.agent_run_items (
      tenant_id uuid not null,
      item_id uuid not null,
      run_id uuid not null,
      group_id uuid not null,
      sequence int not null,
      kind text not null,
      status text not null,
      content text not null,
      tool_call_id text,
      tool text,
      arguments text,
      created_at timestamptz not null,
      updated_at timestamptz not null,
      primary key (tenant_id, item_id)
    );
    create index agent_run_items_run on tenant.agent_run_items (tenant_id, run_id, sequence);
    create table tenant.agent_run_groups (
      tenant_id uuid not null,
      group_id uuid not null,
      run_id uuid not null,
      kind text not null,
      status text not null,
      created_at timestamptz not null,
      updated_at timestamptz not null,
      primary key (tenant_id, group_id)
    );
    create index agent_run_groups_run on tenant.agent_run_groups (tenant_id, run_id, created_at);
  `.execute(db)
  for (const table of ['agent_threads', 'agent_runs', 'agent_run_items', 'agent_run_groups']) await tenantTable(db, table)
}
