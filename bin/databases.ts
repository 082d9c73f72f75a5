import { join } from 'node:path'
import { type Config, ConfigError } from '../adapters/config.ts'
import { ensureDatabase, loadOrCreatePassword, startEmbeddedPostgres } from '../adapters/embedded-postgres.ts'
import {
  type AnyDb,
  createKysely,
  createPool,
  keepLoginPassword,
  loginOf,
  migrate,
  ownsDatabase,
  type PgPool,
  rlsBypasses,
  withLogin,
} from '../adapters/postgres.ts'
import { type LogicalDatabase, logicalDatabases, migrationSetsOf, schemasOf } from '../migrations/index.ts'
import { ROLES } from '../migrations/shared.ts'

/** Where one logical database is, and the two logins to it. */
export type Database = {
  /** The variable that names it, for messages. */
  readonly variable: string
  /**
   * The owner's login: migrations, and the tools that create tables (rebuild). Null when only the app's login
   * is known (the URL names it and MIGRATION_DATABASE_URL is unset).
   */
  readonly ownerUrl: string | null
  /** The login every pool of the server uses (ROLES.app): no superuser, no BYPASSRLS, owns nothing. */
  readonly appUrl: string
}

/** The control, tenant and event-store databases: three URLs, or one database named three times. */
export type Databases = Readonly<Record<LogicalDatabase, Database>> & {
  /** Stops the embedded Postgres this process started. */
  readonly stop?: () => Promise<void>
}

/** Each logical database's URL and the variable it came from; null on the embedded start. */
export function databaseUrls(config: Config): Record<LogicalDatabase, { url: string; variable: string }> | null {
  const named = (url: string | undefined, variable: string) => (url ? { url, variable } : undefined)
  const fallback = named(config.DATABASE_URL, 'DATABASE_URL')
  const control = named(config.CONTROL_DATABASE_URL, 'CONTROL_DATABASE_URL') ?? fallback
  const tenant = named(config.TENANT_DATABASE_URL, 'TENANT_DATABASE_URL') ?? fallback
  if (!control || !tenant) return null
  return { control, tenant, eventstore: named(config.EVENTSTORE_DATABASE_URL, 'EVENTSTORE_DATABASE_URL') ?? tenant }
}

/**
 * The server's databases: as configured, or the embedded Postgres under DATA_DIR (reused if a server already
 * runs it) holding all three. Where a URL's login owns its database (or is a superuser), it migrates and the app
 * logs in beside it as ROLES.app with APP_DATABASE_PASSWORD (or a password kept under DATA_DIR); otherwise the
 * URL is the app's login, and the owner's is MIGRATION_DATABASE_URL's login on that database.
 */
export async function openDatabases(config: Config, log: (line: string) => void = () => {}): Promise<Databases> {
  let appPassword: Promise<string> | undefined
  const appLogin = async (ownerUrl: string) => {
    appPassword ??= config.APP_DATABASE_PASSWORD
      ? Promise.resolve(config.APP_DATABASE_PASSWORD)
      : loadOrCreatePassword(join(config.DATA_DIR, 'postgres-app-login.json'))
    return withLogin(ownerUrl, ROLES.app, await appPassword)
  }
  const urls = databaseUrls(config)
  if (!urls) {
    const embedded = await startEmbeddedPostgres(join(config.DATA_DIR, 'postgres'), config.EMBEDDED_POSTGRES_PORT, log)
    const ownerUrl = await ensureDatabase(embedded.url, 'workspace')
    const one: Database = { variable: 'DATABASE_URL', ownerUrl, appUrl: await appLogin(ownerUrl) }
    return { eventstore: one, control: one, tenant: one, stop: embedded.stop }
  }
  const single = new Set(logicalDatabases.map((d) => urls[d].url)).size === 1
  const migrationLogin = config.MIGRATION_DATABASE_URL ? loginOf(config.MIGRATION_DATABASE_URL) : null
  const open = async (database: LogicalDatabase): Promise<Database> => {
    const { url, variable } = urls[database]
    const owner = await ownsDatabase(url, single ? logicalDatabases.flatMap(schemasOf) : schemasOf(database))
    const ownerUrl = migrationLogin
      ? single
        ? config.MIGRATION_DATABASE_URL!
        : withLogin(url, migrationLogin.user, migrationLogin.password)
      : owner
        ? url
        : null
    return { variable, ownerUrl, appUrl: owner ? await appLogin(url) : url }
  }
  const [eventstore, control, tenant] = await Promise.all(logicalDatabases.map(open))
  return { eventstore: eventstore!, control: control!, tenant: tenant! }
}

