import { createRoute, z } from '@hono/zod-openapi'
import { streamName } from '../adapters/event-store.ts'
import { inTenant } from '../adapters/tenant-transaction.ts'
import type { MemberJoined } from '../domain/orgs.ts'
import { consistent } from '../http/consistent-after.ts'
import type { AppDeps } from '../http/context.ts'
import { principalOf } from '../http/principal.ts'
import { router } from '../http/router.ts'
import { consistentAfterQuery, json, Uuid } from '../http/schemas.ts'
import { bearerSecurity } from '../http/tenant-route.ts'
import { decodeCursor, encodeCursor, pageQuery, pageSchema } from './pagination.ts'

const User = z
  .object({
    id: Uuid,
    type: z.enum(['human', 'agent']),
    username: z.string().nullable(),
    displayName: z.string(),
    role: z.enum(['owner', 'admin', 'member', 'guest']),
    status: z.enum(['active', 'deactivated']),
    createdAt: z.string(),
  })
  .openapi('User')

type UserRow = {
  id: string
  type: 'human' | 'agent'
  username: string | null
  display_name: string
  role: 'owner'
  status: 'active'
  created_at: Date
  email: string | null
}
const toUser = (u: UserRow) => ({
  id: u.id,
  type: u.type,
  username: u.username,
  displayName: u.display_name,
  role: u.role,
  status: u.status,
  createdAt: new Date(u.created_at).toISOString(),
})

const routes = {
  me: createRoute({
    method: 'get',
    path: '/api/me',
    tags: ['identity'],
    summary: 'The caller as a user of this org',
    security: bearerSecurity,
    request: { query: z.object({ ...consistentAfterQuery }) },
    responses: { 200: json('me', User.extend({ orgId: Uuid, email: z.string().nullable(), activated: z.boolean() })) },
  }),
  list: createRoute({
    method: 'get',
    path: '/api/users',
    tags: ['identity'],
    summary: 'The org’s people and agents',
    security: bearerSecurity,
    request: {
      query: z.object({
        ...pageQuery,
        ...consistentAfterQuery,
        status: z.enum(['active', 'deactivated']).optional(),
        type: z.enum(['human', 'agent']).optional(),
      }),
    },
    responses: { 200: json('users by creation', pageSchema(User)) },
  }),
}

/** What the org stream recorded when the user joined: the read model's source for the same fields. */
async function joinedEvent(deps: AppDeps, orgId: string, userId: string): Promise<MemberJoined> {
  for (const e of await deps.store.readStream(streamName('org', orgId))) {
    if (e.type === 'user.joined' && (e.data as MemberJoined).userId === userId) return e.data as MemberJoined
  }
  // Authentication found the user in the read model or in this stream; a user in neither is not ours to invent.
  throw new Error(`user ${userId} is authenticated but the org stream has no user.joined for them`)
}

export function usersQueries(deps: AppDeps) {
  const app = router()
  app.openapi(routes.me, async (c) => {
    const me = principalOf(c)
    await consistent(c, deps, ['users'])
    const u = (await inTenant(deps.db, me, (trx) =>
      trx
        .selectFrom('tenant.users')
        .selectAll()
        .where('tenant_id', '=', me.tenantId)
        .where('id', '=', me.userId)
        .executeTakeFirst(),
    )) as UserRow | undefined
    if (!u) {
      // Authenticated from the org stream: the read model has not caught up with this user yet, so the stream
      // says who they are. Role and username are the principal's, which authentication also took from there.
      const joined = await joinedEvent(deps, me.tenantId, me.userId)
      return c.json(
        {
          id: me.userId,
          type: me.type,
          username: me.username,
          displayName: joined.displayName,
          role: me.role,
          status: 'active' as const,
          createdAt: new Date(joined.at).toISOString(),
          orgId: me.tenantId,
          email: joined.email,
          activated: me.username !== null,
        },
        200,
      )
    }
    // The principal's username is the org stream's when the read model trails a fresh activation.
    const username = u.username ?? me.username
    return c.json({ ...toUser(u), username, orgId: me.tenantId, email: u.email, activated: username !== null }, 200)
  })
  app.openapi(routes.list, async (c) => {
    const me = principalOf(c)
    const { limit, cursor, status, type } = c.req.valid('query')
    await consistent(c, deps, ['users'])
    const after = decodeCursor(cursor, 2)
    const rows = (await inTenant(deps.db, me, (trx) => {
      let q = trx
        .selectFrom('tenant.users')
        .selectAll()
        .where('tenant_id', '=', me.tenantId)
        .orderBy('created_at')
        .orderBy('id')
        .limit(limit + 1)
      if (status) q = q.where('status', '=', status)
      if (type) q = q.where('type', '=', type)
      if (after)
        q = q.where(
          (eb) => eb.refTuple('created_at', 'id'),
          '>',
          (eb) => eb.tuple(String(after[0]), String(after[1])),
        )
      return q.execute()
    })) as UserRow[]
    const page = rows.slice(0, limit)
    const last = page.at(-1)
    return c.json(
      {
        items: page.map(toUser),
        nextCursor: rows.length > limit && last ? encodeCursor([new Date(last.created_at).toISOString(), last.id]) : null,
      },
      200,
    )
  })
  return app
}
