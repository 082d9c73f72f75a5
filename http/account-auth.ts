import type { Context } from 'hono'
import type { IdentityDeps } from '../adapters/identity.ts'
import { verifyToken } from './accounts.ts'
import { bearerToken, isAgentToken } from './bearer.ts'
import type { AppDeps, AppEnv } from './context.ts'
import { sessionCookie } from './cookies.ts'
import { checkOrigin } from './csrf.ts'
import type { Caller } from './principal.ts'
import { forbidden, unauthorized } from './problem.ts'

/*
 * The account credential of a request, for the Auth and Orgs APIs: `Authorization: Bearer` with a session
 * (`wss_…`) or a personal API token (`wsp_…`), or the `ws_session` cookie. Browsers get it on the login host
 * (an account session, from /auth/callback) and on each org host (a tenant session, from the handoff).
 */

export type AuthDeps = AppDeps & IdentityDeps

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
    const fromCookie = sessionCookie(c)
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
