// npm run bench:realtime
//   BENCH_ORGS=20 BENCH_USERS_PER_ORG=25   people (each org's users are split into private rooms)
//   BENCH_ROOM_SIZE=4                      members per room: each post fans out to them (and each of their queues)
//   BENCH_QUEUES_PER_USER=2                long polls per user while posting (500 users x 2 = 1,000 polls)
//   BENCH_RATES=50,500                     posts per second, measured in turn, lowest first; the highest is the target
//                                          (its floor is measured), a lower one shows the latency below saturation
//   BENCH_SECONDS=10                       measured seconds per rate (after BENCH_WARMUP_SECONDS=2)
//   BENCH_DRAIN_SECONDS=20                 how long late deliveries are waited for after posting stops (less
//                                          when none came for 5 s); what never comes counts as undelivered
//   BENCH_MAX_POLLS=50000                  long polls to ramp to (at most 20 per user, and below the open-file limit:
//                                          each poll is a socket in this process and in the server; past that limit
//                                          the RSS at 50,000 is projected from the per-1,000 cost, and says so)
//   BENCH_ADMIN_URL / DATABASE_URL         Postgres admin connection (default postgres://postgres@127.0.0.1:5432/postgres)
//
// Command-to-delivery latency: the time from sending POST /api/rooms/:id/messages to the moment each
// recipient's pending long poll (GET /realtime/events) hands the message over, at a steady rate of posts
// with 1,000 long polls held; then the most long polls the one server process holds, with its RSS; and the
// floor: the same fan-out and rate as bare Redis XADD -> XREAD BLOCK, in the same run. The server is
// bin/serve.ts as a child process on a fresh database and a private Redis. The last stdout line is JSON.
// Order: setup, floor, ramp (on an idle server, the latency polls among them), the extra polls dropped, then
// posting at each rate with the 1,000 latency polls held. BENCH_PROFILE=<dir> writes a CPU profile of the
// server per posting rate.

import type { ClientRequest } from 'node:http'
import { availableParallelism, loadavg } from 'node:os'
import { monitorEventLoopDelay } from 'node:perf_hooks'
import { Redis } from 'ioredis'
import {
  type ChildServer,
  cpuSeconds,
  freshDatabase,
  Http,
  heldPollsMetric,
  Identities,
  log,
  machineCpu,
  main,
  mib,
  type Org,
  openFileLimit,
  pool,
  privateRedis,
  round,
  sampleMetrics,
  serverHeapBytes,
  sleep,
  startServer,
  summary,
  type User,
} from './harness.ts'

const env = (name: string, fallback: number) => Number(process.env[name] ?? fallback)
const ORGS = env('BENCH_ORGS', 20)
const USERS_PER_ORG = env('BENCH_USERS_PER_ORG', 25)
const ROOM_SIZE = env('BENCH_ROOM_SIZE', 4)
const QUEUES_PER_USER = env('BENCH_QUEUES_PER_USER', 2)
const RATES = (process.env.BENCH_RATES ?? '50,500')
  .split(',')
  .map(Number)
  .sort((a, b) => a - b)
const RATE = RATES.at(-1)!
const DRAIN_SECONDS = env('BENCH_DRAIN_SECONDS', 20)
const SECONDS = env('BENCH_SECONDS', 10)
const WARMUP_SECONDS = env('BENCH_WARMUP_SECONDS', 2)
const FD_LIMIT = openFileLimit()
// Room for the server's other sockets and files (its pools, Redis, the latency polls' keep-alive posts).
const FD_HEADROOM = 1_500
const MAX_POLLS = Math.min(env('BENCH_MAX_POLLS', 50_000), ORGS * USERS_PER_ORG * 20, FD_LIMIT - FD_HEADROOM)
const MAX_IN_FLIGHT = env('BENCH_MAX_IN_FLIGHT', 500)
const TARGET_P99_MS = 50
const TARGET_POLLS = 50_000
const TARGET_RSS = 1024 ** 3

type Room = { roomId: string; members: User[] }
type RealtimeEvent = { id: string; type: string; data?: { text?: string } }

