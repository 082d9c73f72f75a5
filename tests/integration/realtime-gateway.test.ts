import { setTimeout as sleep } from 'node:timers/promises'
import v8 from 'node:v8'
import vm from 'node:vm'
import { v7 as uuid } from 'uuid'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { formatPosition, type Position } from '../../adapters/event-store.ts'
import { STREAM_START_ID, type UserStreamEntry, type UserStreams } from '../../adapters/user-streams.ts'
import {
  BadEventQueueIdError,
  type GatewayOptions,
  type PollResult,
  RealtimeGateway,
  TooManyPollsError,
} from '../../realtime/gateway.ts'
import { type HarnessFactory, postgresHarness, redisHarness, type UserStreamsHarness } from '../support/user-streams.ts'

let nextPrepare = 5_000
const lastIds = new Map<string, string>()
const entry = (userId: string, type = 'message.created', data: unknown = {}): UserStreamEntry => {
  nextPrepare += 1
  const id = `${nextPrepare}-${nextPrepare}`
  const previousId = lastIds.get(userId) ?? STREAM_START_ID
  lastIds.set(userId, id)
  return { userId, id, previousId, type, position: nextPrepare, occurredAt: new Date().toISOString(), data }
}

/** Whether a promise is still pending after `ms`. */
async function pendingAfter(p: Promise<unknown>, ms: number): Promise<boolean> {
  const marker = Symbol('pending')
  return (
    (await Promise.race([
      p.then(
        () => null,
        () => null,
      ),
      sleep(ms, marker),
    ])) === marker
  )
}

const ids = (r: PollResult) => (r.type === 'events' ? r.events.map((e) => e.id) : r.type)

