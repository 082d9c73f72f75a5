import { createRoute, z } from '@hono/zod-openapi'
import { sql } from 'kysely'
import { type AuditResume, auditReader } from '../adapters/event-audit.ts'
import { publicPosition, type RecordedEvent } from '../adapters/event-store.ts'
import type { PgPool } from '../adapters/postgres.ts'
import { personalData } from '../domain/personal-data.ts'
import { upcast } from '../domain/upcasting.ts'
import { consistent } from '../http/consistent-after.ts'
import type { AppDeps } from '../http/context.ts'
import { requireOperator } from '../http/operator.ts'
import { badRequest, notFound } from '../http/problem.ts'
import { router } from '../http/router.ts'
import { consistentAfterQuery, json, problemResponse, Uuid } from '../http/schemas.ts'
import { decodeCursor, encodeCursor, pageQuery, pageSchema } from './pagination.ts'

/** The control routes' dependencies: the Postgres event store's pool reads a tenant's audit through its index. */
export type ControlQueryDeps = AppDeps & { readonly pools: { readonly events: PgPool } }

const Limits = z.object({ seats: z.number().int().nullable(), storageBytes: z.number().int().nullable() }).openapi('OrgLimits')
const LlmPolicy = z
  .object({
    allowedModels: z.array(z.string()),
    keySource: z.enum(['platform', 'org']),
    monthlyTokenBudget: z.number().int().nullable(),
  })
  .openapi('LlmPolicy')

const Org = z
  .object({
    id: Uuid,
    name: z.string(),
    slug: z.string(),
    status: z.enum(['active', 'suspended']),
    createdAt: z.string(),
    limits: Limits,
    llmPolicy: LlmPolicy.nullable().openapi({ description: 'null: none set, the platform’s defaults apply' }),
  })
  .openapi('Org')

const OrgDetail = Org.extend({ seatsInUse: z.number().int().openapi({ description: 'active people (agents take no seat)' }) })

const listOrgs = createRoute({
  method: 'get',
  path: '/control/orgs',
  tags: ['control'],
  summary: 'List and search orgs (operators)',
  security: [{ operator: [] }],
  request: {
    query: z.object({
      q: z.string().trim().min(1).max(100).optional().openapi({ description: 'part of the name or slug, any case' }),
      status: z.enum(['active', 'suspended']).optional(),
      ...pageQuery,
      ...consistentAfterQuery,
    }),
  },
  responses: { 200: json('orgs, oldest first', pageSchema(Org)), 400: problemResponse('invalid input') },
})

const getOrg = createRoute({
  method: 'get',
  path: '/control/orgs/{id}',
  tags: ['control'],
  summary: 'An org with its limits, LLM policy and seats in use (operators)',
  security: [{ operator: [] }],
  request: { params: z.object({ id: Uuid }), query: z.object({ ...consistentAfterQuery }) },
  responses: { 200: json('the org', OrgDetail), 404: problemResponse('no such org') },
})

const Operator = z.object({ accountId: Uuid, grantedBy: Uuid.nullable(), grantedAt: z.string() }).openapi('Operator')

const listOperators = createRoute({
  method: 'get',
  path: '/control/operators',
  tags: ['control'],
  summary: 'The operators (operators)',
  security: [{ operator: [] }],
  request: { query: z.object({ ...pageQuery, ...consistentAfterQuery }) },
  responses: { 200: json('operators, first granted first', pageSchema(Operator)) },
})

const AuditItem = z
  .object({
    id: Uuid,
    stream: z.string(),
    type: z.string(),
    position: z.number().int(),
    occurredAt: z.string(),
    tenantId: Uuid.nullable(),
    actor: z.object({ type: z.string(), id: z.string() }),
    correlationId: z.string(),
    causationId: z.string().nullable(),
    data: z.unknown().openapi({ description: 'the event’s data, personal fields withheld' }),
  })
  .openapi('AuditEvent')

