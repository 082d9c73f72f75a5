import { randomBytes } from 'node:crypto'
import { v7 as uuid } from 'uuid'
import type { NewEvent } from '../adapters/event-store.ts'

/** A realistic event: the envelope of ARCHITECTURE.md and a small domain payload (~400 bytes in all). */
const tenantId = uuid()
const actorId = uuid()

export const benchEvent = (n: number): NewEvent => ({
  id: uuid(),
  type: 'room.message_posted',
  data: {
    messageId: uuid(),
    authorId: actorId,
    n,
    body: `message ${n}: ${randomBytes(24).toString('base64')}`,
    mentions: [],
  },
  metadata: {
    tenantId,
    actor: { type: 'user', id: actorId },
    correlationId: uuid(),
    causationId: null,
    occurredAt: new Date().toISOString(),
    schemaVersion: 1,
  },
})

export const benchEvents = (count: number, from = 0): NewEvent[] => Array.from({ length: count }, (_, i) => benchEvent(from + i))

export const benchStreamName = (): string => `bench-${uuid()}`
