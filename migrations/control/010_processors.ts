import { type Kysely, sql } from 'kysely'
import { ROLES } from '../shared.ts'

/*
 * The processors' runtime state, kept by the app's login (no tenant data; the reader and projector roles never
 * need it). A checkpoint per processor version and partition ('*' for a processor not partitioned, 'k/n' for
 * the k-th of n tenant partitions), moved after the effects. A lease per processor and partition: its holder,
 * until when (by the database's clock), and a generation raised at each take-over, which fences the checkpoint.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    create table control.processor_checkpoints (
      name text not null,
      version int not null,
      partition text not null,
      commit_position xid8 not null,
      prepare_position bigint not null,
      updated_at timestamptz not null default now(),
      primary key (name, version, partition)
    )`.execute(db)
  await sql`
    create table control.processor_leases (
      name text not null,
      partition text not null,
      holder text,
      generation bigint not null,
      expires_at timestamptz not null,
      primary key (name, partition)
    )`.execute(db)
  await sql`grant select, insert, update, delete on control.processor_checkpoints, control.processor_leases
              to ${sql.id(ROLES.app)}`.execute(db)
}
