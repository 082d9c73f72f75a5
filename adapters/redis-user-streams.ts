import { createHash } from 'node:crypto'
import type { Redis } from 'ioredis'
import { v7 as uuid } from 'uuid'
import {
  type AppendSummary,
  compareEntryIds,
  DEFAULT_MAX_LEN,
  DEFAULT_QUEUE_TTL_MS,
  isEntryId,
  normaliseBatch,
  presenceWindowMs,
  type QueueState,
  STREAM_START_ID,
  type Unsubscribe,
  type UserEvent,
  type UserStreamEntry,
  type UserStreamRead,
  type UserStreams,
  type UserStreamsOptions,
  WakeRegistry,
} from './user-streams.ts'

/*
 * Keys (prefix defaults to `rt:`): `rt:<userId>` the user's stream (fields v previous id, t type, p position,
 * o occurredAt, d data as JSON), `rt:queue:<queueId>` a queue's hash
 * (u user, e event types as JSON, a last acknowledged id, s last seen ms) expiring after the idle TTL,
 * `rt:user-queues:<userId>` a sorted set of the user's queue ids scored by last seen ms (presence: Redis has no
 * index from user to queue), trimmed of entries older than the TTL and expiring a TTL after its last change.
 * Wakeups: `PUBLISH rt:wake:<userId>`; each process holds ONE subscriber connection, subscribed to the
 * channels of the users it has waiting polls for.
 */

type Script = { readonly lua: string; readonly sha: string }
const script = (lua: string): Script => ({ lua, sha: createHash('sha1').update(lua).digest('hex') })

/**
 * One user's entries: XADD each (an id at or below the stream's top is refused: already delivered) with
 * approximate trimming, then one PUBLISH if anything was added. Atomic, and one key, so cluster-friendly.
 * KEYS[1] stream; ARGV[1] channel, ARGV[2] maxlen, then id, previous id, type, position, occurredAt, data
 * per entry.
 */
const APPEND = script(`
local added = 0
for i = 3, #ARGV, 6 do
  local r = redis.pcall('XADD', KEYS[1], 'MAXLEN', '~', ARGV[2], ARGV[i],
    'v', ARGV[i + 1], 't', ARGV[i + 2], 'p', ARGV[i + 3], 'o', ARGV[i + 4], 'd', ARGV[i + 5])
  if type(r) == 'table' and r.err then
    if not string.find(r.err, 'equal or smaller', 1, true) then return redis.error_reply(r.err) end
  else
    added = added + 1
  end
end
if added > 0 then redis.call('PUBLISH', ARGV[1], '1') end
return added
`)

/** KEYS[1] queue; ARGV[1] now ms, ARGV[2] ttl ms, ARGV[3] acknowledged id or '', ARGV[4] the caller's user id. */
const TOUCH = script(`
if redis.call('HGET', KEYS[1], 'u') ~= ARGV[4] then return false end
if ARGV[3] ~= '' then
  redis.call('HSET', KEYS[1], 's', ARGV[1], 'a', ARGV[3])
else
  redis.call('HSET', KEYS[1], 's', ARGV[1])
end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return redis.call('HGETALL', KEYS[1])
`)

/** KEYS[1] queue; ARGV[1] the caller's user id. Another user's queue is not theirs to drop. */
const DROP = script(`
if redis.call('HGET', KEYS[1], 'u') ~= ARGV[1] then return 0 end
return redis.call('DEL', KEYS[1])
`)

/**
 * KEYS[1] the user's queue set; ARGV[1] queue id, ARGV[2] now ms, ARGV[3] ttl ms. Records the queue's activity,
 * forgets queues idle past the TTL (their hashes are gone) and lets the set expire with the user's last queue.
 * A script of its own, run after the queue's: one key each, so they may live on different cluster nodes.
 */
const SEEN = script(`
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[2] - ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1
`)

const SCRIPTS = [APPEND, TOUCH, DROP, SEEN]

const QUEUE_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i

export type RedisUserStreamsOptions = UserStreamsOptions & {
  /** Prefix of every key and channel. Default `rt:`. */
  readonly keyPrefix?: string
  /** A channel without waiters stays subscribed this long, so a client's next poll finds it live. */
  readonly unsubscribeAfterMs?: number
}

