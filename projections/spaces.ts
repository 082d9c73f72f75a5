import type { RecordedEvent } from '../adapters/event-store.ts'
import type { SpaceEvent } from '../domain/spaces.ts'
import type { Projector } from './engine.ts'

export const spacesProjector: Projector = {
  name: 'spaces',
  version: 1,
  schema: 'tenant',
  tables: ['spaces'],
  eventTypes: new Set(['space.created', 'space.updated']),
  async apply(trx, events) {
    for (const recorded of events) {
      const e = recorded as RecordedEvent & SpaceEvent
      const tenantId = recorded.metadata.tenantId!
      if (e.type === 'space.created') {
        await trx
          .insertInto('spaces')
          .values({
            tenant_id: tenantId,
            id: e.data.spaceId,
            name: e.data.name,
            kind: e.data.kind,
            owner_id: e.data.ownerId,
            created_at: e.data.at,
            updated_at: e.data.at,
          })
          .execute()
      } else {
        await trx
          .updateTable('spaces')
          .set({ name: e.data.name, updated_at: e.data.at })
          .where('tenant_id', '=', tenantId)
          .where('id', '=', e.data.spaceId)
          .execute()
      }
    }
  },
}
