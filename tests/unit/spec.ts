import { expect } from 'vitest'
import { type Decider, DomainError, fold } from '../../domain/decider.ts'
import { deciderSpec } from '../support/given-when-then.ts'

/**
 * Given/when/then over a decider, as `tests/support/given-when-then.ts`, whose refusals also pin their kind
 * (it maps to the HTTP status: rule 422, conflict 409, not_found 404, forbidden 403) and say why.
 */
export const spec = <C, E, S>(decider: Decider<C, E, S>) => ({
  given: (history: readonly E[]) => ({
    when: (command: C) => {
      const base = deciderSpec(decider).given(history).when(command)
      return {
        then: base.then,
        thenRefused: (code: string, kind: DomainError['kind'] = 'rule') => {
          base.thenRefused(code)
          const error = refusal(() => decider.decide(command, fold(decider, history)))
          expect({ name: error.name, code: error.code, kind: error.kind }).toEqual({ name: 'DomainError', code, kind })
          expect(error.message, 'a refusal says why').not.toBe('')
        },
      }
    },
  }),
})

/** The DomainError `act` throws. */
export const refusal = (act: () => unknown): DomainError => {
  try {
    act()
  } catch (e) {
    if (e instanceof DomainError) return e
    throw e
  }
  throw new Error('the command was accepted')
}
