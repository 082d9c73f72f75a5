import type { Context, MiddlewareHandler } from 'hono'
import { publicPosition } from '../adapters/event-store.ts'
import { inTenant } from '../adapters/tenant-transaction.ts'
import { membershipOf } from '../domain/orgs.ts'
import { type AuthDeps, callerOf } from './account-auth.ts'
import { loadOrg } from './accounts.ts'
import { bearerToken, isAgentToken } from './bearer.ts'
import { consistent } from './consistent-after.ts'
import type { AppEnv } from './context.ts'
import { sessionCookie } from './cookies.ts'
import { checkOrigin, isSafeMethod } from './csrf.ts'
import { orgOfRequest } from './org-resolution.ts'
import type { Claimed, OrgRole, Principal, UserType } from './principal.ts'
import { forbidden, HttpProblem, unauthorized } from './problem.ts'

/*
 * The Tenant API's authentication: an agent token, a bearer session or personal API token bound to an org,
 * or the session cookie on the org's host (the tenant is the request's host, see org-resolution.ts),
 * resolved to the org's user and then to a Principal.
 */

type UserRow = { id: string; account_id: string | null; type: UserType; role: OrgRole; username: string | null; status: string }

const ACTIVATION_OPEN = new Set(['GET /api/me', 'POST /api/me/activate'])

/** Who a Tenant API request claims to be, before the org's users confirm it. */
async function claimOf(c: Context<AppEnv>, deps: AuthDeps): Promise<Claimed> {
  const token = bearerToken(c)
  if (token && isAgentToken(token)) {
    const claims = await deps.identity.agentTokens.verify(token).catch(() => {
      throw unauthorized('the agent token is invalid or expired')
    })
    return {
      tenantId: claims.tenantId,
      userId: claims.agentId,
      accountId: null,
      credential: 'agent_token',
      issuedAt: null,
      expiresAt: claims.expiresAt,
      credentialIds: [],
    }
  }
  const caller = await callerOf(c, deps)
  if (!caller) throw unauthorized()
  const { credential } = caller
  const lifetime = {
    expiresAt: new Date(credential.expiresAt),
    credentialIds: credential.parentId ? [credential.credentialId, credential.parentId] : [credential.credentialId],
  }
  if (caller.via === 'bearer') {
    if (!credential.tenantId || !credential.userId) {
      throw forbidden(
        'this credential is not for an org: get a tenant session (POST /auth/tenant-session)',
        'TENANT_SESSION_REQUIRED',
      )
    }
    return {
      tenantId: credential.tenantId,
      userId: credential.userId,
      accountId: credential.accountId,
      credential: credential.kind === 'personal_token' ? 'personal_token' : 'session',
      issuedAt: credential.issuedAt,
      ...lifetime,
    }
  }
  // The cookie: the tenant is the request's org host (or its development stand-in).
  const tenantId = (await orgOfRequest(c, deps)) ?? credential.tenantId
  if (!tenantId) {
    throw forbidden('open the org on its own host (or, in development, send X-Org: <slug>)', 'TENANT_REQUIRED')
  }
  if (credential.tenantId && credential.tenantId !== tenantId) throw unauthorized('this session is for another org')
  let userId = credential.userId
  if (!userId) {
    const row = await deps.controlDb
      .selectFrom('control.memberships')
      .select('user_id')
      .where('account_id', '=', credential.accountId)
      .where('org_id', '=', tenantId)
      .where('status', '=', 'active')
      .executeTakeFirst()
    // The read model may trail a membership made a moment ago: the org stream has the last word.
    userId =
      (row?.user_id as string | undefined) ?? membershipOf(await loadOrg(deps, tenantId), credential.accountId)?.[0] ?? null
    if (!userId) throw forbidden('you are not a member of this org', 'NOT_A_MEMBER')
  }
  return { tenantId, userId, accountId: credential.accountId, credential: 'cookie', issuedAt: credential.issuedAt, ...lifetime }
}

/**
 * Verifies the credential and records who it names, before anything waits: the per-user rate limit counts
 * by it ahead of authenticateTenant, whose consistentAfter wait would otherwise come first.
 */
export const claimTenant =
  (deps: AuthDeps): MiddlewareHandler<AppEnv> =>
  async (c, next) => {
    if (c.req.path.startsWith('/api/internal/')) return next()
    const key = cacheKeyOf(c, deps)
    // consistentAfter asks for what a position shows: answered afresh, after the wait.
    const cached = key && !asksConsistency(c) ? deps.principals.get(key) : undefined
    if (cached) {
      // What the cookie's verification did besides: a cross-site write is refused on every request.
      if (!bearerToken(c)) checkOrigin(c, deps.identity.publicUrl)
      c.set('claimed', cached.claimed)
      c.set('cachedAuthentication', cached)
    } else {
      c.set('authenticationGeneration', deps.principals.generation)
      c.set('claimed', await claimOf(c, deps))
    }
    await next()
  }

