import { createRoute, z } from '@hono/zod-openapi'
import { type AgentCredential, AgentCredentialError, verifyAgentCredential } from '../adapters/agent-credentials.ts'
import { comparePositions, type Position as StorePosition, streamName } from '../adapters/event-store.ts'
import type { IdentityDeps } from '../adapters/identity.ts'
import { generateToken } from '../adapters/opaque-tokens.ts'
import { agentStream, orgStream } from '../adapters/streams.ts'
import {
  type AgentActor,
  type AgentSettings,
  agent,
  liveSecrets,
  MAX_SECRET_GRACE_SECONDS,
  mustBeAllowedModel,
  REASONING_EFFORTS,
  ROLE_MAX,
  ROLE_PROMPT_ITEM_MAX,
  ROLE_PROMPT_ITEMS_MAX,
  type RolePrompt,
  rolePromptOf,
  SKILLSETS,
} from '../domain/agents.ts'
import { DomainError, foldRecorded } from '../domain/decider.ts'
import { type OrgState, org, USERNAME } from '../domain/orgs.ts'
import { canRead, room } from '../domain/rooms.ts'
import { usdToMicros } from '../domain/usage.ts'
import type { AppDeps } from '../http/context.ts'
import type { Principal } from '../http/principal.ts'
import { actorOf, atLeast, principalOf, requireRole } from '../http/principal.ts'
import { unauthorized } from '../http/problem.ts'
import { router } from '../http/router.ts'
import { ClientChosenId, json, jsonBody, Position, problemResponse, Uuid } from '../http/schemas.ts'
import { bearerSecurity, positionOf } from '../http/tenant-route.ts'
import { commandContext, pipelineDeps } from './command-context.ts'
import { joinOrg, reserveUsername } from './orgs.ts'
import { type CommandContext, type DecisionReader, handleCommand, type PipelineDeps, readTenantStream } from './pipeline.ts'
import { roomStream } from './rooms.ts'
import { changeCap } from './usage.ts'

export { agentStream }

/** A username from an agent's name: lowercase letters, digits and dashes. */
export const usernameFromName = (name: string) =>
  name
    .normalize('NFKD')
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 40)
    .replace(/-+$/, '')

export async function loadAgent(deps: PipelineDeps, agentId: string) {
  const events = await deps.store.readStream(agentStream(agentId))
  const state = foldRecorded(agent, events)
  return { state, tenantId: events[0]?.metadata.tenantId ?? null }
}

/**
 * Checks an agent's signed credential (HMAC of `agentId.timestamp` with one of its live secrets, within
 * the replay window, used once) and returns the org it belongs to. Every refusal is the same 401.
 */
export async function verifyAgentLogin(deps: PipelineDeps & IdentityDeps, credential: AgentCredential, now: Date) {
  const refused = () => unauthorized('the agent credential is invalid, stale or used')
  if (!z.uuid().safeParse(credential.agentId).success) throw refused()
  const { state, tenantId } = await loadAgent(deps, credential.agentId)
  const sealer = deps.identity.keys.sealer
  const secrets = liveSecrets(state, now).flatMap((s) => {
    const secret = sealer.open(s.sealedSecret, credential.agentId)
    return secret ? [secret] : []
  })
  try {
    await verifyAgentCredential(credential, secrets, { replayCache: deps.identity.replayCache, nowMs: now.getTime() })
  } catch (e) {
    if (e instanceof AgentCredentialError) throw refused()
    throw e
  }
  if (!tenantId) throw refused()
  return { agentId: credential.agentId, tenantId }
}

/** An actor as the agents decider sees it: whether a person or an agent, and the org role. */
export const agentActorOf = (p: Principal): AgentActor => ({ userId: p.userId, role: p.role, type: p.type })

const ROLE_PROMPT_ITEMS = z.array(z.string().max(ROLE_PROMPT_ITEM_MAX)).max(ROLE_PROMPT_ITEMS_MAX).default([])
/** A role prompt: structured, or plain text (all of it the role, as the first API took it). */
const RolePromptInput = z
  .union([
    z.string().max(ROLE_MAX),
    z.object({
      role: z.string().max(ROLE_MAX).default(''),
      rules: ROLE_PROMPT_ITEMS,
      examples: ROLE_PROMPT_ITEMS,
      sources: ROLE_PROMPT_ITEMS,
    }),
  ])
  .openapi('RolePromptInput')
