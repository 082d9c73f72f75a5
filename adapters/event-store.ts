/**
 * The event store port, modelled on EventStoreDB semantics. Every adapter passes
 * tests/contract/event-store.contract.ts.
 */

/**
 * A place in the global ($all) order: the id of the transaction that wrote the event, then the event's sequence
 * number in the store (Postgres: `transaction_id`, `global_position`). Compared lexicographically: transaction id
 * first, then sequence.
 */
export type Position = { readonly transactionId: bigint; readonly sequence: bigint }

export const START: Position = Object.freeze({ transactionId: 0n, sequence: 0n })

export type ExpectedRevision = bigint | 'no_stream' | 'stream_exists' | 'any'

export type Actor = {
  readonly type: 'user' | 'agent' | 'system' | 'operator' | 'service'
  readonly id: string
}

export type EventMetadata = {
  readonly tenantId: string | null
  readonly actor: Actor
  readonly correlationId: string
  readonly causationId: string | null
  readonly occurredAt: string
  readonly schemaVersion: number
}

export type NewEvent<T extends string = string, D = unknown> = {
  readonly id: string
  readonly type: T
  readonly data: D
  readonly metadata: EventMetadata
}

export type RecordedEvent<T extends string = string, D = unknown> = NewEvent<T, D> & {
  readonly streamName: string
  readonly revision: bigint
  readonly position: Position
}

export type AppendResult = {
  /** The stream's revision after the append: the revision of its last event. */
  readonly nextExpectedRevision: bigint
  /** Where the last appended event stands in the global order. */
  readonly position: Position
}

/** Another stream a decision read, at the revision it read it. */
export type StreamCondition = { readonly stream: string; readonly expectedRevision: ExpectedRevision }

export type AppendOptions = {
  readonly expectedRevision: ExpectedRevision
  /**
   * The other streams the decision read: the append happens only if none of them moved, checked atomically
   * with it; otherwise WrongExpectedRevisionError names the stream that moved.
   */
  readonly alsoExpect?: readonly StreamCondition[]
}

export type ReadStreamOptions = {
  readonly direction?: 'forwards' | 'backwards'
  /** Inclusive. Defaults to the start (forwards) or the end (backwards). */
  readonly fromRevision?: bigint
  readonly maxCount?: number
}

export type ReadAllOptions = {
  /** Exclusive: events strictly after this position. Defaults to the very start. */
  readonly from?: Position
  readonly maxCount?: number
}

export type ReadTenantOptions = {
  /** Event types to read. */
  readonly types: readonly string[]
  /** Inclusive bounds in the global order; from defaults to the start, to to the newest committed event. */
  readonly from?: Position
  readonly to?: Position
  /** Only events whose data holds these top-level values (e.g. `{ roomId }`). */
  readonly match?: Readonly<Record<string, string>>
  readonly maxCount?: number
}

export type SubscribeAllOptions = {
  readonly from?: Position
  /** Upper bound on the size of one delivered batch. */
  readonly maxBatch?: number
}

/**
 * Catch-up then live, in global order, in batches. Iterating ends when close() is called.
 */
export interface Subscription extends AsyncIterable<readonly RecordedEvent[]> {
  close(): Promise<void>
}

export interface EventStore {
  append(stream: string, events: readonly NewEvent[], options: AppendOptions): Promise<AppendResult>
  readStream(stream: string, options?: ReadStreamOptions): Promise<RecordedEvent[]>
  readAll(options?: ReadAllOptions): Promise<RecordedEvent[]>
  /**
   * One tenant's events as they stand committed now, in global order: what a decision over many streams
   * reads (the messages of a room to delete a range). Unlike readAll it does not wait for older transactions
   * still in flight, so it never waits on other tenants' writes.
   */
  readTenant(tenantId: string, options: ReadTenantOptions): Promise<RecordedEvent[]>
  subscribeAll(options?: SubscribeAllOptions): Subscription
  /** The global position of the newest event readers can see, or START for an empty store. */
  headPosition(): Promise<Position>
  /**
   * Maps the public, single-number position a client holds (the `position` of a command's answer)
   * back to a Position; null when no event stands there.
   */
  resolvePosition(publicPosition: bigint): Promise<Position | null>
  close(): Promise<void>
}

export class WrongExpectedRevisionError extends Error {
  override readonly name = 'WrongExpectedRevisionError'
  readonly stream: string
  readonly expected: ExpectedRevision
  readonly actual: bigint | 'no_stream'
  constructor(stream: string, expected: ExpectedRevision, actual: bigint | 'no_stream') {
    super(`stream ${stream}: expected revision ${String(expected)}, actual ${String(actual)}`)
    this.stream = stream
    this.expected = expected
    this.actual = actual
  }
}

/** Raised when some, but not all, event ids of an append were already written. */
export class PartialIdempotencyError extends Error {
  override readonly name = 'PartialIdempotencyError'
}

export const comparePositions = (a: Position, b: Position): number =>
  a.transactionId < b.transactionId
    ? -1
    : a.transactionId > b.transactionId
      ? 1
      : a.sequence < b.sequence
        ? -1
        : a.sequence > b.sequence
          ? 1
          : 0

/** The single number clients see as `position`: the sequence. */
export const publicPosition = (p: Position): number => Number(p.sequence)

/** Serialised form used for cursors, Redis stream ids and checkpoints in text: `<transactionId>-<sequence>`. */
export const formatPosition = (p: Position): string => `${p.transactionId}-${p.sequence}`

export const parsePosition = (s: string): Position | null => {
  const m = /^(\d{1,20})-(\d{1,20})$/.exec(s)
  return m ? { transactionId: BigInt(m[1]!), sequence: BigInt(m[2]!) } : null
}

export const streamName = (category: string, id: string): string => `${category}-${id}`