const audit = createRoute({
  method: 'get',
  path: '/control/audit',
  tags: ['control'],
  summary: 'The event history: who did what, when, why (operators)',
  description:
    'Oldest first. A tenant’s events are read through the event store’s tenant index (Postgres), never scanning other ' +
    'tenants; a stream’s from the stream. Personal fields (message texts, names, emails) are withheld: the audit says ' +
    'who did what, not what people wrote. A page looks at a bounded number of events: with a selective filter it may ' +
    'hold fewer than `limit` items and still a `nextCursor`. `plan` says which path served it.',
  security: [{ operator: [] }],
  request: {
    query: z.object({
      tenant: Uuid.optional(),
      stream: z.string().min(1).max(300).optional(),
      type: z.string().min(1).max(1000).optional().openapi({ description: 'event types, comma-separated; `message.*` a prefix' }),
      actor: z.string().min(1).max(200).optional().openapi({ description: 'an actor id, or type:id (operator:<accountId>)' }),
      from: z.iso.datetime({ offset: true }).optional().openapi({ description: 'occurredAt at or after' }),
      to: z.iso.datetime({ offset: true }).optional().openapi({ description: 'occurredAt at or before' }),
      ...pageQuery,
    }),
  },
  responses: {
    200: json('events, oldest first', pageSchema(AuditItem).extend({ plan: z.enum(['tenant index', 'stream', '$all scan']) })),
    400: problemResponse('invalid input'),
  },
})

/** Events a page of the audit looks at, at most: a selective filter answers in bounded time, with a cursor to go on. */
const SCAN_BUDGET = 5_000

type OrgRow = {
  id: string
  name: string
  slug: string
  status: string
  created_at: Date | string
  seats: number | null
  storage_bytes: string | number | null
  llm_allowed_models: string | null
  llm_key_source: 'platform' | 'org' | null
  llm_monthly_token_budget: string | number | null
}

const ORG_COLUMNS = [
  'id',
  'name',
  'slug',
  'status',
  'created_at',
  'seats',
  'storage_bytes',
  'llm_allowed_models',
  'llm_key_source',
  'llm_monthly_token_budget',
] as const

const count = (v: string | number | null): number | null => (v === null ? null : Number(v))

const orgView = (r: OrgRow) => ({
  id: r.id,
  name: r.name,
  slug: r.slug,
  status: r.status as 'active' | 'suspended',
  createdAt: new Date(r.created_at).toISOString(),
  limits: { seats: r.seats, storageBytes: count(r.storage_bytes) },
  llmPolicy:
    r.llm_key_source === null
      ? null
      : {
          allowedModels: JSON.parse(r.llm_allowed_models ?? '[]') as string[],
          keySource: r.llm_key_source,
          monthlyTokenBudget: count(r.llm_monthly_token_budget),
        },
})

/** `%` and `_` in what an operator types are characters, not patterns. */
const likePattern = (q: string) => `%${q.toLowerCase().replace(/[\\%_]/g, (ch) => `\\${ch}`)}%`

const WITHHELD = '[withheld]'
const personalFields = personalData.fields as Readonly<Record<string, { fields: Record<string, unknown> } | undefined>>

/** The event's data in its current shape, its personal fields withheld (sealed or not, erased or not). */
function auditData(deps: AppDeps, e: RecordedEvent): unknown {
  const { data } = upcast(deps.upcasters, e.type, e.metadata.schemaVersion ?? 1, e.data)
  const declared = personalFields[e.type]
  if (!declared || typeof data !== 'object' || data === null) return data
  const out: Record<string, unknown> = { ...(data as Record<string, unknown>) }
  for (const field of Object.keys(declared.fields)) if (out[field] !== undefined && out[field] !== null) out[field] = WITHHELD
  return out
}

