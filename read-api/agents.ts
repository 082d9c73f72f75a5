import { createRoute, z } from '@hono/zod-openapi'
import { inTenant, type TenantTransaction } from '../adapters/tenant-transaction.ts'
import { REASONING_EFFORTS } from '../domain/agents.ts'
import { microsToUsd } from '../domain/usage.ts'
import { consistent } from '../http/consistent-after.ts'
import type { AppDeps } from '../http/context.ts'
import { principalOf } from '../http/principal.ts'
import { notFound } from '../http/problem.ts'
import { router } from '../http/router.ts'
import { consistentAfterQuery, json, problemResponse, Uuid } from '../http/schemas.ts'
import { bearerSecurity } from '../http/tenant-route.ts'
import { decodeCursor, encodeCursor, pageQuery, pageSchema } from './pagination.ts'
import { readableRoom } from './rooms.ts'

/*
 * The org's agents as every user of the org may see them (as GET /api/users lists them to everyone): settings, the
 * current role prompt and its history, and the agent's proposals. Secrets are never shown.
 */

const RolePrompt = z
  .object({ role: z.string(), rules: z.array(z.string()), examples: z.array(z.string()), sources: z.array(z.string()) })
  .openapi('RolePrompt')
const AccessLevel = z.enum(['members', 'admins'])

const Agent = z
  .object({
    id: Uuid,
    name: z.string(),
    username: z.string(),
    createdBy: Uuid,
    model: z.string().nullable().openapi({ description: 'null: the platform’s default model' }),
    reasoningEffort: z.enum(REASONING_EFFORTS).nullable(),
    skillsets: z.array(z.string()).openapi({ description: 'opt-in skillsets; `core` is every agent’s and not listed' }),
    spendLimitUsd: z.number().nullable().openapi({ description: 'as last set by PATCH /api/agents/{id}' }),
    capUsd: z.number().nullable().openapi({
      description: 'the usage context’s cap of scope agent (what spending checks; PATCH and PUT /api/limits set it)',
    }),
    access: z.object({ org: AccessLevel, rooms: z.record(z.string(), z.enum(['members', 'admins', 'none'])) }),
    rolePrompt: RolePrompt,
    rolePromptVersion: z.number().int(),
    openProposalId: Uuid.nullable(),
    createdAt: z.string(),
    updatedAt: z.string(),
  })
  .openapi('Agent')

const RolePromptVersion = z
  .object({
    version: z.number().int(),
    rolePrompt: RolePrompt,
    proposalId: Uuid.nullable().openapi({ description: 'the accepted proposal it came from, if any' }),
    setBy: Uuid,
    createdAt: z.string(),
  })
  .openapi('RolePromptVersion')

const ProposalStatus = z.enum(['open', 'accepted', 'rejected', 'superseded'])
const RolePromptProposal = z
  .object({
    id: Uuid,
    agentId: Uuid,
    basedOnVersion: z.number().int(),
    rolePrompt: RolePrompt,
    comment: z.string().nullable(),
    proposedBy: Uuid,
    status: ProposalStatus,
    decidedBy: Uuid.nullable(),
    decisionComment: z.string().nullable(),
    acceptedVersion: z.number().int().nullable(),
    createdAt: z.string(),
    decidedAt: z.string().nullable(),
  })
  .openapi('RolePromptProposal')

const AllowedTool = z
  .object({
    roomId: Uuid,
    tool: z.string(),
    allowedBy: Uuid,
    allowedAt: z.string(),
  })
  .openapi('AllowedTool')

