import { type Decider, DomainError, type DomainEvent } from './decider.ts'

/**
 * An agent (`agent-<id>`, the id is also its user id in the org): what it is asked to be, and the secret it
 * signs its login credential with. The secret is sealed (encrypted) by the caller before it is decided on:
 * the server must read it back to check an HMAC, and events never hold it in clear.
 */
export type AgentCreated = {
  agentId: string
  name: string
  username: string
  rolePrompt: string
  model: string | null
  tools: string[]
  createdBy: string
  at: string
}

/**
 * A role prompt as people edit it: what the agent is, the rules it keeps, worked examples, and the sources it
 * should rely on. The agents runtime reads it rendered into one text (renderRolePrompt).
 */
export type RolePrompt = {
  readonly role: string
  readonly rules: readonly string[]
  readonly examples: readonly string[]
  readonly sources: readonly string[]
}

/** Opt-in bundles of tools; `core` (answering, reading, tasks, artifacts) is every agent's and never listed. */
export const SKILLSETS = ['vms', 'coding', 'browser', 'github', 'composio'] as const
export type Skillset = (typeof SKILLSETS)[number]
export const CORE_SKILLSET = 'core'

export const REASONING_EFFORTS = ['low', 'medium', 'high'] as const
export type ReasoningEffort = (typeof REASONING_EFFORTS)[number]

/** Who may mention, assign or otherwise use the agent: members (and above), or admins (and owners) only. */
export type AccessLevel = 'members' | 'admins'
/** The org's level, and per room a level that overrides it there (`none`: nobody uses it in that room). */
export type AgentAccess = {
  readonly org: AccessLevel
  readonly rooms: Readonly<Record<string, AccessLevel | 'none'>>
}
export const DEFAULT_ACCESS: AgentAccess = { org: 'members', rooms: {} }

/** What PATCH /api/agents/:id may change; a field left out stays as it is. */
export type AgentSettings = {
  readonly model?: string | null
  readonly reasoningEffort?: ReasoningEffort | null
  readonly skillsets?: readonly string[]
  readonly spendLimitUsd?: number | null
  readonly access?: AgentAccess
}

export type RolePromptProposal = {
  readonly proposalId: string
  readonly basedOnVersion: number
  readonly rolePrompt: RolePrompt
  readonly comment: string | null
  readonly by: string
  readonly at: string
}

export type ProposalOutcome = 'accepted' | 'rejected' | 'superseded'

export type AgentEvent =
  | DomainEvent<'agent.created', AgentCreated>
  | DomainEvent<
      'agent.secret_rotated',
      {
        agentId: string
        secretId: string
        sealedSecret: string
        /** The secret it replaces stays valid until then (null: not at all). */
        previousValidUntil: string | null
        by: string
        at: string
      }
    >
  /** Only the settings that changed are present. */
  | DomainEvent<'agent.settings_changed', { agentId: string; by: string; at: string } & AgentSettings>
  /** A new version of the role prompt, set by a person directly or by accepting the agent's proposal (proposalId). */
  | DomainEvent<
      'agent.role_prompt_set',
      { agentId: string; version: number; rolePrompt: RolePrompt; proposalId: string | null; by: string; at: string }
    >
  | DomainEvent<'agent.role_prompt_proposed', { agentId: string } & RolePromptProposal>
  /** A person let this agent use a risky tool in one room without asking each time (or took that back). */
  | DomainEvent<'agent.tool_allowed', { agentId: string; roomId: string; tool: string; allowed: boolean; by: string; at: string }>
  /** A proposal closed unaccepted: a person rejected it, or set another version while it was open (superseded). */
  | DomainEvent<
      'agent.role_prompt_proposal_closed',
      {
        agentId: string
        proposalId: string
        outcome: 'rejected' | 'superseded'
        comment: string | null
        by: string
        at: string
      }
    >

export type AgentSecret = { readonly secretId: string; readonly sealedSecret: string; readonly validUntil: string | null }

