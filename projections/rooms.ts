import type { RoomEvent } from '../domain/rooms.ts'
import type { Projector } from './engine.ts'

/** The room events about rooms and their members (a range deletion is the messages projector's). */
type RoomLifecycle = Exclude<RoomEvent, { type: 'message.range_deleted' }>

export const roomsProjector: Projector<RoomLifecycle> = {
  name: 'rooms',
  version: 1,
  schema: 'tenant',
  tables: ['rooms', 'room_members'],
  eventTypes: ['room.created', 'room.updated', 'room.member_added', 'room.member_removed', 'room.archived'],
  async apply(trx, events) {
    for (const e of events) {
      const tenantId = e.metadata.tenantId!
      switch (e.type) {
        case 'room.created': {
          const d = e.data
          await trx
            .insertInto('rooms')
            .values({
              tenant_id: tenantId,
              id: d.roomId,
              name: d.name,
              description: d.description,
              space_id: d.spaceId,
              visibility: d.visibility,
              kind: d.kind,
              created_by: d.createdBy,
              created_at: d.at,
              updated_at: d.at,
            })
            .execute()
          if (d.members.length) {
            await trx
              .insertInto('room_members')
              .values(
                d.members.map((m) => ({
                  tenant_id: tenantId,
                  room_id: d.roomId,
                  member_id: m.memberId,
                  member_type: m.memberType,
                  joined_at: d.at,
                })),
              )
              .execute()
          }
          break
        }
        case 'room.updated':
          await trx
            .updateTable('rooms')
            .set({
              ...(e.data.name !== undefined ? { name: e.data.name } : {}),
              ...(e.data.description !== undefined ? { description: e.data.description } : {}),
              updated_at: e.data.at,
            })
            .where('tenant_id', '=', tenantId)
            .where('id', '=', e.data.roomId)
            .execute()
          break
        case 'room.member_added':
          await trx
            .insertInto('room_members')
            .values({
              tenant_id: tenantId,
              room_id: e.data.roomId,
              member_id: e.data.memberId,
              member_type: e.data.memberType,
              joined_at: e.data.at,
            })
            .onConflict((oc) => oc.columns(['tenant_id', 'room_id', 'member_id']).doNothing())
            .execute()
          break
        case 'room.member_removed':
          await trx
            .deleteFrom('room_members')
            .where('tenant_id', '=', tenantId)
            .where('room_id', '=', e.data.roomId)
            .where('member_id', '=', e.data.memberId)
            .execute()
          break
        case 'room.archived':
          await trx
            .updateTable('rooms')
            .set({ archived: true, updated_at: e.data.at })
            .where('tenant_id', '=', tenantId)
            .where('id', '=', e.data.roomId)
            .execute()
          break
      }
    }
  },
}
