import { describe, expect, it } from 'vitest'
import {
  type AgentActor,
  type AgentCreated,
  type AgentEvent,
  type AgentSettings,
  agent,
  DEFAULT_ACCESS,
  liveSecrets,
  MAX_SECRET_GRACE_SECONDS,
  mayUseAgent,
  mustBeAllowedModel,
  type RolePrompt,
  renderRolePrompt,
  rolePromptOf,
} from '../../domain/agents.ts'
import { fold } from '../../domain/decider.ts'
import { refusal, spec } from './spec.ts'

const at = '2026-11-28T10:00:00.000Z'
const later = (ms: number) => new Date(Date.parse(at) + ms).toISOString()
type Actor = { userId: string; role: 'owner' | 'admin' | 'member' | 'guest' }
const creator: Actor = { userId: 'm1', role: 'member' }
const data: AgentCreated = {
  agentId: 'g1',
  name: 'Bot',
  username: 'bot',
  rolePrompt: 'helps',
  model: 'small',
  tools: ['search'],
  createdBy: 'm1',
  at,
}
const created: AgentEvent = { type: 'agent.created', data }
const rotate = (secretId: string, graceSeconds: number, actor: Actor = creator, when = at) =>
  ({ type: 'rotate_secret', agentId: 'g1', secretId, sealedSecret: `sealed-${secretId}`, graceSeconds, actor, at: when }) as const
const rotated = (secretId: string, previousValidUntil: string | null, by = 'm1', when = at): AgentEvent => ({
  type: 'agent.secret_rotated',
  data: { agentId: 'g1', secretId, sealedSecret: `sealed-${secretId}`, previousValidUntil, by, at: when },
})

describe('agents', () => {
  const rules = spec(agent)

  it('an agent is created once; creating it again changes nothing', () => {
    rules.given([]).when({ type: 'create', data }).then([created])
    rules
      .given([created])
      .when({ type: 'create', data: { ...data, name: 'Other' } })
      .then([])
  })

  it('its creator, admins and owners rotate its secret; members and guests do not', () => {
    rules
      .given([created])
      .when(rotate('s1', 0))
      .then([rotated('s1', null)])
    rules
      .given([created])
      .when(rotate('s1', 0, { userId: 'o1', role: 'owner' }))
      .then([rotated('s1', null, 'o1')])
    rules
      .given([created])
      .when(rotate('s1', 0, { userId: 'a1', role: 'admin' }))
      .then([rotated('s1', null, 'a1')])
    rules
      .given([created])
      .when(rotate('s1', 0, { userId: 'g9', role: 'guest' }))
      .thenRefused('FORBIDDEN', 'forbidden')
  })

  it('an agent that does not exist is not found', () =>
    rules.given([]).when(rotate('s1', 0)).thenRefused('AGENT_NOT_FOUND', 'not_found'))

  it('the grace period is 0 to 86,400 seconds', () => {
    rules
      .given([created, rotated('s1', null)])
      .when(rotate('s2', MAX_SECRET_GRACE_SECONDS))
      .then([rotated('s2', later(MAX_SECRET_GRACE_SECONDS * 1000))])
    rules
      .given([created])
      .when(rotate('s1', MAX_SECRET_GRACE_SECONDS + 1))
      .thenRefused('GRACE_INVALID')
    rules.given([created]).when(rotate('s1', -1)).thenRefused('GRACE_INVALID')
  })

  it('the previous secret stays valid for the grace period, when there is one to keep', () => {
    rules
      .given([created, rotated('s1', null)])
      .when(rotate('s2', 60))
      .then([rotated('s2', later(60_000))])
    rules
      .given([created, rotated('s1', null)])
      .when(rotate('s2', 0))
      .then([rotated('s2', null)])
    rules
      .given([created])
      .when(rotate('s1', 60))
      .then([rotated('s1', null)])
  })

  it('the state is the agent with its current secret first, then the previous one while its grace lasts', () => {
    expect(agent.initialState).toEqual({ exists: false })
    expect(fold(agent, [created])).toEqual({
      exists: true,
      name: 'Bot',
      username: 'bot',
      createdBy: 'm1',
      rolePrompt: 'helps',
      rolePromptSpec: { role: 'helps', rules: [], examples: [], sources: [] },
      rolePromptVersion: 1,
      proposal: null,
      closedProposals: {},
      allowedTools: new Set(),
      model: data.model,
      reasoningEffort: null,
      skillsets: ['search'],
      spendLimitUsd: null,
      access: DEFAULT_ACCESS,
      secrets: [],
    })
    expect(fold(agent, [created, rotated('s1', null), rotated('s2', later(60_000)), rotated('s3', later(90_000))])).toMatchObject(
      {
        secrets: [
          { secretId: 's3', sealedSecret: 'sealed-s3', validUntil: null },
          { secretId: 's2', sealedSecret: 'sealed-s2', validUntil: later(90_000) },
        ],
      },
    )
    expect(fold(agent, [created, rotated('s1', null), rotated('s2', null)])).toMatchObject({
      secrets: [{ secretId: 's2', sealedSecret: 'sealed-s2', validUntil: null }],
    })
    expect(fold(agent, [created, rotated('s1', later(60_000))])).toMatchObject({
      secrets: [{ secretId: 's1', sealedSecret: 'sealed-s1', validUntil: null }],
    })
    expect(fold(agent, [rotated('s1', null)])).toEqual({ exists: false })
  })

  it('a secret is live until the instant its grace ends; an agent that does not exist has none', () => {
    const s = fold(agent, [created, rotated('s1', null), rotated('s2', later(60_000))])
    expect(liveSecrets(s, new Date(later(59_999))).map((x) => x.secretId)).toEqual(['s2', 's1'])
    expect(liveSecrets(s, new Date(later(60_000))).map((x) => x.secretId)).toEqual(['s2'])
    expect(liveSecrets(agent.initialState, new Date(at))).toEqual([])
  })
})

