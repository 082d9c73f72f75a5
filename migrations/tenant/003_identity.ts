import { type Kysely, sql } from 'kysely'
import { tenantTable } from '../shared.ts'

export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    create table tenant.users (
      tenant_id uuid not null,
      id uuid not null,
      account_id uuid,
      type text not null,
      username text,
      display_name text not null,
      email text,
      role text not null,
      status text not null,
      created_at timestamptz not null,
      updated_at timestamptz not null,
      primary key (tenant_id, id)
    );
    create unique index users_username on tenant.users (tenant_id, username) where username is not null;
    create index users_account on tenant.users (tenant_id, account_id);
    create table tenant.invites (
      tenant_id uuid not null,
      id uuid not null,
      email text not null,
      role text not null,
      status text not null,
      invited_by uuid not null,
      expires_at timestamptz not null,
      created_at timestamptz not null,
      primary key (tenant_id, id)
    );
  `.execute(db)
  await tenantTable(db, 'users')
  await tenantTable(db, 'invites')
}
