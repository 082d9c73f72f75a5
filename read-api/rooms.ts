import { createRoute, z } from '@hono/zod-openapi'
import { type ExpressionBuilder, sql } from 'kysely'
import { inTenant } from '../adapters/tenant-transaction.ts'
import { consistent } from '../http/consistent-after.ts'
import type { AppDeps } from '../http/context.ts'
import { type Principal, principalOf } from '../http/principal.ts'
import { notFound } from '../http/problem.ts'
import { router } from '../http/router.ts'
import { consistentAfterQuery, json, Uuid } from '../http/schemas.ts'
import { bearerSecurity } from '../http/tenant-route.ts'
import { decodeCursor, encodeCursor, pageQuery, pageSchema } from './pagination.ts'

export const ROOM_PROJECTIONS = ['rooms', 'messages'] as const

// biome-ignore lint/suspicious/noExplicitAny: conditions over aliased read-model tables
type Eb = ExpressionBuilder<any, any>

/** Rooms a principal may read: members always; public rooms (not DMs) for anyone but guests. */
export const readableRoom = (me: Principal) => (eb: Eb) =>
  eb.or([
    eb.exists(
      eb
        .selectFrom('tenant.room_members as rm')
        .select(sql.lit(1).as('one'))
        .whereRef('rm.tenant_id', '=', 'r.tenant_id')
        .whereRef('rm.room_id', '=', 'r.id')
        .where('rm.member_id', '=', me.userId),
    ),
    me.role === 'guest' ? sql<boolean>`false` : eb.and([eb('r.visibility', '=', 'public'), eb('r.kind', '=', 'room')]),
  ])

const Room = z
  .object({
    id: Uuid,
    name: z.string(),
    description: z.string(),
    spaceId: Uuid.nullable(),
    visibility: z.enum(['public', 'private']),
    kind: z.enum(['room', 'dm']),
    archived: z.boolean(),
    isMember: z.boolean(),
    unreadCount: z.number().int(),
    mentionCount: z.number().int(),
    createdAt: z.string(),
  })
  .openapi('Room')

const RoomDetail = Room.extend({
  members: z.array(z.object({ memberId: Uuid, memberType: z.enum(['user', 'agent']), joinedAt: z.string() })),
  draft: z.string().nullable(),
  lastReadMessageId: Uuid.nullable(),
}).openapi('RoomDetail')

const listRooms = createRoute({
  method: 'get',
  path: '/api/rooms',
  tags: ['rooms'],
  summary: 'Rooms the caller can read, with unread and mention counts',
  security: bearerSecurity,
  request: {
    query: z.object({
      ...pageQuery,
      ...consistentAfterQuery,
      spaceId: Uuid.optional(),
      member: z.enum(['true', 'false']).optional(),
    }),
  },
  responses: { 200: json('rooms by name', pageSchema(Room)) },
})

const getRoom = createRoute({
  method: 'get',
  path: '/api/rooms/{id}',
  tags: ['rooms'],
  summary: 'One room with its members, the caller’s draft and read mark',
  security: bearerSecurity,
  request: { params: z.object({ id: Uuid }), query: z.object({ ...consistentAfterQuery }) },
  responses: { 200: json('the room', RoomDetail) },
})

type RoomRow = {
  id: string
  name: string
  description: string
  space_id: string | null
  visibility: 'public' | 'private'
  kind: 'room' | 'dm'
  archived: boolean
  created_at: Date
  is_member: boolean
  unread: number
  mentions: number
}

const toRoom = (r: RoomRow) => ({
  id: r.id,
  name: r.name,
  description: r.description,
  spaceId: r.space_id,
  visibility: r.visibility,
  kind: r.kind,
  archived: r.archived,
  isMember: r.is_member,
  unreadCount: r.unread,
  mentionCount: r.mentions,
  createdAt: new Date(r.created_at).toISOString(),
})

