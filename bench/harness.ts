/**
 * What bench:realtime and bench:load share: a fresh database and a private Redis per run, the real server
 * as a child process (its RSS read from /proc), an HTTP client over keep-alive sockets, orgs of users made
 * through the API, percentiles. Everything talks to 127.0.0.1 only and is torn down by `cleanup()`.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { once } from 'node:events'
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import http from 'node:http'
import { createServer } from 'node:net'
import { join } from 'node:path'
import { Redis } from 'ioredis'
import pg from 'pg'
import { v7 as uuid } from 'uuid'
import { PostgresEventStore } from '../adapters/postgres-event-store.ts'
import { issueCredential, SESSION_TTL_MS, signInAccount } from '../commands/accounts.ts'
import type { PipelineDeps } from '../commands/pipeline.ts'
import { eventUpcasters } from '../domain/schema-versions.ts'

export const log = (line: string) => process.stderr.write(`${line}\n`)
export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms))
export const OPERATOR_TOKEN = `bench-operator-${randomBytes(16).toString('hex')}`

// --- teardown, also on Ctrl-C

const cleanups: (() => Promise<unknown>)[] = []
export const onCleanup = (fn: () => Promise<unknown>) => cleanups.push(fn)
let cleaning: Promise<void> | null = null
/** Stops the server, Redis, drops the database: once, however often it is called. */
export function cleanup(): Promise<void> {
  cleaning ??= (async () => {
    while (cleanups.length) {
      const fn = cleanups.pop()!
      await fn().catch((e: Error) => log(`cleanup: ${e.message}`))
    }
  })()
  return cleaning
}
// Whatever goes wrong, the server, Redis and the database do not outlive the benchmark.
for (const event of ['uncaughtException', 'unhandledRejection'] as const) {
  process.on(event, (e: unknown) => {
    log(`${event}: ${(e as Error)?.stack ?? e}`)
    setTimeout(() => process.exit(1), 20_000)
    void cleanup().finally(() => process.exit(1))
  })
}
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    log(`${signal}: cleaning up`)
    setTimeout(() => process.exit(130), 20_000)
    void cleanup().finally(() => process.exit(130))
  })
}

/** Runs the benchmark, prints its figures as the last stdout line, always cleans up. */
export async function main(run: () => Promise<Record<string, unknown>>): Promise<void> {
  let code = 0
  try {
    const result = await run()
    await cleanup()
    process.stdout.write(`${JSON.stringify(result)}\n`)
  } catch (e) {
    code = 1
    log(`failed: ${(e as Error).stack ?? e}`)
    await cleanup()
  }
  process.exit(code)
}

// --- infrastructure

export const freePort = () =>
  new Promise<number>((resolve, reject) => {
    const s = createServer()
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number }
      s.close(() => resolve(port))
    })
    s.on('error', reject)
  })

/** A fresh, empty database on the admin connection's server, dropped at cleanup. The server migrates it. */
export async function freshDatabase(prefix: string): Promise<string> {
  const admin = process.env.BENCH_ADMIN_URL ?? process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres'
  const name = `${prefix}_${randomBytes(6).toString('hex')}`
  const run = async (q: string) => {
    const c = new pg.Client({ connectionString: admin })
    await c.connect()
    try {
      await c.query(q)
    } finally {
      await c.end()
    }
  }
  await run(`create database "${name}"`)
  onCleanup(() => run(`drop database if exists "${name}" with (force)`))
  const url = new URL(admin)
  url.pathname = `/${name}`
  return url.toString()
}

/**
 * A private redis-server on a free port (nothing shared is touched, and stopping it is the cleanup). Without
 * redis-server on PATH, BENCH_REDIS_URL (else 127.0.0.1:6379) is used as is: the server's keys are named by
 * fresh user and queue ids, so they cannot collide, and they are left to their TTLs/trimming.
 */
export async function privateRedis(): Promise<string> {
  let available = true
  try {
    execFileSync('redis-server', ['--version'], { stdio: 'ignore' })
  } catch {
    available = false
  }
  if (!available || process.env.BENCH_REDIS_URL) {
    const url = process.env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379'
    log(`redis: using ${url}`)
    return url
  }
  const port = await freePort()
  const proc = spawn(
    'redis-server',
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--maxclients', '20000'],
    { stdio: 'ignore' },
  )
  onCleanup(async () => {
    if (proc.exitCode !== null) return
    proc.kill('SIGTERM')
    await once(proc, 'exit')
  })
  for (let i = 0; ; i++) {
    const probe = new Redis(port, '127.0.0.1', { lazyConnect: true, retryStrategy: () => null, maxRetriesPerRequest: 0 })
    probe.on('error', () => {})
    const up = await probe
      .connect()
      .then(() => probe.ping())
      .then(
        () => true,
        () => false,
      )
    probe.disconnect()
    if (up) break
    if (i > 100) throw new Error(`redis-server on port ${port} did not start`)
    await sleep(50)
  }
  return `redis://127.0.0.1:${port}`
}

