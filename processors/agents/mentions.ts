import { orgStream } from '../../adapters/streams.ts'
import { loadAgent } from '../../commands/agents.ts'
import { loadState, type PipelineDeps } from '../../commands/pipeline.ts'
import { loadRoom } from '../../commands/rooms.ts'
import { wakeAgent } from '../../commands/runs.ts'
import { mayUseAgent } from '../../domain/agents.ts'
import type { MessageEvent } from '../../domain/messages.ts'
import { org } from '../../domain/orgs.ts'
import { commandContextFor } from '../context.ts'
import type { Processor } from '../processor.ts'

type Posted = Extract<MessageEvent, { type: 'message.created' }>

export const AGENT_MENTIONS_PROCESSOR = 'agent-mentions'

/**
 * A hard @-mention of an agent who is a member of the room wakes it in its thread for that room (or for the task,
 * when the message is in a task's conversation): a run starts, or the mention joins the next run. Only a message's
 * creation wakes anyone: an edit that mentions again starts nothing new. An agent mentioning itself wakes nothing,
 * nor does a mention by someone the agent's access does not let use it there (domain/agents.ts mayUseAgent).
 */
export const agentMentionsProcessor = (deps: PipelineDeps): Processor<Posted> => ({
  name: AGENT_MENTIONS_PROCESSOR,
  version: 1,
  eventTypes: ['message.created'],
  partitionBy: 'tenant',
  // Deployed onto a live system, it must not wake agents for every mention in history.
  startAt: 'head',
  async handle(event, ctx) {
    const m = event.data
    const tenantId = event.metadata.tenantId
    if (!tenantId || m.mentions.length === 0) return
    const room = await loadRoom(deps.store, m.roomId, tenantId)
    if (!room.exists) return
    const mentioned = [...new Set(m.mentions.map((x) => x.userId))].filter(
      (id) => id !== m.authorId && room.members.get(id) === 'agent',
    )
    if (mentioned.length === 0) return
    // Whom the agent's access lets use it here: its author, with their role in the org.
    const orgState = await loadState(deps.store, org, orgStream(tenantId), tenantId)
    const author = orgState.status === 'none' ? undefined : orgState.members.get(m.authorId)
    if (!author?.active) return
    const agents: string[] = []
    for (const agentId of mentioned) {
      const { state } = await loadAgent(deps, agentId)
      if (mayUseAgent(state, { userId: m.authorId, role: author.role }, m.roomId)) agents.push(agentId)
    }
    const commands = commandContextFor(AGENT_MENTIONS_PROCESSOR, event, ctx)
    for (const agentId of agents) {
      await wakeAgent(deps, commands, {
        agentId,
        roomId: m.roomId,
        taskId: m.taskId ?? null,
        workType: 'conversation',
        input: { trigger: { type: 'mention', messageId: m.messageId }, text: m.text },
      })
    }
  },
})