export type AgentState =
  | { readonly exists: false }
  | {
      readonly exists: true
      readonly name: string
      readonly username: string
      readonly createdBy: string
      /** The current role prompt rendered as the one text the agents runtime gives the model. */
      readonly rolePrompt: string
      readonly rolePromptSpec: RolePrompt
      /** 1 is the prompt it was created with; each change is the next. */
      readonly rolePromptVersion: number
      /** The agent's proposal waiting for a person, if any: at most one at a time. */
      readonly proposal: RolePromptProposal | null
      /** How each proposal that is no longer open ended, by id (a repeated accept or reject is a no-op). */
      readonly closedProposals: Readonly<Record<string, ProposalOutcome>>
      /** Risky tools a person allowed it in a room without asking each time: `${roomId} ${tool}`. */
      readonly allowedTools: ReadonlySet<string>
      /** Null: the platform's default model. */
      readonly model: string | null
      readonly reasoningEffort: ReasoningEffort | null
      /** The skillsets (bundles of tools) it may use beyond the core ones. */
      readonly skillsets: readonly string[]
      /** USD; null: none recorded here (the usage context's agent cap is what reservations check). */
      readonly spendLimitUsd: number | null
      readonly access: AgentAccess
      /** Current first, then the previous one while its grace lasts. */
      readonly secrets: readonly AgentSecret[]
    }

/** Who acts on an agent: a person or an agent (by its user id), with their org role. */
export type AgentActor = { userId: string; role: 'owner' | 'admin' | 'member' | 'guest'; type?: 'human' | 'agent' }

export type AgentCommand =
  | { type: 'create'; data: AgentCreated }
  | {
      type: 'rotate_secret'
      agentId: string
      secretId: string
      sealedSecret: string
      graceSeconds: number
      actor: AgentActor
      at: string
    }
  | {
      type: 'configure'
      agentId: string
      settings: AgentSettings
      /** The org's LLM policy's allow-list; null or empty: any model. */
      allowedModels: readonly string[] | null
      actor: AgentActor
      at: string
    }
  | { type: 'set_role_prompt'; agentId: string; rolePrompt: RolePrompt; actor: AgentActor; at: string }
  | {
      type: 'propose_role_prompt'
      agentId: string
      proposalId: string
      rolePrompt: RolePrompt
      comment: string | null
      actor: AgentActor
      at: string
    }
  | { type: 'accept_proposal'; agentId: string; proposalId: string; actor: AgentActor; at: string }
  | { type: 'reject_proposal'; agentId: string; proposalId: string; comment: string | null; actor: AgentActor; at: string }
  /** The caller has checked that the person may read the room (the decider does not see rooms). */
  | { type: 'allow_tool'; agentId: string; roomId: string; tool: string; allowed: boolean; actor: AgentActor; at: string }

/** How a tool is named, as models call tools (OpenAI's function names): no tool of any agent is named otherwise. */
export const TOOL_NAME = /^[A-Za-z0-9_-]{1,64}$/

export const MAX_SECRET_GRACE_SECONDS = 86_400
export const ROLE_MAX = 20_000
export const ROLE_PROMPT_ITEMS_MAX = 100
export const ROLE_PROMPT_ITEM_MAX = 5_000

type Existing = Extract<AgentState, { exists: true }>

/**
 * A model the org's LLM policy lets its agents call: any while the policy lists none (or there is no policy), else one
 * of the list. Null, the platform's default, always is.
 */
export function mustBeAllowedModel(model: string | null, allowedModels: readonly string[] | null): void {
  if (model !== null && allowedModels && allowedModels.length > 0 && !allowedModels.includes(model)) {
    throw new DomainError('MODEL_NOT_ALLOWED', `the org’s LLM policy allows ${allowedModels.join(', ')}`)
  }
}

const isAdmin = (a: AgentActor) => a.role === 'owner' || a.role === 'admin'
const isHuman = (a: AgentActor) => a.type !== 'agent'

/** A role prompt from the plain text the first API took: all of it is the role. */
export const rolePromptOf = (text: string): RolePrompt => ({ role: text, rules: [], examples: [], sources: [] })

/**
 * The one text the runtime gives the model: the role, then each list under its heading. A prompt that is only a
 * role renders as exactly that role, which is what an agent created with a plain-text prompt always had.
 */
export function renderRolePrompt(p: RolePrompt): string {
  const section = (title: string, items: readonly string[]) =>
    items.length === 0 ? '' : `${title}:\n${items.map((i) => `- ${i}`).join('\n')}`
  return [p.role, section('Rules', p.rules), section('Examples', p.examples), section('Sources', p.sources)]
    .filter((x) => x !== '')
    .join('\n\n')
}

