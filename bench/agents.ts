// npm run bench:agents
//   BENCH_AGENTS=8           agents, each in a private room of its own with one person holding a long poll
//   BENCH_RUNS=150           mentions measured (after BENCH_WARMUP_RUNS=BENCH_AGENTS, one per room, not measured)
//   BENCH_DELTAS=20          text deltas the model streams per answer, written at once (a tick apart)
//   AGENT_CONCURRENCY        passed to the server (its default: 8 runs at once per worker)
//   BENCH_ADMIN_URL / DATABASE_URL   Postgres admin connection (default postgres://postgres@127.0.0.1:5432/postgres)
//
// Agent runs end to end, against the real server (bin/serve.ts as a child on a fresh database and a private Redis)
// whose OPENAI_BASE_URL is the local OpenAI-compatible model server (tests/support/openai-server.ts, in this
// process) answering every call at once with a short streamed text. The owner @-mentions each room's agent; each room
// has one mention in flight (the next is posted once the thread is free, so each mention is exactly one run):
//   - runs/s: measured runs over the time from the first measured mention to the last run.completed its room's
//     member saw; and per run, mention sent → `run.completed` seen by the member;
//   - streamed item → client: for every `agent.run_item_updated` the member's long poll hands over, the time from
//     the model server writing the delta whose text the item's content ends with (each delta is a distinct word,
//     timestamped as it is written to the socket) to the poll's answer. The recorder writes a run's streamed
//     content at most every 100 ms, so a delta may wait for the next write: `oldestDeltaToClientMs` is measured
//     from the earliest delta an update newly shows.
// The floor: the same item updates (same members, same payload sizes, same offsets in time) appended straight to
// the realtime port (RedisUserStreams.append on the server's Redis, the adapter the server's fan-out uses) and
// read by the same long polls. The last stdout line is JSON.
import { ServerResponse } from 'node:http'
import { availableParallelism, loadavg } from 'node:os'
import { Redis } from 'ioredis'
import { parsePosition } from '../adapters/event-store.ts'
import { RedisUserStreams } from '../adapters/redis-user-streams.ts'
import type { UserStreamEntry } from '../adapters/user-streams.ts'
import { startModelServer } from '../tests/support/openai-server.ts'
import {
  freshDatabase,
  Http,
  Identities,
  type Json,
  log,
  main,
  onCleanup,
  pool,
  privateRedis,
  round,
  sleep,
  startServer,
  summary,
  type User,
} from './harness.ts'

const env = (name: string, fallback: number) => Number(process.env[name] ?? fallback)
const AGENTS = env('BENCH_AGENTS', 8)
const RUNS = env('BENCH_RUNS', 150)
const WARMUP_RUNS = env('BENCH_WARMUP_RUNS', AGENTS)
const DELTAS = env('BENCH_DELTAS', 20)
/** A run not completed this long after its mention fails the benchmark (something is stuck, not slow). */
const RUN_TIMEOUT_MS = env('BENCH_RUN_TIMEOUT_MS', 60_000)

type Room = { roomId: string; member: User; agent: { agentId: string; username: string } }
type Delivered = { id: string; type: string; data: Json }

// --- the model server's deltas, timestamped as they are written

/** When each delta (`k<run>w<index> `) was written to the model server's socket, by `<run>.<index>`. */
const deltaWrittenAt = new Map<string, number>()
const DELTA_FRAME = /"content":"k(\d+)w(\d+) "/
// The model server runs in this process and is the only HTTP server here: its frames pass through this write.
const write = ServerResponse.prototype.write
ServerResponse.prototype.write = function (this: ServerResponse, chunk: unknown, ...rest: unknown[]) {
  if (typeof chunk === 'string') {
    const m = DELTA_FRAME.exec(chunk)
    if (m) deltaWrittenAt.set(`${m[1]}.${m[2]}`, performance.now())
  }
  return (write as (...args: unknown[]) => boolean).call(this, chunk, ...rest)
} as typeof write

const answerText = (seq: number) => Array.from({ length: DELTAS }, (_, i) => `k${seq}w${i} `).join('')
const LAST_DELTA = /k(\d+)w(\d+) $/

// --- the member's long poll

type Poller = { user: User; queueId: string; lastEventId: string; abort: (() => void) | null }

