import { type Decider, DomainError, type DomainEvent } from './decider.ts'

export const RESERVED_SLUGS: ReadonlySet<string> = new Set([
  'www',
  'api',
  'app',
  'apps',
  'admin',
  'auth',
  'login',
  'logout',
  'signup',
  'account',
  'accounts',
  'dev-idp',
  'control',
  'orgs',
  'org',
  'static',
  'assets',
  'cdn',
  'mail',
  'email',
  'smtp',
  'status',
  'help',
  'support',
  'docs',
  'billing',
  'blog',
  'about',
  'security',
  'root',
  'system',
  'internal',
  'webhooks',
  'realtime',
  'metrics',
  'healthz',
  'readyz',
  'openapi',
  'localhost',
  'null',
  'undefined',
  'test',
  'example',
])

export const SLUG_MIN = 3
export const SLUG_MAX = 40
export const NAME_MAX = 80

/** The host label an org is reached at: `<slug>.<BASE_DOMAIN>`. */
export const slugify = (name: string): string =>
  name
    .replace(/ß/g, 'ss')
    .normalize('NFKD')
    .replace(/\p{M}/gu, '')
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, SLUG_MAX)
    .replace(/-+$/g, '')

export type NameVerdict =
  | { readonly ok: true; readonly slug: string }
  | {
      readonly ok: false
      readonly slug: string
      readonly reason: 'invalid' | 'reserved'
      readonly detail: string
    }

/** Whether a name may become an org, before anyone checks whether it is taken. */
export function checkOrgName(name: string): NameVerdict {
  const trimmed = name.trim()
  const slug = slugify(trimmed)
  if (trimmed.length === 0 || trimmed.length > NAME_MAX) {
    return { ok: false, slug, reason: 'invalid', detail: `a name has 1 to ${NAME_MAX} characters` }
  }
  if (slug.length < SLUG_MIN) {
    return {
      ok: false,
      slug,
      reason: 'invalid',
      detail: `a name needs at least ${SLUG_MIN} letters or digits`,
    }
  }
  if (!/^[a-z]/.test(slug)) return { ok: false, slug, reason: 'invalid', detail: 'a name starts with a letter' }
  if (RESERVED_SLUGS.has(slug)) return { ok: false, slug, reason: 'reserved', detail: `"${slug}" is reserved` }
  return { ok: true, slug }
}

// --- The name reservation stream `org_name-<slug>`: uniqueness without consulting a read model.

export type OrgNameEvent = DomainEvent<'org.name_reserved', { orgId: string; slug: string; name: string }>
export type OrgNameState = { readonly reservedBy: string | null }
export type ReserveOrgName = { readonly orgId: string; readonly name: string }

export const orgName: Decider<ReserveOrgName, OrgNameEvent, OrgNameState> = {
  initialState: { reservedBy: null },
  decide(command, state) {
    const verdict = checkOrgName(command.name)
    if (!verdict.ok) throw new DomainError(verdict.reason === 'reserved' ? 'NAME_RESERVED' : 'NAME_INVALID', verdict.detail)
    if (state.reservedBy === command.orgId) return []
    if (state.reservedBy !== null) throw new DomainError('NAME_TAKEN', `"${verdict.slug}" is taken`, 'conflict')
    return [
      {
        type: 'org.name_reserved',
        data: { orgId: command.orgId, slug: verdict.slug, name: command.name.trim() },
      },
    ]
  },
  evolve: (state, event) => (event.type === 'org.name_reserved' ? { reservedBy: event.data.orgId } : state),
}

// --- The org stream `org-<orgId>`: the org and its members, so that "the last owner stays" is one stream's rule.

export type OrgRole = 'owner' | 'admin' | 'member' | 'guest'
export type UserType = 'human' | 'agent'

export type MemberJoined = {
  userId: string
  accountId: string | null
  type: UserType
  role: OrgRole
  email: string | null
  displayName: string
  /** Agents are created with their username; people pick theirs at activation. */
  username?: string
  at: string
}