export type ChildServer = {
  url: string
  port: number
  pid: number
  rssBytes(): number
  peakRssBytes(): number
  /** With BENCH_PROFILE=<dir>: starts a CPU profile of the server; the returned stop writes it there. */
  profile(label: string): Promise<() => Promise<void>>
  /**
   * With BENCH_PROFILE=<dir>: starts sampling the server's heap; the returned stop writes the profile there and
   * answers what is still alive by the code that allocated it (the biggest first), e.g. what a held poll keeps.
   */
  heapProfile(label: string): Promise<() => Promise<{ frame: string; kib: number }[]>>
}

const statusField = (pid: number, field: string): number => {
  const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
  return m ? Number(m[1]) * 1024 : Number.NaN
}

/** bin/serve.ts as a child process on a free port, stopped (SIGTERM, then SIGKILL) at cleanup. */
export async function startServer(env: Record<string, string>): Promise<ChildServer> {
  const port = await freePort()
  // BENCH_SERVER_NODE_ARGS="--cpu-prof --cpu-prof-dir=/tmp/prof" profiles the server (written when it stops).
  const nodeArgs = (process.env.BENCH_SERVER_NODE_ARGS ?? '').split(' ').filter(Boolean)
  const inspectPort = process.env.BENCH_PROFILE ? await freePort() : null
  if (inspectPort) nodeArgs.push(`--inspect=127.0.0.1:${inspectPort}`)
  const proc: ChildProcess = spawn(process.execPath, [...nodeArgs, 'bin/serve.ts'], {
    env: {
      ...process.env,
      LOG_LEVEL: 'warn',
      OPERATOR_TOKEN,
      HOST: '127.0.0.1',
      PORT: String(port),
      SHUTDOWN_TIMEOUT_MS: '2000',
      RATE_LIMIT_IP_PER_MINUTE: '100000000',
      RATE_LIMIT_USER_PER_MINUTE: '100000000',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let output = ''
  const keep = (d: Buffer) => {
    output = (output + d.toString()).slice(-20_000)
  }
  proc.stdout!.on('data', keep)
  proc.stderr!.on('data', keep)
  let stopping = false
  proc.on('exit', (code, signal) => {
    if (!stopping) log(`server exited unexpectedly (${code ?? signal}):\n${output.slice(-4_000)}`)
  })
  onCleanup(async () => {
    stopping = true
    if (proc.exitCode !== null || proc.signalCode !== null) return
    const exited = once(proc, 'exit')
    proc.kill('SIGTERM')
    const timer = setTimeout(() => proc.kill('SIGKILL'), 8_000)
    await exited
    clearTimeout(timer)
  })
  const url = `http://127.0.0.1:${port}`
  const deadline = Date.now() + 60_000
  for (;;) {
    if (proc.exitCode !== null) throw new Error(`server exited with ${proc.exitCode}:\n${output}`)
    if (Date.now() > deadline) throw new Error(`server not ready after 60 s:\n${output}`)
    const ok = await fetch(`${url}/readyz`).then(
      (r) => r.status === 200,
      () => false,
    )
    if (ok) break
    await sleep(100)
  }
  const pid = proc.pid!
  return {
    url,
    port,
    pid,
    rssBytes: () => statusField(pid, 'VmRSS'),
    peakRssBytes: () => statusField(pid, 'VmHWM'),
    profile: (label) => (inspectPort ? profileOver(inspectPort, label) : Promise.resolve(async () => {})),
    heapProfile: (label) => (inspectPort ? heapProfileOver(inspectPort, label) : Promise.resolve(async () => [])),
  }
}

type HeapNode = { callFrame: { functionName: string; url: string; lineNumber: number }; selfSize: number; children: HeapNode[] }

/** A sampling heap profile of the process whose inspector listens on `port`: live bytes by allocating frame. */
async function heapProfileOver(port: number, label: string): Promise<() => Promise<{ frame: string; kib: number }[]>> {
  const { send, close } = await devtools(port)
  await send('HeapProfiler.enable')
  await send('HeapProfiler.startSampling', { samplingInterval: 1024 })
  return async () => {
    const { profile } = (await send('HeapProfiler.stopSampling')) as { profile: { head: HeapNode } }
    close()
    const dir = process.env.BENCH_PROFILE!
    mkdirSync(dir, { recursive: true })
    const file = join(dir, `${label}-${Date.now()}.heapprofile`)
    writeFileSync(file, JSON.stringify(profile))
    log(`heap profile: ${file}`)
    const bytes = new Map<string, number>()
    const walk = (n: HeapNode) => {
      const f = n.callFrame
      const frame = `${f.functionName || '(anonymous)'} ${f.url.replace(/^.*\/(node_modules\/|work\/main\/)?/, '')}:${f.lineNumber + 1}`
      bytes.set(frame, (bytes.get(frame) ?? 0) + n.selfSize)
      for (const c of n.children) walk(c)
    }
    walk(profile.head)
    return [...bytes]
      .sort((a, b) => b[1] - a[1])
      .slice(0, 25)
      .map(([frame, b]) => ({ frame, kib: round(b / 1024, 0) }))
  }
}

/** A DevTools protocol session with the process whose inspector listens on `port`. */
async function devtools(port: number) {
  const [target] = (await (await fetch(`http://127.0.0.1:${port}/json/list`)).json()) as { webSocketDebuggerUrl: string }[]
  const ws = new WebSocket(target!.webSocketDebuggerUrl)
  await new Promise((resolve, reject) => {
    ws.onopen = resolve
    ws.onerror = reject
  })
  let id = 0
  const waiting = new Map<number, (result: unknown) => void>()
  ws.onmessage = (m) => {
    const msg = JSON.parse(String(m.data)) as { id?: number; result?: unknown }
    if (msg.id !== undefined) waiting.get(msg.id)?.(msg.result)
  }
  const send = (method: string, params: object = {}) =>
    new Promise<unknown>((resolve) => {
      const n = ++id
      waiting.set(n, resolve)
      ws.send(JSON.stringify({ id: n, method, params }))
    })
  return { send, close: () => ws.close() }
}

/** A CPU profile of the process whose inspector listens on `port`, over the DevTools protocol. */
async function profileOver(port: number, label: string): Promise<() => Promise<void>> {
  const { send, close } = await devtools(port)
  await send('Profiler.enable')
  await send('Profiler.setSamplingInterval', { interval: 500 })
  await send('Profiler.start')
  return async () => {
    const { profile } = (await send('Profiler.stop')) as { profile: unknown }
    close()
    const dir = process.env.BENCH_PROFILE!
    mkdirSync(dir, { recursive: true })
    const file = join(dir, `${label}-${Date.now()}.cpuprofile`)
    writeFileSync(file, JSON.stringify(profile))
    log(`profile: ${file}`)
  }
}

/** CPU seconds (user + system) a process used so far. */
export const cpuSeconds = (pid: number): number => {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ')
  return (Number(fields[11]) + Number(fields[12])) / 100
}
/** Busy and total jiffies of the whole machine. */
export const machineCpu = (): { busy: number; total: number } => {
  const [, ...v] = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/)
  const n = v.map(Number)
  const total = n.reduce((a, b) => a + b, 0)
  return { busy: total - n[3]! - n[4]!, total }
}

// --- HTTP

// biome-ignore lint/suspicious/noExplicitAny: answers are JSON, read field by field as the API documents them
export type Json = any
export type Reply = { status: number; body: Json; ms: number }

/** JSON over node:http with keep-alive sockets; one socket per request in flight (long polls hold theirs). */
export class Http {
  readonly agent: http.Agent
  private readonly port: number
  constructor(url: string, agent?: http.Agent) {
    this.port = Number(new URL(url).port)
    this.agent = agent ?? new http.Agent({ keepAlive: true, maxSockets: Number.POSITIVE_INFINITY, maxFreeSockets: 4_096 })
  }

  request(
    method: string,
    path: string,
    options: { token?: string; body?: unknown; onRequest?: (req: http.ClientRequest) => void } = {},
  ): Promise<Reply> {
    const started = performance.now()
    return new Promise((resolve, reject) => {
      const payload = options.body === undefined ? undefined : JSON.stringify(options.body)
      const headers: Record<string, string> = {}
      if (options.token) headers.authorization = `Bearer ${options.token}`
      if (payload !== undefined) {
        headers['content-type'] = 'application/json'
        headers['content-length'] = String(Buffer.byteLength(payload))
      }
      const req = http.request({ host: '127.0.0.1', port: this.port, method, path, agent: this.agent, headers }, (res) => {
        const chunks: Buffer[] = []
        res.on('data', (c: Buffer) => chunks.push(c))
        res.on('error', reject)
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString()
          let body: unknown = text
          try {
            body = text ? JSON.parse(text) : null
          } catch {}
          resolve({ status: res.statusCode ?? 0, body, ms: performance.now() - started })
        })
      })
      req.on('error', reject)
      options.onRequest?.(req)
      req.end(payload)
    })
  }

  /** A request that must succeed; 409/429/503 (contention, consistency waits) are retried a few times. */
  async ok(method: string, path: string, options: { token?: string; body?: unknown } = {}): Promise<Json> {
    for (let attempt = 0; ; attempt++) {
      // A keep-alive socket the server closed as it was reused: send again on a fresh one.
      const r = await this.request(method, path, options).catch((e: NodeJS.ErrnoException) => {
        if (attempt < 3 && (e.code === 'ECONNRESET' || e.message === 'socket hang up')) return null
        throw e
      })
      if (r === null) continue
      if (r.status >= 200 && r.status < 300) return r.body
      if (attempt < 12 && [409, 429, 503].includes(r.status)) {
        await sleep(20 * 1.5 ** attempt * (0.5 + Math.random()))
        continue
      }
      throw new Error(`${method} ${path} → ${r.status} ${JSON.stringify(r.body)}`)
    }
  }

  close(): void {
    this.agent.destroy()
  }
}

