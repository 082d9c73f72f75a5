import { createHash } from 'node:crypto'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { streamName } from '../../adapters/event-store.ts'
import { createLogger } from '../../adapters/logger.ts'
import { SmtpMailer } from '../../adapters/mailer.ts'
import { MISSED_MENTIONS_CHECK, mentionMailStream, missedMentionEmails } from '../../processors/email/missed-mentions.ts'
import type { ProcessorContext, RecordedOf, TimerCommand } from '../../processors/processor.ts'
import { join, signUp } from '../support/identity.ts'
import { startTestServer, type TestServer } from '../support/server.ts'
import { startSmtpServer, type TestSmtpServer } from '../support/smtp-server.ts'

/*
 * Missed-mention emails without the processors' runtime: the processor is handed message.created events as the
 * runtime would hand them, its timers are caught, and the check they would fire is run at chosen times, mailing
 * over SMTP to a real server.
 */

let smtp: TestSmtpServer
let server: TestServer
let mailer: SmtpMailer
let olga: Awaited<ReturnType<typeof signUp>>
let bob: Awaited<ReturnType<typeof join>>
let clock = Date.now()
const online = new Set<string>()
let scheduled: { at: Date; command: TimerCommand; purpose: string }[] = []

beforeAll(async () => {
  smtp = await startSmtpServer()
  // Without the processors role: the reactor is driven by hand here.
  server = await startTestServer({ SMTP_URL: smtp.url, ROLES: 'api,projector,realtime' })
  mailer = new SmtpMailer({ url: smtp.url, from: 'no-reply@workspace.test' })
  olga = await signUp(server, { email: 'olga@acme.test', orgName: 'Acme', username: 'olga' })
  bob = await join(server, olga.token, { email: 'bob@acme.test', role: 'member', username: 'bob' })
  const joined = await server.request('POST', `/api/rooms/${olga.homeRoomId}/members`, {
    token: bob.token,
    body: { userId: bob.userId },
    headers: { 'consistent-after': String(bob.position) },
  })
  expect(joined.status, JSON.stringify(joined.body)).toBe(200)
})
afterAll(async () => {
  await mailer?.close()
  await server?.close()
  await smtp?.close()
})

const emails = () =>
  missedMentionEmails({
    ...server.services,
    mailer,
    publicUrl: server.url,
    presence: { hasLiveQueue: async (_t, userId) => online.has(userId) },
    now: () => new Date(clock),
  })

