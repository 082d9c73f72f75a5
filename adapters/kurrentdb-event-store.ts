import {
  type AllStreamResolvedEvent,
  type AllStreamSubscription,
  AppendConsistencyViolationError,
  type AppendRecordInput,
  type AppendRecordsResult,
  type AppendStreamState,
  BACKWARDS,
  type ConsistencyCheck,
  type ConsistencyViolation,
  type CurrentStreamState,
  DeadlineExceededError,
  END,
  type EventData,
  eventTypeFilter,
  excludeSystemEvents,
  FORWARDS,
  START as KURRENT_START,
  KurrentDBClient,
  type ReadPosition,
  type ResolvedEvent,
  STREAM_STATE,
  StreamNotFoundError,
  UnknownError,
  UnsupportedError,
  WrongExpectedVersionError,
} from '@kurrent/kurrentdb-client'
import {
  type AppendOptions,
  type AppendResult,
  comparePositions,
  type EventMetadata,
  type EventStore,
  type ExpectedRevision,
  type NewEvent,
  PartialIdempotencyError,
  type Position,
  type ReadAllOptions,
  type ReadStreamOptions,
  type ReadTenantOptions,
  type RecordedEvent,
  START,
  type StreamCondition,
  type SubscribeAllOptions,
  type Subscription,
  WrongExpectedRevisionError,
} from './event-store.ts'

/**
 * The EventStore port on EventStoreDB/KurrentDB (gRPC client `@kurrent/kurrentdb-client`).
 *
 * Mapping:
 * - our event id is the KurrentDB event id, so the server's own idempotency applies; our type is its type,
 *   data is stored as JSON, and our metadata envelope (tenantId included) is the event's JSON metadata, plus
 *   the server's conventional `$correlationId`/`$causationId` (so $by_correlation_id works; stripped on read);
 * - an append with conditions on other streams (`alsoExpect`) goes through appendRecords, the multi-stream append
 *   with consistency checks: one check per condition and one for the stream's own expected revision, evaluated
 *   atomically with the write. appendRecords takes metadata as string values only, so there the envelope is one
 *   JSON string property, `envelope`, beside `$correlationId`/`$causationId`; reads accept both shapes. An append
 *   without conditions stays on appendToStream;
 * - a Position is the server's log position, mapped here at the edge: {commit, prepare} ↔ {transactionId, sequence}.
 *   Every event appended through the gRPC API is its own implicit commit, so commit == prepare and the public
 *   number (sequence) names exactly one event;
 * - reads of $all and subscriptions leave out system events ($-prefixed types or streams);
 * - WrongExpectedVersion, and a consistency violation of appendRecords, become WrongExpectedRevisionError with
 *   the stream that moved and its `actual` (a revision or 'no_stream').
 *
 * Where the semantics differ from the Postgres adapter (the contract suite holds for both):
 * - Idempotency is the server's and is scoped to the stream: a retry with an exact revision or 'no_stream' is
 *   recognised durably (the server compares the ids at the revisions that follow the expected one); with 'any'
 *   or 'stream_exists' only through the server's bounded in-memory cache of recent event ids, so an old retry,
 *   or one after a server restart, can append duplicates. Ids are not unique across streams (Postgres refuses
 *   an id already used in another stream).
 * - Partial idempotency (some ids written, some not) reaches us as WrongExpectedVersion, the server cannot say
 *   which. We tell them apart: under 'any'/'stream_exists' the server refuses an existing stream only for that
 *   reason; under an exact revision or 'no_stream' we look at the events that follow the expected revision. A
 *   batch under 'any' whose first id is new is written whole, even if later ids exist (Postgres refuses it).
 * - An identical append that arrives while the original is not yet indexed is dropped by the server and times
 *   out; identical appends in this process are therefore serialised, and a timed-out append is retried once
 *   (safe: the retry is recognised as idempotent if the first attempt landed).
 * - Conditional appends need a server that offers appendRecords (KurrentDB 26.1 or later, as the client checks);
 *   on an older one they fail with an error saying so, while appends without conditions still work. A retry of a
 *   conditional append is recognised by us, not the server: when the stream's own check fails under an exact
 *   revision or 'no_stream', we look at the events that follow it, and answer as the first time if they are ours
 *   (Postgres does the same whatever the conditions' streams did since). Under 'any' or 'stream_exists' nothing
 *   locates an earlier attempt, so a retry is refused if a condition's stream moved since, and otherwise relies on
 *   the server not writing a record id twice. A timed-out conditional append is not retried.
 * - The answer of appendRecords holds the log position as one number, not the {commit, prepare} pair: the
 *   position of a conditional append is read back from its last event (one more round trip).
 * - Unverified without a server (none runs where these tests run; the unit tests drive a fake client that
 *   answers as the client's code and types say the server does): that appendRecords' records come back on reads
 *   with their properties as the JSON metadata object, that the revision it answers for a stream is that of its
 *   last record, that an event it writes has commit == prepare (resolvePosition relies on it), and whether it
 *   refuses or skips a record id already written.
 * - Global order is the server's log order, so there is no late-commit window to guard against.
 * - There is no tenant index: readTenant reads every tenant's events of the requested types from `from` on
 *   (filtered by type on the server, by tenant, `match` and `to` here), so its cost grows with all tenants'
 *   traffic, not the tenant's. A server-side projection into one stream per tenant would fix that.
 */

