import { sql } from 'kysely'
import type { AnyDb } from '../../adapters/postgres.ts'
import type { DomainEvent } from '../../domain/decider.ts'
import type { Projector } from '../../projections/engine.ts'

/** Tables for the crash test: one row per event, and a counter per stream that a double apply would inflate. */
export async function createCrashTables(db: AnyDb, table: string) {
  await sql`create table if not exists ${sql.id('tenant', table)} (
    tenant_id uuid not null, stream text not null, events int not null, last_n int not null,
    primary key (tenant_id, stream))`.execute(db)
  await sql`create table if not exists ${sql.id('tenant', `${table}_log`)} (
    tenant_id uuid not null, event_id uuid not null, n int not null, primary key (tenant_id, event_id))`.execute(db)
  for (const t of [table, `${table}_log`]) {
    await sql`alter table ${sql.id('tenant', t)} enable row level security`.execute(db)
    await sql`alter table ${sql.id('tenant', t)} force row level security`.execute(db)
    await sql`drop policy if exists iso on ${sql.id('tenant', t)}`.execute(db)
    await sql`create policy iso on ${sql.id('tenant', t)}
      using (tenant_id = (select nullif(current_setting('app.tenant_id', true), '')::uuid))
      with check (tenant_id = (select nullif(current_setting('app.tenant_id', true), '')::uuid))`.execute(db)
    await sql`grant select, insert, update, delete on ${sql.id('tenant', t)} to ws_projector`.execute(db)
  }
}

export const crashProjector = (
  name: string,
  table: string,
  delayMs = 0,
): Projector<DomainEvent<'counter.incremented', { n: number }>> => ({
  name,
  version: 1,
  schema: 'tenant',
  tables: [table, `${table}_log`],
  eventTypes: ['counter.incremented'],
  async apply(trx, events) {
    for (const e of events) {
      const { n } = e.data
      const tenantId = e.metadata.tenantId!
      await trx.insertInto(`tenant.${table}_log`).values({ tenant_id: tenantId, event_id: e.id, n }).execute()
      await sql`insert into ${sql.id('tenant', table)} as t (tenant_id, stream, events, last_n)
                values (${tenantId}, ${e.streamName}, 1, ${n})
                on conflict (tenant_id, stream) do update set events = t.events + 1, last_n = excluded.last_n`.execute(trx)
      if (delayMs) await new Promise((r) => setTimeout(r, delayMs))
    }
  },
})
