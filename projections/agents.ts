import { type AgentAccess, type AgentEvent, type RolePrompt, rolePromptOf } from '../domain/agents.ts'
import { type RowModel, rowProjector, type TableModel } from './rows.ts'

/*
 * JSON columns are written in one key order (rooms sorted), whatever order the event's data came back in from the
 * store: a rebuild writes the same text as the live projection.
 */
export const rolePromptJson = (p: RolePrompt): string =>
  JSON.stringify({ role: p.role, rules: p.rules, examples: p.examples, sources: p.sources })
export const accessJson = (a: AgentAccess): string =>
  JSON.stringify({
    org: a.org,
    rooms: Object.fromEntries(
      Object.keys(a.rooms)
        .sort()
        .map((k) => [k, a.rooms[k]]),
    ),
  })

const DEFAULT_ACCESS_JSON = accessJson({ org: 'members', rooms: {} })

/** A row of tenant.agents (its tenant_id is the batch's). */
export type AgentRow = {
  readonly id: string
  readonly name: string
  readonly username: string
  readonly created_by: string
  readonly model: string | null
  readonly reasoning_effort: string | null
  readonly skillsets: string
  readonly spend_limit_usd: number | null
  readonly access: string
  readonly role_prompt: string
  readonly role_prompt_version: number
  readonly open_proposal_id: string | null
  readonly created_at: string
  readonly updated_at: string
}

/** An agent's row: created once (a repeat keeps the first), then its settings and role prompt as they change. */
export const agentRows: RowModel<AgentEvent, AgentRow> = {
  table: 'agents',
  columns: [
    'id',
    'name',
    'username',
    'created_by',
    'model',
    'reasoning_effort',
    'skillsets',
    'spend_limit_usd',
    'access',
    'role_prompt',
    'role_prompt_version',
    'open_proposal_id',
    'created_at',
    'updated_at',
  ],
  key: 'id',
  keyOf: (e) => e.data.agentId,
  evolve(row, e) {
    switch (e.type) {
      case 'agent.created':
        return (
          row ?? {
            id: e.data.agentId,
            name: e.data.name,
            username: e.data.username,
            created_by: e.data.createdBy,
            model: e.data.model,
            reasoning_effort: null,
            skillsets: JSON.stringify(e.data.tools),
            spend_limit_usd: null,
            access: DEFAULT_ACCESS_JSON,
            role_prompt: rolePromptJson(rolePromptOf(e.data.rolePrompt)),
            role_prompt_version: 1,
            open_proposal_id: null,
            created_at: e.data.at,
            updated_at: e.data.at,
          }
        )
      case 'agent.settings_changed': {
        if (!row) return null
        const d = e.data
        return {
          ...row,
          ...(d.model !== undefined && { model: d.model }),
          ...(d.reasoningEffort !== undefined && { reasoning_effort: d.reasoningEffort }),
          ...(d.skillsets !== undefined && { skillsets: JSON.stringify(d.skillsets) }),
          ...(d.spendLimitUsd !== undefined && { spend_limit_usd: d.spendLimitUsd }),
          ...(d.access !== undefined && { access: accessJson(d.access) }),
          updated_at: d.at,
        }
      }
      case 'agent.role_prompt_set':
        return (
          row && {
            ...row,
            role_prompt: rolePromptJson(e.data.rolePrompt),
            role_prompt_version: e.data.version,
            open_proposal_id: row.open_proposal_id === e.data.proposalId ? null : row.open_proposal_id,
            updated_at: e.data.at,
          }
        )
      case 'agent.role_prompt_proposed':
        return row && { ...row, open_proposal_id: e.data.proposalId }
      case 'agent.role_prompt_proposal_closed':
        return row && { ...row, open_proposal_id: row.open_proposal_id === e.data.proposalId ? null : row.open_proposal_id }
      case 'agent.secret_rotated':
      case 'agent.tool_allowed':
        return row
    }
  },
}

/** A row of tenant.agent_role_prompt_versions. */
export type RolePromptVersionRow = {
  readonly agent_id: string
  readonly version: number
  readonly role_prompt: string
  readonly proposal_id: string | null
  readonly set_by: string
  readonly created_at: string
}