describe.each<[string, HarnessFactory]>([
  ['Redis', redisHarness],
  ['Postgres', postgresHarness],
])('realtime gateway over %s', (_name, setup) => {
  let harness: UserStreamsHarness
  let streams: UserStreams
  let gateway: RealtimeGateway
  const gateways: RealtimeGateway[] = []
  const newGateway = (s: UserStreams, options: GatewayOptions = {}) => {
    const g = new RealtimeGateway(s, { heartbeatMs: 10_000, ...options })
    gateways.push(g)
    return g
  }

  beforeAll(async () => {
    harness = await setup()
    streams = harness.create()
    gateway = newGateway(streams)
  })
  afterAll(async () => {
    for (const g of gateways) await g.close()
    await harness?.teardown()
  })

  it('registers at the user’s last event id and position', async () => {
    const user = uuid()
    const fresh = await gateway.register(user)
    expect(fresh).toMatchObject({ lastEventId: STREAM_START_ID, position: 0 })
    const e = entry(user)
    await streams.append([e])
    const later = await gateway.register(user)
    expect(later).toMatchObject({ lastEventId: e.id, position: e.position })
    expect(later.queueId).not.toBe(fresh.queueId)
  })

  it('starts a registration at the later of the fan-out’s checkpoint and the user’s last id, by (transaction, position)', async () => {
    const user = uuid()
    const e = entry(user)
    await streams.append([e])
    const n = BigInt(e.position)
    // A later transaction with a lower position stands after e: the client loads state there and polls after it.
    const after: Position = { transactionId: n + 2n, sequence: n - 2n }
    const q = await newGateway(streams, { fannedOutUpTo: async () => after }).register(user)
    expect(q).toMatchObject({ lastEventId: formatPosition(after), position: Number(n - 2n) })
    const at = (c: bigint, p: bigint, previousId: string): UserStreamEntry => ({
      ...entry(user),
      id: formatPosition({ transactionId: c, sequence: p }),
      previousId,
      position: Number(p),
    })
    const inState = at(n + 1n, n + 5n, e.id)
    const next = at(n + 3n, n - 3n, inState.id)
    await streams.append([inState, next])
    expect(ids(await gateway.poll({ queueId: q.queueId, userId: user, lastEventId: q.lastEventId, dontBlock: true }))).toEqual([
      next.id,
    ])
    // An earlier transaction with a higher position stands before the stream's last entry: start there.
    const before: Position = { transactionId: n, sequence: n + 9n }
    expect(await newGateway(streams, { fannedOutUpTo: async () => before }).register(user)).toMatchObject({
      lastEventId: next.id,
      position: next.position,
    })
  })

  it('a waiting poll returns when an event is appended for its user, and not for another', async () => {
    const [alice, bob] = [uuid(), uuid()]
    const q = await gateway.register(alice)
    const poll = gateway.poll({ queueId: q.queueId, userId: alice, lastEventId: q.lastEventId })
    expect(await pendingAfter(poll, 150)).toBe(true)
    expect(gateway.heldPolls).toBe(1)
    await streams.append([entry(bob)])
    expect(await pendingAfter(poll, 200)).toBe(true)
    const e = entry(alice, 'message.created', { text: 'hello' })
    const started = Date.now()
    await streams.append([e])
    const result = await poll
    expect(Date.now() - started).toBeLessThan(1_000)
    expect(result).toEqual({
      type: 'events',
      events: [{ id: e.id, type: e.type, position: e.position, occurredAt: e.occurredAt, data: { text: 'hello' } }],
    })
    expect(gateway.heldPolls).toBe(0)
  })

  it('returns what is already there at once, oldest first, after lastEventId', async () => {
    const user = uuid()
    const q = await gateway.register(user)
    const all = [entry(user), entry(user), entry(user)]
    await streams.append(all)
    expect(ids(await gateway.poll({ queueId: q.queueId, userId: user, lastEventId: q.lastEventId }))).toEqual(
      all.map((e) => e.id),
    )
    expect(ids(await gateway.poll({ queueId: q.queueId, userId: user, lastEventId: all[0]!.id }))).toEqual(
      all.slice(1).map((e) => e.id),
    )
    // The acknowledgement is remembered: without lastEventId a poll continues from it.
    expect(ids(await gateway.poll({ queueId: q.queueId, userId: user, dontBlock: true }))).toEqual(all.slice(1).map((e) => e.id))
    expect(ids(await gateway.poll({ queueId: q.queueId, userId: user, lastEventId: all[2]!.id, dontBlock: true }))).toEqual([])
    expect(ids(await gateway.poll({ queueId: q.queueId, userId: user, dontBlock: true }))).toEqual([])
  })

  it('answers with a heartbeat after the interval', async () => {
    const fast = newGateway(streams, { heartbeatMs: 300 })
    const user = uuid()
    const q = await fast.register(user)
    const started = Date.now()
    expect(await fast.poll({ queueId: q.queueId, userId: user, lastEventId: q.lastEventId })).toEqual({ type: 'heartbeat' })
    expect(Date.now() - started).toBeGreaterThanOrEqual(280)
    expect(Date.now() - started).toBeLessThan(2_000)
    expect(fast.heldPolls).toBe(0)
  })

  it('dontBlock answers at once', async () => {
    const user = uuid()
    const q = await gateway.register(user)
    const started = Date.now()
    expect(await gateway.poll({ queueId: q.queueId, userId: user, lastEventId: q.lastEventId, dontBlock: true })).toEqual({
      type: 'events',
      events: [],
    })
    expect(Date.now() - started).toBeLessThan(1_000)
  })

  it('a client disconnect releases the poll at once', async () => {
    const user = uuid()
    const q = await gateway.register(user)
    const controller = new AbortController()
    const poll = gateway.poll({ queueId: q.queueId, userId: user, lastEventId: q.lastEventId, signal: controller.signal })
    await sleep(100)
    expect(gateway.heldPolls).toBe(1)
    const started = Date.now()
    controller.abort()
    await expect(poll).rejects.toMatchObject({ name: 'AbortError' })
    expect(Date.now() - started).toBeLessThan(100)
    expect(gateway.heldPolls).toBe(0)
    // An already aborted signal never waits.
    await expect(
      gateway.poll({ queueId: q.queueId, userId: user, lastEventId: q.lastEventId, signal: AbortSignal.abort() }),
    ).rejects.toMatchObject({ name: 'AbortError' })
  })

  it('an expired queue is BAD_EVENT_QUEUE_ID; registering again works', async () => {
    const short = harness.create({ queueTtlMs: 300 })
    const g = newGateway(short)
    const user = uuid()
    const q = await g.register(user)
    await sleep(600)
    const err = await g.poll({ queueId: q.queueId, userId: user, lastEventId: q.lastEventId }).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(BadEventQueueIdError)
    expect(err).toMatchObject({ code: 'BAD_EVENT_QUEUE_ID', status: 400 })
    const again = await g.register(user)
    const poll = g.poll({ queueId: again.queueId, userId: user, lastEventId: again.lastEventId })
    const e = entry(user)
    await sleep(50)
    await short.append([e])
    expect(ids(await poll)).toEqual([e.id])
  })

  it('unknown queues, and queues of someone else, are BAD_EVENT_QUEUE_ID', async () => {
    const [alice, mallory] = [uuid(), uuid()]
    const q = await gateway.register(alice)
    await expect(gateway.poll({ queueId: uuid(), userId: alice })).rejects.toMatchObject({ code: 'BAD_EVENT_QUEUE_ID' })
    await expect(gateway.poll({ queueId: 'garbage', userId: alice })).rejects.toMatchObject({ code: 'BAD_EVENT_QUEUE_ID' })
    await expect(gateway.poll({ queueId: q.queueId, userId: mallory, dontBlock: true })).rejects.toMatchObject({
      code: 'BAD_EVENT_QUEUE_ID',
    })
    await expect(gateway.drop(q.queueId, mallory)).rejects.toMatchObject({ code: 'BAD_EVENT_QUEUE_ID' })
    await expect(gateway.poll({ queueId: q.queueId, userId: alice, lastEventId: 'x' })).rejects.toMatchObject({
      code: 'INVALID_INPUT',
    })
  })

  it('a poll or drop with another user’s queue id leaves that queue’s acknowledged id and expiry as they were', async () => {
    const [alice, mallory] = [uuid(), uuid()]
    const e = entry(alice)
    await streams.append([e])
    const q = await gateway.register(alice)
    // Long enough that a refreshed expiry is a later one at millisecond resolution.
    await sleep(20)
    const before = await harness.storedQueue(q.queueId)
    expect(before).toEqual({ lastAckedId: e.id, expiry: expect.any(Number) })
    await expect(
      gateway.poll({ queueId: q.queueId, userId: mallory, lastEventId: STREAM_START_ID, dontBlock: true }),
    ).rejects.toMatchObject({ code: 'BAD_EVENT_QUEUE_ID' })
    await expect(gateway.poll({ queueId: q.queueId, userId: mallory, lastEventId: '1-1' })).rejects.toMatchObject({
      code: 'BAD_EVENT_QUEUE_ID',
    })
    await expect(gateway.drop(q.queueId, mallory)).rejects.toMatchObject({ code: 'BAD_EVENT_QUEUE_ID' })
    expect(await harness.storedQueue(q.queueId)).toEqual(before)
    expect(await gateway.poll({ queueId: q.queueId, userId: alice, dontBlock: true })).toEqual({ type: 'events', events: [] })
  })

  it('drop ends the queue, and a poll waiting on it', async () => {
    const user = uuid()
    const q = await gateway.register(user)
    const poll = gateway.poll({ queueId: q.queueId, userId: user, lastEventId: q.lastEventId })
    await sleep(100)
    await gateway.drop(q.queueId, user)
    await expect(poll).rejects.toMatchObject({ code: 'BAD_EVENT_QUEUE_ID' })
    await expect(gateway.poll({ queueId: q.queueId, userId: user, dontBlock: true })).rejects.toMatchObject({
      code: 'BAD_EVENT_QUEUE_ID',
    })
  })

  it('delivers only the queue’s event types, and keeps waiting through others', async () => {
    const user = uuid()
    const q = await gateway.register(user, ['message.created', 'message.deleted'])
    const poll = gateway.poll({ queueId: q.queueId, userId: user, lastEventId: q.lastEventId })
    await sleep(50)
    await streams.append([entry(user, 'message.updated'), entry(user, 'workspace.room_changed')])
    expect(await pendingAfter(poll, 200)).toBe(true)
    const wanted = [entry(user, 'message.created'), entry(user, 'message.reaction_changed'), entry(user, 'message.deleted')]
    await streams.append(wanted)
    expect(ids(await poll)).toEqual([wanted[0]!.id, wanted[2]!.id])
    // Another queue of the same user without a filter sees everything.
    const all = await gateway.register(user)
    expect(all.lastEventId).toBe(wanted[2]!.id)
  })

  it('pages through many filtered-out events', async () => {
    const g = newGateway(streams, { maxEventsPerPoll: 5 })
    const user = uuid()
    const q = await g.register(user, ['message.created'])
    const noise = Array.from({ length: 23 }, () => entry(user, 'message.updated'))
    const signal = entry(user, 'message.created')
    await streams.append([...noise, signal])
    expect(ids(await g.poll({ queueId: q.queueId, userId: user, lastEventId: q.lastEventId, dontBlock: true }))).toEqual([
      signal.id,
    ])
    expect(ids(await g.poll({ queueId: q.queueId, userId: user, lastEventId: q.lastEventId }))).toEqual([signal.id])
  })

  it('bounds the polls one user holds; a new poll on the same queue replaces the old one', async () => {
    const g = newGateway(streams, { maxPollsPerUser: 2 })
    const user = uuid()
    const [q1, q2, q3] = [await g.register(user), await g.register(user), await g.register(user)]
    const p1 = g.poll({ queueId: q1.queueId, userId: user, lastEventId: q1.lastEventId })
    const p2 = g.poll({ queueId: q2.queueId, userId: user, lastEventId: q2.lastEventId })
    await sleep(100)
    const err = await g.poll({ queueId: q3.queueId, userId: user, lastEventId: q3.lastEventId }).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(TooManyPollsError)
    expect(err).toMatchObject({ code: 'TOO_MANY_POLLS', status: 429 })
    // The same queue again: the older poll answers (heartbeat), the newer one waits.
    const p1b = g.poll({ queueId: q1.queueId, userId: user, lastEventId: q1.lastEventId })
    expect(await p1).toEqual({ type: 'heartbeat' })
    expect(await pendingAfter(p1b, 100)).toBe(true)
    const e = entry(user)
    await streams.append([e])
    expect(ids(await p1b)).toEqual([e.id])
    expect(ids(await p2)).toEqual([e.id])
    expect(g.heldPolls).toBe(0)
  })

  it('a reader whose events were trimmed away must register again', async () => {
    const small = harness.create({ maxLen: 10 })
    const g = newGateway(small)
    const user = uuid()
    const q = await g.register(user)
    for (let i = 0; i < 5; i++) await small.append(Array.from({ length: 50 }, () => entry(user)))
    await expect(g.poll({ queueId: q.queueId, userId: user, lastEventId: q.lastEventId })).rejects.toMatchObject({
      code: 'BAD_EVENT_QUEUE_ID',
    })
    const again = await g.register(user)
    expect(await g.poll({ queueId: again.queueId, userId: user, lastEventId: again.lastEventId, dontBlock: true })).toEqual({
      type: 'events',
      events: [],
    })
  })

  it('many users waiting at once each get only their own events', async () => {
    const users = Array.from({ length: 50 }, () => uuid())
    const queues = await Promise.all(users.map((u) => gateway.register(u)))
    const polls = users.map((u, i) =>
      gateway.poll({ queueId: queues[i]!.queueId, userId: u, lastEventId: queues[i]!.lastEventId }),
    )
    await sleep(200)
    expect(gateway.heldPolls).toBe(50)
    const batch = users.map((u) => entry(u, 'message.created', { for: u }))
    await streams.append(batch)
    const results = await Promise.all(polls)
    results.forEach((r, i) => {
      expect(ids(r)).toEqual([batch[i]!.id])
    })
  })

  it('wakeups resume after the wakeup connection is killed', async () => {
    const own = harness.create()
    const g = newGateway(own)
    const user = uuid()
    const q = await g.register(user)
    const waiting = g.poll({ queueId: q.queueId, userId: user, lastEventId: q.lastEventId })
    await sleep(100)
    expect(await harness.killWakeConnections()).toBeGreaterThanOrEqual(1)
    // The poll held across the break is still woken by the next append.
    await sleep(500)
    const e1 = entry(user)
    const started = Date.now()
    await own.append([e1])
    expect(ids(await waiting)).toEqual([e1.id])
    expect(Date.now() - started).toBeLessThan(2_000)
    // And so is a poll that starts after it.
    const next = g.poll({ queueId: q.queueId, userId: user, lastEventId: e1.id })
    await sleep(50)
    const e2 = entry(user)
    await own.append([e2])
    expect(ids(await next)).toEqual([e2.id])
  })

  it('a poll with nothing waiting for it makes no round trip to the backend', async () => {
    const calls: string[] = []
    // Every call the gateway makes to the port, by name.
    const counted = new Proxy(streams, {
      get(target, name, receiver) {
        const value = Reflect.get(target, name, receiver)
        if (typeof value !== 'function') return value
        return (...args: unknown[]) => {
          calls.push(String(name))
          return value.apply(target, args)
        }
      },
    })
    const g = newGateway(counted)
    const user = uuid()
    const q = await g.register(user)
    const first = g.poll({ queueId: q.queueId, userId: user, lastEventId: q.lastEventId })
    await sleep(100)
    const e1 = entry(user)
    await streams.append([e1])
    expect(ids(await first)).toEqual([e1.id])
    calls.length = 0
    // The queue is known here, and so is the newest id in the user's stream: the next poll just waits.
    const second = g.poll({ queueId: q.queueId, userId: user, lastEventId: e1.id })
    expect(await pendingAfter(second, 150)).toBe(true)
    expect(await g.poll({ queueId: q.queueId, userId: user, lastEventId: e1.id, dontBlock: true })).toEqual({
      type: 'events',
      events: [],
    })
    expect(calls).toEqual([])
    const e2 = entry(user)
    await streams.append([e2])
    expect(ids(await second)).toEqual([e2.id])
    expect(calls).toEqual(['read'])
  })

  it('keeps a polled queue alive in the backend, though it touches it only now and then', async () => {
    const short = harness.create({ queueTtlMs: 400 })
    const g = newGateway(short)
    const user = uuid()
    const q = await g.register(user)
    const e = entry(user)
    await short.append([e])
    for (let i = 0; i < 8; i++) {
      await sleep(150)
      expect(await g.poll({ queueId: q.queueId, userId: user, lastEventId: e.id, dontBlock: true })).toEqual({
        type: 'events',
        events: [],
      })
    }
    // Stored with the acknowledgement it was last polled with, and an expiry still ahead.
    expect(await harness.storedQueue(q.queueId)).toMatchObject({ lastAckedId: e.id })
    expect(await short.getQueue(q.queueId)).toMatchObject({ userId: user, lastAckedId: e.id })
  })

  it('a queue registered through another process is polled here, and stays its user’s', async () => {
    const [alice, mallory] = [uuid(), uuid()]
    const q = await newGateway(streams).register(alice)
    const here = newGateway(streams)
    await expect(here.poll({ queueId: q.queueId, userId: mallory, dontBlock: true })).rejects.toMatchObject({
      code: 'BAD_EVENT_QUEUE_ID',
    })
    const poll = here.poll({ queueId: q.queueId, userId: alice, lastEventId: q.lastEventId })
    await sleep(50)
    const e = entry(alice)
    await streams.append([e])
    expect(ids(await poll)).toEqual([e.id])
    await expect(here.poll({ queueId: q.queueId, userId: mallory, dontBlock: true })).rejects.toMatchObject({
      code: 'BAD_EVENT_QUEUE_ID',
    })
  })

  it('an event appended during the break is delivered, not slept through', async () => {
    const own = harness.create()
    const g = newGateway(own)
    const user = uuid()
    const q = await g.register(user)
    const waiting = g.poll({ queueId: q.queueId, userId: user, lastEventId: q.lastEventId })
    await sleep(100)
    await harness.killWakeConnections()
    const e = entry(user)
    await own.append([e])
    const started = Date.now()
    expect(ids(await waiting)).toEqual([e.id])
    expect(Date.now() - started).toBeLessThan(5_000)
  })
})

