import type { NewEvent, Position } from '../adapters/event-store.ts'
import { START } from '../adapters/event-store.ts'
import { createKysely, createPool, migrate, type PgPool } from '../adapters/postgres.ts'
import { PostgresEventStore, type PostgresEventStoreOptions } from '../adapters/postgres-event-store.ts'
import * as eventstoreMigrations from '../migrations/eventstore/index.ts'

/** One stream a writer appends to; `revision` is the revision of its last event, -1n before the first. */
export type StreamCursor = { readonly name: string; revision: bigint }

/** A store under test, seen through the few operations the benchmark times. */
export interface Subject {
  readonly name: string
  /** What exactly is timed, printed with the results. */
  readonly measures: string
  append(stream: StreamCursor, events: readonly NewEvent[]): Promise<void>
  /** Reads every event from the start, page by page; returns how many it read. */
  catchUp(pageSize: number): Promise<number>
  /** Tables the benchmark vacuums and analyses before it times reads. */
  readonly tables: readonly string[]
  close(): Promise<void>
}

const poolSize = (writers: number) => writers + 4

/** The eventstore schema alone: the benchmark needs nothing of the other contexts. */
async function migrateEventStore(pool: PgPool): Promise<void> {
  const db = createKysely(pool)
  await migrate(db, eventstoreMigrations)
}

/** Group commit as the app runs it, unless BENCH_GROUP_IN_FLIGHT / BENCH_GROUP_MAX say otherwise. */
const groupCommit = (): PostgresEventStoreOptions['groupCommit'] => {
  const inFlight = Number(process.env.BENCH_GROUP_IN_FLIGHT || Number.NaN)
  const max = Number(process.env.BENCH_GROUP_MAX || Number.NaN)
  return {
    ...(Number.isInteger(inFlight) && inFlight > 0 ? { maxInFlight: inFlight } : {}),
    ...(Number.isInteger(max) && max > 0 ? { maxGroup: max } : {}),
  }
}

export const ours = (url: string, writers: number) => postgresEventStore('ours', url, writers, { groupCommit: groupCommit() })

/** Ours as it was before group commit: every append a transaction of its own (the baseline of the same run). */
export const ungrouped = (url: string, writers: number) => postgresEventStore('ungrouped', url, writers, { groupCommit: false })

async function postgresEventStore(
  name: string,
  url: string,
  writers: number,
  options: PostgresEventStoreOptions,
): Promise<Subject> {
  const pool = createPool(url, { max: poolSize(writers), applicationName: `bench-${name}` })
  await migrateEventStore(pool)
  const store = new PostgresEventStore(pool, options)
  return {
    name,
    measures:
      `PostgresEventStore.append (expected revision checked, one round trip; group commit ${JSON.stringify(options.groupCommit)}) ` +
      'and readAll pages from START (late-commit safe: transaction_id < snapshot xmin, ordered by (transaction_id, global_position))',
    tables: ['eventstore.events'],
    async append(stream, events) {
      const result = await store.append(stream.name, events, {
        expectedRevision: stream.revision < 0n ? 'no_stream' : stream.revision,
      })
      stream.revision = result.nextExpectedRevision
    },
    async catchUp(pageSize) {
      let from: Position = START
      let read = 0
      for (;;) {
        const page = await store.readAll({ from, maxCount: pageSize })
        if (page.length === 0) return read
        read += page.length
        from = page[page.length - 1]!.position
      }
    },
    async close() {
      await store.close()
      await pool.end()
    },
  }
}

/**
 * A plain multi-row INSERT into a table equivalent to ours (the very same DDL: columns, defaults and
 * indexes), with no stream table, no function and no revision check: the ceiling of what Postgres can do.
 */
