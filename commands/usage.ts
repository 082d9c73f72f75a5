import { createRoute, z } from '@hono/zod-openapi'
import type { Context } from 'hono'
import { type EventStore, PartialIdempotencyError, publicPosition, streamName } from '../adapters/event-store.ts'
import { agentStream, orgStream } from '../adapters/streams.ts'
import { agent } from '../domain/agents.ts'
import { DomainError } from '../domain/decider.ts'
import { org } from '../domain/orgs.ts'
import { room } from '../domain/rooms.ts'
import { task } from '../domain/tasks.ts'
import {
  type Attribution,
  budget,
  budgetStream,
  type CapsState,
  caps,
  capsStream,
  costOf,
  DEFAULT_RESERVATION_TTL_SECONDS,
  LimitReachedError,
  microsToUsd,
  monthOf,
  type PriceTable,
  prices,
  pricesStream,
  type Scope,
  scopeKey,
  type Usage,
  usdToMicros,
} from '../domain/usage.ts'
import type { AppDeps } from '../http/context.ts'
import { operatorActor, requireOperator } from '../http/operator.ts'
import { actorOf, principalOf, requireRole } from '../http/principal.ts'
import { badRequest, problemBody } from '../http/problem.ts'
import { router } from '../http/router.ts'
import { json, jsonBody, Position, Problem, problemResponse, Uuid } from '../http/schemas.ts'
import { serviceAuth } from '../http/service-auth.ts'
import { bearerSecurity, positionOf } from '../http/tenant-route.ts'
import { commandContext, pipelineDeps, seededIds } from './command-context.ts'
import { type CommandContext, type DecisionReader, handleCommand, loadState, type PipelineDeps } from './pipeline.ts'
import { roomStream } from './rooms.ts'
import { taskStream } from './tasks.ts'

/*
 * The command side of usage: the operators' price table and org ceilings, the admins' caps, and the two calls the
 * agents worker (and the VM billing processor) make around every spend: a reservation before it, with its most
 * expensive outcome, and the record of what it actually used after it. Both decide on the org's budget stream of the
 * month and append at the revision they read: concurrent spends serialise there, so caps never overshoot.
 */

/** Every spend of an org in a month is decided on one stream: under contention a decision retries until it wins or is refused. */
const BUDGET_ATTEMPTS = 200

const orgMustExist = async (read: DecisionReader, orgId: string) => {
  const o = await read(org, orgStream(orgId))
  if (o.status === 'none') throw new DomainError('ORG_NOT_FOUND', 'no such org', 'not_found')
  return o
}

/**
 * The month's spend (recorded, not reserved) of a scope, for what a cap change reports. Read, not a condition of the
 * append: it informs, and a cap change should not lose to every spend of a busy org.
 */
const spentOf = async (store: EventStore, orgId: string, scope: Scope, scopeId: string, at: string) => {
  const b = await loadState(store, budget, budgetStream(orgId, monthOf(at)), orgId)
  return b.spent[scopeKey(scope, scopeId)] ?? 0
}

/**
 * The event store, with the ids of appended events derived from a caller's id (a reservation's, a record's): the
 * same spend told twice is appended once, the second answered as the first, however the state moved in between.
 */
const withDerivedIds = (store: EventStore, seed: string, msecs: number): EventStore =>
  new Proxy(store, {
    get(target, property, receiver) {
      if (property === 'append') {
        return (stream: string, events: Parameters<EventStore['append']>[1], options: Parameters<EventStore['append']>[2]) => {
          const ids = seededIds(seed, msecs)
          return target.append(
            stream,
            events.map((e) => ({ ...e, id: ids() })),
            options,
          )
        }
      }
      const value = Reflect.get(target, property, receiver)
      return typeof value === 'function' ? value.bind(target) : value
    },
  })

/**
 * Decisions on one budget stream, one at a time in this process. The expected revision alone keeps caps safe across
 * processes, but 50 callers racing on one stream would each lose ~25 times on average, re-reading every stream for
 * each try (seconds of wasted work); queued here, they decide in turn and conflict only with other processes.
 */
