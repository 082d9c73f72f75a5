/**
 * The realtime port: one append-only stream of events per user, wakeups when a user's stream grows, and
 * the event queues long-polling clients hold. Served by Redis (adapters/redis-user-streams.ts) or, without
 * Redis, by Postgres (adapters/postgres-user-streams.ts); both pass tests/contract/user-streams.contract.ts.
 *
 * Entry ids are formatted global positions (`<transactionId>-<sequence>`, see formatPosition): they are valid,
 * increasing Redis stream ids. Per user, an id at or below the last appended id is refused as already
 * delivered, so a replayed batch adds nothing; the fan-out must therefore append each user's entries in
 * global order (within one batch the adapters sort them).
 *
 * Each entry names the user's entry before it, so a stream that lost entries it did not trim itself (Redis
 * restarted without persistence, a key evicted or deleted) tells its readers: reading past a gap is `truncated`.
 */
import { comparePositions, type Position, parsePosition } from './event-store.ts'

/** The id before every entry: reading after it reads a stream from its start. */
export const STREAM_START_ID = '0-0'

/** One event as a user receives it. */
export type UserEvent = {
  /** The formatted global position `<transactionId>-<sequence>`; clients echo it back as `lastEventId`. */
  readonly id: string
  readonly type: string
  /** The public position (publicPosition of the event's position). */
  readonly position: number
  /** ISO 8601. */
  readonly occurredAt: string
  readonly data: unknown
}

export type UserStreamEntry = UserEvent & {
  readonly userId: string
  /** The id of the user's entry before this one in the fan-out's order; STREAM_START_ID for their first. */
  readonly previousId: string
}

export type AppendSummary = {
  /** How many entries were new. A replayed batch appends 0. */
  readonly appended: number
  /** The users whose streams grew, each woken once. */
  readonly wokenUsers: readonly string[]
}

export type UserStreamRead = {
  /** Oldest first, at most `limit`. */
  readonly events: UserEvent[]
  /**
   * True when entries after `afterId` are missing (trimmed away, or lost by the backend): the reader
   * missed events and must start over (re-register and reload its state).
   */
  readonly truncated: boolean
}

export type QueueState = {
  readonly queueId: string
  readonly userId: string
  /** Only these event types are delivered; null for all. */
  readonly eventTypes: readonly string[] | null
  /** The id the client last acknowledged (at registration: where the gateway starts it). */
  readonly lastAckedId: string
  /** Epoch milliseconds of the last registration or touch. */
  readonly lastSeenAt: number
}

/** Removes a wake callback. */
export type Unsubscribe = () => void

export interface UserStreams {
  /** A queue not touched for this long expires: a gateway that keeps queues in memory forgets them as the backend does. */
  readonly queueTtlMs: number
  /**
   * Appends entries to their users' streams in as few round trips as the backend allows, idempotent
   * per (user, id); then wakes each user whose stream grew with one publish.
   */
  append(entries: readonly UserStreamEntry[]): Promise<AppendSummary>
  /** Entries strictly after `afterId`, oldest first. */
  read(userId: string, afterId: string, limit: number): Promise<UserStreamRead>
  /** The id of the newest entry in the user's stream, or STREAM_START_ID. */
  lastId(userId: string): Promise<string>
  /**
   * Deletes these entries of the user's stream (what an erased person wrote). Like a trim it leaves a gap: a
   * reader standing before the newest one removed reads `truncated`, and starts over from state already erased.
   */
  remove(userId: string, ids: readonly string[]): Promise<void>
  /**
   * Calls `callback` whenever the user's stream may have grown (and after the wakeup connection was
   * re-established, since wakeups may have been missed meanwhile). Resolves once the subscription is
   * live: a wakeup published after that is delivered.
   */
  onWake(userId: string, callback: () => void): Promise<Unsubscribe>
  /** A new queue whose lastAckedId is `startId` (a client polls from there). */
  registerQueue(userId: string, eventTypes: readonly string[] | null, startId: string): Promise<QueueState>
  /** The queue, or null when unknown or expired. Does not count as activity. */
  getQueue(queueId: string): Promise<QueueState | null>
  /**
   * Marks the user's queue active now (and records the acknowledged id); null when it is unknown, expired or
   * another user's. The owner is checked in the same step as the change, so someone else's queue id moves nothing.
   */
  touchQueue(queueId: string, userId: string, ackedId?: string): Promise<QueueState | null>
  /** Drops the user's queue; true when it existed. Another user's queue is left as it was (false). */
  dropQueue(queueId: string, userId: string): Promise<boolean>
  /**
   * Whether the user holds a queue (not dropped, not expired) whose last activity recorded in the backend is
   * within `withinMs` of now: a client of theirs is open. The gateway (realtime/gateway.ts) writes a queue's
   * activity to the backend only once a quarter of the idle TTL has passed since it last did, and a client polls
   * again at the latest a heartbeat after its last poll, so the backend's record of an open client may be that
   * old: callers pass a window of at least `queueTtlMs / 4` plus the gateway's heartbeat (a shorter one misses
   * open clients). A window longer than the TTL counts as the TTL: an expired queue is no queue.
   */
  hasLiveQueue(userId: string, withinMs: number): Promise<boolean>
  close(): Promise<void>
}

