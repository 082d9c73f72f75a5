import { v7 as uuid } from 'uuid'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createKysely, createPool } from '../../adapters/postgres.ts'
import { scheduleStream } from '../../commands/task-schedules.ts'
import { timerStream } from '../../commands/timers.ts'
import { verify } from '../../projections/rebuild.ts'
import { taskSchedulesProjector } from '../../projections/task-schedules.ts'
import { join, signUp } from '../support/identity.ts'
import { startTestServer, type TestServer } from '../support/server.ts'

/*
 * Recurring tasks over HTTP: the schedule's routes and rules, and its timers as the server's own processors keep them
 * (scheduled on resume, cancelled on pause). Firing across processes is tests/integration/recurring-tasks.test.ts.
 */

let server: TestServer
let alice: Awaited<ReturnType<typeof signUp>>
let bob: Awaited<ReturnType<typeof join>>
let carol: Awaited<ReturnType<typeof join>>
let gus: Awaited<ReturnType<typeof join>>
let roomId: string
let taskId: string

const call = (method: string, token: string, path: string, body?: unknown) =>
  server.request(method, path, { token, ...(body === undefined ? {} : { body }) })
const schedule = (token: string, position: number) =>
  call('GET', token, `/api/tasks/${taskId}/schedule?consistentAfter=${position}`)

/** The timer a schedule waits for, once the server's processor has scheduled (or cancelled) it. */
const timerOf = async (timerId: string, status: 'timer.scheduled' | 'timer.cancelled') => {
  const deadline = Date.now() + 15_000
  for (;;) {
    const events = await server.services.store.readStream(timerStream(timerId))
    if (events.at(-1)?.type === status) return events
    if (Date.now() > deadline) throw new Error(`timer ${timerId}: ${events.map((e) => e.type).join(', ') || 'nothing'}`)
    await new Promise((r) => setTimeout(r, 50))
  }
}
const pendingTimer = async () => {
  const events = await server.services.store.readStream(scheduleStream(taskId))
  const last = events.filter((e) => e.type === 'task_schedule.run_scheduled').at(-1)
  return last?.data as { timerId: string; dueAt: string } | undefined
}

beforeAll(async () => {
  server = await startTestServer()
  alice = await signUp(server, { email: 'alice@schedules.test', orgName: 'Schedules Inc', username: 'alice' })
  bob = await join(server, alice.token, { email: 'bob@schedules.test', role: 'member', username: 'bob' })
  carol = await join(server, alice.token, { email: 'carol@schedules.test', role: 'member', username: 'carol' })
  gus = await join(server, alice.token, { email: 'gus@schedules.test', role: 'guest', username: 'gus' })
  const room = await call('POST', alice.token, '/api/rooms', { name: 'Ops', visibility: 'private' })
  roomId = room.body.roomId
  await call('POST', alice.token, `/api/rooms/${roomId}/members`, { userId: bob.userId })
  await call('POST', alice.token, `/api/rooms/${roomId}/members`, { userId: gus.userId })
  taskId = (await call('POST', alice.token, '/api/tasks', { title: 'Weekly report', roomId, assignee: { userId: bob.userId } }))
    .body.taskId
}, 60_000)

afterAll(async () => {
  await server?.close()
})

