import { html } from 'hono/html'
import type { DevMailbox } from '../adapters/dev-mailbox.ts'
import { notFound } from '../http/problem.ts'
import { router } from '../http/router.ts'

export type DevMailDeps = { readonly devMailbox: Pick<DevMailbox, 'list' | 'get'> }

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i

/*
 * The page runs nothing and loads nothing: a mail's HTML is whoever's text the product put in it (a message
 * excerpt, a name), so it is shown in a sandboxed iframe (no scripts, an opaque origin), and this CSP, which the
 * srcdoc frame inherits, keeps even its images and styles from fetching anything.
 */
const CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-src 'self'; base-uri 'none'; form-action 'none'"

const page = (title: string, body: ReturnType<typeof html>) =>
  html`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${title}</title>
<style>body{font:14px system-ui,sans-serif;margin:2rem;max-width:70rem}table{border-collapse:collapse;width:100%}
td,th{padding:.3rem .6rem;border-bottom:1px solid #ddd;text-align:left}iframe{width:100%;height:40rem;border:1px solid #ccc}
pre{white-space:pre-wrap;background:#f6f6f6;padding:1rem}</style></head>
<body>${body}</body></html>`

/**
 * The dev mailbox, for a person running the product locally: GET /dev-mail lists every mail it sent (newest
 * first), GET /dev-mail/:id shows one. Mounted only where the dev IdP is allowed (config.DEV_IDP): anyone who
 * reaches it reads everyone's invite links.
 */
export function devMailRoutes(deps: DevMailDeps) {
  const app = router()

  app.get('/dev-mail', async (c) => {
    const mails = await deps.devMailbox.list()
    const rows = mails.map(
      (m) => html`<tr><td>${m.sentAt.toISOString()}</td><td>${m.to.join(', ')}</td>
<td><a href="/dev-mail/${m.id}">${m.subject || '(no subject)'}</a></td></tr>`,
    )
    c.header('content-security-policy', CSP)
    c.header('cache-control', 'no-store')
    return c.html(
      page(
        'Dev mailbox',
        html`<h1>Dev mailbox</h1>
<p>Every mail the product sent while <code>SMTP_URL</code> is unset, newest first.</p>
${mails.length ? html`<table><tr><th>sent</th><th>to</th><th>subject</th></tr>${rows}</table>` : html`<p>No mail yet.</p>`}`,
      ),
    )
  })

  app.get('/dev-mail/:id', async (c) => {
    const id = c.req.param('id')
    const mail = UUID.test(id) ? await deps.devMailbox.get(id) : null
    if (!mail) throw notFound('no such mail')
    const headers = Object.entries(mail.headers).map(([k, v]) => html`<tr><th>${k}</th><td>${v}</td></tr>`)
    // Links in the mail open outside the frame, which the sandbox lets them do (and nothing else).
    const frame = mail.html
      ? html`<h2>HTML</h2><iframe sandbox="allow-popups allow-popups-to-escape-sandbox" referrerpolicy="no-referrer"
 srcdoc="${`<base target="_blank">${mail.html}`}"></iframe>`
      : ''
    c.header('content-security-policy', CSP)
    c.header('cache-control', 'no-store')
    return c.html(
      page(
        mail.subject,
        html`<p><a href="/dev-mail">← all mail</a></p><h1>${mail.subject || '(no subject)'}</h1>
<table><tr><th>from</th><td>${mail.from}</td></tr><tr><th>to</th><td>${mail.to.join(', ')}</td></tr>
<tr><th>sent</th><td>${mail.sentAt.toISOString()}</td></tr><tr><th>Message-ID</th><td>${mail.messageId}</td></tr>${headers}</table>
${frame}<h2>Text</h2><pre>${mail.text}</pre>`,
      ),
    )
  })
  return app
}
