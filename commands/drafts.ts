import { sql, type Transaction } from 'kysely'
import type { EventStore, Position } from '../adapters/event-store.ts'
import type { AnyDb } from '../adapters/postgres.ts'
import { draftToKeep } from '../domain/messages.ts'
import { room } from '../domain/rooms.ts'
import { notFound } from '../http/problem.ts'
import { ROLES } from '../migrations/shared.ts'
import { foldRecorded, readTenantStream } from './pipeline.ts'
import { roomStream } from './rooms.ts'

/*
 * Drafts (part of messaging): private scratch text, one per user and room, that changes on every keystroke. Not
 * history: the command writes `tenant.drafts` directly and appends no event, and no projector owns the table, so
 * no rebuild drops it. Nothing is fanned out either: a draft is its author's alone and is read with the room
 * (GET /api/rooms/{id}); another device of the author sees it on its next read of the room.
 */

type Who = { readonly tenantId: string; readonly userId: string }

/**
 * Runs as the role that may write drafts and no other table, bound to one tenant and one user: row-level
 * security then hides every other tenant's drafts and every other user's. Bound per transaction, never per session.
 */
function asDraftWriter<T>(db: AnyDb, who: Who, fn: (trx: Transaction<unknown>) => Promise<T>): Promise<T> {
  return db.transaction().execute(async (trx) => {
    await sql`select set_config('role', ${ROLES.draftWriter}, true), set_config('app.tenant_id', ${who.tenantId}, true),
                     set_config('app.user_id', ${who.userId}, true)`.execute(trx)
    return fn(trx)
  })
}

/** Keeps a user's draft in a room as it is now; empty text deletes it. */
export function writeDraft(db: AnyDb, who: Who, roomId: string, text: string, at: Date): Promise<void> {
  const kept = draftToKeep(text)
  return asDraftWriter(db, who, async (trx) => {
    if (kept === null) {
      await sql`delete from tenant.drafts where tenant_id = ${who.tenantId} and room_id = ${roomId} and user_id = ${who.userId}`.execute(
        trx,
      )
    } else {
      await sql`
        insert into tenant.drafts (tenant_id, room_id, user_id, text, updated_at)
        values (${who.tenantId}, ${roomId}, ${who.userId}, ${kept}, ${at})
        on conflict (tenant_id, room_id, user_id) do update set text = excluded.text, updated_at = excluded.updated_at`.execute(
        trx,
      )
    }
  })
}

/**
 * Saves the caller's draft in a room they are a member of, decided on the room's stream (no read model, so no
 * lag): a room of another tenant, or one the caller is not in, does not exist for them. Appending nothing, it
 * answers the position of the room it was decided on, as a command that changes nothing does; the draft itself
 * reads back at once.
 */
export async function saveDraft(
  deps: { readonly store: EventStore; readonly db: AnyDb },
  who: Who,
  roomId: string,
  text: string,
  at: Date,
): Promise<{ position: Position }> {
  const events = await readTenantStream(deps.store, roomStream(roomId), who.tenantId)
  const state = foldRecorded(room, events)
  if (!state.exists || !state.members.has(who.userId)) throw notFound('no such room')
  await writeDraft(deps.db, who, roomId, text, at)
  return { position: events.at(-1)!.position }
}

/** Forgets every draft of a user in a tenant (erasure); returns how many. */
export async function deleteUserDrafts(db: AnyDb, tenantId: string, userId: string): Promise<number> {
  const deleted = await asDraftWriter(db, { tenantId, userId }, (trx) =>
    sql`delete from tenant.drafts where tenant_id = ${tenantId} and user_id = ${userId}`.execute(trx),
  )
  return Number(deleted.numAffectedRows ?? 0)
}
