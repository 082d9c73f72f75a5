import { streamName } from '../adapters/event-store.ts'
import { orgNameStream, orgStream } from '../adapters/streams.ts'
import { DomainError } from '../domain/decider.ts'
import { checkOrgName, type LlmPolicy, type MemberJoined, org, orgName, usernameReservation } from '../domain/orgs.ts'
import { type CommandContext, handleCommand, type PipelineDeps } from './pipeline.ts'

/**
 * Reserves the name (the reservation stream is appended with no_stream, so of two concurrent requests
 * for one name exactly one wins), then creates the org. Its events carry the org as their tenant.
 */
export async function createOrg(deps: PipelineDeps, ctx: CommandContext, input: { orgId: string; name: string }) {
  const verdict = checkOrgName(input.name)
  if (!verdict.ok) throw new DomainError(verdict.reason === 'reserved' ? 'NAME_RESERVED' : 'NAME_INVALID', verdict.detail)
  const tenantCtx = { ...ctx, tenantId: input.orgId }
  await handleCommand(deps, orgName, orgNameStream(verdict.slug), { orgId: input.orgId, name: input.name }, tenantCtx, {
    crossTenant: true,
  })
  const result = await handleCommand(
    deps,
    org,
    orgStream(input.orgId),
    {
      type: 'create',
      orgId: input.orgId,
      name: input.name.trim(),
      slug: verdict.slug,
      createdBy: ctx.actor,
      at: ctx.now().toISOString(),
    },
    tenantCtx,
  )
  return { orgId: input.orgId, slug: verdict.slug, position: result.position }
}

export async function suspendOrg(deps: PipelineDeps, ctx: CommandContext, input: { orgId: string; reason: string }) {
  return handleCommand(
    deps,
    org,
    orgStream(input.orgId),
    { type: 'suspend', orgId: input.orgId, reason: input.reason, at: ctx.now().toISOString() },
    { ...ctx, tenantId: input.orgId },
  )
}

export async function reactivateOrg(deps: PipelineDeps, ctx: CommandContext, input: { orgId: string }) {
  return handleCommand(
    deps,
    org,
    orgStream(input.orgId),
    { type: 'reactivate', orgId: input.orgId, at: ctx.now().toISOString() },
    { ...ctx, tenantId: input.orgId },
  )
}

/** Seats and storage: refused below the seats in use, which the org stream (its joins and deactivations) counts. */
export async function setOrgLimits(
  deps: PipelineDeps,
  ctx: CommandContext,
  input: { orgId: string; seats: number | null; storageBytes: number | null },
) {
  return handleCommand(
    deps,
    org,
    orgStream(input.orgId),
    { type: 'set_limits', ...input, at: ctx.now().toISOString() },
    { ...ctx, tenantId: input.orgId },
  )
}

export async function setLlmPolicy(deps: PipelineDeps, ctx: CommandContext, input: { orgId: string } & LlmPolicy) {
  return handleCommand(
    deps,
    org,
    orgStream(input.orgId),
    { type: 'set_llm_policy', ...input, at: ctx.now().toISOString() },
    { ...ctx, tenantId: input.orgId },
  )
}

export const usernameStream = (orgId: string, username: string) => streamName('username', `${orgId}_${username}`)

/** A person or agent becomes a user of the org. */
export async function joinOrg(deps: PipelineDeps, ctx: CommandContext, orgId: string, member: MemberJoined) {
  if (member.username) await reserveUsername(deps, ctx, orgId, member.userId, member.username)
  return handleCommand(deps, org, orgStream(orgId), { type: 'join', member }, { ...ctx, tenantId: orgId })
}

export async function reserveUsername(deps: PipelineDeps, ctx: CommandContext, orgId: string, userId: string, username: string) {
  return handleCommand(
    deps,
    usernameReservation,
    usernameStream(orgId, username),
    { orgId, userId, username },
    { ...ctx, tenantId: orgId },
  )
}

/** Picks the username (unique in the org by its reservation stream) and opens the product to the user. */
export async function activateUser(deps: PipelineDeps, ctx: CommandContext, orgId: string, userId: string, username: string) {
  const name = username.trim().toLowerCase()
  await reserveUsername(deps, ctx, orgId, userId, name)
  return handleCommand(
    deps,
    org,
    orgStream(orgId),
    { type: 'activate', userId, username: name, at: ctx.now().toISOString() },
    { ...ctx, tenantId: orgId },
  )
}
