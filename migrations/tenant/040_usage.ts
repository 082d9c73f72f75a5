import { type Kysely, sql } from 'kysely'
import { tenantTable } from '../shared.ts'

/**
 * The usage read model: one row per usage record (what GET /api/usage sums into series and breakdowns, and GET
 * /api/limits into the month's spend per scope), and the org's caps as they stand. Money is integer micro-USD.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    create table tenant.usage_records (
      tenant_id uuid not null,
      record_id uuid not null,
      kind text not null,
      at timestamptz not null,
      agent_id uuid,
      room_id uuid,
      task_id uuid,
      vm_id uuid,
      model text,
      vm_size text,
      input_tokens bigint not null default 0,
      cached_input_tokens bigint not null default 0,
      output_tokens bigint not null default 0,
      vm_minutes bigint not null default 0,
      bytes bigint not null default 0,
      minutes bigint not null default 0,
      cost_micro_usd bigint not null,
      billed_micro_usd bigint not null,
      priced boolean not null,
      primary key (tenant_id, record_id)
    );
    create index usage_records_at on tenant.usage_records (tenant_id, at);
    create table tenant.usage_caps (
      tenant_id uuid not null,
      scope text not null,
      scope_id uuid not null,
      limit_micro_usd bigint not null,
      updated_at timestamptz not null,
      primary key (tenant_id, scope, scope_id)
    );`.execute(db)
  await tenantTable(db, 'usage_records')
  await tenantTable(db, 'usage_caps')
}