// biome-ignore lint/suspicious/noExplicitAny: the rooms query is shared by the list and the detail
function roomsQuery(trx: any, me: Principal) {
  const unread = sql<number>`(select count(*)::int from tenant.messages m
      where m.tenant_id = r.tenant_id and m.room_id = r.id and m.deleted_at is null and m.author_id <> ${me.userId}
        and m.seq > coalesce((select rr.seq from tenant.room_reads rr
              where rr.tenant_id = r.tenant_id and rr.room_id = r.id and rr.user_id = ${me.userId}), 0))`
  const mentions = sql<number>`(select count(*)::int from tenant.messages m
      where m.tenant_id = r.tenant_id and m.room_id = r.id and m.deleted_at is null
        and m.mentions @> ${JSON.stringify([{ userId: me.userId }])}::jsonb
        and m.seq > coalesce((select rr.seq from tenant.room_reads rr
              where rr.tenant_id = r.tenant_id and rr.room_id = r.id and rr.user_id = ${me.userId}), 0))`
  const member = sql<boolean>`exists (select 1 from tenant.room_members rm
      where rm.tenant_id = r.tenant_id and rm.room_id = r.id and rm.member_id = ${me.userId})`
  return trx
    .selectFrom('tenant.rooms as r')
    .select([
      'r.id',
      'r.name',
      'r.description',
      'r.space_id',
      'r.visibility',
      'r.kind',
      'r.archived',
      'r.created_at',
      member.as('is_member'),
      sql<number>`case when ${member} then ${unread} else 0 end`.as('unread'),
      sql<number>`case when ${member} then ${mentions} else 0 end`.as('mentions'),
    ])
    .where('r.tenant_id', '=', me.tenantId)
    .where(readableRoom(me))
}

export function roomsQueries(deps: AppDeps) {
  const app = router()

  app.openapi(listRooms, async (c) => {
    const me = principalOf(c)
    const { limit, cursor, spaceId, member } = c.req.valid('query')
    await consistent(c, deps, ROOM_PROJECTIONS)
    const after = decodeCursor(cursor, 2)
    const rows: RoomRow[] = await inTenant(deps.db, me, (trx) => {
      let q = roomsQuery(trx, me)
        .orderBy('r.name')
        .orderBy('r.id')
        .limit(limit + 1)
      if (spaceId) q = q.where('r.space_id', '=', spaceId)
      if (member === 'true')
        q = q.where(
          sql<boolean>`exists (select 1 from tenant.room_members rm where rm.tenant_id = r.tenant_id and rm.room_id = r.id and rm.member_id = ${me.userId})`,
        )
      if (after)
        q = q.where(
          (eb: Eb) => eb.refTuple('r.name', 'r.id'),
          '>',
          (eb: Eb) => eb.tuple(String(after[0]), String(after[1])),
        )
      return q.execute()
    })
    const page = rows.slice(0, limit)
    const last = page.at(-1)
    return c.json(
      { items: page.map(toRoom), nextCursor: rows.length > limit && last ? encodeCursor([last.name, last.id]) : null },
      200,
    )
  })

  app.openapi(getRoom, async (c) => {
    const me = principalOf(c)
    const { id } = c.req.valid('param')
    await consistent(c, deps, ROOM_PROJECTIONS)
    const detail = await inTenant(deps.db, me, async (trx) => {
      const room: RoomRow | undefined = await roomsQuery(trx, me).where('r.id', '=', id).executeTakeFirst()
      if (!room) return null
      const [members, draft, read] = await Promise.all([
        trx
          .selectFrom('tenant.room_members')
          .select(['member_id', 'member_type', 'joined_at'])
          .where('tenant_id', '=', me.tenantId)
          .where('room_id', '=', id)
          .orderBy('joined_at')
          .execute(),
        trx
          .selectFrom('tenant.drafts')
          .select('text')
          .where('tenant_id', '=', me.tenantId)
          .where('room_id', '=', id)
          .where('user_id', '=', me.userId)
          .executeTakeFirst(),
        trx
          .selectFrom('tenant.room_reads')
          .select('message_id')
          .where('tenant_id', '=', me.tenantId)
          .where('room_id', '=', id)
          .where('user_id', '=', me.userId)
          .executeTakeFirst(),
      ])
      return { room, members, draft, read }
    })
    if (!detail) throw notFound('no such room')
    return c.json(
      {
        ...toRoom(detail.room),
        members: detail.members.map((m: { member_id: string; member_type: 'user' | 'agent'; joined_at: Date }) => ({
          memberId: m.member_id,
          memberType: m.member_type,
          joinedAt: new Date(m.joined_at).toISOString(),
        })),
        draft: (detail.draft?.text as string | undefined) ?? null,
        lastReadMessageId: (detail.read?.message_id as string | undefined) ?? null,
      },
      200,
    )
  })
  return app
}
