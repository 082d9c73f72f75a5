import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { fold } from '../../domain/decider.ts'
import {
  checkOrgName,
  type LlmPolicy,
  type MemberJoined,
  membershipOf,
  NAME_MAX,
  type OrgCommand,
  type OrgEvent,
  org,
  orgName,
  SLUG_MAX,
  slugify,
  usernameReservation,
} from '../../domain/orgs.ts'
import { deciderSpec } from '../support/given-when-then.ts'
import { refusal, spec } from './spec.ts'

const orgId = '01935c7e-0000-7000-8000-000000000001'
const other = '01935c7e-0000-7000-8000-000000000002'
const at = '2026-11-28T10:00:00.000Z'
const createdBy = { type: 'user', id: 'acc-1' }

describe('org names', () => {
  it('slugs are lowercase ascii words joined by hyphens', () => {
    expect(slugify('  Acme Corp  ')).toBe('acme-corp')
    expect(slugify('Ünïcödé Straße')).toBe('unicode-strasse')
    expect(slugify('a--b__c')).toBe('a-b-c')
  })

  it('refuses invalid and reserved names with a reason', () => {
    expect(checkOrgName('ab')).toMatchObject({ ok: false, reason: 'invalid' })
    expect(checkOrgName('1password')).toMatchObject({ ok: false, reason: 'invalid' })
    expect(checkOrgName('Admin')).toMatchObject({ ok: false, reason: 'reserved' })
    expect(checkOrgName('x'.repeat(81))).toMatchObject({ ok: false, reason: 'invalid' })
    expect(checkOrgName('Acme')).toEqual({ ok: true, slug: 'acme' })
  })

  it('every accepted slug is a valid host label', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 100 }), (name) => {
        const v = checkOrgName(name)
        if (v.ok) expect(v.slug).toMatch(/^[a-z][a-z0-9-]{2,39}$/)
        if (v.ok) expect(v.slug.endsWith('-')).toBe(false)
      }),
    )
  })
})

describe('org name reservation', () => {
  const spec = deciderSpec(orgName)
  it('reserves a free name', () =>
    spec
      .given([])
      .when({ orgId, name: ' Acme ' })
      .then([{ type: 'org.name_reserved', data: { orgId, slug: 'acme', name: 'Acme' } }]))
  it('refuses a name another org holds', () =>
    spec
      .given([{ type: 'org.name_reserved', data: { orgId: other, slug: 'acme', name: 'Acme' } }])
      .when({ orgId, name: 'ACME' })
      .thenRefused('NAME_TAKEN'))
  it('is idempotent for the org that holds it', () =>
    spec
      .given([{ type: 'org.name_reserved', data: { orgId, slug: 'acme', name: 'Acme' } }])
      .when({ orgId, name: 'Acme' })
      .then([]))
  it('refuses reserved names', () => spec.given([]).when({ orgId, name: 'www' }).thenRefused('NAME_RESERVED'))
})

describe('org', () => {
  const spec = deciderSpec(org)
  const created = { type: 'org.created' as const, data: { orgId, name: 'Acme', slug: 'acme', createdBy, at } }
  it('is created once', () => {
    spec.given([]).when({ type: 'create', orgId, name: 'Acme', slug: 'acme', createdBy, at }).then([created])
    spec.given([created]).when({ type: 'create', orgId, name: 'Acme', slug: 'acme', createdBy, at }).thenRefused('ORG_EXISTS')
  })
  it('is suspended and reactivated, idempotently', () => {
    const suspended = { type: 'org.suspended' as const, data: { orgId, reason: 'abuse', at } }
    spec.given([created]).when({ type: 'suspend', orgId, reason: 'abuse', at }).then([suspended])
    spec.given([created, suspended]).when({ type: 'suspend', orgId, reason: 'abuse', at }).then([])
    spec
      .given([created, suspended])
      .when({ type: 'reactivate', orgId, at })
      .then([{ type: 'org.reactivated', data: { orgId, at } }])
    spec.given([]).when({ type: 'suspend', orgId, reason: 'x', at }).thenRefused('ORG_NOT_FOUND')
  })
})

