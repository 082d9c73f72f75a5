// A processors process for the email crash test: runs the invite-emails processor over SMTP (SMTP_URL) with the
// sent-mail ledger until every invite is mailed, or, with CRASH_AT=n, until it has mailed invitee n, when it says so
// on stdout and hangs (the effect done, the checkpoint not moved) for the test to SIGKILL it.
import { sql } from 'kysely'
import { createLogger } from '../../adapters/logger.ts'
import { SmtpMailer } from '../../adapters/mailer.ts'
import { createKysely, createPool } from '../../adapters/postgres.ts'
import { PostgresEventStore } from '../../adapters/postgres-event-store.ts'
import { withSentLedger } from '../../adapters/sent-mail.ts'
import { eventUpcasters } from '../../domain/schema-versions.ts'
import { inviteEmails } from '../../processors/email/invites.ts'
import type { Processor } from '../../processors/processor.ts'
import { startProcessors } from '../../processors/runtime.ts'

const pool = createPool(process.env.DATABASE_URL!, { applicationName: 'email-child', max: 4 })
const store = new PostgresEventStore(pool)
const db = createKysely(pool)
const crashAt = process.env.CRASH_AT ? Number(process.env.CRASH_AT) : null
const total = Number(process.env.TOTAL)
const mailer = withSentLedger(new SmtpMailer({ url: process.env.SMTP_URL!, from: 'Workspace <no-reply@workspace.test>' }), db)
const invites = inviteEmails({
  store,
  upcasters: eventUpcasters,
  mailer,
  publicUrl: 'http://workspace.test',
  inviteTokenKey: Buffer.from(process.env.INVITE_KEY!, 'hex'),
})
const crashing: Processor = {
  ...(invites as Processor),
  // The test's invites were made before any child ran.
  startAt: 'beginning',
  async handle(event, ctx) {
    await invites.handle(event as never, ctx)
    const n = Number(/^invitee-(\d+)@/.exec((event.data as { email: string }).email)?.[1])
    if (n === crashAt) {
      process.stdout.write(`mailed ${n}\n`)
      await new Promise(() => {})
    }
  },
}
const runtime = startProcessors({
  store,
  controlDb: db,
  logger: createLogger('silent'),
  processors: [crashing],
  options: { holder: `email-child-${process.pid}`, leaseTtlMs: 1_500, renewMs: 250, batchSize: 7 },
})
const timer = setInterval(async () => {
  const { rows } = await sql<{ n: number }>`select count(*)::int as n from control.sent_mail`.execute(db)
  if (rows[0]!.n < total) return
  clearInterval(timer)
  await runtime.stop()
  await mailer.close()
  await store.close()
  await db.destroy()
  process.exit(0)
}, 50)
