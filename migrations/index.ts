import type { Kysely } from 'kysely'
import { type MigrationSet, migrate } from '../adapters/postgres.ts'
import * as control from './control/index.ts'
import * as eventstore from './eventstore/index.ts'
import * as realtime from './realtime/index.ts'
import * as tenant from './tenant/index.ts'

/**
 * The logical databases (ARCHITECTURE.md, "Tenancy in Postgres"): each may be a database of its own, and nothing
 * joins across them. The realtime schema is the tenant database's: the fan-out writes its outbox in the
 * transaction that moves its checkpoint over tenant tables.
 */
export type LogicalDatabase = 'eventstore' | 'control' | 'tenant'

/** In the order they migrate when one database holds them all. */
export const logicalDatabases: readonly LogicalDatabase[] = ['eventstore', 'control', 'tenant']

export const migrationSetsOf: Readonly<Record<LogicalDatabase, readonly MigrationSet[]>> = {
  eventstore: [eventstore],
  control: [control],
  tenant: [tenant, realtime],
}

/** Every set, in migration order. */
export const migrationSets: readonly MigrationSet[] = logicalDatabases.flatMap((d) => migrationSetsOf[d])

export const schemasOf = (database: LogicalDatabase): string[] => migrationSetsOf[database].map((s) => s.schema)

/** Migrates every logical database into one database (the embedded start, tests, benchmarks). */
export async function migrateAll(db: Kysely<unknown>): Promise<string[]> {
  const applied: string[] = []
  for (const set of migrationSets) applied.push(...(await migrate(db, set)))
  return applied
}