describe('org names: slugs and verdicts', () => {
  it('a slug drops accents, spells ß as ss, and joins words with one hyphen, none at either end', () => {
    expect(slugify('--Acme  &  Co--')).toBe('acme-co')
    expect(slugify('GROSSE Straße ßß')).toBe('grosse-strasse-ssss')
    expect(slugify('Ｆｕｌｌ ﬁne Crème')).toBe('full-fine-creme')
  })

  it('a slug has at most 40 characters and does not end in a hyphen where it was cut', () => {
    expect(slugify('a'.repeat(50))).toBe('a'.repeat(SLUG_MAX))
    expect(slugify(`${'a'.repeat(39)} bcd`)).toBe('a'.repeat(39))
  })

  it('a name has 1 to 80 characters once trimmed, and the verdict says why it is refused', () => {
    const longest = `Acme ${'x'.repeat(NAME_MAX - 5)}`
    expect(checkOrgName(`  ${longest}  `)).toEqual({ ok: true, slug: slugify(longest) })
    const tooLong = checkOrgName(`${longest}x`)
    expect(tooLong).toMatchObject({ ok: false, reason: 'invalid', slug: slugify(`${longest}x`) })
    const empty = checkOrgName('   ')
    expect(empty).toMatchObject({ ok: false, reason: 'invalid', slug: '' })
    for (const v of [tooLong, empty]) expect(!v.ok && v.detail).not.toBe('')
    expect(!empty.ok && empty.detail, 'an empty name is told the length bounds').toBe(!tooLong.ok && tooLong.detail)
  })

  it('a slug needs 3 letters or digits, starting with a letter', () => {
    expect(checkOrgName('Abc')).toEqual({ ok: true, slug: 'abc' })
    expect(checkOrgName('Ab')).toMatchObject({ ok: false, reason: 'invalid', slug: 'ab' })
    expect(checkOrgName('3M Company')).toMatchObject({ ok: false, reason: 'invalid', slug: '3m-company' })
    expect(checkOrgName('!!')).toMatchObject({ ok: false, reason: 'invalid' })
    for (const name of ['Ab', '3M Company']) {
      const v = checkOrgName(name)
      expect(!v.ok && v.detail).not.toBe('')
    }
  })

  it('the hosts the platform serves, and names that read as nothing, are reserved', () => {
    const platform = ['www', 'api', 'app', 'apps', 'admin', 'auth', 'login', 'logout', 'signup', 'account', 'accounts']
    const services = ['dev-idp', 'control', 'orgs', 'org', 'static', 'assets', 'cdn', 'mail', 'email', 'smtp', 'status']
    const pages = ['help', 'support', 'docs', 'billing', 'blog', 'about', 'security', 'root', 'system', 'internal']
    const operations = ['webhooks', 'realtime', 'metrics', 'healthz', 'readyz', 'openapi', 'localhost']
    const nothing = ['null', 'undefined', 'test', 'example']
    for (const slug of [...platform, ...services, ...pages, ...operations, ...nothing])
      expect(checkOrgName(slug), slug).toMatchObject({ ok: false, slug, reason: 'reserved' })
  })

  it('reserved slugs are refused whatever their spelling, and say which', () => {
    for (const name of ['API', 'Dev IdP', 'control', 'Webhooks!']) {
      const v = checkOrgName(name)
      expect(v, name).toMatchObject({ ok: false, reason: 'reserved' })
      expect(!v.ok && v.detail).toContain(v.slug)
    }
  })
})

describe('org name reservation: refusals', () => {
  const rules = spec(orgName)
  it('an invalid name is refused before anyone checks whether it is taken', () => {
    rules.given([]).when({ orgId, name: 'ab' }).thenRefused('NAME_INVALID')
    rules.given([]).when({ orgId, name: 'www' }).thenRefused('NAME_RESERVED')
  })
  it('a name another org holds is a conflict; the holder is remembered', () => {
    rules
      .given([{ type: 'org.name_reserved', data: { orgId: other, slug: 'acme', name: 'Acme' } }])
      .when({ orgId, name: 'acme' })
      .thenRefused('NAME_TAKEN', 'conflict')
    expect(orgName.initialState).toEqual({ reservedBy: null })
    expect(fold(orgName, [{ type: 'org.name_reserved', data: { orgId: other, slug: 'acme', name: 'Acme' } }])).toEqual({
      reservedBy: other,
    })
  })
})

