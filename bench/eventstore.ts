/**
 * npm run bench:eventstore
 *
 * One run, one Postgres: our PostgresEventStore, the same store without group commit (every append a
 * transaction of its own: the baseline group commit is measured against), Emmett's PostgreSQL event store
 * and a raw multi-row INSERT into an equivalent table (the ceiling), each in a fresh database and a process of its own
 * (Emmett's driver installs global pg type parsers that must not touch ours). Figures:
 * - single-event appends/s with 1 writer and with BENCH_WRITERS concurrent writers (each writer its own
 *   streams, every append with the expected revision of the previous one);
 * - BENCH_BATCH_SIZE-event batch appends, in events/s (one writer, expected revision checked);
 * - catch-up read: everything from the start, in pages of BENCH_PAGE, events/s.
 * Subjects never run at the same time; each timed phase runs in BENCH_ROUNDS rounds, interleaved across
 * subjects in rotating order, and a figure is the median of its rounds, so that a burst of load elsewhere
 * on the machine does not land on one subject only.
 *
 * Progress goes to stderr; the last line on stdout is one JSON object with every figure and the ratios
 * vs_emmett (ours / emmett), vs_raw (ours / raw) and vs_ungrouped (ours / ours without group commit), per figure.
 *
 * Sizes (env, totals over all rounds): BENCH_SINGLE (1-writer appends, 1500), BENCH_WRITERS (16),
 * BENCH_CONCURRENT (appends over all writers, 6400), BENCH_BATCHES (250), BENCH_BATCH_SIZE (100),
 * BENCH_ROUNDS (5), BENCH_CHUNK_SECONDS (a round of one subject stops there even if short of its size,
 * so that a loaded machine does not stretch the run; 1.5), BENCH_WARMUP (share of each size run untimed
 * first, 0.15), BENCH_READ_EVENTS (at least this many events in each store before the catch-up, topped
 * up untimed to the same count everywhere, 30000), BENCH_PAGE (1000), BENCH_READ_ROUNDS (3),
 * BENCH_SUBJECTS (ours,ungrouped,emmett,raw), BENCH_GROUP_IN_FLIGHT and BENCH_GROUP_MAX (ours' group commit;
 * the store's defaults otherwise). DATABASE_URL names the server (default postgres@127.0.0.1:5432).
 */
import { type ChildProcess, fork } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { performance } from 'node:perf_hooks'
import { fileURLToPath } from 'node:url'
import pg from 'pg'
import { benchEvent, benchEvents, benchStreamName } from './events.ts'
import { type StreamCursor, type Subject, type SubjectName, subjects } from './subjects.ts'

const DEFAULT_URL = 'postgres://postgres@127.0.0.1:5432/postgres'

const num = (name: string, fallback: number): number => {
  const raw = process.env[name]
  if (raw === undefined || raw === '') return fallback
  const n = Number(raw)
  if (!Number.isFinite(n) || n < 0) throw new Error(`${name} must be a non-negative number, not ${raw}`)
  return n
}

const config = {
  single: num('BENCH_SINGLE', 1_500),
  writers: Math.max(1, Math.floor(num('BENCH_WRITERS', 16))),
  concurrent: num('BENCH_CONCURRENT', 6_400),
  batches: num('BENCH_BATCHES', 250),
  batchSize: Math.max(1, Math.floor(num('BENCH_BATCH_SIZE', 100))),
  readEvents: num('BENCH_READ_EVENTS', 30_000),
  page: Math.max(1, Math.floor(num('BENCH_PAGE', 1_000))),
  rounds: Math.max(1, Math.floor(num('BENCH_ROUNDS', 5))),
  readRounds: Math.max(1, Math.floor(num('BENCH_READ_ROUNDS', 3))),
  chunkSeconds: num('BENCH_CHUNK_SECONDS', 1.5),
  warmup: num('BENCH_WARMUP', 0.15),
}

const keys = {
  single: 'single_1_writer_appends_per_s',
  concurrent: `single_${config.writers}_writers_appends_per_s`,
  batch: `batch_${config.batchSize}_events_per_s`,
  read: 'catchup_read_events_per_s',
} as const

const log = (line: string) => process.stderr.write(`[bench] ${line}\n`)

// ---------------------------------------------------------------------------------------------------
// Worker: one subject, one database; runs what the orchestrator asks, one step at a time.

type Step =
  | { op: 'appends'; writers: number; total: number; seconds: number }
  | { op: 'batches'; batches: number; batchSize: number; seconds: number }
  | { op: 'read'; page: number; warmup?: boolean }
  | { op: 'written' }
  | { op: 'prepare-read'; events: number; batchSize: number }
  | { op: 'close' }

