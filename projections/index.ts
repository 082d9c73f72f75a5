import type { Projector } from './engine.ts'
import { orgsProjector } from './orgs.ts'

/** Every read model projector; the engine runs them and rebuilds verify them. */
export const projectors: readonly Projector[] = [orgsProjector]
