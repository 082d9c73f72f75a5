import { createRoute, z } from '@hono/zod-openapi'
import { type RawBuilder, sql } from 'kysely'
import { inTenant } from '../adapters/tenant-transaction.ts'
import { foldRecorded } from '../domain/decider.ts'
import { BYTES_PER_GB, MINUTES_PER_MONTH, microsToUsd, prices, pricesStream } from '../domain/usage.ts'
import { consistent } from '../http/consistent-after.ts'
import type { AppDeps } from '../http/context.ts'
import { requireOperator } from '../http/operator.ts'
import { atLeast, type Principal, principalOf, requireRole } from '../http/principal.ts'
import { badRequest } from '../http/problem.ts'
import { router } from '../http/router.ts'
import { consistentAfterQuery, json, problemResponse } from '../http/schemas.ts'
import { bearerSecurity } from '../http/tenant-route.ts'

/*
 * Usage and limits are the org's money: admins and owners read them (members and guests get 403). Sums come from
 * tenant.usage_records (one row per record, integer micro-USD), turned into USD at the edge.
 */

const Metrics = z
  .object({
    costUsd: z.number(),
    billedUsd: z.number(),
    inputTokens: z.number(),
    cachedInputTokens: z.number(),
    outputTokens: z.number(),
    vmMinutes: z.number(),
    diskGbMonths: z.number(),
    storageGbMonths: z.number(),
  })
  .openapi('UsageMetrics')

const Grouped = Metrics.extend({ id: z.string().nullable() })

const Usage = z
  .object({
    window: z.enum(['12h', '7d']).nullable(),
    from: z.string(),
    to: z.string(),
    bucketSeconds: z.number(),
    groupBy: z.enum(['room', 'agent', 'task', 'vm']).nullable(),
    totals: Metrics,
    groups: z.array(Grouped),
    series: z.array(z.object({ start: z.string(), totals: Metrics, groups: z.array(Grouped) })),
    models: z.array(Metrics.extend({ model: z.string() })),
    vms: z.array(
      z.object({
        vmId: z.string(),
        size: z.string().nullable(),
        minutes: z.number(),
        diskGbMonths: z.number(),
        costUsd: z.number(),
      }),
    ),
  })
  .openapi('Usage')

const getUsage = createRoute({
  method: 'get',
  path: '/api/usage',
  tags: ['usage'],
  summary: 'The org’s usage over a window: totals, series, groups, models and VMs (admins)',
  description:
    'window 12h (hourly buckets, the default) or 7d (6-hourly); or from (and to, now by default) instead, at most 31 days: ' +
    'hourly up to 48 hours, else 6-hourly, widened to whole buckets. groupBy room, agent, task or vm splits each bucket ' +
    'and the totals; the id null gathers what is attributed to none.',
  security: bearerSecurity,
  request: {
    query: z.object({
      window: z.enum(['12h', '7d']).optional(),
      from: z.iso.datetime({ offset: true }).optional(),
      to: z.iso.datetime({ offset: true }).optional(),
      groupBy: z.enum(['room', 'agent', 'task', 'vm']).optional(),
      ...consistentAfterQuery,
    }),
  },
  responses: { 200: json('usage', Usage), 403: problemResponse('admins only') },
})

const Limit = z
  .object({
    scope: z.enum(['org', 'agent', 'room', 'task']),
    scopeId: z.string(),
    limitUsd: z.number().nullable(),
    usedUsd: z.number(),
  })
  .openapi('Limit')

const getLimits = createRoute({
  method: 'get',
  path: '/api/limits',
  tags: ['usage'],
  summary: 'The org’s monthly caps and what is spent of each this month',
  description:
    'For admins and owners: the org’s ceiling first (limitUsd null: none), then each agent, room and task cap. For members and guests: ' +
    'the caps of the rooms and tasks they may read. usedUsd is what was recorded this UTC month; budget reserved by calls in flight is not in it.',
  security: bearerSecurity,
  request: { query: z.object({ ...consistentAfterQuery }) },
  responses: {
    200: json('caps', z.object({ month: z.string(), items: z.array(Limit), nextCursor: z.null() })),
  },
})

