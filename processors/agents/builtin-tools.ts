import { sql } from 'kysely'
import { z } from 'zod'
import type { AnyDb } from '../../adapters/postgres.ts'
import { inTenant } from '../../adapters/tenant-transaction.ts'
import { createArtifact } from '../../commands/artifacts.ts'
import { resolveMentions } from '../../commands/directory.ts'
import { postMessage } from '../../commands/messages.ts'
import type { CommandContext, PipelineDeps } from '../../commands/pipeline.ts'
import { awaitTask } from '../../commands/runs.ts'
import { createTask, deleteTask, loadTask, type PersonInput, submitReview, updateTask } from '../../commands/tasks.ts'
import { scheduleTimer } from '../../commands/timers.ts'
import { DomainError } from '../../domain/decider.ts'
import {
  isClosed,
  TASK_DESCRIPTION_MAX,
  TASK_REVIEW_TEXT_MAX,
  TASK_STATUSES,
  TASK_TITLE_MAX,
  type TaskActor,
  type TaskStatus,
} from '../../domain/tasks.ts'
import type { Principal } from '../../http/principal.ts'
import { STAY_SILENT } from './executor.ts'
import { type AgentTool, CORE_SKILLSET, type ToolCall, ToolInputError, ToolRegistry } from './tools.ts'
import { AGENT_WAKEUP, type AgentWakeup } from './wakeups.ts'

/*
 * The tools every agent has (the core skillset): read and search the conversations it may read, create tasks and
 * artifacts, and stay silent. Each acts as the agent, through the same commands and read models people's requests
 * go through, so the agent can do nothing its membership does not allow. What a tool creates takes an id derived
 * from the call, so running the call again (a resumed run) creates nothing twice.
 */

export type BuiltinToolDeps = PipelineDeps & {
  /** The tenant database, read as the agent (row-level security as for any user). */
  readonly db: AnyDb
}

/** The agent's commands: in its tenant, as itself, caused by its run, ids from the call. */
const asAgent = (call: ToolCall): CommandContext => {
  let n = 0
  return {
    tenantId: call.tenantId,
    actor: { type: 'agent', id: call.agentId },
    correlationId: call.runId,
    causationId: call.runId,
    now: () => new Date(),
    newId: () => call.idFor(`id:${n++}`),
  }
}

const messageLines = (rows: { username: string | null; text: string; created_at: Date; id: string }[]) =>
  rows.length === 0
    ? 'No messages.'
    : rows
        .map((m) => `[${new Date(m.created_at).toISOString().slice(0, 16)}] @${m.username ?? 'someone'} (${m.id}): ${m.text}`)
        .join('\n')

/** Rooms the agent may read: those it is a member of, and public rooms (an agent is never a guest). */
const readableBy = (agentId: string) => sql<boolean>`(exists (select 1 from tenant.room_members rm
   where rm.tenant_id = r.tenant_id and rm.room_id = r.id and rm.member_id = ${agentId})
   or (r.visibility = 'public' and r.kind = 'room'))`

/**
 * Tasks the agent may read (tasks `t`), as people's (domain/tasks.ts canReadTask): the readers of the task's room,
 * and its reporter, assignee, assistants and watchers.
 */
const readableTaskBy = (agentId: string, role: ToolCall['role']) => sql<boolean>`(
    exists (select 1 from tenant.room_members rm
             where rm.tenant_id = t.tenant_id and rm.room_id = t.room_id and rm.member_id = ${agentId})
    or (${role !== 'guest'}::boolean and exists (select 1 from tenant.rooms r
             where r.tenant_id = t.tenant_id and r.id = t.room_id and r.visibility = 'public' and r.kind = 'room'))
    or t.reporter_id = ${agentId} or t.assignee_id = ${agentId}
    or exists (select 1 from tenant.task_people p
             where p.tenant_id = t.tenant_id and p.task_id = t.id and p.user_id = ${agentId}))`

/** The agent as the task decider authorizes it: by its role in the org and its rooms, as a person would be. */
const taskActorOf = (call: ToolCall): TaskActor => ({ userId: call.agentId, role: call.role, type: 'agent' })

