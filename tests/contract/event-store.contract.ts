import { v7 as uuid } from 'uuid'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  comparePositions,
  type EventStore,
  type NewEvent,
  PartialIdempotencyError,
  type RecordedEvent,
  WrongExpectedRevisionError,
} from '../../adapters/event-store.ts'

export type EventStoreFactory = () => Promise<{ store: EventStore; teardown(): Promise<void> }>

const tenantId = uuid()

export const newEvent = (type = 'thing.happened', data: unknown = { n: 1 }, tenant: string | null = tenantId): NewEvent => ({
  id: uuid(),
  type,
  data,
  metadata: {
    tenantId: tenant,
    actor: { type: 'user', id: uuid() },
    correlationId: uuid(),
    causationId: null,
    occurredAt: new Date().toISOString(),
    schemaVersion: 1,
  },
})

const stream = () => `thing-${uuid()}`

async function collect(store: EventStore, until: (seen: RecordedEvent[]) => boolean, from?: RecordedEvent['position']) {
  const seen: RecordedEvent[] = []
  const sub = store.subscribeAll(from ? { from } : {})
  for await (const batch of sub) {
    seen.push(...batch)
    if (until(seen)) break
  }
  await sub.close()
  return seen
}

/** The one conformance suite every EventStore adapter passes. */
export function eventStoreContract(name: string, factory: EventStoreFactory) {
  describe(`EventStore contract: ${name}`, () => {
    let store: EventStore
    let teardown: () => Promise<void>
    beforeAll(async () => {
      ;({ store, teardown } = await factory())
    })
    afterAll(async () => {
      await teardown()
    })

    describe('expected revision', () => {
      it('no_stream creates a stream; its revision is the last event’s', async () => {
        const s = stream()
        const r = await store.append(s, [newEvent(), newEvent()], { expectedRevision: 'no_stream' })
        expect(r.nextExpectedRevision).toBe(1n)
      })

      it('no_stream on an existing stream is refused with the actual revision', async () => {
        const s = stream()
        await store.append(s, [newEvent()], { expectedRevision: 'no_stream' })
        const err = await store.append(s, [newEvent()], { expectedRevision: 'no_stream' }).catch((e) => e)
        expect(err).toBeInstanceOf(WrongExpectedRevisionError)
        expect(err.actual).toBe(0n)
        expect(await store.readStream(s)).toHaveLength(1)
      })

      it('an exact revision appends when it matches and refuses otherwise', async () => {
        const s = stream()
        await store.append(s, [newEvent()], { expectedRevision: 'no_stream' })
        const r = await store.append(s, [newEvent()], { expectedRevision: 0n })
        expect(r.nextExpectedRevision).toBe(1n)
        const stale = await store.append(s, [newEvent()], { expectedRevision: 0n }).catch((e) => e)
        expect(stale).toBeInstanceOf(WrongExpectedRevisionError)
        expect(stale.actual).toBe(1n)
        const missing = await store.append(stream(), [newEvent()], { expectedRevision: 3n }).catch((e) => e)
        expect(missing).toBeInstanceOf(WrongExpectedRevisionError)
        expect(missing.actual).toBe('no_stream')
      })

      it('stream_exists refuses a missing stream and appends to an existing one', async () => {
        const s = stream()
        const err = await store.append(s, [newEvent()], { expectedRevision: 'stream_exists' }).catch((e) => e)
        expect(err).toBeInstanceOf(WrongExpectedRevisionError)
        await store.append(s, [newEvent()], { expectedRevision: 'any' })
        const r = await store.append(s, [newEvent()], { expectedRevision: 'stream_exists' })
        expect(r.nextExpectedRevision).toBe(1n)
      })

      it('any appends whatever the revision', async () => {
        const s = stream()
        await store.append(s, [newEvent()], { expectedRevision: 'any' })
        const r = await store.append(s, [newEvent(), newEvent()], { expectedRevision: 'any' })
        expect(r.nextExpectedRevision).toBe(2n)
      })

      it('of concurrent no_stream appends to one stream exactly one wins', async () => {
        const s = stream()
        const results = await Promise.allSettled(
          Array.from({ length: 8 }, () => store.append(s, [newEvent()], { expectedRevision: 'no_stream' })),
        )
        expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1)
        for (const r of results) if (r.status === 'rejected') expect(r.reason).toBeInstanceOf(WrongExpectedRevisionError)
        expect(await store.readStream(s)).toHaveLength(1)
      })

      it('concurrent appends at one revision: no lost update', async () => {
        const s = stream()
        await store.append(s, [newEvent()], { expectedRevision: 'no_stream' })
        const results = await Promise.allSettled(
          Array.from({ length: 8 }, () => store.append(s, [newEvent()], { expectedRevision: 0n })),
        )
        expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1)
        expect(await store.readStream(s)).toHaveLength(2)
      })
    })

    describe('under contention', () => {
      it('16 concurrent stream_exists appends to an existing stream all land, each at its own revision', async () => {
        const s = stream()
        await store.append(s, [newEvent()], { expectedRevision: 'no_stream' })
        const results = await Promise.allSettled(
          Array.from({ length: 16 }, () => store.append(s, [newEvent()], { expectedRevision: 'stream_exists' })),
        )
        expect(results.filter((r) => r.status === 'rejected').map((r) => (r as PromiseRejectedResult).reason)).toEqual([])
        const revisions = results.map(
          (r) => (r as PromiseFulfilledResult<{ nextExpectedRevision: bigint }>).value.nextExpectedRevision,
        )
        expect(new Set(revisions).size).toBe(16)
        expect((await store.readStream(s)).map((e) => e.revision)).toEqual(Array.from({ length: 17 }, (_, i) => BigInt(i)))
      })

      it('16 concurrent any appends all land', async () => {
        const s = stream()
        await Promise.all(Array.from({ length: 16 }, () => store.append(s, [newEvent()], { expectedRevision: 'any' })))
        expect(await store.readStream(s)).toHaveLength(16)
      })
    })

    describe('concurrent appends answer each as it would alone', () => {
      it('a stale revision, a conflict, a retry and a partial retry fail or answer alone; the others land', async () => {
        const existing = stream()
        const first = await store.append(existing, [newEvent(), newEvent()], { expectedRevision: 'no_stream' })
        const retried = [newEvent()]
        const retriedStream = stream()
        const original = await store.append(retriedStream, retried, { expectedRevision: 'no_stream' })
        const shared = stream()
        const fresh = Array.from({ length: 6 }, () => stream())
        const results = await Promise.allSettled([
          ...fresh.map((s) => store.append(s, [newEvent()], { expectedRevision: 'no_stream' })),
          store.append(existing, [newEvent()], { expectedRevision: 0n }),
          store.append(existing, [newEvent()], { expectedRevision: 'no_stream' }),
          store.append(retriedStream, retried, { expectedRevision: 'no_stream' }),
          store.append(retriedStream, [retried[0]!, newEvent()], { expectedRevision: 'any' }),
          ...Array.from({ length: 4 }, () => store.append(shared, [newEvent()], { expectedRevision: 'any' })),
        ])
        const [landed, stale, conflict, retry, partial, sharedResults] = [
          results.slice(0, 6),
          results[6]!,
          results[7]!,
          results[8]!,
          results[9]!,
          results.slice(10),
        ]
        for (const r of landed) expect(r).toMatchObject({ status: 'fulfilled', value: { nextExpectedRevision: 0n } })
        expect(stale.status === 'rejected' && stale.reason).toBeInstanceOf(WrongExpectedRevisionError)
        expect(stale.status === 'rejected' && stale.reason).toMatchObject({ stream: existing, expected: 0n, actual: 1n })
        expect(conflict.status === 'rejected' && conflict.reason).toMatchObject({
          stream: existing,
          expected: 'no_stream',
          actual: 1n,
        })
        expect(retry).toEqual({ status: 'fulfilled', value: original })
        expect(partial.status === 'rejected' && partial.reason).toBeInstanceOf(PartialIdempotencyError)
        expect(sharedResults.map((r) => r.status)).toEqual(['fulfilled', 'fulfilled', 'fulfilled', 'fulfilled'])
        expect((await store.readStream(shared)).map((e) => e.revision)).toEqual([0n, 1n, 2n, 3n])
        expect((await store.readStream(existing)).map((e) => e.revision)).toEqual([0n, 1n])
        expect(first.nextExpectedRevision).toBe(1n)
        expect(await store.readStream(retriedStream)).toHaveLength(1)
        for (const s of fresh) expect(await store.readStream(s)).toHaveLength(1)
      })

      it('16 concurrent appends to one stream at successive expected revisions keep it gap-free', async () => {
        // Each writer retries on a wrong revision from where the stream stands, as the command pipeline does.
        const s = stream()
        await Promise.all(
          Array.from({ length: 16 }, async (_, w) => {
            let expected: bigint | 'no_stream' = 'no_stream'
            for (;;) {
              try {
                await store.append(s, [newEvent('thing.counted', { w })], { expectedRevision: expected })
                return
              } catch (e) {
                if (!(e instanceof WrongExpectedRevisionError)) throw e
                expected = e.actual
              }
            }
          }),
        )
        const events = await store.readStream(s)
        expect(events.map((e) => e.revision)).toEqual(Array.from({ length: 16 }, (_, i) => BigInt(i)))
        expect(new Set(events.map((e) => (e.data as { w: number }).w)).size).toBe(16)
      })
    })

    describe('conditions on other streams', () => {
      it('appends when every other stream stands where the decision read it', async () => {
        const room = stream()
        await store.append(room, [newEvent()], { expectedRevision: 'no_stream' })
        const r = await store.append(stream(), [newEvent()], {
          expectedRevision: 'no_stream',
          alsoExpect: [
            { stream: room, expectedRevision: 0n },
            { stream: stream(), expectedRevision: 'no_stream' },
          ],
        })
        expect(r.nextExpectedRevision).toBe(0n)
      })

      it('refuses, naming the stream that moved, and writes nothing', async () => {
        const room = stream()
        const s = stream()
        await store.append(room, [newEvent(), newEvent()], { expectedRevision: 'no_stream' })
        for (const expectedRevision of [0n, 'no_stream'] as const) {
          const err = await store
            .append(s, [newEvent()], { expectedRevision: 'any', alsoExpect: [{ stream: room, expectedRevision }] })
            .catch((e) => e)
          expect(err).toBeInstanceOf(WrongExpectedRevisionError)
          expect(err.stream).toBe(room)
          expect(err.expected).toBe(expectedRevision)
          expect(err.actual).toBe(1n)
        }
        const missing = await store
          .append(s, [newEvent()], {
            expectedRevision: 'any',
            alsoExpect: [{ stream: stream(), expectedRevision: 'stream_exists' }],
          })
          .catch((e) => e)
        expect(missing).toBeInstanceOf(WrongExpectedRevisionError)
        expect(missing.actual).toBe('no_stream')
        expect(await store.readStream(s)).toEqual([])
      })

      it('an idempotent retry answers as the first time even after the other stream moved', async () => {
        const room = stream()
        const s = stream()
        await store.append(room, [newEvent()], { expectedRevision: 'no_stream' })
        const events = [newEvent()]
        const options = { expectedRevision: 'no_stream' as const, alsoExpect: [{ stream: room, expectedRevision: 0n }] }
        const first = await store.append(s, events, options)
        await store.append(room, [newEvent()], { expectedRevision: 0n })
        expect(await store.append(s, events, options)).toEqual(first)
        expect(await store.readStream(s)).toHaveLength(1)
      })

      it('a concurrent writer of the other stream never sorts before an append that checked it', async () => {
        // A post checks its room; an archive moves it. Whatever the interleaving, no post accepted against the
        // room's old revision sorts after the archive in the global order.
        for (let round = 0; round < 25; round++) {
          const room = stream()
          const opened = await store.append(room, [newEvent('room.opened')], { expectedRevision: 'no_stream' })
          const results = await Promise.allSettled([
            store.append(room, [newEvent('room.archived')], { expectedRevision: opened.nextExpectedRevision }),
            ...Array.from({ length: 3 }, () =>
              store.append(stream(), [newEvent('post.made')], {
                expectedRevision: 'no_stream',
                alsoExpect: [{ stream: room, expectedRevision: opened.nextExpectedRevision }],
              }),
            ),
          ])
          const [archived, ...posts] = results
          expect(archived.status).toBe('fulfilled')
          const archivedAt = (archived as PromiseFulfilledResult<{ position: RecordedEvent['position'] }>).value.position
          for (const p of posts) {
            if (p.status === 'rejected') expect(p.reason).toBeInstanceOf(WrongExpectedRevisionError)
            else expect(comparePositions(p.value.position, archivedAt)).toBeLessThan(0)
          }
        }
      })
    })

    describe('reading a tenant', () => {
      it('reads one tenant’s committed events of some types, in global order, within bounds, matching data', async () => {
        const tenant = uuid()
        const roomId = uuid()
        const s = stream()
        const ev = (type: string, data: unknown, t: string | null = tenant) => newEvent(type, data, t)
        const written = []
        for (const e of [
          ev('message.created', { roomId, n: 0 }),
          ev('message.created', { roomId: uuid(), n: 1 }),
          ev('message.deleted', { roomId, n: 2 }),
          ev('message.created', { roomId, n: 3 }, uuid()),
          ev('room.renamed', { roomId, n: 4 }),
          ev('message.created', { roomId, n: 5 }),
        ]) {
          written.push(await store.append(s, [e], { expectedRevision: 'any' }))
        }
        const types = ['message.created', 'message.deleted']
        const all = await store.readTenant(tenant, { types })
        expect(all.map((e) => (e.data as { n: number }).n)).toEqual([0, 1, 2, 5])
        const inRoom = await store.readTenant(tenant, { types, match: { roomId } })
        expect(inRoom.map((e) => (e.data as { n: number }).n)).toEqual([0, 2, 5])
        const bounded = await store.readTenant(tenant, { types, from: written[1]!.position, to: written[2]!.position })
        expect(bounded.map((e) => (e.data as { n: number }).n)).toEqual([1, 2])
        const limited = await store.readTenant(tenant, { types, from: written[1]!.position, maxCount: 2 })
        expect(limited.map((e) => (e.data as { n: number }).n)).toEqual([1, 2])
        expect(await store.readTenant(uuid(), { types })).toEqual([])
      })
    })

    describe('idempotency', () => {
      it('appending the same event ids again answers as the first time and writes nothing', async () => {
        const s = stream()
        const events = [newEvent(), newEvent()]
        const first = await store.append(s, events, { expectedRevision: 'no_stream' })
        const again = await store.append(s, events, { expectedRevision: 'no_stream' })
        expect(again).toEqual(first)
        const anyAgain = await store.append(s, events, { expectedRevision: 'any' })
        expect(anyAgain).toEqual(first)
        expect(await store.readStream(s)).toHaveLength(2)
      })

      it('concurrent identical retries write once', async () => {
        const s = stream()
        const events = [newEvent()]
        const results = await Promise.all(Array.from({ length: 6 }, () => store.append(s, events, { expectedRevision: 'any' })))
        for (const r of results) expect(r).toEqual(results[0])
        expect(await store.readStream(s)).toHaveLength(1)
      })

      it('a batch mixing written and new ids is refused', async () => {
        const s = stream()
        const e1 = newEvent()
        await store.append(s, [e1], { expectedRevision: 'no_stream' })
        const err = await store.append(s, [e1, newEvent()], { expectedRevision: 'any' }).catch((e) => e)
        expect(err).toBeInstanceOf(PartialIdempotencyError)
        expect(await store.readStream(s)).toHaveLength(1)
      })
    })

    describe('reading a stream', () => {
      it('reads forwards and backwards, from a revision, with a limit; events keep their envelope', async () => {
        const s = stream()
        const events = Array.from({ length: 5 }, (_, i) => newEvent('thing.counted', { i }))
        await store.append(s, events, { expectedRevision: 'no_stream' })
        const all = await store.readStream(s)
        expect(all.map((e) => e.data)).toEqual([0, 1, 2, 3, 4].map((i) => ({ i })))
        expect(all.map((e) => e.revision)).toEqual([0n, 1n, 2n, 3n, 4n])
        expect(all[2]!.id).toBe(events[2]!.id)
        expect(all[2]!.type).toBe('thing.counted')
        expect(all[2]!.metadata).toEqual(events[2]!.metadata)
        expect(all[2]!.streamName).toBe(s)
        const back = await store.readStream(s, { direction: 'backwards', maxCount: 2 })
        expect(back.map((e) => e.revision)).toEqual([4n, 3n])
        const from = await store.readStream(s, { fromRevision: 3n })
        expect(from.map((e) => e.revision)).toEqual([3n, 4n])
        const backFrom = await store.readStream(s, { direction: 'backwards', fromRevision: 1n })
        expect(backFrom.map((e) => e.revision)).toEqual([1n, 0n])
        expect(await store.readStream(stream())).toEqual([])
      })
    })

    describe('ordering past single digits', () => {
      it('reads a stream of many events in revision order, and pages $all without skipping or repeating', async () => {
        const s = stream()
        const events = Array.from({ length: 25 }, (_, i) => newEvent('thing.counted', { i }))
        const start = await store.headPosition()
        await store.append(s, events, { expectedRevision: 'no_stream' })
        expect((await store.readStream(s)).map((e) => (e.data as { i: number }).i)).toEqual(events.map((_, i) => i))
        expect((await store.readStream(s, { direction: 'backwards', maxCount: 3 })).map((e) => e.revision)).toEqual([
          24n,
          23n,
          22n,
        ])
        const seen: string[] = []
        let from = start
        // A transaction open elsewhere on a shared cluster holds readers back for a while, never for good: empty
        // pages wait up to 20 s in all; pages with events are bounded by count.
        const deadline = Date.now() + 20_000
        for (let page = 0; page < 100 && seen.filter((id) => events.some((e) => e.id === id)).length < 25; ) {
          const batch = await store.readAll({ from, maxCount: 7 })
          if (batch.length === 0) {
            if (Date.now() > deadline) break
            await new Promise((r) => setTimeout(r, 20))
            continue
          }
          page++
          seen.push(...batch.map((e) => e.id))
          from = batch[batch.length - 1]!.position
        }
        const mine = seen.filter((id) => events.some((e) => e.id === id))
        expect(mine).toEqual(events.map((e) => e.id))
      })
    })

    describe('reading $all', () => {
      it('reads in global order from a position, exclusive', async () => {
        const s1 = stream()
        const s2 = stream()
        const a = await store.append(s1, [newEvent()], { expectedRevision: 'no_stream' })
        await store.append(s2, [newEvent(), newEvent()], { expectedRevision: 'no_stream' })
        const last = await store.append(s1, [newEvent()], { expectedRevision: 0n })
        // A shared server may hold other writers' events in between: page on until our last event (which a
        // reader may see a moment late while an older transaction is still in flight).
        const after: RecordedEvent[] = []
        let from = a.position
        while (!after.some((e) => comparePositions(e.position, last.position) === 0)) {
          const page = await store.readAll({ from, maxCount: 1_000 })
          if (page.length === 0) await new Promise((r) => setTimeout(r, 20))
          after.push(...page)
          from = page.at(-1)?.position ?? from
        }
        const mine = after.filter((e) => e.streamName === s1 || e.streamName === s2)
        expect(mine.map((e) => e.streamName)).toEqual([s2, s2, s1])
        for (let i = 1; i < after.length; i++) {
          expect(comparePositions(after[i - 1]!.position, after[i]!.position)).toBeLessThan(0)
        }
      })

      it('answers head and resolves public positions', async () => {
        const r = await store.append(stream(), [newEvent()], { expectedRevision: 'no_stream' })
        // A transaction still open elsewhere on the cluster may hold readers back for a moment, never for good.
        const deadline = Date.now() + 5_000
        while (comparePositions(await store.headPosition(), r.position) < 0 && Date.now() < deadline) {
          await new Promise((res) => setTimeout(res, 10))
        }
        expect(comparePositions(await store.headPosition(), r.position)).toBeGreaterThanOrEqual(0)
        expect(await store.resolvePosition(r.position.sequence)).toEqual(r.position)
      })
    })

    describe('subscribing to $all', () => {
      it('catches up, then goes live, in order, and stops on close', async () => {
        const s = stream()
        // Where the store stands, whatever it holds: a long-lived server has history, a fresh store may be empty.
        const before = await store.headPosition()
        const first = await store.append(s, [newEvent('thing.counted', { i: 0 })], {
          expectedRevision: 'no_stream',
        })
        const live = (async () => {
          await new Promise((r) => setTimeout(r, 100))
          let rev = 0n
          for (let i = 1; i < 5; i++) {
            const r = await store.append(s, [newEvent('thing.counted', { i })], { expectedRevision: rev })
            rev = r.nextExpectedRevision
          }
        })()
        const seen = await collect(store, (evs) => evs.filter((e) => e.streamName === s).length === 5, before)
        await live
        const mine = seen.filter((e) => e.streamName === s)
        expect(mine.map((e) => e.data)).toEqual([0, 1, 2, 3, 4].map((i) => ({ i })))
        expect(comparePositions(mine[0]!.position, first.position)).toBe(0)
      })

      it('delivers every event of many concurrent writers exactly once, in position order', async () => {
        const start = await store.headPosition()
        const writers = 16
        const perWriter = 20
        const ids = new Set<string>()
        const write = Promise.all(
          Array.from({ length: writers }, async () => {
            const s = stream()
            let rev: bigint | 'no_stream' = 'no_stream'
            for (let i = 0; i < perWriter; i++) {
              const e = newEvent()
              ids.add(e.id)
              rev = (await store.append(s, [e], { expectedRevision: rev })).nextExpectedRevision
            }
          }),
        )
        const seen = await collect(store, (evs) => evs.filter((e) => ids.has(e.id)).length >= writers * perWriter, start)
        await write
        const mine = seen.filter((e) => ids.has(e.id))
        expect(new Set(mine.map((e) => e.id)).size).toBe(writers * perWriter)
        expect(mine).toHaveLength(writers * perWriter)
        for (let i = 1; i < seen.length; i++) {
          expect(comparePositions(seen[i - 1]!.position, seen[i]!.position)).toBeLessThan(0)
        }
      })
    })
  })
}
