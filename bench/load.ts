// npm run bench:load
//   BENCH_DURATION=20          seconds of mixed load
//   BENCH_CEILING_DURATION=5   seconds of GET /healthz alone, the ceiling, on the same server
//   BENCH_ORGS=2 BENCH_USERS_PER_ORG=25 BENCH_ROOMS_PER_ORG=5 BENCH_SEED_MESSAGES=30 (per room); rooms are private,
//   of 5 members each
//   BENCH_POLLS=100            long polls held in the background (2 per user; re-polled as they answer, so each
//                              event in a room costs its members' polls an answer and a new authenticated request)
//   BENCH_ADMIN_URL / DATABASE_URL   Postgres admin connection (default postgres://postgres@127.0.0.1:5432/postgres)
//
// A mixed workload against the real server (bin/serve.ts as a child process, fresh database, private Redis):
// autocannon drives each kind of request on its own connections at once — reads (GET /api/rooms,
// GET /api/rooms/:id/messages), posts, edits, reactions — while long polls are held and re-polled; then
// GET /healthz alone with as many connections, as the ceiling. Throughput, p50/p99 latency and error rate
// (non-2xx and socket errors) per kind and overall; the last stdout line is JSON.
import { availableParallelism, loadavg } from 'node:os'
import autocannon from 'autocannon'
import {
  cpuSeconds,
  freshDatabase,
  Http,
  Identities,
  log,
  machineCpu,
  main,
  mib,
  pool,
  privateRedis,
  round,
  sampleMetrics,
  sleep,
  startServer,
  summary,
  type User,
} from './harness.ts'

const env = (name: string, fallback: number) => Number(process.env[name] ?? fallback)
const DURATION = env('BENCH_DURATION', 20)
const CEILING_DURATION = env('BENCH_CEILING_DURATION', 5)
const ORGS = env('BENCH_ORGS', 2)
const USERS_PER_ORG = env('BENCH_USERS_PER_ORG', 25)
const ROOMS_PER_ORG = env('BENCH_ROOMS_PER_ORG', 5)
const ROOM_SIZE = 5
const SEED_MESSAGES = env('BENCH_SEED_MESSAGES', 30)
const POLLS = env('BENCH_POLLS', 100)
const EMOJI = ['thumbsup', 'tada', 'eyes', 'rocket', 'heart', 'fire', 'white_check_mark', 'pray']

type Method = NonNullable<autocannon.Request['method']>
type Room = { roomId: string; members: User[]; messages: { messageId: string; author: User }[] }

/** The kinds of the mix, with the connections autocannon gives each. */
type Kind = { name: string; connections: number; request: () => { method: Method; path: string; token?: string; body?: unknown } }

const pick = <T>(xs: readonly T[]): T => xs[Math.floor(Math.random() * xs.length)]!

type KindResult = {
  requests: number
  rps: number
  p50Ms: number
  p99Ms: number
  non2xx: number
  socketErrors: number
  errorRate: number
  statuses: Record<string, number>
}

/** One autocannon instance for a kind; latencies of every response (not only 2xx) are kept. */
function drive(url: string, kind: Kind, seconds: number, latencies: number[]): Promise<KindResult> {
  const statuses: Record<string, number> = {}
  let socketErrors = 0
  return new Promise((resolve, reject) => {
    const instance = autocannon(
      {
        url,
        connections: kind.connections,
        duration: seconds,
        timeout: 10,
        requests: [
          {
            setupRequest: (req: autocannon.Request): autocannon.Request => {
              const r = kind.request()
              return {
                ...req,
                method: r.method,
                path: r.path,
                headers: {
                  ...(r.token ? { authorization: `Bearer ${r.token}` } : {}),
                  ...(r.body === undefined ? {} : { 'content-type': 'application/json' }),
                },
                body: r.body === undefined ? undefined : JSON.stringify(r.body),
              }
            },
          },
        ],
      },
      (err: Error | null, result: autocannon.Result) => {
        if (err) return reject(err)
        const own = summary(latencies)
        const responses = Object.values(statuses).reduce((a, b) => a + b, 0)
        const non2xx = responses - Object.entries(statuses).reduce((a, [s, n]) => a + (s.startsWith('2') ? n : 0), 0)
        resolve({
          requests: responses + socketErrors,
          rps: round(responses / result.duration, 0),
          p50Ms: own.p50,
          p99Ms: own.p99,
          non2xx,
          socketErrors,
          errorRate: round((non2xx + socketErrors) / Math.max(1, responses + socketErrors), 4),
          statuses,
        })
      },
    )
    instance.on('response', (_client: unknown, status: number, _bytes: number, ms: number) => {
      statuses[status] = (statuses[status] ?? 0) + 1
      latencies.push(ms)
    })
    instance.on('reqError', () => {
      socketErrors++
    })
  })
}

