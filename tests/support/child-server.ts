import { type ChildProcess, spawn } from 'node:child_process'
import { once } from 'node:events'
import { createServer } from 'node:net'
import { OPERATOR_TOKEN } from './server.ts'

export const freePort = () =>
  new Promise<number>((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number }
      s.close(() => resolve(port))
    })
  })

/** The real server as its own process, for tests that kill it. */
export type ChildServer = { url: string; proc: ChildProcess; output(): string; kill(signal?: NodeJS.Signals): Promise<void> }

export async function startChildServer(env: Record<string, string>, port?: number): Promise<ChildServer> {
  const p = port ?? (await freePort())
  const proc = spawn(process.execPath, ['bin/serve.ts'], {
    env: { ...process.env, LOG_LEVEL: 'warn', REDIS_URL: '', OPERATOR_TOKEN, PORT: String(p), DATABASE_POOL_SIZE: '8', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let out = ''
  proc.stdout!.on('data', (d) => (out += d))
  proc.stderr!.on('data', (d) => (out += d))
  const url = `http://127.0.0.1:${p}`
  const deadline = Date.now() + 30_000
  while (Date.now() < deadline) {
    if (proc.exitCode !== null) throw new Error(`server exited with ${proc.exitCode}:\n${out}`)
    const ok = await fetch(`${url}/readyz`).then(
      (r) => r.status === 200,
      () => false,
    )
    if (ok) break
    await new Promise((r) => setTimeout(r, 100))
  }
  return {
    url,
    proc,
    output: () => out,
    async kill(signal: NodeJS.Signals = 'SIGKILL') {
      if (proc.exitCode !== null || proc.signalCode !== null) return
      proc.kill(signal)
      await once(proc, 'exit')
    },
  }
}