/** The part of the client this adapter uses; tests pass a fake. */
export type KurrentClient = Pick<
  KurrentDBClient,
  'appendToStream' | 'appendRecords' | 'readStream' | 'readAll' | 'subscribeToAll' | 'dispose'
>

const MAX_POSITION = 2n ** 63n
const APPEND_TIMEOUT_RETRIES = 1
const HEAD_PAGE = 64
const TENANT_PAGE = 500
const APPEND_RECORDS_SINCE = '26.1'
const GRPC_UNIMPLEMENTED = 12
/** The appendRecords metadata property holding our envelope as JSON. */
const ENVELOPE = 'envelope'

export const toStreamState = (expected: ExpectedRevision): AppendStreamState => {
  if (typeof expected === 'bigint') {
    if (expected < 0n) throw new RangeError(`expected revision must be >= 0, got ${expected}`)
    return expected
  }
  return expected
}

/** The server reports a missing stream as 'no_stream' or as a negative revision (-1; -5/-6 for deleted ones). */
export const toActualRevision = (current: CurrentStreamState | bigint): bigint | 'no_stream' =>
  current === 'no_stream' || current < 0n ? 'no_stream' : current

export type ConflictReading = 'conflict' | 'partial' | { readonly probeFrom: bigint }

/**
 * What a WrongExpectedVersion means before looking at the stream. The server answers WrongExpectedVersion both
 * for a real conflict and for a batch whose ids were partly written already (CorruptedIdempotency).
 */
export function readConflict(expected: ExpectedRevision, actual: bigint | 'no_stream'): ConflictReading {
  // Nothing written: nothing can have been written twice.
  if (actual === 'no_stream') return 'conflict'
  // The stream exists, so 'any' and 'stream_exists' were refused for a partial id match only.
  if (expected === 'any' || expected === 'stream_exists') return 'partial'
  const first = expected === 'no_stream' ? 0n : expected + 1n
  // No event after the expected revision: a plain conflict.
  if (actual < first) return 'conflict'
  return { probeFrom: first }
}

/** The server's log position: a Position in the server's vocabulary. */
type LogPosition = { readonly commit: bigint; readonly prepare: bigint }

/** A position the server returned, or null when it sent none or a sentinel (-1 cast to an unsigned number). */
export const validPosition = (p: LogPosition | undefined): Position | null =>
  p && p.commit >= 0n && p.prepare >= 0n && p.commit < MAX_POSITION && p.prepare < MAX_POSITION
    ? { transactionId: p.commit, sequence: p.prepare }
    : null

/** The server's log position of a Position. */
export const toLogPosition = (p: Position): LogPosition => ({ commit: p.transactionId, prepare: p.sequence })

export const toReadPosition = (p: Position): ReadPosition =>
  p.transactionId === 0n && p.sequence === 0n ? KURRENT_START : toLogPosition(p)

/** Reads of $all start at their position inclusively; the port is exclusive. */
export const isAfter = (p: Position, from: Position): boolean => comparePositions(p, from) > 0

export const isSystemEvent = (e: { readonly streamName: string; readonly type: string }): boolean =>
  e.type.startsWith('$') || e.streamName.startsWith('$')

