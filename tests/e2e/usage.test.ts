import { v7 as uuid } from 'uuid'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { publicPosition } from '../../adapters/event-store.ts'
import { type AnyDb, createKysely, createPool } from '../../adapters/postgres.ts'
import { budgetStream, monthOf } from '../../domain/usage.ts'
import { verify } from '../../projections/rebuild.ts'
import { usageProjector } from '../../projections/usage.ts'
import { join, signUp } from '../support/identity.ts'
import { operatorToken } from '../support/operator.ts'
import { eventCount, startTestServer, type TestServer } from '../support/server.ts'

const SERVICE_TOKEN = 'usage-service-token-0123456789abcdef0123'

let server: TestServer
/** The database's owner login, for the rebuild's diff. */
let owner: AnyDb
let alice: Awaited<ReturnType<typeof signUp>>
let bob: Awaited<ReturnType<typeof join>>
let mallory: Awaited<ReturnType<typeof signUp>>
let ops: string
let taskId: string
/** Where mallory's last record stands: read her usage after it. */
let malloryAt = 0
const agentId = uuid()
const vmId = uuid()

const PRICES = {
  models: { 'gpt-x': { inputPerMTokUsd: 2, cachedInputPerMTokUsd: 1, outputPerMTokUsd: 8 } },
  vmMinuteUsd: { small: 0.002 },
  diskGbMonthUsd: 0.1,
  storageGbMonthUsd: 0.02,
}

beforeAll(async () => {
  server = await startTestServer({ SERVICE_TOKEN })
  owner = createKysely(createPool(server.database.url))
  alice = await signUp(server, { email: 'alice@usage.test', orgName: 'Usage Inc', username: 'alice' })
  bob = await join(server, alice.token, { email: 'bob@usage.test', role: 'member', username: 'bob' })
  mallory = await signUp(server, { email: 'mallory@usage.test', orgName: 'Usage Evil', username: 'mallory' })
  ops = await operatorToken(server)
  const priced = await server.request('PUT', '/control/prices', { token: ops, body: PRICES })
  expect(priced.status, JSON.stringify(priced.body)).toBe(200)
  const created = await server.request('POST', '/api/tasks', { token: alice.token, body: { title: 'Spend on this' } })
  expect(created.status, JSON.stringify(created.body)).toBe(201)
  taskId = created.body.taskId
}, 90_000)
afterAll(async () => {
  await owner?.destroy()
  await server?.close()
})

const record = (body: Record<string, unknown>, token = SERVICE_TOKEN) =>
  server.request('POST', '/api/internal/usage/records', { token, body: { tenantId: alice.orgId, recordId: uuid(), ...body } })
const llm = (inputTokens: number, outputTokens: number, cachedInputTokens = 0) => ({
  kind: 'llm',
  model: 'gpt-x',
  inputTokens,
  cachedInputTokens,
  outputTokens,
})

