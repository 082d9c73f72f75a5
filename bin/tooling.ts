import { join } from 'node:path'
import { loadAuthKeys, type Sealer } from '../adapters/auth-keys.ts'
import { type Config, ConfigError, loadConfig } from '../adapters/config.ts'
import { PostgresDataKeys } from '../adapters/data-keys.ts'
import {
  EmbeddedPostgresAccessError,
  ensureDatabase,
  loadOrCreatePassword,
  startEmbeddedPostgres,
} from '../adapters/embedded-postgres.ts'
import type { EventStore } from '../adapters/event-store.ts'
import { createEventStore } from '../adapters/event-store-factory.ts'
import { withPersonalData } from '../adapters/personal-data-store.ts'
import {
  type AnyDb,
  createKysely,
  createPool,
  keepLoginPassword,
  loginOf,
  ownsDatabase,
  type PgPool,
  rlsBypasses,
  withLogin,
} from '../adapters/postgres.ts'
import { PostgresEventStore } from '../adapters/postgres-event-store.ts'
import { withUpcasting } from '../adapters/upcasting-event-store.ts'
import { personalData } from '../domain/personal-data.ts'
import { eventUpcasters } from '../domain/schema-versions.ts'
import { migrateAll, migrationSets } from '../migrations/index.ts'
import { ROLES } from '../migrations/shared.ts'

/** Exit codes every operations tool uses. */
export const EXIT = { ok: 0, failure: 1, usage: 2 } as const

export class UsageError extends Error {
  override readonly name = 'UsageError'
}

/** What an operations tool works with: the configured event store (decrypting and upcasting on read) and the read-model database. */
export type Tooling = {
  readonly config: Config
  readonly pool: PgPool
  readonly db: AnyDb
  /** The adapter itself, for adapter-specific fast paths. */
  readonly adapter: EventStore
  readonly store: EventStore
  close(): Promise<void>
}

/** Where the server's data is, and the two logins to it. */
export type Database = {
  /**
   * The owner's login: migrations, and the tools that create tables (rebuild). Null when only the app's login
   * is known (DATABASE_URL names it and MIGRATION_DATABASE_URL is unset).
   */
  readonly ownerUrl: string | null
  /** The login every pool of the server uses (ROLES.app): no superuser, no BYPASSRLS, owns nothing. */
  readonly appUrl: string
  /** Stops the embedded Postgres this process started. */
  readonly stop?: () => Promise<void>
}

const SCHEMAS = migrationSets.map((s) => s.schema)

/**
 * The server's database: DATABASE_URL, or the embedded Postgres under DATA_DIR (reused if a server already runs
 * it). When DATABASE_URL's login owns the database (or is a superuser), it migrates and the app logs in beside it
 * as ROLES.app with APP_DATABASE_PASSWORD (or a password kept under DATA_DIR); otherwise DATABASE_URL is the
 * app's login, and the owner's is MIGRATION_DATABASE_URL.
 */
export async function openDatabase(config: Config, log: (line: string) => void = () => {}): Promise<Database> {
  const appLogin = async (ownerUrl: string) =>
    withLogin(
      ownerUrl,
      ROLES.app,
      config.APP_DATABASE_PASSWORD ?? (await loadOrCreatePassword(join(config.DATA_DIR, 'postgres-app-login.json'))),
    )
  if (!config.DATABASE_URL) {
    const embedded = await startEmbeddedPostgres(join(config.DATA_DIR, 'postgres'), config.EMBEDDED_POSTGRES_PORT, log)
    const ownerUrl = await ensureDatabase(embedded.url, 'workspace')
    return { ownerUrl, appUrl: await appLogin(ownerUrl), stop: embedded.stop }
  }
  const owner = await ownsDatabase(config.DATABASE_URL, SCHEMAS)
  return {
    ownerUrl: config.MIGRATION_DATABASE_URL ?? (owner ? config.DATABASE_URL : null),
    appUrl: owner ? await appLogin(config.DATABASE_URL) : config.DATABASE_URL,
  }
}

/**
 * Applies pending migrations as the owner, then makes the app's login (when it is ROLES.app, which the migrations
 * maintain) log in with the password the app will use. Without an owner's login, nothing is migrated.
 */
export async function prepareDatabase(database: Database): Promise<string[]> {
  if (!database.ownerUrl) return []
  const owner = createKysely(createPool(database.ownerUrl, { max: 2, applicationName: 'workspace-migrate' }))
  try {
    const applied = await migrateAll(owner)
    if (loginOf(database.appUrl).user === ROLES.app) await keepLoginPassword(owner, database.appUrl)
    return applied
  } finally {
    await owner.destroy()
  }
}

/**
 * Refuses an app login that could see past row-level security: a superuser, a role with BYPASSRLS (or one that
 * may become either), or the owner of a table.
 */
export async function assertAppLogin(pool: PgPool): Promise<void> {
  const { login, problems } = await rlsBypasses(pool, SCHEMAS)
  if (problems.length === 0) return
  throw new ConfigError(
    `invalid configuration:\n  DATABASE_URL: the app's database login "${login}" ${problems.join('; ')}: the app must log in as a role row-level security binds (${ROLES.app}, which the migrations keep; the owner's login goes in MIGRATION_DATABASE_URL)`,
  )
}

/**
 * Opens the database the way the server does (DATABASE_URL, or the embedded Postgres under DATA_DIR, reused if
 * a server already runs it) and the configured event store; migrates unless told not to. Tools log in as the
 * owner when one is known (a rebuild creates and swaps tables), else as the app.
 */
export async function openTooling(options: { migrate?: boolean; applicationName?: string } = {}): Promise<Tooling> {
  const config = loadConfig()
  const database = await openDatabase(config)
  if (options.migrate !== false) await prepareDatabase(database)
  const pool = createPool(database.ownerUrl ?? database.appUrl, {
    max: 8,
    applicationName: options.applicationName ?? 'workspace-tool',
  })
  const db = createKysely(pool)
  const adapter = createEventStore(config, pool)
  if (adapter instanceof PostgresEventStore) await adapter.assertHistoryOrdered()
  // The key that wraps data keys is loaded only when one is used: a tool that never meets personal data makes none.
  let wrapper: Promise<Sealer> | undefined
  const dataKeys = new PostgresDataKeys(db, async () => {
    wrapper ??= loadAuthKeys({ secretKey: config.AUTH_SECRET_KEY, dataDir: config.DATA_DIR }).then((k) => k.dataKeyWrapper)
    return wrapper
  })
  // Decrypted before upcast, as the server reads.
  const store = withUpcasting(withPersonalData(adapter, dataKeys, personalData), eventUpcasters)
  return {
    config,
    pool,
    db,
    adapter,
    store,
    async close() {
      await store.close()
      await db.destroy()
      await database.stop?.()
    },
  }
}

/** Runs a tool's main: usage errors exit 2 with the message, configuration errors 2, anything else 1. */
export function runTool(main: () => Promise<number | undefined>): void {
  main().then(
    (code) => process.exit(code ?? EXIT.ok),
    (e: unknown) => {
      if (e instanceof UsageError || e instanceof ConfigError) {
        process.stderr.write(`${e.message}\n`)
        process.exit(EXIT.usage)
      }
      const known = e instanceof EmbeddedPostgresAccessError
      process.stderr.write(`${e instanceof Error ? (known ? e.message : (e.stack ?? e.message)) : String(e)}\n`)
      process.exit(EXIT.failure)
    },
  )
}