/** Private rooms of ROOM_SIZE members, made by their first member. */
async function makeRooms(http: Http, orgs: Org[]): Promise<Room[]> {
  const groups = orgs.flatMap((org) => {
    const out: User[][] = []
    for (let i = 0; i < org.users.length; i += ROOM_SIZE) out.push(org.users.slice(i, i + ROOM_SIZE))
    return out.filter((g) => g.length > 1)
  })
  return pool(groups, 16, async (members, i) => {
    const [creator, ...others] = members
    const { roomId } = await http.ok('POST', '/api/rooms', {
      token: creator!.token,
      body: { name: `room ${i}`, visibility: 'private' },
    })
    for (const m of others)
      await http.ok('POST', `/api/rooms/${roomId}/members`, { token: creator!.token, body: { userId: m.userId } })
    return { roomId, members }
  })
}

/**
 * A steady open-loop schedule: `fire(seq)` at `rate` per second for `seconds`, whatever the answers take; a
 * post due while MAX_IN_FLIGHT are pending is skipped (and counted), so an overloaded server shows as a
 * lower achieved rate rather than an ever longer queue in this process.
 */
async function steady(rate: number, seconds: number, fire: (seq: number) => Promise<unknown>, onTick?: (sent: number) => void) {
  const total = Math.round(rate * seconds)
  const started = performance.now()
  let sent = 0
  let inFlight = 0
  let skipped = 0
  const pending = new Set<Promise<unknown>>()
  while (sent < total) {
    const due = Math.min(total, Math.floor(((performance.now() - started) * rate) / 1000) + 1)
    while (sent < due) {
      const seq = sent++
      if (inFlight >= MAX_IN_FLIGHT) {
        skipped++
        continue
      }
      inFlight++
      const p = fire(seq).finally(() => {
        inFlight--
        pending.delete(p)
      })
      pending.add(p)
    }
    onTick?.(sent)
    await sleep(1)
  }
  const elapsedSeconds = (performance.now() - started) / 1000
  await Promise.allSettled([...pending])
  return { sent: total - skipped, skipped, elapsedSeconds }
}

// --- the floor: the same fan-out and rate on bare Redis streams

async function redisFloor(redisUrl: string, rooms: Room[]) {
  const payload = JSON.stringify({ text: 'x'.repeat(40), roomId: rooms[0]!.roomId, pad: 'y'.repeat(300) })
  const writer = new Redis(redisUrl)
  const total = Math.round(RATE * (SECONDS + WARMUP_SECONDS))
  const sentAt = new Float64Array(total)
  const measuredFrom = Math.round(RATE * WARMUP_SECONDS)
  const latencies: number[] = []
  let stopped = false
  const readers: Redis[] = []
  const loops: Promise<void>[] = []
  const key = (u: User) => `floor:${u.userId}`
  for (const m of rooms.flatMap((r) => r.members)) {
    for (let q = 0; q < QUEUES_PER_USER; q++) {
      const r = new Redis(redisUrl, { maxRetriesPerRequest: 0, retryStrategy: () => null })
      r.on('error', () => {})
      readers.push(r)
      // Connected before its XREAD BLOCK, which holds the connection.
      await r.ping()
      loops.push(
        (async () => {
          let last = '0-0'
          while (!stopped) {
            const reply = (await r.xread('COUNT', 100, 'BLOCK', 0, 'STREAMS', key(m), last).catch(() => null)) as
              | [string, [string, string[]][]][]
              | null
            if (!reply) {
              await sleep(10)
              continue
            }
            const now = performance.now()
            for (const [id, fields] of reply[0]![1]) {
              last = id
              const seq = Number(fields[1])
              if (seq >= measuredFrom) latencies.push(now - sentAt[seq]!)
            }
          }
        })(),
      )
    }
  }
  await sleep(200)
  const run = await steady(RATE, SECONDS + WARMUP_SECONDS, async (seq) => {
    const room = rooms[seq % rooms.length]!
    const p = writer.pipeline()
    for (const m of room.members) p.xadd(key(m), 'MAXLEN', '~', '1000', '*', 'f', String(seq), 'd', payload)
    sentAt[seq] = performance.now()
    await p.exec()
  })
  await sleep(500)
  stopped = true
  for (const r of readers) r.disconnect()
  await Promise.allSettled(loops)
  await writer.del(...rooms.flatMap((r) => r.members.map(key)))
  writer.disconnect()
  return { ...summary(latencies), postsPerSecond: round(run.sent / run.elapsedSeconds, 0) }
}

// --- long polls

type Poller = { user: User; queueId: string; lastEventId: string; req: ClientRequest | null }

async function register(http: Http, user: User): Promise<Poller> {
  const r = await http.ok('POST', '/realtime/register', { token: user.token, body: {} })
  return { user, queueId: r.queueId, lastEventId: r.lastEventId, req: null }
}

