import type { RecordedEvent } from '../adapters/event-store.ts'
import type { OrgEvent } from '../domain/orgs.ts'
import type { ProjectionTransaction, Projector } from './engine.ts'

/** control.orgs: the registry operators list and tenancy resolves against. */
export const orgsProjector: Projector = {
  name: 'orgs',
  version: 1,
  schema: 'control',
  tables: ['orgs'],
  eventTypes: new Set(['org.created', 'org.suspended', 'org.reactivated']),
  async apply(trx: ProjectionTransaction, events: readonly RecordedEvent[]) {
    for (const recorded of events) {
      const e = recorded as unknown as RecordedEvent & OrgEvent
      switch (e.type) {
        case 'org.created':
          await trx
            .insertInto('orgs')
            .values({
              id: e.data.orgId,
              name: e.data.name,
              slug: e.data.slug,
              status: 'active',
              created_at: e.data.at,
              updated_at: e.data.at,
            })
            .onConflict((oc) => oc.column('id').doNothing())
            .execute()
          break
        case 'org.suspended':
          await trx
            .updateTable('orgs')
            .set({ status: 'suspended', updated_at: e.data.at })
            .where('id', '=', e.data.orgId)
            .execute()
          break
        case 'org.reactivated':
          await trx.updateTable('orgs').set({ status: 'active', updated_at: e.data.at }).where('id', '=', e.data.orgId).execute()
          break
      }
    }
  },
}
