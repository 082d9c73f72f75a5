import { createRoute, z } from '@hono/zod-openapi'
import { type ExpressionBuilder, sql } from 'kysely'
import { inTenant, type TenantTransaction } from '../adapters/tenant-transaction.ts'
import { ARTIFACT_KINDS } from '../domain/artifacts.ts'
import { consistent } from '../http/consistent-after.ts'
import type { AppDeps } from '../http/context.ts'
import { type Principal, principalOf } from '../http/principal.ts'
import { notFound } from '../http/problem.ts'
import { router } from '../http/router.ts'
import { consistentAfterQuery, json, Uuid } from '../http/schemas.ts'
import { bearerSecurity } from '../http/tenant-route.ts'
import { decodeCursor, encodeCursor, pageQuery, pageSchema } from './pagination.ts'
import { readableRoom } from './rooms.ts'

// biome-ignore lint/suspicious/noExplicitAny: conditions over aliased read-model tables
type Eb = ExpressionBuilder<any, any>

/** Reading an artifact takes reading its room or its task: those read models answer too. */
const ARTIFACT_PROJECTIONS = ['artifacts', 'rooms', 'tasks'] as const

/**
 * Who reads an artifact (domain/artifacts.ts): whoever may read its room, and, while its task lives, the task's
 * people (reporter, assignee, assistants, watchers), who read the task whatever room it is in. A deleted task has
 * no row: its artifacts are its room's.
 */
const readableArtifact = (me: Principal) => (eb: Eb) =>
  eb.or([
    readableRoom(me)(eb),
    sql<boolean>`(a.task_id is not null and exists (select 1 from tenant.tasks t
        where t.tenant_id = a.tenant_id and t.id = a.task_id
          and (t.reporter_id = ${me.userId} or t.assignee_id = ${me.userId}
               or exists (select 1 from tenant.task_people p
                           where p.tenant_id = t.tenant_id and p.task_id = t.id and p.user_id = ${me.userId}))))`,
  ])

const ArtifactSummary = z
  .object({
    id: Uuid,
    kind: z.enum(ARTIFACT_KINDS),
    title: z.string(),
    roomId: Uuid,
    taskId: Uuid.nullable(),
    runId: Uuid.nullable(),
    fileId: Uuid.nullable(),
    url: z.string().nullable(),
    version: z.number().int().positive(),
    size: z.number().int().nullable().openapi({ description: 'bytes of the current content (a patch or a report)' }),
    createdBy: z.string().openapi({ description: 'a user’s or an agent’s id; for createdByType system, the processor’s name' }),
    createdByType: z.enum(['user', 'agent', 'system']),
    createdAt: z.string(),
    updatedAt: z.string(),
  })
  .openapi('ArtifactSummary')

const Artifact = ArtifactSummary.extend({
  content: z.string().nullable().openapi({ description: 'the text of the version asked for (the current one by default)' }),
  contentVersion: z.number().int().positive().nullable().openapi({ description: 'the version `content` is' }),
}).openapi('Artifact')

const list = createRoute({
  method: 'get',
  path: '/api/artifacts',
  tags: ['artifacts'],
  summary: 'Artifacts of the rooms the caller can read, newest first; by room, task or kind',
  description: 'Items leave out the content: read one artifact for it.',
  security: bearerSecurity,
  request: {
    query: z.object({
      roomId: Uuid.optional(),
      taskId: Uuid.optional(),
      kind: z.enum(ARTIFACT_KINDS).optional(),
      ...pageQuery,
      ...consistentAfterQuery,
    }),
  },
  responses: { 200: json('artifacts, newest first', pageSchema(ArtifactSummary)) },
})

const get = createRoute({
  method: 'get',
  path: '/api/artifacts/{id}',
  tags: ['artifacts'],
  summary: 'One artifact with its content (the current version, or `version`)',
  security: bearerSecurity,
  request: {
    params: z.object({ id: Uuid }),
    query: z.object({ version: z.coerce.number().int().positive().max(2_147_483_647).optional(), ...consistentAfterQuery }),
  },
  responses: { 200: json('the artifact', Artifact) },
})

