import { sql } from 'kysely'
import { z } from 'zod'
import { type Llm, LlmError, type LlmMessage, type LlmTool, type LlmToolCall, type LlmUsage } from '../../adapters/llm.ts'
import type { AnyDb } from '../../adapters/postgres.ts'
import { orgStream } from '../../adapters/streams.ts'
import { inTenant } from '../../adapters/tenant-transaction.ts'
import { loadAgent } from '../../commands/agents.ts'
import { messageStream } from '../../commands/messages.ts'
import { loadState, type PipelineDeps, readTenantStream } from '../../commands/pipeline.ts'
import { loadRoom } from '../../commands/rooms.ts'
import { threadIdFor, threadStream, wakeAgent } from '../../commands/runs.ts'
import { recordUsage } from '../../commands/usage.ts'
import { mayUseAgent } from '../../domain/agents.ts'
import type { Mention, MessageEvent } from '../../domain/messages.ts'
import { org } from '../../domain/orgs.ts'
import type { RoomState } from '../../domain/rooms.ts'
import { triggerKey } from '../../domain/runs.ts'
import { thread } from '../../domain/threads.ts'
import {
  type Attribution,
  type BudgetState,
  budget,
  budgetStream,
  type CapsState,
  capOf,
  caps,
  capsStream,
  monthOf,
  scopesOf,
  usedOf,
} from '../../domain/usage.ts'
import { commandContextFor } from '../context.ts'
import type { Processor, ProcessorContext } from '../processor.ts'

/*
 * Soft mentions: a person's message that names no agent may still be meant for one ("can someone summarise this?"
 * in a room with a writer agent and a coding agent). The room's agents are the candidates (members of the room,
 * within their caps); a room where the author talks to one agent alone (a DM with it, or a room with one person)
 * wakes it without asking anyone; otherwise one cheap model call over the recent messages and each candidate's name,
 * role and tools picks one or none. A thread where several people talk stays quiet unless someone @-mentions an
 * agent. Whatever goes wrong with the model (an error, a timeout, an answer that is not a clean pick) routes
 * nothing: a log line, and the event is done — the processor never retries nor parks over the model.
 */

export const SOFT_MENTIONS_PROCESSOR = 'agent-soft-mentions'

/** The tool the router answers with. */
export const ROUTE_TOOL = 'route_message'

/** How long the router's model call may take before the message is left unrouted. */
export const ROUTER_TIMEOUT_MS = 10_000

/** Recent messages the router reads before the new one. */
export const ROUTER_RECENT_MESSAGES = 20

/** What the router reads of a message: enough to follow the conversation, bounded so the call stays cheap. */
const ROUTER_MESSAGE_CHARS = 1_000
const ROUTER_ROLE_CHARS = 600

type Posted = Extract<MessageEvent, { type: 'message.created' }>

/** A room's agent as the router presents it to the model. */
export type RoomAgent = {
  readonly agentId: string
  readonly name: string
  readonly username: string
  readonly rolePrompt: string
  /** The skillsets (or tool names) it may use. */
  readonly tools: readonly string[]
}

export type SoftMentionFacts = {
  readonly authorType: 'user' | 'agent'
  readonly mentions: readonly Mention[]
  readonly threadRootId: string | null
  readonly room: RoomState
  /** The room's agents that may act on it (within access and budget), in the room's member order. */
  readonly candidates: readonly RoomAgent[]
  /** People who wrote in the message's thread (the root, the replies, this one); 1 outside a thread. */
  readonly threadHumans: number
}

export type Routing =
  | {
      readonly kind: 'none'
      readonly reason: 'not_a_person' | 'room_gone' | 'names_an_agent' | 'no_agent' | 'busy_thread'
    }
  /** The author talks to this agent alone: no call is needed. */
  | { readonly kind: 'wake'; readonly agent: RoomAgent }
  /** Several people, or several agents: the model picks. */
  | { readonly kind: 'ask'; readonly candidates: readonly RoomAgent[] }

