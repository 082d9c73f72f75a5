import { sql } from 'kysely'
import type { AnyDb } from '../../adapters/postgres.ts'
import type { DomainEvent } from '../../domain/decider.ts'
import type { Processor } from '../../processors/processor.ts'

export type ProbeEvent = DomainEvent<'probe.happened', { n: number; run: string }>

/** The probe's effect table: one row per effect id (ctx.idFor), and how many times the effect was attempted. */
export async function createEffectTable(db: AnyDb): Promise<void> {
  await sql`create table if not exists public.processor_effects (
    effect_id uuid primary key, event_id uuid not null, n int not null, tenant_id uuid, holder text not null,
    attempts int not null default 1)`.execute(db)
  await sql`grant select, insert, update, delete on public.processor_effects to ws_app`.execute(db)
}

/**
 * A processor whose effect is a row keyed by ctx.idFor('effect'): a repeat of the event finds it and only counts
 * the attempt, so the table shows both that each effect happened once and that it was attempted again.
 */
export function effectProbe(o: {
  name: string
  /** The test run whose probes it acts on: the event store is shared by the tests of a file. */
  run: string
  partitionBy?: 'none' | 'tenant'
  holder: string
  db: AnyDb
  /** Throws to fail the event (a poison), or waits (an effect in flight). */
  beforeEffect?: (n: number, signal: AbortSignal) => Promise<void>
  afterEffect?: (n: number) => Promise<void>
}): Processor<ProbeEvent> {
  return {
    name: o.name,
    version: 1,
    eventTypes: ['probe.happened'],
    partitionBy: o.partitionBy ?? 'none',
    async handle(event, ctx) {
      const { n, run } = event.data
      if (run !== o.run) return
      await o.beforeEffect?.(n, ctx.signal)
      await sql`insert into public.processor_effects as e (effect_id, event_id, n, tenant_id, holder)
                values (${ctx.idFor('effect')}, ${event.id}, ${n}, ${event.metadata.tenantId}, ${o.holder})
                on conflict (effect_id) do update set attempts = e.attempts + 1`.execute(o.db)
      await o.afterEffect?.(n)
    },
  }
}
