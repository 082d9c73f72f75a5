import type pg from 'pg'
import { v7 as uuid } from 'uuid'
import { PgListener } from './pg-listener.ts'
import {
  type AppendSummary,
  DEFAULT_MAX_LEN,
  DEFAULT_QUEUE_TTL_MS,
  normaliseBatch,
  parseEntryId,
  presenceWindowMs,
  type QueueState,
  STREAM_START_ID,
  type Unsubscribe,
  type UserStreamEntry,
  type UserStreamRead,
  type UserStreams,
  type UserStreamsOptions,
  WakeRegistry,
} from './user-streams.ts'

/** Tables and the append function: migrations/realtime/001_user_events.ts. */
const CHANNEL = 'realtime_wake'
/** The listening connection's application_name (operators and tests find it by this). */
export const WAKEUP_CONNECTION_NAME = 'realtime-wakeups'

const QUEUE_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i

type QueueRow = {
  queue_id: string
  user_id: string
  event_types: string[] | null
  last_acked_id: string
  last_seen_at: Date
}

const QUEUE_COLUMNS = 'queue_id::text, user_id, event_types, last_acked_id, last_seen_at'

const toQueue = (r: QueueRow): QueueState => ({
  queueId: r.queue_id,
  userId: r.user_id,
  eventTypes: r.event_types,
  lastAckedId: r.last_acked_id,
  lastSeenAt: r.last_seen_at.getTime(),
})

const requireId = (id: string) => {
  const p = parseEntryId(id)
  if (!p) throw new Error(`invalid user stream id: ${id}`)
  return p
}

/**
 * The realtime port on Postgres. Wakeups: one NOTIFY per user whose stream grew, sent by the append
 * transaction at commit; each instance LISTENs on one connection taken from the pool for good, and
 * after losing it listens again and wakes everyone (notifications may have been missed).
 *
 * Entries' previous ids are not kept: these streams lose nothing but what they trim, and they record that.
 */
export class PostgresUserStreams implements UserStreams {
  private readonly pool: pg.Pool
  private readonly maxLen: number
  readonly queueTtlMs: number
  private readonly registry = new WakeRegistry()
  private readonly listener: PgListener
  private retry: NodeJS.Timeout | null = null
  private closed = false

  constructor(pool: pg.Pool, options: UserStreamsOptions = {}) {
    this.pool = pool
    this.maxLen = options.maxLen ?? DEFAULT_MAX_LEN
    this.queueTtlMs = options.queueTtlMs ?? DEFAULT_QUEUE_TTL_MS
    this.listener = new PgListener(pool, {
      channel: CHANNEL,
      applicationName: WAKEUP_CONNECTION_NAME,
      onNotification: (userId) => {
        if (userId) this.registry.wake(userId)
      },
      onLost: () => this.relisten(),
    })
  }

  async append(entries: readonly UserStreamEntry[]): Promise<AppendSummary> {
    const byUser = normaliseBatch(entries)
    if (byUser.size === 0) return { appended: 0, wokenUsers: [] }
    const payload = [...byUser.values()].flat().map((e) => {
      const p = requireId(e.id)
      return {
        u: e.userId,
        c: p.transactionId.toString(),
        p: p.sequence.toString(),
        t: e.type,
        n: e.position,
        o: e.occurredAt,
        d: e.data ?? null,
      }
    })
    const { rows } = await this.pool.query<{ woken_user: string; added: number }>({
      name: 'realtime_append',
      text: 'select woken_user, added from realtime.append($1, $2)',
      values: [JSON.stringify(payload), this.maxLen],
    })
    return { appended: rows.reduce((n, r) => n + r.added, 0), wokenUsers: rows.map((r) => r.woken_user) }
  }

  async read(userId: string, afterId: string, limit: number): Promise<UserStreamRead> {
    const after = requireId(afterId)
    const { rows } = await this.pool.query<{
      c: string
      p: string
      type: string
      position: string
      occurred_at: Date
      data: unknown
      truncated: boolean
    }>({
      name: 'realtime_read',
      text: `select e.commit_position::text as c, e.prepare_position::text as p, e.type, e.position::text,
                    e.occurred_at, e.data,
                    (h.trimmed_commit, h.trimmed_prepare) > ($2::bigint, $3::bigint) as truncated
               from realtime.user_events e join realtime.user_heads h on h.user_id = e.user_id
              where e.user_id = $1 and (e.commit_position, e.prepare_position) > ($2::bigint, $3::bigint)
              order by e.commit_position, e.prepare_position
              limit $4`,
      values: [userId, after.transactionId.toString(), after.sequence.toString(), Math.max(1, limit)],
    })
    return {
      events: rows.map((r) => ({
        id: `${r.c}-${r.p}`,
        type: r.type,
        position: Number(r.position),
        occurredAt: r.occurred_at.toISOString(),
        data: r.data,
      })),
      // Trimming keeps the newest entries, so anything trimmed after afterId leaves later rows behind.
      truncated: rows[0]?.truncated ?? false,
    }
  }

