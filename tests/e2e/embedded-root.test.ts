import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { freePort } from '../support/child-server.ts'

/*
 * `npm start` as root with no DATABASE_URL: Postgres refuses to run as root, so the embedded cluster runs as the
 * `postgres` user, which must be able to enter every directory on the way to DATA_DIR. Only root can set this up.
 */

const root = process.getuid?.() === 0
let locked: string

beforeAll(async () => {
  // mkdtemp makes the directory 0700: only root enters it.
  locked = await mkdtemp(join(tmpdir(), 'ws-root-only-'))
})
afterAll(async () => {
  await rm(locked, { recursive: true, force: true })
})

it.runIf(root)(
  'as root, a DATA_DIR the postgres user cannot reach stops the start with one line saying so, exit 1',
  async () => {
    const dataDir = join(locked, 'data')
    const child = spawn(process.execPath, ['bin/serve.ts'], {
      env: {
        ...process.env,
        DATABASE_URL: '',
        REDIS_URL: '',
        DATA_DIR: dataDir,
        EMBEDDED_POSTGRES_PORT: String(await freePort()),
        PORT: String(await freePort()),
        LOG_LEVEL: 'warn',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let stderr = ''
    child.stderr!.on('data', (d) => (stderr += d))
    child.stdout!.resume()
    const [code] = await once(child, 'exit')
    expect(code).toBe(1)
    const lines = stderr.trim().split('\n')
    expect(lines, stderr).toHaveLength(1)
    expect(lines[0]).toContain(`cannot enter ${locked}`)
    expect(lines[0]).toContain('DATA_DIR')
    expect(lines[0]).toContain('DATABASE_URL')
  },
  30_000,
)