describe('recording usage (service credentials)', () => {
  it('prices what happened at the operators’ table and answers the cost', async () => {
    // 1M input at 2 USD, 0.5M cached at 1 USD, 0.1M output at 8 USD
    const r = await record({ agentId, roomId: alice.homeRoomId, usage: llm(1_000_000, 100_000, 500_000) })
    expect(r.status, JSON.stringify(r.body)).toBe(201)
    expect(r.body).toMatchObject({ costUsd: 3.3, billedUsd: 3.3, priced: true })
    const v = await record({ taskId, usage: { kind: 'vm', vmId, size: 'small', minutes: 90 } })
    expect(v.body).toMatchObject({ costUsd: 0.18, priced: true })
    const d = await record({ usage: { kind: 'vm_disk', vmId, bytes: 1_000_000_000, minutes: 43_200 } })
    expect(d.body).toMatchObject({ costUsd: 0.1 })
  })

  it('the same record id counts once', async () => {
    const recordId = uuid()
    const before = await eventCount(server)
    const first = await record({ recordId, usage: llm(10_000, 0) })
    const again = await record({ recordId, usage: llm(10_000, 0) })
    expect([first.status, again.status]).toEqual([201, 201])
    expect(again.body.position).toBe(first.body.position)
    expect(await eventCount(server)).toBe(before + 1)
  })

  it('an org on its own LLM key is metered but not billed for its LLM calls', async () => {
    const policy = await server.request('PUT', `/control/orgs/${mallory.orgId}/llm-policy`, {
      token: ops,
      body: { allowedModels: ['gpt-x'], keySource: 'org', monthlyTokenBudget: null },
    })
    expect(policy.status, JSON.stringify(policy.body)).toBe(200)
    const own = await server.request('POST', '/api/internal/usage/records', {
      token: SERVICE_TOKEN,
      body: { tenantId: mallory.orgId, recordId: uuid(), usage: llm(1_000_000, 0) },
    })
    expect(own.body).toMatchObject({ costUsd: 2, billedUsd: 0, priced: true })
    // Its VMs run on the platform: billed.
    const vmMinutes = await server.request('POST', '/api/internal/usage/records', {
      token: SERVICE_TOKEN,
      body: { tenantId: mallory.orgId, recordId: uuid(), usage: { kind: 'vm', vmId: uuid(), size: 'small', minutes: 10 } },
    })
    expect(vmMinutes.body).toMatchObject({ costUsd: 0.02, billedUsd: 0.02 })
    malloryAt = vmMinutes.body.position
  })

  it('usage from the future is refused as invalid input', async () => {
    const r = await record({ at: new Date(Date.now() + 3_600_000).toISOString(), usage: llm(1, 1) })
    expect(r.status).toBe(400)
    expect(r.body.errors[0].path).toBe('at')
  })

  it('unpriced usage is metered at no cost', async () => {
    const r = await record({ usage: { ...llm(5, 5), model: 'unknown-model' } })
    expect(r.body).toMatchObject({ costUsd: 0, priced: false })
  })

  it('takes SERVICE_TOKEN only, an existing org, and valid input', async () => {
    expect((await record({ usage: llm(1, 1) }, alice.token)).status).toBe(401)
    expect((await server.request('POST', '/api/internal/usage/records', { body: { tenantId: alice.orgId } })).status).toBe(401)
    const ghost = await server.request('POST', '/api/internal/usage/records', {
      token: SERVICE_TOKEN,
      body: { tenantId: uuid(), recordId: uuid(), usage: llm(1, 1) },
    })
    expect(ghost.status).toBe(404)
    const bad = await record({ usage: { kind: 'llm', model: 'gpt-x', inputTokens: -1, outputTokens: 'x' } })
    expect(bad.status).toBe(400)
    expect(bad.body.code).toBe('INVALID_INPUT')
    expect(bad.body.errors.length).toBeGreaterThan(0)
  })
})

describe('GET /api/usage', () => {
  it('admins see totals, hourly series, groups, models and the VM breakdown', async () => {
    const last = await record({ roomId: alice.homeRoomId, usage: llm(0, 0) })
    const r = await server.request('GET', `/api/usage?groupBy=room&consistentAfter=${last.body.position}`, { token: alice.token })
    expect(r.status, JSON.stringify(r.body)).toBe(200)
    expect(r.body.window).toBe('12h')
    expect(r.body.series).toHaveLength(12)
    expect(r.body.bucketSeconds).toBe(3600)
    expect(r.body.totals).toMatchObject({
      inputTokens: 1_010_005,
      cachedInputTokens: 500_000,
      outputTokens: 100_005,
      vmMinutes: 90,
    })
    expect(r.body.totals.costUsd).toBeCloseTo(3.3 + 0.18 + 0.1 + 0.02, 6)
    const series = r.body.series.reduce((sum: number, b: { totals: { costUsd: number } }) => sum + b.totals.costUsd, 0)
    expect(series).toBeCloseTo(r.body.totals.costUsd, 6)
    const room = r.body.groups.find((g: { id: string | null }) => g.id === alice.homeRoomId)
    expect(room).toMatchObject({ costUsd: 3.3, inputTokens: 1_000_000 })
    expect(r.body.models.map((m: { model: string }) => m.model)).toEqual(['gpt-x', 'unknown-model'])
    expect(r.body.vms).toEqual([{ vmId, size: 'small', minutes: 90, diskGbMonths: 1, costUsd: 0.28 }])

    const week = await server.request('GET', '/api/usage?window=7d&groupBy=task', { token: alice.token })
    expect(week.body.series).toHaveLength(28)
    expect(week.body.bucketSeconds).toBe(6 * 3600)
    expect(week.body.groups.find((g: { id: string | null }) => g.id === taskId)).toMatchObject({ vmMinutes: 90, costUsd: 0.18 })
  })

  it('from/to instead of a window: whole hourly buckets up to 48 hours, 6-hourly up to 31 days', async () => {
    const now = Date.now()
    const window = await server.request('GET', '/api/usage', { token: alice.token })
    const hour = await server.request('GET', `/api/usage?from=${new Date(now - 3_600_000).toISOString()}`, { token: alice.token })
    expect(hour.status, JSON.stringify(hour.body)).toBe(200)
    expect(hour.body).toMatchObject({ window: null, bucketSeconds: 3600 })
    expect(hour.body.series.length).toBeGreaterThanOrEqual(1)
    expect(hour.body.totals).toEqual(window.body.totals)
    const month = await server.request(
      'GET',
      `/api/usage?from=${new Date(now - 20 * 86_400_000).toISOString()}&to=${new Date(now).toISOString()}`,
      {
        token: alice.token,
      },
    )
    expect(month.body.bucketSeconds).toBe(6 * 3600)
    expect(month.body.series.length).toBeGreaterThanOrEqual(80)
    const tooLong = await server.request('GET', `/api/usage?from=${new Date(now - 40 * 86_400_000).toISOString()}`, {
      token: alice.token,
    })
    expect(tooLong.status).toBe(400)
    const backwards = await server.request(
      'GET',
      `/api/usage?from=${new Date(now).toISOString()}&to=${new Date(now - 1000).toISOString()}`,
      {
        token: alice.token,
      },
    )
    expect(backwards.status).toBe(400)
    expect(backwards.body.errors[0].path).toBe('to')
  })

  it('members do not see the org’s spend; another org sees none of it', async () => {
    expect((await server.request('GET', '/api/usage', { token: bob.token })).status).toBe(403)
    const theirs = await server.request('GET', `/api/usage?groupBy=vm&consistentAfter=${malloryAt}`, { token: mallory.token })
    expect(theirs.status).toBe(200)
    expect(theirs.body.totals).toMatchObject({ costUsd: 2.02, billedUsd: 0.02, inputTokens: 1_000_000 })
    expect(theirs.body.vms.map((v: { vmId: string }) => v.vmId)).not.toContain(vmId)
  })

  it('bad query values are 400 with the field named', async () => {
    const r = await server.request('GET', '/api/usage?window=3d&groupBy=planet', { token: alice.token })
    expect(r.status).toBe(400)
    expect(r.body.errors.map((e: { path: string }) => e.path).sort()).toEqual(['groupBy', 'window'])
  })
})