const budgetQueues = new Map<string, Promise<unknown>>()
function oneAtATime<T>(key: string, decide: () => Promise<T>): Promise<T> {
  const previous = budgetQueues.get(key) ?? Promise.resolve()
  const turn = previous.then(decide, decide)
  const done = turn.then(
    () => undefined,
    () => undefined,
  )
  budgetQueues.set(key, done)
  void done.then(() => {
    if (budgetQueues.get(key) === done) budgetQueues.delete(key)
  })
  return turn
}

/** The time in a UUIDv7 (any UUID gives a fixed value): what derived ids carry, so they sort near their cause. */
const msecsOf = (id: string): number => Number.parseInt(id.replaceAll('-', '').slice(0, 12), 16)

// ---------------------------------------------------------------------------------------------------------------
// In-process functions (the HTTP routes below, the agents worker, the VM billing processor)

export async function setPrices(deps: PipelineDeps, ctx: CommandContext, table: PriceTable) {
  return handleCommand(
    deps,
    prices,
    pricesStream,
    { type: 'set', prices: table, at: ctx.now().toISOString() },
    { ...ctx, tenantId: null },
  )
}

export type CapChange =
  | { type: 'set'; orgId: string; scope: Scope; scopeId: string; limitMicroUsd: number | null; byOperator: boolean }
  | { type: 'raise'; orgId: string; scope: Scope; scopeId: string; byMicroUsd: number; byOperator: boolean }

/** Sets or raises a cap of the org; the agent, room or task it names must be the org's. */
export async function changeCap(deps: PipelineDeps, ctx: CommandContext, change: CapChange) {
  const at = ctx.now().toISOString()
  const tenantCtx = { ...ctx, tenantId: change.orgId }
  return handleCommand(
    deps,
    caps,
    capsStream(change.orgId),
    async (_s, read) => {
      await orgMustExist(read, change.orgId)
      if (change.scope === 'room' && !(await read(room, roomStream(change.scopeId))).exists)
        throw new DomainError('ROOM_NOT_FOUND', 'no such room', 'not_found')
      if (change.scope === 'agent' && !(await read(agent, agentStream(change.scopeId))).exists)
        throw new DomainError('AGENT_NOT_FOUND', 'no such agent', 'not_found')
      if (change.scope === 'task') {
        const t = await read(task, taskStream(change.scopeId))
        if (!t.exists || t.deleted) throw new DomainError('TASK_NOT_FOUND', 'no such task', 'not_found')
      }
      const usedMicroUsd = await spentOf(deps.store, change.orgId, change.scope, change.scopeId, at)
      return { ...change, usedMicroUsd, at }
    },
    tenantCtx,
  )
}

export type ReservationInput = Attribution & {
  orgId: string
  reservationId: string
  /** The most the spend can cost: an amount, or an LLM call's input and its longest output, priced here. */
  estimate: { usd: number } | { model: string; inputTokens: number; outputTokens: number }
  ttlSeconds?: number
}

/**
 * Holds budget for a spend about to happen, or refuses it (LimitReachedError) when a cap leaves no room for it. A
 * reservation is settled by the record that names it, and stops counting at its expiry if none ever does.
 */
export async function reserveSpend(deps: PipelineDeps, ctx: CommandContext, input: ReservationInput) {
  const now = ctx.now()
  const at = now.toISOString()
  const expiresAt = new Date(now.getTime() + (input.ttlSeconds ?? DEFAULT_RESERVATION_TTL_SECONDS) * 1000).toISOString()
  const store = withDerivedIds(
    deps.store,
    `usage-reservation:${input.orgId}:${input.reservationId}`,
    msecsOf(input.reservationId),
  )
  let amountMicroUsd = 0
  try {
    const r = await oneAtATime(budgetStream(input.orgId, monthOf(at)), () =>
      handleCommand(
        { ...deps, store },
        budget,
        budgetStream(input.orgId, monthOf(at)),
        async (_s, read) => {
          const o = await orgMustExist(read, input.orgId)
          // A suspended org takes no commands: nothing new is spent for it (what already happened is still recorded).
          if (o.status === 'suspended') throw new DomainError('ORG_SUSPENDED', 'this org is suspended', 'forbidden')
          const orgCaps = await read(caps, capsStream(input.orgId))
          amountMicroUsd = await estimateOf(deps.store, input.estimate, orgCaps, input)
          return {
            type: 'reserve' as const,
            reservationId: input.reservationId,
            orgId: input.orgId,
            agentId: input.agentId,
            roomId: input.roomId,
            taskId: input.taskId,
            amountMicroUsd,
            caps: orgCaps,
            at,
            expiresAt,
          }
        },
        { ...ctx, tenantId: input.orgId },
        { maxAttempts: BUDGET_ATTEMPTS },
      ),
    )
    return { reservationId: input.reservationId, amountMicroUsd, expiresAt, position: r.position }
  } catch (e) {
    if (e instanceof PartialIdempotencyError)
      return { reservationId: input.reservationId, amountMicroUsd, expiresAt, position: null }
    throw e
  }
}

