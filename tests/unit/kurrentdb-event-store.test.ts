import { PassThrough } from 'node:stream'
import {
  type AllStreamResolvedEvent,
  DeadlineExceededError,
  StreamNotFoundError,
  UnknownError,
  WrongExpectedVersionError,
} from '@kurrent/kurrentdb-client'
import { v7 as uuid } from 'uuid'
import { describe, expect, it } from 'vitest'
import {
  type EventMetadata,
  type NewEvent,
  PartialIdempotencyError,
  type RecordedEvent,
  START,
  WrongExpectedRevisionError,
} from '../../adapters/event-store.ts'
import { createEventStore } from '../../adapters/event-store-factory.ts'
import {
  appendKey,
  decodeMetadata,
  encodeMetadata,
  isAfter,
  isSystemEvent,
  type KurrentClient,
  KurrentDbEventStore,
  readConflict,
  toActualRevision,
  toEventData,
  toReadPosition,
  toRecordedEvent,
  toStreamState,
  validPosition,
} from '../../adapters/kurrentdb-event-store.ts'
import type { PgPool } from '../../adapters/postgres.ts'
import { PostgresEventStore } from '../../adapters/postgres-event-store.ts'

// No KurrentDB server runs here: these tests cover the mappings, and drive the adapter against a fake client
// that answers as the server does (inclusive forward reads, exclusive backward reads, type filter on $all).

const metadata = (over: Partial<EventMetadata> = {}): EventMetadata => ({
  tenantId: uuid(),
  actor: { type: 'user', id: uuid() },
  correlationId: uuid(),
  causationId: uuid(),
  occurredAt: '2025-01-02T03:04:05.678Z',
  schemaVersion: 2,
  ...over,
})

const newEvent = (data: unknown = { n: 1 }): NewEvent => ({ id: uuid(), type: 'thing.happened', data, metadata: metadata() })

type Stored = { id: string; stream: string; type: string; revision: bigint; pos: bigint; data?: unknown; metadata?: unknown }

const resolved = (e: Stored): AllStreamResolvedEvent =>
  ({
    event: {
      streamId: e.stream,
      id: e.id,
      type: e.type,
      revision: e.revision,
      created: new Date('2025-01-01T00:00:00.000Z'),
      data: e.data ?? {},
      metadata: e.metadata,
      isJson: true,
      position: { commit: e.pos, prepare: e.pos },
    },
  }) as AllStreamResolvedEvent

async function* iterate<T>(items: readonly T[]): AsyncGenerator<T> {
  for (const i of items) yield i
}

type ReadAllCall = { direction?: string; fromPosition?: unknown; maxCount?: number | bigint; filter?: unknown }

/** $all as the server serves it. */
function fakeLog(log: Stored[], calls: ReadAllCall[] = []): Pick<KurrentClient, 'readAll'> {
  return {
    readAll(options: ReadAllCall = {}) {
      calls.push(options)
      const filtered = options.filter ? log.filter((e) => !e.type.startsWith('$')) : log
      const from = options.fromPosition
      const max = Number(options.maxCount ?? Number.MAX_SAFE_INTEGER)
      const page =
        options.direction === 'backwards'
          ? [...filtered].reverse().filter((e) => from === 'end' || e.pos < (from as { commit: bigint }).commit)
          : filtered.filter((e) => from === 'start' || e.pos >= (from as { commit: bigint }).commit)
      return iterate(page.slice(0, max).map(resolved))
    },
  } as Pick<KurrentClient, 'readAll'>
}

const client = (parts: Partial<Record<keyof KurrentClient, unknown>>): KurrentClient =>
  ({ dispose: async () => {}, ...parts }) as unknown as KurrentClient

const wrongVersion = (expected: bigint | 'no_stream' | 'any' | 'stream_exists', current: bigint | 'no_stream') =>
  new WrongExpectedVersionError(undefined, { streamName: 's', expected, current })

