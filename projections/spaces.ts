import type { SpaceEvent, SpaceKind } from '../domain/spaces.ts'
import { type RowModel, rowProjector } from './rows.ts'

/** A row of tenant.spaces (its tenant_id is the batch's). */
export type SpaceRow = {
  readonly id: string
  readonly name: string
  readonly kind: SpaceKind
  readonly owner_id: string
  readonly created_at: string
  readonly updated_at: string
}

/** A space's row: created once (a repeat keeps the first), then renamed; a rename of no row changes nothing. */
export const spaceRows: RowModel<SpaceEvent, SpaceRow> = {
  table: 'spaces',
  columns: ['id', 'name', 'kind', 'owner_id', 'created_at', 'updated_at'],
  key: 'id',
  keyOf: (e) => e.data.spaceId,
  evolve(row, e) {
    switch (e.type) {
      case 'space.created':
        return (
          row ?? {
            id: e.data.spaceId,
            name: e.data.name,
            kind: e.data.kind,
            owner_id: e.data.ownerId,
            created_at: e.data.at,
            updated_at: e.data.at,
          }
        )
      case 'space.updated':
        return row && { ...row, name: e.data.name, updated_at: e.data.at }
    }
  },
}

/** tenant.spaces. */
export const spacesProjector = rowProjector({
  name: 'spaces',
  version: 1,
  schema: 'tenant',
  eventTypes: ['space.created', 'space.updated'],
  model: spaceRows,
})
