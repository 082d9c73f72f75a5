import type { MemberType, RoomEvent, RoomKind, Visibility } from '../domain/rooms.ts'
import { type RowModel, rowProjector, type TableModel } from './rows.ts'

/** The room events about rooms and their members (a range deletion is the messages projector's). */
type RoomLifecycle = Exclude<RoomEvent, { type: 'message.range_deleted' }>

/** A row of tenant.rooms (its tenant_id is the batch's). */
export type RoomRow = {
  readonly id: string
  readonly name: string
  readonly description: string
  readonly space_id: string | null
  readonly visibility: Visibility
  readonly kind: RoomKind
  readonly created_by: string
  readonly archived: boolean
  readonly created_at: string
  readonly updated_at: string
}

/** A room's row: created once (a repeat keeps the first), then edited and archived; events about no row change nothing. */
export const roomRows: RowModel<RoomLifecycle, RoomRow> = {
  table: 'rooms',
  columns: ['id', 'name', 'description', 'space_id', 'visibility', 'kind', 'created_by', 'archived', 'created_at', 'updated_at'],
  key: 'id',
  keyOf: (e) => (e.type === 'room.member_added' || e.type === 'room.member_removed' ? null : e.data.roomId),
  evolve(row, e) {
    switch (e.type) {
      case 'room.created':
        return (
          row ?? {
            id: e.data.roomId,
            name: e.data.name,
            description: e.data.description,
            space_id: e.data.spaceId,
            visibility: e.data.visibility,
            kind: e.data.kind,
            created_by: e.data.createdBy,
            archived: false,
            created_at: e.data.at,
            updated_at: e.data.at,
          }
        )
      // An edit names only what changed.
      case 'room.updated':
        return (
          row && {
            ...row,
            name: e.data.name ?? row.name,
            description: e.data.description ?? row.description,
            updated_at: e.data.at,
          }
        )
      case 'room.archived':
        return row && { ...row, archived: true, updated_at: e.data.at }
      default:
        return row
    }
  },
}

/** A row of tenant.room_members: who is in a room, since when. */
export type RoomMemberRow = {
  readonly room_id: string
  readonly member_id: string
  readonly member_type: MemberType
  readonly joined_at: string
}

/**
 * A member's row, keyed by room and member: a room's creation adds each of its members, an addition one (a member
 * already there keeps their row, and when they joined), a removal deletes it.
 */
export const roomMemberRows: TableModel<RoomLifecycle, RoomMemberRow> = {
  table: 'room_members',
  columns: ['room_id', 'member_id', 'member_type', 'joined_at'],
  key: ['room_id', 'member_id'],
  refsOf(e) {
    switch (e.type) {
      case 'room.created':
        return e.data.members.map((m) => ({ room_id: e.data.roomId, member_id: m.memberId }))
      case 'room.member_added':
      case 'room.member_removed':
        return [{ room_id: e.data.roomId, member_id: e.data.memberId }]
      default:
        return []
    }
  },
  evolve(row, e, ref) {
    switch (e.type) {
      case 'room.created': {
        const member = e.data.members.find((m) => m.memberId === ref.member_id)
        return (
          row ??
          (member
            ? { room_id: e.data.roomId, member_id: member.memberId, member_type: member.memberType, joined_at: e.data.at }
            : null)
        )
      }
      case 'room.member_added':
        return row ?? { room_id: e.data.roomId, member_id: e.data.memberId, member_type: e.data.memberType, joined_at: e.data.at }
      case 'room.member_removed':
        return null
      default:
        return row
    }
  },
}

/** tenant.rooms and tenant.room_members. */
export const roomsProjector = rowProjector({
  name: 'rooms',
  version: 1,
  schema: 'tenant',
  eventTypes: ['room.created', 'room.updated', 'room.member_added', 'room.member_removed', 'room.archived'],
  models: [roomRows, roomMemberRows],
})
