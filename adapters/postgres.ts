import { createHash, createHmac, pbkdf2Sync, randomBytes } from 'node:crypto'
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
  await keepMigrationTablesOwn(db, set.schema)
  return (results ?? []).filter((r) => r.status === 'Success').map((r) => `${set.schema}/${r.migrationName}`)
}

/**
 * The migration tables are the migrator's alone. Default privileges a migration gives on its schema (realtime's,
 * for the app's login) reach them too, as the migrator makes them after: taken back here.
 */
async function keepMigrationTablesOwn(db: Kysely<unknown>, schema: string): Promise<void> {
  const { rows } = await sql<{ grant: string }>`
    select distinct format('%I.%I', n.nspname, c.relname) || ' from ' || a.grantee::regrole::text as grant
      from pg_class c join pg_namespace n on n.oid = c.relnamespace, aclexplode(c.relacl) a
     where n.nspname = ${schema} and c.relname in ('kysely_migration', 'kysely_migration_lock')
       and a.grantee <> c.relowner and a.grantee <> 0`.execute(db)
  for (const { grant } of rows) await sql.raw(`revoke all on ${grant}`).execute(db)
}

export const isUniqueViolation = (e: unknown, constraint?: string): boolean =>
  e instanceof Error &&
  (e as { code?: string }).code === '23505' &&
  (constraint === undefined || (e as { constraint?: string }).constraint === constraint)

/** The user a connection string logs in as, and its password ('' when it names none). */
export const loginOf = (url: string): { user: string; password: string } => {
  const u = new URL(url)
  return { user: decodeURIComponent(u.username), password: decodeURIComponent(u.password) }
}

/** The same server, database and parameters, as another login. */
export const withLogin = (url: string, user: string, password: string): string => {
  const u = new URL(url)
  u.username = encodeURIComponent(user)
  u.password = encodeURIComponent(password)
  return u.toString()
}

/**
 * True when the login may migrate: a superuser, or the owner of the schemas the migrations made (of the
 * database, before they exist).
 */
export async function ownsDatabase(url: string, schemas: readonly string[]): Promise<boolean> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 10_000 })
  await client.connect()
  try {
    const { rows } = await client.query<{ owner: boolean }>(
      `select r.rolsuper
           or coalesce((select bool_and(pg_has_role(current_user, n.nspowner, 'USAGE'))
                          from pg_namespace n where n.nspname = any($1::text[])),
                       pg_has_role(current_user, (select datdba from pg_database where datname = current_database()), 'USAGE'))
           as owner
         from pg_roles r where r.rolname = current_user`,
      [schemas],
    )
    return rows[0]?.owner === true
  } finally {
    await client.end()
  }
}

/**
 * What would let the login of `pool` see past row-level security: being (or able to become) a superuser, a
 * role with BYPASSRLS, or the owner of a table in `schemas` (an owner may switch RLS off). Empty when none.
 */
export async function rlsBypasses(pool: pg.Pool, schemas: readonly string[]): Promise<{ login: string; problems: string[] }> {
  const { rows } = await pool.query<{ login: string; super: string[]; bypass: string[]; owns: string[] }>(
    `select current_user as login,
            array(select r.rolname::text from pg_roles r where r.rolsuper and pg_has_role(current_user, r.oid, 'MEMBER')) as super,
            array(select r.rolname::text from pg_roles r where r.rolbypassrls and pg_has_role(current_user, r.oid, 'MEMBER')) as bypass,
            array(select n.nspname || '.' || c.relname from pg_class c join pg_namespace n on n.oid = c.relnamespace
                   where n.nspname = any($1::text[]) and c.relkind in ('r', 'p', 'v', 'm')
                     and pg_has_role(current_user, c.relowner, 'MEMBER') order by 1 limit 5) as owns`,
    [schemas],
  )
  const { login, super: supers, bypass, owns } = rows[0]!
  const problems = [
    ...(supers.length ? [`is or may become a superuser (${supers.join(', ')})`] : []),
    ...(bypass.length ? [`is or may become a role with BYPASSRLS (${bypass.join(', ')})`] : []),
    ...(owns.length ? [`owns tables (${owns.join(', ')}${owns.length === 5 ? ', …' : ''})`] : []),
  ]
  return { login, problems }
}

/** 'ok', 'refused' (the server answered and turned the login or its password down), or 'down'. */
async function tryLogin(url: string): Promise<'ok' | 'refused' | 'down'> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 10_000 })
  try {
    await client.connect()
    return 'ok'
  } catch (e) {
    // invalid_authorization_specification (28000: no pg_hba entry, or may not log in), invalid_password (28P01)
    const code = (e as { code?: string }).code
    return code === '28P01' || code === '28000' ? 'refused' : 'down'
  } finally {
    await client.end().catch(() => {})
  }
}

/**
 * Makes `url`'s login log in with its password, setting it through `owner` when the server refuses it. The
 * server gets a SCRAM verifier, never the password: statement logs do not show it. A server that lets the
 * login in without checking the password (trust) is left alone.
 */
export async function keepLoginPassword(owner: Kysely<unknown>, url: string): Promise<void> {
  const { user, password } = loginOf(url)
  if (!password || (await tryLogin(url)) !== 'refused') return
  // Beyond printable ASCII, SASLprep would have to run here as it does on the server.
  if (!/^[\x21-\x7e]+$/.test(password)) throw new Error(`the password of the database login ${user} must be printable ASCII`)
  await sql`alter role ${sql.id(user)} password ${sql.lit(scramSha256Verifier(password))}`.execute(owner)
}

/** The verifier Postgres stores for a SCRAM-SHA-256 password (RFC 5802, 7677): what ALTER ROLE … PASSWORD takes. */
export function scramSha256Verifier(password: string, salt: Buffer = randomBytes(16), iterations = 4096): string {
  const salted = pbkdf2Sync(password, salt, iterations, 32, 'sha256')
  const storedKey = createHash('sha256').update(createHmac('sha256', salted).update('Client Key').digest()).digest()
  const serverKey = createHmac('sha256', salted).update('Server Key').digest()
  return `SCRAM-SHA-256$${iterations}:${salt.toString('base64')}$${storedKey.toString('base64')}:${serverKey.toString('base64')}`
}
