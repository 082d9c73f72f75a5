import { createRoute, z } from '@hono/zod-openapi'
import { sql } from 'kysely'
import { inTenant, type TenantTransaction } from '../adapters/tenant-transaction.ts'
import { consistent } from '../http/consistent-after.ts'
import type { AppDeps } from '../http/context.ts'
import { principalOf } from '../http/principal.ts'
import { badRequest, notFound } from '../http/problem.ts'
import { router } from '../http/router.ts'
import { consistentAfterQuery, json, Uuid } from '../http/schemas.ts'
import { bearerSecurity } from '../http/tenant-route.ts'
import { decodeCursor, encodeCursor, pageQuery } from './pagination.ts'
import { readableRoom } from './rooms.ts'

const Message = z
  .object({
    id: Uuid,
    roomId: Uuid,
    seq: z.number().int(),
    authorId: Uuid,
    authorType: z.enum(['user', 'agent']),
    text: z.string(),
    threadRootId: Uuid.nullable(),
    taskId: Uuid.nullable().openapi({ description: 'the task whose conversation it is in; null on the room’s timeline' }),
    replyCount: z.number().int(),
    mentions: z.array(z.object({ userId: Uuid, username: z.string() })),
    reactions: z.record(z.string(), z.array(Uuid)),
    createdAt: z.string(),
    editedAt: z.string().nullable(),
    position: z.number().int(),
  })
  .openapi('Message')

type MessageRow = {
  id: string
  room_id: string
  seq: string
  author_id: string
  author_type: 'user' | 'agent'
  text: string
  thread_root_id: string | null
  task_id: string | null
  reply_count: number
  mentions: { userId: string; username: string }[]
  reactions: Record<string, string[]>
  created_at: Date
  edited_at: Date | null
  position: string
}

const toMessage = (m: MessageRow) => ({
  id: m.id,
  roomId: m.room_id,
  seq: Number(m.seq),
  authorId: m.author_id,
  authorType: m.author_type,
  text: m.text,
  threadRootId: m.thread_root_id,
  taskId: m.task_id,
  replyCount: m.reply_count,
  mentions: m.mentions,
  reactions: m.reactions,
  createdAt: new Date(m.created_at).toISOString(),
  editedAt: m.edited_at ? new Date(m.edited_at).toISOString() : null,
  position: Number(m.position),
})

const timeline = createRoute({
  method: 'get',
  path: '/api/rooms/{id}/messages',
  tags: ['messages'],
  summary: 'A room’s timeline, oldest first: the latest page, or before/after/around one message',
  description:
    'Give at most one of before, after, around (message ids) and cursor. `threadRootId` narrows to one thread. Each page is oldest first; `nextCursor` continues in its direction — older for the latest page and `before`, newer for `after` and `around` — and is null on the last page that way. hasBefore/hasAfter say whether messages lie on either side.',
  security: bearerSecurity,
  request: {
    params: z.object({ id: Uuid }),
    query: z.object({
      before: Uuid.optional(),
      after: Uuid.optional(),
      around: Uuid.optional(),
      threadRootId: Uuid.optional(),
      ...pageQuery,
      ...consistentAfterQuery,
    }),
  },
  responses: {
    200: json(
      'messages',
      z.object({ items: z.array(Message), hasBefore: z.boolean(), hasAfter: z.boolean(), nextCursor: z.string().nullable() }),
    ),
  },
})

const taskTimeline = createRoute({
  method: 'get',
  path: '/api/tasks/{id}/messages',
  tags: ['messages', 'tasks'],
  summary: 'A task’s conversation, oldest first: the latest page, or before/after/around one of its messages',
  description:
    'The task’s messages (in its room, with `taskId`), paged as a room’s timeline is: at most one of before, after, ' +
    'around and cursor; `threadRootId` narrows to one of its threads. Readable by whoever may read the task’s room.',
  security: bearerSecurity,
  request: {
    params: z.object({ id: Uuid }),
    query: z.object({
      before: Uuid.optional(),
      after: Uuid.optional(),
      around: Uuid.optional(),
      threadRootId: Uuid.optional(),
      ...pageQuery,
      ...consistentAfterQuery,
    }),
  },
  responses: {
    200: json(
      'messages',
      z.object({ items: z.array(Message), hasBefore: z.boolean(), hasAfter: z.boolean(), nextCursor: z.string().nullable() }),
    ),
  },
})

