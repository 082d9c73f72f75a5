import { type Expression, type SqlBool, sql } from 'kysely'
import type { DomainEvent } from '../domain/decider.ts'
import type { ProjectionTransaction, Projector, Recorded } from './engine.ts'

/*
 * Read models whose rows each follow from the events about them, as pure evolves (Emmett's single-stream
 * projections): `evolve(row | null, event) → row | null`, null meaning no row. The SQL is here, once: a batch loads
 * the rows its events are about (one select per table), folds each row's events over it in order, and writes back
 * what changed (one upsert, one delete). The evolves are tested without a database (tests/unit/projections-*).
 */

/** A row's columns as the evolve sees them: timestamps as ISO strings, the tenant's column left to the applier. */
export type Row = Readonly<Record<string, string | number | boolean | null>>

type Column<R extends Row> = keyof R & string

/** The common case: rows told apart by one column, each event about one row or none (orgs, spaces, rooms, users). */
export type RowModel<E extends DomainEvent, R extends Row> = {
  /** The table, unqualified. In the tenant schema its primary key is (tenant_id, key), else key. */
  readonly table: string
  /** Its columns but `tenant_id`: what is loaded, folded and written. */
  readonly columns: readonly Column<R>[]
  /** The column that tells rows apart (within a tenant). */
  readonly key: Column<R>
  /** The row an event is about: the value of `key` in it; null when it is about no row of this table. */
  keyOf(event: E): string | null
  /** What the row becomes with the event; the same object when the event changes nothing. */
  evolve(row: R | null, event: E): R | null
}

/**
 * The general case, of which a RowModel is the short form: a key of several columns (a room's member: room and
 * member), an event about several rows (a room's creation adds each of its members), an event that names its row by
 * other columns than its key (a membership, keyed by account, changes by user id), a tenant column of another name.
 */
export type TableModel<E extends DomainEvent, R extends Row> = {
  readonly table: string
  /** Its columns but the tenant's: what is loaded, folded and written. */
  readonly columns: readonly Column<R>[]
  /** The columns that tell rows apart within a tenant: the table's primary key but the tenant's column. */
  readonly key: readonly Column<R>[]
  /** The column holding the batch's tenant, left to the applier. By default tenant_id in the tenant schema, none in control. */
  readonly tenantColumn?: string
  /**
   * The rows an event is about, each named by the values of its key, or of other columns that single it out: the row
   * with those values as the batch has left it so far, else as the table holds it (none: null).
   */
  refsOf(event: E): readonly Partial<R>[]
  /** What the row named by `ref` becomes with the event; the same object when the event changes nothing. It keeps its key. */
  evolve(row: R | null, event: E, ref: Partial<R>): R | null
}

/** Either form of a table's read model. */
export type AnyRowModel<E extends DomainEvent, R extends Row = Row> = RowModel<E, R> | TableModel<E, R>

/** A RowModel as the TableModel it is short for. */
export const tableModel = <E extends DomainEvent, R extends Row>(model: AnyRowModel<E, R>): TableModel<E, R> => {
  if (Array.isArray(model.key)) return model as TableModel<E, R>
  const m = model as RowModel<E, R>
  return {
    table: m.table,
    columns: m.columns,
    key: [m.key],
    refsOf: (e) => {
      const key = m.keyOf(e)
      return key === null ? [] : [{ [m.key]: key } as Partial<R>]
    },
    evolve: (row, e) => m.evolve(row, e),
  }
}

/** Values as one string: a one-column key is its value (what tests and maps of a RowModel read), several a JSON list. */
const encode = (values: readonly unknown[]): string => (values.length === 1 ? String(values[0]) : JSON.stringify(values))

/** A row's key, as the maps of a fold hold it. */
export const rowKey = <R extends Row>(model: Pick<TableModel<DomainEvent, R>, 'key'>, row: R): string =>
  encode(model.key.map((c) => row[c]))

/** The columns a ref names its row by, sorted: an index of the fold. */
const byColumns = (ref: object): string[] => Object.keys(ref).sort()

const isKey = (key: readonly string[], columns: readonly string[]): boolean =>
  columns.length === key.length && [...key].sort().every((c, i) => c === columns[i])

/**
 * Folds events over rows in memory: the rows as they were (by rowKey; absent: none), and each touched row as it ends
 * up (null: deleted). An event's row named by other columns than the key is found through an index of those columns,
 * kept up to date as rows change.
 */