/** Items trimmed, empty ones dropped; too long a prompt is refused. */
function cleanRolePrompt(p: RolePrompt): RolePrompt {
  const items = (xs: readonly string[]) => xs.map((x) => x.trim()).filter((x) => x !== '')
  const clean = { role: p.role, rules: items(p.rules), examples: items(p.examples), sources: items(p.sources) }
  const lists = [clean.rules, clean.examples, clean.sources]
  if (
    clean.role.length > ROLE_MAX ||
    lists.some((l) => l.length > ROLE_PROMPT_ITEMS_MAX || l.some((x) => x.length > ROLE_PROMPT_ITEM_MAX))
  ) {
    throw new DomainError(
      'ROLE_PROMPT_INVALID',
      `a role has at most ${ROLE_MAX} characters; rules, examples and sources at most ${ROLE_PROMPT_ITEMS_MAX} items of ${ROLE_PROMPT_ITEM_MAX}`,
    )
  }
  return clean
}

const samePrompt = (a: RolePrompt, b: RolePrompt) =>
  JSON.stringify([a.role, a.rules, a.examples, a.sources]) === JSON.stringify([b.role, b.rules, b.examples, b.sources])

/** Known skillsets only, `core` implied (dropped), each once, in the catalogue's order: one spelling per set. */
function cleanSkillsets(xs: readonly string[]): string[] {
  const unknown = xs.filter((x) => x !== CORE_SKILLSET && !(SKILLSETS as readonly string[]).includes(x))
  if (unknown.length > 0) {
    throw new DomainError('SKILLSET_UNKNOWN', `unknown skillsets: ${unknown.join(', ')} (known: ${SKILLSETS.join(', ')})`)
  }
  return SKILLSETS.filter((k) => xs.includes(k))
}

const sameAccess = (a: AgentAccess, b: AgentAccess) => {
  const ka = Object.keys(a.rooms).sort()
  const kb = Object.keys(b.rooms).sort()
  return a.org === b.org && ka.length === kb.length && ka.every((k, i) => k === kb[i] && a.rooms[k] === b.rooms[k])
}

/** People who change an agent: admins (and owners) and whoever created it. Agents, itself included, do not. */
function mustManage(s: Existing, actor: AgentActor, what: string): void {
  if (!isHuman(actor) || !(isAdmin(actor) || actor.userId === s.createdBy)) {
    throw new DomainError('FORBIDDEN', `only admins and the agent’s creator ${what}`, 'forbidden')
  }
}

function configure(s: Existing, c: Extract<AgentCommand, { type: 'configure' }>): AgentEvent[] {
  mustManage(s, c.actor, 'change an agent')
  const { settings } = c
  const changed: { -readonly [K in keyof AgentSettings]: AgentSettings[K] } = {}
  if (settings.model !== undefined && settings.model !== s.model) {
    mustBeAllowedModel(settings.model, c.allowedModels)
    changed.model = settings.model
  }
  if (settings.reasoningEffort !== undefined && settings.reasoningEffort !== s.reasoningEffort) {
    if (settings.reasoningEffort !== null && !REASONING_EFFORTS.includes(settings.reasoningEffort)) {
      throw new DomainError('REASONING_EFFORT_INVALID', `reasoning effort is ${REASONING_EFFORTS.join(', ')} or null`)
    }
    changed.reasoningEffort = settings.reasoningEffort
  }
  if (settings.skillsets !== undefined) {
    const next = cleanSkillsets(settings.skillsets)
    if (next.length !== s.skillsets.length || next.some((k, i) => k !== s.skillsets[i])) changed.skillsets = next
  }
  if (settings.spendLimitUsd !== undefined) {
    const usd = settings.spendLimitUsd
    // A cap binds what the org pays: the creator of an agent does not lift what admins set. Asked even when the
    // value is the recorded one, since the same request also sets the usage context's agent cap.
    if (!isAdmin(c.actor)) throw new DomainError('FORBIDDEN', 'only admins set an agent’s spend limit', 'forbidden')
    if (usd !== null && !(Number.isFinite(usd) && usd >= 0)) {
      throw new DomainError('SPEND_LIMIT_INVALID', 'a spend limit is a non-negative number of USD, or null')
    }
    if (usd !== s.spendLimitUsd) changed.spendLimitUsd = usd
  }
  if (settings.access !== undefined && !sameAccess(settings.access, s.access)) {
    changed.access = { org: settings.access.org, rooms: { ...settings.access.rooms } }
  }
  if (Object.keys(changed).length === 0) return []
  return [{ type: 'agent.settings_changed', data: { agentId: c.agentId, ...changed, by: c.actor.userId, at: c.at } }]
}

/** Closes the open proposal as superseded when a person sets another version over it. */
const supersede = (s: Existing, agentId: string, by: string, at: string): AgentEvent[] =>
  s.proposal
    ? [
        {
          type: 'agent.role_prompt_proposal_closed',
          data: { agentId, proposalId: s.proposal.proposalId, outcome: 'superseded', comment: null, by, at },
        },
      ]
    : []

