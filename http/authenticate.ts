import { z } from '@hono/zod-openapi'
import type { Context, MiddlewareHandler } from 'hono'
import { constantTimeEqual } from '../adapters/constant-time.ts'
import { publicPosition } from '../adapters/event-store.ts'
import type { IdentityDeps } from '../adapters/identity.ts'
import { orgNameStream } from '../adapters/streams.ts'
import { inTenant } from '../adapters/tenant-transaction.ts'
import { membershipOf } from '../domain/orgs.ts'
import { loadOrg, verifyToken } from './accounts.ts'
import { consistent } from './consistent-after.ts'
import type { AppDeps, AppEnv } from './context.ts'
import type { Caller, Claimed, OrgRole, Principal, UserType } from './principal.ts'
import { forbidden, HttpProblem, notFound, unauthorized } from './problem.ts'

/*
 * Authentication of every request that carries a credential:
 * - `Authorization: Bearer` with a session (`wss_…`), a personal API token (`wsp_…`) or an agent token (a JWT);
 * - or the `ws_session` cookie. Browsers get it on the login host (an account session, from /auth/callback)
 *   and on each org host (a tenant session, from the handoff). For a cookie the tenant is the request's host
 *   `<slug>.<BASE_DOMAIN>`; outside production an `X-Org: <slug or id>` header or `?org=` stands in for it.
 * Unsafe methods authenticated by the cookie must come with an Origin (or Referer) of the same host or of
 * PUBLIC_URL (CSRF); bearer requests carry no ambient credential and are exempt.
 */

export type AuthDeps = AppDeps & IdentityDeps

export const SESSION_COOKIE = 'ws_session'
const SAFE = new Set(['GET', 'HEAD', 'OPTIONS'])
const JWT = /^ey[\w-]+\.ey[\w-]+\.[\w-]+$/

export const bearerToken = (c: Context): string | null => {
  const m = /^Bearer\s+(\S+)$/i.exec(c.req.header('authorization') ?? '')
  return m ? m[1]! : null
}

export const cookieValue = (c: Context, name: string): string | null => {
  const header = c.req.header('cookie')
  if (!header) return null
  for (const part of header.split(';')) {
    const eq = part.indexOf('=')
    if (eq > 0 && part.slice(0, eq).trim() === name) {
      try {
        return decodeURIComponent(part.slice(eq + 1).trim())
      } catch {
        return null
      }
    }
  }
  return null
}

const isAgentToken = (token: string) => JWT.test(token)

/** Where the browser says the request comes from: its Origin or, lacking it, its Referer (null if neither is usable). */
function claimedOrigin(c: Context): URL | null {
  const claimed = c.req.header('origin') ?? c.req.header('referer')
  return claimed && claimed !== 'null' && URL.canParse(claimed) ? new URL(claimed) : null
}

/** Whether `from` is the request's own host (over https whenever the site is). */
function isThisHost(c: Context, from: URL, site: URL): boolean {
  const host = c.req.header('host')?.toLowerCase()
  return host !== undefined && from.host.toLowerCase() === host && (site.protocol !== 'https:' || from.protocol === 'https:')
}

const csrfRejected = (detail: string) => forbidden(detail, 'CSRF_REJECTED')

/**
 * Cookie-authenticated unsafe requests must say where they come from: the Origin (or, lacking it, the
 * Referer) must be this host or PUBLIC_URL. SameSite=Lax already keeps the cookie off cross-site POSTs;
 * this covers sibling subdomains and older browsers.
 */
export function checkOrigin(c: Context, publicUrl: string): void {
  if (SAFE.has(c.req.method)) return
  const site = new URL(publicUrl)
  const from = claimedOrigin(c)
  if (!from || (from.origin !== site.origin && !isThisHost(c, from, site))) {
    throw csrfRejected('a cookie-authenticated change must come from this site (Origin)')
  }
}