export function foldTable<E extends DomainEvent, R extends Row>(
  model: TableModel<E, R>,
  rows: ReadonlyMap<string, R>,
  events: readonly E[],
): Map<string, R | null> {
  const after = new Map<string, R | null>()
  const current = (key: string): R | null => (after.has(key) ? after.get(key)! : (rows.get(key) ?? null))
  const indexes = new Map<string, { columns: string[]; keys: Map<string, string> }>()
  const indexOf = (columns: string[]) => {
    const name = encode(columns)
    let index = indexes.get(name)
    if (!index) {
      index = { columns, keys: new Map() }
      for (const [key, row] of rows) if (!after.has(key)) index.keys.set(encode(columns.map((c) => row[c])), key)
      for (const [key, row] of after) if (row) index.keys.set(encode(columns.map((c) => row[c])), key)
      indexes.set(name, index)
    }
    return index
  }

  for (const e of events) {
    for (const ref of model.refsOf(e)) {
      const columns = byColumns(ref)
      const key = isKey(model.key, columns)
        ? encode(model.key.map((c) => ref[c]))
        : (indexOf(columns).keys.get(encode(columns.map((c) => ref[c]))) ?? null)
      const row = key === null ? null : current(key)
      const next = model.evolve(row, e, ref)
      if (key === null && next === null) continue
      const nextKey = next ? rowKey(model, next) : key!
      if (key !== null && nextKey !== key) throw new Error(`${model.table}: an evolve changed the key of row ${key}`)
      for (const index of indexes.values()) {
        if (row) {
          const was = encode(index.columns.map((c) => row[c]))
          if (index.keys.get(was) === nextKey) index.keys.delete(was)
        }
        if (next) index.keys.set(encode(index.columns.map((c) => next[c])), nextKey)
      }
      after.set(nextKey, next)
    }
  }
  return after
}

/** Folds events over the rows of a RowModel (by their key's value). */
export const foldRows = <E extends DomainEvent, R extends Row>(
  model: RowModel<E, R>,
  rows: ReadonlyMap<string, R>,
  events: readonly E[],
): Map<string, R | null> => foldTable(tableModel(model), rows, events)

/** What a fold changed: rows to write (new or changed), keys of rows to delete. */
export function rowChanges<R extends Row>(
  before: ReadonlyMap<string, R>,
  after: ReadonlyMap<string, R | null>,
): { upserts: R[]; deletes: string[] } {
  const upserts: R[] = []
  const deletes: string[] = []
  for (const [key, row] of after) {
    const was = before.get(key) ?? null
    if (row === was) continue
    if (row === null) deletes.push(key)
    else upserts.push(row)
  }
  return { upserts, deletes }
}

/**
 * A table in memory: the rows it holds after the events (by key), and what the applier would write. What applyRows does,
 * without the database (the unit tests' given/when/then).
 */
export function evolveTable<E extends DomainEvent, R extends Row>(
  model: AnyRowModel<E, R>,
  rows: readonly R[],
  events: readonly E[],
): { rows: R[]; upserts: R[]; deletes: string[] } {
  const table = tableModel(model)
  const before = new Map(rows.map((r) => [rowKey(table, r), r]))
  const after = foldTable(table, before, events)
  const merged = new Map<string, R | null>([...before, ...after])
  return {
    rows: [...merged.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).flatMap(([, r]) => (r === null ? [] : [r])),
    ...rowChanges(before, after),
  }
}

/** Rows per statement: keeps a statement's parameters far below Postgres's 65,535 whatever the batch size. */
const CHUNK = 1_000

const chunks = <T>(xs: readonly T[]): T[][] => {
  const out: T[][] = []
  for (let i = 0; i < xs.length; i += CHUNK) out.push(xs.slice(i, i + CHUNK))
  return out
}

/** A value as the evolve sees it: node-postgres reads timestamps as Dates, the events carry ISO strings. */
const plain = (v: unknown): unknown => (v instanceof Date ? v.toISOString() : v)

/** `columns in (values…)`: the column's `in` for one column, a row comparison for several. */
const matching = (columns: readonly string[], values: readonly (readonly unknown[])[]): Expression<SqlBool> =>
  columns.length === 1
    ? sql<SqlBool>`${sql.ref(columns[0]!)} in (${sql.join(values.map((v) => v[0]))})`
    : sql<SqlBool>`(${sql.join(columns.map((c) => sql.ref(c)))}) in (${sql.join(values.map((v) => sql`(${sql.join(v)})`))})`