const member = (userId: string, role: MemberJoined['role'], over: Partial<MemberJoined> = {}): MemberJoined => ({
  userId,
  accountId: `acc-${userId}`,
  type: 'human',
  role,
  email: `${userId}@acme.test`,
  displayName: userId,
  at,
  ...over,
})
const joined = (m: MemberJoined): OrgEvent => ({ type: 'user.joined', data: m })
const created: OrgEvent = { type: 'org.created', data: { orgId, name: 'Acme', slug: 'acme', createdBy, at } }
const team = [
  created,
  joined(member('o1', 'owner')),
  joined(member('a1', 'admin')),
  joined(member('a2', 'admin')),
  joined(member('m1', 'member')),
  joined(member('g1', 'guest')),
]
type Role = MemberJoined['role']
const changeRole = (userId: string, role: Role, actor: string): OrgCommand => ({
  type: 'change_role',
  userId,
  role,
  actor: { userId: actor, role: 'owner' },
  at,
})
const roleChanged = (userId: string, role: Role, by: string): OrgEvent => ({
  type: 'user.role_changed',
  data: { userId, role, by, at },
})
const deactivate = (userId: string, actor: string): OrgCommand => ({
  type: 'deactivate',
  userId,
  actor: { userId: actor, role: 'owner' },
  at,
})
const deactivated = (userId: string, by: string): OrgEvent => ({ type: 'user.deactivated', data: { userId, by, at } })

describe('org: a stream that does not exist', () => {
  const rules = spec(org)
  it('refuses everything but creation, as not found', () => {
    const commands: OrgCommand[] = [
      { type: 'suspend', orgId, reason: 'x', at },
      { type: 'reactivate', orgId, at },
      { type: 'set_limits', orgId, seats: 3, storageBytes: null, at },
      { type: 'set_llm_policy', orgId, allowedModels: [], keySource: 'platform', monthlyTokenBudget: null, at },
      { type: 'join', member: member('m1', 'member') },
      { type: 'activate', userId: 'm1', username: 'm1', at },
      changeRole('m1', 'admin', 'o1'),
      deactivate('m1', 'o1'),
    ]
    for (const c of commands) rules.given([]).when(c).thenRefused('ORG_NOT_FOUND', 'not_found')
  })
  it('ignores events that come before its creation', () => {
    expect(org.initialState).toEqual({ status: 'none' })
    for (const e of team.slice(1)) expect(fold(org, [e])).toEqual({ status: 'none' })
    expect(fold(org, [{ type: 'org.suspended', data: { orgId, reason: 'x', at } }])).toEqual({ status: 'none' })
  })
  it('a created org is active, named, with no members yet', () =>
    expect(fold(org, [created])).toEqual({
      status: 'active',
      name: 'Acme',
      slug: 'acme',
      members: new Map(),
      limits: { seats: null, storageBytes: null },
      llmPolicy: null,
    }))
  it('creating it again is a conflict', () =>
    rules
      .given([created])
      .when({ type: 'create', orgId, name: 'Acme', slug: 'acme', createdBy, at })
      .thenRefused('ORG_EXISTS', 'conflict'))
})

describe('org: suspension', () => {
  const rules = spec(org)
  const suspended: OrgEvent = { type: 'org.suspended', data: { orgId, reason: 'abuse', at } }
  it('reactivating an active org changes nothing; a reactivated org can be suspended again', () => {
    rules.given([created]).when({ type: 'reactivate', orgId, at }).then([])
    rules
      .given([created, suspended, { type: 'org.reactivated', data: { orgId, at } }])
      .when({ type: 'suspend', orgId, reason: 'again', at })
      .then([{ type: 'org.suspended', data: { orgId, reason: 'again', at } }])
  })
  it('the state follows', () => {
    expect(fold(org, [created, suspended])).toMatchObject({ status: 'suspended' })
    expect(fold(org, [created, suspended, { type: 'org.reactivated', data: { orgId, at } }])).toMatchObject({
      status: 'active',
    })
  })
})

