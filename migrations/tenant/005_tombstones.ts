import { type Kysely, sql } from 'kysely'

/**
 * Tombstones stay dead. Until now an edit or a reaction that raced a delete-range wrote its text back into the
 * deleted message's row (and so into its search entry), and a deleted message kept its edit history. The
 * messages projector no longer does; this brings the live tables to what a rebuild with it gives (a tombstone:
 * no text, mentions, reactions, edited_at or edits; no edits of a message the read model does not hold), and has
 * the database refuse a tombstone with content from now on, whichever writer tries.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  // Forced row-level security hides every tenant's rows from the owner that migrates; the migrations run in one
  // transaction, so no other session sees these tables unforced.
  await sql`
    alter table tenant.messages no force row level security;
    alter table tenant.message_edits no force row level security;
    update tenant.messages set text = '', mentions = '[]', reactions = '{}', edited_at = null
     where deleted_at is not null
       and (text <> '' or mentions <> '[]' or reactions <> '{}' or edited_at is not null);
    delete from tenant.message_edits e
     where not exists (select from tenant.messages m
                        where m.tenant_id = e.tenant_id and m.id = e.message_id and m.deleted_at is null);
    alter table tenant.messages force row level security;
    alter table tenant.message_edits force row level security;
    alter table tenant.messages add constraint messages_tombstone_empty
      check (deleted_at is null or (text = '' and mentions = '[]' and reactions = '{}'));
  `.execute(db)
}
