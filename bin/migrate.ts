// npm run migrate
import { parseArgs } from 'node:util'
import { ConfigError, loadConfig } from '../adapters/config.ts'
import { loginOf } from '../adapters/postgres.ts'
import { logicalDatabases, migrationSets } from '../migrations/index.ts'
import { ROLES } from '../migrations/shared.ts'
import { byLocation, databaseUrls, openDatabases, prepareDatabases } from './databases.ts'
import { EXIT, runTool, UsageError } from './tooling.ts'

const USAGE = `usage: npm run migrate

Applies every pending migration of each logical database (migrations/index.ts: eventstore, control, then tenant
with realtime) as the owner's login: MIGRATION_DATABASE_URL's login, else the database's URL (EVENTSTORE_,
CONTROL_, TENANT_DATABASE_URL, each defaulting to DATABASE_URL) when that login owns the database or is a
superuser, else the embedded Postgres under DATA_DIR. Then the app's login (${ROLES.app}) is made to log in with the password the
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
  const urls = databaseUrls(config)
  let step = urls
    ? `connecting to ${[...new Set(logicalDatabases.map((d) => shown(urls[d].url)))].join(', ')}`
    : 'starting the embedded Postgres'
  try {
    const databases = await openDatabases(config)
    try {
      const unowned = logicalDatabases.filter((d) => !databases[d].ownerUrl)
      if (unowned.length) {
        const { variable, appUrl } = databases[unowned[0]!]
        throw new ConfigError(
          `invalid configuration:\n  MIGRATION_DATABASE_URL: required: ${variable} logs in as "${loginOf(appUrl).user}", which neither owns the database nor is a superuser; set MIGRATION_DATABASE_URL to the owner's login`,
        )
      }
      for (const ownerUrl of byLocation(databases, 'ownerUrl').keys()) process.stderr.write(`migrate ${shown(ownerUrl)}\n`)
      step = 'migrating'
      const applied = await prepareDatabases(databases, (schema, names) => {
        const done = names.map((n) => n.slice(n.indexOf('/') + 1))
        process.stderr.write(`migrate ${schema}: ${done.length ? `applied ${done.join(', ')}` : 'up to date'}\n`)
      })
      for (const login of new Set(logicalDatabases.map((d) => loginOf(databases[d].appUrl).user))) {
        if (login === ROLES.app) process.stderr.write(`migrate: the app logs in as ${login}\n`)
      }
      const known = migrationSets.reduce((n, s) => n + Object.keys(s.migrations).length, 0)
      process.stdout.write(
        applied.length ? `${applied.length} migration(s) applied\n` : `up to date: ${known} migration(s) already applied\n`,
      )
      return EXIT.ok
    } finally {
      await databases.stop?.()
    }
  } catch (e) {
    if (e instanceof ConfigError) throw e
    process.stderr.write(`migrate failed: ${step}: ${e instanceof Error ? e.message : String(e)}\n`)
    return EXIT.failure
  }
})
