import { createRoute, z } from '@hono/zod-openapi'
import { realtimeEventTypes } from '../domain/realtime-payloads.ts'
import type { AppDeps } from '../http/context.ts'
import { principalOf } from '../http/principal.ts'
import { HttpProblem } from '../http/problem.ts'
import { router } from '../http/router.ts'
import { json, problemResponse } from '../http/schemas.ts'
import { bearerSecurity } from '../http/tenant-route.ts'
import { RealtimeError, type RealtimeGateway } from './gateway.ts'

const EventId = z
  .string()
  .regex(/^\d{1,20}-\d{1,20}$/)
  .openapi({ description: 'an event id, `<transactionId>-<sequence>`' })
const QueueId = z.string().min(1).max(100)

const Event = z
  .object({
    id: EventId.optional(),
    type: z.string(),
    position: z.number().int().optional(),
    occurredAt: z.string().optional(),
    data: z.unknown().optional(),
  })
  .openapi('RealtimeEvent')

const routes = {
  register: createRoute({
    method: 'post',
    path: '/realtime/register',
    tags: ['realtime'],
    summary: 'Register an event queue',
    description:
      'Load initial state with `consistentAfter=position`, then poll from `lastEventId`: nothing falls in between. Event ids are `<transactionId>-<sequence>` global positions, not `<position>-0`: positions are handed out at insert, and commit order is the pair.',
    security: bearerSecurity,
    request: {
      body: {
        content: {
          'application/json': { schema: z.object({ eventTypes: z.array(z.enum(realtimeEventTypes)).max(32).optional() }) },
        },
        required: false,
      },
    },
    responses: { 200: json('the queue', z.object({ queueId: z.string(), lastEventId: EventId, position: z.number().int() })) },
  }),
  events: createRoute({
    method: 'get',
    path: '/realtime/events',
    tags: ['realtime'],
    summary: 'Events after lastEventId; blocks until one arrives, or answers a heartbeat after at most 50 s',
    description:
      'A heartbeat answers `{events: [{type: "heartbeat"}]}`. An expired or unknown queue answers 400 BAD_EVENT_QUEUE_ID: register again.',
    security: bearerSecurity,
    request: {
      query: z.object({ queueId: QueueId, lastEventId: EventId.optional(), dontBlock: z.enum(['true', 'false']).optional() }),
    },
    responses: { 200: json('events, oldest first', z.object({ events: z.array(Event) })), 400: problemResponse('bad queue id') },
  }),
  drop: createRoute({
    method: 'delete',
    path: '/realtime/queue',
    tags: ['realtime'],
    summary: 'Drop an event queue',
    security: bearerSecurity,
    request: { query: z.object({ queueId: QueueId }) },
    responses: { 200: json('dropped', z.object({ queueId: z.string() })), 400: problemResponse('bad queue id') },
  }),
}

const asProblem = (e: unknown): never => {
  if (e instanceof RealtimeError) {
    throw new HttpProblem({
      status: e.status,
      code: e.code,
      title: e.status === 429 ? 'Too many requests' : 'Bad request',
      detail: e.message,
      ...(e.status === 429 ? { headers: { 'retry-after': '1' } } : {}),
    })
  }
  throw e
}

export function realtimeRoutes(_deps: AppDeps, gateway: RealtimeGateway) {
  const app = router()
  app.openapi(routes.register, async (c) => {
    const me = principalOf(c)
    const body = c.req.valid('json') as { eventTypes?: string[] } | undefined
    const r = await gateway.register(me.userId, body?.eventTypes ?? null).catch(asProblem)
    return c.json(r, 200)
  })
  app.openapi(routes.events, async (c) => {
    const me = principalOf(c)
    const q = c.req.valid('query')
    const result = await gateway
      .poll({
        queueId: q.queueId,
        userId: me.userId,
        ...(q.lastEventId ? { lastEventId: q.lastEventId } : {}),
        dontBlock: q.dontBlock === 'true',
        signal: c.req.raw.signal,
      })
      .catch(asProblem)
    return c.json({ events: result.type === 'heartbeat' ? [{ type: 'heartbeat' }] : result.events }, 200)
  })
  app.openapi(routes.drop, async (c) => {
    const me = principalOf(c)
    const { queueId } = c.req.valid('query')
    await gateway.drop(queueId, me.userId).catch(asProblem)
    return c.json({ queueId }, 200)
  })
  return app
}
