import { type Kysely, sql } from 'kysely'
import { tenantTable } from '../shared.ts'

/**
 * Agents' read model (projections/agents.ts): each agent's settings and current role prompt, every version of its
 * role prompt, and its proposals. Lists (skillsets, access, role prompts) are JSON text written in one key order, so
 * a rebuild writes the same bytes.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    create table tenant.agents (
      tenant_id uuid not null,
      id uuid not null,
      name text not null,
      username text not null,
      created_by uuid not null,
      model text,
      reasoning_effort text,
      skillsets text not null,
      spend_limit_usd double precision,
      access text not null,
      role_prompt text not null,
      role_prompt_version int not null,
      open_proposal_id uuid,
      created_at timestamptz not null,
      updated_at timestamptz not null,
      primary key (tenant_id, id)
    );
    create index agents_created on tenant.agents (tenant_id, created_at, id);
    create table tenant.agent_role_prompt_versions (
      tenant_id uuid not null,
      agent_id uuid not null,
      version int not null,
      role_prompt text not null,
      proposal_id uuid,
      set_by uuid not null,
      created_at timestamptz not null,
      primary key (tenant_id, agent_id, version)
    );
    create table tenant.agent_role_prompt_proposals (
      tenant_id uuid not null,
      id uuid not null,
      agent_id uuid not null,
      based_on_version int not null,
      role_prompt text not null,
      comment text,
      proposed_by uuid not null,
      status text not null,
      decided_by uuid,
      decision_comment text,
      accepted_version int,
      created_at timestamptz not null,
      decided_at timestamptz,
      primary key (tenant_id, id)
    );
    create index agent_role_prompt_proposals_agent on tenant.agent_role_prompt_proposals (tenant_id, agent_id, created_at desc, id desc);
  `.execute(db)
  for (const t of ['agents', 'agent_role_prompt_versions', 'agent_role_prompt_proposals']) await tenantTable(db, t)
}