export async function raw(url: string, writers: number): Promise<Subject> {
  const pool = createPool(url, { max: poolSize(writers), applicationName: 'bench-raw' })
  await migrateEventStore(pool)
  const insertText = (rows: number) => {
    const values: string[] = []
    for (let r = 0; r < rows; r++) {
      const p = r * 7
      values.push(
        `($${p + 1}::uuid, $${p + 2}, $${p + 3}::bigint, $${p + 4}, $${p + 5}::jsonb, $${p + 6}::jsonb, $${p + 7}::uuid)`,
      )
    }
    return `insert into eventstore.events (event_id, stream_name, stream_revision, event_type, data, metadata, tenant_id)
      values ${values.join(', ')}`
  }
  const texts = new Map<number, string>()
  return {
    name: 'raw',
    measures:
      'multi-row INSERT (prepared) into a copy of our events table (same columns and indexes); ' +
      'catch-up: pages of select ... where global_position > $1 order by global_position',
    tables: ['eventstore.events'],
    async append(stream, events) {
      let text = texts.get(events.length)
      if (text === undefined) {
        text = insertText(events.length)
        texts.set(events.length, text)
      }
      const values: unknown[] = []
      let revision = stream.revision
      for (const e of events) {
        revision++
        values.push(
          e.id,
          stream.name,
          revision.toString(),
          e.type,
          JSON.stringify(e.data),
          JSON.stringify(e.metadata),
          e.metadata.tenantId,
        )
      }
      await pool.query({ name: `bench_raw_insert_${events.length}`, text, values })
      stream.revision = revision
    },
    async catchUp(pageSize) {
      let after = '0'
      let read = 0
      for (;;) {
        const { rows } = await pool.query<{ global_position: string }>({
          name: 'bench_raw_read',
          text: `select e.global_position, e.transaction_id, e.event_id, e.stream_name, e.stream_revision,
                   e.event_type, e.data, e.metadata
                 from eventstore.events e where e.global_position > $1 order by e.global_position limit $2`,
          values: [after, pageSize],
        })
        if (rows.length === 0) return read
        read += rows.length
        after = rows[rows.length - 1]!.global_position
      }
    },
    async close() {
      await pool.end()
    },
  }
}

/**
 * Emmett's PostgreSQL event store (getPostgreSQLEventStore) over its own schema. Appends go through
 * appendToStream with expectedStreamVersion; catch-up uses readMessagesBatch, the reader behind Emmett's
 * consumers and processors (postgreSQLEventStoreMessageBatchPuller), called back to back: the puller
 * itself sleeps pullingFrequencyInMs between batches, which would measure its timer, not the store.
 */
export async function emmett(url: string, writers: number): Promise<Subject> {
  // Imported here only: dumbo installs global pg type parsers (int8 → BigInt, jsonb through its
  // serializer), and the benchmark runs each subject in its own process so they never leak into ours.
  const { getPostgreSQLEventStore, readMessagesBatch } = await import('@event-driven-io/emmett-postgresql')
  const { STREAM_DOES_NOT_EXIST } = await import('@event-driven-io/emmett')
  const { dumbo } = await import('@event-driven-io/dumbo')
  const pool = createPool(url, { max: poolSize(writers), applicationName: 'bench-emmett' })
  const connection = dumbo({ connectionString: url, pool })
  const store = getPostgreSQLEventStore(url, { connectionOptions: { dumbo: connection } })
  await store.schema.migrate()
  return {
    name: 'emmett',
    measures:
      'getPostgreSQLEventStore(...).appendToStream with expectedStreamVersion; catch-up: readMessagesBatch ' +
      '({ after, batchSize }) back to back, as its consumers read $all',
    tables: ['emt_messages', 'emt_streams'],
    async append(stream, events) {
      const result = await store.appendToStream(
        stream.name,
        events.map((e) => ({
          type: e.type,
          data: e.data as Record<string, unknown>,
          metadata: { messageId: e.id, ...e.metadata },
        })),
        // Emmett counts events: version n means n events, where our revision is n - 1.
        { expectedStreamVersion: stream.revision < 0n ? STREAM_DOES_NOT_EXIST : stream.revision + 1n },
      )
      stream.revision = result.nextExpectedStreamVersion - 1n
    },
    async catchUp(pageSize) {
      let after = 0n
      let read = 0
      for (;;) {
        const batch = await readMessagesBatch(connection.execute, { after, batchSize: pageSize })
        read += batch.messages.length
        if (batch.messages.length === 0) return read
        after = batch.currentGlobalPosition
        if (!batch.areMessagesLeft) return read
      }
    },
    async close() {
      await store.close()
      await connection.close()
      await pool.end()
    },
  }
}

export const subjects = { ours, ungrouped, emmett, raw } as const
export type SubjectName = keyof typeof subjects