describe('realtime gateway at scale (Redis)', () => {
  let harness: UserStreamsHarness
  beforeAll(async () => {
    harness = await redisHarness()
  })
  afterAll(async () => {
    await harness?.teardown()
  })

  it('holds 10,000 polls on one subscriber connection in little memory', { timeout: 120_000 }, async () => {
    const streams = harness.create()
    const g = new RealtimeGateway(streams, { heartbeatMs: 60_000 })
    const users = Array.from({ length: 1_000 }, () => uuid())
    const queues: { userId: string; queueId: string; lastEventId: string }[] = []
    for (let i = 0; i < 10; i++) {
      const batch = await Promise.all(users.map(async (userId) => ({ userId, ...(await g.register(userId)) })))
      queues.push(...batch)
    }
    // A collection before each measurement, so the difference is what the held polls keep alive.
    v8.setFlagsFromString('--expose-gc')
    const gc = vm.runInNewContext('gc') as () => void
    gc()
    const before = process.memoryUsage()
    const polls: Promise<PollResult>[] = []
    for (let i = 0; i < queues.length; i += 1_000) {
      for (const q of queues.slice(i, i + 1_000)) polls.push(g.poll(q))
      await sleep(20)
    }
    const until = Date.now() + 60_000
    while (g.heldPolls < 10_000 && Date.now() < until) await sleep(50)
    expect(g.heldPolls).toBe(10_000)
    await sleep(200)
    gc()
    const after = process.memoryUsage()
    const perPollBytes = (after.heapUsed - before.heapUsed) / 10_000
    console.log(
      `[realtime] 10,000 held polls: heap +${((after.heapUsed - before.heapUsed) / 2 ** 20).toFixed(1)} MiB ` +
        `(~${Math.round(perPollBytes)} B per poll), RSS ${(after.rss / 2 ** 20).toFixed(0)} MiB`,
    )
    // 10,000 polls must stay far below 1 GiB: allow 5 KiB each (includes the port's per-user state).
    expect(perPollBytes).toBeLessThan(5 * 1024)

    // One event wakes exactly that user's ten polls.
    const e = entry(users[0]!)
    await streams.append([e])
    const first = await Promise.all(polls.filter((_, i) => queues[i]!.userId === users[0]))
    expect(first.map(ids)).toEqual(Array.from({ length: 10 }, () => [e.id]))
    expect(g.heldPolls).toBe(9_990)

    await g.close()
    const rest = await Promise.all(polls)
    expect(rest.filter((r) => r.type === 'heartbeat')).toHaveLength(9_990)
    expect(g.heldPolls).toBe(0)
  })
})

