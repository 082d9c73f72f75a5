import { streamName } from '../adapters/event-store.ts'
import { type TimedCommand, type TimerEvent, type TimerState, timer } from '../domain/timers.ts'
import { type CommandContext, type CommandResult, handleCommand, type PipelineDeps } from './pipeline.ts'

/*
 * Durable timers' commands, run in-process (processors schedule and cancel, the timer runner fires): no HTTP
 * route. Each goes through the pipeline, so the expected revision makes a fire exactly once when runners race.
 */

export const timerStream = (timerId: string) => streamName('timer', timerId)

/** Schedules `command` at `dueAt` under `timerId`, for the context's tenant; the same schedule again is a no-op. */
export const scheduleTimer = (
  deps: PipelineDeps,
  ctx: CommandContext,
  input: { readonly timerId: string; readonly dueAt: Date; readonly command: TimedCommand },
): Promise<CommandResult<TimerEvent, TimerState>> =>
  handleCommand(
    deps,
    timer,
    timerStream(input.timerId),
    {
      type: 'schedule',
      timerId: input.timerId,
      dueAt: input.dueAt.toISOString(),
      command: input.command,
      tenantId: ctx.tenantId,
      at: ctx.now().toISOString(),
    },
    ctx,
  )

/** Cancels a scheduled timer; a fired, cancelled or unknown one is left as it is. */
export const cancelTimer = (
  deps: PipelineDeps,
  ctx: CommandContext,
  timerId: string,
): Promise<CommandResult<TimerEvent, TimerState>> =>
  handleCommand(deps, timer, timerStream(timerId), { type: 'cancel', timerId, at: ctx.now().toISOString() }, ctx)

/** Fires a due timer (refused while it is not due by ctx.now()); one that fired or was cancelled is left as it is. */
export const fireTimer = (
  deps: PipelineDeps,
  ctx: CommandContext,
  timerId: string,
): Promise<CommandResult<TimerEvent, TimerState>> =>
  handleCommand(deps, timer, timerStream(timerId), { type: 'fire', timerId, at: ctx.now().toISOString() }, ctx, {
    // Racing runners conflict once at most: the loser reads the fired timer and decides nothing.
    maxAttempts: 3,
  })
