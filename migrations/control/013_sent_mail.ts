import { type Kysely, sql } from 'kysely'
import { ROLES } from '../shared.ts'

/*
 * Mail handed to SMTP, by Message-ID: a processor that repeats an event after a crash (its checkpoint saved after the
 * effect) finds the mail sent and sends nothing again. Not a read model; only the mailer reads and writes it.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    create table control.sent_mail (
      message_id text primary key,
      sent_at timestamptz not null default now()
    )`.execute(db)
  await sql`grant select, insert on control.sent_mail to ${sql.id(ROLES.app)}`.execute(db)
}
