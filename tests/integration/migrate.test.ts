import { spawn } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import { once } from 'node:events'
import pg from 'pg'
import { afterAll, beforeAll, expect, inject, it } from 'vitest'
import { migrationSets } from '../../migrations/index.ts'
import { freePort } from '../support/child-server.ts'

/* `npm run migrate` (bin/migrate.ts) against an empty database, the way an operator runs it before a deploy. */

const name = `ws_migrate_${randomUUID().replaceAll('-', '').slice(0, 16)}`
const admin = () => new pg.Client({ connectionString: inject('pgAdminUrl') })
const url = (() => {
  const u = new URL(inject('pgAdminUrl'))
  u.pathname = `/${name}`
  return u.toString()
})()

beforeAll(async () => {
  const c = admin()
  await c.connect()
  await c.query(`create database "${name}"`)
  await c.end()
})
afterAll(async () => {
  const c = admin()
  await c.connect()
  await c.query(`drop database if exists "${name}" with (force)`)
  await c.end()
})

async function migrate(env: Record<string, string>, args: string[] = []) {
  const child = spawn(process.execPath, ['bin/migrate.ts', ...args], {
    env: { ...process.env, LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let stdout = ''
  let stderr = ''
  child.stdout!.on('data', (d) => (stdout += d))
  child.stderr!.on('data', (d) => (stderr += d))
  const [code] = await once(child, 'exit')
  return { code: code as number, stdout, stderr }
}

async function query<T>(text: string): Promise<T[]> {
  const c = new pg.Client({ connectionString: url })
  await c.connect()
  try {
    return (await c.query(text)).rows as T[]
  } finally {
    await c.end()
  }
}

const known = migrationSets.flatMap((s) => Object.keys(s.migrations).map((m) => `${s.schema}/${m}`))

it('migrates an empty database: every migration applied, the schema there, progress on stderr', async () => {
  // The test cluster trusts local connections: the password is there only to be kept out of the log.
  const withPassword = new URL(url)
  withPassword.password = 'hunter2-secret'
  const first = await migrate({ DATABASE_URL: withPassword.toString() })
  expect(first.code, first.stderr).toBe(0)
  expect(first.stdout.trim()).toBe(`${known.length} migration(s) applied`)
  for (const set of migrationSets) expect(first.stderr).toContain(`migrate ${set.schema}:`)
  for (const m of known) expect(first.stderr).toContain(m.split('/')[1])
  expect(first.stderr).toContain(':***@')
  expect(first.stderr + first.stdout).not.toContain('hunter2')
  const tables = await query<{ t: string }>(
    `select table_schema || '.' || table_name as t from information_schema.tables
      where table_schema in ('eventstore', 'control', 'tenant', 'realtime')`,
  )
  expect(tables.map((r) => r.t)).toEqual(
    expect.arrayContaining(['eventstore.events', 'control.orgs', 'tenant.users', 'tenant.messages', 'realtime.user_events']),
  )
})

it('run again, it applies nothing and says so', async () => {
  const again = await migrate({ DATABASE_URL: url })
  expect(again.code, again.stderr).toBe(0)
  expect(again.stdout.trim()).toBe(`up to date: ${known.length} migration(s) already applied`)
})

it('exits 2 on a bad argument or configuration, 1 when the database does not answer', async () => {
  const badArg = await migrate({ DATABASE_URL: url }, ['--down'])
  expect(badArg.code).toBe(2)
  expect(badArg.stderr).toMatch(/usage: npm run migrate/)
  const badConfig = await migrate({ DATABASE_URL: 'not a url' })
  expect(badConfig.code).toBe(2)
  expect(badConfig.stderr).toMatch(/DATABASE_URL/)
  const nobody = await migrate({ DATABASE_URL: `postgres://postgres@127.0.0.1:${await freePort()}/x` })
  expect(nobody.code).toBe(1)
  expect(nobody.stderr).toMatch(/^migrate failed: connecting to postgres:\/\/postgres@127\.0\.0\.1:\d+\/x: .*ECONNREFUSED/m)
})
