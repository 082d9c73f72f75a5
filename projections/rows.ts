import type { DomainEvent } from '../domain/decider.ts'
import type { ProjectionTransaction, Projector, Recorded } from './engine.ts'

/*
 * A read model of one table whose rows each follow from the events about them, as a pure evolve (Emmett's
 * single-stream projections): `evolve(row | null, event) → row | null`, null meaning no row. The SQL is here, once:
 * a batch loads the rows its events are about (one select), folds each row's events over it in order, and writes
 * back what changed (one upsert, one delete). The evolve is tested without a database (tests/unit/projections-*).
 */

/** A row's columns as the evolve sees them: timestamps as ISO strings, `tenant_id` left to the applier. */
export type Row = Readonly<Record<string, string | number | boolean | null>>

export type RowModel<E extends DomainEvent, R extends Row> = {
  /** The table, unqualified. In the tenant schema its primary key is (tenant_id, key), else key. */
  readonly table: string
  /** Its columns but `tenant_id`: what is loaded, folded and written. */
  readonly columns: readonly (keyof R & string)[]
  /** The column that tells rows apart (within a tenant). */
  readonly key: keyof R & string
  /** The row an event is about: the value of `key` in it. */
  keyOf(event: E): string
  /** What the row becomes with the event; the same object when the event changes nothing. */
  evolve(row: R | null, event: E): R | null
}

/** Folds events over rows in memory: the rows as they were (absent: none), and each touched row as it ends up. */
export function foldRows<E extends DomainEvent, R extends Row>(
  model: Pick<RowModel<E, R>, 'keyOf' | 'evolve'>,
  rows: ReadonlyMap<string, R>,
  events: readonly E[],
): Map<string, R | null> {
  const after = new Map<string, R | null>()
  for (const e of events) {
    const key = model.keyOf(e)
    const row = after.has(key) ? after.get(key)! : (rows.get(key) ?? null)
    after.set(key, model.evolve(row, e))
  }
  return after
}

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

/** Rows per statement: keeps a statement's parameters far below Postgres's 65,535 whatever the batch size. */
const CHUNK = 1_000

const chunks = <T>(xs: readonly T[]): T[][] => {
  const out: T[][] = []
  for (let i = 0; i < xs.length; i += CHUNK) out.push(xs.slice(i, i + CHUNK))
  return out
}

/** A value as the evolve sees it: node-postgres reads timestamps as Dates, the events carry ISO strings. */
const plain = (v: unknown): unknown => (v instanceof Date ? v.toISOString() : v)

/**
 * Applies one tenant's batch to a row model: loads the rows its events are about, folds, and writes back what
 * changed. In the tenant schema every statement is scoped to the batch's tenant.
 */
export async function applyRows<E extends DomainEvent, R extends Row>(
  trx: ProjectionTransaction,
  model: RowModel<E, R>,
  schema: Projector['schema'],
  events: readonly Recorded<E>[],
): Promise<void> {
  if (events.length === 0) return
  const tenantId = schema === 'tenant' ? events[0]!.metadata.tenantId : null
  if (schema === 'tenant' && !tenantId) throw new Error(`${model.table}: an event without a tenant`)
  const keys = [...new Set(events.map((e) => model.keyOf(e as unknown as E)))]
  // The table's columns as SQL names: the row type checks the evolve, not the statements.
  const key: string = model.key
  const columns: readonly string[] = model.columns

  const before = new Map<string, R>()
  for (const some of chunks(keys)) {
    let q = trx
      .selectFrom(model.table)
      .select([...columns])
      .where(key, 'in', some)
    if (tenantId) q = q.where('tenant_id', '=', tenantId)
    for (const r of await q.execute()) {
      const row = Object.fromEntries(columns.map((c) => [c, plain(r[c])])) as R
      before.set(String(row[key]), row)
    }
  }

  // The envelope's type and data are the domain event: evolve sees what a decider's evolve sees.
  const { upserts, deletes } = rowChanges(before, foldRows(model, before, events as unknown as readonly E[]))

  for (const some of chunks(deletes)) {
    let q = trx.deleteFrom(model.table).where(key, 'in', some)
    if (tenantId) q = q.where('tenant_id', '=', tenantId)
    await q.execute()
  }
  const conflict = tenantId ? ['tenant_id', key] : [key]
  const updated = columns.filter((c) => c !== key)
  for (const some of chunks(upserts)) {
    await trx
      .insertInto(model.table)
      .values(some.map((row) => (tenantId ? { tenant_id: tenantId, ...row } : { ...row })))
      .onConflict((oc) =>
        oc.columns(conflict).doUpdateSet((eb) => Object.fromEntries(updated.map((c) => [c, eb.ref(`excluded.${c}`)]))),
      )
      .execute()
  }
}

/** A projector of one row model: its table, its event types, and applyRows as its apply. */
export function rowProjector<E extends DomainEvent, R extends Row>(definition: {
  readonly name: string
  readonly version: number
  readonly schema: Projector['schema']
  readonly eventTypes: readonly E['type'][]
  readonly model: RowModel<E, R>
}): Projector<E> {
  const { model, ...rest } = definition
  return { ...rest, tables: [model.table], apply: (trx, events) => applyRows(trx, model, definition.schema, events) }
}
