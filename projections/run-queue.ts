import { sql } from 'kysely'
import { AGENT_RUNS_CHANNEL, type RunEvent } from '../domain/runs.ts'
import type { Projector } from './engine.ts'
import { rowProjector, type TableModel } from './rows.ts'

/** A row of control.agent_run_queue: a run not finished yet, as every worker looks for work. */
export type RunQueueRow = {
  readonly run_id: string
  readonly agent_id: string
  readonly status: 'queued' | 'in_progress' | 'requires_action'
  /** While a worker holds it; a run past its lease (its worker died) is claimable again. */
  readonly lease_until: string | null
  readonly queued_at: string
}

/** A run's row while it is not finished: workers claim the queued, the released and those whose lease lapsed. */
export const runQueueRows: TableModel<RunEvent, RunQueueRow> = {
  table: 'agent_run_queue',
  columns: ['run_id', 'agent_id', 'status', 'lease_until', 'queued_at'],
  key: ['run_id'],
  tenantColumn: 'org_id',
  refsOf: (e) => [{ run_id: e.data.runId }],
  evolve(row, e) {
    switch (e.type) {
      case 'run.queued':
        return (
          row ?? { run_id: e.data.runId, agent_id: e.data.agentId, status: 'queued', lease_until: null, queued_at: e.data.at }
        )
      case 'run.claimed':
        return row && { ...row, status: 'in_progress', lease_until: e.data.leaseUntil }
      case 'run.lease_renewed':
        return row && { ...row, lease_until: e.data.leaseUntil }
      case 'run.action_required':
        return row && { ...row, status: 'requires_action', lease_until: null }
      case 'run.action_decided':
        return row && { ...row, status: 'in_progress', lease_until: null }
      case 'run.completed':
      case 'run.failed':
      case 'run.incomplete':
      case 'run.cancelled':
        return null
      default:
        return row
    }
  },
}

const rows = rowProjector<RunEvent>({
  name: 'agent_run_queue',
  version: 1,
  schema: 'control',
  eventTypes: [
    'run.queued',
    'run.claimed',
    'run.lease_renewed',
    'run.action_required',
    'run.action_decided',
    'run.completed',
    'run.failed',
    'run.incomplete',
    'run.cancelled',
  ],
  model: runQueueRows,
})

/** What a worker hears about: a run to claim, or one to stop. */
const NOTIFIED: ReadonlySet<string> = new Set(['run.queued', 'run.action_decided', 'run.cancelled'])

/**
 * control.agent_run_queue, and a notification per run that became claimable or was cancelled (delivered when the
 * batch commits, so a woken worker finds the row): workers claim at once and abort what was cancelled within
 * milliseconds, the poll being only the fallback.
 */
export const runQueueProjector: Projector<RunEvent> = {
  ...rows,
  async apply(trx, events) {
    await rows.apply(trx, events)
    for (const e of events) {
      if (NOTIFIED.has(e.type)) await sql`select pg_notify(${AGENT_RUNS_CHANNEL}, ${`${e.type}:${e.data.runId}`})`.execute(trx)
    }
  },
}