const eventsPath = (p: Poller) => `/realtime/events?queueId=${p.queueId}&lastEventId=${p.lastEventId}`

/** Polls in a loop until `stop()`, handing every event to `onEvents`; counts failures. */
function pollForever(http: Http, pollers: Poller[], onEvents: (events: RealtimeEvent[], at: number) => void) {
  let stopped = false
  const counts = { answered: 0, heartbeats: 0, non2xx: 0, socketErrors: 0 }
  const loops = pollers.map(async (p) => {
    while (!stopped) {
      try {
        const r = await http.request('GET', eventsPath(p), { token: p.user.token, onRequest: (req) => (p.req = req) })
        const at = performance.now()
        p.req = null
        counts.answered++
        if (r.status !== 200) {
          counts.non2xx++
          await sleep(100)
          continue
        }
        const events = (r.body.events as RealtimeEvent[]).filter((e) => e.type !== 'heartbeat')
        if (events.length) {
          p.lastEventId = events.at(-1)!.id
          onEvents(events, at)
        } else counts.heartbeats++
      } catch {
        if (stopped) return
        counts.socketErrors++
        await sleep(100)
      }
    }
  })
  return {
    counts,
    async stop() {
      stopped = true
      for (const p of pollers) p.req?.destroy()
      await Promise.allSettled(loops)
    },
  }
}

/** Waits until the server says it holds `n` polls (or stops moving for 3 s); null without /metrics. */
async function waitHeld(url: string, n: number, direction: 'up' | 'down' = 'up'): Promise<number | null> {
  let held: number | null = null
  for (let i = 0, last = -1, still = 0; i < 600; i++) {
    held = await heldPollsMetric(url)
    if (held === null || (direction === 'up' ? held >= n : held <= n)) break
    still = held === last ? still + 1 : 0
    if (still > 30) break
    last = held
    await sleep(100)
  }
  if (held === null) await sleep(2_000)
  return held
}

// --- command-to-delivery

type Recorder = {
  readonly tag: number
  readonly sentAt: Float64Array
  /** When the POST answered: deliveries after it measure projection, fan-out and wakeup alone. */
  readonly answeredAt: Float64Array
  readonly delivered: Uint16Array
  readonly expected: Uint16Array
  readonly measuredFrom: number
  readonly latencies: number[]
  readonly afterAnswer: number[]
}

const recorders = new Map<number, Recorder>()
const TEXT = /^b(\d+)\.(\d+)$/

function record(events: RealtimeEvent[], at: number) {
  for (const e of events) {
    if (e.type !== 'message.created') continue
    const m = TEXT.exec(e.data?.text ?? '')
    const r = m && recorders.get(Number(m[1]))
    if (!r) continue
    const seq = Number(m[2])
    r.delivered[seq]!++
    if (seq < r.measuredFrom) continue
    r.latencies.push(at - r.sentAt[seq]!)
    // Before the answer is possible (the poll won the race): counted as 0.
    r.afterAnswer.push(r.answeredAt[seq]! > 0 ? Math.max(0, at - r.answeredAt[seq]!) : 0)
  }
}