function openProposal(s: Existing, proposalId: string, verb: string): RolePromptProposal | null {
  if (s.proposal?.proposalId === proposalId) return s.proposal
  const closed = s.closedProposals[proposalId]
  if (closed === undefined) throw new DomainError('PROPOSAL_NOT_FOUND', 'no such proposal', 'not_found')
  // The same answer again is a retry; another answer to a closed proposal contradicts it.
  if ((verb === 'accept' && closed === 'accepted') || (verb === 'reject' && closed === 'rejected')) return null
  throw new DomainError('PROPOSAL_CLOSED', `this proposal was ${closed}`, 'conflict')
}

function decideExisting(c: Exclude<AgentCommand, { type: 'create' }>, s: Existing): AgentEvent[] {
  switch (c.type) {
    case 'rotate_secret': {
      const { actor } = c
      if (!(isAdmin(actor) || actor.userId === s.createdBy)) {
        throw new DomainError('FORBIDDEN', 'only admins and its creator rotate an agent’s secret', 'forbidden')
      }
      if (c.graceSeconds < 0 || c.graceSeconds > MAX_SECRET_GRACE_SECONDS) {
        throw new DomainError('GRACE_INVALID', `the grace period is 0 to ${MAX_SECRET_GRACE_SECONDS} seconds`)
      }
      const hasCurrent = s.secrets.length > 0
      const previousValidUntil =
        hasCurrent && c.graceSeconds > 0 ? new Date(new Date(c.at).getTime() + c.graceSeconds * 1000).toISOString() : null
      return [
        {
          type: 'agent.secret_rotated',
          data: {
            agentId: c.agentId,
            secretId: c.secretId,
            sealedSecret: c.sealedSecret,
            previousValidUntil,
            by: actor.userId,
            at: c.at,
          },
        },
      ]
    }
    case 'configure':
      return configure(s, c)
    case 'set_role_prompt': {
      mustManage(s, c.actor, 'set an agent’s role prompt')
      const rolePrompt = cleanRolePrompt(c.rolePrompt)
      if (samePrompt(rolePrompt, s.rolePromptSpec)) return []
      const by = c.actor.userId
      return [
        {
          type: 'agent.role_prompt_set',
          data: { agentId: c.agentId, version: s.rolePromptVersion + 1, rolePrompt, proposalId: null, by, at: c.at },
        },
        ...supersede(s, c.agentId, by, c.at),
      ]
    }
    case 'propose_role_prompt': {
      if (c.actor.userId !== c.agentId) {
        throw new DomainError('FORBIDDEN', 'only the agent itself proposes a change to its role prompt', 'forbidden')
      }
      if (s.proposal?.proposalId === c.proposalId || s.closedProposals[c.proposalId] !== undefined) return []
      if (s.proposal) {
        throw new DomainError('PROPOSAL_OPEN', 'a proposal is waiting for a person: one at a time', 'conflict')
      }
      const rolePrompt = cleanRolePrompt(c.rolePrompt)
      if (samePrompt(rolePrompt, s.rolePromptSpec)) {
        throw new DomainError('PROPOSAL_UNCHANGED', 'the proposal is the current role prompt')
      }
      return [
        {
          type: 'agent.role_prompt_proposed',
          data: {
            agentId: c.agentId,
            proposalId: c.proposalId,
            basedOnVersion: s.rolePromptVersion,
            rolePrompt,
            comment: c.comment,
            by: c.actor.userId,
            at: c.at,
          },
        },
      ]
    }
    case 'accept_proposal': {
      mustManage(s, c.actor, 'accept a role prompt proposal')
      const p = openProposal(s, c.proposalId, 'accept')
      if (!p) return []
      return [
        {
          type: 'agent.role_prompt_set',
          data: {
            agentId: c.agentId,
            version: s.rolePromptVersion + 1,
            rolePrompt: p.rolePrompt,
            proposalId: p.proposalId,
            by: c.actor.userId,
            at: c.at,
          },
        },
      ]
    }
    case 'allow_tool': {
      if (c.actor.type === 'agent' || c.actor.role === 'guest')
        throw new DomainError('FORBIDDEN', 'a person of the org allows an agent a tool', 'forbidden')
      if (!TOOL_NAME.test(c.tool)) throw new DomainError('TOOL_UNKNOWN', 'no tool is named so', 'not_found')
      if (s.allowedTools.has(`${c.roomId} ${c.tool}`) === c.allowed) return []
      return [
        {
          type: 'agent.tool_allowed',
          data: { agentId: c.agentId, roomId: c.roomId, tool: c.tool, allowed: c.allowed, by: c.actor.userId, at: c.at },
        },
      ]
    }
    case 'reject_proposal': {
      mustManage(s, c.actor, 'reject a role prompt proposal')
      const p = openProposal(s, c.proposalId, 'reject')
      if (!p) return []
      return [
        {
          type: 'agent.role_prompt_proposal_closed',
          data: {
            agentId: c.agentId,
            proposalId: p.proposalId,
            outcome: 'rejected',
            comment: c.comment,
            by: c.actor.userId,
            at: c.at,
          },
        },
      ]
    }
  }
}