type Timed = { events: number; seconds: number; delivered?: number }

type WorkerMessage = { op: 'ready'; measures: string } | { op: 'done'; result: Timed | null } | { op: 'failed'; error: string }

/**
 * Sequential single-event appends by `writers` concurrent writers, each on a stream of its own, until
 * `total` or until `budget` seconds have passed (a loaded machine must not stretch the run).
 */
async function appends(subject: Subject, writers: number, total: number, budget: number): Promise<Timed> {
  const perWriter = Math.max(1, Math.floor(total / writers))
  const started = performance.now()
  const deadline = started + budget * 1_000
  let events = 0
  await Promise.all(
    Array.from({ length: writers }, async () => {
      const stream: StreamCursor = { name: benchStreamName(), revision: -1n }
      for (let i = 0; i < perWriter && performance.now() < deadline; i++) {
        await subject.append(stream, [benchEvent(i)])
        events++
      }
    }),
  )
  return { events, seconds: (performance.now() - started) / 1_000 }
}

/** Sequential batch appends by one writer, with expected revision, into streams of 10 batches each. */
async function batches(subject: Subject, count: number, batchSize: number, budget: number): Promise<Timed> {
  // Payloads are built beforehand: the figure is the store's, not the event factory's.
  const payloads = Array.from({ length: count }, (_, b) => benchEvents(batchSize, b * batchSize))
  let stream: StreamCursor = { name: benchStreamName(), revision: -1n }
  const started = performance.now()
  const deadline = started + budget * 1_000
  let events = 0
  for (const [b, batch] of payloads.entries()) {
    if (performance.now() >= deadline) break
    if (b % 10 === 0) stream = { name: benchStreamName(), revision: -1n }
    await subject.append(stream, batch)
    events += batch.length
  }
  return { events, seconds: (performance.now() - started) / 1_000 }
}

async function withClient<T>(url: string, f: (c: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url })
  await client.connect()
  try {
    return await f(client)
  } finally {
    await client.end()
  }
}

/**
 * Tops the store up to `events`, vacuums and analyses its tables, then waits until every transaction
 * that began before now has ended, in any database of the cluster: late-commit-safe readers (ours and
 * Emmett's) rightly stop at the oldest transaction in flight, and the catch-up must find everything.
 */
async function prepareRead(subject: Subject, url: string, written: number, events: number, batchSize: number): Promise<number> {
  const stream: StreamCursor = { name: benchStreamName(), revision: -1n }
  for (let missing = events - written; missing > 0; missing -= batchSize) {
    await subject.append(stream, benchEvents(Math.min(batchSize, missing)))
  }
  await withClient(url, async (c) => {
    for (const t of subject.tables) await c.query(`vacuum (analyze) ${t}`)
    const { rows } = await c.query<{ next: string }>('select pg_snapshot_xmax(pg_current_snapshot())::text as next')
    for (let waited = 0; ; waited += 50) {
      const { rows: now } = await c.query<{ passed: boolean }>(
        'select pg_snapshot_xmin(pg_current_snapshot()) >= $1::text::xid8 as passed',
        [rows[0]!.next],
      )
      if (now[0]!.passed) return
      if (waited === 2_000) log('waiting for a transaction in flight elsewhere in the cluster to end')
      await new Promise((r) => setTimeout(r, 50))
    }
  })
  return Math.max(written, events)
}

async function runWorker(name: SubjectName, url: string): Promise<void> {
  const send = (m: WorkerMessage) => process.send!(m)
  const subject = await subjects[name](url, config.writers)
  let written = 0
  send({ op: 'ready', measures: subject.measures })
  process.on('message', async (step: Step) => {
    try {
      let result: Timed | null = null
      if (step.op === 'appends') result = await appends(subject, step.writers, step.total, step.seconds)
      else if (step.op === 'batches') result = await batches(subject, step.batches, step.batchSize, step.seconds)
      else if (step.op === 'written') result = { events: written, seconds: 0 }
      else if (step.op === 'prepare-read') {
        written = await prepareRead(subject, url, written, step.events, step.batchSize)
      } else if (step.op === 'read') {
        const started = performance.now()
        const delivered = await subject.catchUp(step.page)
        const seconds = (performance.now() - started) / 1_000
        // The figure is the time to catch up with what the store holds. Emmett pages by global_position
        // alone while it orders by (transaction_id, global_position): after concurrent writers it may
        // deliver some events twice or skip some. That is reported, never counted as throughput.
        if ((name === 'ours' || name === 'ungrouped') && !step.warmup && delivered !== written) {
          throw new Error(`${name}: catch-up read ${delivered} events, ${written} were written`)
        }
        result = { events: written, seconds, delivered }
      } else if (step.op === 'close') {
        await subject.close()
        process.disconnect()
        return
      }
      if (result && (step.op === 'appends' || step.op === 'batches')) written += result.events
      send({ op: 'done', result })
    } catch (e) {
      send({ op: 'failed', error: String((e as Error).stack ?? e) })
    }
  })
}

