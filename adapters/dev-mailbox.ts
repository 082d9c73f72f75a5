import { sql } from 'kysely'
import { v7 as uuid } from 'uuid'
import { checkMail, type Mail, type Mailer, mailFrom, SmtpMailer } from './mailer.ts'
import type { AnyDb } from './postgres.ts'
import { withSentLedger } from './sent-mail.ts'

/** A mail as the dev mailbox keeps it. */
export type StoredMail = {
  readonly id: string
  readonly messageId: string
  readonly from: string
  readonly to: readonly string[]
  readonly subject: string
  readonly text: string
  readonly html: string | null
  readonly headers: Readonly<Record<string, string>>
  readonly sentAt: Date
}

export type StoredMailSummary = Pick<StoredMail, 'id' | 'from' | 'to' | 'subject' | 'sentAt'>

/**
 * The mailer when SMTP_URL is unset: mails are kept in the control database (`control.dev_mail`) for a person
 * to read at /dev-mail. One row per Message-ID, so a mail sent again after a crash is still one mail.
 */
export class DevMailbox implements Mailer {
  readonly #db: AnyDb
  readonly #from: string

  constructor(db: AnyDb, options: { from: string }) {
    this.#db = db
    this.#from = options.from
  }

  async send(mail: Mail): Promise<void> {
    checkMail(mail)
    await sql`
      insert into control.dev_mail (id, message_id, sender, recipients, subject, text_body, html_body, headers)
      values (${uuid()}, ${mail.messageId}, ${this.#from}, ${[...mail.to]}::text[], ${mail.subject}, ${mail.text},
              ${mail.html ?? null}, ${JSON.stringify(mail.headers ?? {})}::jsonb)
      on conflict (message_id) do nothing`.execute(this.#db)
  }

  /** The newest first. */
  async list(limit = 200): Promise<StoredMailSummary[]> {
    const { rows } = await sql<{ id: string; sender: string; recipients: string[]; subject: string; sent_at: Date }>`
      select id, sender, recipients, subject, sent_at from control.dev_mail
       order by sent_at desc, id desc limit ${limit}`.execute(this.#db)
    return rows.map((r) => ({ id: r.id, from: r.sender, to: r.recipients, subject: r.subject, sentAt: r.sent_at }))
  }

  async get(id: string): Promise<StoredMail | null> {
    const { rows } = await sql<{
      id: string
      message_id: string
      sender: string
      recipients: string[]
      subject: string
      text_body: string
      html_body: string | null
      headers: Record<string, string>
      sent_at: Date
    }>`select * from control.dev_mail where id = ${id}`.execute(this.#db)
    const r = rows[0]
    return r
      ? {
          id: r.id,
          messageId: r.message_id,
          from: r.sender,
          to: r.recipients,
          subject: r.subject,
          text: r.text_body,
          html: r.html_body,
          headers: r.headers,
          sentAt: r.sent_at,
        }
      : null
  }

  async close(): Promise<void> {}
}

/**
 * The process's mailer: SMTP when SMTP_URL is set, else the dev mailbox (returned too, for /dev-mail to read).
 */
export function mailerFor(
  config: { SMTP_URL?: string | undefined; MAIL_FROM?: string | undefined; BASE_DOMAIN: string },
  controlDb: AnyDb,
): { mailer: Mailer; devMailbox: DevMailbox | null } {
  const from = mailFrom(config)
  // The dev mailbox keeps one row per Message-ID by itself; SMTP needs the ledger of what it sent.
  if (config.SMTP_URL)
    return { mailer: withSentLedger(new SmtpMailer({ url: config.SMTP_URL, from }), controlDb), devMailbox: null }
  const devMailbox = new DevMailbox(controlDb, { from })
  return { mailer: devMailbox, devMailbox }
}