type RawEntry = [id: string, fields: string[]]

const toEvent = ([id, fields]: RawEntry): UserEvent & { previousId: string } => {
  const f: Record<string, string> = {}
  for (let i = 0; i + 1 < fields.length; i += 2) f[fields[i]!] = fields[i + 1]!
  return {
    id,
    // Entries written before they named their predecessor claim none.
    previousId: f.v ?? STREAM_START_ID,
    type: f.t ?? '',
    position: Number(f.p ?? 0),
    occurredAt: f.o ?? '',
    data: JSON.parse(f.d ?? 'null'),
  }
}

const toQueue = (queueId: string, flat: string[] | Record<string, string>): QueueState | null => {
  let h: Record<string, string>
  if (Array.isArray(flat)) {
    h = {}
    for (let i = 0; i + 1 < flat.length; i += 2) h[flat[i]!] = flat[i + 1]!
  } else h = flat
  if (!h.u) return null
  return {
    queueId,
    userId: h.u,
    eventTypes: JSON.parse(h.e ?? 'null') as string[] | null,
    lastAckedId: h.a ?? STREAM_START_ID,
    lastSeenAt: Number(h.s ?? 0),
  }
}

/**
 * The realtime port on Redis. `redis` is the caller's command connection (not closed here); the one
 * subscriber connection per instance is a duplicate of it, named `<prefix>wakeups`.
 */
export class RedisUserStreams implements UserStreams {
  private readonly redis: Redis
  private readonly sub: Redis
  private readonly prefix: string
  private readonly maxLen: number
  readonly queueTtlMs: number
  private readonly unsubscribeAfterMs: number
  private readonly registry = new WakeRegistry()
  /** Channels subscribed (or being subscribed), with the promise of the subscription. */
  private readonly subscribed = new Map<string, Promise<void>>()
  /** Channels without callbacks, by when their last callback left. */
  private readonly idleSince = new Map<string, number>()
  private readonly sweeper: NodeJS.Timeout
  private closed = false

  constructor(redis: Redis, options: RedisUserStreamsOptions = {}) {
    this.redis = redis
    this.prefix = options.keyPrefix ?? 'rt:'
    this.maxLen = options.maxLen ?? DEFAULT_MAX_LEN
    this.queueTtlMs = options.queueTtlMs ?? DEFAULT_QUEUE_TTL_MS
    this.unsubscribeAfterMs = options.unsubscribeAfterMs ?? 10_000
    // Our own resubscription (below) lets us wake everyone only once the channels are live again.
    this.sub = redis.duplicate({
      autoResubscribe: false,
      connectionName: `${this.prefix}wakeups`.replace(/[^\w:.-]/g, '_'),
      maxRetriesPerRequest: null,
      // Connects on the first subscription: an instance that only appends never holds it.
      lazyConnect: true,
    })
    const channelPrefix = `${this.prefix}wake:`
    this.sub.on('message', (channel: string) => {
      if (channel.startsWith(channelPrefix)) this.registry.wake(channel.slice(channelPrefix.length))
    })
    let connectedBefore = false
    this.sub.on('ready', () => {
      if (connectedBefore) this.resubscribe()
      connectedBefore = true
    })
    this.sub.on('error', () => {
      // ioredis reconnects by itself; wakeups missed meanwhile are made up for on 'ready'.
    })
    this.sweeper = setInterval(() => this.sweep(), Math.max(50, Math.min(this.unsubscribeAfterMs, 10_000)))
    this.sweeper.unref()
  }

  private streamKey = (userId: string) => `${this.prefix}${userId}`
  private channel = (userId: string) => `${this.prefix}wake:${userId}`
  private queueKey = (queueId: string) => `${this.prefix}queue:${queueId}`
  private userQueuesKey = (userId: string) => `${this.prefix}user-queues:${userId}`

  private seen(userId: string, queueId: string, at: number): Promise<unknown[]> {
    return this.evalPipeline([{ script: SEEN, keys: [this.userQueuesKey(userId)], args: [queueId, at, this.queueTtlMs] }])
  }