describe('KurrentDB mappings', () => {
  it('maps expected revisions to stream states', () => {
    expect(toStreamState(0n)).toBe(0n)
    expect(toStreamState(41n)).toBe(41n)
    expect(toStreamState('no_stream')).toBe('no_stream')
    expect(toStreamState('stream_exists')).toBe('stream_exists')
    expect(toStreamState('any')).toBe('any')
    expect(() => toStreamState(-1n)).toThrow(RangeError)
  })

  it('maps the server’s current revision to our actual revision', () => {
    expect(toActualRevision('no_stream')).toBe('no_stream')
    expect(toActualRevision(-1n)).toBe('no_stream')
    expect(toActualRevision(0n)).toBe(0n)
    expect(toActualRevision(7n)).toBe(7n)
  })

  it('reads a WrongExpectedVersion as a conflict, a partial retry, or something to look at', () => {
    expect(readConflict(3n, 'no_stream')).toBe('conflict')
    expect(readConflict('stream_exists', 'no_stream')).toBe('conflict')
    expect(readConflict('any', 4n)).toBe('partial')
    expect(readConflict('stream_exists', 0n)).toBe('partial')
    expect(readConflict(2n, 2n)).toBe('conflict')
    expect(readConflict(2n, 1n)).toBe('conflict')
    expect(readConflict(2n, 5n)).toEqual({ probeFrom: 3n })
    expect(readConflict('no_stream', 0n)).toEqual({ probeFrom: 0n })
  })

  it('keeps positions the server sent and refuses sentinels', () => {
    expect(validPosition({ commit: 120n, prepare: 120n })).toEqual({ commit: 120n, prepare: 120n })
    expect(validPosition(undefined)).toBeNull()
    expect(validPosition({ commit: -1n, prepare: -1n })).toBeNull()
    expect(validPosition({ commit: 2n ** 64n - 1n, prepare: 2n ** 64n - 1n })).toBeNull()
  })

  it('reads from the start for START and from the position otherwise; compares exclusively', () => {
    expect(toReadPosition(START)).toBe('start')
    expect(toReadPosition({ commit: 5n, prepare: 5n })).toEqual({ commit: 5n, prepare: 5n })
    expect(isAfter({ commit: 5n, prepare: 5n }, { commit: 5n, prepare: 5n })).toBe(false)
    expect(isAfter({ commit: 6n, prepare: 6n }, { commit: 5n, prepare: 5n })).toBe(true)
    expect(isAfter({ commit: 5n, prepare: 6n }, { commit: 5n, prepare: 5n })).toBe(true)
  })

  it('tells system events by type or stream', () => {
    expect(isSystemEvent({ streamName: 'room-1', type: 'room.opened' })).toBe(false)
    expect(isSystemEvent({ streamName: '$stats-0.0.0.0:2113', type: 'statsCollected' })).toBe(true)
    expect(isSystemEvent({ streamName: 'room-1', type: '$metadata' })).toBe(true)
  })

  it('stores the envelope as metadata, with the server’s correlation keys, and reads it back as it was', () => {
    const m = metadata()
    const stored = encodeMetadata(m)
    expect(stored).toMatchObject({ ...m, $correlationId: m.correlationId, $causationId: m.causationId })
    expect(stored.tenantId).toBe(m.tenantId)
    expect(decodeMetadata(JSON.parse(JSON.stringify(stored)))).toEqual(m)
    const root = metadata({ causationId: null, tenantId: null })
    expect(encodeMetadata(root)).not.toHaveProperty('$causationId')
    expect(decodeMetadata(JSON.parse(JSON.stringify(encodeMetadata(root))))).toEqual(root)
    expect(decodeMetadata(undefined)).toBeNull()
    expect(decodeMetadata(new Uint8Array([1, 2]))).toBeNull()
    expect(decodeMetadata([1])).toBeNull()
  })

  it('writes events as JSON under their own id', () => {
    const e = newEvent({ a: [1, 2] })
    expect(toEventData(e)).toEqual({
      id: e.id,
      contentType: 'application/json',
      type: 'thing.happened',
      data: { a: [1, 2] },
      metadata: encodeMetadata(e.metadata),
    })
    expect(toEventData({ ...e, data: undefined }).data).toBeNull()
  })

  it('reads recorded events back into the port’s shape', () => {
    const m = metadata()
    const r = toRecordedEvent(
      resolved({
        id: 'e1',
        stream: 'room-1',
        type: 'room.opened',
        revision: 3n,
        pos: 900n,
        data: { x: 1 },
        metadata: encodeMetadata(m),
      }),
    )
    expect(r).toEqual({
      id: 'e1',
      type: 'room.opened',
      data: { x: 1 },
      metadata: m,
      streamName: 'room-1',
      revision: 3n,
      position: { commit: 900n, prepare: 900n },
    } satisfies RecordedEvent)
    const foreign = toRecordedEvent(resolved({ id: 'e2', stream: 'other-1', type: 'x', revision: 0n, pos: 1n }))
    expect(foreign?.metadata).toEqual({
      tenantId: null,
      actor: { type: 'system', id: 'kurrentdb' },
      correlationId: 'e2',
      causationId: null,
      occurredAt: '2025-01-01T00:00:00.000Z',
      schemaVersion: 1,
    })
    expect(toRecordedEvent({})).toBeNull()
    const positionless = resolved({ id: 'e3', stream: 's', type: 'x', revision: 0n, pos: 1n })
    delete (positionless.event as { position?: unknown }).position
    expect(() => toRecordedEvent(positionless)).toThrow(/position/)
  })

  it('keys identical appends by stream and ids', () => {
    const [a, b] = [newEvent(), newEvent()]
    expect(appendKey('s', [a!, b!])).toBe(appendKey('s', [{ ...a!, data: 2 }, b!]))
    expect(appendKey('s', [a!, b!])).not.toBe(appendKey('t', [a!, b!]))
    expect(appendKey('s', [a!, b!])).not.toBe(appendKey('s', [b!, a!]))
  })

  it('refuses a connection string that turns append failures into results', () => {
    expect(() => new KurrentDbEventStore('kurrentdb://localhost:2113?tls=false&throwOnAppendFailure=false')).toThrow(
      /throwOnAppendFailure/,
    )
  })
})

