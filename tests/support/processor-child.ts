// A processors process for the runtime tests: runs the effect-recording probe until it has handled every event up to
// the head, or, with CRASH_AT=n, until it has performed the effect of event n, when it says so on stdout and hangs
// (before its checkpoint moves) for the test to SIGKILL it. With HOLD=1 it runs until killed.
import { sql } from 'kysely'
import { createLogger } from '../../adapters/logger.ts'
import { createKysely, createPool } from '../../adapters/postgres.ts'
import { PostgresEventStore } from '../../adapters/postgres-event-store.ts'
import { startProcessors } from '../../processors/runtime.ts'
import { effectProbe } from './processor-probe.ts'

const pool = createPool(process.env.DATABASE_URL!, { applicationName: 'processor-child', max: 4 })
const store = new PostgresEventStore(pool)
const controlPool = createPool(process.env.CONTROL_DATABASE_URL ?? process.env.DATABASE_URL!, { max: 4 })
const controlDb = createKysely(controlPool)
const crashAt = process.env.CRASH_AT ? Number(process.env.CRASH_AT) : null
const total = Number(process.env.TOTAL ?? '0')
const holder = process.env.HOLDER ?? `child-${process.pid}`

const probe = effectProbe({
  name: process.env.PROCESSOR ?? 'effects',
  run: process.env.RUN!,
  partitionBy: process.env.PARTITION_BY === 'tenant' ? 'tenant' : 'none',
  holder,
  db: controlDb,
  async afterEffect(n) {
    if (n === crashAt) {
      process.stdout.write(`effected ${n}\n`)
      await new Promise(() => {}) // killed here: the effect is done, the checkpoint not moved
    }
  },
})
const runtime = startProcessors({
  store,
  controlDb,
  logger: createLogger('silent'),
  processors: [probe],
  options: { holder, leaseTtlMs: Number(process.env.LEASE_TTL_MS ?? 1_500), renewMs: 250, tenantPartitions: 4, batchSize: 7 },
})
process.stdout.write('started\n')
if (process.env.HOLD !== '1') {
  const timer = setInterval(async () => {
    const { rows } = await sql<{ n: number }>`select count(*)::int as n from public.processor_effects`.execute(controlDb)
    if (rows[0]!.n >= total) {
      clearInterval(timer)
      await runtime.stop()
      await store.close()
      await controlDb.destroy()
      process.stdout.write('done\n')
      process.exit(0)
    }
  }, 50)
}
