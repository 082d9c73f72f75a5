import type { BudgetEvent, CapsEvent } from '../domain/usage.ts'
import { type RowModel, rowProjector } from './rows.ts'

type UsageEvent = BudgetEvent | CapsEvent

/** A row of tenant.usage_records (its tenant_id is the batch's): one record of usage, flat for sums. */
export type UsageRecordRow = {
  readonly record_id: string
  readonly kind: string
  readonly at: string
  readonly agent_id: string | null
  readonly room_id: string | null
  readonly task_id: string | null
  readonly vm_id: string | null
  readonly model: string | null
  readonly vm_size: string | null
  readonly input_tokens: number
  readonly cached_input_tokens: number
  readonly output_tokens: number
  readonly vm_minutes: number
  readonly bytes: number
  readonly minutes: number
  readonly cost_micro_usd: number
  readonly billed_micro_usd: number
  readonly priced: boolean
}

/** A record's row, written once: the event store appends a record id once, and a replayed batch keeps the row. */
export const usageRecordRows: RowModel<UsageEvent, UsageRecordRow> = {
  table: 'usage_records',
  columns: [
    'record_id',
    'kind',
    'at',
    'agent_id',
    'room_id',
    'task_id',
    'vm_id',
    'model',
    'vm_size',
    'input_tokens',
    'cached_input_tokens',
    'output_tokens',
    'vm_minutes',
    'bytes',
    'minutes',
    'cost_micro_usd',
    'billed_micro_usd',
    'priced',
  ],
  key: 'record_id',
  keyOf: (e) => (e.type === 'usage.recorded' ? e.data.recordId : null),
  evolve(row, e) {
    if (e.type !== 'usage.recorded' || row) return row
    const d = e.data
    const u = d.usage
    return {
      record_id: d.recordId,
      kind: u.kind,
      at: d.at,
      agent_id: d.agentId,
      room_id: d.roomId,
      task_id: d.taskId,
      vm_id: u.kind === 'vm' || u.kind === 'vm_disk' ? u.vmId : null,
      model: u.kind === 'llm' ? u.model : null,
      vm_size: u.kind === 'vm' ? u.size : null,
      input_tokens: u.kind === 'llm' ? u.inputTokens : 0,
      cached_input_tokens: u.kind === 'llm' ? u.cachedInputTokens : 0,
      output_tokens: u.kind === 'llm' ? u.outputTokens : 0,
      vm_minutes: u.kind === 'vm' ? u.minutes : 0,
      bytes: u.kind === 'vm_disk' || u.kind === 'storage' ? u.bytes : 0,
      minutes: u.kind === 'vm_disk' || u.kind === 'storage' ? u.minutes : 0,
      cost_micro_usd: d.costMicroUsd,
      billed_micro_usd: d.billedMicroUsd,
      priced: d.priced,
    }
  },
}

/** A row of tenant.usage_caps: a cap as it stands. */
export type UsageCapRow = {
  readonly scope: string
  readonly scope_id: string
  readonly limit_micro_usd: number
  readonly updated_at: string
}

/** Caps by scope: set, changed, removed (no row). */
export const usageCapRows = {
  table: 'usage_caps',
  columns: ['scope', 'scope_id', 'limit_micro_usd', 'updated_at'],
  key: ['scope', 'scope_id'],
  refsOf: (e: UsageEvent) => (e.type === 'usage.cap_set' ? [{ scope: e.data.scope, scope_id: e.data.scopeId }] : []),
  evolve(row: UsageCapRow | null, e: UsageEvent): UsageCapRow | null {
    if (e.type !== 'usage.cap_set') return row
    const d = e.data
    return d.limitMicroUsd === null
      ? null
      : { scope: d.scope, scope_id: d.scopeId, limit_micro_usd: d.limitMicroUsd, updated_at: d.at }
  },
} as const

/** tenant.usage_records and tenant.usage_caps. */
export const usageProjector = rowProjector<UsageEvent>({
  name: 'usage',
  version: 1,
  schema: 'tenant',
  eventTypes: ['usage.recorded', 'usage.cap_set'],
  models: [usageRecordRows, usageCapRows],
})