describe('org: joining and activation', () => {
  const rules = spec(org)
  it('a person joins once; the same user again changes nothing', () => {
    rules
      .given([created])
      .when({ type: 'join', member: member('m1', 'member') })
      .then([joined(member('m1', 'member'))])
    rules
      .given(team)
      .when({ type: 'join', member: member('m1', 'admin') })
      .then([])
  })
  it('an account is an active member once; after leaving it joins again as a new user', () => {
    rules
      .given(team)
      .when({ type: 'join', member: member('m9', 'member', { accountId: 'acc-m1' }) })
      .thenRefused('ALREADY_MEMBER', 'conflict')
    rules
      .given([...team, deactivated('m1', 'm1')])
      .when({ type: 'join', member: member('m9', 'member', { accountId: 'acc-m1' }) })
      .then([joined(member('m9', 'member', { accountId: 'acc-m1' }))])
  })
  it('agents, without an account, join with their username', () => {
    const bot = member('bot', 'member', { accountId: null, type: 'agent', username: 'bot', email: null })
    rules
      .given(team)
      .when({ type: 'join', member: bot })
      .then([joined(bot)])
    const s = fold(org, [...team, joined(bot)])
    expect(s.status !== 'none' && s.members.get('bot')).toEqual({
      accountId: null,
      type: 'agent',
      role: 'member',
      active: true,
      username: 'bot',
    })
  })
  it('a person is activated once with a username; the same username again changes nothing', () => {
    const activated: OrgEvent = { type: 'user.activated', data: { userId: 'm1', username: 'mia', at } }
    rules.given(team).when({ type: 'activate', userId: 'm1', username: 'mia', at }).then([activated])
    rules
      .given([...team, activated])
      .when({ type: 'activate', userId: 'm1', username: 'mia', at })
      .then([])
    rules
      .given([...team, activated])
      .when({ type: 'activate', userId: 'm1', username: 'mia2', at })
      .thenRefused('ALREADY_ACTIVATED', 'conflict')
    rules.given(team).when({ type: 'activate', userId: 'nobody', username: 'x', at }).thenRefused('USER_NOT_FOUND', 'not_found')
    const s = fold(org, [...team, activated])
    expect(s.status !== 'none' && s.members.get('m1')).toEqual({
      accountId: 'acc-m1',
      type: 'human',
      role: 'member',
      active: true,
      username: 'mia',
    })
  })
  it('the active membership of an account is found; a former or unknown one is not', () => {
    expect(membershipOf(fold(org, team), 'acc-a1')).toEqual([
      'a1',
      { accountId: 'acc-a1', type: 'human', role: 'admin', active: true, username: null },
    ])
    expect(membershipOf(fold(org, [...team, deactivated('a1', 'a1')]), 'acc-a1')).toBeNull()
    expect(membershipOf(fold(org, team), 'acc-nobody')).toBeNull()
    expect(membershipOf(org.initialState, 'acc-a1')).toBeNull()
  })
})

describe('org: roles', () => {
  const rules = spec(org)
  it('owners set any role, owner included', () => {
    rules
      .given(team)
      .when(changeRole('m1', 'owner', 'o1'))
      .then([roleChanged('m1', 'owner', 'o1')])
    rules
      .given(team)
      .when(changeRole('a1', 'guest', 'o1'))
      .then([roleChanged('a1', 'guest', 'o1')])
  })
  it('admins move people between guest and member, promote to admin, and step down themselves', () => {
    rules
      .given(team)
      .when(changeRole('g1', 'member', 'a1'))
      .then([roleChanged('g1', 'member', 'a1')])
    rules
      .given(team)
      .when(changeRole('m1', 'guest', 'a1'))
      .then([roleChanged('m1', 'guest', 'a1')])
    rules
      .given(team)
      .when(changeRole('a1', 'member', 'a1'))
      .then([roleChanged('a1', 'member', 'a1')])
  })
  it('admins neither demote other admins nor make owners', () => {
    rules
      .given(team)
      .when(changeRole('a2', 'member', 'a1'))
      .thenRefused('FORBIDDEN', 'forbidden')
    rules
      .given(team)
      .when(changeRole('a1', 'owner', 'a1'))
      .thenRefused('FORBIDDEN', 'forbidden')
  })
  it('members and guests change no roles, not even their own', () => {
    rules
      .given(team)
      .when(changeRole('g1', 'member', 'm1'))
      .thenRefused('FORBIDDEN', 'forbidden')
    rules
      .given(team)
      .when(changeRole('g1', 'member', 'g1'))
      .thenRefused('FORBIDDEN', 'forbidden')
  })
  it('someone who left acts no more', () =>
    rules
      .given([...team, deactivated('a1', 'a1')])
      .when(changeRole('m1', 'admin', 'a1'))
      .thenRefused('FORBIDDEN', 'forbidden'))
  it('the role a user has already changes nothing', () =>
    rules
      .given(team)
      .when(changeRole('m1', 'member', 'o1'))
      .then([]))
  it('users who left or never joined have no role to change', () => {
    rules
      .given([...team, deactivated('m1', 'o1')])
      .when(changeRole('m1', 'admin', 'o1'))
      .thenRefused('USER_NOT_FOUND', 'not_found')
    rules
      .given(team)
      .when(changeRole('nobody', 'admin', 'o1'))
      .thenRefused('USER_NOT_FOUND', 'not_found')
  })
  it('the last active owner keeps the role; an owner who left does not count', () => {
    rules
      .given([...team, roleChanged('m1', 'owner', 'o1'), deactivated('m1', 'm1')])
      .when(changeRole('o1', 'admin', 'o1'))
      .thenRefused('LAST_OWNER')
    rules
      .given([...team, roleChanged('m1', 'owner', 'o1')])
      .when(changeRole('o1', 'admin', 'm1'))
      .then([roleChanged('o1', 'admin', 'm1')])
  })
  it('an agent becomes an admin, never an owner', () => {
    const bot = joined(member('bot', 'member', { accountId: null, type: 'agent', username: 'bot' }))
    rules
      .given([...team, bot])
      .when(changeRole('bot', 'admin', 'o1'))
      .then([roleChanged('bot', 'admin', 'o1')])
    rules
      .given([...team, bot])
      .when(changeRole('bot', 'owner', 'o1'))
      .thenRefused('AGENT_OWNER')
  })
  it('a role change is the user’s new role', () => {
    const s = fold(org, [...team, roleChanged('m1', 'admin', 'o1')])
    expect(s.status !== 'none' && s.members.get('m1')?.role).toBe('admin')
  })
  it('changes for a user the org does not know leave the state as it was', () => {
    const before = fold(org, team)
    expect(
      fold(org, [
        ...team,
        roleChanged('nobody', 'admin', 'o1'),
        deactivated('nobody', 'o1'),
        { type: 'user.activated', data: { userId: 'nobody', username: 'x', at } },
      ]),
    ).toEqual(before)
  })
})