async function postingAt(server: ChildServer, http: Http, rooms: Room[], rate: number, tag: number) {
  const total = Math.round(rate * (SECONDS + WARMUP_SECONDS))
  const r: Recorder = {
    tag,
    sentAt: new Float64Array(total),
    answeredAt: new Float64Array(total),
    delivered: new Uint16Array(total),
    expected: new Uint16Array(total),
    measuredFrom: Math.round(rate * WARMUP_SECONDS),
    latencies: [],
    afterAnswer: [],
  }
  recorders.set(tag, r)
  const postLatencies: number[] = []
  let postErrors = 0
  const postErrorKinds: Record<string, number> = {}
  const failed = (kind: string) => {
    postErrors++
    postErrorKinds[kind] = (postErrorKinds[kind] ?? 0) + 1
  }
  const loop = monitorEventLoopDelay({ resolution: 10 })
  loop.enable()
  const stopProfile = await server.profile(`realtime-${rate}`)
  const stopSampling = sampleMetrics(server.url, {
    realtimeProjectionLagEvents: 'workspace_projection_lag_events{projector="realtime",version="1"}',
    messagesProjectionLagEvents: 'workspace_projection_lag_events{projector="messages",version="1"}',
    dbPoolWaiting: 'workspace_db_pool_connections{pool="api",state="waiting"}',
    eventStorePoolWaiting: 'workspace_db_pool_connections{pool="events",state="waiting"}',
    eventLoopDelayP99Seconds: 'workspace_event_loop_delay_seconds{quantile="0.99"}',
  })
  const cpu0 = { server: cpuSeconds(server.pid), machine: machineCpu(), bench: process.cpuUsage() }
  let lastLog = performance.now()
  const posting = await steady(
    rate,
    SECONDS + WARMUP_SECONDS,
    async (seq) => {
      const room = rooms[seq % rooms.length]!
      const author = room.members[Math.floor(seq / rooms.length) % room.members.length]!
      r.expected[seq] = room.members.length * QUEUES_PER_USER
      r.sentAt[seq] = performance.now()
      try {
        const answer = await http.request('POST', `/api/rooms/${room.roomId}/messages`, {
          token: author.token,
          body: { text: `b${tag}.${seq}` },
        })
        r.answeredAt[seq] = performance.now()
        if (answer.status === 201) postLatencies.push(answer.ms)
        else failed(String(answer.status))
      } catch (e) {
        failed((e as NodeJS.ErrnoException).code ?? 'socket')
      }
    },
    (sent) => {
      if (performance.now() - lastLog > 2000) {
        lastLog = performance.now()
        log(`  posted ${sent}/${total}, ${r.latencies.length} deliveries`)
      }
    },
  )
  const cpu1 = { server: cpuSeconds(server.pid), machine: machineCpu(), bench: process.cpuUsage(cpu0.bench) }
  await stopProfile()
  const serverMetrics = await stopSampling()
  loop.disable()
  // Late deliveries: waited for, bounded; what never comes counts as undelivered.
  const missing = () => {
    let n = 0
    for (let s = r.measuredFrom; s < total; s++) if (r.sentAt[s]! > 0) n += Math.max(0, r.expected[s]! - r.delivered[s]!)
    return n
  }
  const deadline = performance.now() + DRAIN_SECONDS * 1000
  for (let last = missing(), since = performance.now(); last > 0 && performance.now() < deadline; ) {
    await sleep(100)
    const now = missing()
    if (now < last) since = performance.now()
    else if (performance.now() - since > 5_000) break
    last = now
  }
  const undelivered = missing()
  recorders.delete(tag)
  const latency = summary(r.latencies)
  const post = summary(postLatencies)
  const afterAnswer = summary(r.afterAnswer)
  const achieved = posting.sent / posting.elapsedSeconds
  log(
    `  ${rate}/s: ${round(achieved, 0)} posts/s sent, command-to-delivery p50 ${latency.p50} ms p99 ${latency.p99} ms over ${latency.count} deliveries, POST p50 ${post.p50} p99 ${post.p99}, ${undelivered} undelivered`,
  )
  return {
    postsPerSecondTarget: rate,
    postsPerSecond: round(achieved, 0),
    postsSkipped: posting.skipped,
    postErrors,
    postErrorKinds,
    deliveries: latency.count,
    undelivered,
    commandToDeliveryMs: { p50: latency.p50, p90: latency.p90, p99: latency.p99, max: latency.max },
    postResponseMs: { p50: post.p50, p99: post.p99 },
    deliveryAfterPostAnsweredMs: { p50: afterAnswer.p50, p99: afterAnswer.p99 },
    serverMetrics,
    serverCpuCores: round((cpu1.server - cpu0.server) / posting.elapsedSeconds, 2),
    machineCpuBusy: round((cpu1.machine.busy - cpu0.machine.busy) / (cpu1.machine.total - cpu0.machine.total), 2),
    benchCpuCores: round((cpu1.bench.user + cpu1.bench.system) / 1e6 / posting.elapsedSeconds, 2),
    benchEventLoopDelayP99Ms: round(loop.percentile(99) / 1e6, 1),
  }
}

