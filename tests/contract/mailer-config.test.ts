import { expect, it } from 'vitest'
import { loadConfig } from '../../adapters/config.ts'
import { DevMailbox, mailerFor } from '../../adapters/dev-mailbox.ts'
import { mailFrom, SmtpMailer } from '../../adapters/mailer.ts'
import { SentLedgerMailer } from '../../adapters/sent-mail.ts'

it('SMTP_URL takes smtp:// and smtps:// URLs only, naming the variable otherwise', () => {
  expect(loadConfig({ SMTP_URL: 'smtp://user:pass@127.0.0.1:2525' }).SMTP_URL).toBe('smtp://user:pass@127.0.0.1:2525')
  expect(loadConfig({ SMTP_URL: 'smtps://mail.example.com' }).SMTP_URL).toBe('smtps://mail.example.com')
  for (const bad of ['http://mail.example.com', 'nope']) {
    expect(() => loadConfig({ SMTP_URL: bad })).toThrow(/SMTP_URL: .*expected an smtp:\/\/ or smtps:\/\/ URL/s)
  }
})

it('SMTP when SMTP_URL is set, else the dev mailbox; MAIL_FROM or no-reply at the base domain', async () => {
  const db = {} as never
  const smtp = mailerFor(loadConfig({ SMTP_URL: 'smtp://127.0.0.1:2525' }), db)
  // SMTP behind the ledger of what it sent (a repeat after a crash sends nothing again).
  expect(smtp.mailer).toBeInstanceOf(SentLedgerMailer)
  expect((smtp.mailer as SentLedgerMailer).inner).toBeInstanceOf(SmtpMailer)
  expect(smtp.devMailbox).toBeNull()
  await smtp.mailer.close()
  const dev = mailerFor(loadConfig({}), db)
  expect(dev.mailer).toBeInstanceOf(DevMailbox)
  expect(dev.devMailbox).toBe(dev.mailer)
  expect(mailFrom({ BASE_DOMAIN: 'acme.example' })).toBe('no-reply@acme.example')
  expect(mailFrom(loadConfig({ MAIL_FROM: 'Acme <hello@acme.example>' }))).toBe('Acme <hello@acme.example>')
})
