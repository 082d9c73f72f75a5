import type { AddressInfo } from 'node:net'
import { type ParsedMail, simpleParser } from 'mailparser'
import { SMTPServer } from 'smtp-server'

/** A mail as the test SMTP server received and parsed it. */
export type ReceivedMail = {
  readonly messageId: string
  readonly from: string
  /** The envelope's recipients (RCPT TO), lowercased. */
  readonly to: string[]
  readonly subject: string
  readonly text: string
  readonly html: string | null
  readonly headers: ReadonlyMap<string, unknown>
  readonly raw: string
}

export type TestSmtpServer = {
  /** smtp://127.0.0.1:<port>, for SMTP_URL. */
  readonly url: string
  /** Every mail received so far, in order. */
  readonly received: ReceivedMail[]
  /** Resolves once `count` mails have arrived (rejects after `timeoutMs`, naming what did arrive). */
  waitFor(count: number, timeoutMs?: number): Promise<ReceivedMail[]>
  close(): Promise<void>
}

const addressText = (a: ParsedMail['from']): string => (a ? (Array.isArray(a) ? a.map((x) => x.text).join(', ') : a.text) : '')

/** A real SMTP server on a loopback socket (no TLS, no auth), parsing each mail with mailparser. */
export async function startSmtpServer(): Promise<TestSmtpServer> {
  const received: ReceivedMail[] = []
  const waiters = new Set<() => void>()
  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ['STARTTLS', 'AUTH'],
    logger: false,
    onData(stream, session, callback) {
      const chunks: Buffer[] = []
      stream.on('data', (c: Buffer) => chunks.push(c))
      stream.on('end', () => {
        const raw = Buffer.concat(chunks)
        simpleParser(raw).then(
          (parsed) => {
            received.push({
              messageId: parsed.messageId ?? '',
              from: addressText(parsed.from),
              to: session.envelope.rcptTo.map((r) => r.address.toLowerCase()),
              subject: parsed.subject ?? '',
              text: parsed.text ?? '',
              html: typeof parsed.html === 'string' ? parsed.html : null,
              headers: parsed.headers,
              raw: raw.toString('utf8'),
            })
            for (const wake of waiters) wake()
            callback()
          },
          (error: Error) => callback(error),
        )
      })
    },
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.server.address() as AddressInfo
  return {
    url: `smtp://127.0.0.1:${port}`,
    received,
    waitFor(count, timeoutMs = 10_000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          if (received.length < count) return
          waiters.delete(check)
          clearTimeout(timer)
          resolve(received.slice())
        }
        const timer = setTimeout(() => {
          waiters.delete(check)
          reject(new Error(`expected ${count} mails, received ${received.length}: ${received.map((m) => m.subject).join('; ')}`))
        }, timeoutMs)
        waiters.add(check)
        check()
      })
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  }
}
