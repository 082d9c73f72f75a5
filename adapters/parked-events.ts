import { sql } from 'kysely'
import type { Position, RecordedEvent } from './event-store.ts'
import type { AnyDb } from './postgres.ts'

/*
 * The parked-events store (control.parked_events): events a subscription set aside after it failed on them,
 * shared by projectors and processors. Every function takes the connection or transaction to run in: a consumer
 * parks in the transaction that moves its checkpoint past the event. Tables are named with their schema, since
 * projectors run with search_path pointing at their own.
 */

export type ConsumerKind = 'projector' | 'processor'

/** Who set an event aside: a projector or processor, by name and version. */
export type Consumer = { readonly kind: ConsumerKind; readonly name: string; readonly version: number }

export type ParkedEvent = {
  readonly consumer: Consumer
  readonly eventId: string
  readonly position: Position
  readonly stream: string
  readonly revision: bigint
  readonly type: string
  /** The last failure's message. */
  readonly error: string
  /** Failed applications so far, the ones before parking included. */
  readonly attempts: number
  readonly parkedAt: Date
  readonly lastFailedAt: Date
  readonly status: 'parked' | 'skipped'
  /** Who skipped it, when and why (null while parked). */
  readonly resolvedBy: string | null
  readonly resolvedAt: Date | null
  readonly note: string | null
}

type Row = {
  consumer_kind: ConsumerKind
  consumer: string
  version: number
  event_id: string
  transaction_id: string
  sequence: string
  stream: string
  revision: string
  type: string
  error: string
  attempts: number
  parked_at: Date
  last_failed_at: Date
  status: 'parked' | 'skipped'
  resolved_by: string | null
  resolved_at: Date | null
  resolution_note: string | null
}

const COLUMNS = sql`consumer_kind, consumer, version, event_id::text, commit_position::text as transaction_id,
  prepare_position::text as sequence, stream, stream_revision::text as revision, type, error, attempts, parked_at,
  last_failed_at, status, resolved_by, resolved_at, resolution_note`

const fromRow = (r: Row): ParkedEvent => ({
  consumer: { kind: r.consumer_kind, name: r.consumer, version: r.version },
  eventId: r.event_id,
  position: { transactionId: BigInt(r.transaction_id), sequence: BigInt(r.sequence) },
  stream: r.stream,
  revision: BigInt(r.revision),
  type: r.type,
  error: r.error,
  attempts: r.attempts,
  parkedAt: r.parked_at,
  lastFailedAt: r.last_failed_at,
  status: r.status,
  resolvedBy: r.resolved_by,
  resolvedAt: r.resolved_at,
  note: r.resolution_note,
})

/** A failure as stored: its message (with the causes a driver wraps), bounded. */
export const errorText = (e: unknown): string => {
  const parts: string[] = []
  for (
    let cur = e, depth = 0;
    cur !== undefined && cur !== null && depth < 3;
    cur = (cur as { cause?: unknown }).cause, depth++
  ) {
    parts.push(cur instanceof Error ? `${cur.name}: ${cur.message}` : String(cur))
  }
  return parts.join(' <- ').slice(0, 2_000)
}

const key = (c: Consumer, eventId: string) =>
  sql`consumer_kind = ${c.kind} and consumer = ${c.name} and version = ${c.version} and event_id = ${eventId}`

/** Sets an event aside (again, if a previous run parked it and the checkpoint was reset since). */
export async function park(db: AnyDb, c: Consumer, event: RecordedEvent, error: unknown, attempts: number): Promise<void> {
  await sql`
    insert into control.parked_events as p (consumer_kind, consumer, version, event_id, commit_position, prepare_position,
                                            stream, stream_revision, type, error, attempts)
    values (${c.kind}, ${c.name}, ${c.version}, ${event.id}, ${event.position.transactionId.toString()}::xid8,
            ${event.position.sequence.toString()}, ${event.streamName}, ${event.revision.toString()}, ${event.type},
            ${errorText(error)}, ${attempts})
    on conflict (consumer_kind, consumer, version, event_id) do update
       set error = excluded.error, attempts = p.attempts + excluded.attempts, last_failed_at = now(), status = 'parked',
           resolved_by = null, resolved_at = null, resolution_note = null`.execute(db)
}

