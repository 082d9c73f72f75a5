import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { createServer } from 'node:net'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { createTestDatabase, type TestDatabase } from '../support/db.ts'

let database: TestDatabase
beforeAll(async () => {
  database = await createTestDatabase()
})
afterAll(async () => {
  await database.drop()
})

const freePort = () =>
  new Promise<number>((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number }
      s.close(() => resolve(port))
    })
  })

function serve(env: Record<string, string>) {
  const child = spawn(process.execPath, ['bin/serve.ts'], {
    env: { ...process.env, LOG_LEVEL: 'info', REDIS_URL: '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let out = ''
  child.stdout!.on('data', (d) => (out += d))
  child.stderr!.on('data', (d) => (out += d))
  return { child, output: () => out }
}

it('a bad configuration value stops the process with exit code 2, naming the variable', async () => {
  const { child, output } = serve({ PORT: 'eighty', DATABASE_URL: database.url })
  const [code] = await once(child, 'exit')
  expect(code).toBe(2)
  expect(output()).toMatch(/PORT/)
})

it('serves until SIGTERM, then drains and exits 0', async () => {
  const port = await freePort()
  const { child, output } = serve({ PORT: String(port), DATABASE_URL: database.url })
  const url = `http://127.0.0.1:${port}`
  const deadline = Date.now() + 20_000
  let ready = 0
  while (Date.now() < deadline) {
    ready = await fetch(`${url}/readyz`).then(
      (r) => r.status,
      () => 0,
    )
    if (ready === 200) break
    await new Promise((r) => setTimeout(r, 100))
  }
  expect(ready).toBe(200)
  const inFlight = fetch(`${url}/control/orgs?consistentAfter=999999`).then((r) => r.status)
  await new Promise((r) => setTimeout(r, 100))
  child.kill('SIGTERM')
  const [code] = await once(child, 'exit')
  expect(code).toBe(0)
  // The request in flight was answered (not cut), even though it arrived before the stop.
  expect(await inFlight).toBe(401)
  expect(output()).toContain('"msg":"draining"')
  expect(output()).toContain('"msg":"stopped"')
}, 30_000)
