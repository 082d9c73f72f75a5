import { v7 as uuid } from 'uuid'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { pipelineDeps } from '../../commands/command-context.ts'
import { handleCommand } from '../../commands/pipeline.ts'
import { budget, budgetStream, caps, capsStream, LimitReachedError, monthOf } from '../../domain/usage.ts'
import { signUp } from '../support/identity.ts'
import { eventCount, startTestServer, type TestServer } from '../support/server.ts'

const SERVICE_TOKEN = 'spend-caps-service-token-0123456789abcdef'

let server: TestServer
let alice: Awaited<ReturnType<typeof signUp>>

beforeAll(async () => {
  server = await startTestServer({ SERVICE_TOKEN })
  alice = await signUp(server, { email: 'alice@caps.test', orgName: 'Caps Inc', username: 'alice' })
}, 90_000)
afterAll(async () => {
  await server?.close()
})

const reserve = (usd: number, over: Record<string, unknown> = {}) =>
  server.request('POST', '/api/internal/usage/reservations', {
    token: SERVICE_TOKEN,
    body: { tenantId: alice.orgId, reservationId: uuid(), roomId: alice.homeRoomId, estimate: { usd }, ...over },
  })
const record = (usd: number, reservationId: string | null = null) =>
  // With no price table, spend is told in a priced unit of its own: none. A VM minute at no price costs nothing,
  // so the test prices its spend through reservations and settles them with records of what was used.
  server.request('POST', '/api/internal/usage/records', {
    token: SERVICE_TOKEN,
    body: {
      tenantId: alice.orgId,
      recordId: uuid(),
      reservationId,
      roomId: alice.homeRoomId,
      usage: { kind: 'llm', model: 'unpriced', inputTokens: usd, cachedInputTokens: 0, outputTokens: 0 },
    },
  })

const budgetEvents = () => server.services.store.readStream(budgetStream(alice.orgId, monthOf(new Date().toISOString())))