// ---------------------------------------------------------------------------------------------------
// Orchestrator: one fresh database and one process per subject, steps interleaved, one JSON line.

class Worker {
  readonly name: SubjectName
  readonly child: ChildProcess
  measures = ''
  private pending: { resolve: (r: Timed | null) => void; reject: (e: Error) => void } | null = null
  private ready: Promise<void>

  constructor(name: SubjectName, url: string) {
    this.name = name
    this.child = fork(fileURLToPath(import.meta.url), [], {
      env: { ...process.env, BENCH_WORKER: name, BENCH_WORKER_URL: url },
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    })
    this.ready = new Promise((resolve, reject) => {
      this.child.on('message', (m: WorkerMessage) => {
        if (m.op === 'ready') {
          this.measures = m.measures
          resolve()
        } else if (m.op === 'done') {
          this.pending?.resolve(m.result)
          this.pending = null
        } else {
          const error = new Error(`${name}: ${m.error}`)
          this.pending ? this.pending.reject(error) : reject(error)
          this.pending = null
        }
      })
      this.child.on('exit', (code) => {
        const error = new Error(`${name} worker exited (code ${code})`)
        reject(error)
        this.pending?.reject(error)
        this.pending = null
      })
    })
  }

  started(): Promise<void> {
    return this.ready
  }

  run(step: Exclude<Step, { op: 'close' }>): Promise<Timed | null> {
    return new Promise((resolve, reject) => {
      this.pending = { resolve, reject }
      this.child.send(step)
    })
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      if (this.child.exitCode !== null || !this.child.connected) return resolve()
      this.child.once('exit', () => resolve())
      this.child.send({ op: 'close' })
    })
  }
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b)
  const m = s.length >> 1
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2
}

const round2 = (n: number) => Math.round(n * 100) / 100

