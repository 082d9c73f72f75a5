// npm run migrate
import { parseArgs } from 'node:util'
import { sql } from 'kysely'
import { ConfigError, loadConfig } from '../adapters/config.ts'
import { createKysely, createPool, keepLoginPassword, loginOf, migrate } from '../adapters/postgres.ts'
import { migrationSets } from '../migrations/index.ts'
import { ROLES } from '../migrations/shared.ts'
import { EXIT, openDatabase, runTool, UsageError } from './tooling.ts'

const USAGE = `usage: npm run migrate

Applies every pending migration (migrations/index.ts: eventstore, control, tenant, realtime, in that order) as the
owner's login: MIGRATION_DATABASE_URL, else DATABASE_URL when that login owns the database or is a superuser, else
the embedded Postgres under DATA_DIR. Then the app's login (${ROLES.app}) is made to log in with the password the
server will use. Applied migrations are skipped, so running it again changes nothing. The server also migrates at
start when it knows the owner's login; this runs them ahead of a deploy.

Progress goes to stderr, the outcome to stdout. Exit codes: 0 done, 1 failure, 2 bad arguments or configuration.`

/** The URL as a log may show it: no password. */
const shown = (url: string) => {
  const u = new URL(url)
  if (u.password) u.password = '***'
  return u.toString()
}

runTool(async () => {
  let help: boolean | undefined
  try {
    ;({
      values: { help },
    } = parseArgs({ options: { help: { type: 'boolean', short: 'h' } }, strict: true }))
  } catch (e) {
    throw new UsageError(`${(e as Error).message}\n\n${USAGE}`)
  }
  if (help) {
    process.stdout.write(`${USAGE}\n`)
    return EXIT.ok
  }
  const config = loadConfig()
  let step = config.DATABASE_URL ? `connecting to ${shown(config.DATABASE_URL)}` : 'starting the embedded Postgres'
  try {
    const database = await openDatabase(config)
    try {
      if (!database.ownerUrl) {
        throw new ConfigError(
          `invalid configuration:\n  MIGRATION_DATABASE_URL: required: DATABASE_URL logs in as "${loginOf(database.appUrl).user}", which neither owns the database nor is a superuser; set MIGRATION_DATABASE_URL to the owner's login`,
        )
      }
      step = `connecting to ${shown(database.ownerUrl)}`
      const db = createKysely(createPool(database.ownerUrl, { max: 2, applicationName: 'workspace-migrate' }))
      try {
        await sql`select 1`.execute(db)
        process.stderr.write(`migrate ${shown(database.ownerUrl)}\n`)
        const applied: string[] = []
        for (const set of migrationSets) {
          step = `migrating ${set.schema}`
          const names = await migrate(db, set)
          const done = names.map((n) => n.slice(set.schema.length + 1))
          process.stderr.write(`migrate ${set.schema}: ${done.length ? `applied ${done.join(', ')}` : 'up to date'}\n`)
          applied.push(...names)
        }
        const { user } = loginOf(database.appUrl)
        if (user === ROLES.app) {
          step = `setting the password of the app login ${user}`
          await keepLoginPassword(db, database.appUrl)
          process.stderr.write(`migrate: the app logs in as ${user}\n`)
        }
        const known = migrationSets.reduce((n, s) => n + Object.keys(s.migrations).length, 0)
        process.stdout.write(
          applied.length ? `${applied.length} migration(s) applied\n` : `up to date: ${known} migration(s) already applied\n`,
        )
        return EXIT.ok
      } finally {
        await db.destroy()
      }
    } finally {
      await database.stop?.()
    }
  } catch (e) {
    if (e instanceof ConfigError) throw e
    process.stderr.write(`migrate failed: ${step}: ${e instanceof Error ? e.message : String(e)}\n`)
    return EXIT.failure
  }
})
