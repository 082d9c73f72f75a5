import { type Position, streamName, WrongExpectedRevisionError } from '../adapters/event-store.ts'
import { type TimedCommand, type TimerEvent, type TimerState, timer } from '../domain/timers.ts'
import { type CommandContext, type CommandResult, envelope, handleCommand, type PipelineDeps } from './pipeline.ts'

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

/** A timer as the read model lists it while it is scheduled: what its timer.scheduled says. */
export type ScheduledTimer = {
  readonly timerId: string
  readonly dueAt: string
  readonly command: TimedCommand
  readonly tenantId: string | null
}

/**
 * Fires a timer the read model lists as scheduled, in one round trip instead of a read and an append: while a timer
 * is scheduled its stream holds only its timer.scheduled (revision 0), which `scheduled` repeats, so the decision is
 * taken on that state and appended at revision 0. When the stream moved meanwhile (cancelled, or fired by another
 * runner) the append is refused and fireTimer decides on the stream as it is. Null: nothing was appended.
 */
export async function fireScheduledTimer(
  deps: PipelineDeps,
  ctx: CommandContext,
  scheduled: ScheduledTimer,
): Promise<Position | null> {
  const state: TimerState = { status: 'scheduled', ...scheduled }
  const events = timer.decide({ type: 'fire', timerId: scheduled.timerId, at: ctx.now().toISOString() }, state)
  try {
    const r = await deps.store.append(timerStream(scheduled.timerId), envelope(deps, ctx, events), { expectedRevision: 0n })
    return r.position
  } catch (e) {
    if (!(e instanceof WrongExpectedRevisionError)) throw e
    const r = await fireTimer(deps, ctx, scheduled.timerId)
    return r.events.length ? r.position : null
  }
}
