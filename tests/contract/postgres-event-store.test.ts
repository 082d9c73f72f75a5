import { createPool } from '../../adapters/postgres.ts'
import { PostgresEventStore } from '../../adapters/postgres-event-store.ts'
import { createTestDatabase } from '../support/db.ts'
import { eventStoreContract } from './event-store.contract.ts'

eventStoreContract('Postgres', async () => {
  const database = await createTestDatabase()
  const pool = createPool(database.url, { max: 20 })
  const store = new PostgresEventStore(pool)
  return {
    store,
    async teardown() {
      await store.close()
      await pool.end()
      await database.drop()
    },
  }
})
