import type { RecordedEvent } from '../adapters/event-store.ts'
import type { Processor } from './processor.ts'

/** One unit a lease is held for: a whole processor, or one tenant partition of it. */
export type ProcessorPartition = {
  readonly processor: Processor
  /** '*' for the whole processor; 'k/n' for the k-th of n tenant partitions. */
  readonly partition: string
  /** Whether this partition handles the event (its type, and for a tenant partition its tenant). */
  readonly accepts: (event: RecordedEvent) => boolean
}

/** FNV-1a: a stable hash, so a tenant lands in the same partition in every process and release. */
const fnv1a = (s: string): number => {
  let h = 0x811c9dc5
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i)
    h = Math.imul(h, 0x01000193)
  }
  return h >>> 0
}

/** The tenant partition (0..n-1) an event goes to; events of no tenant all go to the same one. */
export const tenantPartitionOf = (tenantId: string | null, n: number): number => fnv1a(tenantId ?? '') % n

/**
 * A processor's partitions. The number of tenant partitions fixes where each tenant's checkpoint is: changing it
 * starts the new partitions from their own (absent) checkpoints, so it is a deliberate step (README).
 */
export function partitionsOf(p: Processor, tenantPartitions: number): ProcessorPartition[] {
  const types = new Set<string>(p.eventTypes)
  if (p.partitionBy === 'none') return [{ processor: p, partition: '*', accepts: (e) => types.has(e.type) }]
  return Array.from({ length: tenantPartitions }, (_, k) => ({
    processor: p,
    partition: `${k}/${tenantPartitions}`,
    accepts: (e: RecordedEvent) => types.has(e.type) && tenantPartitionOf(e.metadata.tenantId, tenantPartitions) === k,
  }))
}