function pollForever(http: Http, pollers: Poller[], onEvents: (p: Poller, events: Delivered[], at: number) => void) {
  let stopped = false
  const errors = { non2xx: 0, socket: 0 }
  const loops = pollers.map(async (p) => {
    while (!stopped) {
      try {
        const r = await http.request('GET', `/realtime/events?queueId=${p.queueId}&lastEventId=${p.lastEventId}`, {
          token: p.user.token,
          onRequest: (req) => {
            p.abort = () => req.destroy()
          },
        })
        const at = performance.now()
        p.abort = null
        if (r.status !== 200) {
          errors.non2xx++
          await sleep(100)
          continue
        }
        const events = (r.body.events as Delivered[]).filter((e) => e.type !== 'heartbeat')
        if (events.length) {
          p.lastEventId = events.at(-1)!.id
          onEvents(p, events, at)
        }
      } catch {
        if (stopped) return
        errors.socket++
        await sleep(100)
      }
    }
  })
  return {
    errors,
    async stop() {
      stopped = true
      for (const p of pollers) p.abort?.()
      await Promise.allSettled(loops)
    },
  }
}

// --- what the members see of the runs

type RunSeen = { seq: number; roomId: string; completedAt: number | null }
type ItemSeen = { member: number; bytes: number; producedAt: number }

class Watch {
  readonly runs = new Map<string, RunSeen>()
  readonly runOfSeq = new Map<number, string>()
  /** Per room: runs finished (thread freed) so far, and who waits for the next. */
  readonly finished = new Map<string, number>()
  private readonly waiting = new Map<string, () => void>()
  /** Per item: the last delta index its content showed. */
  private readonly lastShown = new Map<string, number>()
  readonly itemToClient: number[] = []
  readonly oldestDeltaToClient: number[] = []
  readonly items: ItemSeen[] = []
  unmatchedItems = 0
  readonly measuredFrom: number
  constructor(measuredFrom: number) {
    this.measuredFrom = measuredFrom
  }

  onEvents(member: number, events: Delivered[], at: number) {
    for (const e of events) {
      if (e.type === 'agent.thread_changed') this.onThread(e.data, at)
      else if (e.type === 'agent.run_item_updated') this.onItem(member, e.data, at)
    }
  }

  private onThread(d: Json, at: number) {
    if (d.change === 'run.queued') {
      const text = (d.inputs as { text: string }[]).map((i) => i.text).join(' ')
      const m = /\bq(\d+)\b/.exec(text)
      if (!m) return
      this.runs.set(d.runId, { seq: Number(m[1]), roomId: d.roomId, completedAt: null })
      this.runOfSeq.set(Number(m[1]), d.runId)
    } else if (d.change === 'run.completed') {
      const run = this.runs.get(d.runId)
      if (run) run.completedAt = at
    } else if (d.change === 'thread.run_finished') {
      this.finished.set(d.roomId, (this.finished.get(d.roomId) ?? 0) + 1)
      this.waiting.get(d.roomId)?.()
    }
  }

  private onItem(member: number, d: Json, at: number) {
    const run = this.runs.get(d.runId)
    if (!run || d.kind === 'tool_call') return
    const content = String(d.content ?? '')
    // An item added with no content yet was made by the run's first delta.
    const m = content ? LAST_DELTA.exec(content) : null
    if (content && !m) {
      this.unmatchedItems++
      return
    }
    const last = m ? Number(m[2]) : 0
    const seq = m ? Number(m[1]) : run.seq
    const written = deltaWrittenAt.get(`${seq}.${last}`)
    if (written === undefined) {
      this.unmatchedItems++
      return
    }
    const shown = this.lastShown.get(d.itemId)
    const oldest = shown === undefined ? 0 : Math.min(last, shown + 1)
    this.lastShown.set(d.itemId, last)
    if (seq < this.measuredFrom) return
    this.itemToClient.push(at - written)
    this.oldestDeltaToClient.push(at - (deltaWrittenAt.get(`${seq}.${oldest}`) ?? written))
    this.items.push({ member, bytes: Buffer.byteLength(JSON.stringify(d)), producedAt: written })
  }

  /** Resolves when the room has finished `n` runs in all. */
  finishedRuns(roomId: string, n: number): Promise<void> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`room ${roomId}: run ${n} not finished within ${RUN_TIMEOUT_MS} ms`)),
        RUN_TIMEOUT_MS,
      )
      const check = () => {
        if ((this.finished.get(roomId) ?? 0) < n) return
        clearTimeout(timer)
        this.waiting.delete(roomId)
        resolve()
      }
      this.waiting.set(roomId, check)
      check()
    })
  }
}

// --- setup

