import type { CommandContext, PipelineDeps } from '../../commands/pipeline.ts'
import { wakeAgent } from '../../commands/runs.ts'
import type { TimerHandler } from '../timers.ts'

/** The durable timer's command an agent's `schedule_wakeup` leaves: fired once, across processes and restarts. */
export const AGENT_WAKEUP = 'agent.wakeup'

export type AgentWakeup = {
  readonly tenantId: string
  readonly agentId: string
  readonly roomId: string
  readonly taskId: string | null
  readonly note: string
}

const isWakeup = (d: Readonly<Record<string, unknown>>): d is AgentWakeup =>
  typeof d.tenantId === 'string' && typeof d.agentId === 'string' && typeof d.roomId === 'string' && typeof d.note === 'string'

/**
 * When an agent's wake-up fires, it is woken in the thread it scheduled it from, with its note as the input: a run
 * starts, or the note joins the next one. Fired again (a retried handler), the thread has seen the timer: nothing new.
 */
export const agentWakeupHandler =
  (deps: PipelineDeps): TimerHandler =>
  async (command, ctx) => {
    if (!isWakeup(command.data)) throw new Error(`${AGENT_WAKEUP}: malformed command`)
    const w = command.data
    let n = 0
    const commands: CommandContext = {
      tenantId: w.tenantId,
      actor: { type: 'system', id: 'agent-wakeups' },
      correlationId: ctx.timerId,
      causationId: ctx.timerId,
      now: () => new Date(),
      newId: () => ctx.idFor(`id:${n++}`),
    }
    await wakeAgent(deps, commands, {
      agentId: w.agentId,
      roomId: w.roomId,
      taskId: w.taskId,
      workType: 'conversation',
      input: { trigger: { type: 'wakeup', timerId: ctx.timerId }, text: `The wake-up you scheduled is due: ${w.note}` },
    })
  }