export const encodeMetadata = (m: EventMetadata): Record<string, unknown> => ({
  ...m,
  $correlationId: m.correlationId,
  ...(m.causationId === null ? {} : { $causationId: m.causationId }),
})

/** The envelope as appendRecords takes metadata: string values only. */
export const encodeRecordMetadata = (m: EventMetadata): Record<string, string> => ({
  [ENVELOPE]: JSON.stringify(m),
  $correlationId: m.correlationId,
  ...(m.causationId === null ? {} : { $causationId: m.causationId }),
})

const isJsonObject = (v: unknown): v is Record<string, unknown> =>
  v !== null && typeof v === 'object' && !Array.isArray(v) && !(v instanceof Uint8Array)

/**
 * Our envelope back from the stored metadata, as appendToStream stores it (the server's `$` keys removed) or as
 * appendRecords does (a JSON string under `envelope`); null if it is neither.
 */
export function decodeMetadata(raw: unknown): EventMetadata | null {
  if (!isJsonObject(raw)) return null
  const envelope = raw[ENVELOPE]
  if (typeof envelope === 'string') {
    try {
      const parsed: unknown = JSON.parse(envelope)
      return isJsonObject(parsed) ? (parsed as EventMetadata) : null
    } catch {
      return null
    }
  }
  const out: Record<string, unknown> = {}
  for (const [k, v] of Object.entries(raw)) if (!k.startsWith('$')) out[k] = v
  return out as EventMetadata
}

export const toEventData = (e: NewEvent): EventData =>
  ({
    id: e.id,
    contentType: 'application/json',
    type: e.type,
    // JSON cannot hold undefined; Postgres stores it as null too.
    data: e.data === undefined ? null : e.data,
    metadata: encodeMetadata(e.metadata),
  }) as EventData

export const toAppendRecord = (stream: string, e: NewEvent): AppendRecordInput => ({
  streamName: stream,
  record: { ...toEventData(e), metadata: encodeRecordMetadata(e.metadata) } as EventData,
})

export const toConsistencyCheck = (c: StreamCondition): ConsistencyCheck => ({
  type: STREAM_STATE,
  streamName: c.stream,
  expectedState: toStreamState(c.expectedRevision),
})

/** Only exactly these types: a prefix filter would also let `room.opened.v2` through for `room.opened`. */
export const exactTypesRegex = (types: readonly string[]): string =>
  `^(?:${types.map((t) => t.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('|')})$`

/** As Postgres' `data @> match`: data is a JSON object holding each of these top-level values. */
export const matchesData = (data: unknown, match: Readonly<Record<string, string>> = {}): boolean =>
  isJsonObject(data) && Object.entries(match).every(([k, v]) => data[k] === v)

const isUnsupported = (e: unknown): boolean =>
  e instanceof UnsupportedError || (e instanceof UnknownError && e.code === GRPC_UNIMPLEMENTED)

/** An event written by someone else without our envelope still needs one. */
const foreignMetadata = (id: string, created: Date): EventMetadata => ({
  tenantId: null,
  actor: { type: 'system', id: 'kurrentdb' },
  correlationId: id,
  causationId: null,
  occurredAt: created.toISOString(),
  schemaVersion: 1,
})

export function toRecordedEvent(resolved: ResolvedEvent | AllStreamResolvedEvent): RecordedEvent | null {
  const e = resolved.event
  if (!e) return null
  const position = validPosition(e.position)
  if (!position) throw new Error(`KurrentDB sent event ${e.id} without its log position (servers before 22.6 do)`)
  return {
    id: e.id,
    type: e.type,
    data: e.data,
    metadata: decodeMetadata(e.metadata) ?? foreignMetadata(e.id, e.created),
    streamName: e.streamId,
    revision: e.revision,
    position,
  }
}

/** Identical appends (same stream, same ids) are serialised under this key. */
export const appendKey = (stream: string, events: readonly NewEvent[]): string =>
  `${stream}\u0000${events.map((e) => e.id).join(',')}`

export class KurrentDbEventStore implements EventStore {
  private readonly client: KurrentClient
  private readonly subscriptions = new Set<Subscription>()
  private readonly inFlight = new Map<string, Promise<AppendResult>>()

