import { type Kysely, sql } from 'kysely'
import { ROLES } from '../shared.ts'

/**
 * Durable timers as the timer runner polls them: one row per timer stream, written by its projector. The runner
 * (the app's login, in the processors role) asks for scheduled timers due by now, earliest first, and for the next
 * one due: hence the index on (status, due_at). A scheduled timer's row repeats its timer.scheduled (the command
 * as JSON text, as the event has it), so the runner decides a fire without reading the stream. The tenant's column is `org_id`, not tenant_id: a control table
 * without row-level security, read only by the runner, which fires every tenant's timers.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    create table control.timers (
      timer_id text primary key,
      org_id uuid,
      due_at timestamptz not null,
      command text not null,
      status text not null check (status in ('scheduled', 'fired', 'cancelled')),
      scheduled_at timestamptz not null,
      fired_at timestamptz,
      cancelled_at timestamptz
    )`.execute(db)
  await sql`create index timers_status_due_at on control.timers (status, due_at)`.execute(db)
  await sql`grant select, insert, update, delete on control.timers to ${sql.id(ROLES.projector)}`.execute(db)
  await sql`grant select on control.timers to ${sql.id(ROLES.app)}`.execute(db)
}
