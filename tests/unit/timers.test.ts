import { describe, expect, it } from 'vitest'
import { fold } from '../../domain/decider.ts'
import { type TimedCommand, type TimerEvent, timer } from '../../domain/timers.ts'
import { spec } from './spec.ts'

const timerId = 'timer-1'
const tenantId = 'org-1'
const dueAt = '2026-12-02T10:02:00.000Z'
const at = '2026-12-02T10:00:00.000Z'
const later = '2026-12-02T10:02:00.500Z'
const command: TimedCommand = { type: 'mentions.notify-unread', data: { userId: 'u1', roomId: 'r1' } }

const schedule = (over: Partial<{ dueAt: string; command: TimedCommand; tenantId: string | null; at: string }> = {}) =>
  ({ type: 'schedule', timerId, dueAt, command, tenantId, at, ...over }) as const
const fire = (when = later) => ({ type: 'fire', timerId, at: when }) as const
const cancel = (when = at) => ({ type: 'cancel', timerId, at: when }) as const

const scheduled: TimerEvent = { type: 'timer.scheduled', data: { timerId, dueAt, command, tenantId, at } }
const fired: TimerEvent = { type: 'timer.fired', data: { timerId, dueAt, command, at: later } }
const cancelled: TimerEvent = { type: 'timer.cancelled', data: { timerId, at } }

describe('timers', () => {
  const rules = spec(timer)

  it('a timer is scheduled with its due time, its command and its tenant', () =>
    rules.given([]).when(schedule()).then([scheduled]))

  it('a due time is kept in one form, whatever the caller wrote', () =>
    rules
      .given([])
      .when(schedule({ dueAt: '2026-12-02T11:02:00+01:00' }))
      .then([scheduled]))

  it('scheduling the same timer again decides nothing (a repeated handler schedules twice)', () =>
    rules
      .given([scheduled])
      .when(schedule({ at: later }))
      .then([]))

  it('the same again after it fired or was cancelled decides nothing either', () => {
    rules.given([scheduled, fired]).when(schedule()).then([])
    rules.given([scheduled, cancelled]).when(schedule()).then([])
  })

  it('another timer under a taken id is refused', () => {
    rules
      .given([scheduled])
      .when(schedule({ dueAt: later }))
      .thenRefused('TIMER_EXISTS', 'conflict')
    rules
      .given([scheduled])
      .when(schedule({ command: { ...command, data: { userId: 'u2', roomId: 'r1' } } }))
      .thenRefused('TIMER_EXISTS', 'conflict')
    rules
      .given([scheduled])
      .when(schedule({ tenantId: 'org-2' }))
      .thenRefused('TIMER_EXISTS', 'conflict')
  })

  it('a due time that is no date, or a command without a type, is refused', () => {
    rules
      .given([])
      .when(schedule({ dueAt: 'tomorrow-ish' }))
      .thenRefused('TIMER_DUE_AT_INVALID')
    rules
      .given([])
      .when(schedule({ command: { type: '', data: {} } }))
      .thenRefused('TIMER_COMMAND_INVALID')
    rules
      .given([])
      .when(schedule({ command: { type: 'x'.repeat(101), data: {} } }))
      .thenRefused('TIMER_COMMAND_INVALID')
  })

  it('a due timer fires with its command, when it was due and when it fired', () =>
    rules.given([scheduled]).when(fire()).then([fired]))

  it('a timer fires exactly at its due time, not before', () => {
    rules
      .given([scheduled])
      .when(fire(dueAt))
      .then([{ ...fired, data: { ...fired.data, at: dueAt } }])
    rules.given([scheduled]).when(fire('2026-12-02T10:01:59.999Z')).thenRefused('TIMER_NOT_DUE')
  })

  it('a fired timer does not fire again (the runner that lost the race appends nothing)', () =>
    rules.given([scheduled, fired]).when(fire()).then([]))

  it('a cancelled timer never fires', () => rules.given([scheduled, cancelled]).when(fire()).then([]))

  it('an unknown timer does not fire', () => rules.given([]).when(fire()).then([]))

  it('a scheduled timer is cancelled', () => rules.given([scheduled]).when(cancel()).then([cancelled]))

  it('cancelling a fired, cancelled or unknown timer decides nothing', () => {
    rules.given([scheduled, fired]).when(cancel()).then([])
    rules.given([scheduled, cancelled]).when(cancel()).then([])
    rules.given([]).when(cancel()).then([])
  })

  it('its state follows the first of fired or cancelled', () => {
    expect(fold(timer, [scheduled, fired, cancelled])).toMatchObject({ status: 'fired' })
    expect(fold(timer, [scheduled, cancelled, fired])).toMatchObject({ status: 'cancelled' })
    expect(fold(timer, [fired])).toEqual({ status: 'none' })
  })
})
