import { type Kysely, sql } from 'kysely'
import { tenantTable } from '../shared.ts'

/**
 * The risky tools people let an agent use in a room without asking each time (projections/agents.ts, from
 * agent.tool_allowed): a row while allowed, none once revoked.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    create table tenant.agent_allowed_tools (
      tenant_id uuid not null,
      agent_id uuid not null,
      room_id uuid not null,
      tool text not null,
      allowed_by uuid not null,
      allowed_at timestamptz not null,
      primary key (tenant_id, agent_id, room_id, tool)
    );
  `.execute(db)
  await tenantTable(db, 'agent_allowed_tools')
}