const human = (userId: string, role: AgentActor['role']): AgentActor => ({ userId, role, type: 'human' })
const admin = human('a1', 'admin')
const owner = human('o1', 'owner')
const member = human('m2', 'member')
const creatorHuman = human('m1', 'member')
const itself: AgentActor = { userId: 'g1', role: 'member', type: 'agent' }

const configure = (settings: AgentSettings, actor: AgentActor = admin, allowedModels: readonly string[] | null = null) =>
  ({ type: 'configure', agentId: 'g1', settings, allowedModels, actor, at }) as const
const changed = (settings: AgentSettings, by = 'a1'): AgentEvent => ({
  type: 'agent.settings_changed',
  data: { agentId: 'g1', ...settings, by, at },
})

describe('agent settings (PATCH)', () => {
  const rules = spec(agent)

  it('admins, owners and its creator change an agent; other members, guests and agents do not', () => {
    rules
      .given([created])
      .when(configure({ model: 'big' }))
      .then([changed({ model: 'big' })])
    rules
      .given([created])
      .when(configure({ model: 'big' }, owner))
      .then([changed({ model: 'big' }, 'o1')])
    rules
      .given([created])
      .when(configure({ model: 'big' }, creatorHuman))
      .then([changed({ model: 'big' }, 'm1')])
    rules
      .given([created])
      .when(configure({ model: 'big' }, member))
      .thenRefused('FORBIDDEN', 'forbidden')
    rules
      .given([created])
      .when(configure({ model: 'big' }, human('x', 'guest')))
      .thenRefused('FORBIDDEN', 'forbidden')
    rules
      .given([created])
      .when(configure({ model: 'big' }, itself))
      .thenRefused('FORBIDDEN', 'forbidden')
    rules
      .given([created])
      .when(configure({ model: 'big' }, { userId: 'g7', role: 'admin', type: 'agent' }))
      .thenRefused('FORBIDDEN', 'forbidden')
  })

  it('an agent that does not exist is not found', () =>
    rules
      .given([])
      .when(configure({ model: 'big' }))
      .thenRefused('AGENT_NOT_FOUND', 'not_found'))

  it('a model must be on the org’s allow-list when the LLM policy has one; null (the default) always may', () => {
    rules
      .given([created])
      .when(configure({ model: 'big' }, admin, ['small', 'mid']))
      .thenRefused('MODEL_NOT_ALLOWED')
    rules
      .given([created])
      .when(configure({ model: 'mid' }, admin, ['small', 'mid']))
      .then([changed({ model: 'mid' })])
    rules
      .given([created])
      .when(configure({ model: 'any' }, admin, []))
      .then([changed({ model: 'any' })])
    rules
      .given([created])
      .when(configure({ model: null }, admin, ['other']))
      .then([changed({ model: null })])
  })

  it('reasoning effort is low, medium, high or null', () => {
    rules
      .given([created])
      .when(configure({ reasoningEffort: 'high' }))
      .then([changed({ reasoningEffort: 'high' })])
    rules
      .given([created, changed({ reasoningEffort: 'high' })])
      .when(configure({ reasoningEffort: null }))
      .then([changed({ reasoningEffort: null })])
    rules
      .given([created])
      .when(configure({ reasoningEffort: 'max' as 'high' }))
      .thenRefused('REASONING_EFFORT_INVALID')
  })

  it('skillsets are known ones, core implied, each once in the catalogue’s order', () => {
    rules
      .given([created])
      .when(configure({ skillsets: ['browser', 'core', 'vms', 'browser'] }))
      .then([changed({ skillsets: ['vms', 'browser'] })])
    rules
      .given([created])
      .when(configure({ skillsets: ['vms', 'teleport'] }))
      .thenRefused('SKILLSET_UNKNOWN')
    rules
      .given([created, changed({ skillsets: ['vms', 'browser'] })])
      .when(configure({ skillsets: ['browser', 'vms'] }))
      .then([])
  })

  it('only admins and owners name a spend limit (not its creator, not even the same one); it is non-negative USD or null', () => {
    rules
      .given([created])
      .when(configure({ spendLimitUsd: 12.5 }))
      .then([changed({ spendLimitUsd: 12.5 })])
    rules
      .given([created, changed({ spendLimitUsd: 12.5 })])
      .when(configure({ spendLimitUsd: null }, owner))
      .then([changed({ spendLimitUsd: null }, 'o1')])
    rules
      .given([created])
      .when(configure({ spendLimitUsd: 5 }, creatorHuman))
      .thenRefused('FORBIDDEN', 'forbidden')
    rules
      .given([created])
      .when(configure({ spendLimitUsd: null }, creatorHuman))
      .thenRefused('FORBIDDEN', 'forbidden')
    rules
      .given([created, changed({ spendLimitUsd: 12.5 })])
      .when(configure({ spendLimitUsd: 12.5 }))
      .then([])
    rules
      .given([created])
      .when(configure({ spendLimitUsd: -1 }))
      .thenRefused('SPEND_LIMIT_INVALID')
    rules
      .given([created])
      .when(configure({ spendLimitUsd: Number.POSITIVE_INFINITY }))
      .thenRefused('SPEND_LIMIT_INVALID')
  })

  it('access replaces the whole access; the same access again changes nothing', () => {
    const access = { org: 'admins' as const, rooms: { r1: 'members' as const, r2: 'none' as const } }
    rules
      .given([created])
      .when(configure({ access }, creatorHuman))
      .then([changed({ access }, 'm1')])
    rules
      .given([created, changed({ access })])
      .when(configure({ access: { org: 'admins', rooms: { r2: 'none', r1: 'members' } } }))
      .then([])
  })

  it('only what changed is recorded; nothing changed records nothing', () => {
    rules
      .given([created])
      .when(configure({ model: 'small', reasoningEffort: 'low', access: DEFAULT_ACCESS }))
      .then([changed({ reasoningEffort: 'low' })])
    rules.given([created]).when(configure({})).then([])
  })

  it('the state keeps each setting as last changed', () => {
    const s = fold(agent, [created, changed({ model: 'big', skillsets: ['coding'] }), changed({ spendLimitUsd: 3 })])
    expect(s).toMatchObject({
      model: 'big',
      skillsets: ['coding'],
      spendLimitUsd: 3,
      reasoningEffort: null,
      access: DEFAULT_ACCESS,
    })
  })
})