/** What an operator allows an org: seats (active people; agents are not counted) and stored bytes. null: no limit. */
export type OrgLimits = { readonly seats: number | null; readonly storageBytes: number | null }

/** Which LLMs an org's agents may call, with whose key, and how many tokens a calendar month (null: no budget). */
export type LlmPolicy = {
  readonly allowedModels: readonly string[]
  readonly keySource: 'platform' | 'org'
  readonly monthlyTokenBudget: number | null
}

export const NO_LIMITS: OrgLimits = { seats: null, storageBytes: null }

export type OrgEvent =
  | DomainEvent<'org.created', { orgId: string; name: string; slug: string; createdBy: { type: string; id: string }; at: string }>
  | DomainEvent<'org.suspended', { orgId: string; reason: string; at: string }>
  | DomainEvent<'org.reactivated', { orgId: string; at: string }>
  | DomainEvent<'org.limits_set', { orgId: string; seats: number | null; storageBytes: number | null; at: string }>
  | DomainEvent<'org.llm_policy_set', { orgId: string } & LlmPolicy & { at: string }>
  | DomainEvent<'user.joined', MemberJoined>
  | DomainEvent<'user.activated', { userId: string; username: string; at: string }>
  | DomainEvent<'user.role_changed', { userId: string; role: OrgRole; by: string; at: string }>
  | DomainEvent<'user.deactivated', { userId: string; by: string; at: string }>

export type Member = {
  readonly accountId: string | null
  readonly type: UserType
  readonly role: OrgRole
  readonly active: boolean
  readonly username: string | null
}

export type OrgState =
  | { readonly status: 'none' }
  | {
      readonly status: 'active' | 'suspended'
      readonly name: string
      readonly slug: string
      readonly members: ReadonlyMap<string, Member>
      readonly limits: OrgLimits
      /** null until an operator sets one: the platform's defaults apply. */
      readonly llmPolicy: LlmPolicy | null
    }

export type OrgCommand =
  | { type: 'create'; orgId: string; name: string; slug: string; createdBy: { type: string; id: string }; at: string }
  | { type: 'suspend'; orgId: string; reason: string; at: string }
  | { type: 'reactivate'; orgId: string; at: string }
  | { type: 'set_limits'; orgId: string; seats: number | null; storageBytes: number | null; at: string }
  | ({ type: 'set_llm_policy'; orgId: string; at: string } & LlmPolicy)
  | { type: 'join'; member: MemberJoined }
  /** The username is already reserved on its own stream; this records it on the member. */
  | { type: 'activate'; userId: string; username: string; at: string }
  | { type: 'change_role'; userId: string; role: OrgRole; actor: { userId: string; role: OrgRole }; at: string }
  | { type: 'deactivate'; userId: string; actor: { userId: string; role: OrgRole }; at: string }

export const USERNAME = /^[a-z0-9][a-z0-9_.-]{0,38}[a-z0-9]$|^[a-z0-9]$/

type Existing = Extract<OrgState, { members: unknown }>

const existingOrg = (s: OrgState): Existing => {
  if (s.status === 'none') throw new DomainError('ORG_NOT_FOUND', 'no such org', 'not_found')
  return s
}

/** The people who hold a seat: active human users (agents take none). */
export const seatsTaken = (s: OrgState): number =>
  s.status === 'none' ? 0 : [...s.members.values()].filter((m) => m.active && m.type === 'human').length

/** A person may join only into a free seat (agents take none). */
export function requireSeat(s: OrgState): void {
  if (s.status === 'none' || s.limits.seats === null || seatsTaken(s) < s.limits.seats) return
  throw new DomainError(
    'SEAT_LIMIT_REACHED',
    `all ${s.limits.seats} seats of this org are taken: an admin frees one, or an operator raises the limit`,
  )
}

const activeOwners = (s: Existing) => [...s.members.values()].filter((m) => m.active && m.role === 'owner').length

const memberOf = (s: Existing, userId: string): Member => {
  const m = s.members.get(userId)
  if (!m) throw new DomainError('USER_NOT_FOUND', 'no such user', 'not_found')
  return m
}