const ModelPrice = z.object({ inputPerMTokUsd: z.number(), cachedInputPerMTokUsd: z.number(), outputPerMTokUsd: z.number() })
const getPrices = createRoute({
  method: 'get',
  path: '/control/prices',
  tags: ['control', 'usage'],
  summary: 'The price table (operators)',
  security: [{ operator: [] }],
  responses: {
    200: json(
      'prices (empty until set)',
      z.object({
        models: z.record(z.string(), ModelPrice),
        vmMinuteUsd: z.record(z.string(), z.number()),
        diskGbMonthUsd: z.number(),
        storageGbMonthUsd: z.number(),
      }),
    ),
  },
})

type Sums = {
  cost: string | null
  billed: string | null
  input_tokens: string | null
  cached_input_tokens: string | null
  output_tokens: string | null
  vm_minutes: string | null
  disk_byte_minutes: string | null
  storage_byte_minutes: string | null
}

const GB_MONTH = BYTES_PER_GB * MINUTES_PER_MONTH
const sums = sql`
  coalesce(sum(cost_micro_usd), 0)::text as cost, coalesce(sum(billed_micro_usd), 0)::text as billed,
  coalesce(sum(input_tokens), 0)::text as input_tokens, coalesce(sum(cached_input_tokens), 0)::text as cached_input_tokens,
  coalesce(sum(output_tokens), 0)::text as output_tokens, coalesce(sum(vm_minutes), 0)::text as vm_minutes,
  coalesce(sum(bytes::numeric * minutes) filter (where kind = 'vm_disk'), 0)::text as disk_byte_minutes,
  coalesce(sum(bytes::numeric * minutes) filter (where kind = 'storage'), 0)::text as storage_byte_minutes`

const metricsOf = (r: Sums | undefined) => ({
  costUsd: microsToUsd(Number(r?.cost ?? 0)),
  billedUsd: microsToUsd(Number(r?.billed ?? 0)),
  inputTokens: Number(r?.input_tokens ?? 0),
  cachedInputTokens: Number(r?.cached_input_tokens ?? 0),
  outputTokens: Number(r?.output_tokens ?? 0),
  vmMinutes: Number(r?.vm_minutes ?? 0),
  diskGbMonths: Number(r?.disk_byte_minutes ?? 0) / GB_MONTH,
  storageGbMonths: Number(r?.storage_byte_minutes ?? 0) / GB_MONTH,
})

const groupColumn = { room: 'room_id', agent: 'agent_id', task: 'task_id', vm: 'vm_id' } as const

const WINDOWS = { '12h': { buckets: 12, seconds: 3600 }, '7d': { buckets: 28, seconds: 6 * 3600 } } as const
const HOUR = 3600
const MAX_HOURLY_SPAN_MS = 48 * HOUR * 1000
const MAX_SPAN_MS = 31 * 24 * HOUR * 1000

/**
 * The buckets a query covers, whole ones so that a chart's bars are comparable: a window ends with the bucket now is
 * in; from/to are widened to the buckets they fall in.
 */
function spanOf(q: { window?: '12h' | '7d'; from?: string; to?: string }, now: number) {
  if (!q.from) {
    const { buckets, seconds } = WINDOWS[q.window ?? '12h']
    const end = (Math.floor(now / 1000 / seconds) + 1) * seconds * 1000
    return { buckets, seconds, from: new Date(end - buckets * seconds * 1000), to: new Date(end) }
  }
  const start = Date.parse(q.from)
  const stop = q.to ? Date.parse(q.to) : now
  if (stop <= start) throw badRequest('to comes after from', [{ path: 'to', message: 'not after from' }])
  if (stop - start > MAX_SPAN_MS)
    throw badRequest('at most 31 days at once', [{ path: 'from', message: 'more than 31 days before to' }])
  const seconds = stop - start <= MAX_HOURLY_SPAN_MS ? HOUR : 6 * HOUR
  const first = Math.floor(start / 1000 / seconds)
  const last = Math.ceil(stop / 1000 / seconds)
  return { buckets: last - first, seconds, from: new Date(first * seconds * 1000), to: new Date(last * seconds * 1000) }
}

/**
 * The caps a member or guest sees: those of the rooms they may read (members; anyone but guests in a public room
 * that is not a DM) and of the tasks they may read (the task's room, or being its reporter, assignee, assistant or
 * watcher), as domain/rooms.ts canRead and domain/tasks.ts canReadTask decide. The realtime fan-out tells the same
 * people of changes to them.
 */