  /** From a connection string (`kurrentdb://host:2113?tls=false`, `esdb://…`), or a client (tests). */
  constructor(connection: string | KurrentClient) {
    if (typeof connection === 'string') {
      // With it the client answers a conflict with `success: false` instead of an error we can translate.
      if (/[?&]throwOnAppendFailure=false\b/i.test(connection)) {
        throw new Error('EVENTSTORE_URL: throwOnAppendFailure=false is not supported by the event store adapter')
      }
      this.client = KurrentDBClient.connectionString(connection)
    } else {
      this.client = connection
    }
  }

  async append(stream: string, events: readonly NewEvent[], options: AppendOptions): Promise<AppendResult> {
    if (events.length === 0) throw new Error('append needs at least one event')
    const conditions = options.alsoExpect ?? []
    const key = appendKey(stream, events)
    const before = this.inFlight.get(key)
    const run = (before ? before.then(noop, noop) : Promise.resolve()).then(() =>
      conditions.length > 0
        ? this.appendChecked(stream, events, options.expectedRevision, conditions)
        : this.appendOnce(stream, events, options.expectedRevision, 0),
    )
    this.inFlight.set(key, run)
    try {
      return await run
    } finally {
      if (this.inFlight.get(key) === run) this.inFlight.delete(key)
    }
  }

  private async appendOnce(
    stream: string,
    events: readonly NewEvent[],
    expected: ExpectedRevision,
    attempt: number,
  ): Promise<AppendResult> {
    let result: Awaited<ReturnType<KurrentClient['appendToStream']>>
    try {
      result = await this.client.appendToStream(stream, events.map(toEventData), { streamState: toStreamState(expected) })
    } catch (e) {
      if (e instanceof WrongExpectedVersionError) {
        throw await this.conflict(stream, events, expected, toActualRevision(e.actualState))
      }
      // The server drops an identical append whose original is not indexed yet; the retry finds it.
      if (e instanceof DeadlineExceededError && attempt < APPEND_TIMEOUT_RETRIES) {
        return this.appendOnce(stream, events, expected, attempt + 1)
      }
      throw e
    }
    // The server answers with the position of the last event written (or, for an idempotent retry, of the last
    // event originally written). Should it send none, read that event.
    const position = validPosition(result.position) ?? (await this.positionAt(stream, result.nextExpectedRevision))
    return { nextExpectedRevision: result.nextExpectedRevision, position }
  }

  private async appendChecked(
    stream: string,
    events: readonly NewEvent[],
    expected: ExpectedRevision,
    conditions: readonly StreamCondition[],
  ): Promise<AppendResult> {
    let result: AppendRecordsResult
    try {
      result = await this.client.appendRecords(
        events.map((e) => toAppendRecord(stream, e)),
        [{ stream, expectedRevision: expected }, ...conditions].map(toConsistencyCheck),
      )
    } catch (e) {
      if (e instanceof AppendConsistencyViolationError) return this.violated(stream, events, expected, e.violations)
      if (isUnsupported(e)) {
        throw new Error(
          `stream ${stream}: conditional appends (alsoExpect) need KurrentDB ${APPEND_RECORDS_SINCE} or later ` +
            '(appendRecords with consistency checks), which this server does not offer',
          { cause: e },
        )
      }
      throw e
    }
    const revision = result.responses.find((r) => r.streamName === stream)?.revision
    if (revision === undefined) throw new Error(`stream ${stream}: KurrentDB answered the append without its revision`)
    // The answer's position is a single number where the log position is a {commit, prepare} pair: read the event.
    return { nextExpectedRevision: revision, position: await this.positionAt(stream, revision) }
  }

  /** A conditional append refused: an earlier attempt of this very append, or the stream that moved. */
  private async violated(
    stream: string,
    events: readonly NewEvent[],
    expected: ExpectedRevision,
    violations: readonly ConsistencyViolation[],
  ): Promise<AppendResult> {
    const own = violations.find((v) => v.streamName === stream)
    // An earlier attempt of this append that landed fails the stream's own check: tell it from a conflict.
    const reading = own ? readConflict(expected, toActualRevision(own.actualState)) : 'conflict'
    if (typeof reading === 'object') {
      const ours = new Set(events.map((e) => e.id))
      const following = await this.readStream(stream, { fromRevision: reading.probeFrom, maxCount: events.length })
      const written = following.filter((e) => ours.has(e.id))
      if (written.length === events.length) {
        const last = written[written.length - 1]!
        return { nextExpectedRevision: last.revision, position: last.position }
      }
      if (written.length > 0) throw new PartialIdempotencyError(`stream ${stream}: some of these event ids were already appended`)
    }
    // Postgres checks the conditions before the stream's own revision: name the stream it would name.
    const moved = violations.find((v) => v.streamName !== stream) ?? own
    if (!moved) throw new Error(`stream ${stream}: KurrentDB refused the append without naming a stream that moved`)
    throw new WrongExpectedRevisionError(moved.streamName, moved.expectedState, toActualRevision(moved.actualState))
  }