const routes = {
  list: createRoute({
    method: 'get',
    path: '/api/agents',
    tags: ['agents'],
    summary: 'The org’s agents, oldest first',
    security: bearerSecurity,
    request: { query: z.object({ ...pageQuery, ...consistentAfterQuery }) },
    responses: { 200: json('agents by creation', pageSchema(Agent)) },
  }),
  get: createRoute({
    method: 'get',
    path: '/api/agents/{id}',
    tags: ['agents'],
    summary: 'One agent',
    security: bearerSecurity,
    request: { params: z.object({ id: Uuid }), query: z.object({ ...consistentAfterQuery }) },
    responses: { 200: json('the agent', Agent), 404: problemResponse('no such agent') },
  }),
  versions: createRoute({
    method: 'get',
    path: '/api/agents/{id}/role-prompt/versions',
    tags: ['agents'],
    summary: 'Every version of the agent’s role prompt, newest first',
    security: bearerSecurity,
    request: { params: z.object({ id: Uuid }), query: z.object({ ...pageQuery, ...consistentAfterQuery }) },
    responses: { 200: json('versions', pageSchema(RolePromptVersion)), 404: problemResponse('no such agent') },
  }),
  proposals: createRoute({
    method: 'get',
    path: '/api/agents/{id}/role-prompt/proposals',
    tags: ['agents'],
    summary: 'The agent’s proposals to change its role prompt, newest first',
    security: bearerSecurity,
    request: {
      params: z.object({ id: Uuid }),
      query: z.object({ ...pageQuery, ...consistentAfterQuery, status: ProposalStatus.optional() }),
    },
    responses: { 200: json('proposals', pageSchema(RolePromptProposal)), 404: problemResponse('no such agent') },
  }),
  allowedTools: createRoute({
    method: 'get',
    path: '/api/agents/{id}/allowed-tools',
    tags: ['agents'],
    summary: 'The risky tools the agent runs without asking, per room, in the rooms the caller may read',
    description:
      'Each was allowed by approving a call with `alwaysAllow`; DELETE /api/agents/{id}/allowed-tools/{roomId}/{tool} ' +
      'takes it back. Oldest first; `roomId` narrows to one room.',
    security: bearerSecurity,
    request: {
      params: z.object({ id: Uuid }),
      query: z.object({ ...consistentAfterQuery, roomId: Uuid.optional() }),
    },
    responses: {
      200: json('allowed tools', z.object({ allowedTools: z.array(AllowedTool) })),
      404: problemResponse('no such agent'),
    },
  }),
}

type Row = Record<string, unknown>
const iso = (v: unknown) => new Date(v as string | Date).toISOString()
const isoOrNull = (v: unknown) => (v === null ? null : iso(v))

const toAgent = (r: Row) => ({
  id: r.id as string,
  name: r.name as string,
  username: r.username as string,
  createdBy: r.created_by as string,
  model: r.model as string | null,
  reasoningEffort: r.reasoning_effort as (typeof REASONING_EFFORTS)[number] | null,
  skillsets: JSON.parse(r.skillsets as string) as string[],
  spendLimitUsd: r.spend_limit_usd as number | null,
  capUsd: r.cap_micro_usd === null ? null : microsToUsd(Number(r.cap_micro_usd)),
  access: JSON.parse(r.access as string),
  rolePrompt: JSON.parse(r.role_prompt as string),
  rolePromptVersion: r.role_prompt_version as number,
  openProposalId: r.open_proposal_id as string | null,
  createdAt: iso(r.created_at),
  updatedAt: iso(r.updated_at),
})

/** The agents, with the usage context's cap of each beside them. */
const agentsQuery = (trx: TenantTransaction, tenantId: string) =>
  trx
    .selectFrom('tenant.agents as a')
    .leftJoin('tenant.usage_caps as c', (j) =>
      j.onRef('c.tenant_id', '=', 'a.tenant_id').onRef('c.scope_id', '=', 'a.id').on('c.scope', '=', 'agent'),
    )
    .selectAll('a')
    .select((eb) => eb.cast('c.limit_micro_usd', 'text').as('cap_micro_usd'))
    .where('a.tenant_id', '=', tenantId)

async function agentMustExist(trx: TenantTransaction, tenantId: string, agentId: string): Promise<void> {
  const found = await trx
    .selectFrom('tenant.agents')
    .select('id')
    .where('tenant_id', '=', tenantId)
    .where('id', '=', agentId)
    .executeTakeFirst()
  if (!found) throw notFound('no such agent')
}

