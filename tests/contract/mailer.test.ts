import { DevMailbox } from '../../adapters/dev-mailbox.ts'
import { SmtpMailer } from '../../adapters/mailer.ts'
import { createKysely, createPool } from '../../adapters/postgres.ts'
import { createTestDatabase } from '../support/db.ts'
import { startSmtpServer } from '../support/smtp-server.ts'
import { mailerContract } from './mailer.contract.ts'

mailerContract('SMTP (nodemailer to a real smtp-server)', async () => {
  const server = await startSmtpServer()
  const mailer = new SmtpMailer({ url: server.url, from: 'Workspace <no-reply@workspace.test>' })
  return {
    mailer,
    delivered: async () =>
      server.received.map((m) => ({
        messageId: m.messageId,
        to: m.to,
        subject: m.subject,
        text: m.text,
        html: m.html,
        headers: Object.fromEntries([...m.headers].map(([k, v]) => [k.toLowerCase(), String(v)])),
      })),
    async teardown() {
      await mailer.close()
      await server.close()
    },
  }
})

mailerContract('dev mailbox (control.dev_mail, as the app login)', async () => {
  const database = await createTestDatabase()
  const db = createKysely(createPool(database.appUrl, { max: 4 }))
  const mailer = new DevMailbox(db, { from: 'no-reply@workspace.test' })
  return {
    mailer,
    async delivered() {
      const all = await Promise.all((await mailer.list()).map((s) => mailer.get(s.id)))
      return all.flatMap((m) =>
        m
          ? [
              {
                messageId: m.messageId,
                to: m.to,
                subject: m.subject,
                text: m.text,
                html: m.html,
                headers: Object.fromEntries(Object.entries(m.headers).map(([k, v]) => [k.toLowerCase(), v])),
              },
            ]
          : [],
      )
    },
    async teardown() {
      await db.destroy()
      await database.drop()
    },
  }
})