const rolePromptFrom = (input: z.infer<typeof RolePromptInput>): RolePrompt =>
  typeof input === 'string' ? rolePromptOf(input) : input

const AccessLevel = z.enum(['members', 'admins'])
const AgentAccessInput = z.object({
  org: AccessLevel,
  rooms: z
    .record(Uuid, z.enum(['members', 'admins', 'none']))
    .refine((r) => Object.keys(r).length <= 200, 'at most 200 rooms')
    .default({}),
})

const allowedModelsIn = (s: OrgState): readonly string[] | null =>
  s.status === 'none' ? null : (s.llmPolicy?.allowedModels ?? null)
const allowedModelsOf = async (deps: PipelineDeps, orgId: string) =>
  allowedModelsIn(foldRecorded(org, await readTenantStream(deps.store, orgStream(orgId), orgId)))

/**
 * Changes an agent's settings. The model is checked against the org's LLM policy and the rooms named in its access
 * must be the org's; both are read as the decision's conditions. A spend limit also sets the usage context's cap of
 * the agent (what reservations check), after the agent's own decision is known to pass.
 */
export async function configureAgent(
  deps: PipelineDeps,
  ctx: CommandContext & { tenantId: string },
  input: { agentId: string; settings: AgentSettings; actor: AgentActor },
) {
  const at = ctx.now().toISOString()
  const command = async (_s: unknown, read: DecisionReader) => {
    const orgState = await read(org, orgStream(ctx.tenantId))
    for (const roomId of Object.keys(input.settings.access?.rooms ?? {})) {
      if (!(await read(room, roomStream(roomId))).exists)
        throw new DomainError('ROOM_NOT_FOUND', `no such room: ${roomId}`, 'not_found')
    }
    return {
      type: 'configure' as const,
      agentId: input.agentId,
      settings: input.settings,
      allowedModels: allowedModelsIn(orgState),
      actor: input.actor,
      at,
    }
  }
  let capPosition: StorePosition | null = null
  const usd = input.settings.spendLimitUsd
  if (usd !== undefined) {
    // Decided first without appending, so a refused change of the agent does not leave a changed cap behind.
    const recorded = await readTenantStream(deps.store, agentStream(input.agentId), ctx.tenantId)
    agent.decide(
      {
        type: 'configure',
        agentId: input.agentId,
        settings: input.settings,
        allowedModels: await allowedModelsOf(deps, ctx.tenantId),
        actor: input.actor,
        at,
      },
      foldRecorded(agent, recorded),
    )
    const cap = await changeCap(deps, ctx, {
      type: 'set',
      orgId: ctx.tenantId,
      scope: 'agent',
      scopeId: input.agentId,
      limitMicroUsd: usd === null ? null : usdToMicros(usd),
      byOperator: false,
    })
    capPosition = cap.position
  }
  const r = await handleCommand(deps, agent, agentStream(input.agentId), command, ctx)
  return { ...r, position: later(r.position, capPosition) }
}

const later = (a: StorePosition | null, b: StorePosition | null): StorePosition | null =>
  a === null ? b : b === null ? a : comparePositions(a, b) >= 0 ? a : b

/** A person sets the next version of the agent's role prompt (superseding an open proposal). */
export const setRolePrompt = (
  deps: PipelineDeps,
  ctx: CommandContext,
  input: { agentId: string; rolePrompt: RolePrompt; actor: AgentActor },
) =>
  handleCommand(deps, agent, agentStream(input.agentId), { type: 'set_role_prompt', ...input, at: ctx.now().toISOString() }, ctx)

/** A person lets the agent use a risky tool in a room without asking each time, or takes it back. */
export const allowTool = (
  deps: PipelineDeps,
  ctx: CommandContext,
  input: { agentId: string; roomId: string; tool: string; allowed: boolean; actor: AgentActor },
) => handleCommand(deps, agent, agentStream(input.agentId), { type: 'allow_tool', ...input, at: ctx.now().toISOString() }, ctx)

