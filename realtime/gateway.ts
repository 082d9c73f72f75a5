/**
 * The long-poll gateway, independent of any transport (see API.md "Realtime API"): register a queue,
 * poll it for the events after the last acknowledged id, drop it.
 *
 * A held poll is one small object: it waits in its user's set, woken by the port's single wakeup subscription
 * per user (never a Redis connection of its own), and in one deadline queue that a single timer walks for
 * heartbeats. A queue is bound to its user when it is registered (or first seen here) and checked from memory;
 * its expiry is carried to the backend only every quarter of the idle TTL. Each user's state remembers, while
 * its wakeup subscription is live, the newest id known to be in the stream: a poll standing at it waits without
 * a read. So a poll with nothing waiting for it costs no round trip at all.
 */
import { comparePositions, formatPosition, type Position, publicPosition, START } from '../adapters/event-store.ts'
import {
  compareEntryIds,
  isEntryId,
  parseEntryId,
  type Unsubscribe,
  type UserEvent,
  type UserStreams,
} from '../adapters/user-streams.ts'

/** A failure the client caused; `status` and `code` are what HTTP answers with. */
export class RealtimeError extends Error {
  readonly code: string
  readonly status: 400 | 429
  constructor(code: string, status: 400 | 429, message: string) {
    super(message)
    this.code = code
    this.status = status
  }
}

/** The queue is unknown, expired, dropped, not the caller's, or missed events: register again. */
export class BadEventQueueIdError extends RealtimeError {
  override readonly name = 'BadEventQueueIdError'
  readonly queueId: string
  constructor(queueId: string, reason = 'unknown or expired') {
    super('BAD_EVENT_QUEUE_ID', 400, `bad event queue id ${queueId}: ${reason}; register again`)
    this.queueId = queueId
  }
}

/** More polls held for one user than allowed. */
export class TooManyPollsError extends RealtimeError {
  override readonly name = 'TooManyPollsError'
  constructor(limit: number) {
    super('TOO_MANY_POLLS', 429, `at most ${limit} polls may wait at once per user`)
  }
}

export class InvalidEventIdError extends RealtimeError {
  override readonly name = 'InvalidEventIdError'
  constructor(id: string) {
    super('INVALID_INPUT', 400, `lastEventId ${JSON.stringify(id)} is not an event id`)
  }
}

export type GatewayOptions = {
  /** A poll without events answers with a heartbeat after this long. Default 50 s. */
  readonly heartbeatMs?: number
  /** Polls one user may hold at once (across queues). Default 20. */
  readonly maxPollsPerUser?: number
  /** Most events in one answer. Default 1,000. */
  readonly maxEventsPerPoll?: number
  /**
   * The place in the global order every event up to which is fanned out (the fan-out projector's checkpoint):
   * each user's share of them is in their stream or on its way there, in order, ahead of anything later. A
   * registration starts no earlier: a stream that lost entries (a Redis restart) or has some still to come
   * then leaves no gap, and no duplicate, between the state a client loads and the events it polls.
   */
  readonly fannedOutUpTo?: () => Promise<Position>
  /** A user's wakeup subscription outlives their last poll this long, so the next poll finds it live. Default 60 s. */
  readonly idleUserMs?: number
}

export type RegisterResult = {
  readonly queueId: string
  /** Poll from here. */
  readonly lastEventId: string
  /** Load initial state with consistentAfter=position: state + events then leave no gap. */
  readonly position: number
}

export type PollRequest = {
  readonly queueId: string
  /** The authenticated caller; a queue of someone else is a bad queue id. */
  readonly userId: string
  /** Acknowledges everything up to it; defaults to the queue's last acknowledged id. */
  readonly lastEventId?: string
  /** Answer at once, with the events there are (possibly none). */
  readonly dontBlock?: boolean
  /** Client disconnect: the poll is released at once and rejects with the signal's reason. */
  readonly signal?: AbortSignal
}

export type PollResult = { readonly type: 'events'; readonly events: UserEvent[] } | { readonly type: 'heartbeat' }

type Outcome = 'timeout' | 'abort' | 'superseded' | 'dropped' | 'closed'

/** A queue as this process knows it: bound to its user, with the acknowledgement and activity it saw. */
type KnownQueue = {
  readonly userId: string
  readonly eventTypes: ReadonlySet<string> | null
  lastAckedId: string
  /** Epoch ms of the last poll here. */
  lastSeenAt: number
  /** Epoch ms the backend's expiry was last moved (registration or touch). */
  storedAt: number
}

