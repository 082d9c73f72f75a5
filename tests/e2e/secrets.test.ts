import { Writable } from 'node:stream'
import { sql } from 'kysely'
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest'
import { hashToken } from '../../adapters/opaque-tokens.ts'
import { createKysely, createPool } from '../../adapters/postgres.ts'
import { CookieJar } from '../support/cookie-jar.ts'
import { agentLogin, createAgent, followHandoff, join, signUp } from '../support/identity.ts'
import { startTestServer, type TestServer } from '../support/server.ts'

/*
 * Tokens and secrets are shown once to their owner and never kept or logged in clear: not in events (the
 * only source of truth), not in any table, not in the idempotency store, not in a log line.
 */

const SERVICE_TOKEN = 'service-token-never-logged-0123456789abcdef'
const lines: string[] = []
let server: TestServer

beforeAll(async () => {
  server = await startTestServer(
    { SERVICE_TOKEN, LOG_LEVEL: 'debug' },
    {
      logTo: new Writable({
        write(chunk, _encoding, done) {
          lines.push(String(chunk))
          done()
        },
      }),
    },
  )
})
afterAll(async () => {
  await server?.close()
})

describe('tokens and secrets are never stored or logged in clear', () => {
  it('sessions, personal tokens, invites, handoff tickets, agent secrets and tokens', async () => {
    const owner = await signUp(server, { email: 'keeper@vault.test', orgName: 'Vault', username: 'keeper' })
    const member = await join(server, owner.token, { email: 'member@vault.test', role: 'member', username: 'member' })

    const personal = await server.request('POST', '/auth/tokens', {
      token: owner.accountToken,
      body: { org: owner.slug, name: 'ci' },
    })
    expect(personal.status).toBe(201)
    expect((await server.request('GET', '/api/me', { token: personal.body.token })).status).toBe(200)
    expect((await server.request('GET', '/api/me', { token: `${personal.body.token}x` })).status).toBe(401)

    const invite = await server.request('POST', '/api/invites', {
      token: owner.token,
      body: { email: 'later@vault.test', role: 'guest' },
      headers: { 'idempotency-key': 'invite-1' },
    })
    expect(invite.status).toBe(201)
    // An answer with a secret is not kept in the idempotency store, so it is never replayed from there.
    const retried = await server.request('POST', '/api/invites', {
      token: owner.token,
      body: { email: 'later@vault.test', role: 'guest' },
      headers: { 'idempotency-key': 'invite-1' },
    })
    expect(retried.headers.get('idempotent-replayed')).toBeNull()
    expect(retried.body?.token).not.toBe(invite.body.token)

    const handoff = await server.request('POST', '/auth/handoff', { token: owner.accountToken, body: { org: owner.slug } })
    const ticket = new URL(handoff.body.url).searchParams.get('ticket')!
    const port = new URL(server.url).port
    const redeemed = await followHandoff(
      new CookieJar({ host: `${owner.slug}.localhost:${port}` }),
      `${server.url}/auth/handoff?ticket=${encodeURIComponent(ticket)}`,
    )
    expect(redeemed.status).toBe(303)

    const agent = await createAgent(server, owner.token, { name: 'Vault Bot' })
    const rotated = await server.request('POST', `/api/agents/${agent.agentId}/secret`, {
      token: owner.token,
      body: {},
      headers: { 'idempotency-key': 'rotate-1' },
    })
    expect(rotated.status).toBe(200)
    const agentToken = (await agentLogin(server, { agentId: agent.agentId, secret: rotated.body.secret })).token
    expect((await server.request('GET', '/api/me', { token: agentToken })).status).toBe(200)
    expect((await server.request('GET', '/api/internal/whoami', { token: SERVICE_TOKEN })).status).toBe(200)

    const secrets: Record<string, string> = {
      'account session': owner.accountToken,
      'tenant session': owner.token,
      'member session': member.token,
      'personal token': personal.body.token,
      'invite token': invite.body.token,
      'handoff ticket': ticket,
      'agent secret (first)': agent.secret,
      'agent secret (rotated)': rotated.body.secret,
      'agent token': agentToken,
      'service token': SERVICE_TOKEN,
    }
    // The random part alone must not leak either (the part after the dot is the public id).
    const needles = Object.entries(secrets).flatMap(([name, s]) => [
      [name, s],
      [`${name} (random part)`, s.split('.')[0]!],
    ])

    // 1. Events: the whole store.
    const events = JSON.stringify(await server.services.store.readAll(), (_k, v) => (typeof v === 'bigint' ? String(v) : v))
    for (const [name, needle] of needles) expect(events.includes(needle!), `${name} in the events`).toBe(false)
    // Hashes are what is kept.
    expect(events).toContain(hashToken(personal.body.token))
    expect(events).toContain(hashToken(owner.token))

    // 2. Every table of every schema (the test database's owner reads past row-level security; the server's own
    // login cannot).
    const db = createKysely(createPool(server.database.url, { max: 1 }))
    onTestFinished(() => db.destroy())
    const superuser = await sql<{ s: boolean }>`select rolsuper as s from pg_roles where rolname = current_user`.execute(db)
    expect(superuser.rows[0]?.s, 'the scan must see every row').toBe(true)
    const tables = await sql<{ schema: string; name: string }>`
      select table_schema as schema, table_name as name from information_schema.tables
       where table_type = 'BASE TABLE' and table_schema not in ('pg_catalog', 'information_schema')`.execute(db)
    expect(tables.rows.length).toBeGreaterThan(10)
    for (const t of tables.rows) {
      // The dev mailbox (no SMTP_URL) is the invitee's inbox: the invite's link is in it, as in any inbox.
      if (`${t.schema}.${t.name}` === 'control.dev_mail') continue
      const rows = await sql<{ r: string }>`select t::text as r from ${sql.table(`${t.schema}.${t.name}`)} t`.execute(db)
      const text = rows.rows.map((r) => r.r).join('\n')
      for (const [name, needle] of needles) expect(text.includes(needle!), `${name} in ${t.schema}.${t.name}`).toBe(false)
    }

    // 3. Logs: there are some (requests at info), and no secret is in them, whether headers, paths or errors.
    await new Promise((r) => setTimeout(r, 50))
    const log = lines.join('')
    expect(log).toContain('"msg":"request"')
    expect(log).toContain('/orgs/invites/wsi_[redacted]')
    for (const [name, needle] of needles) expect(log.includes(needle!), `${name} in the logs`).toBe(false)
  })
})
