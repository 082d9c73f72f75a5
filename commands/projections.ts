import type { ParkedEventCommands } from '../adapters/parked-events.ts'
import type { AppDeps } from '../http/context.ts'
import { parkedEventCommands } from './parked-events.ts'

/** Operators' retry and skip of the events a projector parked: they act on read models, not on the history. */
export const projectionCommands = (deps: AppDeps, parking: ParkedEventCommands) =>
  parkedEventCommands(deps, parking, {
    kind: 'projector',
    collection: 'projections',
    retrySummary: 'Apply a parked event again through its projector (operators)',
    retryDescription:
      'Applies the event through the live version of the projector, in one transaction with the row removed from the ' +
      'parked events, long after the checkpoint passed it.',
  })