const getMessage = createRoute({
  method: 'get',
  path: '/api/messages/{id}',
  tags: ['messages'],
  summary: 'One message with its edit history',
  security: bearerSecurity,
  request: { params: z.object({ id: Uuid }), query: z.object({ ...consistentAfterQuery }) },
  responses: {
    200: json(
      'the message',
      Message.extend({ edits: z.array(z.object({ version: z.number(), text: z.string(), replacedAt: z.string() })) }),
    ),
  },
})

const search = createRoute({
  method: 'get',
  path: '/api/search/messages',
  tags: ['messages'],
  summary: 'Full-text search over the messages the caller may read, newest first',
  description:
    'Newest first by when each message was stored; pass `nextCursor` back as `cursor` for the next page (null on the last).',
  security: bearerSecurity,
  request: {
    query: z.object({
      q: z.string().min(1).max(500),
      roomId: Uuid.optional(),
      limit: z.coerce.number().int().min(1).max(100).default(20),
      cursor: pageQuery.cursor,
      ...consistentAfterQuery,
    }),
  },
  responses: { 200: json('matches', z.object({ items: z.array(Message), nextCursor: z.string().nullable() })) },
})

const messageColumns = [
  'm.id',
  'm.room_id',
  'm.seq',
  'm.author_id',
  'm.author_type',
  'm.text',
  'm.thread_root_id',
  'm.task_id',
  'm.reply_count',
  'm.mentions',
  'm.reactions',
  'm.created_at',
  'm.edited_at',
  'm.position',
] as const

const invalidCursor = (detail: string) => badRequest(detail, [{ path: 'cursor', message: 'invalid cursor' }])

/**
 * One conversation of a room: its own timeline (or one thread of it), or a task's (or one thread of that). Seqs
 * count within the room, so each view reads its own messages in the room's order.
 */
type TimelineView = { readonly roomId: string; readonly threadRootId: string | undefined; readonly taskId: string | null }

/** The view a cursor names: the thread, else the task (`task:<id>`), else '' for the room's timeline (as cursors always had). */
const viewKey = (v: TimelineView): string => v.threadRootId ?? (v.taskId ? `task:${v.taskId}` : '')

/**
 * A timeline cursor: the direction and the seq it continues from. Seqs count within one room and view, so the
 * cursor names that view and is refused elsewhere rather than applied to the wrong messages.
 */
function decodeTimelineCursor(cursor: string, view: TimelineView): { direction: 'before' | 'after'; seq: number } {
  const [direction, seq, room, thread] = decodeCursor(cursor, 4)!
  if ((direction !== 'before' && direction !== 'after') || !Number.isSafeInteger(seq)) {
    throw invalidCursor('cursor is not one this server gave out')
  }
  if (room !== view.roomId || thread !== viewKey(view)) {
    throw invalidCursor('this cursor continues another timeline (room, task or threadRootId differ)')
  }
  return { direction, seq: seq as number }
}

type TimelineQuery = {
  readonly before?: string | undefined
  readonly after?: string | undefined
  readonly around?: string | undefined
  readonly cursor?: string | undefined
  readonly limit: number
}

type TimelinePage = { items: MessageRow[]; hasBefore: boolean; hasAfter: boolean; next: 'before' | 'after' | null }

