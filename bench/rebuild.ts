// npm run bench:rebuild
//   BENCH_EVENTS=1000000        events in the history (default 1M)
//   BENCH_BATCH=20000           events per batch, for us and for Emmett
//   BENCH_EMMETT_EVENTS=N       the first N events Emmett projects (default 100000: at ~1k events/s all 1M take 17 min; 0 skips)
//   BENCH_REFERENCE_EVENTS=N    events the per-event reference projects (default 20000; 0 skips it)
//   BENCH_BATCHED_EVENTS=N      events the batch-by-batch build (the rebuild before the bulk path) projects (default all; 0 skips it)
//   BENCH_KEEP=1                keep the benchmark database
//   DATABASE_URL                an admin connection (default postgres://postgres@127.0.0.1:5432/postgres)
//
// Rebuilding the messages read model from a history of N events: our rebuild (the bulk build: folded in memory,
// COPY, indexes once), the same rebuild batch by batch (how it went before the bulk build, and how the live
// engine applies batches), Emmett's PostgreSQL projection (one SQL statement per event, its documented raw-SQL
// projection) through its own rebuild, and the ceilings: a raw COPY of the very rows the read model ends with,
// into tables with the same indexes and into tables without them. The last line is JSON.
import { availableParallelism } from 'node:os'
import { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import pg from 'pg'
import { from as copyFrom, to as copyTo } from 'pg-copy-streams'
import { v7 as uuid } from 'uuid'
import { createKysely, createPool } from '../adapters/postgres.ts'
import { PostgresEventStore } from '../adapters/postgres-event-store.ts'
import { formatCount, Progress } from '../adapters/progress.ts'
import { rng } from '../bin/seed-workload.ts'
import { migrateAll } from '../migrations/index.ts'
import type { Projector } from '../projections/engine.ts'
import { messagesProjector } from '../projections/messages.ts'
import { buildShadow, dropShadow, rebuild } from '../projections/rebuild.ts'
import { messagesPerEvent } from '../tests/support/messages-per-event.ts'

const N = Number(process.env.BENCH_EVENTS ?? 1_000_000)
const BATCH = Number(process.env.BENCH_BATCH ?? 20_000)
const EMMETT_EVENTS = Math.min(N, Number(process.env.BENCH_EMMETT_EVENTS ?? 100_000))
const REFERENCE_EVENTS = Math.min(N, Number(process.env.BENCH_REFERENCE_EVENTS ?? 20_000))
const BATCHED_EVENTS = Math.min(N, Number(process.env.BENCH_BATCHED_EVENTS ?? N))
const ADMIN = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres'
const log = (line: string) => process.stderr.write(`${line}\n`)

// --- the history: a busy chat workload, deterministic for a seed

const WORDS = 'ship the build review rollout agent customer design shadow tables green flaky fix plan lunch noon doc'.split(' ')

type Row = {
  event_id: string
  stream_name: string
  stream_revision: number
  event_type: string
  data: unknown
  metadata: unknown
  tenant_id: string
}

function* history(count: number): Generator<Row> {
  const random = rng(7)
  const pick = <T>(xs: readonly T[]) => xs[Math.floor(random() * xs.length)]!
  const tenants = Array.from({ length: 10 }, () => ({
    id: uuid(),
    rooms: Array.from({ length: 50 }, () => ({ id: uuid(), recent: [] as { id: string; text: string }[] })),
    users: Array.from({ length: 20 }, () => uuid()),
  }))
  const revisions = new Map<string, number>()
  const next = (stream: string) => {
    const r = revisions.get(stream) ?? -1
    revisions.set(stream, r + 1)
    return r + 1
  }
  let clock = Date.UTC(2025, 0, 6, 9)
  for (let n = 0; n < count; n++) {
    clock += Math.floor(random() * 400)
    const at = new Date(clock).toISOString()
    const tenant = pick(tenants)
    // A few busy rooms, a long tail of quiet ones.
    const room = tenant.rooms[Math.floor(random() ** 2 * tenant.rooms.length)]!
    const user = pick(tenant.users)
    const roll = random()
    const text = () => Array.from({ length: 6 + Math.floor(random() * 12) }, () => pick(WORDS)).join(' ')
    let stream: string
    let type: string
    let data: Record<string, unknown>
    const target = room.recent.length ? room.recent[Math.floor(random() * room.recent.length)]! : null
    if (!target || roll < 0.85) {
      const id = uuid()
      const reply = target && random() < 0.15 ? target.id : null
      const t = text()
      stream = `message-${id}`
      type = 'message.created'
      data = {
        messageId: id,
        roomId: room.id,
        authorId: user,
        authorType: 'user',
        text: t,
        threadRootId: reply,
        mentions: [],
        at,
      }
      room.recent.push({ id, text: t })
      if (room.recent.length > 200) room.recent.shift()
    } else if (roll < 0.91) {
      stream = `message-${target.id}`
      type = 'message.reaction_changed'
      data = {
        messageId: target.id,
        roomId: room.id,
        userId: user,
        emoji: pick(['thumbsup', 'tada', 'eyes']),
        reacted: random() < 0.8,
        at,
      }
    } else if (roll < 0.95) {
      const t = `${target.text} (edited)`
      stream = `message-${target.id}`
      type = 'message.updated'
      data = { messageId: target.id, roomId: room.id, text: t, previousText: target.text, mentions: [], at }
      target.text = t
    } else if (roll < 0.965) {
      stream = `message-${target.id}`
      type = 'message.deleted'
      data = { messageId: target.id, roomId: room.id, deletedBy: user, at }
      room.recent.splice(room.recent.indexOf(target), 1)
    } else {
      // Drafts are no events any more (kept in a table by their command): the last share goes to read marks.
      stream = `room_read-${room.id}_${user}`
      type = 'room.read_marked'
      data = { roomId: room.id, userId: user, messageId: room.recent[room.recent.length - 1]!.id, at }
    }
    yield {
      event_id: uuid(),
      stream_name: stream,
      stream_revision: next(stream),
      event_type: type,
      data,
      metadata: {
        tenantId: tenant.id,
        actor: { type: 'user', id: user },
        correlationId: uuid(),
        causationId: null,
        occurredAt: at,
        schemaVersion: 1,
      },
      tenant_id: tenant.id,
    }
  }
}

// --- COPY through pg-copy-streams: in and out of STDIN/STDOUT

const copyOut = async (client: pg.PoolClient, text: string): Promise<Buffer[]> => {
  const chunks: Buffer[] = []
  for await (const chunk of client.query(copyTo(text))) chunks.push(chunk as Buffer)
  return chunks
}
const copyIn = (client: pg.PoolClient, text: string, chunks: readonly Buffer[]) =>
  pipeline(Readable.from(chunks), client.query(copyFrom(text)))

// --- Emmett: its raw-SQL projection, the same statements as our per-event reference, one per event

type EmmettEvent = { type: string; data: Record<string, unknown> & { mentions?: unknown }; metadata: { tenantId: string } }

async function emmettRun(url: string, events: number): Promise<number> {
  const { getPostgreSQLEventStore, postgreSQLRawSQLProjection, rebuildPostgreSQLProjections } = await import(
    '@event-driven-io/emmett-postgresql'
  )
  const { sql: esql } = await import('@event-driven-io/dumbo')
  const store = getPostgreSQLEventStore(url)
  await store.schema.migrate()
  await store.close()
  const pool = createPool(url, { max: 2 })
  await pool.query(`
    insert into emt_messages (stream_position, global_position, transaction_id, stream_id, partition, message_schema_version,
                              message_id, message_type, message_data, message_metadata)
    select stream_revision, global_position, transaction_id, stream_name, 'emt:default', '1', event_id::text, event_type, data, metadata
      from eventstore.events order by global_position limit ${events}`)
  await pool.query(`select setval('emt_global_message_position', (select max(global_position) from emt_messages))`)
  await pool.query('create schema emmett')
  for (const t of ['messages', 'message_edits', 'room_reads']) {
    await pool.query(`create table emmett.${t} (like tenant.${t} including all)`)
  }
  await pool.end()

  const tombstone = (tenantId: string, id: string, at: string) => [
    esql(
      `with d as (update emmett.messages set deleted_at = %L, text = '', mentions = '[]', reactions = '{}'
                   where tenant_id = %L and id = %L and deleted_at is null returning thread_root_id)
       update emmett.messages r set reply_count = greatest(r.reply_count - 1, 0) from d
        where r.tenant_id = %L and r.id = d.thread_root_id`,
      at,
      tenantId,
      id,
      tenantId,
    ),
  ]
  const projection = postgreSQLRawSQLProjection<EmmettEvent>({
    name: 'messages',
    canHandle: [...messagesProjector.eventTypes],
    evolve: (e) => {
      const t = e.metadata.tenantId
      const d = e.data as Record<string, unknown> & { messageIds: string[]; messageId: string; at: string }
      switch (e.type) {
        case 'message.created':
          return [
            esql(
              `insert into emmett.messages (tenant_id, id, room_id, seq, author_id, author_type, text, thread_root_id, mentions, created_at, position)
               select %L, %L, %L, coalesce((select max(seq) from emmett.messages where tenant_id = %L and room_id = %L), 0) + 1,
                      %L, %L, %L, %L, %L, %L, 0
               on conflict do nothing`,
              t,
              d.messageId,
              d.roomId,
              t,
              d.roomId,
              d.authorId,
              d.authorType,
              d.text,
              d.threadRootId,
              JSON.stringify(d.mentions),
              d.at,
            ),
            ...(d.threadRootId
              ? [
                  esql(
                    'update emmett.messages set reply_count = reply_count + 1 where tenant_id = %L and id = %L',
                    t,
                    d.threadRootId,
                  ),
                ]
              : []),
          ]
        case 'message.updated':
          return [
            esql(
              `insert into emmett.message_edits (tenant_id, message_id, version, text, replaced_at)
               select %L, %L, coalesce((select max(version) from emmett.message_edits where tenant_id = %L and message_id = %L), 0) + 1, %L, %L`,
              t,
              d.messageId,
              t,
              d.messageId,
              d.previousText,
              d.at,
            ),
            esql(
              'update emmett.messages set text = %L, mentions = %L, edited_at = %L where tenant_id = %L and id = %L',
              d.text,
              JSON.stringify(d.mentions),
              d.at,
              t,
              d.messageId,
            ),
          ]
        case 'message.deleted':
          return tombstone(t, d.messageId, d.at)
        case 'message.range_deleted':
          return d.messageIds.flatMap((id) => tombstone(t, id, d.at))
        case 'message.reaction_changed':
          // The same set semantics as ours, in SQL: add the user under the emoji (kept in place if there), or remove
          // them; an emoji nobody reacts with any more goes.
          return [
            esql(
              `update emmett.messages m
                  set reactions = case when jsonb_array_length(x.users) = 0 then m.reactions - %L
                                       else jsonb_set(m.reactions, array[%L], x.users) end
                 from (select case when %L::boolean
                                   then case when coalesce(reactions -> %L, '[]') ? %L then coalesce(reactions -> %L, '[]')
                                             else coalesce(reactions -> %L, '[]') || to_jsonb(%L::text) end
                                   else coalesce(reactions -> %L, '[]') - %L end as users
                         from emmett.messages where tenant_id = %L and id = %L) x
                where m.tenant_id = %L and m.id = %L`,
              d.emoji,
              d.emoji,
              String(d.reacted),
              d.emoji,
              d.userId,
              d.emoji,
              d.emoji,
              d.userId,
              d.emoji,
              d.userId,
              t,
              d.messageId,
              t,
              d.messageId,
            ),
          ]
        case 'room.read_marked':
          return [
            esql(
              `insert into emmett.room_reads (tenant_id, room_id, user_id, message_id, seq)
               select %L, %L, %L, %L, m.seq from emmett.messages m where m.tenant_id = %L and m.id = %L
               on conflict (tenant_id, room_id, user_id) do update set message_id = excluded.message_id, seq = excluded.seq`,
              t,
              d.roomId,
              d.userId,
              d.messageId,
              t,
              d.messageId,
            ),
          ]
        default:
          // The bench writes no other type the projector reads.
          return []
      }
    },
  })
  // The consumer settles each batch quietly: keep the first failure, or a broken projection would look fast.
  let failure: unknown = null
  const handle = projection.handle
  projection.handle = async (events, context) => {
    try {
      await handle(events, context)
    } catch (e) {
      failure ??= e
      throw e
    }
  }
  const started = performance.now()
  const consumer = rebuildPostgreSQLProjections({
    connectionString: url,
    projection,
    pulling: { batchSize: BATCH, pullingFrequencyInMs: 0 },
  })
  const progress = new Progress()
  const timer = setInterval(async () => {
    const done = await countEmmett(url)
    progress.update({ label: 'emmett rebuild', done, fraction: done / events })
  }, 2_000)
  try {
    await consumer.start()
  } finally {
    clearInterval(timer)
    progress.done()
    await consumer.close()
  }
  if (failure) throw failure
  const done = await countEmmett(url)
  if (done < events) throw new Error(`Emmett stopped at ${done} of ${events} events`)
  return (performance.now() - started) / 1000
}

async function countEmmett(url: string): Promise<number> {
  const c = new pg.Client({ connectionString: url })
  await c.connect()
  try {
    const { rows } = await c.query<{ p: string | null }>('select max(last_processed_checkpoint) as p from emt_processors')
    return Number(rows[0]?.p ?? 0)
  } catch {
    return 0
  } finally {
    await c.end()
  }
}

// --- the run

async function main() {
  const name = `bench_rebuild_${process.pid}`
  const admin = new pg.Client({ connectionString: ADMIN })
  await admin.connect()
  await admin.query(`create database ${name}`)
  const url = new URL(ADMIN)
  url.pathname = `/${name}`
  const dbUrl = url.toString()
  const pool = createPool(dbUrl, { max: 6, applicationName: 'bench-rebuild' })
  const db = createKysely(pool)
  const result: Record<string, unknown> = { events: N, batchSize: BATCH, cores: availableParallelism() }
  try {
    await migrateAll(db)
    // 1. The history, written in bulk with COPY (not timed as part of any rebuild): 50,000 events per transaction.
    let started = performance.now()
    const load = new Progress()
    const loader = await pool.connect()
    const field = (v: string) => v.replace(/\\/g, '\\\\').replace(/\t/g, '\\t').replace(/\n/g, '\\n').replace(/\r/g, '\\r')
    let lines: string[] = []
    let written = 0
    const flush = async () => {
      await copyIn(
        loader,
        'copy eventstore.events (event_id, stream_name, stream_revision, event_type, data, metadata, tenant_id) from stdin',
        [Buffer.from(`${lines.join('\n')}\n`)],
      )
      written += lines.length
      lines = []
      load.update({ label: 'load history', done: written, fraction: written / N })
    }
    try {
      for (const r of history(N)) {
        lines.push(
          [
            r.event_id,
            field(r.stream_name),
            String(r.stream_revision),
            r.event_type,
            field(JSON.stringify(r.data)),
            field(JSON.stringify(r.metadata)),
            r.tenant_id,
          ].join('\t'),
        )
        if (lines.length === 50_000) await flush()
      }
      if (lines.length) await flush()
    } finally {
      loader.release()
    }
    load.done()
    await pool.query('vacuum analyze eventstore.events')
    const { rows: mix } = await pool.query<{ event_type: string; n: string }>(
      'select event_type, count(*) as n from eventstore.events group by 1 order by 2 desc',
    )
    result.mix = Object.fromEntries(mix.map((r) => [r.event_type, Number(r.n)]))
    log(`history: ${formatCount(N)} events in ${((performance.now() - started) / 1000).toFixed(1)}s`)

    const store = new PostgresEventStore(pool)
    const deps = { store, db, pool }
    const bar = (label: string) => {
      const p = new Progress()
      return {
        p,
        onProgress: (r: { events: number; position: { sequence: bigint }; head: { sequence: bigint } }) =>
          p.update({ label, done: r.events, fraction: Number(r.position.sequence) / Number(r.head.sequence || 1n) }),
      }
    }

    // 2. Ours: the messages projector rebuilt into shadow tables and swapped in.
    {
      const b = bar('ours: rebuild messages')
      started = performance.now()
      const r = await rebuild(deps, messagesProjector, { batchSize: BATCH, onProgress: b.onProgress })
      const seconds = (performance.now() - started) / 1000
      b.p.done()
      result.ours = { events: r.events, seconds: round(seconds), eventsPerSecond: Math.round(r.events / seconds) }
      log(`ours: ${formatCount(r.events / seconds)} events/s`)
    }

    /** The position of the n-th event. */
    const nth = async (n: number) => {
      const { rows } = await pool.query<{ c: string; p: string }>(
        `select transaction_id::text as c, global_position::text as p from eventstore.events
          order by transaction_id, global_position offset ${n - 1} limit 1`,
      )
      return { transactionId: BigInt(rows[0]!.c), sequence: BigInt(rows[0]!.p) }
    }

    // 3. The same rebuild batch by batch (no pool for COPY: what it did before the bulk build), into a shadow.
    if (BATCHED_EVENTS > 0) {
      const batched: Projector = { ...messagesProjector, name: 'messages_batched' }
      const until = await nth(BATCHED_EVENTS)
      const b = bar('batch by batch')
      started = performance.now()
      const r = await buildShadow({ store, db }, batched, { batchSize: BATCH, until, restart: true, onProgress: b.onProgress })
      const seconds = (performance.now() - started) / 1000
      b.p.done()
      await dropShadow(db, batched)
      result.batchByBatch = { events: r.events, seconds: round(seconds), eventsPerSecond: Math.round(r.events / seconds) }
      log(`batch by batch: ${formatCount(r.events / seconds)} events/s`)
    }

    // 4. Our per-event reference (the semantics the batched projector equals), on the first events.
    if (REFERENCE_EVENTS > 0) {
      const reference: Projector = { ...messagesProjector, name: 'messages_reference', apply: messagesPerEvent.apply }
      const until = await nth(REFERENCE_EVENTS)
      const b = bar('per-event reference')
      started = performance.now()
      const r = await buildShadow(deps, reference, { batchSize: BATCH, until, restart: true, onProgress: b.onProgress })
      const seconds = (performance.now() - started) / 1000
      b.p.done()
      await dropShadow(db, reference)
      result.perEventReference = { events: r.events, seconds: round(seconds), eventsPerSecond: Math.round(r.events / seconds) }
      log(`per-event reference: ${formatCount(r.events / seconds)} events/s`)
    }

    // 5. The ceilings: COPY of exactly the rows the read model ends with, in one transaction, into empty tables
    // with the same indexes (and the generated search column), and into tables without any index.
    {
      const client = await pool.connect()
      try {
        const tables = ['messages', 'message_edits', 'room_reads']
        const data: { table: string; columns: string; chunks: Buffer[] }[] = []
        let rows = 0
        for (const t of tables) {
          const { rows: cols } = await client.query<{ c: string }>(
            `select column_name as c from information_schema.columns
              where table_schema = 'tenant' and table_name = $1 and is_generated = 'NEVER' order by ordinal_position`,
            [t],
          )
          const columns = cols.map((c) => c.c).join(', ')
          data.push({ table: t, columns, chunks: await copyOut(client, `copy (select ${columns} from tenant.${t}) to stdout`) })
          rows += Number((await client.query<{ n: string }>(`select count(*) as n from tenant.${t}`)).rows[0]!.n)
        }
        const copyInto = async (schema: string, like: string) => {
          await client.query(`create schema ${schema}`)
          for (const t of tables) await client.query(`create table ${schema}.${t} (like tenant.${t} ${like})`)
          const started = performance.now()
          await client.query('begin')
          for (const d of data) await copyIn(client, `copy ${schema}.${d.table} (${d.columns}) from stdin`, d.chunks)
          await client.query('commit')
          const seconds = (performance.now() - started) / 1000
          await client.query(`drop schema ${schema} cascade`)
          return { rows, seconds: round(seconds), rowsPerSecond: Math.round(rows / seconds) }
        }
        const withIndexes = await copyInto('copy_indexed', 'including all')
        log(`raw COPY with indexes: ${formatCount(withIndexes.rowsPerSecond)} rows/s (${formatCount(rows)} rows)`)
        const withoutIndexes = await copyInto('copy_bare', 'including all excluding indexes')
        log(`raw COPY without indexes: ${formatCount(withoutIndexes.rowsPerSecond)} rows/s`)
        result.copy = { withIndexes, withoutIndexes }
      } finally {
        client.release()
      }
    }

    // 6. Emmett: the same events, its rebuild of a raw-SQL projection.
    if (EMMETT_EVENTS > 0) {
      const seconds = await emmettRun(dbUrl, EMMETT_EVENTS)
      const same =
        EMMETT_EVENTS === N
          ? Number(
              (
                await pool.query<{ n: string }>(`
              select count(*) as n from (
                (select tenant_id, id, room_id, seq, text, reply_count, reactions, deleted_at from tenant.messages
                 except select tenant_id, id, room_id, seq, text, reply_count, reactions, deleted_at from emmett.messages)
                union all
                (select tenant_id, id, room_id, seq, text, reply_count, reactions, deleted_at from emmett.messages
                 except select tenant_id, id, room_id, seq, text, reply_count, reactions, deleted_at from tenant.messages)) x`)
              ).rows[0]!.n,
            ) === 0
          : null
      result.emmett = {
        events: EMMETT_EVENTS,
        seconds: round(seconds),
        eventsPerSecond: Math.round(EMMETT_EVENTS / seconds),
        sameMessages: same,
      }
      log(`emmett: ${formatCount(EMMETT_EVENTS / seconds)} events/s`)
    }

    type Rate = { seconds: number; eventsPerSecond: number }
    type Copy = { seconds: number; rowsPerSecond: number }
    const ours = result.ours as Rate
    const copy = result.copy as { withIndexes: Copy; withoutIndexes: Copy }
    const batched = result.batchByBatch as Rate | undefined
    const emmett = result.emmett as Rate | undefined
    result.ratios = {
      /** Our events/s over COPY's rows/s: 1.0 rebuilds an event as fast as COPY writes a row of the result. */
      oursVsCopyWithIndexes: round(ours.eventsPerSecond / copy.withIndexes.rowsPerSecond),
      oursVsCopyWithoutIndexes: round(ours.eventsPerSecond / copy.withoutIndexes.rowsPerSecond),
      oursVsBatchByBatch: batched ? round(ours.eventsPerSecond / batched.eventsPerSecond) : null,
      oursVsEmmett: emmett ? round(ours.eventsPerSecond / emmett.eventsPerSecond) : null,
      /** How many times longer our rebuild takes than COPYing its result into indexed tables. */
      oursTimeVsCopyTime: round(ours.seconds / copy.withIndexes.seconds),
    }
    result.target = {
      eventsPerSecond: 50_000,
      vsCopyWithIndexes: 1,
      met: ours.eventsPerSecond >= 50_000 && ours.eventsPerSecond >= copy.withIndexes.rowsPerSecond,
    }
  } finally {
    await db.destroy()
    if (!process.env.BENCH_KEEP) await admin.query(`drop database if exists ${name} with (force)`)
    await admin.end()
  }
  process.stdout.write(`${JSON.stringify(result)}\n`)
}

const round = (x: number) => Math.round(x * 100) / 100

main().catch((e) => {
  process.stderr.write(`${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`)
  process.exit(1)
})