describe('a model for a new agent', () => {
  it('is any while the org’s LLM policy lists none, else one of the list; the default (null) always is', () => {
    expect(() => mustBeAllowedModel('big', null)).not.toThrow()
    expect(() => mustBeAllowedModel('big', [])).not.toThrow()
    expect(() => mustBeAllowedModel('small', ['small'])).not.toThrow()
    expect(() => mustBeAllowedModel(null, ['small'])).not.toThrow()
    expect(refusal(() => mustBeAllowedModel('big', ['small'])).code).toBe('MODEL_NOT_ALLOWED')
  })
})

describe('who may use an agent', () => {
  const base = fold(agent, [created])
  const restricted = fold(agent, [created, changed({ access: { org: 'admins', rooms: { open: 'members', shut: 'none' } } })])

  it('by default members, admins and owners may; guests may not', () => {
    expect(mayUseAgent(base, { userId: 'u', role: 'member' }, 'r1')).toBe(true)
    expect(mayUseAgent(base, { userId: 'u', role: 'owner' }, null)).toBe(true)
    expect(mayUseAgent(base, { userId: 'u', role: 'guest' }, 'r1')).toBe(false)
  })

  it('a room’s level overrides the org’s there', () => {
    expect(mayUseAgent(restricted, { userId: 'u', role: 'member' }, 'elsewhere')).toBe(false)
    expect(mayUseAgent(restricted, { userId: 'u', role: 'admin' }, 'elsewhere')).toBe(true)
    expect(mayUseAgent(restricted, { userId: 'u', role: 'member' }, 'open')).toBe(true)
    expect(mayUseAgent(restricted, { userId: 'u', role: 'owner' }, 'shut')).toBe(false)
    expect(mayUseAgent(restricted, { userId: 'u', role: 'member' }, null)).toBe(false)
  })

  it('nobody uses an agent that does not exist', () =>
    expect(mayUseAgent(agent.initialState, { userId: 'u', role: 'owner' }, null)).toBe(false))
})