/** One parked (or skipped) event; `forUpdate` locks it until the transaction ends. */
export async function findParked(
  db: AnyDb,
  c: Consumer,
  eventId: string,
  options: { forUpdate?: boolean } = {},
): Promise<ParkedEvent | null> {
  const { rows } = await sql<Row>`
    select ${COLUMNS} from control.parked_events where ${key(c, eventId)}${options.forUpdate ? sql` for update` : sql``}`.execute(
    db,
  )
  return rows[0] ? fromRow(rows[0]) : null
}

/** Another failed attempt: the event stays where it is, with this error. */
export async function recordFailure(db: AnyDb, c: Consumer, eventId: string, error: unknown): Promise<void> {
  await sql`update control.parked_events set error = ${errorText(error)}, attempts = attempts + 1, last_failed_at = now()
             where ${key(c, eventId)}`.execute(db)
}

/** The event went through after all: nothing is left to show for it. */
export async function unpark(db: AnyDb, c: Consumer, eventId: string): Promise<void> {
  await sql`delete from control.parked_events where ${key(c, eventId)}`.execute(db)
}

/** Marks a parked event skipped for good, naming who decided; null when there is no parked event of that key. */
export async function markSkipped(
  db: AnyDb,
  c: Consumer,
  eventId: string,
  by: string,
  note: string | null,
): Promise<ParkedEvent | null> {
  const { rows } = await sql<Row>`
    update control.parked_events set status = 'skipped', resolved_by = ${by}, resolved_at = now(), resolution_note = ${note}
     where ${key(c, eventId)} and status = 'parked'
     returning ${COLUMNS}`.execute(db)
  return rows[0] ? fromRow(rows[0]) : null
}

/** The events of a kind of consumer, oldest first, at most `limit` per consumer and status. */
export async function listParked(db: AnyDb, kind: ConsumerKind, limit = 100): Promise<ParkedEvent[]> {
  const { rows } = await sql<Row>`
    select ${COLUMNS} from (
      select *, row_number() over (partition by consumer, version, status order by commit_position, prepare_position) as nth
        from control.parked_events where consumer_kind = ${kind}) p
     where nth <= ${limit}
     order by consumer, version, commit_position, prepare_position`.execute(db)
  return rows.map(fromRow)
}

/** How many events each consumer of a kind has parked now (skipped ones not counted). */
export async function countParked(db: AnyDb, kind: ConsumerKind): Promise<{ name: string; version: number; parked: number }[]> {
  const { rows } = await sql<{ name: string; version: number; parked: number }>`
    select consumer as name, version, count(*)::int as parked from control.parked_events
     where consumer_kind = ${kind} and status = 'parked' group by consumer, version`.execute(db)
  return rows
}

/** Forgets every version's parked and skipped events of a consumer: a rebuild applied them all. */
export async function forgetParked(db: AnyDb, kind: ConsumerKind, name: string): Promise<number> {
  const r = await sql`delete from control.parked_events where consumer_kind = ${kind} and consumer = ${name}`.execute(db)
  return Number(r.numAffectedRows ?? 0n)
}

/*
 * The operator's commands over a parked event, as a port: projections/parking.ts implements them for the
 * projectors, the command routes (commands/projections.ts) take them from bin/.
 */

export type RetryOutcome =
  | { readonly outcome: 'applied'; readonly parked: ParkedEvent }
  | { readonly outcome: 'failed'; readonly parked: ParkedEvent; readonly error: string }
  | { readonly outcome: 'not_found' }

export type SkipOutcome =
  | { readonly outcome: 'skipped' | 'already_skipped'; readonly parked: ParkedEvent }
  | { readonly outcome: 'not_found' }

export type ParkedEventCommands = {
  /** Applies the event again; on success it is no longer parked, on failure it stays parked with this error. */
  retry(projector: string, eventId: string): Promise<RetryOutcome>
  /** Leaves the event unapplied for good, recording who decided and why. */
  skip(projector: string, eventId: string, by: string, reason: string | null): Promise<SkipOutcome>
}
