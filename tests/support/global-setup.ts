import { createHash } from 'node:crypto'
import { readdir, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { Redis } from 'ioredis'
import pg from 'pg'
import type { TestProject } from 'vitest/node'
import { postgresAnswers, startEmbeddedPostgres } from '../../adapters/embedded-postgres.ts'
import { createKysely, keepLoginPassword, withLogin } from '../../adapters/postgres.ts'
import { migrateAll } from '../../migrations/index.ts'
import { ROLES } from '../../migrations/shared.ts'

declare module 'vitest' {
  export interface ProvidedContext {
    pgAdminUrl: string
    pgTemplate: string
    redisUrl: string | null
    redisProblem: string | null
  }
}

const DEFAULT_PG = 'postgres://postgres@127.0.0.1:5432/postgres'
const DEFAULT_REDIS = 'redis://127.0.0.1:6379'
/**
 * The app's login (ROLES.app) has one password for the whole run, whatever DATA_DIR a server or child process
 * uses: a cluster that checks passwords (the embedded one) lets them all in. Workers and child processes
 * inherit it through the environment.
 */
const TEST_APP_PASSWORD = 'ws-test-app-login-password'

async function migrationsHash(): Promise<string> {
  const hash = createHash('sha256')
  const root = new URL('../../migrations/', import.meta.url).pathname
  for (const entry of (await readdir(root, { recursive: true })).sort()) {
    if (entry.endsWith('.ts')) hash.update(entry).update(await readFile(join(root, entry)))
  }
  return hash.digest('hex').slice(0, 12)
}

async function findPostgres(): Promise<{ url: string; stop?: () => Promise<void> }> {
  const configured = process.env.DATABASE_URL
  if (configured) {
    if (await postgresAnswers(configured)) return { url: configured }
    throw new Error(`DATABASE_URL=${configured} does not answer: start that Postgres or unset DATABASE_URL`)
  }
  if (await postgresAnswers(DEFAULT_PG)) return { url: DEFAULT_PG }
  console.log('[tests] no Postgres at 127.0.0.1:5432: starting embedded Postgres under .data/test-postgres')
  const embedded = await startEmbeddedPostgres('.data/test-postgres', 54_330)
  return { url: embedded.url, stop: embedded.stop }
}

async function findRedis(): Promise<{ url: string | null; problem: string | null }> {
  const url = process.env.REDIS_URL ?? DEFAULT_REDIS
  const redis = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null })
  try {
    await redis.connect()
    await redis.ping()
    return { url, problem: null }
  } catch (e) {
    return {
      url: null,
      problem: `Redis at ${url} does not answer (${(e as Error).message}); set REDIS_URL or start Redis`,
    }
  } finally {
    redis.disconnect()
  }
}

/** Builds one migrated template database per migration set; each test file clones it. */
export default async function setup(project: TestProject) {
  const postgres = await findPostgres()
  const template = `ws_template_${await migrationsHash()}`
  const admin = new pg.Client({ connectionString: postgres.url })
  await admin.connect()
  try {
    const { rowCount } = await admin.query('select 1 from pg_database where datname = $1', [template])
    if (!rowCount) {
      const building = `${template}_building_${process.pid}`
      await admin.query(`create database "${building}"`)
      const url = new URL(postgres.url)
      url.pathname = `/${building}`
      const pool = new pg.Pool({ connectionString: url.toString(), max: 1 })
      const db = createKysely(pool)
      try {
        await migrateAll(db)
      } finally {
        await db.destroy()
      }
      // Another run may have won the race; either template is equivalent.
      await admin.query(`alter database "${building}" rename to "${template}"`).catch(async () => {
        await admin.query(`drop database "${building}"`)
      })
    }
  } finally {
    await admin.end()
  }
  process.env.APP_DATABASE_PASSWORD ??= TEST_APP_PASSWORD
  const owner = createKysely(new pg.Pool({ connectionString: postgres.url, max: 1 }))
  try {
    await keepLoginPassword(owner, withLogin(postgres.url, ROLES.app, process.env.APP_DATABASE_PASSWORD))
  } finally {
    await owner.destroy()
  }
  const redis = await findRedis()
  project.provide('pgAdminUrl', postgres.url)
  project.provide('pgTemplate', template)
  project.provide('redisUrl', redis.url)
  project.provide('redisProblem', redis.problem)
  return async () => {
    await postgres.stop?.()
  }
}
