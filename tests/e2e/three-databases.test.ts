import { randomUUID } from 'node:crypto'
import pg from 'pg'
import { afterAll, beforeAll, expect, inject, it } from 'vitest'
import { join, signUp } from '../support/identity.ts'
import { operatorToken } from '../support/operator.ts'
import { startTestServer, type TestServer } from '../support/server.ts'

/*
 * The control, tenant and event-store databases as three databases of their own (CONTROL_DATABASE_URL,
 * TENANT_DATABASE_URL, EVENTSTORE_DATABASE_URL): each migrates only its own schemas, nothing joins across them,
 * and the product works end to end. Nothing the server needs can be found in a database it was not given.
 */

const names = { control: '', tenant: '', eventstore: '' }
let server: TestServer

const admin = async <T>(database: string, fn: (c: pg.Client) => Promise<T>): Promise<T> => {
  const url = new URL(inject('pgAdminUrl'))
  url.pathname = `/${database}`
  const c = new pg.Client({ connectionString: url.toString() })
  await c.connect()
  try {
    return await fn(c)
  } finally {
    await c.end()
  }
}
const urlOf = (database: string) => {
  const url = new URL(inject('pgAdminUrl'))
  url.pathname = `/${database}`
  return url.toString()
}
const schemasIn = (database: string) =>
  admin(database, async (c) => {
    const { rows } = await c.query<{ nspname: string }>(
      `select nspname from pg_namespace where nspname in ('control', 'tenant', 'realtime', 'eventstore') order by 1`,
    )
    return rows.map((r) => r.nspname)
  })
const count = (database: string, table: string) =>
  admin(database, async (c) => Number((await c.query<{ n: string }>(`select count(*) as n from ${table}`)).rows[0]!.n))

beforeAll(async () => {
  const suffix = randomUUID().replaceAll('-', '').slice(0, 10)
  for (const which of ['control', 'tenant', 'eventstore'] as const) {
    names[which] = `ws_test_${which}_${suffix}`
    await admin('postgres', (c) => c.query(`create database "${names[which]}"`))
  }
  server = await startTestServer({
    DATABASE_URL: '',
    CONTROL_DATABASE_URL: urlOf(names.control),
    TENANT_DATABASE_URL: urlOf(names.tenant),
    EVENTSTORE_DATABASE_URL: urlOf(names.eventstore),
  })
})
afterAll(async () => {
  await server?.close()
  for (const name of Object.values(names)) {
    if (name) await admin('postgres', (c) => c.query(`drop database if exists "${name}" with (force)`))
  }
})

it('migrates each logical database into its own database, and only there', async () => {
  expect(await schemasIn(names.control)).toEqual(['control'])
  expect(await schemasIn(names.tenant)).toEqual(['realtime', 'tenant'])
  expect(await schemasIn(names.eventstore)).toEqual(['eventstore'])
  expect(await count(names.control, 'control.kysely_migration')).toBeGreaterThan(0)
})

it('signs up, invites, posts and delivers in realtime, each database holding its own part', async () => {
  const owner = await signUp(server, { email: 'ada@three.example', orgName: 'Three Dbs', username: 'ada' })
  const bob = await join(server, owner.token, { email: 'bob@three.example', role: 'member', username: 'bob' })
  const queue = await server.request('POST', '/realtime/register', { token: bob.token, body: {} })
  expect(queue.status).toBe(200)

  const posted = await server.request('POST', `/api/rooms/${owner.homeRoomId}/messages`, {
    token: owner.token,
    body: { text: 'hello across databases' },
  })
  expect(posted.status, JSON.stringify(posted.body)).toBe(201)
  const timeline = await server.request(
    'GET',
    `/api/rooms/${owner.homeRoomId}/messages?consistentAfter=${posted.body.position}`,
    { token: bob.token },
  )
  expect(timeline.status).toBe(200)
  expect(timeline.body.items.map((m: { text: string }) => m.text)).toContain('hello across databases')

  // Bob's queue hands over what happened since he registered, the message among it.
  const seen: { type: string; data?: { text?: string } }[] = []
  let lastEventId = queue.body.lastEventId as string
  while (!seen.some((e) => e.type === 'message.created')) {
    const polled = await server.request('GET', `/realtime/events?queueId=${queue.body.queueId}&lastEventId=${lastEventId}`, {
      token: bob.token,
    })
    expect(polled.status).toBe(200)
    expect(
      polled.body.events.every((e: { type: string }) => e.type !== 'heartbeat'),
      'the message never arrived',
    ).toBe(true)
    seen.push(...polled.body.events)
    lastEventId = polled.body.events.at(-1).id
  }
  expect(seen.find((e) => e.type === 'message.created')?.data?.text).toBe('hello across databases')

  // Operators read the registry and memberships from the control database.
  const orgs = await server.request('GET', '/control/orgs', { token: await operatorToken(server) })
  expect(orgs.body.items).toContainEqual(expect.objectContaining({ id: owner.orgId, name: 'Three Dbs' }))
  const me = await server.request('GET', '/auth/me', { token: owner.accountToken })
  expect(me.status).toBe(200)

  expect(await count(names.eventstore, 'eventstore.events')).toBeGreaterThan(0)
  expect(await count(names.control, 'control.memberships')).toBe(2)
  expect(await count(names.tenant, 'tenant.messages')).toBeGreaterThan(0)
  expect(await count(names.tenant, 'tenant.users')).toBe(2)
})

it('reports every database ready', async () => {
  const ready = await server.request('GET', '/readyz')
  expect(ready.status).toBe(200)
})