// --- people

/** Runs `fn` over `items`, at most `n` at once, in order of start. */
export async function pool<T, R>(items: readonly T[], n: number, fn: (item: T, i: number) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length)
  let next = 0
  await Promise.all(
    Array.from({ length: Math.min(n, items.length) }, async () => {
      while (next < items.length) {
        const i = next++
        out[i] = await fn(items[i]!, i)
      }
    }),
  )
  return out
}

export type User = { userId: string; token: string; orgId: string; username: string }
export type Org = { orgId: string; homeRoomId: string; users: User[] }

/**
 * Account sessions the way the OIDC callback issues them, from this process against the same database
 * (tests/support/identity.ts); everything after that goes through the HTTP API.
 */
export class Identities {
  private readonly pgPool: pg.Pool
  private readonly deps: PipelineDeps
  private readonly store: PostgresEventStore
  private readonly http: Http
  constructor(databaseUrl: string, http: Http) {
    this.pgPool = new pg.Pool({ connectionString: databaseUrl, max: 8 })
    this.pgPool.on('error', () => {})
    this.store = new PostgresEventStore(this.pgPool)
    this.deps = { store: this.store, upcasters: eventUpcasters }
    this.http = http
  }

  async accountSession(email: string): Promise<string> {
    const ctx = {
      tenantId: null,
      actor: { type: 'system' as const, id: 'bench' },
      correlationId: uuid(),
      causationId: null,
      now: () => new Date(),
      newId: uuid,
    }
    const { accountId } = await signInAccount(this.deps, ctx, {
      issuer: 'https://idp.bench',
      subject: email,
      email,
      emailVerified: true,
    })
    const { token } = await issueCredential(this.deps, ctx, {
      kind: 'session',
      accountId,
      tenantId: null,
      userId: null,
      ttlMs: SESSION_TTL_MS,
    })
    return token
  }

