import { isDeepStrictEqual } from 'node:util'
import { type Decider, DomainError, type DomainEvent } from './decider.ts'

/**
 * A command to run later, by its type: what processors/processor.ts calls TimerCommand (the domain imports nothing
 * of ours, so the shape is repeated here; the compiler checks they agree where the two meet).
 */
export type TimedCommand = { readonly type: string; readonly data: Readonly<Record<string, unknown>> }

export const TIMER_COMMAND_TYPE_MAX = 100

/**
 * The name under which timers scheduled are announced to the runners that fire them (a Postgres NOTIFY channel):
 * here because the projector announces and the runner listens, and neither layer may import the other.
 */
export const TIMERS_CHANNEL = 'control_timers'

/*
 * `dueAt` is when the timer is due; `at`, as in every event here, is when the decision was taken (the pipeline
 * compares retried creations without it, so a due time must not be called `at`).
 */
export type TimerEvent =
  | DomainEvent<'timer.scheduled', { timerId: string; dueAt: string; command: TimedCommand; tenantId: string | null; at: string }>
  | DomainEvent<'timer.fired', { timerId: string; dueAt: string; command: TimedCommand; at: string }>
  | DomainEvent<'timer.cancelled', { timerId: string; at: string }>

export type TimerState =
  | { readonly status: 'none' }
  | {
      readonly status: 'scheduled' | 'fired' | 'cancelled'
      readonly dueAt: string
      readonly command: TimedCommand
      readonly tenantId: string | null
    }

export type TimerCommandOf =
  | { type: 'schedule'; timerId: string; dueAt: string; command: TimedCommand; tenantId: string | null; at: string }
  | { type: 'cancel'; timerId: string; at: string }
  | { type: 'fire'; timerId: string; at: string }

const validDueAt = (dueAt: string): string => {
  const t = Date.parse(dueAt)
  if (Number.isNaN(t)) throw new DomainError('TIMER_DUE_AT_INVALID', 'a timer is due at a valid date and time')
  return new Date(t).toISOString()
}

const validCommand = (command: TimedCommand): TimedCommand => {
  if (typeof command.type !== 'string' || command.type.length === 0 || command.type.length > TIMER_COMMAND_TYPE_MAX) {
    throw new DomainError('TIMER_COMMAND_INVALID', `a timer's command has a type of 1 to ${TIMER_COMMAND_TYPE_MAX} characters`)
  }
  return command
}

/**
 * One durable timer (stream `timer-<id>`): scheduled once, then fired once when due or cancelled before. Repeats are
 * harmless, because at-least-once callers repeat: the same schedule again decides nothing, and firing or cancelling
 * a timer that is no longer scheduled decides nothing (two runners racing to fire it append one `timer.fired`).
 */
export const timer: Decider<TimerCommandOf, TimerEvent, TimerState> = {
  initialState: { status: 'none' },
  decide(c, s) {
    switch (c.type) {
      case 'schedule': {
        const dueAt = validDueAt(c.dueAt)
        const command = validCommand(c.command)
        if (s.status !== 'none') {
          if (s.dueAt === dueAt && isDeepStrictEqual(s.command, command) && s.tenantId === c.tenantId) return []
          throw new DomainError('TIMER_EXISTS', 'another timer has this id', 'conflict')
        }
        return [{ type: 'timer.scheduled', data: { timerId: c.timerId, dueAt, command, tenantId: c.tenantId, at: c.at } }]
      }
      case 'cancel':
        return s.status === 'scheduled' ? [{ type: 'timer.cancelled', data: { timerId: c.timerId, at: c.at } }] : []
      case 'fire':
        if (s.status !== 'scheduled') return []
        // A runner whose clock is behind the due time has nothing to fire yet; it asks again when due.
        if (Date.parse(c.at) < Date.parse(s.dueAt)) throw new DomainError('TIMER_NOT_DUE', `this timer is due at ${s.dueAt}`)
        return [{ type: 'timer.fired', data: { timerId: c.timerId, dueAt: s.dueAt, command: s.command, at: c.at } }]
    }
  },
  evolve(s, e) {
    switch (e.type) {
      case 'timer.scheduled':
        return s.status === 'none'
          ? { status: 'scheduled', dueAt: e.data.dueAt, command: e.data.command, tenantId: e.data.tenantId }
          : s
      case 'timer.fired':
        return s.status === 'scheduled' ? { ...s, status: 'fired' } : s
      case 'timer.cancelled':
        return s.status === 'scheduled' ? { ...s, status: 'cancelled' } : s
    }
  },
}