/**
 * A person takes back "always allow" of a tool for the agent in a room. Who may: whoever may approve the agent's calls
 * there (a reader of the room, as POST /api/runs/:id/approvals asks: canRead), and admins, who moderate every room.
 * Anyone else finds no such room. The room is a condition of the decision; revoking what is not allowed records
 * nothing.
 */
export const revokeTool = (
  deps: PipelineDeps,
  ctx: CommandContext,
  input: { agentId: string; roomId: string; tool: string; actor: Principal },
) =>
  handleCommand(
    deps,
    agent,
    agentStream(input.agentId),
    async (_s, read) => {
      const r = await read(room, roomStream(input.roomId))
      const me = input.actor
      if (!r.exists || !(canRead(r, me.userId, me.role) || atLeast(me, 'admin'))) {
        throw new DomainError('ROOM_NOT_FOUND', 'no such room', 'not_found')
      }
      return {
        type: 'allow_tool' as const,
        agentId: input.agentId,
        roomId: input.roomId,
        tool: input.tool,
        allowed: false,
        actor: agentActorOf(me),
        at: ctx.now().toISOString(),
      }
    },
    ctx,
  )

/**
 * The agent proposes a change to its own role prompt, for a person to accept or reject: the agents worker calls
 * this with a context acting as the agent and a proposal id derived from its run, so a repeated call records once.
 */
export const proposeRolePrompt = (
  deps: PipelineDeps,
  ctx: CommandContext,
  input: { agentId: string; proposalId: string; rolePrompt: RolePrompt; comment: string | null },
) =>
  handleCommand(
    deps,
    agent,
    agentStream(input.agentId),
    {
      type: 'propose_role_prompt',
      ...input,
      actor: { userId: ctx.actor.id, role: 'member', type: ctx.actor.type === 'agent' ? 'agent' : 'human' },
      at: ctx.now().toISOString(),
    },
    ctx,
  )

/** A person accepts (the proposal becomes the next version) or rejects the agent's open proposal. */
export const decideProposal = (
  deps: PipelineDeps,
  ctx: CommandContext,
  input: { agentId: string; proposalId: string; actor: AgentActor } & (
    | { decision: 'accept' }
    | { decision: 'reject'; comment: string | null }
  ),
) =>
  handleCommand(
    deps,
    agent,
    agentStream(input.agentId),
    input.decision === 'accept'
      ? {
          type: 'accept_proposal',
          agentId: input.agentId,
          proposalId: input.proposalId,
          actor: input.actor,
          at: ctx.now().toISOString(),
        }
      : {
          type: 'reject_proposal',
          agentId: input.agentId,
          proposalId: input.proposalId,
          comment: input.comment,
          actor: input.actor,
          at: ctx.now().toISOString(),
        },
    ctx,
  )

const Agent = z.object({ agentId: Uuid, userId: Uuid, username: z.string(), position: Position })

const routes = {
  create: createRoute({
    method: 'post',
    path: '/api/agents',
    tags: ['agents'],
    summary: 'Create an agent: a user of type agent, with a username (from its name unless given)',
    description:
      'The agent signs in with POST /auth/agent-login once it has a secret (POST /api/agents/{id}/secret). rolePrompt, model and tools are recorded for the agents runtime.',
    security: bearerSecurity,
    request: jsonBody(
      z.object({
        name: z.string().trim().min(1).max(100),
        username: z.string().min(1).max(40).optional(),
        rolePrompt: z.string().max(20_000).default(''),
        model: z.string().min(1).max(200).optional(),
        tools: z.array(z.string().min(1).max(200)).max(200).default([]),
      }),
    ),
    responses: {
      201: json('created', Agent),
      409: problemResponse('username taken'),
      422: problemResponse('username invalid, or a model the org’s LLM policy does not allow (MODEL_NOT_ALLOWED)'),
    },
  }),
  rotateSecret: createRoute({
    method: 'post',
    path: '/api/agents/{id}/secret',
    tags: ['agents'],
    summary: 'Rotate the agent-login secret; the new secret is shown once',
    description:
      'The secret is stored sealed (AES-256-GCM under the server key), never in clear. The previous secret stays valid for graceSeconds (default 0: it stops at once).',
    security: bearerSecurity,
    request: {
      params: z.object({ id: Uuid }),
      body: {
        content: {
          'application/json': {
            schema: z.object({ graceSeconds: z.number().int().min(0).max(MAX_SECRET_GRACE_SECONDS).default(0) }),
          },
        },
        required: false,
      },
    },
    responses: {
      200: json('the new secret', z.object({ agentId: Uuid, secret: z.string(), position: Position })),
      403: problemResponse('not an admin or the agent’s creator'),
      404: problemResponse('no such agent'),
    },
  }),
}

