import { afterAll, beforeAll, expect, it } from 'vitest'
import { DevMailbox } from '../../adapters/dev-mailbox.ts'
import { createKysely, createPool } from '../../adapters/postgres.ts'
import { onError } from '../../http/errors.ts'
import { devMailRoutes } from '../../read-api/dev-mail.ts'
import { createTestDatabase, type TestDatabase } from '../support/db.ts'

let database: TestDatabase
let db: ReturnType<typeof createKysely>
let mailbox: DevMailbox
let app: ReturnType<typeof devMailRoutes>

beforeAll(async () => {
  database = await createTestDatabase()
  db = createKysely(createPool(database.appUrl, { max: 2 }))
  mailbox = new DevMailbox(db, { from: 'no-reply@workspace.test' })
  app = devMailRoutes({ devMailbox: mailbox })
  app.onError(onError({ warn() {}, error() {} } as never))
})
afterAll(async () => {
  await db.destroy()
  await database.drop()
})

const hostile = '<script>alert(1)</script>"\'&'

it('lists every mail, newest first, and shows one with its HTML in a sandboxed frame, everything escaped', async () => {
  await mailbox.send({ to: ['a@acme.test'], subject: 'first', text: 'one', messageId: '<m1@workspace.test>' })
  await mailbox.send({
    to: [`x${hostile}@acme.test`],
    subject: `second ${hostile}`,
    text: `text ${hostile}`,
    html: `<p>hi</p>"><script>alert(2)</script>`,
    messageId: '<m2@workspace.test>',
    headers: { 'X-Why': hostile },
  })
  const list = await app.request('/dev-mail')
  expect(list.status).toBe(200)
  expect(list.headers.get('content-type')).toMatch(/^text\/html/)
  expect(list.headers.get('content-security-policy')).toContain("default-src 'none'")
  const page = await list.text()
  expect(page).not.toContain('<script>')
  expect(page).toContain('second &lt;script&gt;alert(1)&lt;/script&gt;&quot;&#39;&amp;')
  expect(page.indexOf('>second ')).toBeLessThan(page.indexOf('>first<'))

  const [newest] = await mailbox.list()
  const one = await app.request(`/dev-mail/${newest!.id}`)
  expect(one.status).toBe(200)
  const body = await one.text()
  expect(body).not.toContain('<script>')
  // The mail's HTML is the frame's srcdoc, escaped once: the frame renders it, the page never does.
  expect(body).toMatch(
    /<iframe sandbox="allow-popups allow-popups-to-escape-sandbox"[^>]*srcdoc="&lt;base target=&quot;_blank&quot;&gt;&lt;p&gt;hi&lt;\/p&gt;&quot;&gt;&lt;script&gt;/,
  )
  expect(body).toContain('text &lt;script&gt;')
  expect(body).toContain('&lt;m2@workspace.test&gt;')
})

it('a text-only mail has no frame; an unknown or malformed id is 404 problem+json', async () => {
  const first = (await mailbox.list()).find((m) => m.subject === 'first')!
  const text = await (await app.request(`/dev-mail/${first.id}`)).text()
  expect(text).not.toContain('<iframe')
  expect(text).toContain('<pre>one</pre>')
  for (const id of ['0190aaaa-0000-7000-8000-000000000000', 'not-a-uuid', "1'--"]) {
    const r = await app.request(`/dev-mail/${encodeURIComponent(id)}`)
    expect(r.status, id).toBe(404)
    expect(r.headers.get('content-type')).toMatch(/^application\/problem\+json/)
  }
})