  private async conflict(
    stream: string,
    events: readonly NewEvent[],
    expected: ExpectedRevision,
    actual: bigint | 'no_stream',
  ): Promise<Error> {
    let reading = readConflict(expected, actual)
    if (typeof reading === 'object') {
      const ours = new Set(events.map((e) => e.id))
      const following = await this.readStream(stream, { fromRevision: reading.probeFrom, maxCount: events.length })
      reading = following.some((e) => ours.has(e.id)) ? 'partial' : 'conflict'
    }
    return reading === 'partial'
      ? new PartialIdempotencyError(`stream ${stream}: some of these event ids were already appended`)
      : new WrongExpectedRevisionError(stream, expected, actual)
  }

  private async positionAt(stream: string, revision: bigint): Promise<Position> {
    const [event] = await this.readStream(stream, { fromRevision: revision, maxCount: 1 })
    if (!event) throw new Error(`stream ${stream}: no event at revision ${revision} right after appending it`)
    return event.position
  }

  async readStream(stream: string, options: ReadStreamOptions = {}): Promise<RecordedEvent[]> {
    if (options.maxCount !== undefined && options.maxCount <= 0) return []
    const backwards = options.direction === 'backwards'
    const out: RecordedEvent[] = []
    try {
      for await (const resolved of this.client.readStream(stream, {
        direction: backwards ? BACKWARDS : FORWARDS,
        fromRevision: options.fromRevision ?? (backwards ? END : KURRENT_START),
        maxCount: options.maxCount ?? Number.MAX_SAFE_INTEGER,
      })) {
        const e = toRecordedEvent(resolved)
        if (e) out.push(e)
      }
    } catch (e) {
      if (e instanceof StreamNotFoundError) return []
      throw e
    }
    return out
  }

  async readAll(options: ReadAllOptions = {}): Promise<RecordedEvent[]> {
    const from = options.from ?? START
    const maxCount = options.maxCount ?? 1_000
    const out: RecordedEvent[] = []
    let cursor = from
    // The server filters system events by type; anything else in a $-stream is dropped here, so a page can come
    // back short of events that exist: read on until the page is full or the log ends.
    while (out.length < maxCount) {
      const want = maxCount - out.length + 1 // + the event at the cursor, which the server includes
      let received = 0
      let last: Position | null = null
      for await (const resolved of this.client.readAll({
        direction: FORWARDS,
        fromPosition: toReadPosition(cursor),
        maxCount: want,
        filter: excludeSystemEvents(),
      })) {
        received++
        const e = toRecordedEvent(resolved)
        if (!e) continue
        last = e.position
        if (isAfter(e.position, cursor) && !isSystemEvent(e)) out.push(e)
      }
      if (received < want || last === null || !isAfter(last, cursor)) break
      cursor = last
    }
    return out.slice(0, maxCount)
  }

  async readTenant(tenantId: string, options: ReadTenantOptions): Promise<RecordedEvent[]> {
    const maxCount = options.maxCount ?? Number.POSITIVE_INFINITY
    if (options.types.length === 0 || maxCount <= 0) return []
    const filter = eventTypeFilter({ regex: exactTypesRegex(options.types) })
    // The server reads the regex in .NET's dialect; the exact check here does not depend on it.
    const types = new Set(options.types)
    const out: RecordedEvent[] = []
    let cursor = options.from ?? START
    // `from` is inclusive, as the server reads; each later page starts at the last event seen, already taken.
    let firstPage = true
    while (true) {
      let received = 0
      let last: Position | null = null
      for await (const resolved of this.client.readAll({
        direction: FORWARDS,
        fromPosition: toReadPosition(cursor),
        maxCount: TENANT_PAGE,
        filter,
      })) {
        received++
        const e = toRecordedEvent(resolved)
        if (!e) continue
        last = e.position
        if (options.to && comparePositions(e.position, options.to) > 0) return out
        if (!firstPage && !isAfter(e.position, cursor)) continue
        if (types.has(e.type) && e.metadata.tenantId === tenantId && matchesData(e.data, options.match)) {
          out.push(e)
          if (out.length >= maxCount) return out
        }
      }
      if (received < TENANT_PAGE || last === null || !isAfter(last, cursor)) return out
      cursor = last
      firstPage = false
    }
  }

