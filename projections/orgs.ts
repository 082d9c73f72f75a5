import type { OrgEvent } from '../domain/orgs.ts'
import { type RowModel, rowProjector } from './rows.ts'

type OrgLifecycle = Extract<OrgEvent, { type: `org.${string}` }>

/** A row of control.orgs. */
export type OrgRow = {
  readonly id: string
  readonly name: string
  readonly slug: string
  readonly status: 'active' | 'suspended'
  readonly created_at: string
  readonly updated_at: string
}

/** An org's row: created once (a repeat keeps the first), then suspended and reactivated; events about no row change nothing. */
export const orgRows: RowModel<OrgLifecycle, OrgRow> = {
  table: 'orgs',
  columns: ['id', 'name', 'slug', 'status', 'created_at', 'updated_at'],
  key: 'id',
  keyOf: (e) => e.data.orgId,
  evolve(row, e) {
    switch (e.type) {
      case 'org.created':
        return (
          row ?? {
            id: e.data.orgId,
            name: e.data.name,
            slug: e.data.slug,
            status: 'active',
            created_at: e.data.at,
            updated_at: e.data.at,
          }
        )
      case 'org.suspended':
        return row && { ...row, status: 'suspended', updated_at: e.data.at }
      case 'org.reactivated':
        return row && { ...row, status: 'active', updated_at: e.data.at }
    }
  },
}

/** control.orgs: the registry operators list and tenancy resolves against. */
export const orgsProjector = rowProjector({
  name: 'orgs',
  version: 1,
  schema: 'control',
  eventTypes: ['org.created', 'org.suspended', 'org.reactivated'],
  model: orgRows,
})
