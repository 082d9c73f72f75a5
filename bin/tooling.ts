import { loadAuthKeys, type Sealer } from '../adapters/auth-keys.ts'
import { type Config, ConfigError, loadConfig } from '../adapters/config.ts'
import { PostgresDataKeys } from '../adapters/data-keys.ts'
import { EmbeddedPostgresAccessError } from '../adapters/embedded-postgres.ts'
import type { EventStore } from '../adapters/event-store.ts'
import { createEventStore } from '../adapters/event-store-factory.ts'
import { withPersonalData } from '../adapters/personal-data-store.ts'
import type { AnyDb, PgPool } from '../adapters/postgres.ts'
import { PostgresEventStore } from '../adapters/postgres-event-store.ts'
import { withUpcasting } from '../adapters/upcasting-event-store.ts'
import { personalData } from '../domain/personal-data.ts'
import { eventUpcasters } from '../domain/schema-versions.ts'
import type { LogicalDatabase } from '../migrations/index.ts'
import { connect, openDatabases, prepareDatabases } from './databases.ts'

/** Exit codes every operations tool uses. */
export const EXIT = { ok: 0, failure: 1, usage: 2 } as const

export class UsageError extends Error {
  override readonly name = 'UsageError'
}

/** What an operations tool works with: the configured event store (decrypting and upcasting on read) and the read-model databases. */
export type Tooling = {
  readonly config: Config
  /** The event store's database. */
  readonly pool: PgPool
  /** The tenant database (read models, realtime). */
  readonly db: AnyDb
  /** The control database (the orgs registry, memberships, parked events, data keys). */
  readonly controlDb: AnyDb
  /** The raw pool of a logical database, for what Kysely does not do (COPY). */
  readonly poolOf: (database: LogicalDatabase) => PgPool
  /** The adapter itself, for adapter-specific fast paths. */
  readonly adapter: EventStore
  readonly store: EventStore
  close(): Promise<void>
}

/**
 * Opens the databases the way the server does (as configured, or the embedded Postgres under DATA_DIR, reused if
 * a server already runs it) and the configured event store; migrates unless told not to. Tools log in as the
 * owner when one is known (a rebuild creates and swaps tables), else as the app.
 */
export async function openTooling(options: { migrate?: boolean; applicationName?: string } = {}): Promise<Tooling> {
  const config = loadConfig()
  const databases = await openDatabases(config)
  if (options.migrate !== false) await prepareDatabases(databases)
  const connections = connect(databases, { max: 8, applicationName: options.applicationName ?? 'workspace-tool' }, 'owner')
  const pool = connections.poolOf('eventstore')
  const db = connections.dbOf('tenant')
  const controlDb = connections.dbOf('control')
  const adapter = createEventStore(config, pool)
  if (adapter instanceof PostgresEventStore) await adapter.assertHistoryOrdered()
  // The key that wraps data keys is loaded only when one is used: a tool that never meets personal data makes none.
  let wrapper: Promise<Sealer> | undefined
  const dataKeys = new PostgresDataKeys(controlDb, async () => {
    wrapper ??= loadAuthKeys({ secretKey: config.AUTH_SECRET_KEY, dataDir: config.DATA_DIR }).then((k) => k.dataKeyWrapper)
    return wrapper
  })
  // Decrypted before upcast, as the server reads.
  const store = withUpcasting(withPersonalData(adapter, dataKeys, personalData), eventUpcasters)
  return {
    config,
    pool,
    db,
    controlDb,
    poolOf: (database) => connections.poolOf(database),
    adapter,
    store,
    async close() {
      await store.close()
      await connections.close()
      await databases.stop?.()
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