type ArtifactRow = {
  id: string
  kind: (typeof ARTIFACT_KINDS)[number]
  title: string
  room_id: string
  task_id: string | null
  run_id: string | null
  file_id: string | null
  url: string | null
  version: number
  size: number | null
  created_by: string
  created_by_type: 'user' | 'agent' | 'system'
  created_at: Date
  updated_at: Date
}

const toSummary = (a: ArtifactRow) => ({
  id: a.id,
  kind: a.kind,
  title: a.title,
  roomId: a.room_id,
  taskId: a.task_id,
  runId: a.run_id,
  fileId: a.file_id,
  url: a.url,
  version: a.version,
  size: a.size,
  createdBy: a.created_by,
  createdByType: a.created_by_type,
  createdAt: new Date(a.created_at).toISOString(),
  updatedAt: new Date(a.updated_at).toISOString(),
})

/** The artifacts of rooms the principal may read, with the size of their current content. */
const readable = (trx: TenantTransaction, me: Principal) =>
  trx
    .selectFrom('tenant.artifacts as a')
    .innerJoin('tenant.rooms as r', (j) => j.onRef('r.tenant_id', '=', 'a.tenant_id').onRef('r.id', '=', 'a.room_id'))
    .leftJoin('tenant.artifact_versions as v', (j) =>
      j.onRef('v.tenant_id', '=', 'a.tenant_id').onRef('v.artifact_id', '=', 'a.id').onRef('v.version', '=', 'a.version'),
    )
    .select([
      'a.id',
      'a.kind',
      'a.title',
      'a.room_id',
      'a.task_id',
      'a.run_id',
      'a.file_id',
      'a.url',
      'a.version',
      // The raw size, from the stored value's header: no large text is read to count it.
      sql<number | null>`octet_length(v.content)`.as('size'),
      'a.created_by',
      'a.created_by_type',
      'a.created_at',
      'a.updated_at',
    ])
    .where('a.tenant_id', '=', me.tenantId)
    .where(readableArtifact(me))

export function artifactsQueries(deps: AppDeps) {
  const app = router()

  app.openapi(list, async (c) => {
    const me = principalOf(c)
    const { roomId, taskId, kind, limit, cursor } = c.req.valid('query')
    await consistent(c, deps, ARTIFACT_PROJECTIONS)
    const after = decodeCursor(cursor, 2)
    const rows: ArtifactRow[] = await inTenant(deps.db, me, (trx) => {
      let q = readable(trx, me)
        .orderBy('a.created_at', 'desc')
        .orderBy('a.id', 'desc')
        .limit(limit + 1)
      if (roomId) q = q.where('a.room_id', '=', roomId)
      if (taskId) q = q.where('a.task_id', '=', taskId)
      if (kind) q = q.where('a.kind', '=', kind)
      if (after) q = q.where(sql<boolean>`(a.created_at, a.id) < (${String(after[0])}::timestamptz, ${String(after[1])}::uuid)`)
      return q.execute()
    })
    const page = rows.slice(0, limit)
    const last = page.at(-1)
    return c.json(
      {
        items: page.map(toSummary),
        nextCursor: rows.length > limit && last ? encodeCursor([new Date(last.created_at).toISOString(), last.id]) : null,
      },
      200,
    )
  })

  app.openapi(get, async (c) => {
    const me = principalOf(c)
    const { id } = c.req.valid('param')
    const { version } = c.req.valid('query')
    await consistent(c, deps, ARTIFACT_PROJECTIONS)
    const found = await inTenant(deps.db, me, async (trx) => {
      const row: ArtifactRow | undefined = await readable(trx, me).where('a.id', '=', id).executeTakeFirst()
      if (!row) return null
      const text: { content: string; version: number } | undefined = await trx
        .selectFrom('tenant.artifact_versions')
        .select(['content', 'version'])
        .where('tenant_id', '=', me.tenantId)
        .where('artifact_id', '=', id)
        .where('version', '=', version ?? row.version)
        .executeTakeFirst()
      return { row, text }
    })
    if (!found) throw notFound('no such artifact')
    if (version !== undefined && !found.text) throw notFound('no such version of this artifact')
    return c.json(
      { ...toSummary(found.row), content: found.text?.content ?? null, contentVersion: found.text?.version ?? null },
      200,
    )
  })

  return app
}
