import { expect } from 'vitest'
import { type Decider, DomainError, fold } from '../../domain/decider.ts'

/** Given these events, when this command, then these events (or this refusal). */
export const deciderSpec = <C, E, S>(decider: Decider<C, E, S>) => ({
  given: (history: readonly E[]) => ({
    when: (command: C) => {
      const run = () => decider.decide(command, fold(decider, history))
      return {
        then: (expected: readonly E[]) => expect(run()).toEqual(expected),
        thenRefused: (code: string) => {
          let error: unknown
          try {
            run()
          } catch (e) {
            error = e
          }
          expect(error, 'the command was accepted').toBeInstanceOf(DomainError)
          expect((error as DomainError).code).toBe(code)
        },
      }
    },
  }),
})