  private async enter(accountToken: string, orgId: string, username: string): Promise<User> {
    const session = await this.http.ok('POST', '/auth/tenant-session', { token: accountToken, body: { org: orgId } })
    await this.http.ok('POST', '/api/me/activate', { token: session.token, body: { username } })
    return { userId: session.userId, token: session.token, orgId, username }
  }

  /**
   * `count` orgs of `usersPerOrg` users each (the owner first, then members who accepted an invite). Orgs are
   * made in parallel; within one, what appends to the org's stream (accept, activate) goes one at a time.
   */
  async orgs(count: number, usersPerOrg: number, concurrency: number, progress?: (users: number) => void): Promise<Org[]> {
    const run = randomBytes(3).toString('hex')
    let made = 0
    return pool(
      Array.from({ length: count }, (_, o) => o),
      concurrency,
      async (o) => {
        const accountToken = await this.accountSession(`owner.${run}.${o}@bench.test`)
        const onboarded = await this.http.ok('POST', '/orgs/onboard', {
          token: accountToken,
          body: { name: `Bench ${run} ${o}` },
        })
        const owner = await this.enter(accountToken, onboarded.orgId, `o${o}-u0`)
        const org: Org = { orgId: onboarded.orgId, homeRoomId: onboarded.homeRoomId, users: [owner] }
        const emails = Array.from({ length: usersPerOrg - 1 }, (_, i) => `u${i + 1}.${run}.${o}@bench.test`)
        const invited = await pool(emails, 8, async (email) => {
          const [invite, account] = await Promise.all([
            this.http.ok('POST', '/api/invites', { token: owner.token, body: { email, role: 'member' } }),
            this.accountSession(email),
          ])
          return { token: invite.token as string, account }
        })
        for (const { token, account } of invited) {
          await this.http.ok('POST', `/orgs/invites/${token}/accept`, { token: account })
        }
        const sessions = await pool(invited, 8, ({ account }) =>
          this.http.ok('POST', '/auth/tenant-session', { token: account, body: { org: org.orgId } }),
        )
        for (const [i, session] of sessions.entries()) {
          const username = `o${o}-u${i + 1}`
          await this.http.ok('POST', '/api/me/activate', { token: session.token, body: { username } })
          org.users.push({ userId: session.userId, token: session.token, orgId: org.orgId, username })
          if (++made % 100 === 0) progress?.(made)
        }
        return org
      },
    )
  }