export const agent: Decider<AgentCommand, AgentEvent, AgentState> = {
  initialState: { exists: false },
  decide(c, s) {
    if (c.type === 'create') {
      if (s.exists) return []
      return [{ type: 'agent.created', data: c.data }]
    }
    if (!s.exists) throw new DomainError('AGENT_NOT_FOUND', 'no such agent', 'not_found')
    return decideExisting(c, s)
  },
  evolve(s, e) {
    if (e.type === 'agent.created') {
      return {
        exists: true,
        name: e.data.name,
        username: e.data.username,
        createdBy: e.data.createdBy,
        rolePrompt: e.data.rolePrompt,
        rolePromptSpec: rolePromptOf(e.data.rolePrompt),
        rolePromptVersion: 1,
        proposal: null,
        closedProposals: {},
        allowedTools: new Set(),
        model: e.data.model,
        reasoningEffort: null,
        skillsets: e.data.tools,
        spendLimitUsd: null,
        access: DEFAULT_ACCESS,
        secrets: [],
      }
    }
    if (!s.exists) return s
    switch (e.type) {
      case 'agent.secret_rotated': {
        const current = s.secrets[0]
        const previous = current && e.data.previousValidUntil ? [{ ...current, validUntil: e.data.previousValidUntil }] : []
        return {
          ...s,
          secrets: [{ secretId: e.data.secretId, sealedSecret: e.data.sealedSecret, validUntil: null }, ...previous],
        }
      }
      case 'agent.settings_changed': {
        const { agentId: _a, by: _b, at: _t, ...changed } = e.data
        return { ...s, ...changed }
      }
      case 'agent.role_prompt_set': {
        const closed = e.data.proposalId === null ? {} : { [e.data.proposalId]: 'accepted' as const }
        return {
          ...s,
          rolePrompt: renderRolePrompt(e.data.rolePrompt),
          rolePromptSpec: e.data.rolePrompt,
          rolePromptVersion: e.data.version,
          proposal: s.proposal && s.proposal.proposalId === e.data.proposalId ? null : s.proposal,
          closedProposals: { ...s.closedProposals, ...closed },
        }
      }
      case 'agent.role_prompt_proposed': {
        const { agentId: _a, ...proposal } = e.data
        return { ...s, proposal }
      }
      case 'agent.tool_allowed': {
        const allowedTools = new Set(s.allowedTools)
        if (e.data.allowed) allowedTools.add(`${e.data.roomId} ${e.data.tool}`)
        else allowedTools.delete(`${e.data.roomId} ${e.data.tool}`)
        return { ...s, allowedTools }
      }
      case 'agent.role_prompt_proposal_closed':
        return {
          ...s,
          proposal: s.proposal?.proposalId === e.data.proposalId ? null : s.proposal,
          closedProposals: { ...s.closedProposals, [e.data.proposalId]: e.data.outcome },
        }
    }
  },
}

/** The secrets an agent may sign with at `now`, current first. */
export const liveSecrets = (s: AgentState, now: Date): AgentSecret[] =>
  s.exists ? s.secrets.filter((x) => x.validUntil === null || new Date(x.validUntil) > now) : []

/**
 * Whether `actor` may mention, assign or otherwise put the agent to work, in `roomId` (null: outside any room). The
 * room's level, when the access names the room, overrides the org's. Guests
 * never do: `members` means members, admins and owners.
 */
export function mayUseAgent(
  s: AgentState,
  actor: { userId: string; role: 'owner' | 'admin' | 'member' | 'guest' },
  roomId: string | null,
): boolean {
  if (!s.exists) return false
  const level = (roomId !== null ? s.access.rooms[roomId] : undefined) ?? s.access.org
  if (level === 'none') return false
  if (level === 'admins') return actor.role === 'owner' || actor.role === 'admin'
  return actor.role !== 'guest'
}