/** A page of a view whose room the caller may read (checked by the caller); 'no-anchor' for an anchor not in the view. */
async function timelinePage(
  trx: TenantTransaction,
  tenantId: string,
  view: TimelineView,
  q: TimelineQuery,
  resumed: { direction: 'before' | 'after'; seq: number } | null,
): Promise<TimelinePage | 'no-anchor'> {
  const { roomId, threadRootId, taskId } = view
  const anchorId = q.before ?? q.after ?? q.around
  let anchor: number | null = resumed?.seq ?? null
  if (anchorId) {
    let a = trx
      .selectFrom('tenant.messages')
      .select('seq')
      .where('tenant_id', '=', tenantId)
      .where('room_id', '=', roomId)
      .where('id', '=', anchorId)
    if (taskId) a = a.where('task_id', '=', taskId)
    const found = await a.executeTakeFirst()
    if (!found) return 'no-anchor'
    anchor = Number(found.seq)
  }
  const base = () => {
    let b = trx
      .selectFrom('tenant.messages as m')
      .select([...messageColumns])
      .where('m.tenant_id', '=', tenantId)
      .where('m.room_id', '=', roomId)
      .where('m.deleted_at', 'is', null)
    b = threadRootId
      ? b.where((eb) => eb.or([eb('m.thread_root_id', '=', threadRootId), eb('m.id', '=', threadRootId)]))
      : b.where('m.thread_root_id', 'is', null)
    // A task's conversation is its own: the room's timeline leaves it out, as it leaves out thread replies.
    return taskId ? b.where('m.task_id', '=', taskId) : b.where('m.task_id', 'is', null)
  }
  const older = (from: number | null, n: number, inclusive = false) =>
    (from === null ? base() : base().where('m.seq', inclusive ? '<=' : '<', from))
      .orderBy('m.seq', 'desc')
      .limit(n + 1)
      .execute() as Promise<MessageRow[]>
  const newer = (from: number, n: number) =>
    base()
      .where('m.seq', '>', from)
      .orderBy('m.seq', 'asc')
      .limit(n + 1)
      .execute() as Promise<MessageRow[]>
  if (q.after !== undefined || resumed?.direction === 'after') {
    const [rows, behind] = await Promise.all([newer(anchor!, q.limit), older(anchor!, 0, true)])
    const items = rows.slice(0, q.limit)
    const hasAfter = rows.length > q.limit
    return { items, hasBefore: behind.length > 0, hasAfter, next: hasAfter ? 'after' : null }
  }
  if (q.around !== undefined) {
    const half = Math.floor(q.limit / 2)
    const [before, after] = await Promise.all([older(anchor!, q.limit - half, true), newer(anchor!, half)])
    const hasAfter = after.length > half
    return {
      items: [...before.slice(0, q.limit - half).reverse(), ...after.slice(0, half)],
      hasBefore: before.length > q.limit - half,
      hasAfter,
      next: hasAfter ? 'after' : null,
    }
  }
  const [rows, ahead] = await Promise.all([older(anchor, q.limit), anchor === null ? [] : newer(anchor - 1, 0)])
  const hasBefore = rows.length > q.limit
  return {
    items: rows.slice(0, q.limit).reverse(),
    hasBefore,
    hasAfter: ahead.length > 0,
    next: hasBefore ? 'before' : null,
  }
}

/** The answer of a timeline route: the page, and the cursor continuing it in its direction. */
const timelineAnswer = (view: TimelineView, page: TimelinePage) => {
  const edge = page.next === 'before' ? page.items[0] : page.items.at(-1)
  const nextCursor = page.next && edge ? encodeCursor([page.next, Number(edge.seq), view.roomId, viewKey(view)]) : null
  return { items: page.items.map(toMessage), hasBefore: page.hasBefore, hasAfter: page.hasAfter, nextCursor }
}

const oneAnchor = (q: TimelineQuery) => {
  if ([q.before, q.after, q.around, q.cursor].filter(Boolean).length > 1) {
    throw badRequest('give at most one of before, after, around and cursor')
  }
}

/** A search cursor: the position of the last message shown (positions are global, so any query may continue below one). */
function decodeSearchCursor(cursor: string | undefined): number | null {
  const key = decodeCursor(cursor, 1)
  if (key === null) return null
  const [position] = key
  if (!Number.isSafeInteger(position) || (position as number) < 0) throw invalidCursor('cursor is not one this server gave out')
  return position as number
}

