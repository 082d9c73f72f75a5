import { sql } from 'kysely'
import { TIMERS_CHANNEL, type TimerEvent } from '../domain/timers.ts'
import type { Projector } from './engine.ts'
import { type RowModel, rowProjector } from './rows.ts'

/** A row of control.timers. */
export type TimerRow = {
  readonly timer_id: string
  readonly org_id: string | null
  readonly due_at: string
  /** The command as JSON: with the rest of the row, what the timer's timer.scheduled says. */
  readonly command: string
  readonly status: 'scheduled' | 'fired' | 'cancelled'
  readonly scheduled_at: string
  readonly fired_at: string | null
  readonly cancelled_at: string | null
}

/** A timer's row: scheduled once (a repeat keeps the first), then fired or cancelled, whichever came first. */
export const timerRows: RowModel<TimerEvent, TimerRow> = {
  table: 'timers',
  columns: ['timer_id', 'org_id', 'due_at', 'command', 'status', 'scheduled_at', 'fired_at', 'cancelled_at'],
  key: 'timer_id',
  keyOf: (e) => e.data.timerId,
  evolve(row, e) {
    switch (e.type) {
      case 'timer.scheduled':
        return (
          row ?? {
            timer_id: e.data.timerId,
            org_id: e.data.tenantId,
            due_at: e.data.dueAt,
            command: JSON.stringify(e.data.command),
            status: 'scheduled',
            scheduled_at: e.data.at,
            fired_at: null,
            cancelled_at: null,
          }
        )
      case 'timer.fired':
        return row?.status === 'scheduled' ? { ...row, status: 'fired', fired_at: e.data.at } : row
      case 'timer.cancelled':
        return row?.status === 'scheduled' ? { ...row, status: 'cancelled', cancelled_at: e.data.at } : row
    }
  },
}

const rows = rowProjector<TimerEvent>({
  name: 'timers',
  version: 1,
  schema: 'control',
  eventTypes: ['timer.scheduled', 'timer.fired', 'timer.cancelled'],
  model: timerRows,
})

/**
 * control.timers: the timers the runner polls for due ones. A batch that scheduled timers also notifies
 * TIMERS_CHANNEL (delivered when it commits, so a woken runner finds the rows): a timer due at once, scheduled by
 * another process, fires without waiting for the runner's next poll. A rebuild's notification only wakes a runner early.
 */
export const timersProjector: Projector<TimerEvent> = {
  ...rows,
  async apply(trx, events) {
    await rows.apply(trx, events)
    let earliest: string | null = null
    for (const e of events)
      if (e.type === 'timer.scheduled' && (earliest === null || e.data.dueAt < earliest)) earliest = e.data.dueAt
    if (earliest !== null) await sql`select pg_notify(${TIMERS_CHANNEL}, ${earliest})`.execute(trx)
  },
}
