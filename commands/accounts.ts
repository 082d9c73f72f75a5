import { createHash } from 'node:crypto'
import { streamName } from '../adapters/event-store.ts'
import { generateToken, hashToken, tokenMatchesHash } from '../adapters/opaque-tokens.ts'
import { accountStream, credentialStream } from '../adapters/streams.ts'
import {
  account,
  type CredentialKind,
  credential,
  HANDOFF_TTL_MS,
  handoff,
  identity,
  normalizeEmail,
} from '../domain/accounts.ts'
import { DomainError } from '../domain/decider.ts'
import { loadCredential } from '../http/accounts.ts'
import { badRequest } from '../http/problem.ts'
import { type CommandContext, handleCommand, loadState, type PipelineDeps } from './pipeline.ts'

export const identityStream = (issuer: string, subject: string) =>
  streamName('account_identity', createHash('sha256').update(`${issuer}\u0000${subject}`).digest('hex'))

export const SESSION_TTL_MS = 30 * 24 * 3600_000
export const TENANT_SESSION_TTL_MS = 7 * 24 * 3600_000

/**
 * Finds or creates the global account of a person an identity provider vouched for. The identity is
 * claimed on its own stream with no_stream, so two first logins at once end with one account.
 */
export async function signInAccount(
  deps: PipelineDeps,
  ctx: CommandContext,
  who: { issuer: string; subject: string; email: string; emailVerified: boolean },
): Promise<{ accountId: string; email: string }> {
  // An issuer vouches for who signs in, not for the characters of its claims: no store or read model keeps a NUL.
  const withNul = Object.entries({ sub: who.subject, email: who.email }).filter(([, v]) => v.includes('\u0000'))
  if (withNul.length > 0) {
    throw badRequest(
      'the identity provider sent a claim holding the NUL character (U+0000)',
      withNul.map(([path]) => ({ path, message: 'must not contain the NUL character (U+0000)' })),
    )
  }
  const claimed = await handleCommand(deps, identity, identityStream(who.issuer, who.subject), { accountId: ctx.newId() }, ctx)
  const accountId = claimed.state.accountId!
  const email = normalizeEmail(who.email)
  // Also completes an account whose identity was claimed by a process that died before registering it.
  await handleCommand(
    deps,
    account,
    accountStream(accountId),
    { accountId, issuer: who.issuer, subject: who.subject, email, emailVerified: who.emailVerified, at: ctx.now().toISOString() },
    { ...ctx, tenantId: null },
  )
  return { accountId, email }
}

const TOKEN_KIND: Record<CredentialKind, 'session' | 'personal'> = { session: 'session', personal_token: 'personal' }

/**
 * Issues a session or personal token. The clear token is returned once; only its hash is stored. One opened
 * from another (`parentId`: a tenant session from its account session) expires no later than its parent.
 */
export async function issueCredential(
  deps: PipelineDeps,
  ctx: CommandContext,
  input: {
    kind: CredentialKind
    accountId: string
    tenantId: string | null
    userId: string | null
    name?: string
    ttlMs: number
    parentId?: string | null
  },
) {
  const credentialId = ctx.newId()
  // The stream id rides in the token, so checking it is one indexed read; the secret is checked by hash.
  const token = `${generateToken(TOKEN_KIND[input.kind])}.${credentialId}`
  let expiresAt = new Date(ctx.now().getTime() + input.ttlMs).toISOString()
  if (input.parentId) {
    // A child stops working with its parent (verifyToken), so it announces no later expiry than the parent's.
    const { state: parent } = await loadCredential(deps, input.parentId)
    if (parent.exists && Date.parse(parent.expiresAt) < Date.parse(expiresAt))
      expiresAt = new Date(parent.expiresAt).toISOString()
  }
  const r = await handleCommand(
    deps,
    credential,
    credentialStream(credentialId),
    {
      type: 'issue',
      data: {
        credentialId,
        kind: input.kind,
        accountId: input.accountId,
        tenantId: input.tenantId,
        userId: input.userId,
        name: input.name ?? null,
        tokenHash: hashToken(token),
        expiresAt,
        parentId: input.parentId ?? null,
        at: ctx.now().toISOString(),
      },
    },
    { ...ctx, tenantId: input.tenantId },
  )
  return { token, credentialId, expiresAt, position: r.position }
}

/** Revokes one of the account's credentials (404 for anyone else's). */
export async function revokeCredential(
  deps: PipelineDeps,
  ctx: CommandContext,
  input: { credentialId: string; accountId: string },
) {
  const { events } = await loadCredential(deps, input.credentialId)
  return handleCommand(
    deps,
    credential,
    credentialStream(input.credentialId),
    { type: 'revoke', credentialId: input.credentialId, byAccountId: input.accountId, at: ctx.now().toISOString() },
    { ...ctx, tenantId: events[0]?.metadata.tenantId ?? null },
  )
}

export const handoffStream = (id: string) => streamName('handoff', id)
const HANDOFF_TOKEN = /^(wsh_[A-Za-z0-9_-]{43})\.([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$/

/** A single-use ticket, valid for a minute, that opens a session for one org on that org's host. */
export async function issueHandoff(
  deps: PipelineDeps,
  ctx: CommandContext,
  input: { accountId: string; orgId: string; userId: string; returnTo: string; parentId: string | null },
) {
  const ticketId = ctx.newId()
  const ticket = `${generateToken('handoff')}.${ticketId}`
  const expiresAt = new Date(ctx.now().getTime() + HANDOFF_TTL_MS).toISOString()
  await handleCommand(
    deps,
    handoff,
    handoffStream(ticketId),
    { type: 'issue', data: { ticketId, ...input, tokenHash: hashToken(ticket), expiresAt, at: ctx.now().toISOString() } },
    { ...ctx, tenantId: null },
  )
  return { ticket, expiresAt }
}

async function loadHandoff(deps: PipelineDeps, ticket: string) {
  const ticketId = HANDOFF_TOKEN.exec(ticket)?.[2]
  const state = ticketId ? await loadState(deps.store, handoff, handoffStream(ticketId)) : null
  if (!ticketId || !state || state.status === 'none' || !tokenMatchesHash(ticket, state.tokenHash)) {
    throw new DomainError('HANDOFF_NOT_FOUND', 'no such ticket', 'not_found')
  }
  return { ticketId, state }
}

/** Throws to refuse a ticket before it is used (e.g. on the wrong host). */
type HandoffCheck = (ticket: { orgId: string }) => void | Promise<void>

/**
 * What a ticket would open, refused as redeeming it would be (unknown, used, expired, `check`), without
 * using it: the confirmation page shows it, and only a confirmed POST redeems.
 */
export async function previewHandoff(deps: PipelineDeps, ctx: CommandContext, ticket: string, check: HandoffCheck) {
  const { ticketId, state } = await loadHandoff(deps, ticket)
  await check(state)
  handoff.decide({ type: 'redeem', ticketId, at: ctx.now().toISOString() }, state)
  return state
}

/** Uses the ticket (one use wins: the append is at the revision read) and returns what it was issued for. */
export async function redeemHandoff(deps: PipelineDeps, ctx: CommandContext, ticket: string, check: HandoffCheck) {
  const { ticketId, state } = await loadHandoff(deps, ticket)
  await check(state)
  await handleCommand(
    deps,
    handoff,
    handoffStream(ticketId),
    { type: 'redeem', ticketId, at: ctx.now().toISOString() },
    { ...ctx, tenantId: null },
    { maxAttempts: 1 },
  )
  return state
}
