import { type Kysely, sql } from 'kysely'
import { ROLES } from '../adapters/postgres-roles.ts'

export { ROLES } from '../adapters/postgres-roles.ts'

export async function createRoles(db: Kysely<unknown>): Promise<void> {
  for (const role of [ROLES.reader, ROLES.projector]) {
    await sql`
      do $$ begin
        if not exists (select from pg_roles where rolname = ${sql.lit(role)}) then
          create role ${sql.id(role)} nologin nobypassrls;
        end if;
      end $$`.execute(db)
    // Tools run by operators (rebuild, project, seed) log in as the owner and switch like the app does.
    await sql`grant ${sql.id(role)} to current_user`.execute(db)
  }
  // NOINHERIT: outside a transaction that switched role, the login has only what is granted to it by name
  // (the event store, the control tables it keeps, realtime), so RESET ROLE lands on a role that reads no
  // tenant table. It never owns anything, so FORCE'd row-level security binds it like the roles it switches to.
  await sql`
    do $$ begin
      if not exists (select from pg_roles where rolname = ${sql.lit(ROLES.app)}) then
        create role ${sql.id(ROLES.app)} login noinherit nosuperuser nobypassrls nocreaterole nocreatedb noreplication;
      end if;
    end $$`.execute(db)
  await sql`grant ${sql.id(ROLES.reader)}, ${sql.id(ROLES.projector)} to ${sql.id(ROLES.app)}`.execute(db)
}

/** A projector's checkpoint lives beside its read model so both commit in one transaction. */
export async function createCheckpointTable(db: Kysely<unknown>, schema: string): Promise<void> {
  await sql`
    create table ${sql.id(schema, 'projection_checkpoints')} (
      name text not null,
      version int not null,
      commit_position xid8 not null,
      prepare_position bigint not null,
      status text not null default 'live',
      updated_at timestamptz not null default now(),
      primary key (name, version)
    )`.execute(db)
  await sql`grant usage on schema ${sql.id(schema)} to ${sql.id(ROLES.reader)}, ${sql.id(ROLES.projector)}`.execute(db)
  await sql`grant select on ${sql.id(schema, 'projection_checkpoints')} to ${sql.id(ROLES.reader)}`.execute(db)
  await sql`grant select, insert, update, delete on ${sql.id(schema, 'projection_checkpoints')} to ${sql.id(ROLES.projector)}`.execute(
    db,
  )
  await grantCheckpointsToApp(db, schema)
}

/** Consistency waits, metrics and the engine read checkpoints outside a projector's transaction; the engine adds a missing one. */
export async function grantCheckpointsToApp(db: Kysely<unknown>, schema: string): Promise<void> {
  await sql`grant usage on schema ${sql.id(schema)} to ${sql.id(ROLES.app)}`.execute(db)
  await sql`grant select, insert on ${sql.id(schema, 'projection_checkpoints')} to ${sql.id(ROLES.app)}`.execute(db)
}

/**
 * Every tenant table: RLS enabled and forced, one policy comparing tenant_id with the transaction's
 * app.tenant_id (unset or reset matches nothing), readers may only select, projectors write.
 */
export async function tenantTable(db: Kysely<unknown>, table: string): Promise<void> {
  const t = sql.id('tenant', table)
  await sql`alter table ${t} enable row level security`.execute(db)
  await sql`alter table ${t} force row level security`.execute(db)
  await sql`
    create policy tenant_isolation on ${t}
      using (tenant_id = (select nullif(current_setting('app.tenant_id', true), '')::uuid))
      with check (tenant_id = (select nullif(current_setting('app.tenant_id', true), '')::uuid))`.execute(db)
  await sql`grant select on ${t} to ${sql.id(ROLES.reader)}`.execute(db)
  await sql`grant select, insert, update, delete on ${t} to ${sql.id(ROLES.projector)}`.execute(db)
}

/** A control-plane table: no tenant rows, read by the API and written by projectors. */
export async function controlTable(db: Kysely<unknown>, table: string): Promise<void> {
  const t = sql.id('control', table)
  await sql`grant select on ${t} to ${sql.id(ROLES.reader)}`.execute(db)
  await sql`grant select, insert, update, delete on ${t} to ${sql.id(ROLES.projector)}`.execute(db)
}
