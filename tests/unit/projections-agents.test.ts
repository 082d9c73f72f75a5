import { describe, expect, it } from 'vitest'
import type { AgentEvent, RolePrompt } from '../../domain/agents.ts'
import {
  type AgentRow,
  type AllowedToolRow,
  accessJson,
  agentRows,
  agentsProjector,
  allowedToolRows,
  type RolePromptProposalRow,
  rolePromptJson,
  rolePromptProposalRows,
  rolePromptVersionRows,
} from '../../projections/agents.ts'
import { evolveTable } from '../../projections/rows.ts'
import { projectionSpec } from '../support/projection-spec.ts'

const t0 = '2026-11-28T10:00:00.000Z'
const t1 = '2026-11-28T11:00:00.000Z'
const t2 = '2026-11-28T12:00:00.000Z'

const created: AgentEvent = {
  type: 'agent.created',
  data: { agentId: 'g1', name: 'Bot', username: 'bot', rolePrompt: 'helps', model: null, tools: [], createdBy: 'u1', at: t0 },
}
const v2: RolePrompt = { role: 'reviews', rules: ['be brief'], examples: [], sources: ['README.md'] }
const set = (version: number, rolePrompt: RolePrompt, proposalId: string | null = null, at = t1): AgentEvent => ({
  type: 'agent.role_prompt_set',
  data: { agentId: 'g1', version, rolePrompt, proposalId, by: 'u2', at },
})
const proposed = (proposalId: string, at = t1): AgentEvent => ({
  type: 'agent.role_prompt_proposed',
  data: { agentId: 'g1', proposalId, basedOnVersion: 1, rolePrompt: v2, comment: 'why', by: 'g1', at },
})
const closed = (proposalId: string, outcome: 'rejected' | 'superseded', at = t2): AgentEvent => ({
  type: 'agent.role_prompt_proposal_closed',
  data: { agentId: 'g1', proposalId, outcome, comment: outcome === 'rejected' ? 'no' : null, by: 'u2', at },
})

const bot: AgentRow = {
  id: 'g1',
  name: 'Bot',
  username: 'bot',
  created_by: 'u1',
  model: null,
  reasoning_effort: null,
  skillsets: '[]',
  spend_limit_usd: null,
  access: '{"org":"members","rooms":{}}',
  role_prompt: '{"role":"helps","rules":[],"examples":[],"sources":[]}',
  role_prompt_version: 1,
  open_proposal_id: null,
  created_at: t0,
  updated_at: t0,
}

describe('agents read model', () => {
  const agents = projectionSpec(agentRows)

  it('a created agent is a row with its plain-text prompt as the role of version 1 and default settings', () =>
    agents.given([]).when(created).then([bot]))

  it('a repeated creation keeps the first row', () => agents.given([bot]).when(created).thenWrites({ upserts: [], deletes: [] }))

  it('settings change only the fields the event carries', () =>
    agents
      .given([bot])
      .when(
        { type: 'agent.settings_changed', data: { agentId: 'g1', model: 'big', skillsets: ['vms', 'coding'], by: 'u1', at: t1 } },
        { type: 'agent.settings_changed', data: { agentId: 'g1', spendLimitUsd: 5, reasoningEffort: 'low', by: 'u2', at: t2 } },
      )
      .then([
        { ...bot, model: 'big', skillsets: '["vms","coding"]', spend_limit_usd: 5, reasoning_effort: 'low', updated_at: t2 },
      ]))

  it('access is written with its rooms in one order, whatever order the event has them in', () => {
    expect(accessJson({ org: 'admins', rooms: { r2: 'none', r1: 'members' } })).toBe(
      accessJson({ org: 'admins', rooms: { r1: 'members', r2: 'none' } }),
    )
    agents
      .given([bot])
      .when({
        type: 'agent.settings_changed',
        data: { agentId: 'g1', access: { org: 'admins', rooms: { r2: 'none', r1: 'members' } }, by: 'u1', at: t1 },
      })
      .then([{ ...bot, access: '{"org":"admins","rooms":{"r1":"members","r2":"none"}}', updated_at: t1 }])
  })

  it('a new version is the current prompt; a proposal is open until accepted, rejected or superseded', () => {
    agents
      .given([bot])
      .when(proposed('p1'))
      .then([{ ...bot, open_proposal_id: 'p1' }])
    agents
      .given([{ ...bot, open_proposal_id: 'p1' }])
      .when(set(2, v2, 'p1', t2))
      .then([{ ...bot, role_prompt: rolePromptJson(v2), role_prompt_version: 2, updated_at: t2 }])
    agents
      .given([{ ...bot, open_proposal_id: 'p1' }])
      .when(closed('p1', 'rejected'))
      .then([bot])
    agents
      .given([{ ...bot, open_proposal_id: 'p1' }])
      .when(set(2, v2, null, t2), closed('p1', 'superseded'))
      .then([{ ...bot, role_prompt: rolePromptJson(v2), role_prompt_version: 2, updated_at: t2 }])
  })

  it('events about an agent with no row change nothing', () => agents.given([]).when(set(2, v2), proposed('p1')).then([]))
})

