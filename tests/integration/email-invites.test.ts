import { createHash } from 'node:crypto'
import { Writable } from 'node:stream'
import { afterAll, beforeAll, expect, it } from 'vitest'
import type { RecordedEvent } from '../../adapters/event-store.ts'
import { createLogger } from '../../adapters/logger.ts'
import { SmtpMailer } from '../../adapters/mailer.ts'
import { inviteStream } from '../../commands/invites.ts'
import { inviteEmails } from '../../processors/email/invites.ts'
import type { Processor, ProcessorContext, RecordedOf } from '../../processors/processor.ts'
import { startProcessors } from '../../processors/runtime.ts'
import { login, signUp, tenantSession } from '../support/identity.ts'
import { startTestServer, type TestServer } from '../support/server.ts'
import { startSmtpServer, type TestSmtpServer } from '../support/smtp-server.ts'

/*
 * The invite email end to end, without the processors' runtime: the API creates an invite, the reactor's handler
 * is given its invite.created event as the runtime would give it (twice: a repeat after a crash), the mail goes
 * over SMTP to a real server, and its link is followed through the real accept flow. The token must appear in no
 * event and no log line, the server's or the reactor's.
 */

const logLines: string[] = []
const capture = new Writable({
  write(chunk, _enc, done) {
    logLines.push(String(chunk))
    done()
  },
})

let smtp: TestSmtpServer
let server: TestServer
let mailer: SmtpMailer
let owner: Awaited<ReturnType<typeof signUp>>

beforeAll(async () => {
  smtp = await startSmtpServer()
  // Without the processors role: the reactor is driven by hand here (and by a runtime of the test's own, last).
  server = await startTestServer(
    { SMTP_URL: smtp.url, AUTH_SECRET_KEY: 'ab'.repeat(32), ROLES: 'api,projector,realtime' },
    { logTo: capture },
  )
  mailer = new SmtpMailer({ url: smtp.url, from: 'Workspace <no-reply@workspace.test>' })
  owner = await signUp(server, { email: 'olga@acme.test', orgName: 'Acme & <Sons>', username: 'olga' })
})
afterAll(async () => {
  await mailer?.close()
  await server?.close()
  await smtp?.close()
})