/**
 * The platform's prices as they stand. Read, not a condition of the append: a spend decided just before a price
 * change is priced as it would have been a moment earlier, and the platform's stream is no tenant's to read through
 * a tenant's decision.
 */
const priceTable = async (store: EventStore) => (await loadState(store, prices, pricesStream, null)).prices

async function estimateOf(
  store: EventStore,
  estimate: ReservationInput['estimate'],
  orgCaps: CapsState,
  a: Attribution & { orgId: string },
) {
  if ('usd' in estimate) return usdToMicros(estimate.usd)
  const table = await priceTable(store)
  const cost = costOf(
    {
      kind: 'llm',
      model: estimate.model,
      inputTokens: estimate.inputTokens,
      cachedInputTokens: 0,
      outputTokens: estimate.outputTokens,
    },
    table,
  )
  if (cost !== null) return cost
  // Without a cap in the way nothing needs the price; with one, an unpriced call could spend past it unseen.
  const capped = [
    scopeKey('org', a.orgId),
    ...(a.agentId ? [scopeKey('agent', a.agentId)] : []),
    ...(a.roomId ? [scopeKey('room', a.roomId)] : []),
    ...(a.taskId ? [scopeKey('task', a.taskId)] : []),
  ].some((k) => orgCaps.caps[k] !== undefined)
  if (capped) throw new DomainError('MODEL_NOT_PRICED', `no price for the model ${estimate.model}: a capped spend needs one`)
  return 0
}

export type UsageRecordInput = Attribution & {
  orgId: string
  recordId: string
  reservationId: string | null
  usage: Usage
  /** When the usage happened (it counts in that month); now by default. */
  at?: string
}

/**
 * Records usage that happened. Never refused; the same record id (at the same time) counts once. An org whose LLM
 * policy says it runs on its own key (keySource 'org') has its LLM usage metered, counted against its caps, and
 * billed nothing.
 */
export async function recordUsage(deps: PipelineDeps, ctx: CommandContext, input: UsageRecordInput) {
  const at = input.at ?? ctx.now().toISOString()
  const store = withDerivedIds(deps.store, `usage-record:${input.orgId}:${input.recordId}`, msecsOf(input.recordId))
  let cost: number | null = null
  try {
    const r = await oneAtATime(budgetStream(input.orgId, monthOf(at)), () =>
      handleCommand(
        { ...deps, store },
        budget,
        budgetStream(input.orgId, monthOf(at)),
        async (_s, read) => {
          const o = await orgMustExist(read, input.orgId)
          const orgCaps = await read(caps, capsStream(input.orgId))
          cost = costOf(input.usage, await priceTable(deps.store))
          return {
            type: 'record' as const,
            recordId: input.recordId,
            reservationId: input.reservationId,
            orgId: input.orgId,
            agentId: input.agentId,
            roomId: input.roomId,
            taskId: input.taskId,
            usage: input.usage,
            costMicroUsd: cost,
            billed: !(input.usage.kind === 'llm' && o.llmPolicy?.keySource === 'org'),
            caps: orgCaps,
            at,
          }
        },
        { ...ctx, tenantId: input.orgId },
        { maxAttempts: BUDGET_ATTEMPTS },
      ),
    )
    const recorded = r.events.find((e) => e.type === 'usage.recorded')
    const data = recorded?.type === 'usage.recorded' ? recorded.data : null
    return {
      recordId: input.recordId,
      costMicroUsd: data?.costMicroUsd ?? 0,
      billedMicroUsd: data?.billedMicroUsd ?? 0,
      priced: data?.priced ?? cost !== null,
      position: r.position,
    }
  } catch (e) {
    // Told before, and the state has moved so that this telling decides other alerts than the first: it counted then.
    if (e instanceof PartialIdempotencyError)
      return { recordId: input.recordId, costMicroUsd: 0, billedMicroUsd: 0, priced: cost !== null, position: null }
    throw e
  }
}