export type UserStreamsOptions = {
  /** Entries kept per user, approximately (never fewer). Default 10,000. */
  readonly maxLen?: number
  /** A queue not touched for this long expires. Default 10 minutes. */
  readonly queueTtlMs?: number
}

export const DEFAULT_MAX_LEN = 10_000
export const DEFAULT_QUEUE_TTL_MS = 10 * 60_000

/** Parses an entry id, accepting STREAM_START_ID; null when malformed. */
export const parseEntryId = (id: string): Position | null => parsePosition(id)

export const compareEntryIds = (a: string, b: string): number => comparePositions(parseEntryId(a)!, parseEntryId(b)!)

export const isEntryId = (id: string): boolean => parseEntryId(id) !== null

/** The window hasLiveQueue looks back over: at most the TTL. A negative or non-numeric one is a caller's bug. */
export function presenceWindowMs(withinMs: number, queueTtlMs: number): number {
  if (Number.isNaN(withinMs) || withinMs < 0) throw new Error(`invalid presence window: ${withinMs}`)
  return Math.min(withinMs, queueTtlMs)
}

/** Validates a batch and orders each user's entries by id, dropping repeated ids: both adapters agree. */
export function normaliseBatch(entries: readonly UserStreamEntry[]): Map<string, UserStreamEntry[]> {
  const byUser = new Map<string, (UserStreamEntry & { pos: Position })[]>()
  for (const e of entries) {
    const pos = parseEntryId(e.id)
    if (!pos || (pos.transactionId === 0n && pos.sequence === 0n)) throw new Error(`invalid user stream entry id: ${e.id}`)
    if (!e.userId) throw new Error('a user stream entry needs a userId')
    const previous = parseEntryId(e.previousId)
    if (!previous || comparePositions(previous, pos) >= 0) throw new Error(`invalid previous id ${e.previousId} of ${e.id}`)
    const list = byUser.get(e.userId)
    if (list) list.push({ ...e, pos })
    else byUser.set(e.userId, [{ ...e, pos }])
  }
  const out = new Map<string, UserStreamEntry[]>()
  for (const [userId, list] of byUser) {
    list.sort((a, b) => comparePositions(a.pos, b.pos))
    const unique: UserStreamEntry[] = []
    let prev: Position | null = null
    for (const { pos, ...entry } of list) {
      if (prev && comparePositions(prev, pos) === 0) continue
      unique.push(entry)
      prev = pos
    }
    out.set(userId, unique)
  }
  return out
}

/**
 * The local side of wakeups: callbacks per user. Adapters subscribe to the backend for a user when the
 * first callback arrives and may unsubscribe after the last one leaves.
 */
export class WakeRegistry {
  private readonly byUser = new Map<string, Set<() => void>>()

  /** Returns whether this is the user's first callback. */
  add(userId: string, callback: () => void): boolean {
    const set = this.byUser.get(userId)
    if (set) set.add(callback)
    else this.byUser.set(userId, new Set([callback]))
    return !set
  }

  /** Returns whether the user has no callbacks left. */
  remove(userId: string, callback: () => void): boolean {
    const set = this.byUser.get(userId)
    if (!set) return true
    set.delete(callback)
    if (set.size > 0) return false
    this.byUser.delete(userId)
    return true
  }

  has(userId: string): boolean {
    return this.byUser.has(userId)
  }

  users(): string[] {
    return [...this.byUser.keys()]
  }

  wake(userId: string): void {
    const set = this.byUser.get(userId)
    if (!set) return
    for (const cb of [...set]) {
      try {
        cb()
      } catch {
        // One faulty callback must not starve the others.
      }
    }
  }

  wakeAll(): void {
    for (const userId of this.users()) this.wake(userId)
  }
}
