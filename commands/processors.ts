import type { ParkedEventCommands } from '../adapters/parked-events.ts'
import type { AppDeps } from '../http/context.ts'
import { parkedEventCommands } from './parked-events.ts'

/** Operators' retry and skip of the events a processor parked (processors/parking.ts carries them out). */
export const processorCommands = (deps: AppDeps, parking: ParkedEventCommands) =>
  parkedEventCommands(deps, parking, {
    kind: 'processor',
    collection: 'processors',
    retrySummary: 'Run a processor again on an event it parked (operators)',
    retryDescription:
      'Runs the handler of the processor on the event again, long after its checkpoint passed it (the effects are ' +
      'idempotent by the event), and removes it from the parked events.',
  })