describe('a recurring task’s schedule', () => {
  it('is created paused; resuming schedules the next period’s timer, pausing cancels it', async () => {
    const set = await call('PUT', bob.token, `/api/tasks/${taskId}/schedule`, {
      dailyAtUtc: '07:30',
      perRunUsdLimit: 1.25,
      instructions: 'Summarise the week',
    })
    expect(set.status, JSON.stringify(set.body)).toBe(200)
    const paused = await schedule(alice.token, set.body.position)
    expect(paused.body).toMatchObject({
      taskId,
      every: null,
      dailyAtUtc: '07:30',
      perRunUsdLimit: 1.25,
      instructions: 'Summarise the week',
      status: 'paused',
      nextRunAt: null,
      runs: 0,
    })
    const resumed = await call('POST', alice.token, `/api/tasks/${taskId}/schedule/resume`)
    expect(resumed.status).toBe(200)
    const active = await schedule(bob.token, resumed.body.position)
    expect(active.body.status).toBe('active')
    expect(active.body.nextRunAt).toMatch(/T07:30:00\.000Z$/)
    expect(Date.parse(active.body.nextRunAt) - Date.now()).toBeLessThanOrEqual(24 * 3_600_000)
    const pending = (await pendingTimer())!
    expect(pending.dueAt).toBe(active.body.nextRunAt)
    const timer = await timerOf(pending.timerId, 'timer.scheduled')
    expect(timer[0]!.data).toMatchObject({ dueAt: pending.dueAt, command: { type: 'task-schedule.fire', data: { taskId } } })
    // Resuming again changes nothing.
    const again = await call('POST', alice.token, `/api/tasks/${taskId}/schedule/resume`)
    expect(again.body.position).toBe(resumed.body.position)

    // A new cadence on a running schedule replaces its timer.
    const changed = await call('PUT', alice.token, `/api/tasks/${taskId}/schedule`, {
      every: { hours: 2 },
      instructions: 'Summarise',
    })
    expect(changed.status).toBe(200)
    const replaced = (await pendingTimer())!
    expect(replaced.timerId).not.toBe(pending.timerId)
    await timerOf(pending.timerId, 'timer.cancelled')
    await timerOf(replaced.timerId, 'timer.scheduled')
    expect((await schedule(alice.token, changed.body.position)).body).toMatchObject({
      every: { minutes: 120 },
      perRunUsdLimit: null,
    })

    const stopped = await call('POST', bob.token, `/api/tasks/${taskId}/schedule/pause`)
    expect(stopped.status).toBe(200)
    await timerOf(replaced.timerId, 'timer.cancelled')
    expect((await schedule(alice.token, stopped.body.position)).body).toMatchObject({ status: 'paused', nextRunAt: null })
  })

  it('run now creates an instance at once: a child titled after the task and the time, with the instructions', async () => {
    const run = await call('POST', bob.token, `/api/tasks/${taskId}/schedule/run-now`)
    expect(run.status, JSON.stringify(run.body)).toBe(201)
    const instance = await call('GET', bob.token, `/api/tasks/${run.body.runTaskId}?consistentAfter=${run.body.position}`)
    expect(instance.status).toBe(200)
    expect(instance.body).toMatchObject({ id: run.body.runTaskId, parentId: taskId, roomId, description: 'Summarise' })
    expect(instance.body.title).toMatch(/^Weekly report — \d{4}-\d{2}-\d{2} \d{2}:\d{2} UTC$/)
    const after = await schedule(alice.token, run.body.position)
    expect(after.body).toMatchObject({ runs: 1, lastRunTaskId: run.body.runTaskId, status: 'paused' })
    // A per-run limit holds each instance to it: a cap on the instance task.
    await call('PUT', alice.token, `/api/tasks/${taskId}/schedule`, {
      every: { hours: 2 },
      instructions: 'Summarise',
      perRunUsdLimit: 0.75,
    })
    const limited = await call('POST', bob.token, `/api/tasks/${taskId}/schedule/run-now`)
    expect(limited.status, JSON.stringify(limited.body)).toBe(201)
    const limits = await call('GET', alice.token, `/api/limits?consistentAfter=${limited.body.position}`)
    expect(limits.body.items).toContainEqual(
      expect.objectContaining({ scope: 'task', scopeId: limited.body.runTaskId, limitUsd: 0.75 }),
    )
    // Retried under the same Idempotency-Key: one run, one instance.
    const key = { 'idempotency-key': `run-${uuid()}` }
    const first = await server.request('POST', `/api/tasks/${taskId}/schedule/run-now`, { token: bob.token, headers: key })
    const retried = await server.request('POST', `/api/tasks/${taskId}/schedule/run-now`, { token: bob.token, headers: key })
    expect(retried.body).toEqual(first.body)
    expect((await schedule(alice.token, retried.body.position)).body.runs).toBe(3)
  })

  it('is held by a top-level task, changed by who may change the task, seen by who may read it', async () => {
    const run = await call('POST', alice.token, `/api/tasks/${taskId}/schedule/run-now`)
    const sub = await call('PUT', alice.token, `/api/tasks/${run.body.runTaskId}/schedule`, { every: { minutes: 5 } })
    expect(sub.status).toBe(422)
    expect(sub.body.code).toBe('SCHEDULE_NOT_TOP_LEVEL')
    // Carol is not in the private room: the task is not there for her.
    expect((await call('PUT', carol.token, `/api/tasks/${taskId}/schedule`, { every: { minutes: 5 } })).status).toBe(404)
    expect((await call('POST', carol.token, `/api/tasks/${taskId}/schedule/resume`)).status).toBe(404)
    expect((await call('POST', carol.token, `/api/tasks/${taskId}/schedule/run-now`)).status).toBe(404)
    expect((await call('GET', carol.token, `/api/tasks/${taskId}/schedule`)).status).toBe(404)
    // A guest in the room reads the schedule but neither sets it going, stops it nor starts a run: it spends the org's money.
    expect((await call('GET', gus.token, `/api/tasks/${taskId}/schedule`)).status).toBe(200)
    for (const [method, path, body] of [
      ['PUT', `/api/tasks/${taskId}/schedule`, { every: { minutes: 5 } }],
      ['POST', `/api/tasks/${taskId}/schedule/resume`],
      ['POST', `/api/tasks/${taskId}/schedule/pause`],
      ['POST', `/api/tasks/${taskId}/schedule/run-now`],
    ] as const) {
      const r = await call(method, gus.token, path, body)
      expect(r.status, path).toBe(403)
    }
    // A task without a schedule has nothing to pause, resume or run.
    const plain = await call('POST', alice.token, '/api/tasks', { title: 'One-off', roomId })
    for (const action of ['pause', 'resume', 'run-now']) {
      const r = await call('POST', alice.token, `/api/tasks/${plain.body.taskId}/schedule/${action}`)
      expect(r.status, action).toBe(404)
      expect(r.body.code).toBe('SCHEDULE_NOT_FOUND')
    }
    expect(
      (await call('GET', alice.token, `/api/tasks/${plain.body.taskId}/schedule?consistentAfter=${plain.body.position}`)).status,
    ).toBe(404)
    expect((await call('POST', alice.token, `/api/tasks/${uuid()}/schedule/resume`)).status).toBe(404)
  })

  it('refuses bad input with the field named', async () => {
    const bad = [
      {},
      { every: { minutes: 5 }, dailyAtUtc: '07:00' },
      { every: {} },
      { every: { minutes: 5, hours: 1 } },
      { every: { minutes: 0 } },
      { dailyAtUtc: '25:00' },
      { every: { minutes: 5 }, perRunUsdLimit: -1 },
      { every: { minutes: 5 }, instructions: 'x'.repeat(20_001) },
    ]
    for (const body of bad) {
      const r = await call('PUT', alice.token, `/api/tasks/${taskId}/schedule`, body)
      expect(r.status, JSON.stringify(body)).toBe(400)
      expect(r.body.errors.length, JSON.stringify(body)).toBeGreaterThan(0)
    }
  })
})

describe('rebuilds', () => {
  it('the schedules, rebuilt from the events, equal the live ones', async () => {
    const owner = createKysely(createPool(server.database.url))
    try {
      const r = await verify({ store: server.services.store, db: owner }, taskSchedulesProjector)
      expect(r.differences).toEqual([])
      expect(r.rows.task_schedules).toBeGreaterThan(0)
    } finally {
      await owner.destroy()
    }
  })
})