  async remove(userId: string, ids: readonly string[]): Promise<void> {
    const positions = ids.map(requireId)
    if (positions.length === 0) return
    // Marked as trimmed up to the newest one removed: a reader standing before it reads `truncated`, as over Redis.
    await this.pool.query({
      text: `with gone as (
               delete from realtime.user_events e using unnest($2::bigint[], $3::bigint[]) as x(c, p)
                where e.user_id = $1 and e.commit_position = x.c and e.prepare_position = x.p
               returning e.commit_position as c, e.prepare_position as p),
             newest as (select c, p from gone order by c desc, p desc limit 1)
             update realtime.user_heads h set trimmed_commit = n.c, trimmed_prepare = n.p
               from newest n where h.user_id = $1 and (n.c, n.p) > (h.trimmed_commit, h.trimmed_prepare)`,
      values: [userId, positions.map((p) => p.transactionId.toString()), positions.map((p) => p.sequence.toString())],
    })
  }

  async lastId(userId: string): Promise<string> {
    const { rows } = await this.pool.query<{ id: string }>({
      name: 'realtime_last_id',
      text: `select last_commit || '-' || last_prepare as id from realtime.user_heads where user_id = $1`,
      values: [userId],
    })
    return rows[0]?.id ?? STREAM_START_ID
  }

  async onWake(userId: string, callback: () => void): Promise<Unsubscribe> {
    if (this.closed) throw new Error('user streams closed')
    this.registry.add(userId, callback)
    try {
      await this.listen()
    } catch (e) {
      this.registry.remove(userId, callback)
      throw e
    }
    let removed = false
    return () => {
      if (removed) return
      removed = true
      this.registry.remove(userId, callback)
    }
  }

  private listen(): Promise<void> {
    if (this.closed) return Promise.resolve()
    return this.listener.listen()
  }

  /** The listening connection broke: listen again (with back-off) and wake everyone once it is back. */
  private relisten(attempt = 0): void {
    if (this.closed || this.retry) return
    const delay = Math.min(2_000, 50 * 2 ** attempt)
    this.retry = setTimeout(() => {
      this.retry = null
      if (this.closed) return
      this.listen().then(
        () => this.registry.wakeAll(),
        () => this.relisten(attempt + 1),
      )
    }, delay)
    this.retry.unref()
  }

  async registerQueue(userId: string, eventTypes: readonly string[] | null, startId: string): Promise<QueueState> {
    requireId(startId)
    const { rows } = await this.pool.query<QueueRow>({
      name: 'realtime_register_queue',
      text: `with swept as (
               delete from realtime.event_queues where last_seen_at < now() - $4 * interval '1 millisecond'
             )
             insert into realtime.event_queues (queue_id, user_id, event_types, last_acked_id, last_seen_at)
             values ($1, $2, $3, $5, now())
             returning ${QUEUE_COLUMNS}`,
      values: [uuid(), userId, eventTypes ? [...eventTypes] : null, this.queueTtlMs, startId],
    })
    return toQueue(rows[0]!)
  }

  async getQueue(queueId: string): Promise<QueueState | null> {
    if (!QUEUE_ID.test(queueId)) return null
    const { rows } = await this.pool.query<QueueRow>({
      name: 'realtime_get_queue',
      text: `select ${QUEUE_COLUMNS} from realtime.event_queues
              where queue_id = $1 and last_seen_at >= now() - $2 * interval '1 millisecond'`,
      values: [queueId, this.queueTtlMs],
    })
    return rows[0] ? toQueue(rows[0]) : null
  }

  async touchQueue(queueId: string, userId: string, ackedId?: string): Promise<QueueState | null> {
    if (!QUEUE_ID.test(queueId)) return null
    if (ackedId !== undefined) requireId(ackedId)
    const { rows } = await this.pool.query<QueueRow>({
      name: 'realtime_touch_queue',
      text: `update realtime.event_queues
                set last_seen_at = now(), last_acked_id = coalesce($3, last_acked_id)
              where queue_id = $1 and user_id = $4 and last_seen_at >= now() - $2 * interval '1 millisecond'
              returning ${QUEUE_COLUMNS}`,
      values: [queueId, this.queueTtlMs, ackedId ?? null, userId],
    })
    return rows[0] ? toQueue(rows[0]) : null
  }

  async dropQueue(queueId: string, userId: string): Promise<boolean> {
    if (!QUEUE_ID.test(queueId)) return false
    const { rows } = await this.pool.query<{ live: boolean }>({
      name: 'realtime_drop_queue',
      text: `delete from realtime.event_queues where queue_id = $1 and user_id = $3
             returning last_seen_at >= now() - $2 * interval '1 millisecond' as live`,
      values: [queueId, this.queueTtlMs, userId],
    })
    return rows[0]?.live ?? false
  }

  async hasLiveQueue(userId: string, withinMs: number): Promise<boolean> {
    // Served by event_queues_user_seen (migrations/realtime/003_queue_presence.ts).
    const { rows } = await this.pool.query<{ live: boolean }>({
      name: 'realtime_has_live_queue',
      text: `select exists (select from realtime.event_queues
                             where user_id = $1 and last_seen_at >= now() - $2 * interval '1 millisecond') as live`,
      values: [userId, presenceWindowMs(withinMs, this.queueTtlMs)],
    })
    return rows[0]?.live ?? false
  }

  async close(): Promise<void> {
    if (this.closed) return
    this.closed = true
    if (this.retry) clearTimeout(this.retry)
    await this.listener.close()
  }
}
