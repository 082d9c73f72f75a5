import { type Kysely, sql } from 'kysely'
import { ROLES } from '../shared.ts'

/**
 * The Control API's read models. control.orgs gains what operators set on an org (seats and storage limits, the
 * LLM policy; null: none set) and trigram indexes for the operators' search by name or slug (a substring, so a
 * btree on the prefix would not serve it). control.operators lists the operators (the event stream
 * `operators-platform` decides who is one; this is for listing). Memberships are counted per org for the orgs'
 * seats in use: hence the index leading with org_id.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`create extension if not exists pg_trgm`.execute(db)
  await sql`
    alter table control.orgs
      add column seats integer,
      add column storage_bytes bigint,
      add column llm_allowed_models text,
      add column llm_key_source text check (llm_key_source in ('platform', 'org')),
      add column llm_monthly_token_budget bigint`.execute(db)
  await sql`create index orgs_name_trgm on control.orgs using gin (lower(name) gin_trgm_ops)`.execute(db)
  await sql`create index orgs_slug_trgm on control.orgs using gin (slug gin_trgm_ops)`.execute(db)
  await sql`create index orgs_status_created on control.orgs (status, created_at, id)`.execute(db)
  await sql`create index memberships_org_status on control.memberships (org_id, status)`.execute(db)
  await sql`
    create table control.operators (
      account_id uuid primary key,
      granted_by uuid,
      granted_at timestamptz not null
    )`.execute(db)
  await sql`grant select, insert, update, delete on control.operators to ${sql.id(ROLES.projector)}`.execute(db)
  await sql`grant select on control.operators to ${sql.id(ROLES.app)}`.execute(db)
}
