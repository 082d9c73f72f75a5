import { actionItemsProjector } from './action-items.ts'
import { agentsProjector } from './agents.ts'
import { artifactsProjector } from './artifacts.ts'
import type { Projector } from './engine.ts'
import { messagesProjector } from './messages.ts'
import { operatorsProjector } from './operators.ts'
import { orgsProjector } from './orgs.ts'
import { roomsProjector } from './rooms.ts'
import { runQueueProjector } from './run-queue.ts'
import { runsProjector } from './runs.ts'
import { spacesProjector } from './spaces.ts'
import { taskSchedulesProjector } from './task-schedules.ts'
import { tasksProjector } from './tasks.ts'
import { timersProjector } from './timers.ts'
import { usageProjector } from './usage.ts'
import { membershipsProjector, usersProjector } from './users.ts'

/** Every read model projector; the engine runs them and rebuilds verify them. */
export const projectors: readonly Projector[] = [
  orgsProjector,
  membershipsProjector,
  usersProjector,
  spacesProjector,
  roomsProjector,
  messagesProjector,
  tasksProjector,
  timersProjector,
  usageProjector,
  artifactsProjector,
  operatorsProjector,
  taskSchedulesProjector,
  actionItemsProjector,
  agentsProjector,
  runsProjector,
  runQueueProjector,
]
