import { setTimeout as sleep } from 'node:timers/promises'
import { v7 as uuid } from 'uuid'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { STREAM_START_ID, type UserStreamEntry, type UserStreams } from '../../adapters/user-streams.ts'
import type { HarnessFactory, UserStreamsHarness } from '../support/user-streams.ts'

let nextPrepare = 1_000
const lastIds = new Map<string, string>()
/** Entries at increasing global positions (transaction id, sequence), each naming the user's one before, like the fan-out. */
const entry = (userId: string, type = 'message.created', data: unknown = { n: nextPrepare }): UserStreamEntry => {
  nextPrepare += 1
  const id = `${nextPrepare * 10}-${nextPrepare}`
  const previousId = lastIds.get(userId) ?? STREAM_START_ID
  lastIds.set(userId, id)
  return { userId, id, previousId, type, position: nextPrepare, occurredAt: new Date().toISOString(), data }
}

const entries = (userId: string, n: number) => Array.from({ length: n }, () => entry(userId))

async function eventually(check: () => boolean, timeoutMs = 5_000): Promise<void> {
  const until = Date.now() + timeoutMs
  while (!check()) {
    if (Date.now() > until) throw new Error('condition not met in time')
    await sleep(10)
  }
}

/** The one conformance suite every UserStreams adapter passes. */
export function userStreamsContract(name: string, setup: HarnessFactory) {
  describe(`UserStreams contract: ${name}`, () => {
    let harness: UserStreamsHarness
    let streams: UserStreams
    beforeAll(async () => {
      harness = await setup()
      streams = harness.create()
    })
    afterAll(async () => {
      await harness?.teardown()
    })

    describe('append and read', () => {
      it('reads what was appended, oldest first, with every field', async () => {
        const user = uuid()
        const [a, b, c] = [entry(user, 'message.created', { text: 'hi', nested: [1, { x: null }] }), entry(user), entry(user)]
        // Out of order within a batch: each user's entries are ordered by id.
        const result = await streams.append([c!, a!, b!])
        expect(result).toEqual({ appended: 3, wokenUsers: [user] })
        const { events, truncated } = await streams.read(user, STREAM_START_ID, 100)
        expect(truncated).toBe(false)
        expect(events).toEqual([a, b, c].map(({ userId: _, previousId: __, ...e }) => e))
      })

      it('reads strictly after an id, at most limit entries', async () => {
        const user = uuid()
        const all = entries(user, 10)
        await streams.append(all)
        const page = await streams.read(user, all[2]!.id, 4)
        expect(page.events.map((e) => e.id)).toEqual(all.slice(3, 7).map((e) => e.id))
        expect((await streams.read(user, all[9]!.id, 10)).events).toEqual([])
      })

      it('keeps users apart, also within one batch', async () => {
        const [u1, u2, u3] = [uuid(), uuid(), uuid()]
        const batch = [entry(u1), entry(u2), entry(u1), entry(u2), entry(u2)]
        const result = await streams.append(batch)
        expect(result.appended).toBe(5)
        expect([...result.wokenUsers].sort()).toEqual([u1, u2].sort())
        expect((await streams.read(u1, STREAM_START_ID, 10)).events.map((e) => e.id)).toEqual([batch[0]!.id, batch[2]!.id])
        expect((await streams.read(u2, STREAM_START_ID, 10)).events).toHaveLength(3)
        expect((await streams.read(u3, STREAM_START_ID, 10)).events).toEqual([])
      })

      it('knows the last id of a stream', async () => {
        const user = uuid()
        expect(await streams.lastId(user)).toBe(STREAM_START_ID)
        const all = entries(user, 3)
        await streams.append(all)
        expect(await streams.lastId(user)).toBe(all[2]!.id)
      })

      it('an empty batch does nothing', async () => {
        expect(await streams.append([])).toEqual({ appended: 0, wokenUsers: [] })
      })

      it('refuses malformed ids, and previous ids not before their entry', async () => {
        await expect(streams.append([{ ...entry(uuid()), id: '12' }])).rejects.toThrow(/invalid/)
        await expect(streams.read(uuid(), 'nope', 10)).rejects.toThrow(/invalid/)
        const e = entry(uuid())
        await expect(streams.append([{ ...e, previousId: e.id }])).rejects.toThrow(/invalid previous/)
        await expect(streams.append([{ ...e, previousId: 'x' }])).rejects.toThrow(/invalid previous/)
      })
    })

    describe('idempotence', () => {
      it('a replayed batch adds nothing', async () => {
        const [u1, u2] = [uuid(), uuid()]
        const batch = [entry(u1), entry(u2), entry(u1)]
        await streams.append(batch)
        expect(await streams.append(batch)).toEqual({ appended: 0, wokenUsers: [] })
        expect((await streams.read(u1, STREAM_START_ID, 10)).events).toHaveLength(2)
        expect((await streams.read(u2, STREAM_START_ID, 10)).events).toHaveLength(1)
      })

      it('a batch replayed in part adds only what is new', async () => {
        const user = uuid()
        const first = entries(user, 3)
        await streams.append(first)
        const more = entries(user, 2)
        expect(await streams.append([...first.slice(1), ...more])).toEqual({ appended: 2, wokenUsers: [user] })
        expect((await streams.read(user, STREAM_START_ID, 10)).events.map((e) => e.id)).toEqual(
          [...first, ...more].map((e) => e.id),
        )
      })

      it('an id at or below the last one counts as already delivered', async () => {
        const user = uuid()
        const older = entry(user)
        const newer = entry(user)
        await streams.append([newer])
        expect((await streams.append([older])).appended).toBe(0)
        expect((await streams.read(user, STREAM_START_ID, 10)).events.map((e) => e.id)).toEqual([newer.id])
      })

      it('repeated ids within one batch are appended once', async () => {
        const user = uuid()
        const e = entry(user)
        expect((await streams.append([e, e, { ...e }])).appended).toBe(1)
      })

      it('orders (transactionId, sequence) ids numerically, transaction id first', async () => {
        const user = uuid()
        const ids = ['9-500', '10-2', '10-11', '100-1']
        await streams.append(
          ids.map((id, i) => ({
            userId: user,
            id,
            previousId: ids[i - 1] ?? STREAM_START_ID,
            type: 't',
            position: i,
            occurredAt: new Date(0).toISOString(),
            data: i,
          })),
        )
        expect((await streams.read(user, STREAM_START_ID, 10)).events.map((e) => e.id)).toEqual(ids)
        expect((await streams.read(user, '10-2', 10)).events.map((e) => e.id)).toEqual(['10-11', '100-1'])
      })
    })

    describe('trimming', () => {
      it('keeps about maxLen newest entries per user and reports what a reader missed', async () => {
        const small = harness.create({ maxLen: 20 })
        const user = uuid()
        const all: UserStreamEntry[] = []
        for (let i = 0; i < 10; i++) {
          const batch = entries(user, 30)
          all.push(...batch)
          await small.append(batch)
        }
        const { events, truncated } = await small.read(user, STREAM_START_ID, 1_000)
        // Approximate, as Redis MAXLEN ~ (whole nodes of up to 100 entries): never fewer than maxLen.
        expect(events.length).toBeGreaterThanOrEqual(20)
        expect(events.length).toBeLessThanOrEqual(150)
        expect(events.map((e) => e.id)).toEqual(all.slice(-events.length).map((e) => e.id))
        expect(truncated).toBe(true)
        // One standing on a trimmed entry missed the ones after it, unless it is the last trimmed one.
        expect((await small.read(user, all[0]!.id, 1_000)).truncated).toBe(true)
        expect((await small.read(user, all.at(-events.length - 1)!.id, 1_000)).truncated).toBe(false)
        // A reader that stands within the retained entries missed nothing.
        const recent = await small.read(user, events[0]!.id, 1_000)
        expect(recent.truncated).toBe(false)
        expect(recent.events).toHaveLength(events.length - 1)
        expect(await small.lastId(user)).toBe(all.at(-1)!.id)
        // Another user's stream is untouched.
        const other = uuid()
        await small.append(entries(other, 5))
        expect(await small.read(other, STREAM_START_ID, 100)).toMatchObject({ truncated: false })
      })
    })

    describe('removal (erasure)', () => {
      it('removes the named entries and readers standing before them see the gap as truncated', async () => {
        const user = uuid()
        const all = entries(user, 5)
        await streams.append(all)
        await streams.remove(user, [all[1]!.id, all[2]!.id])
        await streams.remove(user, [all[1]!.id])
        const { events, truncated } = await streams.read(user, STREAM_START_ID, 100)
        expect(events.map((e) => e.id)).toEqual([all[0]!.id, all[3]!.id, all[4]!.id])
        expect(truncated).toBe(true)
        expect((await streams.read(user, all[0]!.id, 100)).truncated).toBe(true)
        expect(await streams.read(user, all[3]!.id, 100)).toMatchObject({ truncated: false, events: [{ id: all[4]!.id }] })
        expect(await streams.lastId(user)).toBe(all[4]!.id)
      })
    })

    describe('wakeups', () => {
      it('fire once per append batch per touched user, and not for others', async () => {
        const [u1, u2, u3] = [uuid(), uuid(), uuid()]
        const counts = { [u1]: 0, [u2]: 0, [u3]: 0 }
        const offs = await Promise.all([u1, u2, u3].map((u) => streams.onWake(u, () => counts[u]!++)))
        await streams.append([entry(u1), entry(u2), entry(u1), entry(u1)])
        await eventually(() => counts[u1] === 1 && counts[u2] === 1)
        await sleep(150)
        expect(counts).toEqual({ [u1]: 1, [u2]: 1, [u3]: 0 })
        for (const off of offs) off()
      })

      it('reach every callback of the user, in every instance', async () => {
        const user = uuid()
        const other = harness.create()
        let [a, b, c] = [0, 0, 0]
        const offs = [
          await streams.onWake(user, () => a++),
          await streams.onWake(user, () => b++),
          await other.onWake(user, () => c++),
        ]
        await other.append([entry(user)])
        await eventually(() => a === 1 && b === 1 && c === 1)
        for (const off of offs) off()
      })

      it('a replayed batch wakes nobody', async () => {
        const user = uuid()
        const batch = entries(user, 2)
        await streams.append(batch)
        await sleep(150) // the first append's own wakeup is delivered asynchronously
        let woken = 0
        const off = await streams.onWake(user, () => woken++)
        await streams.append(batch)
        await sleep(150)
        expect(woken).toBe(0)
        off()
      })

      it('stop after unsubscribing', async () => {
        const user = uuid()
        let woken = 0
        const off = await streams.onWake(user, () => woken++)
        const keep = await streams.onWake(user, () => {})
        off()
        off()
        await streams.append([entry(user)])
        await sleep(150)
        expect(woken).toBe(0)
        keep()
        // Subscribing again after everyone left works.
        const again = await streams.onWake(user, () => woken++)
        await streams.append([entry(user)])
        await eventually(() => woken === 1)
        again()
      })

      it('resume after the wakeup connection is killed, waking everyone once it is back', async () => {
        const own = harness.create()
        const user = uuid()
        let woken = 0
        const off = await own.onWake(user, () => woken++)
        await own.append([entry(user)])
        await eventually(() => woken === 1)
        expect(await harness.killWakeConnections()).toBeGreaterThanOrEqual(1)
        // Wakeups may have been missed while disconnected: everyone is woken once reconnected.
        await eventually(() => woken === 2, 10_000)
        await own.append([entry(user)])
        await eventually(() => woken === 3)
        // And a user subscribed only after the reconnection is reached too.
        const late = uuid()
        let lateWoken = 0
        const offLate = await own.onWake(late, () => lateWoken++)
        await own.append([entry(late)])
        await eventually(() => lateWoken === 1)
        off()
        offLate()
      })
    })

    describe('queues', () => {
      it('register at the id given, then touch, get and drop', async () => {
        const user = uuid()
        const all = entries(user, 2)
        await streams.append(all)
        const q = await streams.registerQueue(user, ['message.created'], all[1]!.id)
        expect(q).toMatchObject({ userId: user, eventTypes: ['message.created'], lastAckedId: all[1]!.id })
        expect(Math.abs(q.lastSeenAt - Date.now())).toBeLessThan(5_000)
        expect(await streams.getQueue(q.queueId)).toEqual(q)
        await expect(streams.registerQueue(user, null, 'nope')).rejects.toThrow(/invalid/)

        const fresh = await streams.registerQueue(uuid(), null, STREAM_START_ID)
        expect(fresh).toMatchObject({ eventTypes: null, lastAckedId: STREAM_START_ID })
        expect(fresh.queueId).not.toBe(q.queueId)

        await sleep(5)
        const touched = await streams.touchQueue(q.queueId, user, all[0]!.id)
        expect(touched).toMatchObject({ queueId: q.queueId, userId: user, lastAckedId: all[0]!.id })
        expect(touched!.lastSeenAt).toBeGreaterThanOrEqual(q.lastSeenAt)
        expect(await streams.touchQueue(q.queueId, user)).toMatchObject({ lastAckedId: all[0]!.id })

        expect(await streams.dropQueue(q.queueId, user)).toBe(true)
        expect(await streams.dropQueue(q.queueId, user)).toBe(false)
        expect(await streams.getQueue(q.queueId)).toBeNull()
        expect(await streams.touchQueue(q.queueId, user)).toBeNull()
      })

      it('another user’s queue is no queue: touching or dropping it changes nothing', async () => {
        const [owner, other] = [uuid(), uuid()]
        const q = await streams.registerQueue(owner, null, '7-7')
        await sleep(5)
        expect(await streams.touchQueue(q.queueId, other, '1-1')).toBeNull()
        expect(await streams.dropQueue(q.queueId, other)).toBe(false)
        expect(await streams.getQueue(q.queueId)).toEqual(q)
      })

      it('unknown or malformed queue ids are no queue', async () => {
        const user = uuid()
        expect(await streams.getQueue(uuid())).toBeNull()
        expect(await streams.touchQueue(uuid(), user)).toBeNull()
        expect(await streams.getQueue('not-a-queue')).toBeNull()
        expect(await streams.touchQueue("x'; drop table", user)).toBeNull()
        expect(await streams.dropQueue('nope', user)).toBe(false)
      })

      it('expire when idle for the TTL; touching keeps them alive', async () => {
        const short = harness.create({ queueTtlMs: 400 })
        // Told to the gateway, which keeps queues in memory and must forget them as the backend does.
        expect(short.queueTtlMs).toBe(400)
        expect(streams.queueTtlMs).toBe(10 * 60_000)
        const user = uuid()
        const kept = await short.registerQueue(user, null, STREAM_START_ID)
        const idle = await short.registerQueue(user, null, STREAM_START_ID)
        for (let i = 0; i < 4; i++) {
          await sleep(200)
          expect(await short.touchQueue(kept.queueId, user)).not.toBeNull()
        }
        expect(await short.getQueue(idle.queueId)).toBeNull()
        expect(await short.touchQueue(idle.queueId, user)).toBeNull()
        expect(await short.getQueue(kept.queueId)).not.toBeNull()
        await sleep(600)
        expect(await short.touchQueue(kept.queueId, user)).toBeNull()
      })
    })

    describe('presence (hasLiveQueue)', () => {
      const window = 60_000

      it('a user without a queue is absent; one who registered is present until they drop it', async () => {
        const user = uuid()
        expect(await streams.hasLiveQueue(user, window)).toBe(false)
        const q = await streams.registerQueue(user, null, STREAM_START_ID)
        expect(await streams.hasLiveQueue(user, window)).toBe(true)
        expect(await streams.dropQueue(q.queueId, user)).toBe(true)
        expect(await streams.hasLiveQueue(user, window)).toBe(false)
      })

      it('one queue dropped of two leaves the user present', async () => {
        const user = uuid()
        const [a, b] = [
          await streams.registerQueue(user, null, STREAM_START_ID),
          await streams.registerQueue(user, null, STREAM_START_ID),
        ]
        await streams.dropQueue(a.queueId, user)
        expect(await streams.hasLiveQueue(user, window)).toBe(true)
        await streams.dropQueue(b.queueId, user)
        expect(await streams.hasLiveQueue(user, window)).toBe(false)
      })

      it('counts only activity within the window; a touch is activity', async () => {
        const user = uuid()
        const q = await streams.registerQueue(user, null, STREAM_START_ID)
        await sleep(100)
        // 100 ms have passed since the registration: a 50 ms window no longer sees it, a wider one does.
        expect(await streams.hasLiveQueue(user, 50)).toBe(false)
        expect(await streams.hasLiveQueue(user, window)).toBe(true)
        await sleep(500)
        // 600 ms since the registration: a touch now is what a 500 ms window sees.
        expect(await streams.hasLiveQueue(user, 500)).toBe(false)
        expect(await streams.touchQueue(q.queueId, user)).not.toBeNull()
        expect(await streams.hasLiveQueue(user, 500)).toBe(true)
        await sleep(100)
        expect(await streams.hasLiveQueue(user, 50)).toBe(false)
      })

      it('another user’s queue, or their touching ours, does not make them present', async () => {
        const [owner, other] = [uuid(), uuid()]
        const q = await streams.registerQueue(owner, null, STREAM_START_ID)
        expect(await streams.hasLiveQueue(other, window)).toBe(false)
        expect(await streams.touchQueue(q.queueId, other)).toBeNull()
        expect(await streams.hasLiveQueue(other, window)).toBe(false)
        // Nor does their dropping it make the owner absent.
        expect(await streams.dropQueue(q.queueId, other)).toBe(false)
        expect(await streams.hasLiveQueue(owner, window)).toBe(true)
      })

      it('an expired queue is no queue, whatever the window', async () => {
        const short = harness.create({ queueTtlMs: 200 })
        const user = uuid()
        await short.registerQueue(user, null, STREAM_START_ID)
        expect(await short.hasLiveQueue(user, window)).toBe(true)
        await sleep(400)
        expect(await short.hasLiveQueue(user, window)).toBe(false)
      })

      it('refuses a negative window', async () => {
        await expect(streams.hasLiveQueue(uuid(), -1)).rejects.toThrow(/invalid presence window/)
      })
    })
  })
}
