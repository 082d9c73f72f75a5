import { type Kysely, sql } from 'kysely'
import { ROLES } from '../shared.ts'

/*
 * The dev mailbox: where mail goes when SMTP_URL is unset, so that a person running the product locally reads
 * every mail it sent at /dev-mail. One row per Message-ID: a reactor that sends the same mail again after a crash
 * (the same Message-ID) leaves one row. Not a read model: nothing rebuilds it, and nothing but the dev mailbox
 * reads it. The server's login stores and lists mails; nothing updates or deletes them.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    create table control.dev_mail (
      id uuid primary key,
      message_id text not null unique,
      sender text not null,
      recipients text[] not null,
      subject text not null,
      text_body text not null,
      html_body text,
      headers jsonb not null default '{}',
      sent_at timestamptz not null default now()
    )`.execute(db)
  await sql`create index dev_mail_sent_at on control.dev_mail (sent_at desc, id desc)`.execute(db)
  await sql`
    do $$ begin
      if exists (select from pg_roles where rolname = ${sql.lit(ROLES.app)}) then
        grant select, insert on control.dev_mail to ${sql.id(ROLES.app)};
      end if;
    end $$`.execute(db)
}