/** One user's waiting polls and what is known of their stream while its wakeup subscription is live. */
type UserState = {
  readonly polls: Set<Held>
  readonly subscribed: Promise<Unsubscribe>
  live: boolean
  /** No entry after this id is in the stream (null: unknown, read to find out). */
  head: string | null
  /** Wakeups so far: a read that saw one arrive meanwhile learns no head. */
  wakes: number
  /** Epoch ms since when no poll waits (null while one does). */
  idleSince: number | null
}

/**
 * One held poll. It is its own abort listener (handleEvent), so a poll adds no closure to the client's signal.
 */
class Held {
  readonly gateway: RealtimeGateway
  readonly queueId: string
  readonly userId: string
  readonly deadline: number
  /** A wakeup came since the last read began. */
  woken = false
  outcome: Outcome | null = null
  /** Resolves the current wait. */
  resume: (() => void) | null = null
  constructor(gateway: RealtimeGateway, queueId: string, userId: string, deadline: number) {
    this.gateway = gateway
    this.queueId = queueId
    this.userId = userId
    this.deadline = deadline
  }
  handleEvent(): void {
    this.gateway.release(this, 'abort')
  }
}

const wait = (held: Held): Promise<void> =>
  new Promise<void>((resolve) => {
    held.resume = resolve
  })

export class RealtimeGateway {
  private readonly streams: UserStreams
  private readonly heartbeatMs: number
  private readonly maxPollsPerUser: number
  private readonly maxEventsPerPoll: number
  private readonly fannedOutUpTo: () => Promise<Position>
  private readonly queueTtlMs: number
  private readonly idleUserMs: number
  private readonly users = new Map<string, UserState>()
  private readonly byQueue = new Map<string, Held>()
  private readonly queues = new Map<string, KnownQueue>()
  /** Held polls by deadline: all wait the same heartbeat, so insertion order is deadline order. */
  private readonly deadlines = new Set<Held>()
  private heartbeatTimer: NodeJS.Timeout | null = null
  private readonly sweeper: NodeJS.Timeout
  private closed = false

  constructor(streams: UserStreams, options: GatewayOptions = {}) {
    this.streams = streams
    this.heartbeatMs = options.heartbeatMs ?? 50_000
    this.maxPollsPerUser = options.maxPollsPerUser ?? 20
    this.maxEventsPerPoll = options.maxEventsPerPoll ?? 1_000
    this.fannedOutUpTo = options.fannedOutUpTo ?? (async () => START)
    this.queueTtlMs = streams.queueTtlMs
    this.idleUserMs = options.idleUserMs ?? 60_000
    this.sweeper = setInterval(() => this.sweep(), Math.max(50, Math.min(this.idleUserMs, this.queueTtlMs, 30_000)))
    this.sweeper.unref()
  }

  /** Polls waiting right now. */
  get heldPolls(): number {
    return this.byQueue.size
  }

  async register(userId: string, eventTypes?: readonly string[] | null): Promise<RegisterResult> {
    const [floor, last] = await Promise.all([this.fannedOutUpTo(), this.streams.lastId(userId)])
    // The later of the two places in the global order, compared as (transaction, position): a later transaction
    // may hold a lower position. The state is loaded at exactly that place, and events are polled after it.
    const lastId = parseEntryId(last)!
    const start = comparePositions(floor, lastId) > 0 ? floor : lastId
    const queue = await this.streams.registerQueue(userId, eventTypes?.length ? eventTypes : null, formatPosition(start))
    this.queues.set(queue.queueId, {
      userId,
      eventTypes: queue.eventTypes ? new Set(queue.eventTypes) : null,
      lastAckedId: queue.lastAckedId,
      lastSeenAt: queue.lastSeenAt,
      storedAt: queue.lastSeenAt,
    })
    return { queueId: queue.queueId, lastEventId: queue.lastAckedId, position: publicPosition(start) }
  }

