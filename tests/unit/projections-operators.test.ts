import { describe, it } from 'vitest'
import type { OperatorEvent } from '../../domain/operators.ts'
import { type OperatorRow, operatorRows } from '../../projections/operators.ts'
import { projectionSpec } from '../support/projection-spec.ts'

const t0 = '2026-11-28T10:00:00.000Z'
const t1 = '2026-11-28T11:00:00.000Z'
const first = 'acc-1'
const second = 'acc-2'

const bootstrapped = {
  type: 'operator.granted',
  data: { accountId: first, by: { type: 'bootstrap' }, at: t0 },
} satisfies OperatorEvent
const granted = {
  type: 'operator.granted',
  data: { accountId: second, by: { type: 'operator', accountId: first }, at: t1 },
} satisfies OperatorEvent
const firstRow: OperatorRow = { account_id: first, granted_by: null, granted_at: t0 }
const secondRow: OperatorRow = { account_id: second, granted_by: first, granted_at: t1 }

describe('operators read model', () => {
  const operators = projectionSpec(operatorRows)

  it('a grant is a row naming who granted it (none for the bootstrap)', () =>
    operators.given([]).when(bootstrapped, granted).then([firstRow, secondRow]))

  it('a revocation removes the row; granted again, it is a new row of the new grant', () => {
    operators
      .given([firstRow, secondRow])
      .when({ type: 'operator.revoked', data: { accountId: second, by: first, at: t1 } })
      .then([firstRow])
    operators
      .given([firstRow])
      .when(granted, { type: 'operator.revoked', data: { accountId: second, by: first, at: t1 } }, granted)
      .then([firstRow, secondRow])
  })

  it('a repeated grant keeps the first row', () =>
    operators
      .given([firstRow])
      .when({ ...bootstrapped, data: { ...bootstrapped.data, at: t1 } })
      .thenWrites({ upserts: [], deletes: [] }))
})