// ---------------------------------------------------------------------------------------------------------------
// HTTP

const Usd = z.number().nonnegative().max(1e9).openapi({ description: 'US dollars (kept as integer micro-USD)' })
const Tokens = z.number().int().nonnegative().max(1e12)

const PricesBody = z
  .object({
    models: z.record(
      z.string().min(1).max(200),
      z.object({ inputPerMTokUsd: Usd, cachedInputPerMTokUsd: Usd, outputPerMTokUsd: Usd }),
    ),
    vmMinuteUsd: z.record(z.string().min(1).max(50), Usd),
    diskGbMonthUsd: Usd,
    storageGbMonthUsd: Usd,
  })
  .openapi('Prices')

const LimitProblem = Problem.extend({
  scope: z.enum(['org', 'agent', 'room', 'task']),
  scopeId: z.string(),
  limitUsd: z.number(),
  usedUsd: z.number(),
  requestedUsd: z.number(),
}).openapi('LimitReached')

const putPrices = createRoute({
  method: 'put',
  path: '/control/prices',
  tags: ['control', 'usage'],
  summary: 'Replace the price table (operators)',
  description:
    'Per million tokens by model (input, cached input, output), per VM-minute by size, per GB-month of disk and storage.',
  security: [{ operator: [] }],
  request: jsonBody(PricesBody),
  responses: { 200: json('set', z.object({ position: Position })), 400: problemResponse('invalid input') },
})

const putOrgCap = createRoute({
  method: 'put',
  path: '/control/orgs/{id}/spend-cap',
  tags: ['control', 'usage'],
  summary: "Set or remove an org's monthly spend ceiling (operators)",
  security: [{ operator: [] }],
  request: { params: z.object({ id: Uuid }), ...jsonBody(z.object({ monthlyUsd: Usd.nullable() })) },
  responses: { 200: json('set', z.object({ orgId: Uuid, position: Position })), 404: problemResponse('no such org') },
})

const TenantScope = z.enum(['agent', 'room', 'task'])

const putLimit = createRoute({
  method: 'put',
  path: '/api/limits',
  tags: ['usage'],
  summary: 'Set or remove an agent, room or task cap (admins), monthly, inside the org’s ceiling',
  security: bearerSecurity,
  request: jsonBody(z.object({ scope: TenantScope, scopeId: Uuid, usd: Usd.nullable() })),
  responses: {
    200: json('set', z.object({ scope: TenantScope, scopeId: Uuid, limitUsd: z.number().nullable(), position: Position })),
    403: problemResponse('admins only'),
    404: problemResponse('no such agent or room'),
    422: problemResponse('above the org’s ceiling'),
  },
})

const raiseLimit = createRoute({
  method: 'post',
  path: '/api/limits/raise',
  tags: ['usage'],
  summary: 'Raise an agent, room or task cap by an amount (admins), in one call',
  security: bearerSecurity,
  request: jsonBody(z.object({ scope: TenantScope, scopeId: Uuid, byUsd: Usd.positive() })),
  responses: {
    200: json('raised', z.object({ scope: TenantScope, scopeId: Uuid, limitUsd: z.number().nullable(), position: Position })),
    403: problemResponse('admins only'),
    422: problemResponse('no cap to raise, or above the org’s ceiling'),
  },
})

const Attributed = {
  tenantId: Uuid.openapi({ description: 'the org the spend is for' }),
  agentId: Uuid.nullable().default(null),
  roomId: Uuid.nullable().default(null),
  taskId: Uuid.nullable().default(null),
}

const reserveRoute = createRoute({
  method: 'post',
  path: '/api/internal/usage/reservations',
  tags: ['internal', 'usage'],
  summary: 'Reserve budget before a spend (service credentials)',
  description:
    'Holds the most the spend can cost against the org’s, agent’s, room’s and task’s caps, or refuses with 422 LIMIT_REACHED naming the cap, its limit and what is spent or reserved of it. The record that names the reservation settles it; unsettled, it stops counting after ttlSeconds.',
  security: [{ service: [] }],
  request: jsonBody(
    z.object({
      ...Attributed,
      reservationId: Uuid,
      estimate: z.union([
        z.object({ usd: Usd }),
        z.object({ model: z.string().min(1).max(200), inputTokens: Tokens, outputTokens: Tokens }),
      ]),
      ttlSeconds: z.number().int().min(1).max(86_400).optional(),
    }),
  ),
  responses: {
    201: json('reserved', z.object({ reservationId: Uuid, amountUsd: z.number(), expiresAt: z.string(), position: Position })),
    401: problemResponse('service credentials required'),
    403: problemResponse('the org is suspended'),
    404: problemResponse('no such org'),
    422: { description: 'a cap leaves no room', content: { 'application/problem+json': { schema: LimitProblem } } },
  },
})

