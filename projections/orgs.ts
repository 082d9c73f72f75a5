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
  /** null: no limit. */
  readonly seats: number | null
  readonly storage_bytes: number | string | null
  /** The LLM policy's allowed models as a JSON list; null while the org has no policy (the platform's defaults). */
  readonly llm_allowed_models: string | null
  readonly llm_key_source: 'platform' | 'org' | null
  readonly llm_monthly_token_budget: number | string | null
}

/**
 * An org's row: created once (a repeat keeps the first), then suspended and reactivated, its limits and LLM policy
 * set by operators; events about no row change nothing.
 */
export const orgRows: RowModel<OrgLifecycle, OrgRow> = {
  table: 'orgs',
  columns: [
    'id',
    'name',
    'slug',
    'status',
    'created_at',
    'updated_at',
    'seats',
    'storage_bytes',
    'llm_allowed_models',
    'llm_key_source',
    'llm_monthly_token_budget',
  ],
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
            seats: null,
            storage_bytes: null,
            llm_allowed_models: null,
            llm_key_source: null,
            llm_monthly_token_budget: null,
          }
        )
      case 'org.suspended':
        return row && { ...row, status: 'suspended', updated_at: e.data.at }
      case 'org.reactivated':
        return row && { ...row, status: 'active', updated_at: e.data.at }
      case 'org.limits_set':
        return row && { ...row, seats: e.data.seats, storage_bytes: e.data.storageBytes, updated_at: e.data.at }
      case 'org.llm_policy_set':
        return (
          row && {
            ...row,
            llm_allowed_models: JSON.stringify(e.data.allowedModels),
            llm_key_source: e.data.keySource,
            llm_monthly_token_budget: e.data.monthlyTokenBudget,
            updated_at: e.data.at,
          }
        )
    }
  },
}

/** control.orgs: the registry operators list and tenancy resolves against. */
export const orgsProjector = rowProjector({
  name: 'orgs',
  // Still v1: the columns for limits and LLM policy came with their events (migration 050), so every row projected
  // before them already is what v1 with these columns makes of its history.
  version: 1,
  schema: 'control',
  eventTypes: ['org.created', 'org.suspended', 'org.reactivated', 'org.limits_set', 'org.llm_policy_set'],
  model: orgRows,
})
