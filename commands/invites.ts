import { createHmac } from 'node:crypto'
import { streamName } from '../adapters/event-store.ts'
import { generateToken, hashToken, TOKEN_PREFIXES, tokenMatchesHash } from '../adapters/opaque-tokens.ts'
import { orgStream } from '../adapters/streams.ts'
import { INVITE_TTL_DAYS, type InviteRole, invite } from '../domain/accounts.ts'
import { DomainError } from '../domain/decider.ts'
import { org, requireSeat } from '../domain/orgs.ts'
import { loadAccount } from '../http/accounts.ts'
import { joinOrg } from './orgs.ts'
import { type CommandContext, handleCommand, loadState, type PipelineDeps } from './pipeline.ts'

export const inviteStream = (id: string) => streamName('invite', id)

const TOKEN = /^(wsi_[A-Za-z0-9_-]{43})\.([0-9a-f-]{36})$/

/** The server's key invite tokens are derived with (AuthKeys.inviteTokenKey). */
export type InviteTokenDeps = { readonly inviteTokenKey?: Uint8Array }

/**
 * An invite's token: HMAC-SHA256(the server's invite key, invite id), as `wsi_<43 chars>.<inviteId>`. Only the
 * server can make it, and it can make it again from the invite id alone: the invite email recomputes the link from
 * `invite.created`, which holds only the token's hash, so the token is never in an event or a log in clear.
 */
export const inviteToken = (key: Uint8Array, inviteId: string): string =>
  `${TOKEN_PREFIXES.invite}${createHmac('sha256', key).update(inviteId, 'utf8').digest('base64url')}.${inviteId}`

/**
 * Creates an invite; the answer shows its token once. Without the invite key (a tool that has none) the token is
 * random, as invites were before: then no email can carry it, and the invite email refuses to send a wrong link.
 */
export async function createInvite(
  deps: PipelineDeps & InviteTokenDeps,
  ctx: CommandContext,
  input: { orgId: string; email: string; role: InviteRole; invitedBy: string },
) {
  const inviteId = ctx.newId()
  const token = deps.inviteTokenKey ? inviteToken(deps.inviteTokenKey, inviteId) : `${generateToken('invite')}.${inviteId}`
  const expiresAt = new Date(ctx.now().getTime() + INVITE_TTL_DAYS * 24 * 3600_000).toISOString()
  const r = await handleCommand(
    deps,
    invite,
    inviteStream(inviteId),
    {
      type: 'create',
      data: {
        inviteId,
        orgId: input.orgId,
        email: input.email,
        role: input.role,
        tokenHash: hashToken(token),
        invitedBy: input.invitedBy,
        expiresAt,
        at: ctx.now().toISOString(),
      },
    },
    { ...ctx, tenantId: input.orgId },
  )
  return { inviteId, token, expiresAt, position: r.position }
}

export const loadInvite = (deps: PipelineDeps, inviteId: string) => loadState(deps.store, invite, inviteStream(inviteId))

/**
 * Accepting takes the invite (one use wins: the invite's stream revision is checked) and then joins the
 * org. The user id follows from the invite, so a retry after a crash joins the same user once.
 */
export async function acceptInvite(deps: PipelineDeps, ctx: CommandContext, input: { token: string; accountId: string }) {
  const m = TOKEN.exec(input.token)
  const inviteId = m?.[2]
  const state = inviteId ? await loadInvite(deps, inviteId) : null
  if (!inviteId || !state || state.status === 'none' || !tokenMatchesHash(input.token, state.tokenHash)) {
    throw new DomainError('INVITE_NOT_FOUND', 'no such invite', 'not_found')
  }
  const acct = await loadAccount(deps, input.accountId)
  if (!acct.exists) throw new DomainError('ACCOUNT_NOT_FOUND', 'no such account', 'not_found')
  const orgCtx = { ...ctx, tenantId: state.orgId }
  const userId = ctx.newId()
  const accepted = await handleCommand(
    deps,
    invite,
    inviteStream(inviteId),
    async (_, read) => {
      // A full org refuses before the invite is used, so it can be accepted once a seat is free.
      requireSeat(await read(org, orgStream(state.orgId)))
      return {
        type: 'accept' as const,
        inviteId,
        accountId: input.accountId,
        accountEmail: acct.email,
        emailVerified: acct.emailVerified,
        userId,
        at: ctx.now().toISOString(),
      }
    },
    orgCtx,
  )
  const joinedAs = accepted.events[0]?.type === 'invite.accepted' ? accepted.events[0].data.userId : userId
  const r = await joinOrg(deps, orgCtx, state.orgId, {
    userId: joinedAs,
    accountId: input.accountId,
    type: 'human',
    role: state.role,
    email: acct.email,
    displayName: acct.email.split('@')[0]!,
    at: ctx.now().toISOString(),
  })
  return { orgId: state.orgId, userId: joinedAs, position: r.position }
}

export async function revokeInvite(
  deps: PipelineDeps,
  ctx: CommandContext,
  input: { inviteId: string; orgId: string; by: string },
) {
  const state = await loadInvite(deps, input.inviteId)
  if (state.status === 'none' || state.orgId !== input.orgId)
    throw new DomainError('INVITE_NOT_FOUND', 'no such invite', 'not_found')
  return handleCommand(
    deps,
    invite,
    inviteStream(input.inviteId),
    { type: 'revoke', inviteId: input.inviteId, by: input.by, at: ctx.now().toISOString() },
    ctx,
  )
}