export function agentsQueries(deps: AppDeps) {
  const app = router()
  app.openapi(routes.list, async (c) => {
    const me = principalOf(c)
    const { limit, cursor } = c.req.valid('query')
    await consistent(c, deps, ['agents', 'usage'])
    const after = decodeCursor(cursor, 2)
    const rows = (await inTenant(deps.db, me, (trx) => {
      let q = agentsQuery(trx, me.tenantId)
        .orderBy('a.created_at')
        .orderBy('a.id')
        .limit(limit + 1)
      if (after)
        q = q.where(
          (eb) => eb.refTuple('a.created_at', 'a.id'),
          '>',
          (eb) => eb.tuple(String(after[0]), String(after[1])),
        )
      return q.execute()
    })) as Row[]
    const page = rows.slice(0, limit)
    const last = page.at(-1)
    return c.json(
      {
        items: page.map(toAgent),
        nextCursor: rows.length > limit && last ? encodeCursor([iso(last.created_at), last.id as string]) : null,
      },
      200,
    )
  })

  app.openapi(routes.get, async (c) => {
    const me = principalOf(c)
    const { id } = c.req.valid('param')
    await consistent(c, deps, ['agents', 'usage'])
    const row = (await inTenant(deps.db, me, (trx) => agentsQuery(trx, me.tenantId).where('a.id', '=', id).executeTakeFirst())) as
      | Row
      | undefined
    if (!row) throw notFound('no such agent')
    return c.json(toAgent(row), 200)
  })

  app.openapi(routes.versions, async (c) => {
    const me = principalOf(c)
    const { id } = c.req.valid('param')
    const { limit, cursor } = c.req.valid('query')
    await consistent(c, deps, ['agents'])
    const after = decodeCursor(cursor, 1)
    const rows = (await inTenant(deps.db, me, async (trx) => {
      await agentMustExist(trx, me.tenantId, id)
      let q = trx
        .selectFrom('tenant.agent_role_prompt_versions')
        .selectAll()
        .where('tenant_id', '=', me.tenantId)
        .where('agent_id', '=', id)
        .orderBy('version', 'desc')
        .limit(limit + 1)
      if (after) q = q.where('version', '<', Number(after[0]))
      return q.execute()
    })) as Row[]
    const page = rows.slice(0, limit)
    const last = page.at(-1)
    return c.json(
      {
        items: page.map((r) => ({
          version: r.version as number,
          rolePrompt: JSON.parse(r.role_prompt as string),
          proposalId: r.proposal_id as string | null,
          setBy: r.set_by as string,
          createdAt: iso(r.created_at),
        })),
        nextCursor: rows.length > limit && last ? encodeCursor([last.version as number]) : null,
      },
      200,
    )
  })

  app.openapi(routes.proposals, async (c) => {
    const me = principalOf(c)
    const { id } = c.req.valid('param')
    const { limit, cursor, status } = c.req.valid('query')
    await consistent(c, deps, ['agents'])
    const after = decodeCursor(cursor, 2)
    const rows = (await inTenant(deps.db, me, async (trx) => {
      await agentMustExist(trx, me.tenantId, id)
      let q = trx
        .selectFrom('tenant.agent_role_prompt_proposals')
        .selectAll()
        .where('tenant_id', '=', me.tenantId)
        .where('agent_id', '=', id)
        .orderBy('created_at', 'desc')
        .orderBy('id', 'desc')
        .limit(limit + 1)
      if (status) q = q.where('status', '=', status)
      if (after)
        q = q.where(
          (eb) => eb.refTuple('created_at', 'id'),
          '<',
          (eb) => eb.tuple(String(after[0]), String(after[1])),
        )
      return q.execute()
    })) as Row[]
    const page = rows.slice(0, limit)
    const last = page.at(-1)
    return c.json(
      {
        items: page.map((r) => ({
          id: r.id as string,
          agentId: r.agent_id as string,
          basedOnVersion: r.based_on_version as number,
          rolePrompt: JSON.parse(r.role_prompt as string),
          comment: r.comment as string | null,
          proposedBy: r.proposed_by as string,
          status: r.status as z.infer<typeof ProposalStatus>,
          decidedBy: r.decided_by as string | null,
          decisionComment: r.decision_comment as string | null,
          acceptedVersion: r.accepted_version as number | null,
          createdAt: iso(r.created_at),
          decidedAt: isoOrNull(r.decided_at),
        })),
        nextCursor: rows.length > limit && last ? encodeCursor([iso(last.created_at), last.id as string]) : null,
      },
      200,
    )
  })

  app.openapi(routes.allowedTools, async (c) => {
    const me = principalOf(c)
    const { id } = c.req.valid('param')
    const { roomId } = c.req.valid('query')
    await consistent(c, deps, ['agents'])
    const rows = await inTenant(deps.db, me, async (trx) => {
      await agentMustExist(trx, me.tenantId, id)
      let q = trx
        .selectFrom('tenant.agent_allowed_tools as t')
        .innerJoin('tenant.rooms as r', (j) => j.onRef('r.tenant_id', '=', 't.tenant_id').onRef('r.id', '=', 't.room_id'))
        .select(['t.room_id', 't.tool', 't.allowed_by', 't.allowed_at'])
        .where('t.tenant_id', '=', me.tenantId)
        .where('t.agent_id', '=', id)
        .where(readableRoom(me))
        .orderBy('t.allowed_at')
        .orderBy('t.room_id')
        .orderBy('t.tool')
      if (roomId) q = q.where('t.room_id', '=', roomId)
      return q.execute()
    })
    return c.json(
      {
        allowedTools: (rows as Row[]).map((r) => ({
          roomId: r.room_id as string,
          tool: r.tool as string,
          allowedBy: r.allowed_by as string,
          allowedAt: iso(r.allowed_at),
        })),
      },
      200,
    )
  })
  return app
}