const prompt = (role: string, rules: string[] = []): RolePrompt => ({ role, rules, examples: [], sources: [] })
const setRole = (rolePrompt: RolePrompt, actor: AgentActor = admin) =>
  ({ type: 'set_role_prompt', agentId: 'g1', rolePrompt, actor, at }) as const
const wasSet = (version: number, rolePrompt: RolePrompt, by = 'a1', proposalId: string | null = null): AgentEvent => ({
  type: 'agent.role_prompt_set',
  data: { agentId: 'g1', version, rolePrompt, proposalId, by, at },
})
const propose = (proposalId: string, rolePrompt: RolePrompt, actor: AgentActor = itself) =>
  ({ type: 'propose_role_prompt', agentId: 'g1', proposalId, rolePrompt, comment: 'better', actor, at }) as const
const proposed = (proposalId: string, rolePrompt: RolePrompt, basedOnVersion = 1): AgentEvent => ({
  type: 'agent.role_prompt_proposed',
  data: { agentId: 'g1', proposalId, basedOnVersion, rolePrompt, comment: 'better', by: 'g1', at },
})
const accept = (proposalId: string, actor: AgentActor = admin) =>
  ({ type: 'accept_proposal', agentId: 'g1', proposalId, actor, at }) as const
const reject = (proposalId: string, actor: AgentActor = admin) =>
  ({ type: 'reject_proposal', agentId: 'g1', proposalId, comment: 'no', actor, at }) as const
const closed = (
  proposalId: string,
  outcome: 'rejected' | 'superseded',
  by = 'a1',
  comment: string | null = 'no',
): AgentEvent => ({
  type: 'agent.role_prompt_proposal_closed',
  data: { agentId: 'g1', proposalId, outcome, comment, by, at },
})