const UsageBody = z.discriminatedUnion('kind', [
  z.object({
    kind: z.literal('llm'),
    model: z.string().min(1).max(200),
    inputTokens: Tokens,
    cachedInputTokens: Tokens.default(0),
    outputTokens: Tokens,
  }),
  z.object({
    kind: z.literal('vm'),
    vmId: Uuid,
    size: z.string().min(1).max(50),
    minutes: z.number().int().nonnegative().max(1e7),
  }),
  z.object({
    kind: z.literal('vm_disk'),
    vmId: Uuid,
    bytes: z.number().int().nonnegative().max(1e15),
    minutes: z.number().int().nonnegative().max(1e7),
  }),
  z.object({
    kind: z.literal('storage'),
    bytes: z.number().int().nonnegative().max(1e15),
    minutes: z.number().int().nonnegative().max(1e7),
  }),
])

const recordRoute = createRoute({
  method: 'post',
  path: '/api/internal/usage/records',
  tags: ['internal', 'usage'],
  summary: 'Record usage that happened (service credentials)',
  description:
    'LLM tokens by model, VM minutes by size, disk and storage bytes over minutes. Never refused for a cap; the same recordId counts once. Settles the reservation it names.',
  security: [{ service: [] }],
  request: jsonBody(
    z.object({
      ...Attributed,
      recordId: Uuid,
      reservationId: Uuid.nullable().default(null),
      at: z.iso.datetime().optional(),
      usage: UsageBody,
    }),
  ),
  responses: {
    201: json(
      'recorded',
      z.object({ recordId: Uuid, costUsd: z.number(), billedUsd: z.number(), priced: z.boolean(), position: Position }),
    ),
    401: problemResponse('service credentials required'),
    404: problemResponse('no such org'),
  },
})

/** 422 LIMIT_REACHED with the cap, its limit and what is used of it as members of the problem (RFC 9457 extensions). */
export const limitReached = (c: Context, e: LimitReachedError): Response => {
  const body = {
    ...problemBody({ status: 422, code: e.code, title: 'Refused', detail: e.message }),
    scope: e.scope,
    scopeId: e.scopeId,
    limitUsd: microsToUsd(e.limitMicroUsd),
    usedUsd: microsToUsd(e.usedMicroUsd),
    requestedUsd: microsToUsd(e.requestedMicroUsd),
  }
  const requestId = c.get('requestId' as never) as string | undefined
  return new Response(JSON.stringify(body), {
    status: 422,
    headers: { 'content-type': 'application/problem+json', ...(requestId ? { 'x-request-id': requestId } : {}) },
  })
}

/** How far ahead of this clock a caller's may run. */
const FUTURE_SKEW_MS = 5 * 60_000

const serviceActor = { type: 'service', id: 'service' } as const

/** A cap as a change of it answers: the scope, its limit now (USD; null: none) and where the change stands. */
const capAnswer = <S extends Scope>(r: Awaited<ReturnType<typeof changeCap>>, scope: S, scopeId: string) => {
  const limit = r.state.caps[scopeKey(scope, scopeId)]
  return { scope, scopeId, limitUsd: limit === undefined ? null : microsToUsd(limit), position: positionOf(r.position) }
}

