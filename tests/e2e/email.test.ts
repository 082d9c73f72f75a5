import { afterAll, beforeAll, expect, it } from 'vitest'
import { signUp } from '../support/identity.ts'
import { startTestServer, type TestServer } from '../support/server.ts'
import { startSmtpServer, type TestSmtpServer } from '../support/smtp-server.ts'

/*
 * Email through the whole product: the server's own processors role mails an invite's link (over SMTP when SMTP_URL
 * is set), once; without SMTP_URL the mail lands in the dev mailbox, which /dev-mail lists.
 */

let smtp: TestSmtpServer
let withSmtp: TestServer
let withMailbox: TestServer

beforeAll(async () => {
  smtp = await startSmtpServer()
  withSmtp = await startTestServer({ SMTP_URL: smtp.url })
  withMailbox = await startTestServer()
})
afterAll(async () => {
  await withSmtp?.close()
  await withMailbox?.close()
  await smtp?.close()
})

it('an invite made through the API is mailed to the invitee once, with its link, by the processors role', async () => {
  const owner = await signUp(withSmtp, { email: 'owner@mail.example', orgName: 'Mail Co', username: 'owner' })
  const invite = await withSmtp.request('POST', '/api/invites', {
    token: owner.token,
    body: { email: 'guest@mail.example', role: 'member' },
  })
  expect(invite.status).toBe(201)
  const [mail] = await smtp.waitFor(1, 20_000)
  expect(mail!.to).toContain('guest@mail.example')
  expect(mail!.text).toContain(`/orgs/invites/${encodeURIComponent(invite.body.token)}/accept`)
  // Once: nothing more arrives while the processors go on.
  await new Promise((r) => setTimeout(r, 1_000))
  expect(smtp.received).toHaveLength(1)
})

it('without SMTP_URL the mail is in the dev mailbox, listed at /dev-mail', async () => {
  const owner = await signUp(withMailbox, { email: 'owner@box.example', orgName: 'Box Co', username: 'owner' })
  const invite = await withMailbox.request('POST', '/api/invites', {
    token: owner.token,
    body: { email: 'guest@box.example', role: 'guest' },
  })
  expect(invite.status).toBe(201)
  const deadline = Date.now() + 20_000
  let page = ''
  while (Date.now() < deadline && !page.includes('guest@box.example')) {
    page = String((await withMailbox.request('GET', '/dev-mail')).body)
    await new Promise((r) => setTimeout(r, 200))
  }
  expect(page).toContain('guest@box.example')
})