describe('role prompt versions', () => {
  it('creation is version 1 by its creator; each set adds the version it names, with the proposal it came from', () => {
    const table = evolveTable(rolePromptVersionRows, [], [created, set(2, v2), set(3, v2, 'p1', t2), proposed('p9')])
    expect(table.rows).toEqual([
      { agent_id: 'g1', version: 1, role_prompt: bot.role_prompt, proposal_id: null, set_by: 'u1', created_at: t0 },
      { agent_id: 'g1', version: 2, role_prompt: rolePromptJson(v2), proposal_id: null, set_by: 'u2', created_at: t1 },
      { agent_id: 'g1', version: 3, role_prompt: rolePromptJson(v2), proposal_id: 'p1', set_by: 'u2', created_at: t2 },
    ])
  })

  it('a version replayed keeps its first row', () => {
    const first = evolveTable(rolePromptVersionRows, [], [set(2, v2)]).rows
    expect(evolveTable(rolePromptVersionRows, first, [set(2, { ...v2, role: 'other' }, null, t2)]).upserts).toEqual([])
  })
})

describe('role prompt proposals', () => {
  const proposals = projectionSpec(rolePromptProposalRows)
  const open: RolePromptProposalRow = {
    id: 'p1',
    agent_id: 'g1',
    based_on_version: 1,
    role_prompt: rolePromptJson(v2),
    comment: 'why',
    proposed_by: 'g1',
    status: 'open',
    decided_by: null,
    decision_comment: null,
    accepted_version: null,
    created_at: t1,
    decided_at: null,
  }

  it('a proposal is open when made', () => proposals.given([]).when(proposed('p1')).then([open]))

  it('accepted, it names the version it became', () =>
    proposals
      .given([open])
      .when(set(2, v2, 'p1', t2))
      .then([{ ...open, status: 'accepted', decided_by: 'u2', accepted_version: 2, decided_at: t2 }]))

  it('rejected or superseded, it says by whom and why', () => {
    proposals
      .given([open])
      .when(closed('p1', 'rejected'))
      .then([{ ...open, status: 'rejected', decided_by: 'u2', decision_comment: 'no', decided_at: t2 }])
    proposals
      .given([open])
      .when(closed('p1', 'superseded'))
      .then([{ ...open, status: 'superseded', decided_by: 'u2', decided_at: t2 }])
  })

  it('a version set directly touches no proposal', () =>
    proposals.given([open]).when(set(2, v2)).thenWrites({ upserts: [], deletes: [] }))
})

describe('allowed tools', () => {
  const allowed = (on: boolean, roomId = 'r1', by = 'u2', at = t1): AgentEvent => ({
    type: 'agent.tool_allowed',
    data: { agentId: 'g1', roomId, tool: 'delete_task', allowed: on, by, at },
  })
  const row: AllowedToolRow = { agent_id: 'g1', room_id: 'r1', tool: 'delete_task', allowed_by: 'u2', allowed_at: t1 }

  it('a tool allowed in a room is a row, by whom and when; per room', () =>
    expect(evolveTable(allowedToolRows, [], [allowed(true), allowed(true, 'r2', 'u3', t2)]).rows).toEqual([
      row,
      { ...row, room_id: 'r2', allowed_by: 'u3', allowed_at: t2 },
    ]))

  it('taken back, the row goes; allowed again, it comes back as that grant', () => {
    const revoked = evolveTable(allowedToolRows, [row], [allowed(false)])
    expect(revoked.rows).toEqual([])
    expect(revoked.deletes).toHaveLength(1)
    expect(evolveTable(allowedToolRows, [row], [allowed(false), allowed(true, 'r1', 'u3', t2)]).rows).toEqual([
      { ...row, allowed_by: 'u3', allowed_at: t2 },
    ])
  })

  it('other agent events touch no row', () =>
    expect(evolveTable(allowedToolRows, [row], [created, set(2, v2)])).toMatchObject({ upserts: [], deletes: [] }))
})

describe('agents projector', () => {
  it('writes its four tables from the agent events that change them (not secrets)', () => {
    expect(agentsProjector.tables).toEqual([
      'agents',
      'agent_role_prompt_versions',
      'agent_role_prompt_proposals',
      'agent_allowed_tools',
    ])
    expect(agentsProjector.eventTypes).toContain('agent.tool_allowed')
    expect(agentsProjector.eventTypes).not.toContain('agent.secret_rotated')
  })
})
