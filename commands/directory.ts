import type { AnyDb } from '../adapters/postgres.ts'
import { inTenant } from '../adapters/tenant-transaction.ts'
import { type Mention, parseMentions } from '../domain/messages.ts'
import type { Principal } from '../http/principal.ts'

/**
 * Look-ups that turn what a client names (a username, a user id) into who that is. They shape a
 * command's input; they never stand in for an invariant, which deciders keep over streams.
 */
export type DirectoryUser = { id: string; username: string | null; type: 'human' | 'agent'; status: string }

export async function findUser(db: AnyDb, me: Principal, userId: string): Promise<DirectoryUser | null> {
  const row = await inTenant(db, me, (trx) =>
    trx
      .selectFrom('tenant.users')
      .select(['id', 'username', 'type', 'status'])
      .where('tenant_id', '=', me.tenantId)
      .where('id', '=', userId)
      .executeTakeFirst(),
  )
  return (row as DirectoryUser | undefined) ?? null
}

/** The users an `@username` in the text names; unknown names are plain text. */
export async function resolveMentions(db: AnyDb, me: Principal, text: string): Promise<Mention[]> {
  const names = parseMentions(text)
  if (names.length === 0) return []
  const rows = await inTenant(db, me, (trx) =>
    trx
      .selectFrom('tenant.users')
      .select(['id', 'username'])
      .where('tenant_id', '=', me.tenantId)
      .where('username', 'in', names)
      .execute(),
  )
  const byName = new Map(rows.map((r) => [r.username as string, r.id as string]))
  return names.flatMap((n) => (byName.has(n) ? [{ userId: byName.get(n)!, username: n }] : []))
}