describe('caps', () => {
  it('admins set and raise a room cap; GET /api/limits lists it with this month’s spend', async () => {
    const set = await server.request('PUT', '/api/limits', {
      token: alice.token,
      body: { scope: 'room', scopeId: alice.homeRoomId, usd: 5 },
    })
    expect(set.status, JSON.stringify(set.body)).toBe(200)
    expect(set.body.limitUsd).toBe(5)
    const raised = await server.request('POST', '/api/limits/raise', {
      token: alice.token,
      body: { scope: 'room', scopeId: alice.homeRoomId, byUsd: 2.5 },
    })
    expect(raised.status).toBe(200)
    expect(raised.body.limitUsd).toBe(7.5)
    const limits = await server.request('GET', `/api/limits?consistentAfter=${raised.body.position}`, { token: alice.token })
    expect(limits.status).toBe(200)
    expect(limits.body.items[0]).toMatchObject({ scope: 'org', scopeId: alice.orgId, limitUsd: null })
    expect(limits.body.items[0].usedUsd).toBeCloseTo(3.6, 6)
    expect(limits.body.items).toContainEqual({ scope: 'room', scopeId: alice.homeRoomId, limitUsd: 7.5, usedUsd: 3.3 })
  })

  it('members see the caps of the rooms and tasks they read, not the org’s; another org sees none of them', async () => {
    const home = await server.request('GET', `/api/rooms/${alice.homeRoomId}`, { token: bob.token })
    expect(home.status).toBe(200)
    const theirs = await server.request('GET', '/api/limits', { token: bob.token })
    expect(theirs.status).toBe(200)
    expect(theirs.body.items).toEqual([{ scope: 'room', scopeId: alice.homeRoomId, limitUsd: 7.5, usedUsd: 3.3 }])
    const outsider = await server.request('GET', '/api/limits', { token: mallory.token })
    expect(outsider.body.items.map((i: { scopeId: string }) => i.scopeId)).toEqual([mallory.orgId])
  })

  it('inside the operators’ ceiling only', async () => {
    const ceiling = await server.request('PUT', `/control/orgs/${alice.orgId}/spend-cap`, {
      token: ops,
      body: { monthlyUsd: 10 },
    })
    expect(ceiling.status, JSON.stringify(ceiling.body)).toBe(200)
    expect(
      (await server.request('PUT', `/control/orgs/${uuid()}/spend-cap`, { token: ops, body: { monthlyUsd: 10 } })).status,
    ).toBe(404)
    const ghostTask = await server.request('PUT', '/api/limits', {
      token: alice.token,
      body: { scope: 'task', scopeId: uuid(), usd: 1 },
    })
    expect(ghostTask.status).toBe(404)
    const above = await server.request('PUT', '/api/limits', {
      token: alice.token,
      body: { scope: 'agent', scopeId: agentId, usd: 11 },
    })
    expect(above.status).toBe(404) // no such agent in this org: checked before the amount
    const room = await server.request('PUT', '/api/limits', {
      token: alice.token,
      body: { scope: 'task', scopeId: taskId, usd: 11 },
    })
    expect(room.status).toBe(422)
    expect(room.body.code).toBe('CAP_ABOVE_ORG_LIMIT')
    const unset = await server.request('POST', '/api/limits/raise', {
      token: alice.token,
      body: { scope: 'task', scopeId: taskId, byUsd: 1 },
    })
    expect(unset.status).toBe(422)
    expect(unset.body.code).toBe('CAP_NOT_SET')
  })

  it('members cannot set caps, another org cannot cap this org’s room, and the org’s ceiling is not a tenant route', async () => {
    const member = await server.request('PUT', '/api/limits', {
      token: bob.token,
      body: { scope: 'room', scopeId: alice.homeRoomId, usd: 1 },
    })
    expect(member.status).toBe(403)
    const foreign = await server.request('PUT', '/api/limits', {
      token: mallory.token,
      body: { scope: 'room', scopeId: alice.homeRoomId, usd: 1 },
    })
    expect(foreign.status).toBe(404)
    const org = await server.request('PUT', '/api/limits', {
      token: alice.token,
      body: { scope: 'org', scopeId: alice.orgId, usd: 1 },
    })
    expect(org.status).toBe(400)
    expect(
      (await server.request('PUT', `/control/orgs/${alice.orgId}/spend-cap`, { token: alice.token, body: { monthlyUsd: 1 } }))
        .status,
    ).toBe(403)
    expect((await server.request('GET', '/control/prices')).status).toBe(401)
    expect((await server.request('GET', '/control/prices', { token: alice.token })).status).toBe(403)
  })

  it('operators read the price table back as they set it', async () => {
    const r = await server.request('GET', '/control/prices', { token: ops })
    expect(r.status).toBe(200)
    expect(r.body).toEqual(PRICES)
  })

  it('the cap events carry what realtime routes them by, and the month’s spend', async () => {
    const events = await server.services.store.readStream(`spend_caps-${alice.orgId}`)
    const room = events.find((e) => (e.data as { scope: string }).scope === 'room')!
    expect(room.type).toBe('usage.cap_set')
    expect(room.data).toMatchObject({
      scope: 'room',
      scopeId: alice.homeRoomId,
      roomId: alice.homeRoomId,
      limitMicroUsd: 5_000_000,
    })
    expect((room.data as { usedMicroUsd: number }).usedMicroUsd).toBe(3_300_000)
    // Spend of the month is decided on the month's budget stream.
    const spent = await server.services.store.readStream(budgetStream(alice.orgId, monthOf(new Date().toISOString())))
    expect(spent.every((e) => e.metadata.tenantId === alice.orgId)).toBe(true)
  })
})

