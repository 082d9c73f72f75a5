import { streamName } from '../adapters/event-store.ts'
import type { AnyDb } from '../adapters/postgres.ts'
import { DomainError } from '../domain/decider.ts'
import { erasure } from '../domain/erasure.ts'
import { loadOrg } from '../http/accounts.ts'
import { deleteUserDrafts } from './drafts.ts'
import { type CommandContext, handleCommand, type PipelineDeps } from './pipeline.ts'

export const erasureStream = (userId: string) => streamName('erasure', userId)

/**
 * Forgets a person: records user.erased on their erasure stream, in their org, and the event store destroys
 * their data key as it appends it (adapters/personal-data-store.ts); their drafts, kept in a table rather than
 * as events, are deleted. Asking again changes nothing new and answers the same. Agents are not people: only
 * users with a sign-in account are found.
 */
export async function eraseUser(
  deps: PipelineDeps & { readonly db: AnyDb; readonly controlDb: AnyDb },
  ctx: CommandContext,
  userId: string,
) {
  // The registry of memberships only finds the org; the org's own stream decides whether the user is there.
  const found = await deps.controlDb
    .selectFrom('control.memberships')
    .select('org_id')
    .where('user_id', '=', userId)
    .executeTakeFirst()
  const orgId = found?.org_id as string | undefined
  const org = orgId ? await loadOrg(deps, orgId) : null
  if (!orgId || org?.status === 'none' || !org?.members.has(userId)) {
    throw new DomainError('USER_NOT_FOUND', 'no such user', 'not_found')
  }
  const result = await handleCommand(
    deps,
    erasure,
    erasureStream(userId),
    { userId, at: ctx.now().toISOString() },
    { ...ctx, tenantId: orgId },
  )
  // After the event: a crash in between leaves drafts that the operator's retry deletes.
  await deleteUserDrafts(deps.db, orgId, userId)
  return { orgId, position: result.position }
}
