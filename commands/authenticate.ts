import type { Context, MiddlewareHandler } from 'hono'
import { publicPosition } from '../adapters/event-store.ts'
import type { AppDeps, AppEnv } from '../adapters/http/context.ts'
import { pipelineDeps } from '../adapters/http/context.ts'
import type { OrgRole, Principal, UserType } from '../adapters/http/principal.ts'
import { forbidden, HttpProblem, unauthorized } from '../adapters/http/problem.ts'
import { inTenant } from '../read-api/scope.ts'
import { type VerifiedCredential, verifyToken } from './accounts.ts'
import { loadOrg } from './orgs.ts'

export type Caller = { readonly credential: VerifiedCredential; readonly token: string }

const bearer = (c: Context): string | null => {
  const m = /^Bearer\s+(\S+)$/i.exec(c.req.header('authorization') ?? '')
  return m ? m[1]! : null
}

/** The credential behind the request, if any: a bearer token, or the session cookie. */
export async function callerOf(c: Context<AppEnv>, deps: AppDeps): Promise<Caller | null> {
  const cached = c.get('caller')
  if (cached !== undefined) return cached
  const token = bearer(c) ?? cookieToken(c)
  const verified = token ? await verifyToken(pipelineDeps(deps), token, new Date()) : null
  const caller = verified && token ? { credential: verified, token } : null
  c.set('caller', caller)
  return caller
}

/** The session cookie (set on the org host by the handoff, or on the login host by the callback). */
export const SESSION_COOKIE = 'ws_session'
const cookieToken = (c: Context): string | null => {
  const header = c.req.header('cookie')
  if (!header) return null
  for (const part of header.split(';')) {
    const [k, ...v] = part.trim().split('=')
    if (k === SESSION_COOKIE) return decodeURIComponent(v.join('='))
  }
  return null
}

/** A signed-in account (any credential), for the Auth and Orgs APIs. */
export async function requireAccount(c: Context<AppEnv>, deps: AppDeps): Promise<Caller> {
  const caller = await callerOf(c, deps)
  if (!caller) throw unauthorized()
  return caller
}

type UserRow = { id: string; account_id: string | null; type: UserType; role: OrgRole; username: string | null; status: string }

const ACTIVATION_OPEN = new Set(['GET /api/me', 'POST /api/me/activate'])
const SAFE = new Set(['GET', 'HEAD', 'OPTIONS'])

/**
 * The Tenant API's authentication: the caller's tenant credential resolved to a Principal. A user who has
 * not picked a username only reaches /api/me; a suspended org reads but takes no commands.
 */
export const authenticateTenant =
  (deps: AppDeps): MiddlewareHandler<AppEnv> =>
  async (c, next) => {
    const caller = await callerOf(c, deps)
    if (!caller) throw unauthorized()
    const { credential } = caller
    if (!credential.tenantId || !credential.userId) {
      throw forbidden(
        'this credential is not for an org: get a tenant session (POST /auth/tenant-session)',
        'TENANT_SESSION_REQUIRED',
      )
    }
    const who = { tenantId: credential.tenantId, userId: credential.userId }
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
      await deps.waiter.waitFor(['users', 'orgs'], BigInt(publicPosition(credential.issuedAt)))
      found = await load()
    }
    const { user, orgStatus } = found
    if (!user || user.status !== 'active') throw unauthorized('this user is no longer in the org')
    if (orgStatus === 'suspended' && !SAFE.has(c.req.method)) {
      throw new HttpProblem({ status: 403, code: 'ORG_SUSPENDED', title: 'Forbidden', detail: 'this org is suspended' })
    }
    let username = user.username
    if (username === null && !ACTIVATION_OPEN.has(`${c.req.method} ${c.req.path}`)) {
      // The read model may trail an activation made a moment ago: the org stream has the last word.
      const state = await loadOrg(pipelineDeps(deps), who.tenantId)
      username = state.status === 'none' ? null : (state.members.get(user.id)?.username ?? null)
      if (username === null) throw forbidden('pick a username first: POST /api/me/activate', 'ACTIVATION_REQUIRED')
    }
    const principal: Principal = {
      tenantId: who.tenantId,
      userId: user.id,
      accountId: user.account_id,
      type: user.type,
      role: user.role,
      username,
      credential: credential.kind === 'personal_token' ? 'personal_token' : caller.token === bearer(c) ? 'session' : 'cookie',
    }
    c.set('principal', principal)
    await next()
  }
