// A projector process for the crash test: runs until it has caught up, or until it is killed.
import { comparePositions } from '../../adapters/event-store.ts'
import { createLogger } from '../../adapters/logger.ts'
import { createKysely, createPool } from '../../adapters/postgres.ts'
import { PostgresEventStore } from '../../adapters/postgres-event-store.ts'
import { ProjectionEngine } from '../../projections/engine.ts'
import { crashProjector } from './crash-projector.ts'

const pool = createPool(process.env.DATABASE_URL!, { applicationName: 'crash-child', max: 4 })
const db = createKysely(pool)
const store = new PostgresEventStore(pool)
const engine = new ProjectionEngine({ store, db, logger: createLogger('silent') }, [crashProjector('crash', 'crash_a', 1)], {
  batchSize: 200,
})
const head = await store.headPosition()
engine.start()
const timer = setInterval(async () => {
  const status = engine.statuses()[0]
  if (status && comparePositions(status.checkpoint, head) >= 0) {
    clearInterval(timer)
    await engine.stop()
    await store.close()
    await db.destroy()
    process.stdout.write('caught-up\n')
    process.exit(0)
  }
}, 20)