describe('KurrentDbEventStore against a fake client', () => {
  it('answers an append with the new revision and the last event’s position', async () => {
    const calls: unknown[] = []
    const store = new KurrentDbEventStore(
      client({
        appendToStream: async (...args: unknown[]) => {
          calls.push(args)
          return { success: true, nextExpectedRevision: 1n, position: { commit: 500n, prepare: 500n } }
        },
      }),
    )
    const events = [newEvent(), newEvent()]
    expect(await store.append('s', events, { expectedRevision: 'no_stream' })).toEqual({
      nextExpectedRevision: 1n,
      position: { commit: 500n, prepare: 500n },
    })
    expect(calls).toEqual([['s', events.map(toEventData), { streamState: 'no_stream' }]])
    await expect(store.append('s', [], { expectedRevision: 'any' })).rejects.toThrow(/at least one/)
  })

  it('reads the last event’s position when the server sends none', async () => {
    const store = new KurrentDbEventStore(
      client({
        appendToStream: async () => ({ success: true, nextExpectedRevision: 4n, position: undefined }),
        readStream: (stream: string, options: { fromRevision: bigint; maxCount: number }) => {
          expect([stream, options.fromRevision, options.maxCount]).toEqual(['s', 4n, 1])
          return iterate([resolved({ id: 'x', stream: 's', type: 't', revision: 4n, pos: 77n })])
        },
      }),
    )
    expect(await store.append('s', [newEvent()], { expectedRevision: 3n })).toEqual({
      nextExpectedRevision: 4n,
      position: { commit: 77n, prepare: 77n },
    })
  })

  it('translates WrongExpectedVersion into WrongExpectedRevisionError with the actual revision', async () => {
    const store = new KurrentDbEventStore(
      client({
        appendToStream: async (_s: string, _e: unknown, o: { streamState: bigint | string }) => {
          throw wrongVersion(o.streamState as bigint, o.streamState === 3n ? 'no_stream' : 1n)
        },
        readStream: () => iterate([resolved({ id: uuid(), stream: 's', type: 't', revision: 1n, pos: 10n })]),
      }),
    )
    const missing = await store.append('s', [newEvent()], { expectedRevision: 3n }).catch((e) => e)
    expect(missing).toBeInstanceOf(WrongExpectedRevisionError)
    expect(missing).toMatchObject({ stream: 's', expected: 3n, actual: 'no_stream' })
    const stale = await store.append('s', [newEvent()], { expectedRevision: 0n }).catch((e) => e)
    expect(stale).toBeInstanceOf(WrongExpectedRevisionError)
    expect(stale.actual).toBe(1n)
  })

  it('tells a partly written batch from a conflict', async () => {
    const written = newEvent()
    let following: Stored[] = []
    const reads: unknown[] = []
    const store = new KurrentDbEventStore(
      client({
        appendToStream: async (_s: string, _e: unknown, o: { streamState: bigint | string }) => {
          throw wrongVersion(o.streamState as 'any', 0n)
        },
        readStream: (_s: string, options: unknown) => {
          reads.push(options)
          return iterate(following.map(resolved))
        },
      }),
    )
    // Under 'any' the server refuses an existing stream only for a partial id match: no read needed.
    await expect(store.append('s', [written, newEvent()], { expectedRevision: 'any' })).rejects.toBeInstanceOf(
      PartialIdempotencyError,
    )
    expect(reads).toEqual([])
    // Under 'no_stream' the events from revision 0 on say which it was.
    following = [{ id: written.id, stream: 's', type: 't', revision: 0n, pos: 5n }]
    await expect(store.append('s', [written, newEvent()], { expectedRevision: 'no_stream' })).rejects.toBeInstanceOf(
      PartialIdempotencyError,
    )
    expect(reads).toEqual([expect.objectContaining({ fromRevision: 0n, maxCount: 2 })])
    following = [{ id: uuid(), stream: 's', type: 't', revision: 0n, pos: 5n }]
    await expect(store.append('s', [newEvent()], { expectedRevision: 'no_stream' })).rejects.toBeInstanceOf(
      WrongExpectedRevisionError,
    )
  })

  it('retries an append that timed out once, then gives up', async () => {
    let attempts = 0
    const flaky = new KurrentDbEventStore(
      client({
        appendToStream: async () => {
          attempts++
          if (attempts === 1) throw new DeadlineExceededError()
          return { success: true, nextExpectedRevision: 0n, position: { commit: 9n, prepare: 9n } }
        },
      }),
    )
    expect((await flaky.append('s', [newEvent()], { expectedRevision: 'no_stream' })).position).toEqual({
      commit: 9n,
      prepare: 9n,
    })
    expect(attempts).toBe(2)
    const down = new KurrentDbEventStore(
      client({
        appendToStream: async () => {
          throw new DeadlineExceededError()
        },
      }),
    )
    await expect(down.append('s', [newEvent()], { expectedRevision: 'any' })).rejects.toBeInstanceOf(DeadlineExceededError)
  })

  it('serialises identical appends, not different ones', async () => {
    let running = 0
    let most = 0
    const store = new KurrentDbEventStore(
      client({
        appendToStream: async () => {
          running++
          most = Math.max(most, running)
          await new Promise((r) => setTimeout(r, 5))
          running--
          return { success: true, nextExpectedRevision: 0n, position: { commit: 1n, prepare: 1n } }
        },
      }),
    )
    const same = [newEvent()]
    await Promise.all(Array.from({ length: 4 }, () => store.append('s', same, { expectedRevision: 'any' })))
    expect(most).toBe(1)
    await Promise.all(Array.from({ length: 4 }, () => store.append('s', [newEvent()], { expectedRevision: 'any' })))
    expect(most).toBe(4)
  })

  it('reads a missing stream as empty, and passes direction, start and limit', async () => {
    const calls: unknown[] = []
    const store = new KurrentDbEventStore(
      client({
        readStream: (stream: string, options: unknown) => {
          calls.push(options)
          if (stream === 'missing') {
            return (async function* () {
              yield* []
              throw new StreamNotFoundError(undefined, stream)
            })()
          }
          return iterate([resolved({ id: 'a', stream, type: 't', revision: 4n, pos: 40n })])
        },
      }),
    )
    expect(await store.readStream('missing')).toEqual([])
    expect((await store.readStream('s', { direction: 'backwards', maxCount: 2 })).map((e) => e.revision)).toEqual([4n])
    expect(await store.readStream('s', { maxCount: 0 })).toEqual([])
    expect(calls).toEqual([
      { direction: 'forwards', fromRevision: 'start', maxCount: Number.MAX_SAFE_INTEGER },
      { direction: 'backwards', fromRevision: 'end', maxCount: 2 },
    ])
  })

  const log: Stored[] = [
    { id: 'sys0', stream: '$epoch', type: '$epoch-information', revision: 0n, pos: 0n },
    { id: 'a', stream: 'room-1', type: 'room.opened', revision: 0n, pos: 100n },
    { id: 'meta', stream: '$$room-1', type: '$metadata', revision: 0n, pos: 200n },
    { id: 'b', stream: 'room-1', type: 'room.renamed', revision: 1n, pos: 300n },
    { id: 'stats', stream: '$stats-node', type: 'statsCollected', revision: 0n, pos: 400n },
    { id: 'c', stream: 'room-2', type: 'room.opened', revision: 0n, pos: 500n },
    { id: 'd', stream: 'room-2', type: 'room.renamed', revision: 1n, pos: 600n },
  ]

  it('reads $all after a position, without system events, a full page at a time', async () => {
    const calls: ReadAllCall[] = []
    const store = new KurrentDbEventStore(client(fakeLog(log, calls)))
    expect((await store.readAll()).map((e) => e.id)).toEqual(['a', 'b', 'c', 'd'])
    expect(calls[0]).toMatchObject({ direction: 'forwards', fromPosition: 'start', filter: { filterOn: 'eventType' } })
    expect((await store.readAll({ from: { commit: 100n, prepare: 100n } })).map((e) => e.id)).toEqual(['b', 'c', 'd'])
    // The $stats event passes the server's type filter; dropping it must not cut the page short.
    calls.length = 0
    expect((await store.readAll({ from: { commit: 300n, prepare: 300n }, maxCount: 1 })).map((e) => e.id)).toEqual(['c'])
    expect(calls.length).toBe(2)
    expect(await store.readAll({ from: { commit: 600n, prepare: 600n } })).toEqual([])
  })

  it('answers the head from the newest non-system event, START when there is none', async () => {
    expect(await new KurrentDbEventStore(client(fakeLog(log))).headPosition()).toEqual({ commit: 600n, prepare: 600n })
    const onlySystem = log.filter((e) => isSystemEvent({ streamName: e.stream, type: e.type }))
    expect(await new KurrentDbEventStore(client(fakeLog(onlySystem))).headPosition()).toEqual(START)
    expect(await new KurrentDbEventStore(client(fakeLog([]))).headPosition()).toEqual(START)
  })

  it('resolves a public position to the event standing there, or null', async () => {
    const store = new KurrentDbEventStore(client(fakeLog(log)))
    expect(await store.resolvePosition(300n)).toEqual({ commit: 300n, prepare: 300n })
    expect(await store.resolvePosition(301n)).toBeNull()
    expect(await store.resolvePosition(9_000n)).toBeNull()
    expect(await store.resolvePosition(-1n)).toBeNull()
    const refusing = new KurrentDbEventStore(
      client({
        readAll: () =>
          (async function* () {
            yield* []
            throw new UnknownError()
          })(),
      }),
    )
    expect(await refusing.resolvePosition(7n)).toBeNull()
  })

  class FakeSubscription extends PassThrough {
    unsubscribed = false
    constructor() {
      super({ objectMode: true })
    }
    async unsubscribe() {
      this.unsubscribed = true
    }
  }

  it('subscribes after a position, delivers what has arrived in bounded batches, and ends on close', async () => {
    const source = new FakeSubscription()
    const options: unknown[] = []
    const store = new KurrentDbEventStore(
      client({
        subscribeToAll: (o: unknown) => {
          options.push(o)
          return source
        },
      }),
    )
    const sub = store.subscribeAll({ from: { commit: 100n, prepare: 100n }, maxBatch: 2 })
    const it = sub[Symbol.asyncIterator]()
    const first = it.next()
    expect(options[0]).toMatchObject({ fromPosition: { commit: 100n, prepare: 100n }, filter: { filterOn: 'eventType' } })
    // The server starts at the position inclusively; $stats passes its type filter.
    const more = [700n, 800n, 900n].map((pos, i) => ({ id: `m${i}`, stream: 'room-3', type: 't', revision: BigInt(i), pos }))
    for (const e of [...log.slice(1, 6), ...more]) source.write(resolved(e))
    const batches: RecordedEvent[][] = [(await first).value as RecordedEvent[]]
    while (batches.flat().length < 5) batches.push((await it.next()).value as RecordedEvent[])
    expect(batches.flat().map((e) => e.id)).toEqual(['b', 'c', 'm0', 'm1', 'm2'])
    expect(batches.map((b) => b.length)).toEqual([2, 2, 1])
    // Live: an event that arrives later wakes the reader.
    const next = it.next()
    setTimeout(() => source.write(resolved({ ...log[6]!, pos: 1_000n })), 10)
    expect(((await next).value as RecordedEvent[]).map((e) => e.id)).toEqual(['d'])
    const parked = it.next()
    await sub.close()
    expect((await parked).done).toBe(true)
    expect(source.unsubscribed).toBe(true)
  })

  it('ends the iteration with the subscription’s error, or when the server ends it', async () => {
    const failing = new FakeSubscription()
    const store = new KurrentDbEventStore(client({ subscribeToAll: () => failing }))
    const it = store.subscribeAll()[Symbol.asyncIterator]()
    const next = it.next()
    setTimeout(() => failing.destroy(new Error('connection lost')), 5)
    await expect(next).rejects.toThrow('connection lost')

    const ending = new FakeSubscription()
    const ended = new KurrentDbEventStore(client({ subscribeToAll: () => ending }))
    const it2 = ended.subscribeAll()[Symbol.asyncIterator]()
    const next2 = it2.next()
    setTimeout(() => ending.end(), 5)
    await expect(next2).rejects.toThrow(/ended/)
  })

  it('closes its subscriptions and the client', async () => {
    let disposed = false
    const source = new FakeSubscription()
    const store = new KurrentDbEventStore(
      client({
        subscribeToAll: () => source,
        dispose: async () => {
          disposed = true
        },
      }),
    )
    const it = store.subscribeAll()[Symbol.asyncIterator]()
    const next = it.next()
    await new Promise((r) => setTimeout(r, 5))
    await store.close()
    expect((await next).done).toBe(true)
    expect(source.unsubscribed).toBe(true)
    expect(disposed).toBe(true)
  })
})

describe('createEventStore', () => {
  const pool = {} as PgPool
  it('picks the adapter the configuration names', async () => {
    expect(createEventStore({ EVENT_STORE: 'postgres' }, pool)).toBeInstanceOf(PostgresEventStore)
    const kurrent = createEventStore({ EVENT_STORE: 'kurrentdb', EVENTSTORE_URL: 'kurrentdb://localhost:2113?tls=false' }, pool)
    expect(kurrent).toBeInstanceOf(KurrentDbEventStore)
    await kurrent.close()
    expect(() => createEventStore({ EVENT_STORE: 'kurrentdb' }, pool)).toThrow(/EVENTSTORE_URL/)
  })
})