/** The room's agent members, in the order they joined (the room state's map order). */
export const agentMembersOf = (room: RoomState): string[] =>
  room.exists ? [...room.members].filter(([, type]) => type === 'agent').map(([id]) => id) : []

const humansOf = (room: Extract<RoomState, { exists: true }>): number =>
  [...room.members.values()].filter((type) => type === 'user').length

/** What rules a message out before anything is read beyond its room: the checks that cost nothing. */
export function screen(f: Pick<SoftMentionFacts, 'authorType' | 'mentions' | 'room'>): Extract<Routing, { kind: 'none' }> | null {
  if (f.authorType !== 'user') return { kind: 'none', reason: 'not_a_person' }
  const room = f.room
  if (!room.exists || room.archived) return { kind: 'none', reason: 'room_gone' }
  if (f.mentions.some((m) => room.members.get(m.userId) === 'agent')) return { kind: 'none', reason: 'names_an_agent' }
  if (agentMembersOf(room).length === 0) return { kind: 'none', reason: 'no_agent' }
  return null
}

/**
 * Who a message goes to, short of the model. A message naming an agent member is the hard mentions' to route; an
 * agent's message never wakes another through here (two agents would talk forever). One candidate needs no call
 * when the author is alone with it: a DM, or a room where the author is the only person. With more people in the
 * room the one agent is not necessarily addressed, so the model still decides (it or none).
 */
export function routeWithoutModel(f: SoftMentionFacts): Routing {
  const first = screen(f)
  if (first) return first
  const room = f.room as Extract<RoomState, { exists: true }>
  if (f.threadRootId !== null && f.threadHumans > 1) return { kind: 'none', reason: 'busy_thread' }
  if (f.candidates.length === 0) return { kind: 'none', reason: 'no_agent' }
  const [only] = f.candidates
  if (f.candidates.length === 1 && only && (room.kind === 'dm' || humansOf(room) <= 1)) return { kind: 'wake', agent: only }
  return { kind: 'ask', candidates: f.candidates }
}

/**
 * Whether a spend attributed to `a` has any room left under the org's caps this month: none when a cap it counts
 * against is already spent or reserved to its limit. The amount of the run it would start is unknown here, so this
 * is the least a reservation (commands/usage.ts reserveSpend) would refuse; the run's own reservations hold the rest.
 */
export function hasBudget(b: BudgetState, c: CapsState, orgId: string, a: Attribution, at: string): boolean {
  return scopesOf(orgId, a).every(({ scope, scopeId }) => {
    const limit = capOf(c, scope, scopeId)
    return limit === null || usedOf(b, scope, scopeId, at) < limit
  })
}

export const routeTool: LlmTool = {
  name: ROUTE_TOOL,
  description:
    'Say which agent, if any, the new message is meant for: its username, or null when it is for the people or for nobody.',
  parameters: {
    type: 'object',
    properties: {
      agent: { type: ['string', 'null'], description: 'the username of the agent the message is for, or null' },
      reason: { type: 'string', description: 'a few words on why' },
    },
    required: ['agent'],
    additionalProperties: false,
  },
}

export type RecentLine = { readonly author: string; readonly authorType: 'user' | 'agent'; readonly text: string }

const clip = (text: string, max: number) => (text.length > max ? `${text.slice(0, max)}…` : text)
const oneLine = (text: string) => text.replace(/\s+/g, ' ').trim()
const lineOf = (l: RecentLine) =>
  `@${l.author}${l.authorType === 'agent' ? ' (agent)' : ''}: ${clip(oneLine(l.text), ROUTER_MESSAGE_CHARS)}`

