import { describe } from 'vitest'
import { KurrentDbEventStore } from '../../adapters/kurrentdb-event-store.ts'
import { eventStoreContract } from './event-store.contract.ts'

const url = process.env.EVENTSTORE_URL

// The one sanctioned skip: no KurrentDB/EventStoreDB server can run in this sandbox or in CI here. As the README
// says, the suite runs wherever EVENTSTORE_URL points at a server (e.g. kurrentdb://localhost:2113?tls=false).
// Every test writes to fresh, randomly named streams, so it can run again and again against a long-lived server.
describe.skipIf(!url)('KurrentDB adapter (needs EVENTSTORE_URL)', () => {
  eventStoreContract('KurrentDB', async () => {
    const store = new KurrentDbEventStore(url!)
    return {
      store,
      async teardown() {
        await store.close()
      },
    }
  })
})
