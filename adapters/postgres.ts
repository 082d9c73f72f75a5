import { Kysely, type Migration, Migrator, PostgresDialect, sql } from 'kysely'
import pg from 'pg'

export type PgPool = pg.Pool

export const createPool = (connectionString: string, options: { max?: number; applicationName?: string } = {}) => {
  const pool = new pg.Pool({
    connectionString,
    max: options.max ?? 10,
    application_name: options.applicationName ?? 'workspace',
    idleTimeoutMillis: 30_000,
    connectionTimeoutMillis: 10_000,
  })
  // An idle connection the server dropped (restart, failover, terminate): the pool discards it and opens a
  // new one on demand; unhandled, the error would end the process.
  pool.on('error', () => {})
  // A checked-out connection can break between two statements (inside a transaction): its next query
  // fails and the request answers 503. Without a listener the 'error' event would end the process.
  pool.on('connect', (client) => client.on('error', () => {}))
  return pool
}

// biome-ignore lint/suspicious/noExplicitAny: a Kysely over tables described per context
export type AnyDb = Kysely<any>

export const createKysely = <DB = unknown>(pool: pg.Pool) => new Kysely<DB>({ dialect: new PostgresDialect({ pool }) })

export type MigrationSet = { schema: string; migrations: Record<string, Migration> }

/** Runs one logical database's migrations, each set with its own migration table in its own schema. */
export async function migrate(db: Kysely<unknown>, set: MigrationSet): Promise<string[]> {
  await sql`create schema if not exists ${sql.id(set.schema)}`.execute(db)
  const migrator = new Migrator({
    db,
    provider: { getMigrations: async () => set.migrations },
    migrationTableSchema: set.schema,
    allowUnorderedMigrations: true,
  })
  const { error, results } = await migrator.migrateToLatest()
  if (error) throw error
  return (results ?? []).filter((r) => r.status === 'Success').map((r) => `${set.schema}/${r.migrationName}`)
}

export const isUniqueViolation = (e: unknown, constraint?: string): boolean =>
  e instanceof Error &&
  (e as { code?: string }).code === '23505' &&
  (constraint === undefined || (e as { constraint?: string }).constraint === constraint)
