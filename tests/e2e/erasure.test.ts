import { spawn } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import { once } from 'node:events'
import { Redis } from 'ioredis'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createPool, type PgPool } from '../../adapters/postgres.ts'
import { requireRedis } from '../support/db.ts'
import { join, signUp } from '../support/identity.ts'
import { operatorToken } from '../support/operator.ts'
import { startTestServer, type TestServer } from '../support/server.ts'

/*
 * Crypto-shredding end to end: a person writes, an operator erases them, and nothing they wrote stays readable
 * anywhere the product keeps it — the event store, every tenant read model, the realtime streams, the operations
 * tools — while the history still folds and rebuilds to the same read models.
 */

const AUTH_SECRET_KEY = 'c3'.repeat(32)

async function tool(server: TestServer, script: string, args: string[]) {
  const child = spawn(process.execPath, [script, ...args], {
    env: { ...process.env, DATABASE_URL: server.database.url, AUTH_SECRET_KEY, LOG_LEVEL: 'silent' },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let stdout = ''
  let stderr = ''
  child.stdout!.on('data', (d) => (stdout += d))
  child.stderr!.on('data', (d) => (stderr += d))
  const [code] = await once(child, 'exit')
  return { code: code as number, stdout, stderr }
}

/** Rows of eventstore.events, of every tenant table and of the Postgres user streams whose text holds `needle`. */
async function rowsHolding(owner: PgPool, needle: string) {
  const found: string[] = []
  const pattern = `%${needle}%`
  const { rows: events } = await owner.query<{ type: string }>(
    'select event_type as type from eventstore.events where data::text like $1 or metadata::text like $1',
    [pattern],
  )
  found.push(...events.map((e) => `eventstore.events ${e.type}`))
  const { rows: tables } = await owner.query<{ schema: string; name: string }>(
    `select table_schema as schema, table_name as name from information_schema.tables
      where table_schema in ('tenant', 'realtime') and table_type = 'BASE TABLE'`,
  )
  for (const t of tables) {
    // The tests log in as a superuser: row-level security does not hide other tenants' rows from this scan.
    const { rows } = await owner.query<{ n: number }>(
      `select count(*)::int as n from "${t.schema}"."${t.name}" t where t::text like $1`,
      [pattern],
    )
    if (rows[0]!.n > 0) found.push(`${t.schema}.${t.name}`)
  }
  return found
}

describe.each([{ realtime: 'postgres' }, { realtime: 'redis' }])('erasure, realtime over $realtime', ({ realtime }) => {
  let server: TestServer
  /** The database's owner login: raw SQL over every table, whatever the app's login may read. */
  let owner: PgPool
  let alice: Awaited<ReturnType<typeof signUp>>
  let bob: Awaited<ReturnType<typeof join>>
  let roomId: string
  const mark = randomUUID().slice(0, 8)
  const secrets = {
    first: `bob-first-${mark}`,
    second: `bob-second-${mark}`,
    edited: `bob-edited-${mark}`,
    draft: `bob-draft-${mark}`,
  }
  const bobEmail = `bob-${mark}@acme.test`
  const messageIds: string[] = []
  let lastPosition = 0

  beforeAll(async () => {
    server = await startTestServer({ AUTH_SECRET_KEY, ...(realtime === 'redis' ? { REDIS_URL: requireRedis() } : {}) })
    owner = createPool(server.database.url)
    alice = await signUp(server, { email: `alice-${mark}@acme.test`, orgName: `Erasure ${realtime} ${mark}`, username: 'alice' })
    bob = await join(server, alice.token, { email: bobEmail, role: 'member', username: 'bob' })
    const room = await server.request('POST', '/api/rooms', {
      token: alice.token,
      body: { name: 'Forget me', visibility: 'private' },
    })
    roomId = room.body.roomId
    expect(
      (await server.request('POST', `/api/rooms/${roomId}/members`, { token: alice.token, body: { userId: bob.userId } })).status,
    ).toBe(200)
    for (const text of [secrets.first, secrets.second]) {
      const posted = await server.request('POST', `/api/rooms/${roomId}/messages`, { token: bob.token, body: { text } })
      expect(posted.status, JSON.stringify(posted.body)).toBe(201)
      messageIds.push(posted.body.messageId)
    }
    const edited = await server.request('PATCH', `/api/messages/${messageIds[0]}`, {
      token: bob.token,
      body: { text: secrets.edited },
    })
    expect(edited.status).toBe(200)
    const draft = await server.request('PUT', `/api/rooms/${roomId}/draft`, { token: bob.token, body: { text: secrets.draft } })
    expect(draft.status).toBe(200)
    const reply = await server.request('POST', `/api/rooms/${roomId}/messages`, { token: alice.token, body: { text: 'noted' } })
    lastPosition = reply.body.position
  }, 90_000)

  afterAll(async () => {
    await owner?.end()
    await server?.close()
  })

  it('keeps a person’s texts, name and email encrypted at rest before anyone asks to erase them', async () => {
    const timeline = await server.request('GET', `/api/rooms/${roomId}/messages?consistentAfter=${lastPosition}`, {
      token: alice.token,
    })
    expect(timeline.body.items.map((m: { text: string }) => m.text)).toEqual([secrets.edited, secrets.second, 'noted'])
    const { rows } = await owner.query<{ type: string }>(
      `select event_type as type from eventstore.events
        where data::text like any($1) and event_type in ('message.created', 'message.updated', 'draft.saved', 'user.joined')`,
      [[...Object.values(secrets), bobEmail].map((s) => `%${s}%`)],
    )
    expect(rows).toEqual([])
  })

  it('answers 404 problem+json for a user no org has', async () => {
    const r = await server.request('POST', `/control/users/${randomUUID()}/erase`, { token: await operatorToken(server) })
    expect(r.status).toBe(404)
    expect(r.headers.get('content-type')).toContain('application/problem+json')
    expect((await server.request('POST', `/control/users/${bob.userId}/erase`, { token: bob.token })).status).toBe(403)
  })

  it('erases them: read models, realtime streams, the event store and the tools hold nothing readable of them', async () => {
    const erased = await server.request('POST', `/control/users/${bob.userId}/erase`, { token: await operatorToken(server) })
    expect(erased.status, JSON.stringify(erased.body)).toBe(200)
    expect(erased.body.userId).toBe(bob.userId)
    const again = await server.request('POST', `/control/users/${bob.userId}/erase`, { token: await operatorToken(server) })
    expect(again.status).toBe(200)

    const after = `consistentAfter=${erased.body.position}`
    const timeline = await server.request('GET', `/api/rooms/${roomId}/messages?${after}`, { token: alice.token })
    expect(timeline.body.items.map((m: { authorId: string; text: string }) => [m.authorId, m.text])).toEqual([
      [bob.userId, ''],
      [bob.userId, ''],
      [alice.userId, 'noted'],
    ])
    const one = await server.request('GET', `/api/messages/${messageIds[0]}?${after}`, { token: alice.token })
    expect(one.body.edits).toEqual([])
    const users = await server.request('GET', `/api/users?${after}`, { token: alice.token })
    expect(users.body.items.find((u: { id: string }) => u.id === bob.userId)).toMatchObject({ displayName: '[erased]' })
    const { rows: row } = await owner.query('select display_name, email from tenant.users where id = $1', [bob.userId])
    expect(row).toEqual([{ display_name: '[erased]', email: null }])
    const search = await server.request('GET', `/api/search/messages?q=${secrets.second}&${after}`, { token: alice.token })
    expect(search.body.items).toEqual([])

    // The realtime fan-out scrubs what it had delivered once it has passed the erasure.
    const at = await server.services.store.resolvePosition(BigInt(erased.body.position))
    const deadline = Date.now() + 15_000
    let left: string[] = []
    do {
      left = []
      if (server.services.engine?.reached(['realtime'], at!)) {
        for (const s of Object.values(secrets)) left.push(...(await rowsHolding(owner, s)).map((w) => `${s} in ${w}`))
      } else left.push('fan-out behind')
      if (left.length) await new Promise((r) => setTimeout(r, 100))
    } while (left.length && Date.now() < deadline)
    expect(left).toEqual([])

    if (realtime === 'redis') {
      const redis = new Redis(requireRedis())
      try {
        for (const userId of [alice.userId, bob.userId]) {
          const entries = JSON.stringify(await redis.xrange(`rt:${userId}`, '-', '+'))
          expect(entries.length).toBeGreaterThan(2)
          for (const s of Object.values(secrets)) expect(entries).not.toContain(s)
        }
      } finally {
        redis.disconnect()
      }
    }

    const replayed = await tool(server, 'bin/replay.ts', ['--tenant', alice.orgId, '--format', 'jsonl', '--quiet'])
    expect(replayed.code, replayed.stderr).toBe(0)
    expect(replayed.stdout).toContain('user.erased')
    for (const s of Object.values(secrets)) expect(replayed.stdout).not.toContain(s)
    const folded = await tool(server, 'bin/replay.ts', [
      '--as-of',
      new Date(Date.now() + 60_000).toISOString(),
      '--stream',
      `message-${messageIds[0]}`,
    ])
    expect(folded.code, folded.stderr).toBe(0)
    expect(folded.stdout).toContain('"text": ""')
    for (const s of Object.values(secrets)) expect(folded.stdout).not.toContain(s)

    const verified = await tool(server, 'bin/rebuild.ts', ['--verify'])
    expect(verified.code, verified.stdout + verified.stderr).toBe(0)
  }, 120_000)
})