describe('role prompt versions and proposals', () => {
  const rules = spec(agent)
  const v2 = prompt('reviews code', ['be brief'])

  it('people who may change the agent set the next version; the same prompt again is no change', () => {
    rules
      .given([created])
      .when(setRole(v2))
      .then([wasSet(2, v2)])
    rules
      .given([created])
      .when(setRole(v2, creatorHuman))
      .then([wasSet(2, v2, 'm1')])
    rules
      .given([created, wasSet(2, v2)])
      .when(setRole(prompt('x'), owner))
      .then([wasSet(3, prompt('x'), 'o1')])
    rules
      .given([created, wasSet(2, v2)])
      .when(setRole(v2))
      .then([])
    rules
      .given([created])
      .when(setRole(rolePromptOf('helps')))
      .then([])
  })

  it('members other than its creator, guests and agents (itself too) do not set it', () => {
    rules.given([created]).when(setRole(v2, member)).thenRefused('FORBIDDEN', 'forbidden')
    rules
      .given([created])
      .when(setRole(v2, human('x', 'guest')))
      .thenRefused('FORBIDDEN', 'forbidden')
    rules.given([created]).when(setRole(v2, itself)).thenRefused('FORBIDDEN', 'forbidden')
  })

  it('list items are trimmed and empty ones dropped; too long a prompt is refused', () => {
    rules
      .given([created])
      .when(setRole({ role: 'r', rules: [' a ', '  '], examples: [''], sources: ['https://x'] }))
      .then([wasSet(2, { role: 'r', rules: ['a'], examples: [], sources: ['https://x'] })])
    rules
      .given([created])
      .when(setRole(prompt('x'.repeat(20_001))))
      .thenRefused('ROLE_PROMPT_INVALID')
    rules
      .given([created])
      .when(
        setRole(
          prompt(
            'r',
            Array.from({ length: 101 }, (_, i) => `rule ${i}`),
          ),
        ),
      )
      .thenRefused('ROLE_PROMPT_INVALID')
  })

  it('only the agent itself proposes, one proposal at a time, based on the current version', () => {
    rules
      .given([created])
      .when(propose('p1', v2))
      .then([proposed('p1', v2)])
    rules
      .given([created, wasSet(2, prompt('x'))])
      .when(propose('p1', v2))
      .then([proposed('p1', v2, 2)])
    rules
      .given([created])
      .when(propose('p1', v2, admin))
      .thenRefused('FORBIDDEN', 'forbidden')
    rules
      .given([created])
      .when(propose('p1', v2, { userId: 'g2', role: 'member', type: 'agent' }))
      .thenRefused('FORBIDDEN', 'forbidden')
    rules
      .given([created, proposed('p1', v2)])
      .when(propose('p2', prompt('y')))
      .thenRefused('PROPOSAL_OPEN', 'conflict')
    rules
      .given([created])
      .when(propose('p1', rolePromptOf('helps')))
      .thenRefused('PROPOSAL_UNCHANGED')
  })

  it('a proposal told again under its id records nothing more', () => {
    rules
      .given([created, proposed('p1', v2)])
      .when(propose('p1', v2))
      .then([])
    rules
      .given([created, proposed('p1', v2), closed('p1', 'rejected')])
      .when(propose('p1', v2))
      .then([])
  })

  it('accepting a proposal makes it the next version, naming the proposal', () => {
    rules
      .given([created, proposed('p1', v2)])
      .when(accept('p1'))
      .then([wasSet(2, v2, 'a1', 'p1')])
    rules
      .given([created, proposed('p1', v2)])
      .when(accept('p1', creatorHuman))
      .then([wasSet(2, v2, 'm1', 'p1')])
    rules
      .given([created, proposed('p1', v2)])
      .when(accept('p1', member))
      .thenRefused('FORBIDDEN', 'forbidden')
    rules
      .given([created, proposed('p1', v2)])
      .when(accept('p1', itself))
      .thenRefused('FORBIDDEN', 'forbidden')
  })

  it('rejecting closes it; a rejected proposal is not accepted, an accepted one not rejected; a repeat is a no-op', () => {
    rules
      .given([created, proposed('p1', v2)])
      .when(reject('p1'))
      .then([closed('p1', 'rejected')])
    rules
      .given([created, proposed('p1', v2)])
      .when(reject('p1', member))
      .thenRefused('FORBIDDEN', 'forbidden')
    rules
      .given([created, proposed('p1', v2), closed('p1', 'rejected')])
      .when(reject('p1'))
      .then([])
    rules
      .given([created, proposed('p1', v2), wasSet(2, v2, 'a1', 'p1')])
      .when(accept('p1'))
      .then([])
    rules
      .given([created, proposed('p1', v2), closed('p1', 'rejected')])
      .when(accept('p1'))
      .thenRefused('PROPOSAL_CLOSED', 'conflict')
    rules
      .given([created, proposed('p1', v2), wasSet(2, v2, 'a1', 'p1')])
      .when(reject('p1'))
      .thenRefused('PROPOSAL_CLOSED', 'conflict')
    rules.given([created]).when(accept('p9')).thenRefused('PROPOSAL_NOT_FOUND', 'not_found')
    rules.given([created]).when(reject('p9')).thenRefused('PROPOSAL_NOT_FOUND', 'not_found')
  })

  it('a person setting a version over an open proposal supersedes it', () => {
    rules
      .given([created, proposed('p1', v2)])
      .when(setRole(prompt('z')))
      .then([wasSet(2, prompt('z')), closed('p1', 'superseded', 'a1', null)])
    rules
      .given([created, proposed('p1', v2), wasSet(2, prompt('z')), closed('p1', 'superseded', 'a1', null)])
      .when(accept('p1'))
      .thenRefused('PROPOSAL_CLOSED', 'conflict')
    rules
      .given([created, proposed('p1', v2), wasSet(2, prompt('z')), closed('p1', 'superseded', 'a1', null)])
      .when(propose('p2', v2))
      .then([proposed('p2', v2, 2)])
  })

  it('the state renders the current version for the runtime and keeps the open proposal', () => {
    const full: RolePrompt = { role: 'You review.', rules: ['be brief'], examples: ['LGTM'], sources: ['CONTRIBUTING.md'] }
    expect(renderRolePrompt(full)).toBe('You review.\n\nRules:\n- be brief\n\nExamples:\n- LGTM\n\nSources:\n- CONTRIBUTING.md')
    expect(renderRolePrompt(rolePromptOf('  just text '))).toBe('  just text ')
    const s = fold(agent, [created, wasSet(2, full), proposed('p1', v2, 2)])
    expect(s).toMatchObject({
      rolePrompt: renderRolePrompt(full),
      rolePromptSpec: full,
      rolePromptVersion: 2,
      proposal: { proposalId: 'p1', basedOnVersion: 2, rolePrompt: v2, by: 'g1' },
    })
    expect(fold(agent, [created, proposed('p1', v2), wasSet(2, v2, 'a1', 'p1')])).toMatchObject({
      proposal: null,
      closedProposals: { p1: 'accepted' },
      rolePromptVersion: 2,
    })
  })
})

