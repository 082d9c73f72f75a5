import { randomUUID } from 'node:crypto'
import pg from 'pg'
import { inject } from 'vitest'
import { withLogin } from '../../adapters/postgres.ts'
import { ROLES } from '../../migrations/shared.ts'

/** `url` logs in as the test cluster's superuser (the owner); `appUrl` as the app's login, ROLES.app. */
export type TestDatabase = { url: string; appUrl: string; name: string; drop(): Promise<void> }

const urlFor = (database: string) => {
  const url = new URL(inject('pgAdminUrl'))
  url.pathname = `/${database}`
  return url.toString()
}

/** A fresh, fully migrated database cloned from the template: one per test file or test. */
export async function createTestDatabase(): Promise<TestDatabase> {
  const name = `ws_test_${randomUUID().replaceAll('-', '').slice(0, 16)}`
  const admin = new pg.Client({ connectionString: inject('pgAdminUrl') })
  await admin.connect()
  try {
    await admin.query(`create database "${name}" template "${inject('pgTemplate')}"`)
  } finally {
    await admin.end()
  }
  return {
    name,
    url: urlFor(name),
    appUrl: withLogin(urlFor(name), ROLES.app, process.env.APP_DATABASE_PASSWORD ?? ''),
    async drop() {
      const c = new pg.Client({ connectionString: inject('pgAdminUrl') })
      await c.connect()
      try {
        await c.query(`drop database if exists "${name}" with (force)`)
      } finally {
        await c.end()
      }
    },
  }
}

/** The Redis URL, or a clear failure: a suite that needs Redis never skips silently. */
export function requireRedis(): string {
  const url = inject('redisUrl')
  if (!url) throw new Error(inject('redisProblem') ?? 'Redis is not available')
  return url
}
