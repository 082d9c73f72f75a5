import { type Kysely, sql } from 'kysely'
import { tenantTable } from '../shared.ts'

/**
 * Artifacts' read model: one row per live artifact (what lists show), and its content once per version (a patch or
 * a report; a file or a link has none). Lists go by room or by task, newest first. Who made or revised one is a
 * user's or an agent's id, or a processor's name: text.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    create table tenant.artifacts (
      tenant_id uuid not null,
      id uuid not null,
      kind text not null,
      title text not null,
      room_id uuid not null,
      task_id uuid,
      run_id uuid,
      file_id uuid,
      url text,
      version int not null,
      created_by text not null,
      created_by_type text not null,
      created_at timestamptz not null,
      updated_at timestamptz not null,
      primary key (tenant_id, id)
    );
    create index artifacts_room on tenant.artifacts (tenant_id, room_id, created_at desc, id desc);
    create index artifacts_task on tenant.artifacts (tenant_id, task_id, created_at desc, id desc) where task_id is not null;
    create index artifacts_newest on tenant.artifacts (tenant_id, created_at desc, id desc);
    create table tenant.artifact_versions (
      tenant_id uuid not null,
      artifact_id uuid not null,
      version int not null,
      content text not null,
      created_by text not null,
      created_at timestamptz not null,
      primary key (tenant_id, artifact_id, version)
    );
  `.execute(db)
  await tenantTable(db, 'artifacts')
  await tenantTable(db, 'artifact_versions')
}