/** The task a call names, else the one the agent works on. */
const taskOf = (taskId: string | undefined, call: ToolCall): string => {
  const id = taskId ?? call.taskId
  if (!id) throw new ToolInputError('name the task (taskId): you are not working on one')
  return id
}

export function builtinTools(deps: BuiltinToolDeps): ToolRegistry {
  const registry = new ToolRegistry()

  const stay: AgentTool<z.ZodObject<{ reason: z.ZodOptional<z.ZodString> }>> = {
    name: STAY_SILENT,
    description: 'Say nothing in the conversation this time (nothing you write after is posted).',
    arguments: z.object({ reason: z.string().max(500).optional() }),
    skillset: CORE_SKILLSET,
    risky: false,
    run: async () => ({ output: 'Nothing will be posted.' }),
  }
  registry.register(stay)

  registry.register({
    name: 'read_messages',
    description: 'Read the latest messages of a room you may read (by default the one you were woken in), oldest first.',
    arguments: z.object({
      roomId: z.uuid().optional(),
      limit: z.number().int().min(1).max(100).default(30),
    }),
    skillset: CORE_SKILLSET,
    risky: false,
    async run(args, call) {
      const roomId = args.roomId ?? call.roomId
      const rows = await inTenant(deps.db, { tenantId: call.tenantId, userId: call.agentId }, (trx) =>
        sql<{ id: string; username: string | null; text: string; created_at: Date }>`
          select m.id, u.username, m.text, m.created_at
            from tenant.messages m
            join tenant.rooms r on r.tenant_id = m.tenant_id and r.id = m.room_id
            left join tenant.users u on u.tenant_id = m.tenant_id and u.id = m.author_id
           where m.tenant_id = ${call.tenantId} and m.room_id = ${roomId} and m.deleted_at is null and ${readableBy(call.agentId)}
           order by m.position desc limit ${args.limit}`.execute(trx),
      )
      return { output: messageLines(rows.rows.reverse()) }
    },
  })

  registry.register({
    name: 'search_messages',
    description: 'Search the messages of every room you may read by words; the best matches first.',
    arguments: z.object({ query: z.string().min(1).max(200), limit: z.number().int().min(1).max(50).default(10) }),
    skillset: CORE_SKILLSET,
    risky: false,
    async run(args, call) {
      const rows = await inTenant(deps.db, { tenantId: call.tenantId, userId: call.agentId }, (trx) =>
        sql<{ id: string; username: string | null; text: string; created_at: Date; room: string }>`
          select m.id, u.username, m.text, m.created_at, r.name as room
            from tenant.messages m
            join tenant.rooms r on r.tenant_id = m.tenant_id and r.id = m.room_id
            left join tenant.users u on u.tenant_id = m.tenant_id and u.id = m.author_id
           where m.tenant_id = ${call.tenantId} and m.deleted_at is null and ${readableBy(call.agentId)}
             and m.search @@ websearch_to_tsquery('simple', ${args.query})
           order by ts_rank(m.search, websearch_to_tsquery('simple', ${args.query})) desc, m.position desc
           limit ${args.limit}`.execute(trx),
      )
      return {
        output:
          rows.rows.length === 0
            ? 'No messages match.'
            : rows.rows.map((m) => `#${m.room} @${m.username ?? 'someone'} (${m.id}): ${m.text}`).join('\n'),
      }
    },
  })

  registry.register({
    name: 'create_task',
    description: 'Create a task in the room you work in (or a subtask of another task).',
    arguments: z.object({
      title: z.string().min(1).max(200),
      description: z.string().max(20_000).optional(),
      parentId: z.uuid().optional(),
      assigneeUserId: z.uuid().optional(),
    }),
    skillset: CORE_SKILLSET,
    risky: false,
    async run(args, call) {
      const ctx = asAgent(call)
      const taskId = call.idFor('task')
      await createTask(deps, ctx, {
        taskId,
        title: args.title,
        description: args.description,
        ...(args.parentId ? { parentId: args.parentId } : { roomId: call.roomId }),
        assignee: args.assigneeUserId ? { userId: args.assigneeUserId } : null,
        actor: { userId: call.agentId, role: call.role, type: 'agent' },
      })
      return { output: `Created task ${taskId}: ${args.title}` }
    },
  })

  registry.register({
    name: 'delete_task',
    description: 'Delete a task (and its subtasks must be closed first). A person approves this call before it runs.',
    arguments: z.object({ taskId: z.uuid() }),
    skillset: CORE_SKILLSET,
    risky: true,
    async run(args, call) {
      await deleteTask(deps, asAgent(call), args.taskId, { userId: call.agentId, role: call.role, type: 'agent' })
      return { output: `Deleted task ${args.taskId}.` }
    },
  })

  registry.register({
    name: 'update_task',
    description:
      'Change a task (by default the one you work on): its status (open, in_progress, blocked, done, cancelled), title, description, or who it is assigned to. A task with a result review is done once a person approves the result you submit.',
    arguments: z.object({
      taskId: z.uuid().optional(),
      status: z.enum(TASK_STATUSES).optional(),
      title: z.string().min(1).max(TASK_TITLE_MAX).optional(),
      description: z.string().max(TASK_DESCRIPTION_MAX).optional(),
      assigneeUserId: z.uuid().optional().describe('hand it to this person'),
      assigneeAgentId: z.uuid().optional().describe('hand it to this agent'),
      unassign: z.boolean().optional().describe('leave it assigned to nobody'),
    }),
    skillset: CORE_SKILLSET,
    risky: false,
    async run(args, call) {
      const taskId = taskOf(args.taskId, call)
      const handTo = [args.assigneeUserId, args.assigneeAgentId, args.unassign || undefined].filter((v) => v !== undefined)
      if (handTo.length > 1) throw new ToolInputError('give at most one of assigneeUserId, assigneeAgentId and unassign')
      const assignee: PersonInput | null | undefined = args.assigneeUserId
        ? { userId: args.assigneeUserId }
        : args.assigneeAgentId
          ? { agentId: args.assigneeAgentId }
          : args.unassign
            ? null
            : undefined
      const change = { title: args.title, description: args.description, status: args.status, assignee }
      if (Object.values(change).every((v) => v === undefined)) throw new ToolInputError('name at least one thing to change')
      const r = await updateTask(deps, asAgent(call), taskId, change, taskActorOf(call))
      if (r.events.length === 0) return { output: `Task ${taskId} is already so: nothing changed.` }
      const status = r.state.exists ? r.state.status : args.status
      return { output: `Updated task ${taskId} (now ${status}).` }
    },
  })

  registry.register({
    name: 'submit_task_result',
    description:
      'Submit your plan (before you start) or your result (while in progress) of a task assigned to you for a person’s review; an approved result closes the task.',
    arguments: z.object({
      taskId: z.uuid().optional(),
      gate: z.enum(['plan', 'result']),
      text: z.string().min(1).max(TASK_REVIEW_TEXT_MAX),
    }),
    skillset: CORE_SKILLSET,
    risky: false,
    async run(args, call) {
      const taskId = taskOf(args.taskId, call)
      try {
        await submitReview(deps, asAgent(call), taskId, args.gate, args.text, taskActorOf(call))
      } catch (e) {
        // The call run again after a person approved what it submitted: that stands, and is not an error.
        if (!(e instanceof DomainError && e.code === 'TASK_GATE_APPROVED')) throw e
        const t = await loadTask(deps.store, taskId, call.tenantId)
        const gate = t.exists ? t.gates[args.gate] : null
        if (gate?.submittedBy !== call.agentId || gate.text !== args.text.trim()) throw e
        return { output: `Your ${args.gate} for task ${taskId} is approved already.` }
      }
      return { output: `Submitted the ${args.gate} of task ${taskId} for review: a person approves or rejects it.` }
    },
  })

  registry.register({
    name: 'post_message',
    description:
      'Post a message in a room you may write in (by default the one you work in). Your final answer is posted for you: use this for other rooms, or to say something before you go on working.',
    arguments: z.object({ text: z.string().min(1).max(20_000), roomId: z.uuid().optional() }),
    skillset: CORE_SKILLSET,
    risky: false,
    async run(args, call) {
      const messageId = call.idFor('message')
      const me = { tenantId: call.tenantId, userId: call.agentId } as Principal
      await postMessage(deps, asAgent(call), {
        messageId,
        in: args.roomId ? { roomId: args.roomId } : call.taskId ? { taskId: call.taskId } : { roomId: call.roomId },
        text: args.text,
        mentions: await resolveMentions(deps.db, me, args.text),
        author: { userId: call.agentId, role: call.role, type: 'agent' },
      })
      return { output: `Posted message ${messageId}.` }
    },
  })

  registry.register({
    name: 'schedule_wakeup',
    description:
      'Be woken again later in this conversation, with a note to yourself (to check on something that takes time). Give `at` (ISO 8601) or `inMinutes`.',
    arguments: z.object({
      note: z.string().min(1).max(2_000),
      at: z.iso.datetime({ offset: true }).optional(),
      inMinutes: z
        .number()
        .min(0.01)
        .max(60 * 24 * 30)
        .optional(),
    }),
    skillset: CORE_SKILLSET,
    risky: false,
    async run(args, call) {
      const dueAt = args.at
        ? new Date(args.at)
        : args.inMinutes !== undefined
          ? new Date(Date.now() + args.inMinutes * 60_000)
          : null
      if (!dueAt) throw new ToolInputError('give `at` or `inMinutes`')
      const timerId = call.idFor('wakeup')
      const wakeup: AgentWakeup = {
        tenantId: call.tenantId,
        agentId: call.agentId,
        roomId: call.roomId,
        taskId: call.taskId,
        note: args.note,
      }
      await scheduleTimer(deps, asAgent(call), { timerId, dueAt, command: { type: AGENT_WAKEUP, data: wakeup } })
      return { output: `You will be woken at ${dueAt.toISOString()}.` }
    },
  })

  registry.register({
    name: 'wait_for_task',
    description:
      'Be woken again in this conversation when a task you may read is done, cancelled or deleted, with its result and a note to yourself.',
    arguments: z.object({ taskId: z.uuid(), note: z.string().min(1).max(2_000).optional() }),
    skillset: CORE_SKILLSET,
    risky: false,
    async run(args, call) {
      const found = await inTenant(deps.db, { tenantId: call.tenantId, userId: call.agentId }, (trx) =>
        sql<{ title: string; status: TaskStatus; result_text: string | null }>`
          select t.title, t.status, t.result_text from tenant.tasks t
           where t.tenant_id = ${call.tenantId} and t.id = ${args.taskId} and ${readableTaskBy(call.agentId, call.role)}`.execute(
          trx,
        ),
      )
      const t = found.rows[0]
      if (!t) throw new ToolInputError(`there is no task ${args.taskId} you may read`)
      if (isClosed(t.status)) {
        const result = t.result_text ? ` Its result: ${t.result_text}` : ' It has no result recorded.'
        return { output: `The task “${t.title}” is already ${t.status}.${result}` }
      }
      await awaitTask(deps, asAgent(call), {
        runId: call.runId,
        agentId: call.agentId,
        awaitedTaskId: args.taskId,
        note: args.note ?? null,
      })
      return { output: `You will be woken in this conversation when the task “${t.title}” is done, cancelled or deleted.` }
    },
  })

  registry.register({
    name: 'create_artifact',
    description:
      'Attach an output of your work to the room you work in (or its task): a report, a patch (unified diff) or a link.',
    arguments: z.object({
      kind: z.enum(['report', 'patch', 'link']),
      title: z.string().min(1).max(200),
      content: z.string().max(1_000_000).optional(),
      url: z.url().optional(),
    }),
    skillset: CORE_SKILLSET,
    risky: false,
    async run(args, call) {
      const { artifactId } = await createArtifact(deps, asAgent(call), {
        artifactId: call.idFor('artifact'),
        kind: args.kind,
        title: args.title,
        roomId: call.roomId,
        taskId: call.taskId,
        runId: call.runId,
        content: args.content ?? null,
        url: args.url ?? null,
        actor: { type: 'agent', userId: call.agentId, role: call.role },
      })
      return { output: `Created artifact ${artifactId}: ${args.title}` }
    },
  })

  return registry
}