  /** Runs scripts in one pipeline; after a Redis restart (NOSCRIPT) loads them and runs it again. */
  private async evalPipeline(calls: { script: Script; keys: string[]; args: (string | number)[] }[]): Promise<unknown[]> {
    for (let attempt = 0; ; attempt++) {
      const pipeline = this.redis.pipeline()
      for (const c of calls) pipeline.evalsha(c.script.sha, c.keys.length, ...c.keys, ...c.args)
      const results = (await pipeline.exec()) ?? []
      const noScript = results.some(([err]) => err && /NOSCRIPT/.test(err.message))
      if (noScript && attempt === 0) {
        for (const s of SCRIPTS) await this.redis.script('LOAD', s.lua)
        continue
      }
      return results.map(([err, value]) => {
        if (err) throw err
        return value
      })
    }
  }

  async append(entries: readonly UserStreamEntry[]): Promise<AppendSummary> {
    const byUser = normaliseBatch(entries)
    if (byUser.size === 0) return { appended: 0, wokenUsers: [] }
    const users = [...byUser.keys()]
    const results = await this.evalPipeline(
      users.map((userId) => ({
        script: APPEND,
        keys: [this.streamKey(userId)],
        args: [
          this.channel(userId),
          this.maxLen,
          ...byUser
            .get(userId)!
            .flatMap((e) => [e.id, e.previousId, e.type, String(e.position), e.occurredAt, JSON.stringify(e.data ?? null)]),
        ],
      })),
    )
    let appended = 0
    const wokenUsers: string[] = []
    results.forEach((n, i) => {
      if (Number(n) > 0) {
        appended += Number(n)
        wokenUsers.push(users[i]!)
      }
    })
    return { appended, wokenUsers }
  }

  async read(userId: string, afterId: string, limit: number): Promise<UserStreamRead> {
    if (!isEntryId(afterId)) throw new Error(`invalid user stream id: ${afterId}`)
    const raw = (await this.redis.xrange(this.streamKey(userId), `(${afterId}`, '+', 'COUNT', Math.max(1, limit))) as RawEntry[]
    // Each entry names the one before it: one standing after what the reader (or the entry before) has seen
    // is missing, whether trimmed or lost with a restart, an eviction or a deleted key.
    let truncated = false
    let before = afterId
    const events = raw.map((entry) => {
      const { previousId, ...event } = toEvent(entry)
      truncated ||= compareEntryIds(previousId, before) > 0
      before = event.id
      return event
    })
    return { events, truncated }
  }

  async remove(userId: string, ids: readonly string[]): Promise<void> {
    // The entry after a removed one still names it as its previous: readers see the gap as they see a trim.
    if (ids.length) await this.redis.xdel(this.streamKey(userId), ...ids)
  }

  async lastId(userId: string): Promise<string> {
    const last = (await this.redis.xrevrange(this.streamKey(userId), '+', '-', 'COUNT', 1)) as RawEntry[]
    return last[0]?.[0] ?? STREAM_START_ID
  }

  async onWake(userId: string, callback: () => void): Promise<Unsubscribe> {
    if (this.closed) throw new Error('user streams closed')
    const channel = this.channel(userId)
    this.registry.add(userId, callback)
    this.idleSince.delete(channel)
    let ready = this.subscribed.get(channel)
    if (!ready) {
      ready = this.sub.subscribe(channel).then(() => undefined)
      const mine = ready
      this.subscribed.set(channel, mine)
      mine.catch(() => {
        if (this.subscribed.get(channel) === mine) this.subscribed.delete(channel)
      })
    }
    try {
      await ready
    } catch (e) {
      if (this.registry.remove(userId, callback)) this.idleSince.set(channel, Date.now())
      throw e
    }
    let removed = false
    return () => {
      if (removed) return
      removed = true
      if (this.registry.remove(userId, callback)) this.idleSince.set(channel, Date.now())
    }
  }

  /** Unsubscribes channels idle for unsubscribeAfterMs; one timer for all of them. */
  private sweep(): void {
    const now = Date.now()
    const stale: string[] = []
    for (const [channel, since] of this.idleSince) {
      if (now - since >= this.unsubscribeAfterMs) stale.push(channel)
    }
    if (stale.length === 0) return
    for (const channel of stale) {
      this.idleSince.delete(channel)
      this.subscribed.delete(channel)
    }
    this.sub.unsubscribe(...stale).catch(() => {
      // A broken connection has no subscriptions left anyway.
    })
  }

