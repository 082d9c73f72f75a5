import type { Config } from './config.ts'
import { KurrentDbEventStore } from './kurrentdb-event-store.ts'
import type { PgPool } from './postgres.ts'
import { PostgresEventStore } from './postgres-event-store.ts'

export type EventStoreConfig = Pick<Config, 'EVENT_STORE'> & { readonly EVENTSTORE_URL?: string | undefined }

/**
 * The configured event store adapter. Postgres keeps the events in the pool's database; KurrentDB keeps them on
 * the server at EVENTSTORE_URL (the pool still serves read models and checkpoints). Callers that get a
 * PostgresEventStore run its `assertHistoryOrdered()` before serving.
 */
export function createEventStore(config: EventStoreConfig, pool: PgPool): PostgresEventStore | KurrentDbEventStore {
  switch (config.EVENT_STORE) {
    case 'postgres':
      return new PostgresEventStore(pool)
    case 'kurrentdb':
      if (!config.EVENTSTORE_URL) throw new Error('EVENTSTORE_URL: required when EVENT_STORE=kurrentdb')
      return new KurrentDbEventStore(config.EVENTSTORE_URL)
  }
}
