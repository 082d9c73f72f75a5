import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { Mailer } from '../../adapters/mailer.ts'

/** A mail as the mailbox behind a mailer shows it. */
export type Delivered = {
  readonly messageId: string
  readonly to: readonly string[]
  readonly subject: string
  readonly text: string
  readonly html: string | null
  /** Header names lowercased. */
  readonly headers: Readonly<Record<string, string>>
}

export type MailerFixture = {
  readonly mailer: Mailer
  /** Every mail the mailbox holds (or the server received) so far. */
  delivered(): Promise<Delivered[]>
  teardown(): Promise<void>
}

/** What every Mailer does, run against each adapter (SMTP to a real server, the dev mailbox). */
export function mailerContract(name: string, setup: () => Promise<MailerFixture>): void {
  describe(`Mailer contract: ${name}`, () => {
    let f: MailerFixture
    beforeAll(async () => {
      f = await setup()
    })
    afterAll(async () => {
      await f?.teardown()
    })

    it('delivers a mail to its recipients with its subject, text, HTML, Message-ID and headers', async () => {
      const mail = {
        to: ['ivy@acme.test', 'Rex@Acme.test'],
        subject: 'Ünïcode & <b>not bold</b> — ok',
        text: 'Hello Ivy,\n\nhttp://localhost:3000/orgs/invites/abc/accept\n',
        html: '<p>Hello <b>Ivy</b></p><p><a href="http://localhost:3000/x?a=1&amp;b=2">join</a></p>',
        messageId: '<contract-1@workspace.test>',
        headers: { 'X-Entity-Ref-ID': 'ref-1' },
      }
      await f.mailer.send(mail)
      const found = (await f.delivered()).filter((m) => m.messageId === mail.messageId)
      expect(found).toHaveLength(1)
      const [m] = found
      expect([...m!.to].map((t) => t.toLowerCase()).sort()).toEqual(['ivy@acme.test', 'rex@acme.test'])
      expect(m!.subject).toBe(mail.subject)
      expect(m!.text.trim()).toBe(mail.text.trim())
      expect(m!.html?.trim()).toBe(mail.html)
      expect(m!.headers['x-entity-ref-id']).toBe('ref-1')
    })

    it('the same mail sent again (a repeated event) carries the same Message-ID: one distinct mail', async () => {
      const mail = { to: ['once@acme.test'], subject: 'once', text: 'once', messageId: '<contract-2@workspace.test>' }
      await f.mailer.send(mail)
      await f.mailer.send(mail)
      const found = (await f.delivered()).filter((m) => m.to.includes('once@acme.test'))
      expect(found.length).toBeGreaterThanOrEqual(1)
      expect(new Set(found.map((m) => m.messageId))).toEqual(new Set([mail.messageId]))
      expect(found.every((m) => m.subject === 'once' && m.html === null)).toBe(true)
    })

    it('refuses a mail without a recipient or with a malformed Message-ID, and delivers nothing', async () => {
      const before = (await f.delivered()).length
      await expect(f.mailer.send({ to: [], subject: 's', text: 't', messageId: '<contract-3@workspace.test>' })).rejects.toThrow(
        /recipient/,
      )
      await expect(f.mailer.send({ to: ['x@acme.test'], subject: 's', text: 't', messageId: 'no-brackets' })).rejects.toThrow(
        /Message-ID/,
      )
      expect((await f.delivered()).length).toBe(before)
    })
  })
}