async function run(): Promise<Record<string, unknown>> {
  const load0 = loadavg()
  const started = performance.now()
  log(`bench:load — ${DURATION}s mixed load, ${POLLS} long polls held, then ${CEILING_DURATION}s of GET /healthz`)
  const [databaseUrl, redisUrl] = await Promise.all([freshDatabase('bench_load'), privateRedis()])
  const server = await startServer({ DATABASE_URL: databaseUrl, REDIS_URL: redisUrl, REALTIME_HEARTBEAT_MS: '30000' })
  log(`server pid ${server.pid} at ${server.url}`)
  const http = new Http(server.url)
  const ids = new Identities(databaseUrl, http)
  const orgs = await ids.orgs(ORGS, USERS_PER_ORG, ORGS)
  await ids.close()
  const users = orgs.flatMap((o) => o.users)

  // Private rooms of ROOM_SIZE members each, seeded with messages by their members.
  const plans = orgs.flatMap((org) =>
    Array.from({ length: ROOMS_PER_ORG }, (_, r) =>
      Array.from({ length: Math.min(ROOM_SIZE, org.users.length) }, (_, k) => org.users[(r * ROOM_SIZE + k) % org.users.length]!),
    ),
  )
  const rooms: Room[] = await pool(plans, 8, async (members, i) => {
    const [creator, ...others] = members
    const { roomId } = await http.ok('POST', '/api/rooms', {
      token: creator!.token,
      body: { name: `load ${i}`, visibility: 'private' },
    })
    for (const m of others)
      await http.ok('POST', `/api/rooms/${roomId}/members`, { token: creator!.token, body: { userId: m.userId } })
    return { roomId, members, messages: [] }
  })
  await pool(
    rooms.flatMap((room) =>
      Array.from({ length: SEED_MESSAGES }, (_, i) => ({ room, author: room.members[i % room.members.length]! })),
    ),
    16,
    async ({ room, author }, i) => {
      const { messageId } = await http.ok('POST', `/api/rooms/${room.roomId}/messages`, {
        token: author.token,
        body: { text: `seed ${i}` },
      })
      room.messages.push({ messageId, author })
    },
  )
  log(
    `setup: ${users.length} users, ${rooms.length} rooms, ${rooms.length * SEED_MESSAGES} messages in ${round((performance.now() - started) / 1000)}s`,
  )

  // Long polls held in the background, spread over every user (at most 20 each), re-polled as they answer.
  const queues = await pool(
    Array.from({ length: POLLS }, (_, i) => users[i % users.length]!),
    16,
    async (user) => {
      const r = await http.ok('POST', '/realtime/register', { token: user.token, body: {} })
      return { user, queueId: r.queueId as string, lastEventId: r.lastEventId as string, req: null as null | { destroy(): void } }
    },
  )
  let polling = true
  const polls = { answered: 0, events: 0, non2xx: 0, socketErrors: 0 }
  const pollLoops = queues.map(async (q) => {
    while (polling) {
      try {
        const r = await http.request('GET', `/realtime/events?queueId=${q.queueId}&lastEventId=${q.lastEventId}`, {
          token: q.user.token,
          onRequest: (req) => (q.req = req),
        })
        q.req = null
        polls.answered++
        if (r.status !== 200) {
          polls.non2xx++
          await sleep(100)
          continue
        }
        const events = (r.body.events as { id?: string; type: string }[]).filter((e) => e.type !== 'heartbeat')
        polls.events += events.length
        if (events.length) q.lastEventId = events.at(-1)!.id!
      } catch {
        if (!polling) return
        polls.socketErrors++
        await sleep(100)
      }
    }
  })

  const memberRoom = () => {
    const room = pick(rooms)
    return { room, member: pick(room.members) }
  }
  let posted = 0
  const kinds: Kind[] = [
    { name: 'listRooms', connections: 4, request: () => ({ method: 'GET', path: '/api/rooms', token: pick(users).token }) },
    {
      name: 'timeline',
      connections: 4,
      request: () => {
        const { room, member } = memberRoom()
        return { method: 'GET', path: `/api/rooms/${room.roomId}/messages?limit=50`, token: member.token }
      },
    },
    {
      name: 'post',
      connections: 4,
      request: () => {
        const { room, member } = memberRoom()
        return {
          method: 'POST',
          path: `/api/rooms/${room.roomId}/messages`,
          token: member.token,
          body: { text: `load ${posted++}` },
        }
      },
    },
    {
      name: 'edit',
      connections: 2,
      request: () => {
        const m = pick(pick(rooms).messages)
        return {
          method: 'PATCH',
          path: `/api/messages/${m.messageId}`,
          token: m.author.token,
          body: { text: `edited ${Math.random()}` },
        }
      },
    },
    {
      name: 'react',
      connections: 2,
      request: () => {
        const { room, member } = memberRoom()
        const m = pick(room.messages)
        return { method: 'PUT', path: `/api/messages/${m.messageId}/reactions/${pick(EMOJI)}`, token: member.token }
      },
    },
  ]
  const connections = kinds.reduce((a, k) => a + k.connections, 0)
  log(
    `mixed: ${kinds.map((k) => `${k.name}×${k.connections}`).join(' ')} (${connections} connections) + ${POLLS} long polls, ${DURATION}s...`,
  )
  const all: number[] = []
  const perKindLatencies = kinds.map(() => [] as number[])
  const ticker = setInterval(
    () => log(`  ${perKindLatencies.reduce((a, l) => a + l.length, 0)} responses, ${polls.answered} polls answered`),
    5_000,
  )
  const rssBefore = server.rssBytes()
  const stopSampling = sampleMetrics(server.url, {
    dbPoolWaiting: 'workspace_db_pool_connections{pool="api",state="waiting"}',
    eventStorePoolWaiting: 'workspace_db_pool_connections{pool="events",state="waiting"}',
    eventLoopDelayP99Seconds: 'workspace_event_loop_delay_seconds{quantile="0.99"}',
  })
  const cpu0 = { server: cpuSeconds(server.pid), machine: machineCpu() }
  const polls0 = { ...polls }
  const results = await Promise.all(kinds.map((k, i) => drive(server.url, k, DURATION, perKindLatencies[i]!)))
  const cpu1 = { server: cpuSeconds(server.pid), machine: machineCpu() }
  const pollsDuring = {
    answered: polls.answered - polls0.answered,
    events: polls.events - polls0.events,
    non2xx: polls.non2xx - polls0.non2xx,
    socketErrors: polls.socketErrors - polls0.socketErrors,
  }
  const serverMetrics = await stopSampling()
  clearInterval(ticker)
  const rssAfter = server.rssBytes()
  polling = false
  for (const q of queues) q.req?.destroy()
  await Promise.allSettled(pollLoops)
  for (const l of perKindLatencies) all.push(...l)

  const byKind = Object.fromEntries(kinds.map((k, i) => [k.name, { connections: k.connections, ...results[i]! }]))
  const totalResponses = results.reduce((a, r) => a + r.requests - r.socketErrors, 0)
  const totalErrors = results.reduce((a, r) => a + r.non2xx + r.socketErrors, 0)
  const overallLatency = summary(all)
  const overall = {
    rps: round(totalResponses / DURATION, 0),
    p50Ms: overallLatency.p50,
    p99Ms: overallLatency.p99,
    requests: totalResponses + results.reduce((a, r) => a + r.socketErrors, 0),
    errorRate: round(totalErrors / Math.max(1, totalResponses), 4),
  }
  // Long polls: an answer each time events reach a held poll, and the next poll at once; their latency is
  // how long they were held, so only throughput and errors are theirs.
  const longPolls = {
    held: POLLS,
    rps: round(pollsDuring.answered / DURATION, 0),
    eventsPerSecond: round(pollsDuring.events / DURATION, 0),
    non2xx: pollsDuring.non2xx,
    socketErrors: pollsDuring.socketErrors,
    errorRate: round(
      (pollsDuring.non2xx + pollsDuring.socketErrors) / Math.max(1, pollsDuring.answered + pollsDuring.socketErrors),
      4,
    ),
  }
  const withPolls = {
    rps: round((totalResponses + pollsDuring.answered) / DURATION, 0),
    errorRate: round(
      (totalErrors + pollsDuring.non2xx + pollsDuring.socketErrors) /
        Math.max(1, totalResponses + pollsDuring.answered + pollsDuring.socketErrors),
      4,
    ),
  }
  for (const [name, r] of Object.entries(byKind))
    log(`  ${name}: ${r.rps} req/s, p50 ${r.p50Ms} ms, p99 ${r.p99Ms} ms, errors ${r.errorRate}`)
  log(`  longPolls: ${longPolls.rps} answers/s (${longPolls.eventsPerSecond} events/s), errors ${longPolls.errorRate}`)
  log(`mixed: ${overall.rps} req/s, p50 ${overall.p50Ms} ms, p99 ${overall.p99Ms} ms, error rate ${overall.errorRate}`)
  log(`mixed with the polls' requests: ${withPolls.rps} req/s, error rate ${withPolls.errorRate}`)

  // The ceiling: a bare route on the same server, as many connections.
  const ceilingLatencies: number[] = []
  const ceiling = await drive(
    server.url,
    { name: 'healthz', connections, request: () => ({ method: 'GET', path: '/healthz' }) },
    CEILING_DURATION,
    ceilingLatencies,
  )
  log(`ceiling: GET /healthz ${ceiling.rps} req/s, p50 ${ceiling.p50Ms} ms, p99 ${ceiling.p99Ms} ms`)
  http.close()

  return {
    bench: 'load',
    durationSeconds: DURATION,
    setup: {
      users: users.length,
      rooms: rooms.length,
      seedMessages: rooms.length * SEED_MESSAGES,
      connections,
      longPolls: POLLS,
    },
    overall: { ...overall, withLongPolls: withPolls },
    byKind: { ...byKind, longPolls },
    ceiling: {
      route: 'GET /healthz',
      connections,
      rps: ceiling.rps,
      p50Ms: ceiling.p50Ms,
      p99Ms: ceiling.p99Ms,
      errorRate: ceiling.errorRate,
    },
    ratios: {
      mixedVsCeilingRps: round(overall.rps / ceiling.rps, 3),
      mixedWithPollsVsCeilingRps: round(withPolls.rps / ceiling.rps, 3),
      mixedP99VsCeilingP99: round(overall.p99Ms / ceiling.p99Ms, 1),
    },
    server: {
      rssBeforeMiB: mib(rssBefore),
      rssAfterMiB: mib(rssAfter),
      cpuCores: round((cpu1.server - cpu0.server) / DURATION, 2),
      machineCpuBusy: round((cpu1.machine.busy - cpu0.machine.busy) / (cpu1.machine.total - cpu0.machine.total), 2),
      metrics: serverMetrics,
    },
    machine: { cores: availableParallelism(), loadAverage1mAtStart: round(load0[0]!, 2) },
    seconds: round((performance.now() - started) / 1000, 0),
  }
}

await main(run)
