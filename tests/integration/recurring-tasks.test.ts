import { type ChildProcess, spawn } from 'node:child_process'
import { once } from 'node:events'
import { setTimeout as sleep } from 'node:timers/promises'
import { sql } from 'kysely'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { RecordedEvent } from '../../adapters/event-store.ts'
import { runTaskIdOf, scheduleStream, TASK_SCHEDULE_FIRE } from '../../commands/task-schedules.ts'
import type { TaskScheduleEvent } from '../../domain/task-schedules.ts'
import { TIMER_RUNNER_LEASE } from '../../processors/timers.ts'
import { join, signUp } from '../support/identity.ts'
import { startTestServer, type TestServer } from '../support/server.ts'

/*
 * Recurring tasks across processes: the API (with the projectors, and no processors of its own) and processors
 * processes running the timer runner and the task-schedules processor on a clock 30 times faster than the wall's (a
 * schedule's minute is two real seconds). Two run at once, the one firing timers is SIGKILLed mid-run, and a third
 * starts in its place: each period still starts one run, and each run has exactly one instance task.
 */

const WARP = 30
const PERIOD_MS = 60_000

let server: TestServer
let alice: Awaited<ReturnType<typeof signUp>>
let bob: Awaited<ReturnType<typeof join>>
let roomId: string
let taskId: string
const warpFrom = Date.now()
const children: ChildProcess[] = []
const outputs: string[] = []

