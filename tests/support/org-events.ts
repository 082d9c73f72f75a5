import { v7 as uuid } from 'uuid'
import type { EventStore } from '../../adapters/event-store.ts'
import type { OrgRole } from '../../domain/orgs.ts'

/**
 * Users joining an org, appended straight to its stream: for tests below the HTTP layer that need an
 * audience (the realtime fan-out reads `user.joined`) without the identity flows.
 */
export function appendUsersJoined(store: EventStore, tenantId: string, users: readonly { userId: string; role: OrgRole }[]) {
  const at = new Date().toISOString()
  return store.append(
    `org-${tenantId}`,
    users.map((u, i) => ({
      id: uuid(),
      type: 'user.joined',
      data: { userId: u.userId, accountId: null, type: 'human', role: u.role, email: null, displayName: `user ${i}`, at },
      metadata: {
        tenantId,
        actor: { type: 'system', id: 'tests' },
        correlationId: uuid(),
        causationId: null,
        occurredAt: at,
        schemaVersion: 1,
      },
    })),
    { expectedRevision: 'no_stream' },
  )
}