export function usageCommands(deps: AppDeps) {
  const app = router()
  app.use('/control/prices', requireOperator(deps))
  app.use('/control/orgs/:id/spend-cap', requireOperator(deps))
  app.use('/api/internal/usage/*', serviceAuth(deps))

  app.openapi(putPrices, async (c) => {
    const b = c.req.valid('json')
    const table: PriceTable = {
      models: Object.fromEntries(
        Object.entries(b.models).map(([name, p]) => [
          name,
          {
            inputPerMTokMicros: usdToMicros(p.inputPerMTokUsd),
            cachedInputPerMTokMicros: usdToMicros(p.cachedInputPerMTokUsd),
            outputPerMTokMicros: usdToMicros(p.outputPerMTokUsd),
          },
        ]),
      ),
      vmMinuteMicros: Object.fromEntries(Object.entries(b.vmMinuteUsd).map(([size, usd]) => [size, usdToMicros(usd)])),
      diskGbMonthMicros: usdToMicros(b.diskGbMonthUsd),
      storageGbMonthMicros: usdToMicros(b.storageGbMonthUsd),
    }
    const r = await setPrices(pipelineDeps(deps), commandContext(c, operatorActor(c), null), table)
    return c.json({ position: positionOf(r.position) }, 200)
  })

  app.openapi(putOrgCap, async (c) => {
    const { id } = c.req.valid('param')
    const { monthlyUsd } = c.req.valid('json')
    const r = await changeCap(pipelineDeps(deps), commandContext(c, operatorActor(c), id), {
      type: 'set',
      orgId: id,
      scope: 'org',
      scopeId: id,
      limitMicroUsd: monthlyUsd === null ? null : usdToMicros(monthlyUsd),
      byOperator: true,
    })
    return c.json({ orgId: id, position: r.position && publicPosition(r.position) }, 200)
  })

  app.openapi(putLimit, async (c) => {
    const me = principalOf(c)
    requireRole(me, 'admin')
    const { scope, scopeId, usd } = c.req.valid('json')
    const r = await changeCap(pipelineDeps(deps), commandContext(c, actorOf(me), me.tenantId), {
      type: 'set',
      orgId: me.tenantId,
      scope,
      scopeId,
      limitMicroUsd: usd === null ? null : usdToMicros(usd),
      byOperator: false,
    })
    return c.json(capAnswer(r, scope, scopeId), 200)
  })

  app.openapi(raiseLimit, async (c) => {
    const me = principalOf(c)
    requireRole(me, 'admin')
    const { scope, scopeId, byUsd } = c.req.valid('json')
    const r = await changeCap(pipelineDeps(deps), commandContext(c, actorOf(me), me.tenantId), {
      type: 'raise',
      orgId: me.tenantId,
      scope,
      scopeId,
      byMicroUsd: usdToMicros(byUsd),
      byOperator: false,
    })
    return c.json(capAnswer(r, scope, scopeId), 200)
  })

  app.openapi(reserveRoute, async (c) => {
    const b = c.req.valid('json')
    try {
      const r = await reserveSpend(pipelineDeps(deps), commandContext(c, serviceActor, b.tenantId), {
        orgId: b.tenantId,
        reservationId: b.reservationId,
        agentId: b.agentId,
        roomId: b.roomId,
        taskId: b.taskId,
        estimate: b.estimate,
        ...(b.ttlSeconds ? { ttlSeconds: b.ttlSeconds } : {}),
      })
      return c.json(
        {
          reservationId: r.reservationId,
          amountUsd: microsToUsd(r.amountMicroUsd),
          expiresAt: r.expiresAt,
          position: positionOf(r.position),
        },
        201,
      )
    } catch (e) {
      if (e instanceof LimitReachedError) return limitReached(c, e) as never
      throw e
    }
  })

  app.openapi(recordRoute, async (c) => {
    const b = c.req.valid('json')
    // A record counts in the month it happened in: one dated ahead would count where no decision looks yet.
    if (b.at && Date.parse(b.at) > Date.now() + FUTURE_SKEW_MS)
      throw badRequest('usage is recorded once it happened', [{ path: 'at', message: 'in the future' }])
    const r = await recordUsage(pipelineDeps(deps), commandContext(c, serviceActor, b.tenantId), {
      orgId: b.tenantId,
      recordId: b.recordId,
      reservationId: b.reservationId,
      agentId: b.agentId,
      roomId: b.roomId,
      taskId: b.taskId,
      usage: b.usage,
      ...(b.at ? { at: new Date(b.at).toISOString() } : {}),
    })
    return c.json(
      {
        recordId: r.recordId,
        costUsd: microsToUsd(r.costMicroUsd),
        billedUsd: microsToUsd(r.billedMicroUsd),
        priced: r.priced,
        position: positionOf(r.position),
      },
      201,
    )
  })
  return app
}