describe('org: leaving and removing', () => {
  const rules = spec(org)
  it('anyone leaves by themselves', () => {
    rules
      .given(team)
      .when(deactivate('g1', 'g1'))
      .then([deactivated('g1', 'g1')])
    rules
      .given(team)
      .when(deactivate('a1', 'a1'))
      .then([deactivated('a1', 'a1')])
  })
  it('owners remove anyone; admins remove anyone but owners, other admins included', () => {
    rules
      .given(team)
      .when(deactivate('a1', 'o1'))
      .then([deactivated('a1', 'o1')])
    rules
      .given(team)
      .when(deactivate('a2', 'a1'))
      .then([deactivated('a2', 'a1')])
    rules
      .given(team)
      .when(deactivate('m1', 'a1'))
      .then([deactivated('m1', 'a1')])
    rules
      .given([...team, roleChanged('m1', 'owner', 'o1')])
      .when(deactivate('o1', 'a1'))
      .thenRefused('FORBIDDEN', 'forbidden')
  })
  it('members remove nobody else', () => rules.given(team).when(deactivate('g1', 'm1')).thenRefused('FORBIDDEN', 'forbidden'))
  it('removing someone who left changes nothing; someone who never joined is not found', () => {
    rules
      .given([...team, deactivated('m1', 'm1')])
      .when(deactivate('m1', 'o1'))
      .then([])
    rules.given(team).when(deactivate('nobody', 'o1')).thenRefused('USER_NOT_FOUND', 'not_found')
  })
  it('the last active owner neither leaves nor is removed', () => {
    rules.given(team).when(deactivate('o1', 'o1')).thenRefused('LAST_OWNER')
    rules
      .given([...team, roleChanged('a1', 'owner', 'o1'), deactivated('a1', 'a1')])
      .when(deactivate('o1', 'o1'))
      .thenRefused('LAST_OWNER')
  })
  it('an owner leaves when another owner stays', () =>
    rules
      .given([...team, roleChanged('a1', 'owner', 'o1')])
      .when(deactivate('o1', 'o1'))
      .then([deactivated('o1', 'o1')]))
  it('who left is inactive, with their role and username kept', () => {
    const s = fold(org, [...team, deactivated('m1', 'm1')])
    expect(s.status !== 'none' && s.members.get('m1')).toEqual({
      accountId: 'acc-m1',
      type: 'human',
      role: 'member',
      active: false,
      username: null,
    })
  })
})