/** The router's conversation: what it must decide, the agents to pick from, the recent messages and the new one. */
export function routerPrompt(input: {
  readonly candidates: readonly RoomAgent[]
  readonly recent: readonly RecentLine[]
  readonly message: RecentLine
  readonly where: string
}): LlmMessage[] {
  const agents = input.candidates
    .map((a) =>
      [
        `- @${a.username} (${a.name})`,
        `  role: ${clip(oneLine(a.rolePrompt), ROUTER_ROLE_CHARS) || '(none given)'}`,
        `  tools: ${a.tools.join(', ') || '(core only)'}`,
      ].join('\n'),
    )
    .join('\n')
  const system = [
    'You route messages in a team workspace where people and AI agents work together.',
    'A person just wrote a message that @-mentions no agent. Decide whether it asks one of the agents below to do ' +
      'something or to answer; if so, pick the one whose role and tools fit best. If it is for the people, small ' +
      'talk, or unclear, pick none: an agent that speaks up uninvited is worse than one that stays quiet.',
    `Answer only by calling ${ROUTE_TOOL} with {"agent": "<username>"} or {"agent": null}.`,
  ].join('\n\n')
  const recent = input.recent.map(lineOf).join('\n') || '(none)'
  return [
    { role: 'system', content: system },
    {
      role: 'user',
      content: `Agents in ${input.where}:\n${agents}\n\nRecent messages, oldest first:\n${recent}\n\nThe new message:\n${lineOf(input.message)}`,
    },
  ]
}

const RouteAnswer = z.strictObject({ agent: z.string().nullable(), reason: z.string().optional() })

export type RouteDecision =
  | { readonly kind: 'agent'; readonly agentId: string }
  | { readonly kind: 'none' }
  /** Not a clean pick: routes nothing, and says why in the log. */
  | { readonly kind: 'invalid'; readonly detail: string }

const parseJson = (text: string): unknown => {
  try {
    return JSON.parse(text)
  } catch {
    return undefined
  }
}

/**
 * The model's answer, read strictly: one call of the route tool (or, from a model that answered in text, that
 * call's JSON and nothing else) naming one candidate by username, or null. Anything else picks nobody.
 */
export function parseRoute(
  answer: { text: string; toolCalls: readonly LlmToolCall[] },
  candidates: readonly RoomAgent[],
): RouteDecision {
  let raw: string
  if (answer.toolCalls.length > 0) {
    if (answer.toolCalls.length > 1) return { kind: 'invalid', detail: `${answer.toolCalls.length} tool calls` }
    const [call] = answer.toolCalls
    if (call!.name !== ROUTE_TOOL) return { kind: 'invalid', detail: `called ${call!.name}` }
    raw = call!.arguments
  } else {
    raw = answer.text.trim()
  }
  const parsed = RouteAnswer.safeParse(parseJson(raw))
  if (!parsed.success) return { kind: 'invalid', detail: `not a route: ${clip(raw, 200)}` }
  const name = parsed.data.agent
  if (name === null) return { kind: 'none' }
  const username = name.trim().replace(/^@/, '').toLowerCase()
  const picked = candidates.find((c) => c.username.toLowerCase() === username)
  return picked ? { kind: 'agent', agentId: picked.agentId } : { kind: 'invalid', detail: `no such agent: ${clip(name, 100)}` }
}

/** What the router reads from the read models: the recent conversation and who wrote in a thread. */
export type SoftMentionReads = {
  /** The messages before `messageId` where it was posted (its thread, its task's conversation, or the room), oldest first. */
  recent(q: {
    tenantId: string
    userId: string
    roomId: string
    taskId: string | null
    threadRootId: string | null
    messageId: string
  }): Promise<RecentLine[]>
  /** The people (not agents) who wrote the thread's replies. */
  threadRepliers(q: { tenantId: string; userId: string; threadRootId: string }): Promise<string[]>
  /** The room's name and the author's username, for the prompt. */
  names(q: { tenantId: string; userId: string; roomId: string }): Promise<{ room: string | null; author: string | null }>
}

/**
 * The reads over the tenant read models, as the message's author (row-level security). They may lag the event by
 * a moment: a reply projected a moment late is one person fewer in a thread, or a line fewer of context.
 */