  /** After (re)connecting: subscribe every channel again, then wake everyone for what was missed. */
  private resubscribe(): void {
    const channels = [...this.subscribed.keys()]
    if (channels.length === 0) return
    const ready = this.sub.subscribe(...channels).then(() => undefined)
    for (const channel of channels) this.subscribed.set(channel, ready)
    ready.then(
      () => this.registry.wakeAll(),
      () => {
        for (const channel of channels) if (this.subscribed.get(channel) === ready) this.subscribed.delete(channel)
      },
    )
  }

  async registerQueue(userId: string, eventTypes: readonly string[] | null, startId: string): Promise<QueueState> {
    if (!isEntryId(startId)) throw new Error(`invalid user stream id: ${startId}`)
    const queueId = uuid()
    const lastAckedId = startId
    const lastSeenAt = Date.now()
    const types = eventTypes ? [...eventTypes] : null
    const key = this.queueKey(queueId)
    const [results] = await Promise.all([
      this.redis
        .multi()
        .hset(key, { u: userId, e: JSON.stringify(types), a: lastAckedId, s: String(lastSeenAt) })
        .pexpire(key, this.queueTtlMs)
        .exec(),
      this.seen(userId, queueId, lastSeenAt),
    ])
    for (const [err] of results ?? []) if (err) throw err
    return { queueId, userId, eventTypes: types, lastAckedId, lastSeenAt }
  }

  async getQueue(queueId: string): Promise<QueueState | null> {
    if (!QUEUE_ID.test(queueId)) return null
    return toQueue(queueId, await this.redis.hgetall(this.queueKey(queueId)))
  }

  async touchQueue(queueId: string, userId: string, ackedId?: string): Promise<QueueState | null> {
    if (!QUEUE_ID.test(queueId)) return null
    if (ackedId !== undefined && !isEntryId(ackedId)) throw new Error(`invalid user stream id: ${ackedId}`)
    const now = Date.now()
    const [flat] = await this.evalPipeline([
      { script: TOUCH, keys: [this.queueKey(queueId)], args: [now, this.queueTtlMs, ackedId ?? '', userId] },
    ])
    const queue = flat ? toQueue(queueId, flat as string[]) : null
    // Only the owner's touch counts as their activity. Lost between the two (a crash), it is made up by the
    // next touch; presence checks the queue itself, so the set can only make someone look absent, not present.
    if (queue) await this.seen(userId, queueId, now)
    return queue
  }

  async dropQueue(queueId: string, userId: string): Promise<boolean> {
    if (!QUEUE_ID.test(queueId)) return false
    // The set of the caller holds only their own queues: removing the id is harmless when the queue is another's.
    const [dropped] = await this.evalPipeline([{ script: DROP, keys: [this.queueKey(queueId)], args: [userId] }])
    await this.redis.zrem(this.userQueuesKey(userId), queueId)
    return Number(dropped) > 0
  }

  async hasLiveQueue(userId: string, withinMs: number): Promise<boolean> {
    const since = Date.now() - presenceWindowMs(withinMs, this.queueTtlMs)
    const key = this.userQueuesKey(userId)
    const candidates = await this.redis.zrangebyscore(key, since, '+inf')
    if (candidates.length === 0) return false
    // The set is an index, the queue's hash the truth: one expired or dropped behind the set's back (a crash
    // between the two writes, an eviction) is no queue, and leaves the set.
    const queues = await Promise.all(candidates.map((id) => this.redis.hmget(this.queueKey(id), 'u', 's')))
    const gone = candidates.filter((_, i) => queues[i]![0] === null)
    if (gone.length) await this.redis.zrem(key, ...gone)
    return queues.some(([u, s]) => u === userId && Number(s) >= since)
  }

  async close(): Promise<void> {
    if (this.closed) return
    this.closed = true
    clearInterval(this.sweeper)
    if (this.sub.status === 'wait') this.sub.disconnect()
    else await this.sub.quit().catch(() => this.sub.disconnect())
  }
}
