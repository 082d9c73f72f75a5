import { describe, expect, it } from 'vitest'
import type { BudgetEvent, CapsEvent, Scope } from '../../domain/usage.ts'
import { evolveTable } from '../../projections/rows.ts'
import { type UsageCapRow, type UsageRecordRow, usageCapRows, usageRecordRows } from '../../projections/usage.ts'
import { projectionSpec } from '../support/projection-spec.ts'

const t0 = '2026-12-02T10:00:00.000Z'
const t1 = '2026-12-02T11:00:00.000Z'
const orgId = 'org-1'

const llm = (recordId: string, cost: number, billed = cost): BudgetEvent => ({
  type: 'usage.recorded',
  data: {
    recordId,
    reservationId: null,
    orgId,
    agentId: 'a-1',
    roomId: 'room-1',
    taskId: null,
    usage: { kind: 'llm', model: 'gpt-x', inputTokens: 1000, cachedInputTokens: 200, outputTokens: 50 },
    costMicroUsd: cost,
    billedMicroUsd: billed,
    priced: true,
    at: t0,
  },
})

const vm = (recordId: string): BudgetEvent => ({
  type: 'usage.recorded',
  data: {
    recordId,
    reservationId: null,
    orgId,
    agentId: null,
    roomId: null,
    taskId: 'task-1',
    usage: { kind: 'vm', vmId: 'vm-1', size: 'small', minutes: 30 },
    costMicroUsd: 30_000,
    billedMicroUsd: 30_000,
    priced: true,
    at: t1,
  },
})

const llmRow: UsageRecordRow = {
  record_id: 'rec-1',
  kind: 'llm',
  at: t0,
  agent_id: 'a-1',
  room_id: 'room-1',
  task_id: null,
  vm_id: null,
  model: 'gpt-x',
  vm_size: null,
  input_tokens: 1000,
  cached_input_tokens: 200,
  output_tokens: 50,
  vm_minutes: 0,
  bytes: 0,
  minutes: 0,
  cost_micro_usd: 4_000,
  billed_micro_usd: 0,
  priced: true,
}

describe('usage records read model', () => {
  const records = projectionSpec(usageRecordRows)

  it('each record is one flat row: tokens by kind, cost and what is billed', () =>
    records
      .given([])
      .when(llm('rec-1', 4_000, 0), vm('rec-2'))
      .then([
        llmRow,
        {
          ...llmRow,
          record_id: 'rec-2',
          kind: 'vm',
          at: t1,
          agent_id: null,
          room_id: null,
          task_id: 'task-1',
          vm_id: 'vm-1',
          model: null,
          vm_size: 'small',
          input_tokens: 0,
          cached_input_tokens: 0,
          output_tokens: 0,
          vm_minutes: 30,
          cost_micro_usd: 30_000,
          billed_micro_usd: 30_000,
        },
      ]))

  it('a record seen again (a replayed batch) keeps its row and writes nothing', () =>
    records.given([llmRow]).when(llm('rec-1', 9_999)).thenWrites({ upserts: [], deletes: [] }))

  it('budget events that are not records leave the table alone', () =>
    records
      .given([])
      .when({
        type: 'usage.reserved',
        data: { reservationId: 'r', orgId, agentId: null, roomId: null, taskId: null, amountMicroUsd: 5, at: t0, expiresAt: t1 },
      })
      .then([]))
})

describe('usage caps read model', () => {
  const capSet = (scope: Scope, scopeId: string, limit: number | null, at = t0): CapsEvent => ({
    type: 'usage.cap_set',
    data: {
      orgId,
      scope,
      scopeId,
      agentId: null,
      roomId: scope === 'room' ? scopeId : null,
      taskId: null,
      limitMicroUsd: limit,
      previousMicroUsd: null,
      usedMicroUsd: 0,
      month: '2026-12',
      at,
    },
  })

  it('a cap is a row by scope, changed in place and removed with its limit', () => {
    const { rows } = evolveTable(
      usageCapRows,
      [],
      [capSet('org', orgId, 10), capSet('room', 'room-1', 5), capSet('room', 'room-1', 7, t1)],
    )
    expect(rows).toEqual<UsageCapRow[]>([
      { scope: 'org', scope_id: orgId, limit_micro_usd: 10, updated_at: t0 },
      { scope: 'room', scope_id: 'room-1', limit_micro_usd: 7, updated_at: t1 },
    ])
    const removed = evolveTable(usageCapRows, rows, [capSet('room', 'room-1', null, t1)])
    expect(removed.rows).toEqual([rows[0]])
    expect(removed.deletes).toEqual([JSON.stringify(['room', 'room-1'])])
  })
})
