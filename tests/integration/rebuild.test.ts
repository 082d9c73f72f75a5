import { type ChildProcess, spawn } from 'node:child_process'
import { once } from 'node:events'
import { sql } from 'kysely'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { comparePositions } from '../../adapters/event-store.ts'
import { createLogger } from '../../adapters/logger.ts'
import { type AnyDb, createKysely, createPool, type PgPool } from '../../adapters/postgres.ts'
import { PostgresEventStore } from '../../adapters/postgres-event-store.ts'
import { type SeedSummary, seedWorkload } from '../../bin/seed-workload.ts'
import { upcasters } from '../../domain/upcasting.ts'
import { ProjectionEngine, type Projector } from '../../projections/engine.ts'
import { messagesProjector } from '../../projections/messages.ts'
import { rebuild, rebuildableProjectors, shadowSchemaOf, verify } from '../../projections/rebuild.ts'
import { createTestDatabase, type TestDatabase } from '../support/db.ts'

let database: TestDatabase
let pool: PgPool
let db: AnyDb
let store: PostgresEventStore
let seeded: SeedSummary
const projectors = rebuildableProjectors()
const deps = () => ({ store, db, pool })

/** Runs every projector until all have passed the head as it stands now. */
async function projectToHead(): Promise<void> {
  const engine = new ProjectionEngine({ store, db, logger: createLogger('silent') }, projectors, { batchSize: 300 })
  const head = await store.headPosition()
  engine.start()
  try {
    while (
      projectors.some((p) => {
        const s = engine.statuses().find((x) => x.name === p.name)
        return !s || comparePositions(s.checkpoint, head) < 0
      })
    ) {
      await new Promise((r) => setTimeout(r, 20))
    }
  } finally {
    await engine.stop()
  }
}

const tool = (args: string[]): ChildProcess =>
  spawn(process.execPath, ['bin/rebuild.ts', ...args], {
    env: { ...process.env, DATABASE_URL: database.url, LOG_LEVEL: 'silent' },
    stdio: ['ignore', 'pipe', 'pipe'],
  })

async function runTool(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const child = tool(args)
  let stdout = ''
  let stderr = ''
  child.stdout!.on('data', (d) => (stdout += d))
  child.stderr!.on('data', (d) => (stderr += d))
  const [code] = await once(child, 'exit')
  return { code: code as number, stdout, stderr }
}

beforeAll(async () => {
  database = await createTestDatabase()
  pool = createPool(database.url, { max: 12 })
  db = createKysely(pool)
  store = new PostgresEventStore(pool)
  seeded = await seedWorkload({ store, db, upcasters: upcasters({}) }, { orgs: 2, messages: 1_500, seed: 7 })
  await projectToHead()
}, 120_000)

afterAll(async () => {
  await store.close()
  await db.destroy()
  await database.drop()
})

