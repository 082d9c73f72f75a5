import type { OperatorEvent } from '../domain/operators.ts'
import { type RowModel, rowProjector } from './rows.ts'

/** A row of control.operators: an account holding the operator role now. */
export type OperatorRow = {
  readonly account_id: string
  /** The operator's account that granted it; null for the first, granted with the bootstrap token. */
  readonly granted_by: string | null
  readonly granted_at: string
}

/** Granted: a row (a repeat keeps the first); revoked: none. */
export const operatorRows: RowModel<OperatorEvent, OperatorRow> = {
  table: 'operators',
  columns: ['account_id', 'granted_by', 'granted_at'],
  key: 'account_id',
  keyOf: (e) => e.data.accountId,
  evolve(row, e) {
    switch (e.type) {
      case 'operator.granted':
        return (
          row ?? {
            account_id: e.data.accountId,
            granted_by: e.data.by.type === 'operator' ? e.data.by.accountId : null,
            granted_at: e.data.at,
          }
        )
      case 'operator.revoked':
        return null
    }
  },
}

/** control.operators: who operates the platform, as operators list them. */
export const operatorsProjector = rowProjector({
  name: 'operators',
  version: 1,
  schema: 'control',
  eventTypes: ['operator.granted', 'operator.revoked'],
  model: operatorRows,
})
