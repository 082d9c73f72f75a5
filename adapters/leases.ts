import { sql } from 'kysely'
import type { AnyDb } from './postgres.ts'

/*
 * Leases in control.processor_leases: one holder per key (a processor, or one tenant partition of it) at a time.
 * Expiry is judged by the database's clock only, so holders on machines whose clocks disagree never both believe
 * they hold a key. Each take-over raises the key's generation: a holder's writes name the generation they hold
 * (the checkpoint's update is fenced by it), so a holder that lost its lease without knowing cannot move anything.
 */

export type LeaseKey = { readonly name: string; readonly partition: string }

/** A lease held: its generation fences the holder's writes. */
export type Lease = LeaseKey & { readonly holder: string; readonly generation: bigint }

export type LeaseRow = LeaseKey & { readonly holder: string | null; readonly generation: bigint; readonly expiresAt: Date }

/**
 * Takes the key when nobody holds it or its holder let it expire (a new generation), or renews it when this
 * holder already holds it; null when another holder's lease is still live.
 */
export async function acquireLease(db: AnyDb, key: LeaseKey, holder: string, ttlMs: number): Promise<Lease | null> {
  const { rows } = await sql<{ generation: string }>`
    insert into control.processor_leases as l (name, partition, holder, generation, expires_at)
    values (${key.name}, ${key.partition}, ${holder}, 1, clock_timestamp() + make_interval(secs => ${ttlMs / 1000}))
    on conflict (name, partition) do update
       set holder = excluded.holder, expires_at = excluded.expires_at,
           generation = case when l.holder = excluded.holder and l.expires_at > clock_timestamp()
                             then l.generation else l.generation + 1 end
     where l.holder is null or l.expires_at <= clock_timestamp() or l.holder = excluded.holder
    returning generation::text`.execute(db)
  return rows[0] ? { ...key, holder, generation: BigInt(rows[0].generation) } : null
}

/** Extends a lease still held (same holder and generation, not expired); false when it was lost. */
export async function renewLease(db: AnyDb, lease: Lease, ttlMs: number): Promise<boolean> {
  const r = await sql`
    update control.processor_leases set expires_at = clock_timestamp() + make_interval(secs => ${ttlMs / 1000})
     where name = ${lease.name} and partition = ${lease.partition} and holder = ${lease.holder}
       and generation = ${lease.generation.toString()} and expires_at > clock_timestamp()`.execute(db)
  return r.numAffectedRows === 1n
}

/** Gives a lease up at once (a drain), so another process takes the key without waiting for it to expire. */
export async function releaseLease(db: AnyDb, lease: Lease): Promise<void> {
  await sql`
    update control.processor_leases set holder = null, expires_at = clock_timestamp()
     where name = ${lease.name} and partition = ${lease.partition} and holder = ${lease.holder}
       and generation = ${lease.generation.toString()}`.execute(db)
}

/** The SQL condition that `lease` is still held now: what fences a holder's writes. */
export const stillHeld = (lease: Lease) => sql`exists (
  select from control.processor_leases
   where name = ${lease.name} and partition = ${lease.partition} and holder = ${lease.holder}
     and generation = ${lease.generation.toString()} and expires_at > clock_timestamp())`

/** Every lease of these names, live or not (an operator's view). */
export async function listLeases(db: AnyDb, names: readonly string[]): Promise<LeaseRow[]> {
  if (names.length === 0) return []
  const { rows } = await sql<{ name: string; partition: string; holder: string | null; generation: string; expires_at: Date }>`
    select name, partition, case when expires_at > clock_timestamp() then holder end as holder, generation::text, expires_at
      from control.processor_leases where name = any(${names}::text[]) order by name, partition`.execute(db)
  return rows.map((r) => ({
    name: r.name,
    partition: r.partition,
    holder: r.holder,
    generation: BigInt(r.generation),
    expiresAt: new Date(r.expires_at),
  }))
}

/** How many holders hold a live lease of `name` now (the processes that announce themselves under it). */
export async function countLiveHolders(db: AnyDb, name: string): Promise<number> {
  const { rows } = await sql<{ n: number }>`
    select count(distinct holder)::int as n from control.processor_leases
     where name = ${name} and holder is not null and expires_at > clock_timestamp()`.execute(db)
  return rows[0]?.n ?? 0
}