  async poll(request: PollRequest): Promise<PollResult> {
    const { queueId, userId, signal } = request
    if (this.closed) throw new Error('the realtime gateway is closed')
    signal?.throwIfAborted()
    if (request.lastEventId !== undefined && !isEntryId(request.lastEventId)) {
      throw new InvalidEventIdError(request.lastEventId)
    }
    const queue = await this.touch(queueId, userId, request.lastEventId)
    const types = queue.eventTypes
    let cursor = request.lastEventId ?? queue.lastAckedId

    if (request.dontBlock) {
      const user = this.users.get(userId)
      if (user && this.upToDate(user, cursor)) return { type: 'events', events: [] }
      for (;;) {
        const page = await this.page(queueId, userId, cursor, types, null)
        if (page.events.length > 0 || !page.more) return { type: 'events', events: page.events }
        cursor = page.cursor
      }
    }

    signal?.throwIfAborted()
    const held = this.attach(queueId, userId)
    signal?.addEventListener('abort', held, { once: true })
    try {
      const user = this.users.get(userId)
      // Subscribed before the first read: a wakeup after that read cannot be missed. A subscription
      // that hangs (the backend is down) still ends with the heartbeat or the client's disconnect.
      if (user && !user.live) {
        let live = false
        user.subscribed.then(
          () => {
            live = true
          },
          () => {},
        )
        while (!live && held.outcome === null) {
          await Promise.race([user.subscribed, wait(held)])
          held.resume = null
        }
      }
      while (held.outcome === null) {
        held.woken = false
        const state = this.users.get(userId)
        if (!state || !this.upToDate(state, cursor)) {
          const page = await this.page(queueId, userId, cursor, types, state ?? null)
          if (page.events.length > 0) return { type: 'events', events: page.events }
          cursor = page.cursor
          if (page.more || held.woken) continue
        }
        if (held.outcome !== null) break
        await wait(held)
        held.resume = null
      }
      if (held.outcome === 'abort') throw signal?.reason ?? new Error('aborted')
      if (held.outcome === 'dropped') throw new BadEventQueueIdError(queueId, 'dropped')
      return { type: 'heartbeat' }
    } finally {
      signal?.removeEventListener('abort', held)
      this.detach(held)
    }
  }

  /** Drops a queue of the user's; a poll waiting on it here ends with BAD_EVENT_QUEUE_ID. */
  async drop(queueId: string, userId: string): Promise<void> {
    const known = this.queues.get(queueId)
    if (known && known.userId !== userId) throw new BadEventQueueIdError(queueId)
    this.queues.delete(queueId)
    if (!(await this.streams.dropQueue(queueId, userId))) throw new BadEventQueueIdError(queueId)
    const held = this.byQueue.get(queueId)
    if (held) this.release(held, 'dropped')
  }

  /** Answers every waiting poll with a heartbeat and refuses new ones. Does not close the port. */
  async close(): Promise<void> {
    this.closed = true
    clearInterval(this.sweeper)
    for (const held of [...this.byQueue.values()]) this.release(held, 'closed')
    if (this.heartbeatTimer) clearTimeout(this.heartbeatTimer)
    this.heartbeatTimer = null
    for (const [userId, user] of this.users) if (user.polls.size === 0) this.forgetUser(userId, user)
  }

  /**
   * The caller's queue, marked active now (and its acknowledgement recorded). From memory when this process knows
   * it; the backend hears of it only once a quarter of the idle TTL has passed since it last did.
   */
  private async touch(queueId: string, userId: string, ackedId: string | undefined): Promise<KnownQueue> {
    const now = Date.now()
    const known = this.queues.get(queueId)
    if (known && known.userId !== userId) throw new BadEventQueueIdError(queueId)
    if (known && now - known.lastSeenAt < this.queueTtlMs && now - known.storedAt < this.queueTtlMs / 4) {
      known.lastSeenAt = now
      if (ackedId !== undefined) known.lastAckedId = ackedId
      return known
    }
    // Unknown here, idle past the TTL (another process may have kept it), or due to be stored: ask the backend.
    const stored = await this.streams.touchQueue(queueId, userId, ackedId ?? known?.lastAckedId)
    if (!stored) {
      this.queues.delete(queueId)
      throw new BadEventQueueIdError(queueId)
    }
    const queue: KnownQueue = {
      userId: stored.userId,
      eventTypes: stored.eventTypes ? new Set(stored.eventTypes) : null,
      lastAckedId: stored.lastAckedId,
      lastSeenAt: now,
      storedAt: now,
    }
    this.queues.set(queueId, queue)
    return queue
  }

  /** Whether the user's stream is known to hold nothing after `cursor`. */
  private upToDate(user: UserState, cursor: string): boolean {
    return user.live && user.head !== null && compareEntryIds(user.head, cursor) <= 0
  }