describe('rebuild', () => {
  it('a fresh database verifies identical; the seed exercises every event type the projectors read', async () => {
    for (const p of projectors) {
      const result = await verify(deps(), p)
      expect(result.differences, p.name).toEqual([])
    }
    const read = new Set(projectors.flatMap((p) => [...p.eventTypes]))
    const written = new Set(Object.keys(seeded.events))
    expect([...read].filter((t) => !written.has(t))).toEqual([])
  })

  it('swaps the rebuilt tables in while readers read and the live projector keeps projecting new events', async () => {
    const tenant = seeded.orgs[0]!.orgId
    const count = async () =>
      db.transaction().execute(async (trx) => {
        await sql`select set_config('role', 'ws_reader', true), set_config('app.tenant_id', ${tenant}, true)`.execute(trx)
        const { rows } = await sql<{
          n: number
        }>`select count(*)::int as n from tenant.messages where tenant_id = ${tenant}`.execute(trx)
        return rows[0]!.n
      })
    const before = await count()
    expect(before).toBeGreaterThan(0)

    const engine = new ProjectionEngine({ store, db, logger: createLogger('silent') }, projectors, {
      batchSize: 100,
      retryMs: 50,
    })
    engine.start()
    let reading = true
    const seen: number[] = []
    const errors: unknown[] = []
    const readers = Array.from({ length: 3 }, async () => {
      while (reading) {
        try {
          seen.push(await count())
        } catch (e) {
          errors.push(e)
        }
      }
    })
    // More history arrives during the rebuild: the live projector applies it before and after the swap.
    const writing = seedWorkload({ store, db, upcasters: upcasters({}) }, { orgs: 1, messages: 300, seed: 8 })
    const result = await rebuild(deps(), messagesProjector, { batchSize: 200 })
    await writing
    reading = false
    await Promise.all(readers)
    expect(errors).toEqual([])
    expect(seen.length).toBeGreaterThan(10)
    expect(Math.min(...seen)).toBeGreaterThanOrEqual(before)
    expect(result.events).toBeGreaterThan(0)

    // The live projector went on from the moved checkpoint: at the head, live equals a clean build.
    const head = await store.headPosition()
    while (!engine.reached(['messages', 'rooms'], head)) await new Promise((r) => setTimeout(r, 20))
    await engine.stop()
    for (const p of projectors) expect((await verify(deps(), p)).differences, p.name).toEqual([])
    // Nothing left behind: no shadow, no retired tables.
    const { rows } = await sql<{ nspname: string }>`
      select nspname from pg_namespace where nspname like 'rebuild_%' or nspname like 'retired_%'`.execute(db)
    expect(rows).toEqual([])
    // The swapped-in table kept what the migration gave the live one: names, row-level security, grants.
    const { rows: shape } = await sql<{ rls: boolean; force: boolean; indexes: string[]; acl: string }>`
      select c.relrowsecurity as rls, c.relforcerowsecurity as force, c.relacl::text as acl,
             array(select i.relname::text from pg_index x join pg_class i on i.oid = x.indexrelid where x.indrelid = c.oid order by 1) as indexes
        from pg_class c where c.oid = 'tenant.messages'::regclass`.execute(db)
    expect(shape[0]).toMatchObject({
      rls: true,
      force: true,
      indexes: ['messages_pkey', 'messages_search', 'messages_task', 'messages_thread', 'messages_timeline'],
    })
    expect(shape[0]!.acl).toContain('ws_reader=r/')
    expect(shape[0]!.acl).toContain('ws_projector=arwd/')
  }, 120_000)

  it('verify finds a tampered row, a missing one and an extra one, and the command exits non-zero', async () => {
    const tenant = seeded.orgs[0]!.orgId
    await sql`update tenant.messages set text = 'tampered' where tenant_id = ${tenant}
               and id = (select id from tenant.messages where tenant_id = ${tenant} and deleted_at is null order by seq limit 1)`.execute(
      db,
    )
    await sql`delete from tenant.room_members where ctid = (select ctid from tenant.room_members limit 1)`.execute(db)
    await sql`insert into control.orgs values (gen_random_uuid(), 'Ghost', 'ghost-org', 'active', now(), now())`.execute(db)

    const { code, stdout } = await runTool(['--verify', '--quiet'])
    expect(code).toBe(1)
    expect(stdout).toMatch(/verify messages v1 .*: 1 difference/)
    expect(stdout).toMatch(/text: live "tampered" {2}rebuilt "/)
    expect(stdout).toMatch(/room_members .*only in the rebuild/)
    expect(stdout).toMatch(/orgs .*only in the live table/)
    expect(stdout).toMatch(/verify spaces v1 .*: identical/)

    // A rebuild repairs what it rebuilds.
    expect((await runTool(['messages', 'rooms', 'orgs', '--quiet'])).code).toBe(0)
    const again = await runTool(['--verify', '--quiet'])
    expect(again.stdout).not.toMatch(/difference/)
    expect(again.code).toBe(0)
  }, 120_000)

  it('a rebuild killed mid-build resumes from its shadow checkpoint and ends as a clean build', async () => {
    const p: Projector = messagesProjector
    const shadow = shadowSchemaOf(p)
    const progress = async (): Promise<number> => {
      const { rows } = await sql<{ n: string | null }>`
        select max(prepare_position)::text as n from ${sql.table(`${shadow}.projection_checkpoints`)}`
        .execute(db)
        .catch(() => ({ rows: [{ n: null }] }))
      return Number(rows[0]?.n ?? 0)
    }
    const head = Number((await store.headPosition()).sequence)
    const child = tool(['messages', '--batch-size', '25', '--quiet'])
    const deadline = Date.now() + 30_000
    while ((await progress()) < head / 4 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10))
    child.kill('SIGKILL')
    await once(child, 'exit')
    const reached = await progress()
    expect(reached).toBeGreaterThan(0)
    expect(reached).toBeLessThan(head)

    const resumed = await runTool(['messages', '--batch-size', '500', '--quiet'])
    expect(resumed.code).toBe(0)
    expect(resumed.stdout).toMatch(/rebuild messages v1: .* resumed from/)
    expect((await verify(deps(), p)).differences).toEqual([])
    const { rows } = await sql<{ n: number }>`select count(*)::int as n from pg_namespace where nspname = ${shadow}`.execute(db)
    expect(rows[0]!.n).toBe(0)
  }, 120_000)
})