describe('spend caps hold under concurrency', () => {
  it('50 concurrent reservations near a room cap: never past it, the refused ones 422 with the numbers, appending nothing', async () => {
    const cap = await server.request('PUT', '/api/limits', {
      token: alice.token,
      body: { scope: 'room', scopeId: alice.homeRoomId, usd: 1 },
    })
    expect(cap.status, JSON.stringify(cap.body)).toBe(200)
    // 0.55 USD of the cap already held: room for exactly 45 reservations of a cent.
    const held = await reserve(0.55)
    expect(held.status, JSON.stringify(held.body)).toBe(201)

    const before = await eventCount(server)
    const answers = await Promise.all(Array.from({ length: 50 }, () => reserve(0.01)))
    const accepted = answers.filter((a) => a.status === 201)
    const refused = answers.filter((a) => a.status !== 201)

    expect(accepted).toHaveLength(45)
    for (const r of refused) {
      expect(r.status, JSON.stringify(r.body)).toBe(422)
      expect(r.headers.get('content-type')).toContain('application/problem+json')
      expect(r.body).toMatchObject({
        code: 'LIMIT_REACHED',
        scope: 'room',
        scopeId: alice.homeRoomId,
        limitUsd: 1,
        requestedUsd: 0.01,
      })
      expect(r.body.usedUsd).toBeCloseTo(1, 6)
    }
    // Exactly the accepted ones were appended: a refusal appends nothing.
    expect(await eventCount(server)).toBe(before + accepted.length)
    const reservedMicros = (await budgetEvents())
      .filter((e) => e.type === 'usage.reserved')
      .reduce((sum, e) => sum + (e.data as { amountMicroUsd: number }).amountMicroUsd, 0)
    expect(reservedMicros).toBe(1_000_000)
  }, 60_000)

  it('decisions that race from several processes (no local queue) still never pass the cap: the expected revision decides', async () => {
    const created = await server.request('POST', '/api/tasks', { token: alice.token, body: { title: 'Race on this' } })
    expect(created.status, JSON.stringify(created.body)).toBe(201)
    const taskId = created.body.taskId as string
    const set = await server.request('PUT', '/api/limits', {
      token: alice.token,
      body: { scope: 'task', scopeId: taskId, usd: 0.1 },
    })
    expect(set.status).toBe(200)
    const before = await eventCount(server)
    // What reserveSpend decides, straight through the pipeline as another process's handler would: 20 racers, room for 10.
    const race = () => {
      const at = new Date().toISOString()
      return handleCommand(
        pipelineDeps(server.services),
        budget,
        budgetStream(alice.orgId, monthOf(at)),
        async (_s, read) => ({
          type: 'reserve' as const,
          reservationId: uuid(),
          orgId: alice.orgId,
          agentId: null,
          roomId: null,
          taskId,
          amountMicroUsd: 10_000,
          caps: await read(caps, capsStream(alice.orgId)),
          at,
          expiresAt: new Date(Date.now() + 60_000).toISOString(),
        }),
        {
          tenantId: alice.orgId,
          actor: { type: 'service', id: 'racer' },
          correlationId: uuid(),
          causationId: null,
          now: () => new Date(),
          newId: uuid,
        },
        { maxAttempts: 100 },
      ).then(
        () => 'accepted' as const,
        (e: unknown) => (e instanceof LimitReachedError ? ('refused' as const) : Promise.reject(e)),
      )
    }
    const outcomes = await Promise.all(Array.from({ length: 20 }, race))
    expect(outcomes.filter((o) => o === 'accepted')).toHaveLength(10)
    expect(await eventCount(server)).toBe(before + 10)
  }, 60_000)

  it('raising the cap in one call makes room again; usage that happened is recorded even past the cap', async () => {
    expect((await reserve(0.01)).status).toBe(422)
    const raised = await server.request('POST', '/api/limits/raise', {
      token: alice.token,
      body: { scope: 'room', scopeId: alice.homeRoomId, byUsd: 0.5 },
    })
    expect(raised.status).toBe(200)
    expect(raised.body.limitUsd).toBe(1.5)
    expect((await reserve(0.5)).status).toBe(201)
    expect((await reserve(0.01)).status).toBe(422)
    // Usage is never refused, whatever the caps: it counts (here at no price: the model is not in the table).
    const r = await record(1_000)
    expect(r.status, JSON.stringify(r.body)).toBe(201)
  })

  it('another org’s spend is not capped by this org’s caps, and its reservations are its own', async () => {
    const mallory = await signUp(server, { email: 'mallory@caps.test', orgName: 'Caps Evil', username: 'mallory' })
    const theirs = await server.request('POST', '/api/internal/usage/reservations', {
      token: SERVICE_TOKEN,
      body: { tenantId: mallory.orgId, reservationId: uuid(), roomId: alice.homeRoomId, estimate: { usd: 100 } },
    })
    // Alice's room cap is keyed by her org: the other org's budget has no such cap.
    expect(theirs.status).toBe(201)
  })

  it('a reservation on an unknown org is 404, without service credentials 401, with bad input 400', async () => {
    const ghost = await server.request('POST', '/api/internal/usage/reservations', {
      token: SERVICE_TOKEN,
      body: { tenantId: uuid(), reservationId: uuid(), estimate: { usd: 1 } },
    })
    expect(ghost.status).toBe(404)
    expect((await server.request('POST', '/api/internal/usage/reservations', { token: alice.token, body: {} })).status).toBe(401)
    const bad = await reserve(-1)
    expect(bad.status).toBe(400)
  })

  it('a capped LLM call with no price for its model is refused rather than let through unmeasured', async () => {
    const r = await server.request('POST', '/api/internal/usage/reservations', {
      token: SERVICE_TOKEN,
      body: {
        tenantId: alice.orgId,
        reservationId: uuid(),
        roomId: alice.homeRoomId,
        estimate: { model: 'unpriced', inputTokens: 10, outputTokens: 10 },
      },
    })
    expect(r.status).toBe(422)
    expect(r.body.code).toBe('MODEL_NOT_PRICED')
  })
})
