import { createRoute, z } from '@hono/zod-openapi'
import { type AgentCredential, AgentCredentialError, verifyAgentCredential } from '../adapters/agent-credentials.ts'
import { streamName } from '../adapters/event-store.ts'
import type { IdentityDeps } from '../adapters/identity.ts'
import { generateToken } from '../adapters/opaque-tokens.ts'
import { agent, liveSecrets, MAX_SECRET_GRACE_SECONDS } from '../domain/agents.ts'
import { DomainError, foldRecorded } from '../domain/decider.ts'
import { USERNAME } from '../domain/orgs.ts'
import type { AppDeps } from '../http/context.ts'
import { actorOf, principalOf, requireRole } from '../http/principal.ts'
import { unauthorized } from '../http/problem.ts'
import { router } from '../http/router.ts'
import { json, jsonBody, Position, problemResponse, Uuid } from '../http/schemas.ts'
import { bearerSecurity, positionOf } from '../http/tenant-route.ts'
import { commandContext, pipelineDeps } from './command-context.ts'
import { joinOrg, reserveUsername } from './orgs.ts'
import { handleCommand, type PipelineDeps } from './pipeline.ts'

export const agentStream = (id: string) => streamName('agent', id)

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
      422: problemResponse('username invalid'),
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
  return app
}
