import { PassThrough } from 'node:stream'
import {
  type AllStreamResolvedEvent,
  AppendConsistencyViolationError,
  type AppendRecordInput,
  type ConsistencyCheck,
  DeadlineExceededError,
  KurrentDBClient,
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
  encodeRecordMetadata,
  exactTypesRegex,
  isAfter,
  isSystemEvent,
  type KurrentClient,
  KurrentDbEventStore,
  matchesData,
  readConflict,
  toActualRevision,
  toAppendRecord,
  toConsistencyCheck,
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
      const regex = (options.filter as { regex?: string } | undefined)?.regex
      const filtered = regex ? log.filter((e) => new RegExp(regex).test(e.type)) : log
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
    expect(validPosition({ commit: 120n, prepare: 120n })).toEqual({ transactionId: 120n, sequence: 120n })
    expect(validPosition(undefined)).toBeNull()
    expect(validPosition({ commit: -1n, prepare: -1n })).toBeNull()
    expect(validPosition({ commit: 2n ** 64n - 1n, prepare: 2n ** 64n - 1n })).toBeNull()
  })

  it('reads from the start for START and from the position otherwise; compares exclusively', () => {
    expect(toReadPosition(START)).toBe('start')
    expect(toReadPosition({ transactionId: 5n, sequence: 5n })).toEqual({ commit: 5n, prepare: 5n })
    expect(isAfter({ transactionId: 5n, sequence: 5n }, { transactionId: 5n, sequence: 5n })).toBe(false)
    expect(isAfter({ transactionId: 6n, sequence: 6n }, { transactionId: 5n, sequence: 5n })).toBe(true)
    expect(isAfter({ transactionId: 5n, sequence: 6n }, { transactionId: 5n, sequence: 5n })).toBe(true)
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

  it('stores the envelope for appendRecords as string values and reads it back as it was', () => {
    for (const m of [metadata(), metadata({ causationId: null, tenantId: null })]) {
      const stored = encodeRecordMetadata(m)
      expect(Object.values(stored).every((v) => typeof v === 'string')).toBe(true)
      expect(stored.$correlationId).toBe(m.correlationId)
      expect(stored.$causationId).toBe(m.causationId ?? undefined)
      expect(decodeMetadata(stored)).toEqual(m)
      // Keys the server may add beside ours do not reach the envelope.
      expect(decodeMetadata({ ...stored, '$schema.name': 'thing.happened', other: 'x' })).toEqual(m)
    }
    expect(decodeMetadata({ envelope: 'not json' })).toBeNull()
    expect(decodeMetadata({ envelope: '[1]' })).toBeNull()
  })

  it('turns an append with conditions into records and stream-state checks', () => {
    const e = newEvent({ a: 1 })
    expect(toAppendRecord('room-1', e)).toEqual({
      streamName: 'room-1',
      record: { ...toEventData(e), metadata: encodeRecordMetadata(e.metadata) },
    })
    expect(toConsistencyCheck({ stream: 'room-1', expectedRevision: 4n })).toEqual({
      type: 'stream_state',
      streamName: 'room-1',
      expectedState: 4n,
    })
    expect(toConsistencyCheck({ stream: 's', expectedRevision: 'no_stream' }).expectedState).toBe('no_stream')
  })

  it('filters exactly the given types and matches data as Postgres’ containment does', () => {
    const regex = new RegExp(exactTypesRegex(['room.opened', 'a+b']))
    expect(['room.opened', 'a+b'].every((t) => regex.test(t))).toBe(true)
    expect(['room.opened.v2', 'roomXopened', 'aab', 'x.room.opened'].some((t) => regex.test(t))).toBe(false)
    expect(matchesData({ roomId: 'r1', n: 1 }, { roomId: 'r1' })).toBe(true)
    expect(matchesData({ roomId: 'r1' }, {})).toBe(true)
    expect(matchesData({ roomId: 'r2' }, { roomId: 'r1' })).toBe(false)
    expect(matchesData({ nested: { roomId: 'r1' } }, { roomId: 'r1' })).toBe(false)
    expect(matchesData([{ roomId: 'r1' }], { roomId: 'r1' })).toBe(false)
    expect(matchesData(null, {})).toBe(false)
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
      position: { transactionId: 900n, sequence: 900n },
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
      position: { transactionId: 500n, sequence: 500n },
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
      position: { transactionId: 77n, sequence: 77n },
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
      transactionId: 9n,
      sequence: 9n,
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
    expect((await store.readAll({ from: { transactionId: 100n, sequence: 100n } })).map((e) => e.id)).toEqual(['b', 'c', 'd'])
    // The $stats event passes the server's type filter; dropping it must not cut the page short.
    calls.length = 0
    expect((await store.readAll({ from: { transactionId: 300n, sequence: 300n }, maxCount: 1 })).map((e) => e.id)).toEqual(['c'])
    expect(calls.length).toBe(2)
    expect(await store.readAll({ from: { transactionId: 600n, sequence: 600n } })).toEqual([])
  })

  it('answers the head from the newest non-system event, START when there is none', async () => {
    expect(await new KurrentDbEventStore(client(fakeLog(log))).headPosition()).toEqual({ transactionId: 600n, sequence: 600n })
    const onlySystem = log.filter((e) => isSystemEvent({ streamName: e.stream, type: e.type }))
    expect(await new KurrentDbEventStore(client(fakeLog(onlySystem))).headPosition()).toEqual(START)
    expect(await new KurrentDbEventStore(client(fakeLog([]))).headPosition()).toEqual(START)
  })

  it('resolves a public position to the event standing there, or null', async () => {
    const store = new KurrentDbEventStore(client(fakeLog(log)))
    expect(await store.resolvePosition(300n)).toEqual({ transactionId: 300n, sequence: 300n })
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
    const sub = store.subscribeAll({ from: { transactionId: 100n, sequence: 100n }, maxBatch: 2 })
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

type AppendRecordsCall = { records: AppendRecordInput[]; checks: ConsistencyCheck[] | undefined }

/** The client's own appendRecords (its validation and request encoding) over a transport that answers `answer`. */
function realAppendRecords(answer: { revisions: [string, string][]; position: string } | null) {
  const requests: Record<string, unknown>[] = []
  const transport = {
    appendRecords(request: { toObject(): Record<string, unknown> }, callback: (error: null, response: unknown) => void) {
      requests.push(request.toObject())
      callback(null, {
        getRevisionsList: () =>
          answer!.revisions.map(([stream, revision]) => ({ getStream: () => stream, getRevision: () => revision })),
        getPosition: () => answer!.position,
      })
    },
  }
  const self = {
    supports: async () => answer !== null,
    callArguments: () => [],
    execute: (_service: unknown, _name: string, run: (client: typeof transport) => Promise<unknown>) => run(transport),
  }
  return {
    requests,
    appendRecords: (records: AppendRecordInput[], checks?: ConsistencyCheck[]) =>
      KurrentDBClient.prototype.appendRecords.call(self as unknown as KurrentDBClient, records, checks),
  }
}

const violation = (...vs: { stream: string; expected: string; actual: string }[]) =>
  new AppendConsistencyViolationError(undefined as never, {
    violationsList: vs.map((v, checkIndex) => ({
      checkIndex,
      streamState: { stream: v.stream, expectedState: v.expected, actualState: v.actual },
    })),
  })

describe('KurrentDbEventStore: conditional appends', () => {
  it('sends the events as records with one check per condition and one for the stream itself', async () => {
    const calls: AppendRecordsCall[] = []
    const store = new KurrentDbEventStore(
      client({
        appendRecords: async (records: AppendRecordInput[], checks: ConsistencyCheck[]) => {
          calls.push({ records, checks })
          return { position: 900n, responses: [{ streamName: 'message-1', revision: 1n }] }
        },
        readStream: (stream: string, options: { fromRevision: bigint; maxCount: number }) => {
          expect([stream, options.fromRevision, options.maxCount]).toEqual(['message-1', 1n, 1])
          return iterate([resolved({ id: 'x', stream, type: 't', revision: 1n, pos: 900n })])
        },
      }),
    )
    const events = [newEvent(), newEvent()]
    const result = await store.append('message-1', events, {
      expectedRevision: 'no_stream',
      alsoExpect: [
        { stream: 'room-1', expectedRevision: 7n },
        { stream: 'member-1', expectedRevision: 'stream_exists' },
      ],
    })
    // The answer's single number is not a Position: the position is the last event's, read back.
    expect(result).toEqual({ nextExpectedRevision: 1n, position: { transactionId: 900n, sequence: 900n } })
    expect(calls).toEqual([
      {
        records: events.map((e) => toAppendRecord('message-1', e)),
        checks: [
          { type: 'stream_state', streamName: 'message-1', expectedState: 'no_stream' },
          { type: 'stream_state', streamName: 'room-1', expectedState: 7n },
          { type: 'stream_state', streamName: 'member-1', expectedState: 'stream_exists' },
        ],
      },
    ])
  })

  it('keeps an append without conditions on appendToStream', async () => {
    let appendRecords = 0
    const store = new KurrentDbEventStore(
      client({
        appendToStream: async () => ({ success: true, nextExpectedRevision: 0n, position: { commit: 5n, prepare: 5n } }),
        appendRecords: async () => {
          appendRecords++
        },
      }),
    )
    await store.append('s', [newEvent()], { expectedRevision: 'no_stream', alsoExpect: [] })
    await store.append('s', [newEvent()], { expectedRevision: 'any' })
    expect(appendRecords).toBe(0)
  })

  it('passes the client’s own validation, and its request carries the envelope and the checks', async () => {
    const real = realAppendRecords({ revisions: [['message-1', '0']], position: '900' })
    const store = new KurrentDbEventStore(
      client({
        appendRecords: real.appendRecords,
        readStream: () => iterate([resolved({ id: 'x', stream: 'message-1', type: 't', revision: 0n, pos: 900n })]),
      }),
    )
    const e = newEvent({ text: 'hi' })
    expect(
      await store.append('message-1', [e], {
        expectedRevision: 'no_stream',
        alsoExpect: [{ stream: 'room-1', expectedRevision: 3n }],
      }),
    ).toEqual({ nextExpectedRevision: 0n, position: { transactionId: 900n, sequence: 900n } })
    const [request] = real.requests as [
      {
        recordsList: {
          stream: string
          recordId: string
          schema: { name: string }
          data: string
          propertiesMap: [string, { stringValue: string }][]
        }[]
        checksList: { streamState: { stream: string; expectedState: string } }[]
      },
    ]
    const [record] = request.recordsList
    expect(record).toMatchObject({ stream: 'message-1', recordId: e.id, schema: { name: 'thing.happened' } })
    expect(JSON.parse(Buffer.from(record!.data, 'base64').toString('utf8'))).toEqual({ text: 'hi' })
    // The server hands these properties back as the event's JSON metadata; that decodes to the envelope.
    const properties = Object.fromEntries(record!.propertiesMap.map(([k, v]) => [k, v.stringValue]))
    expect(properties).toEqual(encodeRecordMetadata(e.metadata))
    expect(decodeMetadata(JSON.parse(JSON.stringify(properties)))).toEqual(e.metadata)
    expect(
      toRecordedEvent(resolved({ id: e.id, stream: 'message-1', type: e.type, revision: 0n, pos: 900n, metadata: properties }))
        ?.metadata,
    ).toEqual(e.metadata)
    expect(request.checksList.map((c) => c.streamState)).toEqual([
      { stream: 'message-1', expectedState: '-1' },
      { stream: 'room-1', expectedState: '3' },
    ])
  })

  it('says that conditional appends need a newer server when the server has no appendRecords', async () => {
    const old = new KurrentDbEventStore(client({ appendRecords: realAppendRecords(null).appendRecords }))
    const alsoExpect = [{ stream: 'room-1', expectedRevision: 0n }]
    await expect(old.append('s', [newEvent()], { expectedRevision: 'no_stream', alsoExpect })).rejects.toThrow(
      /conditional appends \(alsoExpect\) need KurrentDB 26\.1 or later/,
    )
    const unimplemented = Object.assign(new UnknownError(), { code: 12 })
    const refusing = new KurrentDbEventStore(
      client({
        appendRecords: async () => {
          throw unimplemented
        },
      }),
    )
    const e = await refusing.append('s', [newEvent()], { expectedRevision: 'no_stream', alsoExpect }).catch((x) => x)
    expect(e.message).toMatch(/need KurrentDB 26\.1/)
    expect(e.cause).toBe(unimplemented)
  })

  it('names the stream that moved, with its expected and actual revision', async () => {
    let refusal = violation({ stream: 'room-1', expected: '7', actual: '8' })
    const reads: unknown[] = []
    const store = new KurrentDbEventStore(
      client({
        appendRecords: async () => {
          throw refusal
        },
        readStream: (_s: string, options: unknown) => {
          reads.push(options)
          return iterate([])
        },
      }),
    )
    const alsoExpect = [{ stream: 'room-1', expectedRevision: 7n }]
    const moved = await store.append('message-1', [newEvent()], { expectedRevision: 2n, alsoExpect }).catch((e) => e)
    expect(moved).toBeInstanceOf(WrongExpectedRevisionError)
    expect(moved).toMatchObject({ stream: 'room-1', expected: 7n, actual: 8n })
    // The stream itself did not move: nothing of this append can be there, nothing to read.
    expect(reads).toEqual([])

    refusal = violation({ stream: 'room-1', expected: '-4', actual: '-1' })
    const alsoExists = [{ stream: 'room-1', expectedRevision: 'stream_exists' as const }]
    expect(
      await store.append('message-1', [newEvent()], { expectedRevision: 2n, alsoExpect: alsoExists }).catch((e) => e),
    ).toMatchObject({
      stream: 'room-1',
      expected: 'stream_exists',
      actual: 'no_stream',
    })

    // Both moved: the condition is named first, as Postgres does; the stream's own events are not ours.
    refusal = violation({ stream: 'message-1', expected: '2', actual: '3' }, { stream: 'room-1', expected: '7', actual: '9' })
    expect(await store.append('message-1', [newEvent()], { expectedRevision: 2n, alsoExpect }).catch((e) => e)).toMatchObject({
      stream: 'room-1',
      expected: 7n,
      actual: 9n,
    })
    expect(reads).toEqual([expect.objectContaining({ fromRevision: 3n, maxCount: 1 })])

    refusal = violation({ stream: 'message-1', expected: '-1', actual: '0' })
    const own = await store.append('message-1', [newEvent()], { expectedRevision: 'no_stream', alsoExpect }).catch((e) => e)
    expect(own).toBeInstanceOf(WrongExpectedRevisionError)
    expect(own).toMatchObject({ stream: 'message-1', expected: 'no_stream', actual: 0n })
  })

  it('answers a retry of an append that landed as the first time, and refuses a partly written one', async () => {
    const events = [newEvent(), newEvent()]
    let following: Stored[] = []
    const reads: unknown[] = []
    const store = new KurrentDbEventStore(
      client({
        appendRecords: async () => {
          // The room moved since, and the stream moved by this very append.
          throw violation({ stream: 'message-1', expected: '4', actual: '6' }, { stream: 'room-1', expected: '7', actual: '8' })
        },
        readStream: (_s: string, options: unknown) => {
          reads.push(options)
          return iterate(following.map(resolved))
        },
      }),
    )
    const options = { expectedRevision: 4n, alsoExpect: [{ stream: 'room-1', expectedRevision: 7n }] }
    following = events.map((e, i) => ({
      id: e.id,
      stream: 'message-1',
      type: 't',
      revision: 5n + BigInt(i),
      pos: 50n + BigInt(i),
    }))
    expect(await store.append('message-1', events, options)).toEqual({
      nextExpectedRevision: 6n,
      position: { transactionId: 51n, sequence: 51n },
    })
    expect(reads).toEqual([expect.objectContaining({ fromRevision: 5n, maxCount: 2 })])
    following = [following[0]!, { id: uuid(), stream: 'message-1', type: 't', revision: 6n, pos: 51n }]
    await expect(store.append('message-1', events, options)).rejects.toBeInstanceOf(PartialIdempotencyError)
  })
})

describe('KurrentDbEventStore.readTenant', () => {
  const tenant = uuid()
  const other = uuid()
  const at = (pos: bigint) => ({ transactionId: pos, sequence: pos })
  /** The same place in the server's vocabulary. */
  const logAt = (pos: bigint) => ({ commit: pos, prepare: pos })
  // 1,200 events of four kinds, round-robin, one every 10 positions: more than two server pages of the types read.
  const kinds = [
    { type: 'message.posted', tenantId: tenant, roomId: 'r1' },
    { type: 'message.posted', tenantId: other, roomId: 'r1' },
    { type: 'message.posted', tenantId: tenant, roomId: 'r2' },
    { type: 'room.renamed', tenantId: tenant, roomId: 'r1' },
  ]
  const tenantLog: Stored[] = [
    { id: 'sys', stream: '$stats-node', type: 'statsCollected', revision: 0n, pos: 5n },
    ...Array.from({ length: 1_200 }, (_, i) => {
      const kind = kinds[i % kinds.length]!
      return {
        id: `e${i}`,
        stream: `message-${i}`,
        type: kind.type,
        revision: 0n,
        pos: 10n * BigInt(i + 1),
        data: { roomId: kind.roomId, n: i },
        metadata: encodeMetadata(metadata({ tenantId: kind.tenantId })),
      }
    }),
  ]
  const ids = (events: readonly RecordedEvent[]) => events.map((e) => e.id)
  const expected = (pick: (i: number) => boolean) =>
    Array.from({ length: 1_200 }, (_, i) => i)
      .filter(pick)
      .map((i) => `e${i}`)

  it('reads the tenant’s events of those types, in order, filtered by type on the server, across pages', async () => {
    const calls: ReadAllCall[] = []
    const store = new KurrentDbEventStore(client(fakeLog(tenantLog, calls)))
    const all = await store.readTenant(tenant, { types: ['message.posted'] })
    expect(ids(all)).toEqual(expected((i) => i % 4 === 0 || i % 4 === 2))
    expect(calls[0]).toMatchObject({
      direction: 'forwards',
      fromPosition: 'start',
      filter: { filterOn: 'eventType', regex: '^(?:message\\.posted)$' },
    })
    // 900 events of that type on the server: pages of 500, the second starting at the last one seen (e665).
    expect(calls.map((c) => c.fromPosition)).toEqual(['start', logAt(6_660n)])
    const both = await store.readTenant(tenant, { types: ['message.posted', 'room.renamed'] })
    expect(ids(both)).toEqual(expected((i) => i % 4 !== 1))
    expect(await store.readTenant(uuid(), { types: ['message.posted'] })).toEqual([])
  })

  it('keeps only the events whose data holds the matched values', async () => {
    const store = new KurrentDbEventStore(client(fakeLog(tenantLog)))
    const r2 = await store.readTenant(tenant, { types: ['message.posted'], match: { roomId: 'r2' } })
    expect(ids(r2)).toEqual(expected((i) => i % 4 === 2))
    expect(await store.readTenant(tenant, { types: ['message.posted'], match: { roomId: 'r3' } })).toEqual([])
  })

  it('bounds the read inclusively on both ends and stops at the upper bound', async () => {
    const calls: ReadAllCall[] = []
    const store = new KurrentDbEventStore(client(fakeLog(tenantLog, calls)))
    const within = await store.readTenant(tenant, { types: ['message.posted'], from: at(50n), to: at(90n) })
    expect(ids(within)).toEqual(['e4', 'e6', 'e8'])
    expect(calls.length).toBe(1)
    expect(calls[0]!.fromPosition).toEqual(logAt(50n))
    // A bound inside the second page: the read goes no further.
    calls.length = 0
    const late = await store.readTenant(tenant, { types: ['message.posted'], from: at(9_000n), to: at(9_030n) })
    expect(ids(late)).toEqual(['e900', 'e902'])
    expect(calls.length).toBe(1)
  })

  it('stops at maxCount, and reads nothing for no types or no room', async () => {
    const calls: ReadAllCall[] = []
    const store = new KurrentDbEventStore(client(fakeLog(tenantLog, calls)))
    expect(ids(await store.readTenant(tenant, { types: ['message.posted'], maxCount: 3 }))).toEqual(['e0', 'e2', 'e4'])
    expect(calls.length).toBe(1)
    // Tenant and match are filtered here: reaching 250 takes a second page.
    calls.length = 0
    const deep = await store.readTenant(tenant, { types: ['message.posted'], match: { roomId: 'r2' }, maxCount: 250 })
    expect(ids(deep)).toEqual(expected((i) => i % 4 === 2).slice(0, 250))
    expect(calls.length).toBe(2)
    calls.length = 0
    expect(await store.readTenant(tenant, { types: [] })).toEqual([])
    expect(await store.readTenant(tenant, { types: ['message.posted'], maxCount: 0 })).toEqual([])
    expect(calls).toEqual([])
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
