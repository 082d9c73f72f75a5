import type pg from 'pg'
import { type EventStore, type Position, type RecordedEvent, START } from './event-store.ts'
import { PostgresEventStore } from './postgres-event-store.ts'

/*
 * Audit reads: the events of a tenant, a stream or an actor over a time range, oldest first, in pages. Over any
 * EventStore this reads $all (or the one stream) and filters here; over the Postgres store a tenant's history
 * is read through the events_tenant index instead of scanning every tenant's events.
 */

export type AuditFilter = {
  readonly tenantId?: string
  readonly stream?: string
  /** An actor id, or `type:id`. */
  readonly actor?: string
  /** Inclusive bounds on each event's occurredAt. */
  readonly from?: Date
  readonly to?: Date
  /** Event types; `message.*` matches a prefix. */
  readonly types?: readonly string[]
}

export type AuditPage = {
  readonly events: RecordedEvent[]
  /** The last event looked at (matched or not): where a paginated reader resumes after this page. */
  readonly last: RecordedEvent | null
  /** Events looked at for this page (matched or not): what progress reports count. */
  readonly scanned: number
  readonly done: boolean
}

export interface AuditReader {
  /** Which path serves this filter, for the operator: `tenant index`, `stream`, `$all scan`. */
  readonly plan: string
  next(): Promise<AuditPage>
}

const typeMatcher = (types: readonly string[] | undefined) => {
  if (!types?.length) return () => true
  const exact = new Set(types.filter((t) => !t.endsWith('*')))
  const prefixes = types.filter((t) => t.endsWith('*')).map((t) => t.slice(0, -1))
  return (type: string) => exact.has(type) || prefixes.some((p) => type.startsWith(p))
}

/** The filter as a predicate over one event. */
export function matches(filter: AuditFilter): (e: RecordedEvent) => boolean {
  const type = typeMatcher(filter.types)
  const from = filter.from?.getTime()
  const to = filter.to?.getTime()
  return (e) => {
    const m = e.metadata
    if (filter.tenantId && m.tenantId !== filter.tenantId) return false
    if (filter.stream && e.streamName !== filter.stream) return false
    if (filter.actor && m.actor.id !== filter.actor && `${m.actor.type}:${m.actor.id}` !== filter.actor) return false
    if (!type(e.type)) return false
    if (from !== undefined || to !== undefined) {
      const at = Date.parse(m.occurredAt)
      if (from !== undefined && at < from) return false
      if (to !== undefined && at > to) return false
    }
    return true
  }
}

/** Where a reader resumes: after this event (a page's `last`), as its position and stream revision. */
export type AuditResume = { readonly position: Position; readonly revision: bigint }

export function auditReader(
  store: EventStore,
  filter: AuditFilter,
  options: {
    pageSize?: number
    /** With a PostgresEventStore: its pool, to read a tenant through its index. */
    pool?: pg.Pool
    /**
     * The Postgres event store's pool, for a store that is a decorated PostgresEventStore (the API's): a tenant is
     * read through its index here, as stored (not decrypted, not upcast).
     */
    tenantIndex?: pg.Pool
    /** Resume after this event: the next page of an earlier read. */
    after?: AuditResume
  } = {},
): AuditReader {
  const pageSize = options.pageSize ?? 1_000
  const keep = matches(filter)
  if (filter.stream) {
    let revision = options.after ? options.after.revision + 1n : 0n
    return {
      plan: 'stream',
      async next() {
        const events = await store.readStream(filter.stream!, { fromRevision: revision, maxCount: pageSize })
        const last = events[events.length - 1]
        if (last) revision = last.revision + 1n
        return { events: events.filter(keep), last: last ?? null, scanned: events.length, done: events.length < pageSize }
      },
    }
  }
  const tenantPool = options.tenantIndex ?? (store instanceof PostgresEventStore ? options.pool : undefined)
  if (filter.tenantId && tenantPool) {
    return postgresTenantReader(tenantPool, filter.tenantId, keep, pageSize, options.after?.position.sequence ?? 0n)
  }
  let from: Position = options.after?.position ?? START
  return {
    plan: '$all scan',
    async next() {
      const events = await store.readAll({ from, maxCount: pageSize })
      const last = events[events.length - 1]
      if (last) from = last.position
      return { events: events.filter(keep), last: last ?? null, scanned: events.length, done: events.length < pageSize }
    },
  }
}

/**
 * One tenant's events through the events_tenant index (tenant_id, global_position), in global_position order.
 * Each page sees the events committed when it runs; one committing during the read with a smaller position
 * than the page already passed is history newer than this audit (a subscriber of $all still gets it).
 */
function postgresTenantReader(
  pool: pg.Pool,
  tenantId: string,
  keep: (e: RecordedEvent) => boolean,
  pageSize: number,
  start: bigint,
): AuditReader {
  let after = start
  return {
    plan: 'tenant index',
    async next() {
      const { rows } = await pool.query<{
        global_position: string
        transaction_id: string
        event_id: string
        stream_name: string
        stream_revision: string
        event_type: string
        data: unknown
        metadata: RecordedEvent['metadata']
      }>(
        `select global_position, transaction_id, event_id, stream_name, stream_revision, event_type, data, metadata
           from eventstore.events
          where tenant_id = $1 and global_position > $2
          order by global_position limit $3`,
        [tenantId, after.toString(), pageSize],
      )
      const events = rows.map(
        (r): RecordedEvent => ({
          id: r.event_id,
          type: r.event_type,
          data: r.data,
          metadata: r.metadata,
          streamName: r.stream_name,
          revision: BigInt(r.stream_revision),
          position: { transactionId: BigInt(r.transaction_id), sequence: BigInt(r.global_position) },
        }),
      )
      const last = events[events.length - 1]
      if (last) after = last.position.sequence
      return { events: events.filter(keep), last: last ?? null, scanned: events.length, done: events.length < pageSize }
    },
  }
}
