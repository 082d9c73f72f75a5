import { createHash } from 'node:crypto'
import { type RecordedEvent, streamName } from '../adapters/event-store.ts'
import { generateToken, hashToken, tokenKind, tokenMatchesHash } from '../adapters/opaque-tokens.ts'
import {
  account,
  type CredentialKind,
  type CredentialState,
  credential,
  identity,
  normalizeEmail,
  usable,
} from '../domain/accounts.ts'
import { fold } from '../domain/decider.ts'
import { type CommandContext, handleCommand, type PipelineDeps } from './pipeline.ts'

export const accountStream = (id: string) => streamName('account', id)
export const identityStream = (issuer: string, subject: string) =>
  streamName('account_identity', createHash('sha256').update(`${issuer}\u0000${subject}`).digest('hex'))
export const credentialStream = (id: string) => streamName('credential', id)

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

export async function loadAccount(deps: PipelineDeps, accountId: string) {
  const events = await deps.store.readStream(accountStream(accountId))
  return fold(
    account,
    events.map((e) => ({ type: e.type, data: e.data }) as Parameters<typeof account.evolve>[1]),
  )
}

const TOKEN_KIND: Record<CredentialKind, 'session' | 'personal'> = { session: 'session', personal_token: 'personal' }

/** Issues a session or personal token. The clear token is returned once; only its hash is stored. */
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
  },
) {
  const credentialId = ctx.newId()
  // The stream id rides in the token, so checking it is one indexed read; the secret is checked by hash.
  const token = `${generateToken(TOKEN_KIND[input.kind])}.${credentialId}`
  const expiresAt = new Date(ctx.now().getTime() + input.ttlMs).toISOString()
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
        at: ctx.now().toISOString(),
      },
    },
    { ...ctx, tenantId: input.tenantId },
  )
  return { token, credentialId, expiresAt, position: r.position }
}

const TOKEN = /^(ws[sp]_[A-Za-z0-9_-]{43})\.([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$/

export type VerifiedCredential = Extract<CredentialState, { exists: true }> & {
  credentialId: string
  /** Where the credential was issued: read models at this position know its user. */
  issuedAt: RecordedEvent['position']
}

/** The live credential a bearer token stands for, or null (malformed, unknown, wrong secret, revoked, expired). */
export async function verifyToken(deps: PipelineDeps, token: string, now: Date): Promise<VerifiedCredential | null> {
  const m = TOKEN.exec(token)
  if (!m || !tokenKind(m[1]!)) return null
  const credentialId = m[2]!
  const events = await deps.store.readStream(credentialStream(credentialId))
  const state = fold(
    credential,
    events.map((e) => ({ type: e.type, data: e.data }) as Parameters<typeof credential.evolve>[1]),
  )
  if (!usable(state, now) || !tokenMatchesHash(token, state.tokenHash)) return null
  return { ...state, credentialId, issuedAt: events[0]!.position }
}

export async function revokeCredential(
  deps: PipelineDeps,
  ctx: CommandContext,
  input: { credentialId: string; accountId: string },
) {
  return handleCommand(
    deps,
    credential,
    credentialStream(input.credentialId),
    { type: 'revoke', credentialId: input.credentialId, byAccountId: input.accountId, at: ctx.now().toISOString() },
    ctx,
  )
}
