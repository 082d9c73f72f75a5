import type { Context } from 'hono'
import type { Actor, Position } from '../adapters/event-store.ts'
import type { VerifiedCredential } from './accounts.ts'
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

/** The account credential behind a request (a bearer session or personal token, or the cookie). */
export type Caller = { readonly credential: VerifiedCredential; readonly token: string; readonly via: 'bearer' | 'cookie' }

/** Who a Tenant API request's credential names, before the org's users confirm it. */
export type Claimed = {
  tenantId: string
  userId: string
  accountId: string | null
  credential: Principal['credential']
  /** Where the credential was issued (read models know its user from there), when known. */
  issuedAt: Position | null
  /** When the credential ends, and the credentials (it, and the sign-in it came from) whose revocation ends it. */
  expiresAt: Date
  credentialIds: readonly string[]
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