/** What a request's credential is cached by: the token, or the cookie with what names the org it is for. */
function cacheKeyOf(c: Context<AppEnv>, deps: AuthDeps): string | null {
  const token = bearerToken(c)
  if (token) return `bearer ${token}`
  const cookie = sessionCookie(c)
  if (!cookie) return null
  const standIn = deps.config.DEV_IDP ? ` ${c.req.header('x-org') ?? ''} ${c.req.query('org') ?? ''}` : ''
  return `cookie ${cookie} ${c.req.header('host') ?? ''}${standIn}`
}

const asksConsistency = (c: Context<AppEnv>): boolean =>
  Boolean(c.req.query('consistentAfter') || c.req.header('consistent-after'))

/** A suspended org reads but takes no commands. */
function refuseSuspended(c: Context<AppEnv>, orgStatus: string | undefined): void {
  if (orgStatus === 'suspended' && !isSafeMethod(c.req.method)) {
    throw new HttpProblem({ status: 403, code: 'ORG_SUSPENDED', title: 'Forbidden', detail: 'this org is suspended' })
  }
}

/**
 * The Tenant API's authentication: the request's credential resolved to a Principal. A user who has not
 * picked a username only reaches /api/me; a suspended org reads but takes no commands. /api/internal/* is
 * for services and has its own middleware (serviceAuth).
 */
export const authenticateTenant =
  (deps: AuthDeps): MiddlewareHandler<AppEnv> =>
  async (c, next) => {
    if (c.req.path.startsWith('/api/internal/')) return next()
    const cached = c.get('cachedAuthentication')
    if (cached) {
      refuseSuspended(c, cached.orgStatus)
      c.set('principal', cached.principal)
      return next()
    }
    let generation = c.get('authenticationGeneration') ?? deps.principals.generation
    const claimed = c.get('claimed') ?? (await claimOf(c, deps))
    // consistentAfter (or Consistent-After) also holds for who the caller is: their role, the org's status.
    await consistent(c, deps, ['users', 'orgs'])
    // A change this process heard of may not be in the read models yet: what they answer is then not kept.
    const change = deps.principals.changeFor(claimed)
    if (change !== null && !(await deps.waiter.hasReached(['users', 'orgs'], change))) generation = -1
    const who = { tenantId: claimed.tenantId, userId: claimed.userId }
    // The user from the tenant database, the org's status from the control database: two databases, asked at once.
    const load = async () => {
      const [user, org] = await Promise.all([
        inTenant(deps.db, who, (trx) =>
          trx
            .selectFrom('tenant.users')
            .select(['id', 'account_id', 'type', 'role', 'username', 'status'])
            .where('tenant_id', '=', who.tenantId)
            .where('id', '=', who.userId)
            .executeTakeFirst(),
        ),
        deps.controlDb.selectFrom('control.orgs').select('status').where('id', '=', who.tenantId).executeTakeFirst(),
      ])
      return { user: user as UserRow | undefined, orgStatus: org?.status as string | undefined }
    }
    let found = await load()
    if (!found.user || !found.orgStatus) {
      // Issued just now: wait (bounded) until the read models know what the credential names.
      if (claimed.issuedAt) await deps.waiter.waitFor(['users', 'orgs'], BigInt(publicPosition(claimed.issuedAt)))
      found = await load()
    }
    if (!found.user || !found.orgStatus) {
      // Still unknown to the read models (a user who joined a moment ago): the org stream has the last word.
      const state = await loadOrg(deps, who.tenantId)
      const m = state.status === 'none' ? undefined : state.members.get(who.userId)
      if (state.status !== 'none' && m) {
        found = {
          user: {
            id: who.userId,
            account_id: m.accountId,
            type: m.type,
            role: m.role,
            username: m.username,
            status: m.active ? 'active' : 'deactivated',
          },
          orgStatus: state.status,
        }
      }
    }
    const { user, orgStatus } = found
    if (user?.status !== 'active') throw unauthorized('this user is no longer in the org')
    if (claimed.credential === 'agent_token' ? user.type !== 'agent' : user.account_id !== claimed.accountId) {
      throw unauthorized()
    }
    refuseSuspended(c, orgStatus)
    let username = user.username
    if (username === null) {
      // The read model may trail an activation made a moment ago: the org stream has the last word.
      const state = await loadOrg(deps, who.tenantId)
      username = state.status === 'none' ? null : (state.members.get(user.id)?.username ?? null)
      if (username === null && !ACTIVATION_OPEN.has(`${c.req.method} ${c.req.path}`)) {
        throw forbidden('pick a username first: POST /api/me/activate', 'ACTIVATION_REQUIRED')
      }
    }
    const principal: Principal = {
      tenantId: who.tenantId,
      userId: user.id,
      accountId: user.account_id,
      type: user.type,
      role: user.role,
      username,
      credential: claimed.credential,
    }
    c.set('principal', principal)
    // Until a username is picked the answer changes on activation, which only the org stream says for sure.
    const key = cacheKeyOf(c, deps)
    if (key && user.username !== null && orgStatus) {
      deps.principals.set(key, { claimed, principal, orgStatus }, claimed.expiresAt, generation)
    }
    await next()
  }