describe('rebuilds', () => {
  it('the usage read model, rebuilt from the events, equals the live one', async () => {
    // The last write first reaches the live tables, then the diff.
    const last = await record({ usage: llm(1, 1) })
    expect(
      (await server.request('GET', `/api/limits?consistentAfter=${last.body.position}`, { token: alice.token })).status,
    ).toBe(200)
    const r = await verify({ store: server.services.store, db: owner }, usageProjector)
    expect(r.differences).toEqual([])
    expect(r.rows.usage_records).toBeGreaterThan(5)
    expect(r.rows.usage_caps).toBeGreaterThan(0)
  })
})

describe('alerts and settlement over HTTP', () => {
  const reserve = (body: Record<string, unknown>) =>
    server.request('POST', '/api/internal/usage/reservations', {
      token: SERVICE_TOKEN,
      body: { tenantId: alice.orgId, reservationId: uuid(), ...body },
    })
  const alertsFor = async (scopeId: string) =>
    (await server.services.store.readStream(budgetStream(alice.orgId, monthOf(new Date().toISOString()))))
      .filter((e) => e.type === 'usage.limit_warning' || e.type === 'usage.limit_reached')
      .filter((e) => (e.data as { scopeId: string }).scopeId === scopeId)
      .map((e) => ({ type: e.type, ...(e.data as object) }))

  it('a task cap warns at 80 %, says reached at 100 %, once each, then refuses reservations naming the task cap', async () => {
    const cap = await server.request('PUT', '/api/limits', {
      token: alice.token,
      body: { scope: 'task', scopeId: taskId, usd: 1 },
    })
    expect(cap.status, JSON.stringify(cap.body)).toBe(200)
    const spentBefore = (
      await server.request('GET', `/api/limits?consistentAfter=${cap.body.position}`, { token: alice.token })
    ).body.items.find((i: { scopeId: string }) => i.scopeId === taskId).usedUsd
    expect(spentBefore).toBeCloseTo(0.18, 6) // the VM minutes of the first test
    // 310,000 input tokens at 2 USD per million: 0.62 USD, to 0.80 USD in all
    await record({ taskId, usage: llm(310_000, 0) })
    await record({ taskId, usage: llm(1_000, 0) })
    expect(await alertsFor(taskId)).toMatchObject([
      { type: 'usage.limit_warning', scope: 'task', taskId, limitMicroUsd: 1_000_000, usedMicroUsd: 800_000 },
    ])
    await record({ taskId, usage: llm(100_000, 0) })
    await record({ taskId, usage: llm(1_000, 0) })
    const alerts = await alertsFor(taskId)
    expect(alerts.map((a) => a.type)).toEqual(['usage.limit_warning', 'usage.limit_reached'])
    expect(alerts[1]).toMatchObject({
      scope: 'task',
      scopeId: taskId,
      taskId,
      roomId: null,
      limitMicroUsd: 1_000_000,
      usedMicroUsd: 1_002_000,
    })
    const refused = await reserve({ taskId, estimate: { usd: 0.01 } })
    expect(refused.status).toBe(422)
    expect(refused.body).toMatchObject({ code: 'LIMIT_REACHED', scope: 'task', scopeId: taskId, limitUsd: 1, requestedUsd: 0.01 })
    // The task shows it: "limit reached", until its cap is raised past what it spent.
    const head = publicPosition(await server.services.store.headPosition())
    const shown = await server.request('GET', `/api/tasks/${taskId}?consistentAfter=${head}`, { token: alice.token })
    expect(shown.body).toMatchObject({ limitReached: true, effectiveStatus: 'limit_reached' })
    const raised = await server.request('PUT', '/api/limits', {
      token: alice.token,
      body: { scope: 'task', scopeId: taskId, usd: 5 },
    })
    expect(raised.status, JSON.stringify(raised.body)).toBe(200)
    const again = await server.request('GET', `/api/tasks/${taskId}?consistentAfter=${raised.body.position}`, {
      token: alice.token,
    })
    expect(again.body).toMatchObject({ limitReached: false })
    expect(again.body.effectiveStatus).not.toBe('limit_reached')
  })

  it('a reservation settled by its record, then told again, holds nothing more', async () => {
    const reservationId = uuid()
    const held = await reserve({
      reservationId,
      roomId: alice.homeRoomId,
      estimate: { model: 'gpt-x', inputTokens: 1_000, outputTokens: 1_000 },
    })
    expect(held.status, JSON.stringify(held.body)).toBe(201)
    expect(held.body.amountUsd).toBe(0.01) // 1,000 × 2 + 1,000 × 8 USD per million
    const settled = await record({ reservationId, roomId: alice.homeRoomId, usage: llm(500, 10) })
    expect(settled.status).toBe(201)
    const before = await eventCount(server)
    const again = await reserve({ reservationId, roomId: alice.homeRoomId, estimate: { usd: 0.01 } })
    expect(again.status).toBe(201)
    expect(again.body.position).toBe(held.body.position)
    expect(await eventCount(server)).toBe(before)
  })
})

describe('a suspended org', () => {
  it('reserves nothing more, and what already happened is still recorded', async () => {
    const eve = await signUp(server, { email: 'eve@usage.test', orgName: 'Usage Paused', username: 'eve' })
    const suspended = await server.request('POST', `/control/orgs/${eve.orgId}/suspend`, {
      token: ops,
      body: { reason: 'unpaid' },
    })
    expect(suspended.status, JSON.stringify(suspended.body)).toBe(200)
    const reserved = await server.request('POST', '/api/internal/usage/reservations', {
      token: SERVICE_TOKEN,
      body: { tenantId: eve.orgId, reservationId: uuid(), estimate: { usd: 0.01 } },
    })
    // As the Tenant API answers a suspended org's commands.
    expect(reserved.status).toBe(403)
    expect(reserved.body.code).toBe('ORG_SUSPENDED')
    const recorded = await server.request('POST', '/api/internal/usage/records', {
      token: SERVICE_TOKEN,
      body: { tenantId: eve.orgId, recordId: uuid(), usage: llm(100, 100) },
    })
    expect(recorded.status).toBe(201)
  })
})
