import type { PipelineDeps } from '../../commands/pipeline.ts'
import { finishThreadRun, queueRun, runStream, threadStream } from '../../commands/runs.ts'
import type { RunEvent } from '../../domain/runs.ts'
import type { ThreadEvent } from '../../domain/threads.ts'
import { commandContextFor } from '../context.ts'
import type { Processor } from '../processor.ts'

type Bookkept =
  | Extract<ThreadEvent, { type: 'thread.run_queued' }>
  | Extract<RunEvent, { type: 'run.completed' | 'run.failed' | 'run.cancelled' | 'run.incomplete' }>

export const AGENT_RUNS_PROCESSOR = 'agent-runs'

/**
 * Makes sure of what the command handlers do in two steps: a run the thread queued gets its stream (should the
 * process have died between the thread's append and the run's), and a run that finished frees its thread, which
 * starts the next run from what waited. Both are idempotent: a run is queued once, a thread finishes a run once.
 */
export const agentRunsProcessor = (deps: PipelineDeps): Processor<Bookkept> => ({
  name: AGENT_RUNS_PROCESSOR,
  version: 1,
  eventTypes: ['thread.run_queued', 'run.completed', 'run.failed', 'run.cancelled', 'run.incomplete'],
  partitionBy: 'tenant',
  async handle(event, ctx) {
    const commands = commandContextFor(AGENT_RUNS_PROCESSOR, event, ctx)
    if (event.type === 'thread.run_queued') {
      const created = (await deps.store.readStream(threadStream(event.data.threadId)))[0]
      if (created?.type !== 'thread.created') return
      const t = created.data as { roomId: string; taskId: string | null }
      await queueRun(deps, commands, { ...event.data, roomId: t.roomId, taskId: t.taskId })
      return
    }
    const runCreated = (await deps.store.readStream(runStream(event.data.runId)))[0]
    if (runCreated?.type !== 'run.queued') return
    await finishThreadRun(deps, commands, {
      threadId: (runCreated.data as { threadId: string }).threadId,
      runId: event.data.runId,
    })
  },
})
