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

/** The exit code, or 'serving' (then it is stopped) when the process is still up after `ms`. */
async function exitWithin(child: ReturnType<typeof serve>['child'], ms: number): Promise<number | 'serving'> {
  const exited = once(child, 'exit').then(([code]) => code as number)
  const serving = new Promise<'serving'>((r) => setTimeout(() => r('serving'), ms))
  const first = await Promise.race([exited, serving])
  if (first === 'serving') {
    child.kill('SIGKILL')
    await exited
  }
  return first
}

it('bound to a HOST other machines reach, without what production needs, refuses to start: exit 2 naming it', async () => {
  // NODE_ENV unset (vitest sets it to test): neither development nor test.
  const { child, output } = serve({ HOST: '0.0.0.0', NODE_ENV: '', DATABASE_URL: database.url, PORT: String(await freePort()) })
  expect(await exitWithin(child, 15_000), output()).toBe(2)
  for (const name of ['HOST', 'OIDC_ISSUER', 'AUTH_SECRET_KEY', 'PUBLIC_URL', 'NODE_ENV']) expect(output()).toContain(name)
}, 30_000)

it('mounts no dev IdP for a PUBLIC_URL other machines reach: without OIDC_ISSUER it refuses to start, exit 2', async () => {
  const { child, output } = serve({
    PUBLIC_URL: 'https://app.example.com',
    NODE_ENV: '',
    DATABASE_URL: database.url,
    PORT: String(await freePort()),
  })
  expect(await exitWithin(child, 15_000), output()).toBe(2)
  expect(output()).toMatch(/OIDC_ISSUER: required/)
  expect(output()).toContain('DEV_IDP=1')
}, 30_000)

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
