import { sql } from 'kysely'
import type { Position } from './event-store.ts'
import { type Lease, stillHeld } from './leases.ts'
import type { AnyDb } from './postgres.ts'

/*
 * Processors' checkpoints (control.processor_checkpoints): one per processor version and partition, moved after the
 * effects of the events before it, and only by the holder of the partition's lease (fenced by its generation).
 */

export type CheckpointKey = { readonly name: string; readonly version: number; readonly partition: string }

export type CheckpointRow = CheckpointKey & { readonly position: Position; readonly updatedAt: Date }

/** The holder lost its lease (expired, or taken over by another): it must stop handling at once. */
export class LeaseLostError extends Error {
  override readonly name = 'LeaseLostError'
}

/** The checkpoint, created at `initial` when the partition has none yet. */
export async function loadProcessorCheckpoint(
  db: AnyDb,
  key: CheckpointKey,
  initial: () => Promise<Position>,
): Promise<Position> {
  const read = () =>
    sql<{ transaction_id: string; sequence: string }>`
      select commit_position::text as transaction_id, prepare_position::text as sequence from control.processor_checkpoints
       where name = ${key.name} and version = ${key.version} and partition = ${key.partition}`
      .execute(db)
      .then((r) => r.rows[0])
  let row = await read()
  if (!row) {
    const at = await initial()
    await sql`insert into control.processor_checkpoints (name, version, partition, commit_position, prepare_position)
              values (${key.name}, ${key.version}, ${key.partition}, ${at.transactionId.toString()}::xid8, ${at.sequence.toString()})
              on conflict do nothing`.execute(db)
    row = await read()
  }
  return { transactionId: BigInt(row!.transaction_id), sequence: BigInt(row!.sequence) }
}

/** Moves the checkpoint, if `lease` is still held; otherwise throws LeaseLostError and moves nothing. */
export async function saveProcessorCheckpoint(db: AnyDb, key: CheckpointKey, lease: Lease, to: Position): Promise<void> {
  const r = await sql`
    update control.processor_checkpoints
       set commit_position = ${to.transactionId.toString()}::xid8, prepare_position = ${to.sequence.toString()},
           updated_at = now()
     where name = ${key.name} and version = ${key.version} and partition = ${key.partition} and ${stillHeld(lease)}`.execute(db)
  if (r.numAffectedRows !== 1n)
    throw new LeaseLostError(`${key.name}[${key.partition}]: lease generation ${lease.generation} lost`)
}

/** Every partition's checkpoint of these processor versions. */
export async function listProcessorCheckpoints(
  db: AnyDb,
  processors: readonly { readonly name: string; readonly version: number }[],
): Promise<CheckpointRow[]> {
  if (processors.length === 0) return []
  const { rows } = await sql<{
    name: string
    version: number
    partition: string
    transaction_id: string
    sequence: string
    updated_at: Date
  }>`
    select name, version, partition, commit_position::text as transaction_id, prepare_position::text as sequence, updated_at
      from control.processor_checkpoints
     where (name, version) in (${sql.join(processors.map((p) => sql`(${p.name}, ${p.version})`))})
     order by name, version, partition`.execute(db)
  return rows.map((r) => ({
    name: r.name,
    version: r.version,
    partition: r.partition,
    position: { transactionId: BigInt(r.transaction_id), sequence: BigInt(r.sequence) },
    updatedAt: new Date(r.updated_at),
  }))
}