const AgentParams = z.object({ id: Uuid })
const ProposalParams = z.object({ id: Uuid, proposalId: Uuid })
const RolePromptAnswer = z.object({ agentId: Uuid, version: z.number().int(), position: Position })

const configRoutes = {
  patch: createRoute({
    method: 'patch',
    path: '/api/agents/{id}',
    tags: ['agents'],
    summary: 'Change an agent’s model, reasoning effort, skillsets, spend limit or access (admins and its creator)',
    description:
      'Fields left out stay as they are. `model` must be on the org’s LLM policy allow-list when it has one (422 ' +
      'MODEL_NOT_ALLOWED; null is the platform’s default). `skillsets` are opt-in bundles of tools (`core` is every ' +
      'agent’s). `spendLimitUsd` (admins only) is recorded on the agent and also sets the usage cap of scope `agent` ' +
      '(as PUT /api/limits does), which is what spending checks. `access` replaces who may mention, assign or use the ' +
      'agent: members (and above) or admins, for the org and per room (`none`: nobody in that room).',
    security: bearerSecurity,
    request: {
      params: AgentParams,
      ...jsonBody(
        z.object({
          model: z.string().trim().min(1).max(200).nullable().optional(),
          reasoningEffort: z.enum(REASONING_EFFORTS).nullable().optional(),
          skillsets: z
            .array(z.enum(['core', ...SKILLSETS]))
            .max(20)
            .optional(),
          spendLimitUsd: z.number().min(0).max(1_000_000_000).nullable().optional(),
          access: AgentAccessInput.optional(),
        }),
      ),
    },
    responses: {
      200: json('changed (or already so)', z.object({ agentId: Uuid, position: Position })),
      403: problemResponse('not an admin or the agent’s creator; a spend limit needs an admin'),
      404: problemResponse('no such agent, or a room of its access is not the org’s'),
      422: problemResponse('MODEL_NOT_ALLOWED, or a spend limit above the org’s ceiling'),
    },
  }),
  setRolePrompt: createRoute({
    method: 'put',
    path: '/api/agents/{id}/role-prompt',
    tags: ['agents'],
    summary: 'Set the next version of the agent’s role prompt (admins and its creator)',
    description:
      'Plain text (all of it the role) or `{role, rules, examples, sources}`. The same prompt again records nothing. ' +
      'An open proposal of the agent is superseded. Everyone in the org sees `agent.role_prompt_changed`.',
    security: bearerSecurity,
    request: { params: AgentParams, ...jsonBody(z.object({ rolePrompt: RolePromptInput })) },
    responses: {
      200: json('the current version', RolePromptAnswer),
      403: problemResponse('not an admin or the agent’s creator, or an agent'),
      404: problemResponse('no such agent'),
    },
  }),
  propose: createRoute({
    method: 'post',
    path: '/api/agents/{id}/role-prompt/proposals',
    tags: ['agents'],
    summary: 'The agent proposes a change to its own role prompt (with its agent token)',
    description:
      'One proposal waits at a time (409 PROPOSAL_OPEN); a person accepts or rejects it, or supersedes it by setting ' +
      'another version. `id` makes a retry record once.',
    security: bearerSecurity,
    request: {
      params: AgentParams,
      ...jsonBody(z.object({ id: ClientChosenId, rolePrompt: RolePromptInput, comment: z.string().max(2_000).optional() })),
    },
    responses: {
      201: json('proposed', z.object({ agentId: Uuid, proposalId: Uuid, position: Position })),
      403: problemResponse('not the agent itself'),
      404: problemResponse('no such agent'),
      409: problemResponse('a proposal is already open'),
      422: problemResponse('the proposal is the current role prompt'),
    },
  }),
  accept: createRoute({
    method: 'post',
    path: '/api/agents/{id}/role-prompt/proposals/{proposalId}/accept',
    tags: ['agents'],
    summary: 'Accept the agent’s proposal: it becomes the next version (admins and its creator)',
    security: bearerSecurity,
    request: { params: ProposalParams },
    responses: {
      200: json('the current version', RolePromptAnswer.extend({ proposalId: Uuid })),
      403: problemResponse('not an admin or the agent’s creator'),
      404: problemResponse('no such agent or proposal'),
      409: problemResponse('the proposal was rejected or superseded'),
    },
  }),
  reject: createRoute({
    method: 'post',
    path: '/api/agents/{id}/role-prompt/proposals/{proposalId}/reject',
    tags: ['agents'],
    summary: 'Reject the agent’s proposal (admins and its creator)',
    security: bearerSecurity,
    request: {
      params: ProposalParams,
      body: {
        content: { 'application/json': { schema: z.object({ comment: z.string().max(2_000).optional() }) } },
        required: false,
      },
    },
    responses: {
      200: json('rejected', z.object({ agentId: Uuid, proposalId: Uuid, position: Position })),
      403: problemResponse('not an admin or the agent’s creator'),
      404: problemResponse('no such agent or proposal'),
      409: problemResponse('the proposal was accepted'),
    },
  }),
}

