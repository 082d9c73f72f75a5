import { type Kysely, sql } from 'kysely'

/*
 * Group commit: appends that queued in one process go to Postgres as one call, one transaction and one commit
 * (one WAL flush, one transaction id) instead of one each.
 *
 * Every member keeps the semantics of an append of its own: it runs eventstore.append (002) in a block of its
 * own (a subtransaction), so a wrong expected revision, a partial idempotent retry or any other error rolls back
 * that member alone and comes back as its row; the others commit.
 *
 * Why every member's locks first, in the one order of keys, and only then the transaction id (taken by the
 * first member's append): that is 002's rule for one append, and it must hold for the group as a whole. A
 * member that took a lock after the group's transaction id would sort before a transaction it waited for, and
 * two groups locking member by member could deadlock each other. Locks are taken once per key; the members'
 * own calls take them again, which a transaction that holds them does without waiting.
 *
 * Members run in order and see each other's rows: two members on one stream get consecutive revisions, and a
 * member repeating an earlier member's event ids is an idempotent retry of it.
 *
 * p_appends: [{"stream", "expected" (002's codes), "events", "tenant", "conditions" (002's, or null)}].
 * One row per member, in order (ordinal from 1): the result, or the error's code, message, detail, hint and
 * constraint. At most 64 members that write (Postgres keeps 64 subtransactions per backend in shared memory).
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    create function eventstore.append_group(p_appends jsonb)
    returns table (ordinal bigint, next_revision bigint, commit_position text, global_position bigint,
                   error_code text, error_message text, error_detail text, error_hint text, error_constraint text)
    language plpgsql as $fn$
    declare
      v_lock record;
      v_append record;
      v_result record;
    begin
      for v_lock in
        select hashtextextended(s.stream, 0) as key, bool_or(s.exclusive) as exclusive
          from (
            select a ->> 'stream' as stream, true as exclusive from jsonb_array_elements(p_appends) a
            union all
            select c ->> 'stream', false
              from jsonb_array_elements(p_appends) a,
                   jsonb_array_elements(case jsonb_typeof(a -> 'conditions') when 'array' then a -> 'conditions'
                                        else '[]'::jsonb end) c
          ) s
         group by 1
         order by 1
      loop
        if v_lock.exclusive then
          perform pg_advisory_xact_lock(v_lock.key);
        else
          perform pg_advisory_xact_lock_shared(v_lock.key);
        end if;
      end loop;

      for v_append in select t.a, t.n from jsonb_array_elements(p_appends) with ordinality as t(a, n) loop
        ordinal := v_append.n;
        begin
          select r.next_revision, r.commit_position, r.global_position into strict v_result
            from eventstore.append(v_append.a ->> 'stream', (v_append.a ->> 'expected')::bigint, v_append.a -> 'events',
                                   (v_append.a ->> 'tenant')::uuid,
                                   case jsonb_typeof(v_append.a -> 'conditions') when 'array' then v_append.a -> 'conditions'
                                   end) r;
          next_revision := v_result.next_revision;
          commit_position := v_result.commit_position;
          global_position := v_result.global_position;
          error_code := null;
          error_message := null;
          error_detail := null;
          error_hint := null;
          error_constraint := null;
        exception when others then
          get stacked diagnostics error_code = returned_sqlstate, error_message = message_text,
            error_detail = pg_exception_detail, error_hint = pg_exception_hint, error_constraint = constraint_name;
          next_revision := null;
          commit_position := null;
          global_position := null;
        end;
        return next;
      end loop;
    end
    $fn$;
  `.execute(db)
}
