import { type Kysely, sql } from 'kysely'
import { tenantTable } from '../shared.ts'

export async function up(db: Kysely<unknown>): Promise<void> {
  // btree_gin lets the full-text index lead with tenant_id like every other tenant index.
  await sql`create extension if not exists btree_gin`.execute(db)
  await sql`
    create table tenant.spaces (
      tenant_id uuid not null,
      id uuid not null,
      name text not null,
      kind text not null,
      owner_id uuid not null,
      created_at timestamptz not null,
      updated_at timestamptz not null,
      primary key (tenant_id, id)
    );
    create table tenant.rooms (
      tenant_id uuid not null,
      id uuid not null,
      name text not null,
      description text not null default '',
      space_id uuid,
      visibility text not null,
      kind text not null,
      created_by uuid not null,
      archived boolean not null default false,
      created_at timestamptz not null,
      updated_at timestamptz not null,
      primary key (tenant_id, id)
    );
    create index rooms_space on tenant.rooms (tenant_id, space_id);
    create table tenant.room_members (
      tenant_id uuid not null,
      room_id uuid not null,
      member_id uuid not null,
      member_type text not null,
      joined_at timestamptz not null,
      primary key (tenant_id, room_id, member_id)
    );
    create index room_members_member on tenant.room_members (tenant_id, member_id);
    create table tenant.messages (
      tenant_id uuid not null,
      id uuid not null,
      room_id uuid not null,
      seq bigint not null,
      author_id uuid not null,
      author_type text not null,
      text text not null,
      thread_root_id uuid,
      reply_count int not null default 0,
      mentions jsonb not null default '[]',
      reactions jsonb not null default '{}',
      created_at timestamptz not null,
      edited_at timestamptz,
      deleted_at timestamptz,
      position bigint not null,
      search tsvector generated always as (to_tsvector('simple', text)) stored,
      primary key (tenant_id, id)
    );
    create unique index messages_timeline on tenant.messages (tenant_id, room_id, seq);
    create index messages_thread on tenant.messages (tenant_id, thread_root_id, seq) where thread_root_id is not null;
    create index messages_search on tenant.messages using gin (tenant_id, search);
    create table tenant.message_edits (
      tenant_id uuid not null,
      message_id uuid not null,
      version int not null,
      text text not null,
      replaced_at timestamptz not null,
      primary key (tenant_id, message_id, version)
    );
    create table tenant.room_reads (
      tenant_id uuid not null,
      room_id uuid not null,
      user_id uuid not null,
      message_id uuid not null,
      seq bigint not null,
      primary key (tenant_id, room_id, user_id)
    );
    create index room_reads_user on tenant.room_reads (tenant_id, user_id);
    create table tenant.drafts (
      tenant_id uuid not null,
      room_id uuid not null,
      user_id uuid not null,
      text text not null,
      updated_at timestamptz not null,
      primary key (tenant_id, room_id, user_id)
    );
  `.execute(db)
  for (const t of ['spaces', 'rooms', 'room_members', 'messages', 'message_edits', 'room_reads', 'drafts']) {
    await tenantTable(db, t)
  }
}
