// npm run migrate
import { parseArgs } from 'node:util'
import { sql } from 'kysely'
import { loadConfig } from '../adapters/config.ts'
import { createKysely, createPool, migrate } from '../adapters/postgres.ts'
import { migrationSets } from '../migrations/index.ts'
import { EXIT, openDatabase, runTool, UsageError } from './tooling.ts'

const USAGE = `usage: npm run migrate

Applies every pending migration (migrations/index.ts: eventstore, control, tenant, realtime, in that order) to
DATABASE_URL, or to the embedded Postgres under DATA_DIR when it is unset. Applied migrations are skipped, so
running it again changes nothing. The server also migrates at start; this runs them ahead of a deploy.

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
  let step = 'opening the database'
  try {
    const database = await openDatabase(config)
    const db = createKysely(createPool(database.url, { max: 2, applicationName: 'workspace-migrate' }))
    try {
      step = `connecting to ${shown(database.url)}`
      await sql`select 1`.execute(db)
      process.stderr.write(`migrate ${shown(database.url)}\n`)
      const applied: string[] = []
      for (const set of migrationSets) {
        step = `migrating ${set.schema}`
        const names = await migrate(db, set)
        const done = names.map((n) => n.slice(set.schema.length + 1))
        process.stderr.write(`migrate ${set.schema}: ${done.length ? `applied ${done.join(', ')}` : 'up to date'}\n`)
        applied.push(...names)
      }
      const known = migrationSets.reduce((n, s) => n + Object.keys(s.migrations).length, 0)
      process.stdout.write(
        applied.length ? `${applied.length} migration(s) applied\n` : `up to date: ${known} migration(s) already applied\n`,
      )
      return EXIT.ok
    } finally {
      await db.destroy()
      await database.stop?.()
    }
  } catch (e) {
    process.stderr.write(`migrate failed: ${step}: ${e instanceof Error ? e.message : String(e)}\n`)
    return EXIT.failure
  }
})