async function setUp(http: Http, databaseUrl: string) {
  const ids = new Identities(databaseUrl, http)
  const [org] = await ids.orgs(1, AGENTS + 1, 1)
  await ids.close()
  const [owner, ...members] = org!.users
  const agents = await pool(members, 4, async (_, i) => {
    const created = await http.ok('POST', '/api/agents', {
      token: owner!.token,
      body: { name: `Agent ${i}`, username: `agent${i}`, rolePrompt: 'answers' },
    })
    return { agentId: created.agentId as string, username: created.username as string, position: created.position as number }
  })
  const newest = Math.max(...agents.map((a) => a.position))
  await http.ok('GET', `/api/users?consistentAfter=${newest}`, { token: owner!.token })
  const rooms = await pool(members, 4, async (member, i): Promise<Room> => {
    const { roomId } = await http.ok('POST', '/api/rooms', {
      token: owner!.token,
      body: { name: `agent room ${i}`, visibility: 'private' },
    })
    await http.ok('POST', `/api/rooms/${roomId}/members`, { token: owner!.token, body: { userId: member.userId } })
    await http.ok('POST', `/api/rooms/${roomId}/members`, { token: owner!.token, body: { agentId: agents[i]!.agentId } })
    return { roomId, member, agent: agents[i]! }
  })
  return { owner: owner!, rooms }
}

/** Mentions `count` times over the rooms, one in flight per room; answers when each room's runs are finished. */
async function mentioning(
  http: Http,
  owner: User,
  rooms: Room[],
  watch: Watch,
  first: number,
  count: number,
  sentAt: Map<number, number>,
) {
  let next = first
  const end = first + count
  await Promise.all(
    rooms.map(async (room) => {
      while (next < end) {
        const seq = next++
        const before = watch.finished.get(room.roomId) ?? 0
        sentAt.set(seq, performance.now())
        await http.ok('POST', `/api/rooms/${room.roomId}/messages`, {
          token: owner.token,
          body: { text: `@${room.agent.username} q${seq} how is the build?` },
        })
        await watch.finishedRuns(room.roomId, before + 1)
      }
    }),
  )
}

// --- the floor

async function floor(redisUrl: string, pollers: Poller[], items: ItemSeen[], http: Http) {
  const redis = new Redis(redisUrl)
  const streams = new RedisUserStreams(redis)
  onCleanup(() => streams.close().catch(() => {}))
  const previous = await Promise.all(pollers.map((p) => streams.lastId(p.user.userId)))
  const top = previous.map((id) => parsePosition(id)!)
  // Past every member's newest entry: ids at or below a stream's top are refused as already delivered.
  let tx = 0n
  let sequence = 0n
  for (const p of top) {
    if (p.transactionId > tx) tx = p.transactionId
    if (p.sequence > sequence) sequence = p.sequence
  }
  const sentAt = new Float64Array(items.length)
  const latencies: number[] = []
  let received = 0
  const polling = pollForever(http, pollers, (_, events, at) => {
    for (const e of events) {
      const n = e.data?.floorSeq
      if (typeof n !== 'number') continue
      latencies.push(at - sentAt[n]!)
      received++
    }
  })
  await sleep(500)
  const started = performance.now()
  const origin = items[0]?.producedAt ?? 0
  const appends: Promise<unknown>[] = []
  for (const [n, item] of items.entries()) {
    const due = started + (item.producedAt - origin)
    const wait = due - performance.now()
    if (wait > 0) await sleep(wait)
    const member = pollers[item.member]!
    tx += 1n
    sequence += 1n
    const id = `${tx}-${sequence}`
    const base = { runId: 'floor', itemId: 'floor', sequence: n, status: 'in_progress', floorSeq: n, content: '' }
    const pad = Math.max(0, item.bytes - Buffer.byteLength(JSON.stringify(base)))
    const entry: UserStreamEntry = {
      id,
      previousId: previous[item.member]!,
      userId: member.user.userId,
      type: 'agent.run_item_updated',
      position: Number(sequence),
      occurredAt: new Date().toISOString(),
      data: { ...base, content: 'x'.repeat(pad) },
    }
    previous[item.member] = id
    sentAt[n] = performance.now()
    appends.push(streams.append([entry]))
  }
  await Promise.all(appends)
  const deadline = performance.now() + 10_000
  while (received < items.length && performance.now() < deadline) await sleep(50)
  await polling.stop()
  return { ...summary(latencies), undelivered: items.length - received }
}

// --- the run