/**
 * Stricter than checkOrigin, for a request that signs the browser in rather than one that rides a cookie
 * (the handoff): it must come from a page of this very host, so no other site (the login host included)
 * can make a browser take someone else's sign-in.
 */
export function checkSameHost(c: Context, publicUrl: string): void {
  const from = claimedOrigin(c)
  if (!from || !isThisHost(c, from, new URL(publicUrl))) throw csrfRejected('this must be sent from a page of this host (Origin)')
}

/** The account credential behind the request (bearer session or personal token, or the cookie), if any. */
export async function callerOf(c: Context<AppEnv>, deps: AuthDeps): Promise<Caller | null> {
  const cached = c.get('caller')
  if (cached !== undefined) return cached
  const fromBearer = bearerToken(c)
  let caller: Caller | null = null
  if (fromBearer) {
    if (!isAgentToken(fromBearer)) {
      const verified = await verifyToken(deps, fromBearer, new Date())
      caller = verified ? { credential: verified, token: fromBearer, via: 'bearer' } : null
    }
  } else {
    const fromCookie = cookieValue(c, SESSION_COOKIE)
    if (fromCookie) {
      checkOrigin(c, deps.identity.publicUrl)
      const verified = await verifyToken(deps, fromCookie, new Date())
      caller = verified ? { credential: verified, token: fromCookie, via: 'cookie' } : null
    }
  }
  c.set('caller', caller)
  return caller
}

/** A signed-in account (a session, a personal token or the cookie), for the Auth and Orgs APIs. */
export async function requireAccount(c: Context<AppEnv>, deps: AuthDeps): Promise<Caller> {
  const caller = await callerOf(c, deps)
  if (!caller) throw unauthorized()
  return caller
}

/**
 * The account session itself, for what only the account may do: sessions and handoffs for its orgs, new
 * orgs, invites, personal tokens. A credential bound to one org (a tenant session, bearer or the org
 * host's cookie; a personal API token; an agent token) acts in that org only, so whoever holds one
 * cannot reach the account's other orgs or mint credentials that outlive it.
 */
export async function requireAccountSession(c: Context<AppEnv>, deps: AuthDeps): Promise<Caller> {
  const refused = () =>
    forbidden(
      'this credential is bound to one org: use the account session (the login host’s cookie, or its value as a bearer)',
      'ACCOUNT_SESSION_REQUIRED',
    )
  const token = bearerToken(c)
  if (token && isAgentToken(token)) {
    await deps.identity.agentTokens.verify(token).catch(() => {
      throw unauthorized('the agent token is invalid or expired')
    })
    throw refused()
  }
  const caller = await requireAccount(c, deps)
  if (caller.credential.kind !== 'session' || caller.credential.tenantId !== null) throw refused()
  return caller
}

/** Per event store (a test process may run several servers): slug → org id. */
const slugCaches = new WeakMap<object, Map<string, string>>()

/** An org named by id or by slug (the slug's reservation stream names it); null when neither names one. */
export async function resolveOrg(deps: AppDeps, ref: string): Promise<string | null> {
  if (z.uuid().safeParse(ref).success) return ref.toLowerCase()
  const slug = ref.toLowerCase()
  let slugCache = slugCaches.get(deps.store)
  if (!slugCache) {
    slugCache = new Map()
    slugCaches.set(deps.store, slugCache)
  }
  const cached = slugCache.get(slug)
  if (cached) return cached
  const reserved = await deps.store.readStream(orgNameStream(slug), { maxCount: 1 })
  const orgId = (reserved[0]?.data as { orgId?: string } | undefined)?.orgId ?? null
  // A slug names one org forever (the reservation is never released).
  if (orgId && slugCache.size < 10_000) slugCache.set(slug, orgId)
  return orgId
}