export const readModelReads = (db: AnyDb, limit = ROUTER_RECENT_MESSAGES): SoftMentionReads => ({
  recent: (q) =>
    inTenant(db, q, async (trx) => {
      const where = q.threadRootId
        ? sql`(m.id = ${q.threadRootId} or m.thread_root_id = ${q.threadRootId})`
        : sql`m.thread_root_id is null and m.task_id is not distinct from ${q.taskId}`
      const rows = await sql<{ username: string | null; author_type: string; text: string }>`
        select u.username, m.author_type, m.text
          from tenant.messages m
          left join tenant.users u on u.tenant_id = m.tenant_id and u.id = m.author_id
         where m.tenant_id = ${q.tenantId} and m.room_id = ${q.roomId} and m.deleted_at is null
           and m.id <> ${q.messageId} and ${where}
         order by m.seq desc
         limit ${limit}`.execute(trx)
      return rows.rows.reverse().map((r) => ({
        author: r.username ?? 'someone',
        authorType: r.author_type === 'agent' ? ('agent' as const) : ('user' as const),
        text: r.text,
      }))
    }),
  threadRepliers: (q) =>
    inTenant(db, q, async (trx) => {
      const rows = await sql<{ author_id: string }>`
        select distinct author_id from tenant.messages
         where tenant_id = ${q.tenantId} and thread_root_id = ${q.threadRootId} and author_type = 'user'`.execute(trx)
      return rows.rows.map((r) => r.author_id)
    }),
  names: (q) =>
    inTenant(db, q, async (trx) => {
      const [room, author] = await Promise.all([
        trx
          .selectFrom('tenant.rooms')
          .select(['name'])
          .where('tenant_id', '=', q.tenantId)
          .where('id', '=', q.roomId)
          .executeTakeFirst(),
        trx
          .selectFrom('tenant.users')
          .select(['username'])
          .where('tenant_id', '=', q.tenantId)
          .where('id', '=', q.userId)
          .executeTakeFirst(),
      ])
      return { room: (room?.name as string | undefined) ?? null, author: (author?.username as string | undefined) ?? null }
    }),
})

export type SoftMentionDeps = PipelineDeps & {
  /** The router's model; null: no model is configured, and only the cases that need no call are routed. */
  readonly llm: Llm | null
  readonly model: string
  readonly reads: SoftMentionReads
  /** The tools an agent's skillsets bring, by name (default: the skillsets' names). */
  readonly toolsOf?: (skillsets: readonly string[]) => readonly string[]
  readonly timeoutMs?: number
}

/**
 * The agents of the room that may act on this message: of this org, ones the author may put to work in this room
 * (the agent's access, domain/agents.ts mayUseAgent: a guest never does), within their caps.
 */
async function candidatesFor(deps: SoftMentionDeps, tenantId: string, m: Posted['data'], room: RoomState): Promise<RoomAgent[]> {
  const ids = agentMembersOf(room)
  if (ids.length === 0) return []
  const o = await loadState(deps.store, org, orgStream(tenantId), tenantId)
  const author = o.status === 'none' ? undefined : o.members.get(m.authorId)
  if (!author?.active) return []
  const actor = { userId: m.authorId, role: author.role }
  const loaded = await Promise.all(
    ids.map(async (agentId) => {
      const { state, tenantId: owner } = await loadAgent(deps, agentId)
      if (!state.exists || owner !== tenantId || !mayUseAgent(state, actor, m.roomId)) return null
      return {
        agentId,
        name: state.name,
        username: state.username,
        rolePrompt: state.rolePrompt,
        tools: deps.toolsOf ? deps.toolsOf(state.skillsets) : ['core', ...state.skillsets],
      } satisfies RoomAgent
    }),
  )
  const agents = loaded.filter((a): a is RoomAgent => a !== null)
  if (agents.length === 0) return agents
  // The budget stream is read only when a cap could refuse one of them: most orgs have none.
  const orgCaps = await loadState(deps.store, caps, capsStream(tenantId), tenantId)
  if (Object.keys(orgCaps.caps).length === 0) return agents
  const b = await loadState(deps.store, budget, budgetStream(tenantId, monthOf(m.at)), tenantId)
  return agents.filter((a) =>
    hasBudget(b, orgCaps, tenantId, { agentId: a.agentId, roomId: m.roomId, taskId: m.taskId ?? null }, m.at),
  )
}