async function run(): Promise<Record<string, unknown>> {
  const load0 = loadavg()
  const started = performance.now()
  const elapsed = () => `${round((performance.now() - started) / 1000, 0)}s`
  log(
    `bench:realtime — ${ORGS}x${USERS_PER_ORG} users, rooms of ${ROOM_SIZE}, ${RATES.join(' and ')} posts/s for ${SECONDS}s, ramp to ${MAX_POLLS} polls`,
  )
  const [databaseUrl, redisUrl] = await Promise.all([freshDatabase('bench_rt'), privateRedis()])
  const server = await startServer({ DATABASE_URL: databaseUrl, REDIS_URL: redisUrl, REALTIME_HEARTBEAT_MS: '120000' })
  log(`server pid ${server.pid} at ${server.url}, RSS ${mib(server.rssBytes())} MiB`)
  const http = new Http(server.url)
  const ids = new Identities(databaseUrl, http)

  // --- people and rooms
  const orgs = await ids.orgs(ORGS, USERS_PER_ORG, 24, (n) => log(`  users: ${n}/${ORGS * USERS_PER_ORG}`))
  await ids.close()
  const users = orgs.flatMap((o) => o.users)
  const rooms = await makeRooms(http, orgs)
  log(`setup: ${users.length} users, ${rooms.length} rooms (${elapsed()})`)

  // --- the floor, while the server idles
  log(`floor: Redis XADD -> XREAD BLOCK, ${RATE}/s, fan-out ${ROOM_SIZE} users x ${QUEUES_PER_USER} readers...`)
  const floor = await redisFloor(redisUrl, rooms)
  log(`floor: p50 ${floor.p50} ms, p99 ${floor.p99} ms over ${floor.count} deliveries (${elapsed()})`)

  // --- the most long polls held: the latency polls, then more queues up to 20 per user
  const rssIdle = server.rssBytes()
  const heapIdleBytes = await serverHeapBytes(server.url)
  const heapIdle = heapIdleBytes === null ? null : mib(heapIdleBytes)
  const pollers = await pool(
    users.flatMap((u) => Array.from({ length: QUEUES_PER_USER }, () => u)),
    64,
    (u) => register(http, u),
  )
  const polling = pollForever(http, pollers, record)
  const heldLatency = await waitHeld(server.url, pollers.length)
  const rssLatencyPolls = server.rssBytes()
  const heapMiB = async () => {
    const bytes = await serverHeapBytes(server.url)
    return bytes === null ? null : mib(bytes)
  }
  const steps: { polls: number; held: number | null; rssMiB: number; heapMiB: number | null }[] = [
    { polls: 0, held: 0, rssMiB: mib(rssIdle), heapMiB: heapIdle },
    { polls: pollers.length, held: heldLatency, rssMiB: mib(rssLatencyPolls), heapMiB: await heapMiB() },
  ]
  log(`ramp: ${pollers.length} polls, server holds ${heldLatency ?? 'n/a'}, RSS ${mib(rssLatencyPolls)} MiB`)
  // What the extra polls keep alive, by the code that allocated it (BENCH_PROFILE only).
  const stopHeapProfile = await server.heapProfile('realtime-held-polls')
  const perUser = Math.ceil(MAX_POLLS / users.length)
  const toOpen = users
    .flatMap((u) => Array.from({ length: Math.max(0, perUser - QUEUES_PER_USER) }, () => u))
    .slice(0, Math.max(0, MAX_POLLS - pollers.length))
  const extra: Poller[] = []
  const holds: Promise<void>[] = []
  const early = { answered: 0, failed: 0 }
  const rampStarted = performance.now()
  const rampSteps = [2_500, 5_000, 10_000, 15_000, 20_000, 30_000, 40_000, MAX_POLLS]
  for (const step of rampSteps.filter((s) => s > pollers.length && s <= MAX_POLLS)) {
    const batch = toOpen.slice(extra.length, step - pollers.length)
    const registered = await pool(batch, 64, (u) => register(http, u))
    for (const p of registered) {
      extra.push(p)
      holds.push(
        http.request('GET', eventsPath(p), { token: p.user.token, onRequest: (req) => (p.req = req) }).then(
          (answer) => {
            p.req = null
            if (answer.status === 200) early.answered++
            else early.failed++
            if (early.answered + early.failed <= 3)
              log(`  a held poll answered: ${answer.status} ${JSON.stringify(answer.body).slice(0, 200)}`)
          },
          () => {
            if (p.req) early.failed++
          },
        ),
      )
    }
    const held = await waitHeld(server.url, pollers.length + extra.length)
    const rss = server.rssBytes()
    steps.push({ polls: pollers.length + extra.length, held, rssMiB: mib(rss), heapMiB: await heapMiB() })
    log(`  ${pollers.length + extra.length} polls opened, server holds ${held ?? 'n/a'}, RSS ${mib(rss)} MiB (${elapsed()})`)
  }
  // Held a moment more: none may answer.
  await sleep(2_000)
  const opened = pollers.length + extra.length
  const finalHeld = await heldPollsMetric(server.url)
  const answeredEarly = early.answered + early.failed + polling.counts.answered
  const heldPolls = finalHeld ?? opened - answeredEarly
  const rssMax = server.rssBytes()
  const heapMax = await serverHeapBytes(server.url)
  const rampSeconds = (performance.now() - rampStarted) / 1000
  log(`ramp: ${heldPolls} of ${opened} held, RSS ${mib(rssMax)} MiB, ${answeredEarly} answered early (${elapsed()})`)
  const heldPollAllocations = await stopHeapProfile()
  for (const a of heldPollAllocations.slice(0, 15)) log(`  live ${a.kib} KiB allocated by ${a.frame}`)

  // Back to the 1,000 latency polls.
  for (const p of extra) {
    const req = p.req
    p.req = null
    req?.destroy()
  }
  await Promise.allSettled(holds)
  const heldForLatency = await waitHeld(server.url, pollers.length, 'down')
  log(`latency: ${pollers.length} long polls held (server says ${heldForLatency ?? 'n/a'})`)

  // --- command-to-delivery at each rate
  const phases = []
  for (const [i, rate] of RATES.entries()) {
    log(`latency: posting ${rate}/s for ${WARMUP_SECONDS}+${SECONDS}s...`)
    phases.push(await postingAt(server, http, rooms, rate, i))
  }
  await polling.stop()
  http.close()

  const target = phases.at(-1)!
  const p99 = target.commandToDeliveryMs.p99
  const perThousandBytes = (rssMax - rssIdle) / (opened / 1000)
  // Fewer than the target held only because the sockets ran out: the RSS the target would take at this cost.
  const projectedRssAtTarget = rssIdle + (perThousandBytes * TARGET_POLLS) / 1000
  const met = (x: number) => Number.isFinite(x)
  return {
    bench: 'realtime',
    setup: {
      users: users.length,
      rooms: rooms.length,
      roomSize: ROOM_SIZE,
      queuesPerUser: QUEUES_PER_USER,
      pollsHeld: pollers.length,
    },
    latency: target,
    ...(phases.length > 1 ? { latencyAtLowerRates: phases.slice(0, -1) } : {}),
    floor: {
      redisXaddToXreadMs: { p50: floor.p50, p90: floor.p90, p99: floor.p99, max: floor.max },
      deliveries: floor.count,
      postsPerSecond: floor.postsPerSecond,
    },
    maxPolls: {
      opened,
      held: heldPolls,
      heldPerServerMetric: finalHeld,
      answeredEarly,
      rampSeconds: round(rampSeconds, 0),
      rssMiB: mib(rssMax),
      rssIdleMiB: mib(rssIdle),
      rssPerThousandPollsMiB: round(perThousandBytes / 1_048_576, 1),
      heapPerThousandPollsMiB:
        heapMax !== null && heapIdleBytes !== null ? round((heapMax - heapIdleBytes) / 1_048_576 / (opened / 1000), 1) : null,
      openFileLimit: FD_LIMIT,
      limitedBy:
        opened >= TARGET_POLLS ? null : MAX_POLLS >= FD_LIMIT - FD_HEADROOM ? 'open-file limit' : 'BENCH_MAX_POLLS or users',
      projectedRssMiBAt50k: mib(projectedRssAtTarget),
      rssTotalPerThousandPollsMiB: round(rssMax / 1_048_576 / (opened / 1000), 1),
      steps,
      ...(heldPollAllocations.length ? { heldPollAllocations } : {}),
    },
    ratios: {
      p50VsFloor: met(target.commandToDeliveryMs.p50) ? round(target.commandToDeliveryMs.p50 / floor.p50, 1) : null,
      p99VsFloor: met(p99) ? round(p99 / floor.p99, 1) : null,
      p99VsTarget: met(p99) ? round(p99 / TARGET_P99_MS, 2) : null,
      rssVsTarget: round(rssMax / TARGET_RSS, 2),
    },
    targets: {
      polls50kUnder1GiB: heldPolls >= TARGET_POLLS && rssMax < TARGET_RSS,
      polls50kUnder1GiBProjected: heldPolls >= opened && projectedRssAtTarget < TARGET_RSS,
      p99Under50msAt500PerSecond:
        target.postsPerSecondTarget >= 500 &&
        target.postsPerSecond >= target.postsPerSecondTarget * 0.98 &&
        target.undelivered === 0 &&
        p99 < TARGET_P99_MS,
    },
    machine: { cores: availableParallelism(), loadAverage1mAtStart: round(load0[0]!, 2) },
    seconds: round((performance.now() - started) / 1000, 0),
  }
}

await main(run)