export function messagesQueries(deps: AppDeps) {
  const app = router()

  app.openapi(timeline, async (c) => {
    const me = principalOf(c)
    const { id: roomId } = c.req.valid('param')
    const q = c.req.valid('query')
    oneAnchor(q)
    const view: TimelineView = { roomId, threadRootId: q.threadRootId, taskId: null }
    const resumed = q.cursor === undefined ? null : decodeTimelineCursor(q.cursor, view)
    await consistent(c, deps, ['rooms', 'messages'])
    const result = await inTenant(deps.db, me, async (trx) => {
      const room = await trx
        .selectFrom('tenant.rooms as r')
        .select('r.id')
        .where('r.tenant_id', '=', me.tenantId)
        .where('r.id', '=', roomId)
        .where(readableRoom(me))
        .executeTakeFirst()
      if (!room) return null
      return timelinePage(trx, me.tenantId, view, q, resumed)
    })
    if (result === null) throw notFound('no such room')
    if (result === 'no-anchor') throw notFound('no such message in this room')
    return c.json(timelineAnswer(view, result), 200)
  })

  app.openapi(taskTimeline, async (c) => {
    const me = principalOf(c)
    const { id: taskId } = c.req.valid('param')
    const q = c.req.valid('query')
    oneAnchor(q)
    await consistent(c, deps, ['tasks', 'rooms', 'messages'])
    const result = await inTenant(deps.db, me, async (trx) => {
      // The conversation is the room's: whoever may read the room reads it (as realtime delivers it).
      const found = await trx
        .selectFrom('tenant.tasks as t')
        .innerJoin('tenant.rooms as r', (j) => j.onRef('r.tenant_id', '=', 't.tenant_id').onRef('r.id', '=', 't.room_id'))
        .select('t.room_id')
        .where('t.tenant_id', '=', me.tenantId)
        .where('t.id', '=', taskId)
        .where(readableRoom(me))
        .executeTakeFirst()
      if (!found) return null
      const view: TimelineView = { roomId: found.room_id, threadRootId: q.threadRootId, taskId }
      const resumed = q.cursor === undefined ? null : decodeTimelineCursor(q.cursor, view)
      const page = await timelinePage(trx, me.tenantId, view, q, resumed)
      return page === 'no-anchor' ? page : { view, page }
    })
    if (result === null) throw notFound('no such task')
    if (result === 'no-anchor') throw notFound('no such message in this task')
    return c.json(timelineAnswer(result.view, result.page), 200)
  })

  app.openapi(getMessage, async (c) => {
    const me = principalOf(c)
    const { id } = c.req.valid('param')
    await consistent(c, deps, ['rooms', 'messages'])
    const found = await inTenant(deps.db, me, async (trx: TenantTransaction) => {
      const m: MessageRow | undefined = await trx
        .selectFrom('tenant.messages as m')
        .innerJoin('tenant.rooms as r', (j) => j.onRef('r.tenant_id', '=', 'm.tenant_id').onRef('r.id', '=', 'm.room_id'))
        .select([...messageColumns])
        .where('m.tenant_id', '=', me.tenantId)
        .where('m.id', '=', id)
        .where('m.deleted_at', 'is', null)
        .where(readableRoom(me))
        .executeTakeFirst()
      if (!m) return null
      const edits = await trx
        .selectFrom('tenant.message_edits')
        .select(['version', 'text', 'replaced_at'])
        .where('tenant_id', '=', me.tenantId)
        .where('message_id', '=', id)
        .orderBy('version')
        .execute()
      return { m, edits }
    })
    if (!found) throw notFound('no such message')
    return c.json(
      {
        ...toMessage(found.m),
        edits: found.edits.map((e: { version: number; text: string; replaced_at: Date }) => ({
          version: e.version,
          text: e.text,
          replacedAt: new Date(e.replaced_at).toISOString(),
        })),
      },
      200,
    )
  })

  app.openapi(search, async (c) => {
    const me = principalOf(c)
    const { q, roomId, limit, cursor } = c.req.valid('query')
    const below = decodeSearchCursor(cursor)
    await consistent(c, deps, ['rooms', 'messages'])
    const rows: MessageRow[] = await inTenant(deps.db, me, (trx) => {
      let query = trx
        .selectFrom('tenant.messages as m')
        .innerJoin('tenant.rooms as r', (j) => j.onRef('r.tenant_id', '=', 'm.tenant_id').onRef('r.id', '=', 'm.room_id'))
        .select([...messageColumns])
        .where('m.tenant_id', '=', me.tenantId)
        .where('m.deleted_at', 'is', null)
        .where(sql<boolean>`m.search @@ websearch_to_tsquery('simple', ${q})`)
        .where(readableRoom(me))
        .orderBy('m.position', 'desc')
        .limit(limit + 1)
      if (roomId) query = query.where('m.room_id', '=', roomId)
      if (below !== null) query = query.where('m.position', '<', String(below))
      return query.execute()
    })
    const page = rows.slice(0, limit)
    const last = page.at(-1)
    return c.json(
      { items: page.map(toMessage), nextCursor: rows.length > limit && last ? encodeCursor([Number(last.position)]) : null },
      200,
    )
  })

  return app
}
