import { sql } from 'kysely'
import type { Mail, Mailer } from './mailer.ts'
import type { AnyDb } from './postgres.ts'

/**
 * SMTP sends every mail it is handed: a processor repeating an event after a crash would send its mail again. This
 * keeps, per Message-ID, the mails handed over (control.sent_mail), and sends a mail whose Message-ID is there no
 * more. A crash between the SMTP server's answer and the record can still repeat one (the mailbox then sees the same
 * Message-ID twice); a crash anywhere else cannot.
 */
export class SentLedgerMailer implements Mailer {
  /** The mailer that sends: SMTP. */
  readonly inner: Mailer
  private readonly db: AnyDb

  constructor(inner: Mailer, db: AnyDb) {
    this.inner = inner
    this.db = db
  }

  async send(mail: Mail): Promise<void> {
    const { rows } = await sql`select 1 from control.sent_mail where message_id = ${mail.messageId}`.execute(this.db)
    if (rows.length > 0) return
    await this.inner.send(mail)
    await sql`insert into control.sent_mail (message_id) values (${mail.messageId}) on conflict do nothing`.execute(this.db)
  }

  close(): Promise<void> {
    return this.inner.close()
  }
}

export const withSentLedger = (mailer: Mailer, db: AnyDb): Mailer => new SentLedgerMailer(mailer, db)
