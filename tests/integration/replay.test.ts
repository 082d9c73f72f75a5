import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { RecordedEvent } from '../../adapters/event-store.ts'
import { type AnyDb, createKysely, createPool, type PgPool } from '../../adapters/postgres.ts'
import { PostgresEventStore } from '../../adapters/postgres-event-store.ts'
import { type SeedSummary, seedWorkload } from '../../bin/seed-workload.ts'
import { upcasters } from '../../domain/upcasting.ts'
import { createTestDatabase, type TestDatabase } from '../support/db.ts'

let database: TestDatabase
let pool: PgPool
let db: AnyDb
let store: PostgresEventStore
let seeded: SeedSummary
let all: RecordedEvent[]

beforeAll(async () => {
  database = await createTestDatabase()
  pool = createPool(database.url)
  db = createKysely(pool)
  store = new PostgresEventStore(pool)
  seeded = await seedWorkload({ store, db, upcasters: upcasters({}) }, { orgs: 2, messages: 150, seed: 3 })
  // Every event of this database, once visible (other files' transactions on the cluster may hold readers back).
  const last = (await pool.query<{ n: string }>('select count(*) as n from eventstore.events')).rows[0]!.n
  while (true) {
    all = []
    for (
      let page = await store.readAll({ maxCount: 10_000 });
      page.length;
      page = await store.readAll({ from: page.at(-1)!.position, maxCount: 10_000 })
    )
      all.push(...page)
    if (all.length >= Number(last)) break
    await new Promise((r) => setTimeout(r, 20))
  }
}, 60_000)

afterAll(async () => {
  await store.close()
  await db.destroy()
  await database.drop()
})

async function replay(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, ['bin/replay.ts', ...args], {
    env: { ...process.env, DATABASE_URL: database.url, LOG_LEVEL: 'silent' },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let stdout = ''
  let stderr = ''
  child.stdout!.on('data', (d) => (stdout += d))
  child.stderr!.on('data', (d) => (stderr += d))
  const [code] = await once(child, 'exit')
  return { code: code as number, stdout, stderr }
}

const jsonl = (out: string) =>
  out
    .trim()
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as { position: number; stream: string; type: string; metadata: RecordedEvent['metadata'] })

describe('npm run replay', () => {
  it("a tenant's history over a time range and some types, in order, as JSONL", async () => {
    const tenant = seeded.orgs[0]!.orgId
    const from = all[Math.floor(all.length / 4)]!.metadata.occurredAt
    const to = all[Math.floor((3 * all.length) / 4)]!.metadata.occurredAt
    const expected = all.filter(
      (e) =>
        e.metadata.tenantId === tenant &&
        (e.type.startsWith('message.') || e.type === 'room.read_marked') &&
        e.metadata.occurredAt >= from &&
        e.metadata.occurredAt <= to,
    )
    expect(expected.length).toBeGreaterThan(5)
    const r = await replay([
      '--tenant',
      tenant,
      '--types',
      'message.*,room.read_marked',
      '--from',
      from,
      '--to',
      to,
      '--format',
      'jsonl',
    ])
    expect(r.code).toBe(0)
    const got = jsonl(r.stdout)
    // Through the tenant index, in position order (concurrent transactions may have committed in another order).
    expect(got.map((e) => e.position)).toEqual(expected.map((e) => Number(e.position.sequence)).sort((a, b) => a - b))
    expect(r.stderr).toContain('tenant index')
  })

  it("an actor's events as a table with correlation and causation, and a stream's", async () => {
    const actor = all.find((e) => e.type === 'message.reaction_changed')!.metadata.actor
    const expected = all.filter((e) => e.metadata.actor.id === actor.id)
    const r = await replay(['--actor', `${actor.type}:${actor.id}`, '--quiet'])
    expect(r.code).toBe(0)
    const lines = r.stdout.trim().split('\n')
    expect(lines[0]).toMatch(/^position\s+time\s+stream\s+type\s+actor\s+correlation\s+causation$/)
    expect(lines).toHaveLength(expected.length + 1)
    expect(lines[1]).toContain(expected[0]!.metadata.correlationId)

    const stream = all.find((e) => e.type === 'message.range_deleted')!.streamName
    const s = await replay(['--stream', stream, '--format', 'jsonl', '--quiet'])
    expect(jsonl(s.stdout).map((e) => e.stream)).toEqual(all.filter((e) => e.streamName === stream).map(() => stream))
  })

  it('--as-of folds a stream with its decider up to that moment', async () => {
    const room = all.find((e) => e.type === 'room.member_removed')!
    const before = new Date(Date.parse(room.metadata.occurredAt) - 1).toISOString()
    const removed = (room.data as { memberId: string }).memberId
    const then = await replay(['--as-of', before, '--stream', room.streamName])
    expect(then.code).toBe(0)
    const stateThen = JSON.parse(then.stdout.slice(then.stdout.indexOf('\n') + 1))
    expect(Object.keys(stateThen.members)).toContain(removed)
    const now = await replay(['--as-of', '2100-01-01', '--stream', room.streamName])
    expect(Object.keys(JSON.parse(now.stdout.slice(now.stdout.indexOf('\n') + 1)).members)).not.toContain(removed)
    expect(now.stdout).toMatch(/event\(s\) folded, revision \d+/)
  })

  it('bad arguments exit 2 with the usage', async () => {
    for (const args of [['--from', 'yesterday'], ['--as-of', '2025-01-01', '--stream', 'nope-1'], ['--bogus']]) {
      const r = await replay(args)
      expect(r.code, args.join(' ')).toBe(2)
      expect(r.stderr).toContain('usage: npm run replay')
    }
  })
})