/** The logical databases grouped by where they are: one group when a single database holds them all. */
export function byLocation(databases: Databases, login: 'ownerUrl' | 'appUrl'): Map<string, LogicalDatabase[]> {
  const groups = new Map<string, LogicalDatabase[]>()
  for (const d of logicalDatabases) {
    const url = databases[d][login]
    if (url) groups.set(url, [...(groups.get(url) ?? []), d])
  }
  return groups
}

/**
 * Applies pending migrations of each logical database as its owner, then makes the app's login (when it is
 * ROLES.app, which the migrations maintain) log in with the password the app will use. A logical database
 * without an owner's login is not migrated. Progress goes to `log`.
 */
export async function prepareDatabases(
  databases: Databases,
  log: (schema: string, applied: string[]) => void = () => {},
): Promise<string[]> {
  const applied: string[] = []
  for (const [ownerUrl, group] of byLocation(databases, 'ownerUrl')) {
    const owner = createKysely(createPool(ownerUrl, { max: 2, applicationName: 'workspace-migrate' }))
    try {
      for (const database of group) {
        for (const set of migrationSetsOf[database]) {
          const names = await migrate(owner, set)
          log(set.schema, names)
          applied.push(...names)
        }
        const { appUrl } = databases[database]
        if (loginOf(appUrl).user === ROLES.app) await keepLoginPassword(owner, appUrl)
      }
    } finally {
      await owner.destroy()
    }
  }
  return applied
}

/** Connections: one pool (and Kysely) per distinct URL, so one database holding all three shares one. */
export type Connections = {
  poolOf(database: LogicalDatabase): PgPool
  dbOf(database: LogicalDatabase): AnyDb
  /** Every pool opened, once each. */
  all(): PgPool[]
  close(): Promise<void>
}

export function connect(
  databases: Databases,
  options: { max: number; applicationName?: string },
  /** The app's login (the server), or the owner's where known (operators' tools that create tables). */
  as: 'app' | 'owner' = 'app',
): Connections {
  const opened = new Map<string, { pool: PgPool; db: AnyDb }>()
  const at = (database: LogicalDatabase) => {
    const url = (as === 'owner' ? databases[database].ownerUrl : null) ?? databases[database].appUrl
    const known = opened.get(url)
    if (known) return known
    const pool = createPool(url, options)
    const c = { pool, db: createKysely(pool) }
    opened.set(url, c)
    return c
  }
  return {
    poolOf: (database) => at(database).pool,
    dbOf: (database) => at(database).db,
    all: () => [...opened.values()].map((c) => c.pool),
    async close() {
      for (const { db } of opened.values()) await db.destroy()
    },
  }
}

/**
 * Refuses an app login that could see past row-level security in any of its databases: a superuser, a role with
 * BYPASSRLS (or one that may become either), or the owner of a table.
 */
export async function assertAppLogins(databases: Databases, connections: Connections): Promise<void> {
  for (const group of byLocation(databases, 'appUrl').values()) {
    const { login, problems } = await rlsBypasses(connections.poolOf(group[0]!), group.flatMap(schemasOf))
    if (problems.length === 0) continue
    const variable = databases[group[0]!].variable
    throw new ConfigError(
      `invalid configuration:\n  ${variable}: the app's database login "${login}" ${problems.join('; ')}: the app must log in as a role row-level security binds (${ROLES.app}, which the migrations keep; the owner's login goes in MIGRATION_DATABASE_URL)`,
    )
  }
}
