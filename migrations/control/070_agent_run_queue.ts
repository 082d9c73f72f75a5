import { type Kysely, sql } from 'kysely'
import { ROLES } from '../shared.ts'

/**
 * The runs not finished, across tenants, as agent workers look for work (projections/run-queue.ts): a platform
 * table without row-level security, read by the app's login in the agents role. Finished runs leave it, so it
 * stays as small as the work in flight.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    create table control.agent_run_queue (
      org_id uuid not null,
      run_id uuid not null,
      agent_id uuid not null,
      status text not null check (status in ('queued', 'in_progress', 'requires_action')),
      lease_until timestamptz,
      queued_at timestamptz not null,
      primary key (org_id, run_id)
    )`.execute(db)
  await sql`create index agent_run_queue_claimable on control.agent_run_queue (queued_at) where status <> 'requires_action'`.execute(
    db,
  )
  await sql`grant select, insert, update, delete on control.agent_run_queue to ${sql.id(ROLES.projector)}`.execute(db)
  await sql`grant select on control.agent_run_queue to ${sql.id(ROLES.app)}`.execute(db)
}
