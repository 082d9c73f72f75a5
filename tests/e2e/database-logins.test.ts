import { spawn } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import { once } from 'node:events'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import pg from 'pg'
import { afterAll, beforeAll, expect, inject, it } from 'vitest'
import { withLogin } from '../../adapters/postgres.ts'
import { ROLES } from '../../migrations/shared.ts'
import { freePort } from '../support/child-server.ts'
import { createTestDatabase, type TestDatabase } from '../support/db.ts'

/*
 * Which login the server and `npm run migrate` use (README: Configuration, Tenancy in Postgres): the owner's only
 * to migrate, the app's (ROLES.app) for every pool, and never one that could see past row-level security.
 */

let database: TestDatabase
let dataDir: string
/** A login that is no owner but may bypass RLS: what the server must refuse to run as. */
const bypasser = `ws_test_bypass_${randomUUID().replaceAll('-', '').slice(0, 8)}`

const admin = async <T>(fn: (c: pg.Client) => Promise<T>): Promise<T> => {
  const c = new pg.Client({ connectionString: inject('pgAdminUrl') })
  await c.connect()
  try {
    return await fn(c)
  } finally {
    await c.end()
  }
}

beforeAll(async () => {
  database = await createTestDatabase()
  dataDir = await mkdtemp(join(tmpdir(), 'ws-logins-'))
  await admin((c) => c.query(`create role ${bypasser} login bypassrls`))
})
afterAll(async () => {
  await database?.drop()
  await admin((c) => c.query(`drop role if exists ${bypasser}`))
  await rm(dataDir, { recursive: true, force: true })
})

function run(script: string, env: Record<string, string>) {
  const child = spawn(process.execPath, [script], {
    env: { ...process.env, LOG_LEVEL: 'info', REDIS_URL: '', DATA_DIR: dataDir, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let out = ''
  child.stdout!.on('data', (d) => (out += d))
  child.stderr!.on('data', (d) => (out += d))
  return { child, output: () => out, exited: once(child, 'exit').then(([code]) => code as number) }
}

async function ready(url: string, exited: Promise<number>): Promise<number> {
  const deadline = Date.now() + 20_000
  let status = 0
  while (Date.now() < deadline && status !== 200) {
    status = await Promise.race([
      fetch(`${url}/readyz`).then(
        (r) => r.status,
        () => 0,
      ),
      exited.then((code) => -code),
    ])
    if (status < 0) return status
    await new Promise((r) => setTimeout(r, 100))
  }
  return status
}

const loginsOf = async (name: string) =>
  admin(async (c) => {
    const { rows } = await c.query<{ usename: string }>(
      "select distinct usename from pg_stat_activity where datname = $1 and application_name like 'workspace-%'",
      [name],
    )
    return rows.map((r) => r.usename)
  })

it('given the owner’s DATABASE_URL, the server migrates with it and its pool logs in as the app login', async () => {
  const port = await freePort()
  const server = run('bin/serve.ts', { DATABASE_URL: database.url, PORT: String(port) })
  try {
    expect(await ready(`http://127.0.0.1:${port}`, server.exited), server.output()).toBe(200)
    expect(await loginsOf(database.name)).toEqual([ROLES.app])
  } finally {
    server.child.kill('SIGTERM')
    await server.exited
  }
})

it('given the app login as DATABASE_URL and no MIGRATION_DATABASE_URL, it serves without migrating', async () => {
  expect(process.env.APP_DATABASE_PASSWORD, 'set for the run by global-setup').toBeTruthy()
  const port = await freePort()
  const server = run('bin/serve.ts', { DATABASE_URL: database.appUrl, PORT: String(port) })
  try {
    expect(await ready(`http://127.0.0.1:${port}`, server.exited), server.output()).toBe(200)
    expect(server.output()).toContain('no migrations at start')
    expect(await loginsOf(database.name)).toEqual([ROLES.app])
  } finally {
    server.child.kill('SIGTERM')
    await server.exited
  }
})

it('refuses to serve as a login that can bypass row-level security: exit 2, naming DATABASE_URL and why', async () => {
  const server = run('bin/serve.ts', { DATABASE_URL: withLogin(database.url, bypasser, ''), PORT: String(await freePort()) })
  expect(await server.exited).toBe(2)
  expect(server.output()).toContain('DATABASE_URL')
  expect(server.output()).toContain(`"${bypasser}"`)
  expect(server.output()).toMatch(/BYPASSRLS/)
})

it('npm run migrate needs the owner: the app login alone exits 2 naming MIGRATION_DATABASE_URL; with it, migrates', async () => {
  const alone = run('bin/migrate.ts', { DATABASE_URL: database.appUrl })
  expect(await alone.exited, alone.output()).toBe(2)
  expect(alone.output()).toMatch(/MIGRATION_DATABASE_URL/)

  const empty = `ws_logins_${randomUUID().replaceAll('-', '').slice(0, 12)}`
  await admin((c) => c.query(`create database "${empty}"`))
  try {
    const ownerUrl = Object.assign(new URL(database.url), { pathname: `/${empty}` }).toString()
    const appUrl = withLogin(ownerUrl, ROLES.app, process.env.APP_DATABASE_PASSWORD ?? '')
    const both = run('bin/migrate.ts', { DATABASE_URL: appUrl, MIGRATION_DATABASE_URL: ownerUrl })
    expect(await both.exited, both.output()).toBe(0)
    expect(both.output()).toMatch(/migration\(s\) applied/)
    const target = new pg.Client({ connectionString: ownerUrl })
    await target.connect()
    const { rows } = await target
      .query<{ owner: string }>(
        `select distinct pg_get_userbyid(c.relowner) as owner from pg_class c join pg_namespace n on n.oid = c.relnamespace
          where n.nspname in ('eventstore', 'control', 'tenant', 'realtime') and c.relkind = 'r'`,
      )
      .finally(() => target.end())
    expect(rows.map((r) => r.owner)).toEqual([new URL(database.url).username])
  } finally {
    await admin((c) => c.query(`drop database if exists "${empty}" with (force)`))
  }
}, 60_000)