/** People who wrote in the message's thread: the root's author when a person (from its stream), the replies' and this one's. */
async function threadHumansOf(deps: SoftMentionDeps, tenantId: string, m: Posted['data']): Promise<number> {
  if (!m.threadRootId) return 1
  const humans = new Set([m.authorId])
  const [root] = await readTenantStream(deps.store, messageStream(m.threadRootId), tenantId)
  if (root?.type === 'message.created') {
    const r = root.data as Posted['data']
    if (r.authorType === 'user') humans.add(r.authorId)
  }
  for (const id of await deps.reads.threadRepliers({ tenantId, userId: m.authorId, threadRootId: m.threadRootId })) humans.add(id)
  return humans.size
}

/** An agent already woken by this message (the event handled again after a crash): the router is not asked twice. */
async function alreadyRouted(deps: SoftMentionDeps, tenantId: string, m: Posted['data'], agents: readonly RoomAgent[]) {
  const key = triggerKey({ type: 'mention', messageId: m.messageId })
  for (const a of agents) {
    const threadId = threadIdFor({
      tenantId,
      agentId: a.agentId,
      roomId: m.roomId,
      taskId: m.taskId ?? null,
      workType: 'conversation',
    })
    const t = await loadState(deps.store, thread, threadStream(threadId), tenantId)
    if (t.exists && t.seen.includes(key)) return true
  }
  return false
}

type Answer = { text: string; toolCalls: LlmToolCall[]; usage: LlmUsage | null }

async function ask(llm: Llm, model: string, messages: LlmMessage[], signal: AbortSignal): Promise<Answer> {
  const answer: Answer = { text: '', toolCalls: [], usage: null }
  for await (const e of llm.stream({ model, messages, tools: [routeTool], maxOutputTokens: 200, signal })) {
    if (e.type === 'text') answer.text += e.delta
    else if (e.type === 'tool_call') answer.toolCalls.push(e.call)
    else if (e.type === 'done') answer.usage = e.usage
  }
  return answer
}

/**
 * The soft mentions processor: `message.created` by a person naming no agent → at most one agent woken in its
 * thread for the room (or the task), with the mention trigger of that message (so a hard mention of the same
 * message wakes nothing twice).
 */
export const softMentionsProcessor = (deps: SoftMentionDeps): Processor<Posted> => ({
  name: SOFT_MENTIONS_PROCESSOR,
  version: 1,
  eventTypes: ['message.created'],
  partitionBy: 'tenant',
  // Deployed onto a live system, it must not route every message in history.
  startAt: 'head',
  async handle(event, ctx) {
    const m = event.data
    const tenantId = event.metadata.tenantId
    if (!tenantId || m.authorType !== 'user') return
    const room = await loadRoom(deps.store, m.roomId, tenantId)
    if (screen({ ...m, room })) return
    const threadHumans = await threadHumansOf(deps, tenantId, m)
    const candidates = threadHumans > 1 ? [] : await candidatesFor(deps, tenantId, m, room)
    const routing = routeWithoutModel({ ...m, room, candidates, threadHumans })
    if (routing.kind === 'none') {
      ctx.logger.debug({ messageId: m.messageId, reason: routing.reason }, 'soft mention: nobody to route to')
      return
    }
    if (routing.kind === 'wake') return wake(deps, event, ctx, routing.agent.agentId)
    if (!deps.llm) {
      ctx.logger.info({ messageId: m.messageId }, 'soft mention: no model configured, nothing routed')
      return
    }
    if (await alreadyRouted(deps, tenantId, m, routing.candidates)) return
    const decision = await route(deps, deps.llm, event, ctx, routing.candidates)
    if (decision?.kind === 'agent') await wake(deps, event, ctx, decision.agentId)
  },
})

