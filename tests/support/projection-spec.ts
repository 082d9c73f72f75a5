import { expect } from 'vitest'
import type { DomainEvent } from '../../domain/decider.ts'
import { foldRows, type Row, type RowModel, rowChanges } from '../../projections/rows.ts'

/**
 * Given/when/then over a row model, without a database: given the table's rows, when these events are applied in
 * one batch, then the table holds these rows (in any order) — and `thenWrites` pins what the applier would write.
 */
export const projectionSpec = <E extends DomainEvent, R extends Row>(model: RowModel<E, R>) => ({
  given: (rows: readonly R[]) => {
    const before = new Map(rows.map((r) => [String(r[model.key]), r]))
    return {
      when: (...events: E[]) => {
        const after = foldRows(model, before, events)
        const table = () => {
          const merged = new Map<string, R | null>([...before, ...after])
          return [...merged.values()].filter((r): r is R => r !== null).sort(byKey(model.key))
        }
        return {
          then: (expected: readonly R[]) => expect(table()).toEqual([...expected].sort(byKey(model.key))),
          thenWrites: (expected: { upserts: readonly R[]; deletes: readonly string[] }) =>
            expect(rowChanges(before, after)).toEqual(expected),
        }
      },
    }
  },
})

const byKey =
  <R extends Row>(key: keyof R) =>
  (a: R, b: R) =>
    String(a[key]).localeCompare(String(b[key]))
