import { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import type pg from 'pg'
import { from as copyFrom } from 'pg-copy-streams'
import type { RecordedEvent } from '../../adapters/event-store.ts'
import { quoteIdent } from './shadow.ts'

/*
 * A projector's bulk build: what a rebuild uses instead of the projector's batches when the shadow starts empty.
 * The projector folds the events into rows it holds in memory (the same fold as its live batches), and hands over
 * what changed since the last hand-over as row sets; the build writes them with COPY, without the secondary
 * indexes (built once at the end), in one transaction with the shadow's checkpoint. Whatever the projector's live
 * batches would have written, the bulk build writes row for row: tests/integration/rebuild-bulk.test.ts.
 */

export type BulkOp =
  /** New rows. */
  | { readonly kind: 'insert'; readonly table: string; readonly columns: readonly string[]; readonly rows: unknown[][] }
  /** Rows found by `key` (the first columns of `columns`) whose other columns change. */
  | {
      readonly kind: 'update'
      readonly table: string
      readonly key: readonly string[]
      readonly columns: readonly string[]
      readonly rows: unknown[][]
    }
  /** Rows that go, by `columns` (not necessarily the whole primary key: every row matching goes). */
  | { readonly kind: 'delete'; readonly table: string; readonly columns: readonly string[]; readonly rows: unknown[][] }
  /** Inserted, or updated where a row with the same `key` (a unique constraint) is there. */
  | {
      readonly kind: 'upsert'
      readonly table: string
      readonly key: readonly string[]
      readonly columns: readonly string[]
      readonly rows: unknown[][]
    }

export type BulkBuild = {
  /** Folds events (of the projector's types, of any tenants, in order) into the rows held; throws on an event it cannot apply. */
  apply(events: readonly RecordedEvent[]): void
  /** What changed since the last call, in the order to write it. */
  take(): BulkOp[]
  /** Rows held in memory: past a limit the build goes on batch by batch. */
  readonly size: number
}

/** A projector that can build its tables in bulk: a fresh build per rebuild. */
export type BulkBuildable = { readonly bulk?: () => BulkBuild }

/** A value in COPY's text format. */
function field(v: unknown): string {
  if (v === null || v === undefined) return '\\N'
  const s = typeof v === 'string' ? v : typeof v === 'object' ? JSON.stringify(v) : String(v)
  return /[\\\t\n\r]/.test(s) ? s.replace(/[\\\t\n\r]/g, (c) => ESCAPES[c]!) : s
}
const ESCAPES: Record<string, string> = { '\\': '\\\\', '\t': '\\t', '\n': '\\n', '\r': '\\r' }

/** Rows as COPY text, in chunks of about 1 MB. */
function* lines(rows: readonly unknown[][]): Generator<string> {
  let chunk = ''
  for (const row of rows) {
    chunk += `${row.map(field).join('\t')}\n`
    if (chunk.length > 1 << 20) {
      yield chunk
      chunk = ''
    }
  }
  if (chunk) yield chunk
}

const list = (columns: readonly string[], alias = '') => columns.map((c) => `${alias}${quoteIdent(c)}`).join(', ')

async function copyInto(client: pg.PoolClient, table: string, columns: readonly string[], rows: readonly unknown[][]) {
  await pipeline(Readable.from(lines(rows)), client.query(copyFrom(`copy ${table} (${list(columns)}) from stdin`)))
}

/**
 * Writes a hand-over into `schema`, on `client`, inside the caller's transaction: inserts by COPY, the rest by
 * COPY into a temporary table and one statement from it.
 */
export async function writeBulk(client: pg.PoolClient, schema: string, ops: readonly BulkOp[]): Promise<void> {
  for (const [n, op] of ops.entries()) {
    if (op.rows.length === 0) continue
    const table = `${quoteIdent(schema)}.${quoteIdent(op.table)}`
    if (op.kind === 'insert') {
      await copyInto(client, table, op.columns, op.rows)
      continue
    }
    const staged = quoteIdent(`rebuild_bulk_${n}`)
    await client.query(`create temp table ${staged} on commit drop as select ${list(op.columns)} from ${table} with no data`)
    await copyInto(client, staged, op.columns, op.rows)
    // Statistics, so that a few staged rows are looked up by key rather than joined with a scan of the whole table.
    await client.query(`analyze ${staged}`)
    if (op.kind === 'update') {
      const set = op.columns.filter((c) => !op.key.includes(c)).map((c) => `${quoteIdent(c)} = x.${quoteIdent(c)}`)
      const on = op.key.map((c) => `t.${quoteIdent(c)} = x.${quoteIdent(c)}`).join(' and ')
      await client.query(`update ${table} t set ${set.join(', ')} from ${staged} x where ${on}`)
    } else if (op.kind === 'delete') {
      const on = op.columns.map((c) => `t.${quoteIdent(c)} = x.${quoteIdent(c)}`).join(' and ')
      await client.query(`delete from ${table} t using ${staged} x where ${on}`)
    } else {
      const set = op.columns.filter((c) => !op.key.includes(c)).map((c) => `${quoteIdent(c)} = excluded.${quoteIdent(c)}`)
      await client.query(
        `insert into ${table} (${list(op.columns)}) select ${list(op.columns)} from ${staged}
         on conflict (${list(op.key)}) do update set ${set.join(', ')}`,
      )
    }
  }
}
