import { v7 as uuid } from 'uuid'
import type { EventStore, NewEvent } from '../../adapters/event-store.ts'

/*
 * Room and message events as the deciders record them, appended straight to their streams: for tests of the
 * projections and realtime below the commands, which need many events fast and in an order they choose.
 */

export const roomEvent = (tenantId: string, type: string, data: Record<string, unknown>): NewEvent => {
  const at = new Date().toISOString()
  return {
    id: uuid(),
    type,
    data: { ...data, at },
    metadata: {
      tenantId,
      actor: { type: 'system', id: 'tests' },
      correlationId: uuid(),
      causationId: null,
      occurredAt: at,
      schemaVersion: 1,
    },
  }
}

/** A message.created for a new message in the room; its messageId is in data. */
export const messageCreated = (tenantId: string, roomId: string, authorId: string): NewEvent =>
  roomEvent(tenantId, 'message.created', {
    messageId: uuid(),
    roomId,
    authorId,
    authorType: 'user',
    text: 'hello',
    threadRootId: null,
    mentions: [],
  })

export const messageIdOf = (data: unknown): string => (data as { messageId: string }).messageId

export function appendRoomCreated(store: EventStore, tenantId: string, roomId: string, members: readonly string[]) {
  return store.append(
    `room-${roomId}`,
    [
      roomEvent(tenantId, 'room.created', {
        roomId,
        name: 'room',
        spaceId: null,
        visibility: 'private',
        kind: 'room',
        createdBy: members[0],
        members: members.map((memberId) => ({ memberId, memberType: 'user' })),
      }),
    ],
    { expectedRevision: 'no_stream' },
  )
}

export function appendMemberAdded(store: EventStore, tenantId: string, roomId: string, memberId: string) {
  return store.append(
    `room-${roomId}`,
    [roomEvent(tenantId, 'room.member_added', { roomId, memberId, memberType: 'user', addedBy: memberId })],
    { expectedRevision: 'stream_exists' },
  )
}

export function appendMessage(store: EventStore, tenantId: string, roomId: string, authorId: string) {
  return store.append(`message-${uuid()}`, [messageCreated(tenantId, roomId, authorId)], { expectedRevision: 'no_stream' })
}