async function run(): Promise<Record<string, unknown>> {
  const load0 = loadavg()
  const started = performance.now()
  const elapsed = () => `${round((performance.now() - started) / 1000, 0)}s`
  log(`bench:agents — ${AGENTS} agents in rooms of their own, ${WARMUP_RUNS}+${RUNS} mentions, ${DELTAS} deltas an answer`)
  const model = await startModelServer()
  onCleanup(() => model.close())
  model.answer((request) => {
    const users = ((request.body.messages ?? []) as { role: string; content: string | null }[]).filter((m) => m.role === 'user')
    const m = /\bq(\d+)\b/.exec(users.at(-1)?.content ?? '')
    if (!m) return { status: 400, message: 'no mention tag in the last user message' }
    return { text: answerText(Number(m[1])), usage: { input: 200, output: DELTAS * 2 } }
  })
  const [databaseUrl, redisUrl] = await Promise.all([freshDatabase('bench_agents'), privateRedis()])
  const server = await startServer({
    DATABASE_URL: databaseUrl,
    REDIS_URL: redisUrl,
    OPENAI_BASE_URL: model.url,
    OPENAI_API_KEY: 'sk-local',
    AGENT_DEFAULT_MODEL: 'local-model',
    ...(process.env.AGENT_CONCURRENCY ? { AGENT_CONCURRENCY: process.env.AGENT_CONCURRENCY } : {}),
  })
  log(`server pid ${server.pid} at ${server.url}`)
  const http = new Http(server.url)
  const { owner, rooms } = await setUp(http, databaseUrl)
  log(`setup: ${rooms.length} rooms, each with an agent and a member (${elapsed()})`)

  const pollers = await Promise.all(
    rooms.map(async (room): Promise<Poller> => {
      const r = await http.ok('POST', '/realtime/register', { token: room.member.token, body: {} })
      return { user: room.member, queueId: r.queueId, lastEventId: r.lastEventId, abort: null }
    }),
  )
  const watch = new Watch(WARMUP_RUNS)
  const polling = pollForever(http, pollers, (p, events, at) => watch.onEvents(pollers.indexOf(p), events, at))

  const sentAt = new Map<number, number>()
  log(`warm-up: ${WARMUP_RUNS} mentions...`)
  await mentioning(http, owner, rooms, watch, 0, WARMUP_RUNS, sentAt)
  log(`measuring: ${RUNS} mentions, one in flight per room (${elapsed()})...`)
  const progress = setInterval(
    () => log(`  ${watch.itemToClient.length} item updates, ${sentAt.size - WARMUP_RUNS} mentions sent`),
    5_000,
  )
  const measuredStart = performance.now()
  await mentioning(http, owner, rooms, watch, WARMUP_RUNS, RUNS, sentAt)
  clearInterval(progress)
  const runLatencies: number[] = []
  let lastCompletion = measuredStart
  for (let seq = WARMUP_RUNS; seq < WARMUP_RUNS + RUNS; seq++) {
    const runId = watch.runOfSeq.get(seq)
    const completedAt = runId ? watch.runs.get(runId)?.completedAt : null
    if (!completedAt) throw new Error(`mention ${seq}: no run.completed seen`)
    runLatencies.push(completedAt - sentAt.get(seq)!)
    lastCompletion = Math.max(lastCompletion, completedAt)
  }
  const runsPerSecond = RUNS / ((lastCompletion - measuredStart) / 1000)
  await polling.stop()
  const item = summary(watch.itemToClient)
  const oldest = summary(watch.oldestDeltaToClient)
  const mentionToCompleted = summary(runLatencies)
  log(
    `agents: ${round(runsPerSecond, 2)} runs/s, mention → run.completed p50 ${mentionToCompleted.p50} p99 ${mentionToCompleted.p99} ms; item → client p50 ${item.p50} p99 ${item.p99} ms over ${item.count} updates (${elapsed()})`,
  )

  log(`floor: ${watch.items.length} item updates appended straight to the members' streams, at the same offsets...`)
  const floorResult = await floor(redisUrl, pollers, watch.items, http)
  log(`floor: p50 ${floorResult.p50} p99 ${floorResult.p99} ms over ${floorResult.count} (${elapsed()})`)
  http.close()

  return {
    bench: 'agents',
    setup: { agents: AGENTS, runs: RUNS, warmupRuns: WARMUP_RUNS, deltasPerAnswer: DELTAS, inFlightPerRoom: 1 },
    runsPerSecond: round(runsPerSecond, 2),
    mentionToRunCompletedMs: {
      p50: mentionToCompleted.p50,
      p90: mentionToCompleted.p90,
      p99: mentionToCompleted.p99,
      max: mentionToCompleted.max,
    },
    itemToClientMs: { p50: item.p50, p90: item.p90, p99: item.p99, max: item.max },
    oldestDeltaToClientMs: { p50: oldest.p50, p99: oldest.p99 },
    itemUpdates: item.count,
    itemUpdatesPerRun: round(item.count / RUNS, 1),
    unmatchedItemUpdates: watch.unmatchedItems,
    pollErrors: polling.errors,
    floor: {
      itemToClientMs: { p50: floorResult.p50, p90: floorResult.p90, p99: floorResult.p99, max: floorResult.max },
      updates: floorResult.count,
      undelivered: floorResult.undelivered,
    },
    ratios: {
      p50VsFloor: round(item.p50 / floorResult.p50, 1),
      p99VsFloor: round(item.p99 / floorResult.p99, 1),
    },
    machine: { cores: availableParallelism(), loadAverage1mAtStart: round(load0[0]!, 2) },
    seconds: round((performance.now() - started) / 1000, 0),
  }
}

await main(run)