describe('always allowing a tool', () => {
  const rules = spec(agent)
  const at2 = '2026-12-02T10:00:00.000Z'
  const allow = (
    allowed: boolean,
    actor: { userId: string; role: 'owner' | 'admin' | 'member' | 'guest'; type?: 'human' | 'agent' },
  ) => ({ type: 'allow_tool', agentId: 'g1', roomId: 'r1', tool: 'delete_task', allowed, actor, at: at2 }) as const
  const allowed = (on: boolean): AgentEvent => ({
    type: 'agent.tool_allowed',
    data: { agentId: 'g1', roomId: 'r1', tool: 'delete_task', allowed: on, by: 'm2', at: at2 },
  })

  it('a person of the org allows an agent a risky tool in one room, once, and may take it back', () => {
    rules
      .given([created])
      .when(allow(true, { userId: 'm2', role: 'member' }))
      .then([allowed(true)])
    rules
      .given([created, allowed(true)])
      .when(allow(true, { userId: 'm2', role: 'member' }))
      .then([])
    rules
      .given([created, allowed(true)])
      .when(allow(false, { userId: 'm2', role: 'member' }))
      .then([allowed(false)])
    expect(fold(agent, [created, allowed(true)])).toMatchObject({ allowedTools: new Set(['r1 delete_task']) })
    expect(fold(agent, [created, allowed(true), allowed(false)])).toMatchObject({ allowedTools: new Set() })
  })

  it('taking back what is not allowed records nothing', () => {
    rules
      .given([created])
      .when(allow(false, { userId: 'm2', role: 'member' }))
      .then([])
    rules
      .given([created, allowed(true), allowed(false)])
      .when(allow(false, { userId: 'a1', role: 'admin' }))
      .then([])
  })

  it('only a tool name a model could call: no other tool exists', () => {
    for (const tool of ['', 'delete task', 'a'.repeat(65), 'r1 delete_task', 'x/y']) {
      rules
        .given([created, allowed(true)])
        .when({ ...allow(false, { userId: 'm2', role: 'member' }), tool })
        .thenRefused('TOOL_UNKNOWN', 'not_found')
    }
  })

  it('not a guest, not an agent', () => {
    rules
      .given([created, allowed(true)])
      .when(allow(false, { userId: 'x', role: 'guest' }))
      .thenRefused('FORBIDDEN', 'forbidden')
    rules
      .given([created])
      .when(allow(true, { userId: 'x', role: 'guest' }))
      .thenRefused('FORBIDDEN', 'forbidden')
    rules
      .given([created])
      .when(allow(true, { userId: 'g1', role: 'member', type: 'agent' }))
      .thenRefused('FORBIDDEN', 'forbidden')
  })
})