/** A context as the runtime gives one for the event (or fired timer) `key`: derived ids, timers caught. */
const contextFor = (key: string): ProcessorContext => ({
  logger: createLogger('silent', {}),
  idFor: (purpose) => {
    const h = createHash('sha256').update(`${key}\0${purpose}`).digest('hex')
    return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20, 32)}`
  },
  schedule: async (at, command, purpose) => {
    scheduled.push({ at, command, purpose })
    return { timerId: purpose }
  },
  cancel: async () => {},
  signal: new AbortController().signal,
})

/** Posts, waits until the messages read model has it, and hands its message.created to the processor. */
async function post(who: { token: string }, roomId: string, text: string) {
  const r = await server.request('POST', `/api/rooms/${roomId}/messages`, { token: who.token, body: { text } })
  expect(r.status, JSON.stringify(r.body)).toBe(201)
  const seen = await server.request('GET', `/api/rooms/${roomId}/messages?consistentAfter=${r.body.position}`, {
    token: who.token,
  })
  expect(seen.status).toBe(200)
  const [event] = await server.services.store.readStream(streamName('message', r.body.messageId))
  const { processor } = emails()
  await processor.handle(event as RecordedOf<Parameters<typeof processor.handle>[0]>, contextFor(event!.id))
  return { messageId: r.body.messageId as string, at: Date.parse((event!.data as { at: string }).at) }
}

let fired = 0
/** Fires a caught check as the timers would, at `at`. */
const fire = (command: TimerCommand, at: number) => {
  clock = at
  return emails().check(command, contextFor(`timer-${++fired}`))
}

it('a mention unread after 2 minutes mails one email to the person mentioned, once', async () => {
  scheduled = []
  const m = await post(olga, olga.homeRoomId, 'hi @bob, look <b>here</b> & tell me')
  expect(scheduled).toHaveLength(1)
  const [timer] = scheduled
  expect(timer!.at.getTime()).toBe(m.at + 120_000)
  expect(timer!.command).toEqual({
    type: MISSED_MENTIONS_CHECK,
    data: { tenantId: olga.orgId, userId: bob.userId, roomId: olga.homeRoomId, messageId: m.messageId },
  })
  await fire(timer!.command, m.at + 120_000)
  const [mail] = await smtp.waitFor(1)
  expect(mail!.to).toEqual(['bob@acme.test'])
  expect(mail!.subject).toBe('@olga mentioned you in #Home (Acme)')
  expect(mail!.text).toContain('hi @bob, look <b>here</b> & tell me')
  expect(mail!.html).toContain('look &lt;b&gt;here&lt;/b&gt; &amp; tell me')
  expect(mail!.text).toContain(`${server.url}/rooms/${olga.homeRoomId}?org=${olga.slug}`)
  // mailparser gathers the List-* headers under 'list'
  expect(mail!.headers.get('list')).toEqual({ unsubscribe: { url: `${server.url}/api/me/notifications` } })
  // The same check again (a repeat, or another message's check): nothing new is unread, no mail.
  await fire(timer!.command, m.at + 130_000)
  expect(smtp.received).toHaveLength(1)
  expect(await server.services.store.readStream(mentionMailStream(bob.userId))).toHaveLength(1)
})

it('within the hour the check is put off, then one mail batches what is still unread; the author gets none', async () => {
  scheduled = []
  const a = await post(olga, olga.homeRoomId, '@bob second')
  const b = await post(olga, olga.homeRoomId, '@bob third')
  await post(bob, olga.homeRoomId, '@olga answer from bob')
  expect(scheduled.map((s) => s.command.data.userId)).toEqual([bob.userId, bob.userId, olga.userId])
  online.add(olga.userId) // olga has a client open: no mail for her
  await fire(scheduled[2]!.command, b.at + 120_000)
  scheduled = scheduled.slice(0, 2)
  await fire(scheduled[0]!.command, a.at + 120_000)
  expect(smtp.received).toHaveLength(1)
  const putOff = scheduled.find((s) => s.purpose === 'after-window')
  expect(putOff).toBeDefined()
  await fire(putOff!.command, putOff!.at.getTime())
  const mails = await smtp.waitFor(2)
  expect(mails[1]!.to).toEqual(['bob@acme.test'])
  expect(mails[1]!.text).toContain('2 unread messages')
  expect(mails[1]!.text).toContain('@bob second')
  expect(mails[1]!.text).toContain('@bob third')
  expect(mails[1]!.text).not.toContain('look <b>here</b>')
})

it('no mail once read, while a client is open, or after turning emails off', async () => {
  scheduled = []
  const m = await post(olga, olga.homeRoomId, '@bob fourth')
  const [timer] = scheduled
  const later = m.at + 3 * 3_600_000
  online.add(bob.userId)
  await fire(timer!.command, later)
  online.delete(bob.userId)
  const off = await server.request('PATCH', '/api/me/notifications', { token: bob.token, body: { email: false } })
  expect(off.status, JSON.stringify(off.body)).toBe(200)
  expect(off.body.email).toBe(false)
  await fire(timer!.command, later)
  expect(smtp.received).toHaveLength(2)
  expect((await server.request('PATCH', '/api/me/notifications', { token: bob.token, body: { email: true } })).body.email).toBe(
    true,
  )
  const read = await server.request('POST', `/api/rooms/${olga.homeRoomId}/read`, {
    token: bob.token,
    body: { messageId: m.messageId },
  })
  expect(read.status).toBe(200)
  await server.request('GET', `/api/rooms/${olga.homeRoomId}/messages?consistentAfter=${read.body.position}`, {
    token: bob.token,
  })
  await fire(timer!.command, later)
  expect(smtp.received).toHaveLength(2)
  // Still on, unread again: the check mails (so the refusals above were the read mark, presence and the switch).
  const n = await post(olga, olga.homeRoomId, '@bob fifth')
  await fire(scheduled.at(-1)!.command, n.at + 3 * 3_600_000)
  expect((await smtp.waitFor(3))[2]!.text).toContain('@bob fifth')
})

it('a direct message needs no mention: the other member gets the check', async () => {
  const dm = await server.request('POST', '/api/dms', { token: olga.token, body: { userId: bob.userId } })
  expect(dm.status, JSON.stringify(dm.body)).toBe(200)
  scheduled = []
  await post(olga, dm.body.roomId ?? dm.body.id, 'are you there?')
  expect(scheduled.map((s) => s.command.data.userId)).toEqual([bob.userId])
})