export function controlQueries(deps: ControlQueryDeps) {
  const app = router()
  app.use('/control/*', requireOperator(deps))

  app.openapi(listOrgs, async (c) => {
    const { q, status, limit, cursor } = c.req.valid('query')
    await consistent(c, deps, ['orgs'])
    const after = decodeCursor(cursor, 2)
    let query = deps.controlDb
      .selectFrom('control.orgs')
      .select([...ORG_COLUMNS])
      .orderBy('created_at')
      .orderBy('id')
      .limit(limit + 1)
    if (q) {
      // Both served by trigram indexes (migration 050): a part of the name, any case, or of the slug.
      const pattern = likePattern(q)
      query = query.where((eb) => eb.or([eb(sql`lower(name)`, 'like', pattern), eb('slug', 'like', pattern)]))
    }
    if (status) query = query.where('status', '=', status)
    if (after)
      query = query.where(
        (eb) => eb.refTuple('created_at', 'id'),
        '>',
        (eb) => eb.tuple(String(after[0]), String(after[1])),
      )
    const rows = (await query.execute()) as OrgRow[]
    const page = rows.slice(0, limit)
    const last = page[page.length - 1]
    return c.json(
      {
        items: page.map(orgView),
        nextCursor: rows.length > limit && last ? encodeCursor([new Date(last.created_at).toISOString(), last.id]) : null,
      },
      200,
    )
  })

  app.openapi(getOrg, async (c) => {
    const { id } = c.req.valid('param')
    await consistent(c, deps, ['orgs', 'memberships'])
    const [row, seats] = await Promise.all([
      deps.controlDb
        .selectFrom('control.orgs')
        .select([...ORG_COLUMNS])
        .where('id', '=', id)
        .executeTakeFirst(),
      deps.controlDb
        .selectFrom('control.memberships')
        .select((eb) => eb.fn.countAll<string>().as('n'))
        .where('org_id', '=', id)
        .where('status', '=', 'active')
        .executeTakeFirst(),
    ])
    if (!row) throw notFound('no such org')
    return c.json({ ...orgView(row as OrgRow), seatsInUse: Number(seats?.n ?? 0) }, 200)
  })

  app.openapi(listOperators, async (c) => {
    const { limit, cursor } = c.req.valid('query')
    await consistent(c, deps, ['operators'])
    const after = decodeCursor(cursor, 2)
    let query = deps.controlDb
      .selectFrom('control.operators')
      .select(['account_id', 'granted_by', 'granted_at'])
      .orderBy('granted_at')
      .orderBy('account_id')
      .limit(limit + 1)
    if (after)
      query = query.where(
        (eb) => eb.refTuple('granted_at', 'account_id'),
        '>',
        (eb) => eb.tuple(String(after[0]), String(after[1])),
      )
    const rows = (await query.execute()) as { account_id: string; granted_by: string | null; granted_at: Date | string }[]
    const page = rows.slice(0, limit)
    const last = page[page.length - 1]
    return c.json(
      {
        items: page.map((r) => ({
          accountId: r.account_id,
          grantedBy: r.granted_by,
          grantedAt: new Date(r.granted_at).toISOString(),
        })),
        nextCursor: rows.length > limit && last ? encodeCursor([new Date(last.granted_at).toISOString(), last.account_id]) : null,
      },
      200,
    )
  })

  app.openapi(audit, async (c) => {
    const query = c.req.valid('query')
    const from = query.from ? new Date(query.from) : undefined
    const to = query.to ? new Date(query.to) : undefined
    if (from && to && from > to) throw badRequest('from is after to', [{ path: 'from', message: 'after to' }])
    const resume = decodeCursor(query.cursor, 3)
    let after: AuditResume | undefined
    try {
      after = resume
        ? { position: { transactionId: BigInt(resume[0]!), sequence: BigInt(resume[1]!) }, revision: BigInt(resume[2]!) }
        : undefined
    } catch {
      throw badRequest('cursor is not one this server gave out', [{ path: 'cursor', message: 'invalid cursor' }])
    }
    const types = query.type
      ?.split(',')
      .map((t) => t.trim())
      .filter(Boolean)
    const reader = auditReader(
      deps.store,
      {
        ...(query.tenant ? { tenantId: query.tenant } : {}),
        ...(query.stream ? { stream: query.stream } : {}),
        ...(query.actor ? { actor: query.actor } : {}),
        ...(types?.length ? { types } : {}),
        ...(from ? { from } : {}),
        ...(to ? { to } : {}),
      },
      {
        pageSize: Math.min(1_000, Math.max(100, query.limit * 4)),
        ...(deps.config.EVENT_STORE === 'postgres' ? { tenantIndex: deps.pools.events } : {}),
        ...(after ? { after } : {}),
      },
    )
    const items: RecordedEvent[] = []
    let resumeAt: RecordedEvent | null = null
    let more = false
    for (let scanned = 0; ; ) {
      const page = await reader.next()
      scanned += page.scanned
      const room = query.limit - items.length
      if (page.events.length > room) {
        items.push(...page.events.slice(0, room))
        resumeAt = items[items.length - 1]!
        more = true
        break
      }
      items.push(...page.events)
      resumeAt = page.last ?? resumeAt
      if (page.done) break
      if (items.length === query.limit || scanned >= SCAN_BUDGET) {
        more = true
        break
      }
    }
    return c.json(
      {
        items: items.map((e) => ({
          id: e.id,
          stream: e.streamName,
          type: e.type,
          position: publicPosition(e.position),
          occurredAt: e.metadata.occurredAt,
          tenantId: e.metadata.tenantId,
          actor: { type: e.metadata.actor.type, id: e.metadata.actor.id },
          correlationId: e.metadata.correlationId,
          causationId: e.metadata.causationId ?? null,
          data: auditData(deps, e),
        })),
        nextCursor:
          more && resumeAt
            ? encodeCursor([
                resumeAt.position.transactionId.toString(),
                resumeAt.position.sequence.toString(),
                resumeAt.revision.toString(),
              ])
            : null,
        plan: reader.plan as 'tenant index' | 'stream' | '$all scan',
      },
      200,
    )
  })
  return app
}
