import { sql } from 'kysely'
import type { HeldRun, RunningAgent } from '../../adapters/agent-runs.ts'
import type { AnyDb } from '../../adapters/postgres.ts'
import { inTenant } from '../../adapters/tenant-transaction.ts'
import type { ContextParts } from './window.ts'

export type ContextOptions = {
  /** Messages of the room (or task) read back at most. Default 50. */
  readonly recentMessages?: number
  /** Notes of closed tasks like this run's, at most. Default 3. */
  readonly memories?: number
}

const line = (m: { username: string | null; author_type: string; text: string; created_at: Date | string }) =>
  `[${new Date(m.created_at).toISOString().slice(0, 16).replace('T', ' ')}] @${m.username ?? 'someone'}${m.author_type === 'agent' ? ' (agent)' : ''}: ${m.text}`

/**
 * The context a run starts from: who the agent is (its role prompt) and how it acts, the task it works on, then the
 * conversation it was woken in, read as the agent may read it (its row-level security, as the agent): the room's
 * recent messages, or the task's conversation; and notes of similar tasks it closed. What of it fits the model's
 * window is window.ts's to decide.
 */
export function conversationContext(db: AnyDb, options: ContextOptions = {}) {
  const recent = options.recentMessages ?? 50
  const memories = options.memories ?? 3
  return async (run: HeldRun, agent: RunningAgent): Promise<ContextParts> => {
    const asked = run.inputs.map((i) => i.text).join(' ')
    const asAgent = { tenantId: agent.tenantId, userId: agent.agentId }
    const { room, task, messages, notes } = await inTenant(db, asAgent, async (trx) => {
      const room = await trx
        .selectFrom('tenant.rooms')
        .select(['name', 'description'])
        .where('tenant_id', '=', agent.tenantId)
        .where('id', '=', run.roomId)
        .executeTakeFirst()
      const task = run.taskId
        ? await trx
            .selectFrom('tenant.tasks')
            .select(['title', 'description', 'status'])
            .where('tenant_id', '=', agent.tenantId)
            .where('id', '=', run.taskId)
            .executeTakeFirst()
        : undefined
      const rows = await sql<{ username: string | null; author_type: string; text: string; created_at: Date }>`
        select u.username, m.author_type, m.text, m.created_at
          from tenant.messages m
          left join tenant.users u on u.tenant_id = m.tenant_id and u.id = m.author_id
         where m.tenant_id = ${agent.tenantId} and m.room_id = ${run.roomId} and m.deleted_at is null
           and m.task_id is not distinct from ${run.taskId}
         order by m.position desc
         limit ${recent}`.execute(trx)
      // Memory: the tasks this agent worked on (assignee or assistant) that are done, ranked by the words they share
      // with what it is asked now (any word, full-text): a closed task's title, description and result are its note.
      const similar = await sql<{ title: string; description: string; result_text: string | null }>`
        with q as (select nullif(replace(plainto_tsquery('simple', ${asked})::text, ' & ', ' | '), '')::tsquery as q)
        select t.title, t.description, t.result_text
          from tenant.tasks t, q
         where t.tenant_id = ${agent.tenantId} and t.status = 'done' and t.id is distinct from ${run.taskId}::uuid
           and (t.assignee_id = ${agent.agentId} or exists (select 1 from tenant.task_people p
                 where p.tenant_id = t.tenant_id and p.task_id = t.id and p.user_id = ${agent.agentId} and p.relation = 'assistant'))
           and q.q is not null
           and to_tsvector('simple', t.title || ' ' || t.description || ' ' || coalesce(t.result_text, '')) @@ q.q
         order by ts_rank(to_tsvector('simple', t.title || ' ' || t.description || ' ' || coalesce(t.result_text, '')), q.q) desc,
                  t.updated_at desc
         limit ${memories}`.execute(trx)
      return { room, task, messages: rows.rows.reverse(), notes: similar.rows }
    })
    const system = [
      `You are ${agent.name}, an AI agent working with people in a team workspace.`,
      agent.rolePrompt.trim(),
      'You act only through your tools. When you answer without calling a tool, your answer is posted in the conversation ' +
        'you were woken in; call stay_silent when nothing needs saying. Never invent facts: read the history or say you do not know.',
    ]
      .filter(Boolean)
      .join('\n\n')
    const where = run.taskId ? `the conversation of a task in #${room?.name ?? 'a room'}` : `#${room?.name ?? 'a room'}`
    return {
      system,
      task: task
        ? `The task you work on: ${task.title} (status: ${task.status})${task.description ? `\n\n${task.description}` : ''}`
        : null,
      notes: notes.map(
        (n) => `- ${n.title}${n.description ? `: ${n.description}` : ''}${n.result_text ? ` (result: ${n.result_text})` : ''}`,
      ),
      where,
      recent: messages.map(line),
    }
  }
}