async function route(
  deps: SoftMentionDeps,
  llm: Llm,
  event: Handled,
  ctx: ProcessorContext,
  candidates: readonly RoomAgent[],
): Promise<RouteDecision | null> {
  const m = event.data
  const tenantId = event.metadata.tenantId!
  const who = { tenantId, userId: m.authorId }
  const [recent, names] = await Promise.all([
    deps.reads.recent({
      ...who,
      roomId: m.roomId,
      taskId: m.taskId ?? null,
      threadRootId: m.threadRootId,
      messageId: m.messageId,
    }),
    deps.reads.names({ ...who, roomId: m.roomId }),
  ])
  const where = `${m.taskId ? 'the conversation of a task in ' : ''}${m.threadRootId ? 'a thread of ' : ''}#${names.room ?? 'a room'}`
  const messages = routerPrompt({
    candidates,
    recent,
    message: { author: names.author ?? 'someone', authorType: 'user', text: m.text },
    where,
  })
  const timeout = AbortSignal.timeout(deps.timeoutMs ?? ROUTER_TIMEOUT_MS)
  let answer: Answer
  try {
    answer = await ask(llm, deps.model, messages, AbortSignal.any([timeout, ctx.signal]))
  } catch (e) {
    // Draining: the event is handled again later, by this process or another.
    if (ctx.signal.aborted) throw e
    if (!(e instanceof LlmError) && !timeout.aborted) throw e
    ctx.logger.warn(
      {
        messageId: m.messageId,
        kind: e instanceof LlmError ? e.kind : 'timeout',
        status: e instanceof LlmError ? e.status : undefined,
      },
      timeout.aborted ? 'soft mention: the router timed out, nothing routed' : 'soft mention: the router failed, nothing routed',
    )
    return null
  }
  await meter(deps, event, ctx, answer.usage)
  const decision = parseRoute(answer, candidates)
  if (decision.kind === 'invalid')
    ctx.logger.warn(
      { messageId: m.messageId, detail: decision.detail },
      'soft mention: the router’s answer is no pick, nothing routed',
    )
  else
    ctx.logger.info(
      { messageId: m.messageId, agentId: decision.kind === 'agent' ? decision.agentId : null },
      'soft mention routed',
    )
  return decision
}

type Handled = Parameters<Processor<Posted>['handle']>[0]

/** Wakes the agent the message was routed to, in its thread for the room (or the message's task). */
async function wake(deps: SoftMentionDeps, event: Handled, ctx: ProcessorContext, agentId: string) {
  const m = event.data
  await wakeAgent(deps, commandContextFor(SOFT_MENTIONS_PROCESSOR, event, ctx), {
    agentId,
    roomId: m.roomId,
    taskId: m.taskId ?? null,
    workType: 'conversation',
    input: { trigger: { type: 'mention', messageId: m.messageId }, text: m.text },
  })
}

/**
 * Records what the router's call used against the org and the room (the router works for no agent yet), under an id
 * and a time from the event so that a repeat counts once. A failure to record is logged, not retried: a retry would
 * call the model again and spend more than the record would have said.
 */
async function meter(deps: SoftMentionDeps, event: Handled, ctx: ProcessorContext, usage: LlmUsage | null) {
  if (!usage) return
  const m = event.data
  try {
    await recordUsage(deps, commandContextFor(SOFT_MENTIONS_PROCESSOR, event, ctx), {
      orgId: event.metadata.tenantId!,
      recordId: ctx.idFor('router-usage'),
      reservationId: null,
      agentId: null,
      roomId: m.roomId,
      taskId: m.taskId ?? null,
      usage: { kind: 'llm', model: deps.model, ...usage },
      at: m.at,
    })
  } catch (e) {
    ctx.logger.warn({ err: e, messageId: m.messageId }, 'soft mention: the router’s usage was not recorded')
  }
}
