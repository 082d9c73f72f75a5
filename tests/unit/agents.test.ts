import { describe, expect, it } from 'vitest'
import { type AgentCreated, type AgentEvent, agent, liveSecrets, MAX_SECRET_GRACE_SECONDS } from '../../domain/agents.ts'
import { fold } from '../../domain/decider.ts'
import { spec } from './spec.ts'

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
      model: data.model,
      skillsets: ['search'],
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
