/**
 * The long-poll gateway, independent of any transport (see API.md "Realtime API"): register a queue,
 * poll it for the events after the last acknowledged id, drop it. A held poll costs a few small objects
 * and one timer: it waits in a per-user list woken by the port's single wakeup subscription per user,
 * never on a Redis connection of its own.
 */
import { comparePositions, formatPosition, type Position, publicPosition, START } from '../adapters/event-store.ts'
import { isEntryId, parseEntryId, type Unsubscribe, type UserEvent, type UserStreams } from '../adapters/user-streams.ts'

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

/** One held poll. */
type Held = {
  readonly queueId: string
  readonly userId: string
  /** A wakeup came since the last read began. */
  woken: boolean
  outcome: Outcome | null
  /** Resolves the current wait. */
  resume: (() => void) | null
}

type UserWaiters = { readonly polls: Set<Held>; readonly subscribed: Promise<Unsubscribe> }

export class RealtimeGateway {
  private readonly streams: UserStreams
  private readonly heartbeatMs: number
  private readonly maxPollsPerUser: number
  private readonly maxEventsPerPoll: number
  private readonly fannedOutUpTo: () => Promise<Position>
  private readonly users = new Map<string, UserWaiters>()
  private readonly byQueue = new Map<string, Held>()
  private closed = false

  constructor(streams: UserStreams, options: GatewayOptions = {}) {
    this.streams = streams
    this.heartbeatMs = options.heartbeatMs ?? 50_000
    this.maxPollsPerUser = options.maxPollsPerUser ?? 20
    this.maxEventsPerPoll = options.maxEventsPerPoll ?? 1_000
    this.fannedOutUpTo = options.fannedOutUpTo ?? (async () => START)
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
    return { queueId: queue.queueId, lastEventId: queue.lastAckedId, position: publicPosition(start) }
  }

  async poll(request: PollRequest): Promise<PollResult> {
    const { queueId, userId, signal } = request
    if (this.closed) throw new Error('the realtime gateway is closed')
    signal?.throwIfAborted()
    if (request.lastEventId !== undefined && !isEntryId(request.lastEventId)) {
      throw new InvalidEventIdError(request.lastEventId)
    }
    const queue = await this.streams.touchQueue(queueId, userId, request.lastEventId)
    if (!queue) throw new BadEventQueueIdError(queueId)
    const types = queue.eventTypes ? new Set(queue.eventTypes) : null
    let cursor = request.lastEventId ?? queue.lastAckedId

    if (request.dontBlock) {
      for (;;) {
        const page = await this.page(queueId, userId, cursor, types)
        if (page.events.length > 0 || !page.more) return { type: 'events', events: page.events }
        cursor = page.cursor
      }
    }

    signal?.throwIfAborted()
    const held = this.attach(queueId, userId)
    const onAbort = () => this.release(held, 'abort')
    signal?.addEventListener('abort', onAbort, { once: true })
    const timer = setTimeout(() => this.release(held, 'timeout'), this.heartbeatMs)
    try {
      // Subscribed before the first read: a wakeup after that read cannot be missed. A subscription
      // that hangs (the backend is down) still ends with the heartbeat or the client's disconnect.
      const subscribed = this.users.get(userId)?.subscribed
      if (subscribed) {
        let live = false
        subscribed.then(
          () => {
            live = true
          },
          () => {},
        )
        while (!live && held.outcome === null) {
          await Promise.race([
            subscribed,
            new Promise<void>((resolve) => {
              held.resume = resolve
            }),
          ])
          held.resume = null
        }
      }
      while (held.outcome === null) {
        held.woken = false
        const page = await this.page(queueId, userId, cursor, types)
        if (page.events.length > 0) return { type: 'events', events: page.events }
        cursor = page.cursor
        if (page.more || held.woken) continue
        if (held.outcome !== null) break
        await new Promise<void>((resolve) => {
          held.resume = resolve
        })
        held.resume = null
      }
      if (held.outcome === 'abort') throw signal?.reason ?? new Error('aborted')
      if (held.outcome === 'dropped') throw new BadEventQueueIdError(queueId, 'dropped')
      return { type: 'heartbeat' }
    } finally {
      clearTimeout(timer)
      signal?.removeEventListener('abort', onAbort)
      this.detach(held)
    }
  }

  /** Drops a queue of the user's; a poll waiting on it here ends with BAD_EVENT_QUEUE_ID. */
  async drop(queueId: string, userId: string): Promise<void> {
    if (!(await this.streams.dropQueue(queueId, userId))) throw new BadEventQueueIdError(queueId)
    const held = this.byQueue.get(queueId)
    if (held) this.release(held, 'dropped')
  }

  /** Answers every waiting poll with a heartbeat and refuses new ones. Does not close the port. */
  async close(): Promise<void> {
    this.closed = true
    for (const held of [...this.byQueue.values()]) this.release(held, 'closed')
  }

  /** Reads one page after `cursor`, keeping the queue's event types. */
  private async page(
    queueId: string,
    userId: string,
    cursor: string,
    types: ReadonlySet<string> | null,
  ): Promise<{ events: UserEvent[]; cursor: string; more: boolean }> {
    const { events, truncated } = await this.streams.read(userId, cursor, this.maxEventsPerPoll)
    if (truncated) {
      await this.streams.dropQueue(queueId, userId).catch(() => {})
      throw new BadEventQueueIdError(queueId, 'events after lastEventId were trimmed')
    }
    const last = events.at(-1)
    return {
      events: types ? events.filter((e) => types.has(e.type)) : events,
      cursor: last ? last.id : cursor,
      more: events.length >= this.maxEventsPerPoll,
    }
  }

  private attach(queueId: string, userId: string): Held {
    // One waiting poll per queue: a newer one (a client that reconnected) replaces the older.
    const previous = this.byQueue.get(queueId)
    if (previous) this.release(previous, 'superseded')
    let waiters = this.users.get(userId)
    if (waiters && waiters.polls.size >= this.maxPollsPerUser) throw new TooManyPollsError(this.maxPollsPerUser)
    const held: Held = { queueId, userId, woken: false, outcome: null, resume: null }
    if (!waiters) {
      const subscribed = this.streams.onWake(userId, () => this.wake(userId))
      const created: UserWaiters = { polls: new Set(), subscribed }
      waiters = created
      this.users.set(userId, created)
      // A failed subscription fails the polls awaiting it; the next poll tries again.
      subscribed.catch(() => {
        if (this.users.get(userId) === created) this.users.delete(userId)
      })
    }
    waiters.polls.add(held)
    this.byQueue.set(queueId, held)
    return held
  }

  private detach(held: Held): void {
    if (this.byQueue.get(held.queueId) === held) this.byQueue.delete(held.queueId)
    const waiters = this.users.get(held.userId)
    if (!waiters) return
    waiters.polls.delete(held)
    if (waiters.polls.size > 0) return
    this.users.delete(held.userId)
    waiters.subscribed.then(
      (unsubscribe) => unsubscribe(),
      () => {},
    )
  }

  private release(held: Held, outcome: Outcome): void {
    held.outcome ??= outcome
    // Out of the counts at once; the poll detaches (and maybe unsubscribes) when it wakes.
    if (this.byQueue.get(held.queueId) === held) this.byQueue.delete(held.queueId)
    this.users.get(held.userId)?.polls.delete(held)
    held.resume?.()
  }

  private wake(userId: string): void {
    const waiters = this.users.get(userId)
    if (!waiters) return
    for (const held of waiters.polls) {
      held.woken = true
      held.resume?.()
    }
  }
}