describe('org: seats and storage limits', () => {
  const rules = spec(org)
  const setLimits = (seats: number | null, storageBytes: number | null = null): OrgCommand => ({
    type: 'set_limits',
    orgId,
    seats,
    storageBytes,
    at,
  })
  const limitsSet = (seats: number | null, storageBytes: number | null = null): OrgEvent => ({
    type: 'org.limits_set',
    data: { orgId, seats, storageBytes, at },
  })
  const bot = joined(member('bot', 'member', { type: 'agent', accountId: null, email: null }))

  it('seats at or above the active people are set; the same limits again change nothing', () => {
    // team: five people (o1, a1, a2, m1, g1).
    rules
      .given(team)
      .when(setLimits(5, 1_000))
      .then([limitsSet(5, 1_000)])
    rules.given(team).when(setLimits(null, null)).then([])
    rules
      .given([...team, limitsSet(5, 1_000)])
      .when(setLimits(5, 1_000))
      .then([])
  })
  it('seats below the active people are refused, naming both numbers', () => {
    rules.given(team).when(setLimits(4)).thenRefused('SEATS_BELOW_USAGE')
    const error = refusal(() => org.decide(setLimits(4), fold(org, team)))
    expect(error.message).toMatch(/\b4\b.*\b5\b/)
  })
  it('agents and deactivated people take no seat', () => {
    rules
      .given([...team, bot, deactivated('m1', 'o1')])
      .when(setLimits(4))
      .then([limitsSet(4)])
  })
  it('a person joining past the seats is refused; an agent joins anyway; a freed seat is taken again', () => {
    const full = [...team, limitsSet(5)]
    rules
      .given(full)
      .when({ type: 'join', member: member('m2', 'member') })
      .thenRefused('SEAT_LIMIT_REACHED')
    rules
      .given(full)
      .when({ type: 'join', member: member('bot', 'member', { type: 'agent', accountId: null, email: null }) })
      .then([bot])
    rules
      .given([...full, deactivated('m1', 'o1')])
      .when({ type: 'join', member: member('m2', 'member') })
      .then([joined(member('m2', 'member'))])
    rules
      .given([...full, limitsSet(null)])
      .when({ type: 'join', member: member('m2', 'member') })
      .then([joined(member('m2', 'member'))])
  })
  it('the state holds the limits', () => {
    expect(fold(org, [...team, limitsSet(7, 9)])).toMatchObject({ limits: { seats: 7, storageBytes: 9 } })
  })
})

describe('org: LLM policy', () => {
  const rules = spec(org)
  const policy: LlmPolicy = {
    allowedModels: ['gpt-5', 'claude-sonnet'],
    keySource: 'org',
    monthlyTokenBudget: 1_000_000,
  }
  const set = (over: Partial<typeof policy> = {}): OrgCommand => ({ type: 'set_llm_policy', orgId, at, ...policy, ...over })
  const policySet = (over: Partial<typeof policy> = {}): OrgEvent => ({
    type: 'org.llm_policy_set',
    data: { orgId, ...policy, ...over, at },
  })
  it('is recorded, models listed once each; the same policy again changes nothing', () => {
    rules
      .given(team)
      .when(set({ allowedModels: ['gpt-5', 'claude-sonnet', 'gpt-5'] }))
      .then([policySet()])
    rules
      .given([...team, policySet()])
      .when(set())
      .then([])
  })
  it('any change of models, key or budget is a new policy', () => {
    const changes: Partial<LlmPolicy>[] = [{ allowedModels: ['gpt-5'] }, { keySource: 'platform' }, { monthlyTokenBudget: null }]
    for (const change of changes)
      rules
        .given([...team, policySet()])
        .when(set(change))
        .then([policySet(change)])
  })
  it('the state holds it', () => {
    expect(fold(org, [...team, policySet()])).toMatchObject({ llmPolicy: policy })
  })
})

describe('usernames: syntax and reservation', () => {
  const rules = spec(usernameReservation)
  const reserve = (username: string, userId = 'u1') => ({ orgId, userId, username })
  it('a username is 1 to 40 lowercase letters, digits, dots, dashes or underscores, not starting or ending with a sign', () => {
    for (const ok of ['a', '7', 'ab', 'a_b-c.d', 'x'.repeat(40)])
      rules
        .given([])
        .when(reserve(ok))
        .then([{ type: 'user.username_reserved', data: reserve(ok) }])
    for (const bad of ['', 'x'.repeat(41), 'Ada', '.ada', 'ada.', '_a', 'a-', 'a b', 'ad@', 'ada\n'])
      rules.given([]).when(reserve(bad)).thenRefused('USERNAME_INVALID')
  })
  it('a taken username is a conflict; the holder is remembered', () => {
    const taken = [{ type: 'user.username_reserved' as const, data: reserve('ada', 'u2') }]
    rules.given(taken).when(reserve('ada')).thenRefused('USERNAME_TAKEN', 'conflict')
    expect(fold(usernameReservation, taken)).toEqual({ userId: 'u2' })
    expect(usernameReservation.initialState).toEqual({ userId: null })
  })
})
