import nodemailer, { type Transporter } from 'nodemailer'

/** One mail, as the product sends it: always a text part, an HTML part when there is one. */
export type Mail = {
  readonly to: readonly string[]
  readonly subject: string
  readonly text: string
  readonly html?: string
  /**
   * `<id@domain>`, chosen by the sender from what caused the mail: the same mail sent again (a reactor repeating
   * an event after a crash) carries the same Message-ID, so a mailbox, and the tests, see one mail.
   */
  readonly messageId: string
  /** Extra headers (List-Unsubscribe, X-Entity-Ref-ID…); never From, To, Subject or Message-ID. */
  readonly headers?: Readonly<Record<string, string>>
}

/** Where the product's mail goes: SMTP (SMTP_URL), or the dev mailbox when it is unset. */
export interface Mailer {
  send(mail: Mail): Promise<void>
  close(): Promise<void>
}

/** A Message-ID of ours for an id that is unique to the mail (e.g. a processor's derived id). */
export const messageIdFor = (id: string, domain: string): string =>
  `<${id}@${domain.replace(/[^A-Za-z0-9.-]/g, '') || 'localhost'}>`

const MESSAGE_ID = /^<[^<>@\s]+@[^<>@\s]+>$/

/** Refuses a mail a mailbox would mangle: a missing recipient, or a Message-ID that is not one. */
export function checkMail(mail: Mail): void {
  if (mail.to.length === 0) throw new Error('a mail needs a recipient')
  if (!MESSAGE_ID.test(mail.messageId)) throw new Error(`not a Message-ID: ${JSON.stringify(mail.messageId)}`)
}

/** SMTP through nodemailer: one pooled transport per process, credentials and TLS from the URL. */
export class SmtpMailer implements Mailer {
  readonly #transport: Transporter
  readonly #from: string

  constructor(options: { url: string; from: string }) {
    this.#transport = nodemailer.createTransport(`${options.url}${options.url.includes('?') ? '&' : '?'}pool=true`)
    this.#from = options.from
  }

  async send(mail: Mail): Promise<void> {
    checkMail(mail)
    await this.#transport.sendMail({
      from: this.#from,
      to: [...mail.to],
      subject: mail.subject,
      text: mail.text,
      ...(mail.html === undefined ? {} : { html: mail.html }),
      messageId: mail.messageId,
      headers: { ...mail.headers },
    })
  }

  async close(): Promise<void> {
    this.#transport.close()
  }
}

/** MAIL_FROM, or no-reply at the product's domain. */
export const mailFrom = (config: { MAIL_FROM?: string | undefined; BASE_DOMAIN: string }): string =>
  config.MAIL_FROM ?? `no-reply@${config.BASE_DOMAIN}`
