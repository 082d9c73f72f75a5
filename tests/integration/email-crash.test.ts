import { type ChildProcess, spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { once } from 'node:events'
import { v7 as uuid } from 'uuid'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { createPool, type PgPool } from '../../adapters/postgres.ts'
import { PostgresEventStore } from '../../adapters/postgres-event-store.ts'
import { createInvite } from '../../commands/invites.ts'
import { eventUpcasters } from '../../domain/schema-versions.ts'
import { createTestDatabase, type TestDatabase } from '../support/db.ts'
import { startSmtpServer, type TestSmtpServer } from '../support/smtp-server.ts'

/*
 * The invite-emails processor SIGKILLed between its effect (the mail handed to SMTP) and its checkpoint, three
 * times: the SMTP server receives each invite's mail once, no Message-ID twice (the sent-mail ledger).
 */

let database: TestDatabase
let pool: PgPool
let store: PostgresEventStore
let smtp: TestSmtpServer
const key = randomBytes(32)
const TOTAL = 30

beforeAll(async () => {
  database = await createTestDatabase()
  pool = createPool(database.url)
  store = new PostgresEventStore(pool)
  smtp = await startSmtpServer()
  const orgId = uuid()
  for (let n = 1; n <= TOTAL; n++) {
    await createInvite(
      { store, upcasters: eventUpcasters, inviteTokenKey: key },
      {
        tenantId: orgId,
        actor: { type: 'user', id: 'inviter' },
        correlationId: uuid(),
        causationId: null,
        now: () => new Date(),
        newId: uuid,
      },
      { orgId, email: `invitee-${n}@mail.test`, role: 'member', invitedBy: uuid() },
    )
  }
})
afterAll(async () => {
  await store?.close()
  await pool?.end()
  await smtp?.close()
  await database?.drop()
})

const child = (env: Record<string, string>): ChildProcess =>
  spawn(process.execPath, ['tests/support/email-child.ts'], {
    env: {
      ...process.env,
      DATABASE_URL: database.url,
      SMTP_URL: smtp.url,
      INVITE_KEY: key.toString('hex'),
      TOTAL: String(TOTAL),
      ...env,
    },
    stdio: ['ignore', 'pipe', 'inherit'],
  })

it('SIGKILLed between mail and checkpoint three times, the SMTP server sees each invite mailed once', async () => {
  for (const crashAt of [4, 13, 25]) {
    const proc = child({ CRASH_AT: String(crashAt) })
    let out = ''
    proc.stdout!.on('data', (d: Buffer) => {
      out += d.toString()
    })
    const deadline = Date.now() + 30_000
    while (!out.includes(`mailed ${crashAt}`) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20))
    expect(out, `invitee ${crashAt} mailed`).toContain(`mailed ${crashAt}`)
    proc.kill('SIGKILL')
    await once(proc, 'exit')
  }
  const last = child({})
  const [code] = (await once(last, 'exit')) as [number]
  expect(code).toBe(0)
  const mails = smtp.received
  expect(mails).toHaveLength(TOTAL)
  expect(new Set(mails.map((m) => m.messageId)).size).toBe(TOTAL)
  expect(new Set(mails.flatMap((m) => m.to))).toEqual(
    new Set(Array.from({ length: TOTAL }, (_, i) => `invitee-${i + 1}@mail.test`)),
  )
}, 120_000)
