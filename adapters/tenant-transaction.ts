import { sql, type Transaction } from 'kysely'
import type { AnyDb } from './postgres.ts'
import { ROLES } from './postgres-roles.ts'

// biome-ignore lint/suspicious/noExplicitAny: read models are described per query
export type TenantTransaction = Transaction<any>

/**
 * Runs queries as the read API's role inside one transaction whose first statement binds it to the
 * caller's tenant and user; row-level security then hides every other tenant's rows. Never at session
 * level (a pooled connection would carry it to the next caller), never by string interpolation.
 */
export function inTenant<T>(
  db: AnyDb,
  who: { readonly tenantId: string; readonly userId: string },
  fn: (trx: TenantTransaction) => Promise<T>,
): Promise<T> {
  return db.transaction().execute(async (trx) => {
    await sql`select set_config('role', ${ROLES.reader}, true), set_config('app.tenant_id', ${who.tenantId}, true),
                     set_config('app.user_id', ${who.userId}, true)`.execute(trx)
    return fn(trx)
  })
}