/** The slug of an org host `<slug>.<BASE_DOMAIN>`, or null for any other host. */
export function hostSlug(host: string | undefined, baseDomain: string): string | null {
  const name = (host ?? '').toLowerCase().replace(/:\d+$/, '')
  const base = baseDomain.toLowerCase()
  if (!name.endsWith(`.${base}`)) return null
  const slug = name.slice(0, -(base.length + 1))
  return /^[a-z0-9-]{1,63}$/.test(slug) ? slug : null
}

/**
 * The org a browser request is for: its host, or (outside production) the X-Org header or ?org=.
 * Null when the request names none; 404 when it names an org that does not exist.
 */
export async function orgOfRequest(c: Context, deps: AppDeps): Promise<string | null> {
  const slug = hostSlug(c.req.header('host'), deps.config.BASE_DOMAIN)
  let ref: string | null = slug
  if (!ref && deps.config.DEV_IDP) ref = c.req.header('x-org') ?? c.req.query('org') ?? null
  if (!ref) return null
  const orgId = await resolveOrg(deps, ref)
  if (!orgId) throw notFound('no such org')
  return orgId
}

type UserRow = { id: string; account_id: string | null; type: UserType; role: OrgRole; username: string | null; status: string }

const ACTIVATION_OPEN = new Set(['GET /api/me', 'POST /api/me/activate'])

/** Who a Tenant API request claims to be, before the org's users confirm it. */
async function claimOf(c: Context<AppEnv>, deps: AuthDeps): Promise<Claimed> {
  const token = bearerToken(c)
  if (token && isAgentToken(token)) {
    const claims = await deps.identity.agentTokens.verify(token).catch(() => {
      throw unauthorized('the agent token is invalid or expired')
    })
    return { tenantId: claims.tenantId, userId: claims.agentId, accountId: null, credential: 'agent_token', issuedAt: null }
  }
  const caller = await callerOf(c, deps)
  if (!caller) throw unauthorized()
  const { credential } = caller
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
    const row = await deps.db
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
  return { tenantId, userId, accountId: credential.accountId, credential: 'cookie', issuedAt: credential.issuedAt }
}

/**
 * Verifies the credential and records who it names, before anything waits: the per-user rate limit counts
 * by it ahead of authenticateTenant, whose consistentAfter wait would otherwise come first.
 */
export const claimTenant =
  (deps: AuthDeps): MiddlewareHandler<AppEnv> =>
  async (c, next) => {
    if (!c.req.path.startsWith('/api/internal/')) c.set('claimed', await claimOf(c, deps))
    await next()
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
    const claimed = c.get('claimed') ?? (await claimOf(c, deps))
    // consistentAfter (or Consistent-After) also holds for who the caller is: their role, the org's status.
    await consistent(c, deps, ['users', 'orgs'])
    const who = { tenantId: claimed.tenantId, userId: claimed.userId }
    const load = () =>
      inTenant(deps.db, who, async (trx) => {
        const user = (await trx
          .selectFrom('tenant.users')
          .select(['id', 'account_id', 'type', 'role', 'username', 'status'])
          .where('tenant_id', '=', who.tenantId)
          .where('id', '=', who.userId)
          .executeTakeFirst()) as UserRow | undefined
        const org = await trx.selectFrom('control.orgs').select('status').where('id', '=', who.tenantId).executeTakeFirst()
        return { user, orgStatus: org?.status as string | undefined }
      })
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
    if (orgStatus === 'suspended' && !SAFE.has(c.req.method)) {
      throw new HttpProblem({ status: 403, code: 'ORG_SUSPENDED', title: 'Forbidden', detail: 'this org is suspended' })
    }
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
    await next()
  }

/** /api/internal/*: services only, with `Authorization: Bearer <SERVICE_TOKEN>`. */
export const serviceAuth =
  (deps: AppDeps): MiddlewareHandler<AppEnv> =>
  async (c, next) => {
    const expected = deps.config.SERVICE_TOKEN
    const presented = bearerToken(c)
    if (!expected || !presented || !constantTimeEqual(presented, expected)) throw unauthorized('service credentials required')
    await next()
  }
