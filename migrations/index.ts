import type { Kysely } from 'kysely'
import { type MigrationSet, migrate } from '../adapters/postgres.ts'
import * as control from './control/index.ts'
import * as eventstore from './eventstore/index.ts'
import * as realtime from './realtime/index.ts'
import * as tenant from './tenant/index.ts'

/** Every logical database, in the order they migrate. */
export const migrationSets: readonly MigrationSet[] = [eventstore, control, tenant, realtime]

export async function migrateAll(db: Kysely<unknown>): Promise<string[]> {
  const applied: string[] = []
  for (const set of migrationSets) applied.push(...(await migrate(db, set)))
  return applied
}