/** A context as the runtime gives one: ids derived from (processor, event, purpose), no timers. */
const contextFor = (processor: string, event: RecordedEvent): ProcessorContext => ({
  logger: createLogger('debug', {}, capture),
  idFor: (purpose) => {
    const h = createHash('sha256').update(`${processor}\0${event.id}\0${purpose}`).digest('hex')
    return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20, 32)}`
  },
  schedule: () => Promise.reject(new Error('no timers here')),
  cancel: () => Promise.reject(new Error('no timers here')),
  signal: new AbortController().signal,
})

const reactor = (key: Uint8Array = server.services.identity.keys.inviteTokenKey) =>
  inviteEmails({ ...server.services, mailer, publicUrl: server.url, inviteTokenKey: key })

const createdEvent = async (inviteId: string) => {
  const [event] = await server.services.store.readStream(inviteStream(inviteId))
  expect(event?.type).toBe('invite.created')
  return event as RecordedOf<Parameters<ReturnType<typeof inviteEmails>['handle']>[0]>
}

it('an invite sends one mail (one Message-ID, even repeated) to the invitee, whose link joins the org', async () => {
  const invite = await server.request('POST', '/api/invites', {
    token: owner.token,
    body: { email: 'Ivy@Acme.test', role: 'member' },
  })
  expect(invite.status).toBe(201)
  const token = invite.body.token as string
  const event = await createdEvent(invite.body.inviteId)
  const p = reactor()
  await p.handle(event, contextFor(p.name, event))
  await p.handle(event, contextFor(p.name, event))
  const mails = await smtp.waitFor(2)
  expect(new Set(mails.map((m) => m.messageId)).size).toBe(1)
  const [mail] = mails
  expect(mail!.to).toEqual(['ivy@acme.test'])
  expect(mail!.subject).toBe('olga invited you to Acme & <Sons>')
  expect(mail!.html).toContain('Acme &amp; &lt;Sons&gt;')
  expect(mail!.html).not.toContain('<Sons>')
  const link = /https?:\/\/\S+\/accept/.exec(mail!.text)?.[0]
  expect(link).toBe(`${server.url}/orgs/invites/${token}/accept`)
  expect(mail!.html).toContain(`href="${link}"`)
  expect(mail!.text).toContain(`${invite.body.expiresAt.slice(0, 10)}`)

  // The real accept flow: the invitee signs in and follows the link.
  const ivy = await login(server, 'ivy@acme.test')
  const accepted = await server.request('POST', new URL(link!).pathname, { token: ivy.accountToken })
  expect(accepted.status, JSON.stringify(accepted.body)).toBe(200)
  expect(accepted.body.orgId).toBe(owner.orgId)
  const session = await tenantSession(server, ivy.accountToken, owner.slug)
  expect((await server.request('GET', '/api/me', { token: session.token })).body.role).toBe('member')

  // The token, or its secret part, is in no event and no log line.
  const secret = token.split('.')[0]!
  const { rows } = await server.services.pool.query<{ row: string }>('select e::text as row from eventstore.events e')
  expect(rows.length).toBeGreaterThan(5)
  expect(rows.filter((r) => r.row.includes(secret))).toEqual([])
  expect(logLines.some((l) => l.includes('invite email sent'))).toBe(true)
  expect(logLines.some((l) => l.includes('/orgs/invites/wsi_[redacted]'))).toBe(true)
  expect(logLines.filter((l) => l.includes(secret))).toEqual([])
})

it('no mail for an invite revoked before it is handled, nor for a token this server key did not derive', async () => {
  const before = smtp.received.length
  const revoked = await server.request('POST', '/api/invites', { token: owner.token, body: { email: 'rex@acme.test' } })
  expect((await server.request('DELETE', `/api/invites/${revoked.body.inviteId}`, { token: owner.token })).status).toBe(200)
  const p = reactor()
  const revokedEvent = await createdEvent(revoked.body.inviteId)
  await p.handle(revokedEvent, contextFor(p.name, revokedEvent))

  const other = await server.request('POST', '/api/invites', { token: owner.token, body: { email: 'sam@acme.test' } })
  const otherEvent = await createdEvent(other.body.inviteId)
  const foreign = reactor(new Uint8Array(32).fill(7))
  await foreign.handle(otherEvent, contextFor(foreign.name, otherEvent))
  expect(logLines.some((l) => l.includes('not derived with this server key'))).toBe(true)

  // The same invite with the right key is mailed: the two refusals above sent nothing.
  await p.handle(otherEvent, contextFor(p.name, otherEvent))
  const mails = await smtp.waitFor(before + 1)
  expect(mails.slice(before).map((m) => m.to)).toEqual([['sam@acme.test']])
})

it('run by the processors runtime, an invite made after it started is mailed once; earlier ones are not (startAt head)', async () => {
  const before = smtp.received.length
  // An invite from before the processor ever ran: not mailed when it starts at the head.
  await server.request('POST', '/api/invites', { token: owner.token, body: { email: 'old@acme.test' } })
  const runtime = startProcessors({
    store: server.services.store,
    controlDb: server.services.controlDb,
    logger: createLogger('silent', {}),
    processors: [reactor() as unknown as Processor],
    options: { renewMs: 200, retryMs: 50 },
  })
  try {
    for (let i = 0; i < 200 && !runtime.statuses().every((s) => s.held && s.checkpoint !== null); i++) {
      await new Promise((r) => setTimeout(r, 50))
    }
    expect(runtime.statuses().every((s) => s.held && s.checkpoint !== null)).toBe(true)
    const invite = await server.request('POST', '/api/invites', { token: owner.token, body: { email: 'new@acme.test' } })
    expect(invite.status).toBe(201)
    const mails = await smtp.waitFor(before + 1)
    expect(mails.slice(before).map((m) => m.to)).toEqual([['new@acme.test']])
    expect(mails.at(-1)!.text).toContain(`/orgs/invites/${invite.body.token}/accept`)
  } finally {
    await runtime.stop()
  }
  expect(smtp.received.length).toBe(before + 1)
})
