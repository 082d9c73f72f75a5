import type { Kysely } from 'kysely'
import { createCheckpointTable, createRoles } from '../shared.ts'

export async function up(db: Kysely<unknown>): Promise<void> {
  await createRoles(db)
  await createCheckpointTable(db, 'tenant')
}