describe('realtime gateway with a stalled wakeup subscription', () => {
  // The backend is unreachable for subscriptions (e.g. Redis down): polls still end on time.
  const queueId = uuid()
  const userId = uuid()
  const stalled: UserStreams = {
    queueTtlMs: 600_000,
    append: async () => ({ appended: 0, wokenUsers: [] }),
    read: async () => ({ events: [], truncated: false }),
    lastId: async () => STREAM_START_ID,
    remove: async () => {},
    onWake: () => new Promise(() => {}),
    registerQueue: async () => ({ queueId, userId, eventTypes: null, lastAckedId: STREAM_START_ID, lastSeenAt: Date.now() }),
    getQueue: async () => null,
    touchQueue: async () => ({ queueId, userId, eventTypes: null, lastAckedId: STREAM_START_ID, lastSeenAt: Date.now() }),
    dropQueue: async () => false,
    hasLiveQueue: async () => false,
    close: async () => {},
  }

  it('answers with the heartbeat', async () => {
    const g = new RealtimeGateway(stalled, { heartbeatMs: 200 })
    expect(await g.poll({ queueId, userId })).toEqual({ type: 'heartbeat' })
    expect(g.heldPolls).toBe(0)
  })

  it('releases on disconnect', async () => {
    const g = new RealtimeGateway(stalled, { heartbeatMs: 60_000 })
    const controller = new AbortController()
    const poll = g.poll({ queueId, userId, signal: controller.signal })
    await sleep(50)
    controller.abort()
    await expect(poll).rejects.toMatchObject({ name: 'AbortError' })
    expect(g.heldPolls).toBe(0)
  })
})
