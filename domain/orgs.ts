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

// --- The org stream `org-<orgId>`.

export type OrgEvent =
  | DomainEvent<'org.created', { orgId: string; name: string; slug: string; createdBy: { type: string; id: string }; at: string }>
  | DomainEvent<'org.suspended', { orgId: string; reason: string; at: string }>
  | DomainEvent<'org.reactivated', { orgId: string; at: string }>

export type OrgState =
  | { readonly status: 'none' }
  | { readonly status: 'active' | 'suspended'; readonly name: string; readonly slug: string }

export type OrgCommand =
  | {
      type: 'create'
      orgId: string
      name: string
      slug: string
      createdBy: { type: string; id: string }
      at: string
    }
  | { type: 'suspend'; orgId: string; reason: string; at: string }
  | { type: 'reactivate'; orgId: string; at: string }

export const org: Decider<OrgCommand, OrgEvent, OrgState> = {
  initialState: { status: 'none' },
  decide(command, state) {
    switch (command.type) {
      case 'create':
        if (state.status !== 'none') throw new DomainError('ORG_EXISTS', 'this org already exists', 'conflict')
        return [
          {
            type: 'org.created',
            data: {
              orgId: command.orgId,
              name: command.name,
              slug: command.slug,
              createdBy: command.createdBy,
              at: command.at,
            },
          },
        ]
      case 'suspend':
        if (state.status === 'none') throw new DomainError('ORG_NOT_FOUND', 'no such org', 'not_found')
        if (state.status === 'suspended') return []
        return [{ type: 'org.suspended', data: { orgId: command.orgId, reason: command.reason, at: command.at } }]
      case 'reactivate':
        if (state.status === 'none') throw new DomainError('ORG_NOT_FOUND', 'no such org', 'not_found')
        if (state.status === 'active') return []
        return [{ type: 'org.reactivated', data: { orgId: command.orgId, at: command.at } }]
    }
  },
  evolve(state, event) {
    switch (event.type) {
      case 'org.created':
        return { status: 'active', name: event.data.name, slug: event.data.slug }
      case 'org.suspended':
        return state.status === 'none' ? state : { ...state, status: 'suspended' }
      case 'org.reactivated':
        return state.status === 'none' ? state : { ...state, status: 'active' }
    }
  },
}