/**
 * Applies one tenant's batch to a table's read model: loads the rows its events are about, folds, and writes back
 * what changed. A table with a tenant column has every statement scoped to the batch's tenant.
 */
export async function applyRows<E extends DomainEvent, R extends Row>(
  trx: ProjectionTransaction,
  rowModel: AnyRowModel<E, R>,
  schema: Projector['schema'],
  events: readonly Recorded<E>[],
): Promise<void> {
  if (events.length === 0) return
  const model = tableModel(rowModel)
  // The envelope's type and data are the domain event: evolve sees what a decider's evolve sees.
  const domainEvents = events as unknown as readonly E[]
  const tenantColumn = model.tenantColumn ?? (schema === 'tenant' ? 'tenant_id' : null)
  const tenantId = tenantColumn ? events[0]!.metadata.tenantId : null
  if (tenantColumn && !tenantId) throw new Error(`${model.table}: an event without a tenant`)
  // The table's columns as SQL names: the row type checks the evolve, not the statements.
  const key: readonly string[] = model.key
  const columns: readonly string[] = model.columns

  // What the batch names its rows by (the key, or other columns), and the values it names them with.
  const wanted = new Map<string, { columns: string[]; values: Map<string, unknown[]> }>()
  for (const e of domainEvents) {
    for (const ref of model.refsOf(e)) {
      const by = isKey(key, byColumns(ref)) ? [...key] : byColumns(ref)
      const name = encode(by)
      if (!wanted.has(name)) wanted.set(name, { columns: by, values: new Map() })
      const values = by.map((c) => ref[c])
      wanted.get(name)!.values.set(encode(values), values)
    }
  }
  if (wanted.size === 0) return

  const before = new Map<string, R>()
  for (const { columns: by, values } of wanted.values()) {
    for (const some of chunks([...values.values()])) {
      let q = trx
        .selectFrom(model.table)
        .select([...columns])
        .where(matching(by, some))
      if (tenantColumn) q = q.where(tenantColumn, '=', tenantId)
      for (const r of await q.execute()) {
        const row = Object.fromEntries(columns.map((c) => [c, plain(r[c])])) as R
        before.set(rowKey(model, row), row)
      }
    }
  }

  const { upserts, deletes } = rowChanges(before, foldTable(model, before, domainEvents))

  const deleted = deletes.map((k) => key.map((c) => before.get(k)![c]))
  for (const some of chunks(deleted)) {
    let q = trx.deleteFrom(model.table).where(matching(key, some))
    if (tenantColumn) q = q.where(tenantColumn, '=', tenantId)
    await q.execute()
  }
  const conflict = tenantColumn ? [tenantColumn, ...key] : [...key]
  const updated = columns.filter((c) => !key.includes(c))
  for (const some of chunks(upserts)) {
    await trx
      .insertInto(model.table)
      .values(some.map((row) => (tenantColumn ? { [tenantColumn]: tenantId, ...row } : { ...row })))
      .onConflict((oc) =>
        oc.columns(conflict).doUpdateSet((eb) => Object.fromEntries(updated.map((c) => [c, eb.ref(`excluded.${c}`)]))),
      )
      .execute()
  }
}

/**
 * A projector of row models, one a table (rooms: rooms and room_members): its tables in the models' order, its event
 * types, and applyRows of each model as its apply.
 */
// biome-ignore lint/suspicious/noExplicitAny: a projector's models each have their own row type
type SomeRowModel<E extends DomainEvent> = AnyRowModel<E, any>

export function rowProjector<E extends DomainEvent>(
  definition: {
    readonly name: string
    readonly version: number
    readonly schema: Projector['schema']
    readonly eventTypes: readonly E['type'][]
  } & ({ readonly model: SomeRowModel<E> } | { readonly models: readonly SomeRowModel<E>[] }),
): Projector<E> {
  const { name, version, schema, eventTypes } = definition
  const models = 'models' in definition ? definition.models : [definition.model]
  return {
    name,
    version,
    schema,
    eventTypes,
    tables: models.map((m) => m.table),
    async apply(trx, events) {
      for (const model of models) await applyRows(trx, model, schema, events)
    },
  }
}
