import { sql } from 'kysely'
import type { LlmMessage } from '../../adapters/llm.ts'
import type { AnyDb } from '../../adapters/postgres.ts'
import { inTenant } from '../../adapters/tenant-transaction.ts'
import type { AgentProfile } from './executor.ts'
import type { ExistingRun } from './recorder.ts'

export type ContextOptions = {
  /** Messages of the room (or task) read back at most. Default 50. */
  readonly recentMessages?: number
  /** What the context may hold, in characters (~4 a token): the oldest messages go first. Default 200,000. */
  readonly maxChars?: number
  /** Notes of closed tasks like this run's, at most. Default 3. */
  readonly memories?: number
}

const line = (m: { username: string | null; author_type: string; text: string; created_at: Date | string }) =>
  `[${new Date(m.created_at).toISOString().slice(0, 16).replace('T', ' ')}] @${m.username ?? 'someone'}${m.author_type === 'agent' ? ' (agent)' : ''}: ${m.text}`

/**
 * The context a run starts from: who the agent is (its role prompt) and how it acts, then the conversation it was
 * woken in, read as the agent may read it (its row-level security, as the agent): the room's recent messages, or the
 * task's conversation. Within the model's window the oldest messages are dropped first.
 */
export function conversationContext(db: AnyDb, options: ContextOptions = {}) {
  const recent = options.recentMessages ?? 50
  const maxChars = options.maxChars ?? 200_000
  const memories = options.memories ?? 3
  return async (run: ExistingRun, agent: AgentProfile): Promise<LlmMessage[]> => {
    const asked = run.inputs.map((i) => i.text).join(' ')
    const { room, messages, notes } = await inTenant(db, { tenantId: agent.tenantId, userId: agent.agentId }, async (trx) => {
      const room = await trx
        .selectFrom('tenant.rooms')
        .select(['name', 'description'])
        .where('tenant_id', '=', agent.tenantId)
        .where('id', '=', run.roomId)
        .executeTakeFirst()
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
      return { room, messages: rows.rows.reverse(), notes: similar.rows }
    })
    const system = [
      `You are ${agent.name}, an AI agent working with people in a team workspace.`,
      agent.rolePrompt.trim(),
      'You act only through your tools. When you answer without calling a tool, your answer is posted in the conversation ' +
        'you were woken in; call stay_silent when nothing needs saying. Never invent facts: read the history or say you do not know.',
    ]
      .filter(Boolean)
      .join('\n\n')
    const lines = messages.map(line)
    let size = lines.reduce((n, l) => n + l.length + 1, system.length)
    while (lines.length > 0 && size > maxChars) size -= lines.shift()!.length + 1
    const where = run.taskId ? `the conversation of a task in #${room?.name ?? 'a room'}` : `#${room?.name ?? 'a room'}`
    const memory = notes.map(
      (n) => `- ${n.title}${n.description ? `: ${n.description}` : ''}${n.result_text ? ` (result: ${n.result_text})` : ''}`,
    )
    return [
      { role: 'system', content: system },
      ...(memory.length
        ? [{ role: 'user' as const, content: `Notes from similar tasks you closed:\n${memory.join('\n')}` }]
        : []),
      { role: 'user', content: `Recent messages in ${where}, oldest first:\n${lines.join('\n') || '(none)'}` },
    ]
  }
}