  async close(): Promise<void> {
    await this.store.close()
    await this.pgPool.end().catch(() => {})
  }
}

// --- figures

export const percentile = (sorted: readonly number[], q: number): number => {
  if (sorted.length === 0) return Number.NaN
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))
  return sorted[i]!
}

export const round = (n: number, digits = 1): number => {
  if (!Number.isFinite(n)) return n
  const f = 10 ** digits
  return Math.round(n * f) / f
}

export const summary = (samples: number[]) => {
  const sorted = Float64Array.from(samples).sort()
  const arr = Array.from(sorted)
  return {
    count: arr.length,
    p50: round(percentile(arr, 0.5), 2),
    p90: round(percentile(arr, 0.9), 2),
    p99: round(percentile(arr, 0.99), 2),
    max: round(arr.at(-1) ?? Number.NaN, 2),
  }
}

export const mib = (bytes: number) => round(bytes / 1_048_576, 1)

/** Every series of a /metrics scrape, by its text (`name{labels}`). */
async function scrape(url: string): Promise<Map<string, number> | null> {
  const r = await fetch(`${url}/metrics`, { headers: { authorization: `Bearer ${OPERATOR_TOKEN}` } }).catch(() => null)
  if (r?.status !== 200) return null
  const out = new Map<string, number>()
  for (const line of (await r.text()).split('\n')) {
    const m = /^([a-z_]+(?:\{[^}]*\})?) (\S+)$/.exec(line)
    if (m) out.set(m[1]!, Number(m[2]))
  }
  return out
}

/**
 * Scrapes /metrics every `everyMs` until stopped; `stop()` answers max and mean of each series asked for
 * (projection lag, pool waiters, event loop delay), or null when the server has no /metrics.
 */
export function sampleMetrics(url: string, series: Record<string, string>, everyMs = 500) {
  const samples = new Map<string, number[]>()
  let running = true
  let available = true
  const loop = (async () => {
    while (running) {
      const m = await scrape(url)
      if (!m) {
        available = false
        return
      }
      for (const [name, text] of Object.entries(series)) {
        const v = m.get(text)
        if (v === undefined) continue
        const list = samples.get(name) ?? []
        list.push(v)
        samples.set(name, list)
      }
      await sleep(everyMs)
    }
  })()
  return async (): Promise<Record<string, { max: number; mean: number }> | null> => {
    running = false
    await loop
    if (!available) return null
    return Object.fromEntries(
      [...samples].map(([name, xs]) => [
        name,
        { max: round(Math.max(...xs), 3), mean: round(xs.reduce((a, b) => a + b, 0) / xs.length, 3) },
      ]),
    )
  }
}

/** The server's V8 heap in use (prom-client's `nodejs_heap_size_used_bytes`), or null without /metrics. */
export async function serverHeapBytes(url: string): Promise<number | null> {
  return (await scrape(url))?.get('nodejs_heap_size_used_bytes') ?? null
}

/** This process's open-file limit (soft): a process holds at most about this many sockets. */
export function openFileLimit(): number {
  const m = /^Max open files\s+(\d+|unlimited)/m.exec(readFileSync('/proc/self/limits', 'utf8'))
  return !m || m[1] === 'unlimited' ? Number.POSITIVE_INFINITY : Number(m[1])
}

/** The server's `workspace_realtime_polls_held` from /metrics, or null when the route is not there. */
export async function heldPollsMetric(url: string): Promise<number | null> {
  return (await scrape(url))?.get('workspace_realtime_polls_held') ?? null
}
