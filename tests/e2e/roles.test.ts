import { randomBytes } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { loadCheckpoint } from '../../projections/engine.ts'
import { type ChildServer, startChildServer } from '../support/child-server.ts'
import { activate, login, tenantSession } from '../support/identity.ts'
import { eventCount, startTestServer, type TestServer } from '../support/server.ts'

/*
 * ROLES split one backend across processes on one database: `api` here (in-process), `projector`, `realtime`
 * and `processors` in a child. Each process serves only what its roles name.
 */

let api: TestServer
let rest: ChildServer | undefined
let dataDir: string

// Every process reading events shares the key that seals personal data in them.
const AUTH_SECRET_KEY = randomBytes(32).toString('hex')

beforeAll(async () => {
  api = await startTestServer({ ROLES: 'api', AUTH_SECRET_KEY })
  dataDir = await mkdtemp(join(tmpdir(), 'ws-roles-'))
})
afterAll(async () => {
  await rest?.kill('SIGTERM')
  await api?.close()
  await rm(dataDir, { recursive: true, force: true })
})

const checkpoints = async () =>
  Promise.all(api.services.projectors.map(async (p) => `${p.name}@${(await loadCheckpoint(api.services.db, p)).sequence}`))

/** The newest event written (the store's head may sit below transactions other tests hold open on the cluster). */
const lastEvent = async () =>
  Number(
    (await api.services.pool.query<{ n: string }>('select max(global_position)::text as n from eventstore.events')).rows[0]!.n,
  )

const call = async (base: string, method: string, path: string, token?: string) => {
  const res = await fetch(base + path, {
    method,
    headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
    ...(method === 'GET' ? {} : { body: '{}' }),
  })
  return { status: res.status, type: res.headers.get('content-type'), body: await res.json().catch(() => null) }
}

let account: Awaited<ReturnType<typeof login>>
let orgId: string

it('a process without the projector role projects nothing: every checkpoint stays where it was', async () => {
  const before = await checkpoints()
  const events = await eventCount(api)
  account = await login(api, 'ada@roles.test')
  const onboarded = await api.request('POST', '/orgs/onboard', { token: account.accountToken, body: { name: 'Roles' } })
  expect(onboarded.status).toBe(201)
  orgId = onboarded.body.orgId
  expect(await eventCount(api)).toBeGreaterThan(events)
  await new Promise((r) => setTimeout(r, 1_500))
  expect(await checkpoints()).toEqual(before)
  expect(api.services.engine).toBeNull()
})

it('the projector role, in another process, takes the read models to the head', async () => {
  rest = await startChildServer({
    ROLES: 'projector,realtime,processors',
    DATABASE_URL: api.database.url,
    DATA_DIR: dataDir,
    AUTH_SECRET_KEY,
    LOG_LEVEL: 'info',
  })
  const last = await lastEvent()
  const reached = async () => (await checkpoints()).filter((c) => Number(c.split('@')[1]) >= last)
  const deadline = Date.now() + 20_000
  while (Date.now() < deadline && (await reached()).length < api.services.projectors.length) {
    await new Promise((r) => setTimeout(r, 100))
  }
  expect(await reached()).toEqual(await checkpoints())
}, 40_000)

it('a process without the api role serves no /api, /auth, /orgs or /control route; one without realtime no /realtime', async () => {
  const session = await tenantSession(api, account.accountToken, orgId)
  await activate(api, session.token, 'ada')
  // The api process: the Tenant API answers, realtime does not exist there.
  expect((await call(api.url, 'GET', '/api/me', session.token)).status).toBe(200)
  const noRealtime = await call(api.url, 'POST', '/realtime/register', session.token)
  expect(noRealtime).toMatchObject({ status: 404, type: 'application/problem+json', body: { code: 'NOT_FOUND' } })
  // The other process: realtime answers, nothing of the API exists there.
  expect((await call(rest!.url, 'POST', '/realtime/register', session.token)).status).toBe(200)
  for (const [method, path, token] of [
    ['GET', '/api/me', session.token],
    ['GET', '/api/rooms', session.token],
    ['GET', '/auth/me', account.accountToken],
    ['GET', '/orgs/name-check?name=Other', undefined],
    ['GET', '/control/orgs', undefined],
    ['GET', '/openapi.json', undefined],
  ] as const) {
    const r = await call(rest!.url, method, path, token)
    expect({ path, ...r }).toMatchObject({ path, status: 404, type: 'application/problem+json', body: { code: 'NOT_FOUND' } })
  }
  // Probes answer on every process.
  expect((await call(rest!.url, 'GET', '/healthz')).status).toBe(200)
})

it('the processors role runs the processors there, and only there: the child holds their leases, the api process none', async () => {
  expect(rest!.output()).toMatch(/"roles":\["projector","realtime","processors"\]/)
  const holders = async () =>
    (
      await api.services.pool.query<{ holder: string }>(
        `select distinct split_part(holder, ':', 2) as holder from control.processor_leases
          where holder is not null and expires_at > now() and name not like '~%'`,
      )
    ).rows.map((r) => r.holder)
  const deadline = Date.now() + 20_000
  while (Date.now() < deadline && !(await holders()).includes(String(rest!.proc.pid))) {
    await new Promise((r) => setTimeout(r, 100))
  }
  expect(await holders()).toEqual([String(rest!.proc.pid)])
})