const child = async (name: string): Promise<ChildProcess> => {
  const proc = spawn(process.execPath, ['tests/support/schedule-child.ts'], {
    env: {
      ...process.env,
      DATABASE_URL: server.database.appUrl,
      WARP: String(WARP),
      WARP_FROM: String(warpFrom),
      HOLDER: name,
      CHILD_LOG_LEVEL: 'warn',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  children.push(proc)
  let out = ''
  const i = outputs.push('') - 1
  const take = (d: Buffer) => {
    out += d
    outputs[i] = out
  }
  proc.stdout!.on('data', take)
  proc.stderr!.on('data', take)
  const deadline = Date.now() + 20_000
  while (!out.includes('started')) {
    if (proc.exitCode !== null || Date.now() > deadline) throw new Error(`${name} did not start:\n${out}`)
    await sleep(50)
  }
  return proc
}

const kill = async (proc: ChildProcess, signal: NodeJS.Signals) => {
  if (proc.exitCode !== null || proc.signalCode !== null) return
  const exited = once(proc, 'exit')
  proc.kill(signal)
  await exited
}

const scheduleEvents = async (): Promise<TaskScheduleEvent[]> =>
  (await server.services.store.readStream(scheduleStream(taskId))).map(
    (e) => ({ type: e.type, data: e.data }) as TaskScheduleEvent,
  )

const runsStarted = async () => (await scheduleEvents()).flatMap((e) => (e.type === 'task_schedule.run_started' ? [e.data] : []))

/** The instance tasks created under the schedule's task: task.created events naming it as parent. */
const instances = async (): Promise<RecordedEvent[]> =>
  (await server.services.store.readTenant(alice.orgId, { types: ['task.created'] })).filter(
    (e) => (e.data as { parentId: string | null }).parentId === taskId,
  )

const until = async <T>(what: string, get: () => Promise<T>, ok: (v: T) => boolean, timeoutMs = 20_000): Promise<T> => {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const v = await get()
    if (ok(v)) return v
    if (Date.now() > deadline) console.log(outputs.join('\n----\n').slice(-20_000))
    if (Date.now() > deadline)
      throw new Error(`timed out waiting for ${what}: ${JSON.stringify(v, (_, x) => (typeof x === 'bigint' ? String(x) : x))}`)
    await sleep(100)
  }
}

beforeAll(async () => {
  // The API and the projectors only: the processors are the children's.
  server = await startTestServer({ ROLES: 'api,projector,realtime' })
  alice = await signUp(server, { email: 'alice@recurring.test', orgName: 'Recurring Inc', username: 'alice' })
  bob = await join(server, alice.token, { email: 'bob@recurring.test', role: 'member', username: 'bob' })
  const room = await server.request('POST', '/api/rooms', { token: alice.token, body: { name: 'Ops', visibility: 'private' } })
  roomId = room.body.roomId
  await server.request('POST', `/api/rooms/${roomId}/members`, { token: alice.token, body: { userId: bob.userId } })
  const task = await server.request('POST', '/api/tasks', {
    token: alice.token,
    body: { title: 'Check the backups', roomId, assignee: { userId: bob.userId } },
  })
  expect(task.status, JSON.stringify(task.body)).toBe(201)
  taskId = task.body.taskId
}, 60_000)

afterAll(async () => {
  for (const c of children) await kill(c, 'SIGKILL')
  await server?.close()
})

describe('a recurring task across two processors processes and a restart', () => {
  it('starts exactly one instance per period', async () => {
    const set = await server.request('PUT', `/api/tasks/${taskId}/schedule`, {
      token: alice.token,
      body: { every: { minutes: 1 }, perRunUsdLimit: 2.5, instructions: 'Restore last night’s backup into staging' },
    })
    expect(set.status, JSON.stringify(set.body)).toBe(200)
    const first = await child('first')
    await child('second')
    // Created paused: nothing runs until it is resumed.
    await sleep(2 * (PERIOD_MS / WARP))
    expect(await runsStarted()).toEqual([])

    const resumed = await server.request('POST', `/api/tasks/${taskId}/schedule/resume`, { token: alice.token })
    expect(resumed.status, JSON.stringify(resumed.body)).toBe(200)
    await until('three runs', runsStarted, (runs) => runs.length >= 3)

    // The process firing timers dies mid-run; a new one starts in its place.
    const { rows } = await sql<{ holder: string }>`
      select holder from control.processor_leases where name = ${TIMER_RUNNER_LEASE}`.execute(server.services.controlDb)
    const firing = rows[0]?.holder === 'second' ? children[1]! : first
    await kill(firing, 'SIGKILL')
    await child('third')
    const before = (await runsStarted()).length
    await until('three more runs', runsStarted, (runs) => runs.length >= before + 3)

    // The parent task's stream is busy with the children's instances: a client retries a 503 (as it says to).
    const manual = await until(
      'run now',
      () =>
        server.request('POST', `/api/tasks/${taskId}/schedule/run-now`, {
          token: bob.token,
          headers: { 'idempotency-key': 'run-now-1' },
        }),
      (r) => r.status !== 503,
    )
    expect(manual.status, JSON.stringify(manual.body)).toBe(201)

    const paused = await server.request('POST', `/api/tasks/${taskId}/schedule/pause`, { token: alice.token })
    expect(paused.status).toBe(200)
    const runs = await runsStarted()
    // Paused: no period starts a run any more.
    await sleep(2 * (PERIOD_MS / WARP))
    expect(await runsStarted()).toHaveLength(runs.length)

    const scheduled = runs.filter((r) => r.trigger === 'schedule')
    const periods = scheduled.map((r) => Date.parse(r.period!))
    expect(new Set(periods).size, 'no period ran twice').toBe(periods.length)
    for (let i = 1; i < periods.length; i++) {
      expect(periods[i]! > periods[i - 1]!, 'periods run in order').toBe(true)
      expect((periods[i]! - periods[0]!) % PERIOD_MS, 'on the cadence').toBe(0)
    }
    expect(scheduled.every((r) => r.runTaskId === runTaskIdOf(taskId, r.period!))).toBe(true)
    expect(scheduled.every((r) => r.by === alice.userId && r.perRunUsdLimit === 2.5)).toBe(true)
    expect(runs.filter((r) => r.trigger === 'manual')).toEqual([
      expect.objectContaining({ runTaskId: manual.body.runTaskId, by: bob.userId }),
    ])

    // Exactly one instance per run: the instance of each period, made once, whoever fired it and however often.
    const made = await until('an instance for every run', instances, (xs) => xs.length >= runs.length)
    const ids = made.map((e) => (e.data as { taskId: string }).taskId)
    expect(new Set(ids).size, 'no instance twice').toBe(ids.length)
    expect(new Set(ids)).toEqual(new Set(runs.map((r) => r.runTaskId)))
    const one = made.find((e) => (e.data as { taskId: string }).taskId === scheduled[0]!.runTaskId)!.data as Record<
      string,
      unknown
    >
    expect(one).toMatchObject({
      parentId: taskId,
      roomId,
      reporterId: alice.userId,
      assignee: { id: bob.userId, type: 'user' },
      description: 'Restore last night’s backup into staging',
    })
    expect(String(one.title)).toMatch(/^Check the backups — \d{4}-\d{2}-\d{2} \d{2}:\d{2} UTC$/)

    // Each instance is held to the per-run limit: a cap on it.
    const limits = await server.request('GET', `/api/limits?consistentAfter=${paused.body.position}`, { token: alice.token })
    const capped = new Map(
      (limits.body.items as { scope: string; scopeId: string; limitUsd: number }[])
        .filter((l) => l.scope === 'task')
        .map((l) => [l.scopeId, l.limitUsd]),
    )
    for (const r of scheduled) expect(capped.get(r.runTaskId), r.runTaskId).toBe(2.5)

    // Each schedule timer fired at most once, and only those the schedule waited for started a run.
    const fired = (await server.services.store.readTenant(alice.orgId, { types: ['timer.fired'] })).filter(
      (e) => (e.data as { command: { type: string; data: { taskId: string } } }).command.type === TASK_SCHEDULE_FIRE,
    )
    const timerIds = fired.map((e) => (e.data as { timerId: string }).timerId)
    expect(new Set(timerIds).size).toBe(timerIds.length)
    expect(fired.length).toBe(scheduled.length)

    // The read model says where it stands.
    const last = await until(
      'the read model',
      () => server.request('GET', `/api/tasks/${taskId}/schedule?consistentAfter=${paused.body.position}`, { token: bob.token }),
      (r) => r.status === 200,
    )
    expect(last.body).toMatchObject({ status: 'paused', nextRunAt: null, every: { minutes: 1 }, perRunUsdLimit: 2.5 })
    expect(last.body.runs).toBeGreaterThanOrEqual(runs.length)
  }, 90_000)
})