const allowedToolRoutes = {
  revoke: createRoute({
    method: 'delete',
    path: '/api/agents/{id}/allowed-tools/{roomId}/{tool}',
    tags: ['agents'],
    summary: 'Take back “always allow” of a tool for the agent in a room: its next call there waits for a person again',
    description:
      'Who may approve the agent’s calls in the room (its readers) and admins; not guests, not agents. Revoking what ' +
      'is not allowed answers the same and records nothing. No body: the position of the event (when one was ' +
      'recorded) is in the `Position` header, for `consistentAfter`.',
    security: bearerSecurity,
    request: { params: z.object({ id: Uuid, roomId: Uuid, tool: z.string().min(1).max(200) }) },
    responses: {
      204: { description: 'not allowed (any more)', headers: z.object({ Position: z.string().optional() }) },
      403: problemResponse('a guest or an agent'),
      404: problemResponse('no such agent or room (TOOL_UNKNOWN: no tool is named so)'),
    },
  }),
}

export function agentsCommands(deps: AppDeps & IdentityDeps) {
  const app = router()
  const pd = pipelineDeps(deps)

  app.openapi(routes.create, async (c) => {
    const me = principalOf(c)
    requireRole(me, 'member')
    const body = c.req.valid('json')
    const username = body.username?.toLowerCase() ?? usernameFromName(body.name)
    if (!USERNAME.test(username)) {
      throw new DomainError('USERNAME_INVALID', 'a username has 1 to 40 lowercase letters, digits, dots, dashes or underscores')
    }
    const ctx = commandContext(c, actorOf(me), me.tenantId)
    if (body.model !== undefined) mustBeAllowedModel(body.model, await allowedModelsOf(pd, me.tenantId))
    const agentId = ctx.newId()
    const at = ctx.now().toISOString()
    // The username first: a taken one refuses the agent before anything of it is written.
    await reserveUsername(pd, ctx, me.tenantId, agentId, username)
    await handleCommand(
      pd,
      agent,
      agentStream(agentId),
      {
        type: 'create',
        data: {
          agentId,
          name: body.name,
          username,
          rolePrompt: body.rolePrompt,
          model: body.model ?? null,
          tools: body.tools,
          createdBy: me.userId,
          at,
        },
      },
      ctx,
    )
    const joined = await joinOrg(pd, ctx, me.tenantId, {
      userId: agentId,
      accountId: null,
      type: 'agent',
      role: 'member',
      email: null,
      displayName: body.name,
      username,
      at,
    })
    return c.json({ agentId, userId: agentId, username, position: positionOf(joined.position) }, 201)
  })

  app.openapi(routes.rotateSecret, async (c) => {
    const me = principalOf(c)
    const { id } = c.req.valid('param')
    const graceSeconds = c.req.valid('json')?.graceSeconds ?? 0
    const ctx = commandContext(c, actorOf(me), me.tenantId)
    const secret = generateToken('agentSecret')
    const r = await handleCommand(
      pd,
      agent,
      agentStream(id),
      {
        type: 'rotate_secret',
        agentId: id,
        secretId: ctx.newId(),
        sealedSecret: deps.identity.keys.sealer.seal(secret, id),
        graceSeconds,
        actor: { userId: me.userId, role: me.role },
        at: ctx.now().toISOString(),
      },
      ctx,
    )
    // Shown once: never cached, never kept as an idempotent answer.
    c.header('cache-control', 'no-store')
    return c.json({ agentId: id, secret, position: positionOf(r.position) }, 200)
  })
  app.openapi(configRoutes.patch, async (c) => {
    const me = principalOf(c)
    const { id } = c.req.valid('param')
    const body = c.req.valid('json')
    const settings: { -readonly [K in keyof AgentSettings]: AgentSettings[K] } = {}
    if (body.model !== undefined) settings.model = body.model
    if (body.reasoningEffort !== undefined) settings.reasoningEffort = body.reasoningEffort
    if (body.skillsets !== undefined) settings.skillsets = body.skillsets
    if (body.spendLimitUsd !== undefined) settings.spendLimitUsd = body.spendLimitUsd
    if (body.access !== undefined) settings.access = body.access
    const ctx = { ...commandContext(c, actorOf(me), me.tenantId), tenantId: me.tenantId }
    const r = await configureAgent(pd, ctx, { agentId: id, settings, actor: agentActorOf(me) })
    return c.json({ agentId: id, position: positionOf(r.position) }, 200)
  })

  app.openapi(configRoutes.setRolePrompt, async (c) => {
    const me = principalOf(c)
    const { id } = c.req.valid('param')
    const ctx = commandContext(c, actorOf(me), me.tenantId)
    const r = await setRolePrompt(pd, ctx, {
      agentId: id,
      rolePrompt: rolePromptFrom(c.req.valid('json').rolePrompt),
      actor: agentActorOf(me),
    })
    const version = r.state.exists ? r.state.rolePromptVersion : 0
    return c.json({ agentId: id, version, position: positionOf(r.position) }, 200)
  })

  app.openapi(configRoutes.propose, async (c) => {
    const me = principalOf(c)
    const { id } = c.req.valid('param')
    const body = c.req.valid('json')
    const ctx = commandContext(c, actorOf(me), me.tenantId)
    const proposalId = body.id ?? ctx.newId()
    const r = await proposeRolePrompt(pd, ctx, {
      agentId: id,
      proposalId,
      rolePrompt: rolePromptFrom(body.rolePrompt),
      comment: body.comment ?? null,
    })
    return c.json({ agentId: id, proposalId, position: positionOf(r.position) }, 201)
  })

  app.openapi(configRoutes.accept, async (c) => {
    const me = principalOf(c)
    const { id, proposalId } = c.req.valid('param')
    const ctx = commandContext(c, actorOf(me), me.tenantId)
    const r = await decideProposal(pd, ctx, { agentId: id, proposalId, actor: agentActorOf(me), decision: 'accept' })
    const version = r.state.exists ? r.state.rolePromptVersion : 0
    return c.json({ agentId: id, proposalId, version, position: positionOf(r.position) }, 200)
  })

  app.openapi(configRoutes.reject, async (c) => {
    const me = principalOf(c)
    const { id, proposalId } = c.req.valid('param')
    const ctx = commandContext(c, actorOf(me), me.tenantId)
    const comment = c.req.valid('json')?.comment ?? null
    const r = await decideProposal(pd, ctx, { agentId: id, proposalId, actor: agentActorOf(me), decision: 'reject', comment })
    return c.json({ agentId: id, proposalId, position: positionOf(r.position) }, 200)
  })

  app.openapi(allowedToolRoutes.revoke, async (c) => {
    const me = principalOf(c)
    const { id, roomId, tool } = c.req.valid('param')
    const ctx = commandContext(c, actorOf(me), me.tenantId)
    const r = await revokeTool(pd, ctx, { agentId: id, roomId, tool, actor: me })
    const position = positionOf(r.position)
    if (position !== null) c.header('Position', String(position))
    return c.body(null, 204)
  })
  return app
}
