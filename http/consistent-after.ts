import { getConnInfo } from '@hono/node-server/conninfo'
import type { Context } from 'hono'
import type { AppDeps, AppEnv } from './context.ts'
import { badRequest } from './problem.ts'

const POSITION = /^\d{1,18}$/

/** Who a wait counts against: the user the credential names, else the signed-in account, else the client address. */
const waiterOf = (c: Context<AppEnv>): string => {
  const user = c.get('principal') ?? c.get('claimed')
  if (user) return `user:${user.tenantId}:${user.userId}`
  const caller = c.get('caller')
  if (caller) return `account:${caller.credential.accountId}`
  return `address:${getConnInfo(c).remote.address ?? 'unknown'}`
}

/**
 * Honours `consistentAfter=<position>` (or the Consistent-After header) for the read models a route reads:
 * 400 for a position no event holds, 429 past the caller's concurrent waits (ConsistencyWaiter).
 */
export async function consistent(c: Context<AppEnv>, deps: AppDeps, projectors: readonly string[]): Promise<void> {
  const raw = c.req.query('consistentAfter') ?? c.req.header('consistent-after')
  if (raw === undefined || raw === '') return
  if (!POSITION.test(raw)) {
    throw badRequest('consistentAfter is a position: a non-negative integer', [
      { path: 'consistentAfter', message: 'expected a non-negative integer' },
    ])
  }
  await deps.waiter.waitFor(projectors, BigInt(raw), waiterOf(c))
}