  /** Reads one page after `cursor`, keeping the queue's event types; learns the user's head when it can. */
  private async page(
    queueId: string,
    userId: string,
    cursor: string,
    types: ReadonlySet<string> | null,
    user: UserState | null,
  ): Promise<{ events: UserEvent[]; cursor: string; more: boolean }> {
    const wakes = user?.wakes ?? 0
    const { events, truncated } = await this.streams.read(userId, cursor, this.maxEventsPerPoll)
    if (truncated) {
      this.queues.delete(queueId)
      await this.streams.dropQueue(queueId, userId).catch(() => {})
      throw new BadEventQueueIdError(queueId, 'events after lastEventId were trimmed')
    }
    const last = events.at(-1)
    const more = events.length >= this.maxEventsPerPoll
    const end = last ? last.id : cursor
    // Nothing after `end` was there when the read ran; still true if no wakeup came since it began.
    if (user?.live && !more && user.wakes === wakes && this.users.get(userId) === user) {
      if (user.head === null || compareEntryIds(end, user.head) > 0) user.head = end
    }
    return { events: types ? events.filter((e) => types.has(e.type)) : events, cursor: end, more }
  }

  private attach(queueId: string, userId: string): Held {
    // One waiting poll per queue: a newer one (a client that reconnected) replaces the older.
    const previous = this.byQueue.get(queueId)
    if (previous) this.release(previous, 'superseded')
    let user = this.users.get(userId)
    if (user && user.polls.size >= this.maxPollsPerUser) throw new TooManyPollsError(this.maxPollsPerUser)
    if (!user) user = this.subscribe(userId)
    const held = new Held(this, queueId, userId, Date.now() + this.heartbeatMs)
    user.polls.add(held)
    user.idleSince = null
    this.byQueue.set(queueId, held)
    this.deadlines.add(held)
    if (!this.heartbeatTimer) this.armHeartbeat()
    return held
  }

  private subscribe(userId: string): UserState {
    const subscribed = this.streams.onWake(userId, () => this.wake(userId))
    const user: UserState = { polls: new Set(), subscribed, live: false, head: null, wakes: 0, idleSince: null }
    this.users.set(userId, user)
    subscribed.then(
      () => {
        user.live = true
      },
      // A failed subscription fails the polls awaiting it; the next poll tries again.
      () => {
        if (this.users.get(userId) === user) this.users.delete(userId)
      },
    )
    return user
  }

  private detach(held: Held): void {
    this.deadlines.delete(held)
    if (this.byQueue.get(held.queueId) === held) this.byQueue.delete(held.queueId)
    const user = this.users.get(held.userId)
    if (!user) return
    user.polls.delete(held)
    // The subscription stays a while: the client's next poll finds the stream's head known.
    if (user.polls.size === 0) {
      user.idleSince = Date.now()
      if (this.closed) this.forgetUser(held.userId, user)
    }
  }

  private forgetUser(userId: string, user: UserState): void {
    if (this.users.get(userId) === user) this.users.delete(userId)
    user.subscribed.then(
      (unsubscribe) => unsubscribe(),
      () => {},
    )
  }

  /** @internal Ends a held poll with `outcome`; the poll detaches when it resumes. */
  release(held: Held, outcome: Outcome): void {
    held.outcome ??= outcome
    // Out of the counts at once; the poll detaches when it wakes.
    this.deadlines.delete(held)
    if (this.byQueue.get(held.queueId) === held) this.byQueue.delete(held.queueId)
    this.users.get(held.userId)?.polls.delete(held)
    held.resume?.()
  }

  private wake(userId: string): void {
    const user = this.users.get(userId)
    if (!user) return
    user.wakes++
    user.head = null
    for (const held of user.polls) {
      held.woken = true
      held.resume?.()
    }
  }

  /** One timer for every heartbeat: set for the oldest held poll, which is the one due first. */
  private armHeartbeat(): void {
    const first = this.deadlines.values().next().value
    if (!first) {
      this.heartbeatTimer = null
      return
    }
    this.heartbeatTimer = setTimeout(() => this.heartbeats(), Math.max(0, first.deadline - Date.now()))
  }

  private heartbeats(): void {
    const now = Date.now()
    for (const held of this.deadlines) {
      if (held.deadline > now) break
      this.release(held, 'timeout')
    }
    this.armHeartbeat()
  }

  /** Forgets users idle past idleUserMs (unsubscribing them) and queues idle past the TTL. */
  private sweep(): void {
    const now = Date.now()
    for (const [userId, user] of this.users) {
      if (user.idleSince !== null && now - user.idleSince >= this.idleUserMs) this.forgetUser(userId, user)
    }
    for (const [queueId, queue] of this.queues) {
      if (now - queue.lastSeenAt >= this.queueTtlMs && !this.byQueue.has(queueId)) this.queues.delete(queueId)
    }
  }
}
