import type { Projector } from './engine.ts'
import { messagesProjector } from './messages.ts'
import { orgsProjector } from './orgs.ts'
import { roomsProjector } from './rooms.ts'
import { spacesProjector } from './spaces.ts'
import { timersProjector } from './timers.ts'
import { membershipsProjector, usersProjector } from './users.ts'

/** Every read model projector; the engine runs them and rebuilds verify them. */
export const projectors: readonly Projector[] = [
  orgsProjector,
  membershipsProjector,
  usersProjector,
  spacesProjector,
  roomsProjector,
  messagesProjector,
  timersProjector,
]