/** The acting user as the org stream knows them: their role there, not what a read model said a moment ago. */
const actorIn = (s: Existing, actor: { userId: string; role: OrgRole }): { userId: string; role: OrgRole } => {
  const m = s.members.get(actor.userId)
  if (!m?.active) throw new DomainError('FORBIDDEN', 'you are not a member of this org', 'forbidden')
  return { userId: actor.userId, role: m.role }
}

/** The account's active membership, if any. */
export const membershipOf = (s: OrgState, accountId: string): [string, Member] | null => {
  if (s.status === 'none') return null
  for (const [userId, m] of s.members) if (m.accountId === accountId && m.active) return [userId, m]
  return null
}

export const org: Decider<OrgCommand, OrgEvent, OrgState> = {
  initialState: { status: 'none' },
  decide(command, state) {
    switch (command.type) {
      case 'create':
        if (state.status !== 'none') throw new DomainError('ORG_EXISTS', 'this org already exists', 'conflict')
        return [
          {
            type: 'org.created',
            data: { orgId: command.orgId, name: command.name, slug: command.slug, createdBy: command.createdBy, at: command.at },
          },
        ]
      case 'suspend': {
        const s = existingOrg(state)
        if (s.status === 'suspended') return []
        return [{ type: 'org.suspended', data: { orgId: command.orgId, reason: command.reason, at: command.at } }]
      }
      case 'reactivate': {
        const s = existingOrg(state)
        if (s.status === 'active') return []
        return [{ type: 'org.reactivated', data: { orgId: command.orgId, at: command.at } }]
      }
      case 'set_limits': {
        const s = existingOrg(state)
        if (command.seats !== null && command.seats < seatsTaken(s)) {
          throw new DomainError(
            'SEATS_BELOW_USAGE',
            `${command.seats} seats is fewer than the ${seatsTaken(s)} active people in the org: deactivate some first`,
          )
        }
        if (command.seats === s.limits.seats && command.storageBytes === s.limits.storageBytes) return []
        return [
          {
            type: 'org.limits_set',
            data: { orgId: command.orgId, seats: command.seats, storageBytes: command.storageBytes, at: command.at },
          },
        ]
      }
      case 'set_llm_policy': {
        const s = existingOrg(state)
        const allowedModels = [...new Set(command.allowedModels)]
        const policy: LlmPolicy = { allowedModels, keySource: command.keySource, monthlyTokenBudget: command.monthlyTokenBudget }
        if (
          s.llmPolicy &&
          s.llmPolicy.keySource === policy.keySource &&
          s.llmPolicy.monthlyTokenBudget === policy.monthlyTokenBudget &&
          s.llmPolicy.allowedModels.length === allowedModels.length &&
          s.llmPolicy.allowedModels.every((m, i) => m === allowedModels[i])
        )
          return []
        return [{ type: 'org.llm_policy_set', data: { orgId: command.orgId, ...policy, at: command.at } }]
      }
      case 'join': {
        const s = existingOrg(state)
        const m = command.member
        if (s.members.has(m.userId)) return []
        if (m.accountId && membershipOf(s, m.accountId))
          throw new DomainError('ALREADY_MEMBER', 'this account is a member already', 'conflict')
        if (m.type === 'human') requireSeat(s)
        return [{ type: 'user.joined', data: m }]
      }
      case 'activate': {
        const s = existingOrg(state)
        const m = memberOf(s, command.userId)
        if (m.username === command.username) return []
        if (m.username !== null) throw new DomainError('ALREADY_ACTIVATED', 'this user has a username already', 'conflict')
        return [{ type: 'user.activated', data: { userId: command.userId, username: command.username, at: command.at } }]
      }
      case 'change_role': {
        const s = existingOrg(state)
        const m = memberOf(s, command.userId)
        if (!m.active) throw new DomainError('USER_NOT_FOUND', 'no such user', 'not_found')
        if (m.role === command.role) return []
        const actor = actorIn(s, command.actor)
        // Owners set any role; admins move people between member and guest, and promote to admin.
        const allowed =
          actor.role === 'owner' ||
          (actor.role === 'admin' &&
            m.role !== 'owner' &&
            command.role !== 'owner' &&
            !(m.role === 'admin' && actor.userId !== command.userId))
        if (!allowed) throw new DomainError('FORBIDDEN', 'your role cannot make this change', 'forbidden')
        if (m.role === 'owner' && activeOwners(s) === 1) throw new DomainError('LAST_OWNER', 'an org keeps at least one owner')
        if (m.type === 'agent' && command.role === 'owner') throw new DomainError('AGENT_OWNER', 'agents cannot own an org')
        return [
          { type: 'user.role_changed', data: { userId: command.userId, role: command.role, by: actor.userId, at: command.at } },
        ]
      }
      case 'deactivate': {
        const s = existingOrg(state)
        const m = memberOf(s, command.userId)
        if (!m.active) return []
        const actor = actorIn(s, command.actor)
        if (actor.userId !== command.userId && !(actor.role === 'owner' || (actor.role === 'admin' && m.role !== 'owner'))) {
          throw new DomainError('FORBIDDEN', 'your role cannot remove this user', 'forbidden')
        }
        if (m.role === 'owner' && activeOwners(s) === 1) throw new DomainError('LAST_OWNER', 'an org keeps at least one owner')
        return [{ type: 'user.deactivated', data: { userId: command.userId, by: actor.userId, at: command.at } }]
      }
    }
  },
  evolve(state, event) {
    if (event.type === 'org.created')
      return {
        status: 'active',
        name: event.data.name,
        slug: event.data.slug,
        members: new Map(),
        limits: NO_LIMITS,
        llmPolicy: null,
      }
    if (state.status === 'none') return state
    const withMember = (userId: string, change: (m: Member) => Member) => {
      const m = state.members.get(userId)
      return m ? { ...state, members: new Map(state.members).set(userId, change(m)) } : state
    }
    switch (event.type) {
      case 'org.suspended':
        return { ...state, status: 'suspended' }
      case 'org.reactivated':
        return { ...state, status: 'active' }
      case 'org.limits_set':
        return { ...state, limits: { seats: event.data.seats, storageBytes: event.data.storageBytes } }
      case 'org.llm_policy_set': {
        const { allowedModels, keySource, monthlyTokenBudget } = event.data
        return { ...state, llmPolicy: { allowedModels, keySource, monthlyTokenBudget } }
      }
      case 'user.joined': {
        const d = event.data
        const member: Member = { accountId: d.accountId, type: d.type, role: d.role, active: true, username: d.username ?? null }
        return { ...state, members: new Map(state.members).set(d.userId, member) }
      }
      case 'user.activated':
        return withMember(event.data.userId, (m) => ({ ...m, username: event.data.username }))
      case 'user.role_changed':
        return withMember(event.data.userId, (m) => ({ ...m, role: event.data.role }))
      case 'user.deactivated':
        return withMember(event.data.userId, (m) => ({ ...m, active: false }))
    }
  },
}

// --- Username reservation per org (`username-<orgId>_<username>`).

export type UsernameEvent = DomainEvent<'user.username_reserved', { orgId: string; userId: string; username: string }>
export const usernameReservation: Decider<
  { orgId: string; userId: string; username: string },
  UsernameEvent,
  { userId: string | null }
> = {
  initialState: { userId: null },
  decide(c, s) {
    if (!USERNAME.test(c.username)) {
      throw new DomainError('USERNAME_INVALID', 'a username has 1 to 40 lowercase letters, digits, dots, dashes or underscores')
    }
    if (s.userId === c.userId) return []
    if (s.userId !== null) throw new DomainError('USERNAME_TAKEN', `@${c.username} is taken`, 'conflict')
    return [{ type: 'user.username_reserved', data: c }]
  },
  evolve: (_, e) => ({ userId: e.data.userId }),
}
