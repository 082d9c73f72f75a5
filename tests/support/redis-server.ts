import { type ChildProcess, execFileSync, spawn } from 'node:child_process'
import { once } from 'node:events'
import { createServer } from 'node:net'
import { Redis } from 'ioredis'

/** A private Redis for tests that stop and restart it; the shared one must never be restarted under others. */
export type OwnRedis = { url: string; port: number; stop(): Promise<void>; start(): Promise<void> }

const freePort = () =>
  new Promise<number>((resolve, reject) => {
    const s = createServer()
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number }
      s.close(() => resolve(port))
    })
    s.on('error', reject)
  })

export async function startOwnRedis(): Promise<OwnRedis> {
  try {
    execFileSync('redis-server', ['--version'], { stdio: 'ignore' })
  } catch {
    throw new Error('this test starts and stops its own Redis: install redis-server (it is not on PATH)')
  }
  const port = await freePort()
  let proc: ChildProcess | null = null
  const start = async () => {
    proc = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], {
      stdio: 'ignore',
    })
    const probe = new Redis(port, '127.0.0.1', { lazyConnect: true, retryStrategy: () => null, maxRetriesPerRequest: 0 })
    for (let i = 0; i < 100; i++) {
      try {
        await probe.connect()
        await probe.ping()
        break
      } catch {
        await new Promise((r) => setTimeout(r, 50))
      }
    }
    probe.disconnect()
  }
  const stop = async () => {
    const p = proc
    proc = null
    if (!p || p.exitCode !== null) return
    p.kill('SIGKILL')
    await once(p, 'exit')
  }
  await start()
  return { url: `redis://127.0.0.1:${port}`, port, start, stop }
}
