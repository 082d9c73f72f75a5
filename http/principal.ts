import type { Context } from 'hono'
import type { Actor } from '../adapters/event-store.ts'
import { forbidden, unauthorized } from './problem.ts'

export type OrgRole = 'owner' | 'admin' | 'member' | 'guest'
export type UserType = 'human' | 'agent'

/**
 * Who is calling the Tenant API, resolved by the authentication middleware from a tenant session, a
 * personal API token, an agent token or the session cookie on the org host.
 */
export type Principal = {
  readonly tenantId: string
  readonly userId: string
  readonly accountId: string | null
  readonly type: UserType
  readonly role: OrgRole
  /** null until the user picks one (activation); the rest of /api stays closed until then. */
  readonly username: string | null
  readonly credential: 'session' | 'cookie' | 'personal_token' | 'agent_token'
}

export type PrincipalVariables = { principal?: Principal }

export function principalOf(c: Context): Principal {
  const p = (c.get as (k: string) => unknown)('principal') as Principal | undefined
  if (!p) throw unauthorized()
  return p
}

export const actorOf = (p: Principal): Actor => ({ type: p.type === 'agent' ? 'agent' : 'user', id: p.userId })

const rank: Record<OrgRole, number> = { guest: 0, member: 1, admin: 2, owner: 3 }

export const atLeast = (p: Principal, role: OrgRole): boolean => rank[p.role] >= rank[role]

export function requireRole(p: Principal, role: OrgRole): void {
  if (!atLeast(p, role)) throw forbidden(`this needs the ${role} role`)
}