async function main(): Promise<void> {
  const base = process.env.DATABASE_URL || DEFAULT_URL
  const names = (process.env.BENCH_SUBJECTS || 'ours,ungrouped,emmett,raw').split(',').map((s) => s.trim()) as SubjectName[]
  for (const n of names) if (!(n in subjects)) throw new Error(`unknown subject ${n} in BENCH_SUBJECTS`)
  const runId = randomBytes(4).toString('hex')
  const databases = new Map(names.map((n) => [n, `bench_es_${runId}_${n}`]))
  const began = performance.now()
  const server = await withClient(base, async (c) => {
    const { rows } = await c.query<{ v: string }>(`select current_setting('server_version') as v`)
    return rows[0]!.v
  })
  log(`Postgres ${server}, Node ${process.version}; config ${JSON.stringify(config)}`)

  const workers: Worker[] = []
  const rounds: Record<string, Record<string, Timed[]>> = Object.fromEntries(names.map((n) => [n, {}]))
  try {
    for (const name of names) {
      const db = databases.get(name)!
      await withClient(base, (c) => c.query(`create database "${db}"`))
      const url = new URL(base)
      url.pathname = `/${db}`
      const w = new Worker(name, url.toString())
      workers.push(w)
      await w.started()
      log(`${name}: ready in database ${db}`)
    }
    // Start from a clean slate of dirty buffers (needs a superuser; noisier figures otherwise).
    await withClient(base, (c) => c.query('checkpoint')).catch(() => log('checkpoint refused: not a superuser'))

    const phases: { key: string; step: (share: number) => Exclude<Step, { op: 'close' }> }[] = [
      {
        key: keys.single,
        step: (s) => ({ op: 'appends', writers: 1, total: Math.ceil(config.single * s), seconds: config.chunkSeconds }),
      },
      {
        key: keys.concurrent,
        step: (s) => ({
          op: 'appends',
          writers: config.writers,
          total: Math.ceil(config.concurrent * s),
          seconds: config.chunkSeconds,
        }),
      },
      {
        key: keys.batch,
        step: (s) => ({
          op: 'batches',
          batches: Math.ceil(config.batches * s),
          batchSize: config.batchSize,
          seconds: config.chunkSeconds,
        }),
      },
    ]
    for (const w of workers) {
      log(`${w.name}: warming up`)
      for (const p of phases) if (config.warmup > 0) await w.run(p.step(config.warmup))
      await w.run({ op: 'read', page: config.page, warmup: true })
    }
    let turn = 0
    const timed = async (key: string, step: Exclude<Step, { op: 'close' }>, count = config.rounds) => {
      for (let r = 0; r < count; r++) {
        // Rotate who goes first, so that no subject always runs right after the same neighbour.
        const order = workers.map((_, i) => workers[(i + turn) % workers.length]!)
        turn++
        for (const w of order) {
          const result = (await w.run(step))!
          const list = rounds[w.name]![key] ?? []
          list.push(result)
          rounds[w.name]![key] = list
          log(
            `${w.name}: ${key} round ${r + 1}/${count}: ${Math.round(result.events / result.seconds)}/s ` +
              `(${result.events} events in ${result.seconds.toFixed(2)}s)`,
          )
        }
      }
    }
    for (const p of phases) await timed(p.key, p.step(1 / config.rounds))
    // Every store holds the same number of events when the catch-up starts.
    let target = config.readEvents
    for (const w of workers) target = Math.max(target, (await w.run({ op: 'written' }))!.events)
    for (const w of workers) {
      log(`${w.name}: ${target} events in the store for the catch-up (topped up untimed)`)
      await w.run({ op: 'prepare-read', events: target, batchSize: config.batchSize })
    }
    await timed(keys.read, { op: 'read', page: config.page }, config.readRounds)
  } finally {
    await Promise.all(workers.map((w) => w.close()))
    await withClient(base, async (c) => {
      for (const db of databases.values()) await c.query(`drop database if exists "${db}" with (force)`)
    })
  }

  const figures: Record<string, Record<string, number>> = {}
  for (const name of names) {
    figures[name] = Object.fromEntries(
      Object.entries(rounds[name]!).map(([k, rs]) => [k, Math.round(median(rs.map((r) => r.events / r.seconds)))]),
    )
  }
  const ratios = (other: string) => {
    const a = figures.ours
    const b = figures[other]
    if (!a || !b) return null
    return Object.fromEntries(Object.keys(a).map((k) => [k, round2(a[k]! / b[k]!)]))
  }
  const vsEmmett = ratios('emmett')
  const vsRaw = ratios('raw')
  const vsUngrouped = ratios('ungrouped')
  const delivered = Object.fromEntries(
    names.map((n) => {
      const r = rounds[n]![keys.read]?.[0]
      return [n, r ? { in_store: r.events, delivered: r.delivered ?? r.events } : null]
    }),
  )
  const output = {
    bench: 'eventstore',
    postgres: server,
    node: process.version,
    config,
    ours: figures.ours ?? null,
    emmett: figures.emmett ?? null,
    raw: figures.raw ?? null,
    ungrouped: figures.ungrouped ?? null,
    vs_emmett: vsEmmett,
    vs_raw: vsRaw,
    vs_ungrouped: vsUngrouped,
    targets:
      vsEmmett && vsRaw
        ? {
            ahead_of_emmett: Object.values(vsEmmett).every((r) => r > 1),
            batch_within_2x_of_raw: (vsRaw[keys.batch] ?? 0) >= 0.5,
          }
        : null,
    catchup_delivered: delivered,
    rounds_per_s: Object.fromEntries(
      names.map((n) => [
        n,
        Object.fromEntries(Object.entries(rounds[n]!).map(([k, rs]) => [k, rs.map((r) => Math.round(r.events / r.seconds))])),
      ]),
    ),
    measured: Object.fromEntries(workers.map((w) => [w.name, w.measures])),
    seconds: round2((performance.now() - began) / 1_000),
  }
  for (const [k, v] of Object.entries(figures.ours ?? {})) {
    log(
      `${k}: ours ${v}` +
        (figures.emmett ? `, emmett ${figures.emmett[k]} (x${vsEmmett?.[k]})` : '') +
        (figures.raw ? `, raw ${figures.raw[k]} (x${vsRaw?.[k]})` : '') +
        (figures.ungrouped ? `, ungrouped ${figures.ungrouped[k]} (x${vsUngrouped?.[k]})` : ''),
    )
  }
  if (output.targets) log(`targets: ${JSON.stringify(output.targets)}`)
  process.stdout.write(`${JSON.stringify(output)}\n`)
}

const worker = process.env.BENCH_WORKER as SubjectName | undefined
if (worker) {
  runWorker(worker, process.env.BENCH_WORKER_URL!).catch((e) => {
    log(`${worker}: ${(e as Error).stack ?? e}`)
    process.exit(1)
  })
} else {
  main().catch((e) => {
    log(`failed: ${(e as Error).stack ?? e}`)
    process.exit(1)
  })
}