  subscribeAll(options: SubscribeAllOptions = {}): Subscription {
    let from = options.from ?? START
    const maxBatch = Math.max(1, options.maxBatch ?? 1_000)
    const store = this
    let closed = false
    let source: AllStreamSubscription | null = null
    // Wake-ups: `signalled` covers a signal that arrives between a read that found nothing and the wait.
    let signalled = false
    let waiter: (() => void) | null = null
    const signal = () => {
      signalled = true
      const w = waiter
      waiter = null
      w?.()
    }
    const stop = async () => {
      const s = source
      source = null
      if (!s) return
      await s.unsubscribe().catch(noop)
      s.destroy()
    }
    const subscription: Subscription = {
      async close() {
        closed = true
        store.subscriptions.delete(subscription)
        signal()
        await stop()
      },
      async *[Symbol.asyncIterator]() {
        if (closed) return
        let failure: unknown = null
        let ended = false
        const s = store.client.subscribeToAll(
          { fromPosition: toReadPosition(from), filter: excludeSystemEvents() },
          { highWaterMark: maxBatch },
        )
        source = s
        s.on('readable', signal)
        s.on('error', (e: unknown) => {
          failure ??= e
          signal()
        })
        s.on('end', () => {
          ended = true
          signal()
        })
        s.on('close', () => {
          ended = true
          signal()
        })
        try {
          while (!closed) {
            signalled = false
            const batch: RecordedEvent[] = []
            while (batch.length < maxBatch) {
              const resolved = s.read() as AllStreamResolvedEvent | null
              if (resolved === null) break
              const e = toRecordedEvent(resolved)
              // The server starts at `from` inclusively; system events are filtered by type there, by stream here.
              if (e && isAfter(e.position, from) && !isSystemEvent(e)) batch.push(e)
            }
            if (batch.length > 0) {
              from = batch[batch.length - 1]!.position
              yield batch
              continue
            }
            if (closed) return
            if (failure) throw failure
            if (ended) throw new Error('KurrentDB ended the $all subscription')
            if (!signalled) await new Promise<void>((resolve) => (waiter = resolve))
          }
        } finally {
          await stop()
        }
      },
    }
    this.subscriptions.add(subscription)
    return subscription
  }

  async headPosition(): Promise<Position> {
    let cursor: ReadPosition = END
    // Backwards reads are exclusive of their position, so paging on from the last event seen is exact.
    while (true) {
      let received = 0
      let last: Position | null = null
      for await (const resolved of this.client.readAll({
        direction: BACKWARDS,
        fromPosition: cursor,
        maxCount: HEAD_PAGE,
        filter: excludeSystemEvents(),
      })) {
        received++
        const e = toRecordedEvent(resolved)
        if (!e) continue
        if (!isSystemEvent(e)) return e.position
        last = e.position
      }
      if (received < HEAD_PAGE || last === null) return START
      cursor = toLogPosition(last)
    }
  }

  async resolvePosition(publicPosition: bigint): Promise<Position | null> {
    if (publicPosition < 0n || publicPosition >= MAX_POSITION) return null
    // commit == prepare for every event appended through gRPC: the event, if any, starts exactly there.
    const at: LogPosition = { commit: publicPosition, prepare: publicPosition }
    try {
      for await (const resolved of this.client.readAll({ direction: FORWARDS, fromPosition: at, maxCount: 1 })) {
        const e = toRecordedEvent(resolved)
        if (e && e.position.sequence === publicPosition) return e.position
      }
    } catch (e) {
      // A number that is not the start of a log record makes the server refuse the read.
      if (e instanceof UnknownError) return null
      throw e
    }
    return null
  }

  async close(): Promise<void> {
    for (const s of [...this.subscriptions]) await s.close()
    await this.client.dispose()
  }
}

const noop = () => {}
