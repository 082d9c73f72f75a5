import { type Kysely, sql } from 'kysely'
import { tenantTable } from '../shared.ts'

/**
 * The realtime fan-out projector's own view of who may read what, kept in event order so that each event
 * reaches the users who could read it at that event's position (not at the time it is delivered).
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    create table tenant.fanout_users (
      tenant_id uuid not null,
      user_id uuid not null,
      role text not null,
      active boolean not null,
      primary key (tenant_id, user_id)
    );
    create table tenant.fanout_rooms (
      tenant_id uuid not null,
      room_id uuid not null,
      visibility text not null,
      kind text not null,
      primary key (tenant_id, room_id)
    );
    create table tenant.fanout_members (
      tenant_id uuid not null,
      room_id uuid not null,
      user_id uuid not null,
      primary key (tenant_id, room_id, user_id)
    );
    create table tenant.fanout_spaces (
      tenant_id uuid not null,
      space_id uuid not null,
      kind text not null,
      owner_id uuid not null,
      primary key (tenant_id, space_id)
    );
  `.execute(db)
  for (const t of ['fanout_users', 'fanout_rooms', 'fanout_members', 'fanout_spaces']) await tenantTable(db, t)
}
