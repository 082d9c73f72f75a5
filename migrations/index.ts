import type { Kysely } from 'kysely'
import { type MigrationSet, migrate } from '../adapters/postgres.ts'
import * as eventstore from './eventstore/index.ts'

/** Every logical database, in the order they migrate. */
export const migrationSets: readonly MigrationSet[] = [eventstore]

export async function migrateAll(db: Kysely<unknown>): Promise<string[]> {
  const applied: string[] = []
  for (const set of migrationSets) applied.push(...(await migrate(db, set)))
  return applied
}
