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

export type AgentSecret = { readonly secretId: string; readonly sealedSecret: string; readonly validUntil: string | null }

export type AgentState =
  | { readonly exists: false }
  | {
      readonly exists: true
      readonly name: string
      readonly username: string
      readonly createdBy: string
      readonly rolePrompt: string
      /** Null: the platform's default model. */
      readonly model: string | null
      /** The skillsets (bundles of tools) it may use beyond the core ones. */
      readonly skillsets: readonly string[]
      /** Current first, then the previous one while its grace lasts. */
      readonly secrets: readonly AgentSecret[]
    }

export type AgentCommand =
  | { type: 'create'; data: AgentCreated }
  | {
      type: 'rotate_secret'
      agentId: string
      secretId: string
      sealedSecret: string
      graceSeconds: number
      actor: { userId: string; role: 'owner' | 'admin' | 'member' | 'guest' }
      at: string
    }

export const MAX_SECRET_GRACE_SECONDS = 86_400

export const agent: Decider<AgentCommand, AgentEvent, AgentState> = {
  initialState: { exists: false },
  decide(c, s) {
    if (c.type === 'create') {
      if (s.exists) return []
      return [{ type: 'agent.created', data: c.data }]
    }
    if (!s.exists) throw new DomainError('AGENT_NOT_FOUND', 'no such agent', 'not_found')
    const { actor } = c
    if (!(actor.role === 'owner' || actor.role === 'admin' || actor.userId === s.createdBy)) {
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
  },
  evolve(s, e) {
    if (e.type === 'agent.created') {
      return {
        exists: true,
        name: e.data.name,
        username: e.data.username,
        createdBy: e.data.createdBy,
        rolePrompt: e.data.rolePrompt,
        model: e.data.model,
        skillsets: e.data.tools,
        secrets: [],
      }
    }
    if (!s.exists) return s
    const current = s.secrets[0]
    const previous = current && e.data.previousValidUntil ? [{ ...current, validUntil: e.data.previousValidUntil }] : []
    return { ...s, secrets: [{ secretId: e.data.secretId, sealedSecret: e.data.sealedSecret, validUntil: null }, ...previous] }
  },
}

/** The secrets an agent may sign with at `now`, current first. */
export const liveSecrets = (s: AgentState, now: Date): AgentSecret[] =>
  s.exists ? s.secrets.filter((x) => x.validUntil === null || new Date(x.validUntil) > now) : []