const capsOfWhatTheyRead = (me: Principal) => {
  const readsRoom = (room: RawBuilder<unknown>) => sql`(
    exists (select 1 from tenant.room_members rm where rm.tenant_id = c.tenant_id and rm.room_id = ${room} and rm.member_id = ${me.userId})
    or (${me.role !== 'guest'}::boolean and exists (select 1 from tenant.rooms r
          where r.tenant_id = c.tenant_id and r.id = ${room} and r.visibility = 'public' and r.kind = 'room')))`
  return sql<boolean>`(
    (c.scope = 'room' and ${readsRoom(sql`c.scope_id`)})
    or (c.scope = 'task' and exists (select 1 from tenant.tasks t where t.tenant_id = c.tenant_id and t.id = c.scope_id and (
          ${readsRoom(sql`t.room_id`)} or t.reporter_id = ${me.userId} or t.assignee_id = ${me.userId}
          or exists (select 1 from tenant.task_people p where p.tenant_id = t.tenant_id and p.task_id = t.id and p.user_id = ${me.userId})))))`
}

export function usageQueries(deps: AppDeps) {
  const app = router()
  app.use('/control/prices', requireOperator(deps))

  app.openapi(getUsage, async (c) => {
    const me = principalOf(c)
    requireRole(me, 'admin')
    const query = c.req.valid('query')
    const { groupBy } = query
    const span = spanOf(query, Date.now())
    const window = query.from ? null : (query.window ?? '12h')
    await consistent(c, deps, ['usage'])
    const { buckets, seconds, from, to } = span
    const group = groupBy ? sql.ref(groupColumn[groupBy]) : sql`null`
    const bucket = sql`floor(extract(epoch from at) / ${seconds})::bigint`
    const inWindow = sql`tenant_id = ${me.tenantId} and at >= ${from} and at < ${to}`
    const { rows, models, vms } = await inTenant(deps.db, me, async (trx) => ({
      rows: (
        await sql<Sums & { bucket: string; id: string | null }>`
          select ${bucket}::text as bucket, ${group}::text as id, ${sums}
            from tenant.usage_records where ${inWindow} group by 1, 2`.execute(trx)
      ).rows,
      models: (
        await sql<Sums & { model: string }>`
          select model, ${sums} from tenant.usage_records where ${inWindow} and kind = 'llm' group by model order by model`.execute(
          trx,
        )
      ).rows,
      vms: (
        await sql<Sums & { vm_id: string; size: string | null }>`
          select vm_id::text, max(vm_size) as size, ${sums} from tenant.usage_records
           where ${inWindow} and vm_id is not null group by vm_id order by vm_id`.execute(trx)
      ).rows,
    }))
    const add = (a: Sums | undefined, b: Sums): Sums => {
      if (!a) return { ...b }
      const out = { ...a }
      for (const k of Object.keys(b) as (keyof Sums)[]) out[k] = (BigInt(a[k] ?? 0) + BigInt(b[k] ?? 0)).toString()
      return out
    }
    let total: Sums | undefined
    const byGroup = new Map<string | null, Sums>()
    const byBucket = new Map<number, { total?: Sums; groups: Map<string | null, Sums> }>()
    for (const r of rows) {
      const sumsOf: Sums = {
        cost: r.cost,
        billed: r.billed,
        input_tokens: r.input_tokens,
        cached_input_tokens: r.cached_input_tokens,
        output_tokens: r.output_tokens,
        vm_minutes: r.vm_minutes,
        disk_byte_minutes: r.disk_byte_minutes,
        storage_byte_minutes: r.storage_byte_minutes,
      }
      total = add(total, sumsOf)
      byGroup.set(r.id, add(byGroup.get(r.id), sumsOf))
      const b: { total?: Sums; groups: Map<string | null, Sums> } = byBucket.get(Number(r.bucket)) ?? { groups: new Map() }
      b.total = add(b.total, sumsOf)
      b.groups.set(r.id, add(b.groups.get(r.id), sumsOf))
      byBucket.set(Number(r.bucket), b)
    }
    const grouped = (m: Map<string | null, Sums>) =>
      groupBy ? [...m].sort(([a], [b]) => String(a).localeCompare(String(b))).map(([id, s]) => ({ id, ...metricsOf(s) })) : []
    const first = from.getTime() / 1000 / seconds
    return c.json(
      {
        window,
        from: from.toISOString(),
        to: to.toISOString(),
        bucketSeconds: seconds,
        groupBy: groupBy ?? null,
        totals: metricsOf(total),
        groups: grouped(byGroup),
        series: Array.from({ length: buckets }, (_, i) => {
          const b = byBucket.get(first + i)
          return {
            start: new Date((first + i) * seconds * 1000).toISOString(),
            totals: metricsOf(b?.total),
            groups: grouped(b?.groups ?? new Map()),
          }
        }),
        models: models.map((m) => ({ model: m.model, ...metricsOf(m) })),
        vms: vms.map((v) => {
          const m = metricsOf(v)
          return { vmId: v.vm_id, size: v.size, minutes: m.vmMinutes, diskGbMonths: m.diskGbMonths, costUsd: m.costUsd }
        }),
      },
      200,
    )
  })

  app.openapi(getLimits, async (c) => {
    const me = principalOf(c)
    const admin = atLeast(me, 'admin')
    // Who reads a room or a task is decided on the rooms' and tasks' read models too.
    await consistent(c, deps, admin ? ['usage'] : ['usage', 'rooms', 'tasks'])
    const now = new Date()
    const month = now.toISOString().slice(0, 7)
    const monthStart = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), 1))
    const { caps, spent } = await inTenant(deps.db, me, async (trx) => ({
      caps: (
        await sql<{ scope: 'org' | 'agent' | 'room' | 'task'; scope_id: string; limit_micro_usd: string }>`
          select scope, scope_id::text, limit_micro_usd::text from tenant.usage_caps c
           where tenant_id = ${me.tenantId} and ${admin ? sql`true` : capsOfWhatTheyRead(me)}
           order by scope, scope_id`.execute(trx)
      ).rows,
      // One pass: the org's total and each agent's, room's and task's.
      spent: (
        await sql<{ agent_id: string | null; room_id: string | null; task_id: string | null; g: number; cost: string }>`
          select agent_id::text, room_id::text, task_id::text, grouping(agent_id, room_id, task_id) as g,
                 sum(cost_micro_usd)::text as cost
            from tenant.usage_records where tenant_id = ${me.tenantId} and at >= ${monthStart}
           group by grouping sets ((), (agent_id), (room_id), (task_id))`.execute(trx)
      ).rows,
    }))
    const used = new Map<string, number>()
    for (const r of spent) {
      // grouping() sets a bit for each column left out: 7 none kept (the org), 3 agent, 5 room, 6 task.
      const key = r.g === 7 ? 'org' : r.g === 3 ? `agent:${r.agent_id}` : r.g === 5 ? `room:${r.room_id}` : `task:${r.task_id}`
      used.set(key, Number(r.cost))
    }
    const orgCap = caps.find((x) => x.scope === 'org')
    const items = [
      ...(admin
        ? [
            {
              scope: 'org' as const,
              scopeId: me.tenantId,
              limitUsd: orgCap ? microsToUsd(Number(orgCap.limit_micro_usd)) : null,
              usedUsd: microsToUsd(used.get('org') ?? 0),
            },
          ]
        : []),
      ...caps
        .filter((x) => x.scope !== 'org')
        .map((x) => ({
          scope: x.scope,
          scopeId: x.scope_id,
          limitUsd: microsToUsd(Number(x.limit_micro_usd)),
          usedUsd: microsToUsd(used.get(`${x.scope}:${x.scope_id}`) ?? 0),
        })),
    ]
    return c.json({ month, items, nextCursor: null }, 200)
  })

  app.openapi(getPrices, async (c) => {
    // The platform's price table is one small stream that moves when operators edit it: folded on read, it needs no read model.
    const table = foldRecorded(prices, await deps.store.readStream(pricesStream)).prices
    const usd = microsToUsd
    return c.json(
      {
        models: Object.fromEntries(
          Object.entries(table?.models ?? {}).map(([m, p]) => [
            m,
            {
              inputPerMTokUsd: usd(p.inputPerMTokMicros),
              cachedInputPerMTokUsd: usd(p.cachedInputPerMTokMicros),
              outputPerMTokUsd: usd(p.outputPerMTokMicros),
            },
          ]),
        ),
        vmMinuteUsd: Object.fromEntries(Object.entries(table?.vmMinuteMicros ?? {}).map(([s, p]) => [s, usd(p)])),
        diskGbMonthUsd: usd(table?.diskGbMonthMicros ?? 0),
        storageGbMonthUsd: usd(table?.storageGbMonthMicros ?? 0),
      },
      200,
    )
  })
  return app
}