/** Every version of each agent's role prompt: 1 is the one it was created with, each set adds the next. */
export const rolePromptVersionRows: TableModel<AgentEvent, RolePromptVersionRow> = {
  table: 'agent_role_prompt_versions',
  columns: ['agent_id', 'version', 'role_prompt', 'proposal_id', 'set_by', 'created_at'],
  key: ['agent_id', 'version'],
  refsOf(e) {
    if (e.type === 'agent.created') return [{ agent_id: e.data.agentId, version: 1 }]
    if (e.type === 'agent.role_prompt_set') return [{ agent_id: e.data.agentId, version: e.data.version }]
    return []
  },
  evolve(row, e) {
    if (row) return row
    if (e.type === 'agent.created') {
      return {
        agent_id: e.data.agentId,
        version: 1,
        role_prompt: rolePromptJson(rolePromptOf(e.data.rolePrompt)),
        proposal_id: null,
        set_by: e.data.createdBy,
        created_at: e.data.at,
      }
    }
    if (e.type === 'agent.role_prompt_set') {
      return {
        agent_id: e.data.agentId,
        version: e.data.version,
        role_prompt: rolePromptJson(e.data.rolePrompt),
        proposal_id: e.data.proposalId,
        set_by: e.data.by,
        created_at: e.data.at,
      }
    }
    return null
  },
}

/** A row of tenant.agent_role_prompt_proposals. */
export type RolePromptProposalRow = {
  readonly id: string
  readonly agent_id: string
  readonly based_on_version: number
  readonly role_prompt: string
  readonly comment: string | null
  readonly proposed_by: string
  readonly status: 'open' | 'accepted' | 'rejected' | 'superseded'
  readonly decided_by: string | null
  readonly decision_comment: string | null
  readonly accepted_version: number | null
  readonly created_at: string
  readonly decided_at: string | null
}

/** Each proposal of an agent: open, then accepted (naming the version it became), rejected or superseded. */
export const rolePromptProposalRows: RowModel<AgentEvent, RolePromptProposalRow> = {
  table: 'agent_role_prompt_proposals',
  columns: [
    'id',
    'agent_id',
    'based_on_version',
    'role_prompt',
    'comment',
    'proposed_by',
    'status',
    'decided_by',
    'decision_comment',
    'accepted_version',
    'created_at',
    'decided_at',
  ],
  key: 'id',
  keyOf(e) {
    if (e.type === 'agent.role_prompt_proposed' || e.type === 'agent.role_prompt_proposal_closed') return e.data.proposalId
    if (e.type === 'agent.role_prompt_set') return e.data.proposalId
    return null
  },
  evolve(row, e) {
    switch (e.type) {
      case 'agent.role_prompt_proposed':
        return (
          row ?? {
            id: e.data.proposalId,
            agent_id: e.data.agentId,
            based_on_version: e.data.basedOnVersion,
            role_prompt: rolePromptJson(e.data.rolePrompt),
            comment: e.data.comment,
            proposed_by: e.data.by,
            status: 'open',
            decided_by: null,
            decision_comment: null,
            accepted_version: null,
            created_at: e.data.at,
            decided_at: null,
          }
        )
      case 'agent.role_prompt_set':
        return (
          row && {
            ...row,
            status: 'accepted',
            decided_by: e.data.by,
            accepted_version: e.data.version,
            decided_at: e.data.at,
          }
        )
      case 'agent.role_prompt_proposal_closed':
        return (
          row && {
            ...row,
            status: e.data.outcome,
            decided_by: e.data.by,
            decision_comment: e.data.comment,
            decided_at: e.data.at,
          }
        )
      default:
        return row
    }
  },
}

/** A row of tenant.agent_allowed_tools. */
export type AllowedToolRow = {
  readonly agent_id: string
  readonly room_id: string
  readonly tool: string
  readonly allowed_by: string
  readonly allowed_at: string
}

/** A risky tool an agent may use in a room without asking: a row while allowed, none once taken back. */
export const allowedToolRows: TableModel<AgentEvent, AllowedToolRow> = {
  table: 'agent_allowed_tools',
  columns: ['agent_id', 'room_id', 'tool', 'allowed_by', 'allowed_at'],
  key: ['agent_id', 'room_id', 'tool'],
  refsOf: (e) =>
    e.type === 'agent.tool_allowed' ? [{ agent_id: e.data.agentId, room_id: e.data.roomId, tool: e.data.tool }] : [],
  evolve(row, e) {
    if (e.type !== 'agent.tool_allowed') return row
    if (!e.data.allowed) return null
    return (
      row ?? { agent_id: e.data.agentId, room_id: e.data.roomId, tool: e.data.tool, allowed_by: e.data.by, allowed_at: e.data.at }
    )
  },
}

/**
 * tenant.agents, tenant.agent_role_prompt_versions, tenant.agent_role_prompt_proposals and tenant.agent_allowed_tools
 * (v2: the allowed tools).
 */
export const agentsProjector = rowProjector({
  name: 'agents',
  version: 2,
  schema: 'tenant',
  eventTypes: [
    'agent.created',
    'agent.settings_changed',
    'agent.role_prompt_set',
    'agent.role_prompt_proposed',
    'agent.role_prompt_proposal_closed',
    'agent.tool_allowed',
  ],
  models: [agentRows, rolePromptVersionRows, rolePromptProposalRows, allowedToolRows],
})
