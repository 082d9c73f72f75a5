import { type Kysely, sql } from 'kysely'

/*
 * Appends that decided on other streams (a post reads its room) carry conditions on them, checked in the
 * same transaction as the insert.
 *
 * Why locks, and why before the transaction id: a check reads only what has committed, so without a lock a
 * room archived by a transaction still in flight passes the check, and whichever transaction took the lower id
 * sorts first in the global order, whatever committed first. Every append therefore takes an exclusive advisory
 * lock on its own stream and a shared one on each stream it is conditioned on, in one order of keys (no
 * deadlock between two appends), and only then takes its transaction id. A post that passed its check holds
 * the room's shared lock until it commits, so the archive waits and sorts after it; an archive in flight makes
 * the post wait, then see the moved revision. Posts into one room share their lock and never wait on each
 * other.
 *
 * The exclusive lock also serialises appends to one stream: the second reads the revision the first
 * committed, so 'stream_exists' and 'any' never lose a race on the unique (stream, revision) index.
 *
 * The caller must not have taken a transaction id before the call (the adapter calls it on its own).
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    drop function eventstore.append(text, bigint, jsonb, uuid);

    -- p_expected: >= 0 exact revision, -1 no_stream, -2 any, -3 stream_exists.
    -- p_conditions: [{"stream": "...", "expected": <same codes>}] or null.
    create function eventstore.append(p_stream text, p_expected bigint, p_events jsonb, p_tenant uuid,
                                      p_conditions jsonb default null)
    returns table (next_revision bigint, commit_position text, global_position bigint, duplicate boolean)
    language plpgsql as $fn$
    declare
      v_xid xid8;
      v_count int;
      v_actual bigint;
      v_found int;
      v_condition record;
      v_lock record;
    begin
      if p_conditions is null then
        perform pg_advisory_xact_lock(hashtextextended(p_stream, 0));
      else
        for v_lock in
          select hashtextextended(s.stream, 0) as key, bool_or(s.exclusive) as exclusive
            from (
              select p_stream as stream, true as exclusive
              union all
              select c ->> 'stream', false from jsonb_array_elements(p_conditions) c
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
      end if;

      -- Taken after the locks: a transaction that waited for another sorts after it.
      v_xid := pg_current_xact_id();

      -- An idempotent retry answers as the first time, whatever its conditions' streams did since.
      for v_condition in
        select c ->> 'stream' as stream, (c ->> 'expected')::bigint as expected,
               (select e.stream_revision from eventstore.events e
                 where e.stream_name = c ->> 'stream' order by e.stream_revision desc limit 1) as revision
          from jsonb_array_elements(coalesce(p_conditions, '[]'::jsonb)) c
         where not exists (select 1 from eventstore.events e where e.event_id = (p_events -> 0 ->> 'id')::uuid)
      loop
        if not (v_condition.expected = -2
                or (v_condition.expected = -1 and v_condition.revision is null)
                or (v_condition.expected = -3 and v_condition.revision is not null)
                or v_condition.revision is not distinct from v_condition.expected) then
          raise exception 'wrong expected revision of a condition' using errcode = 'ES409',
            detail = coalesce(v_condition.revision::text, 'no_stream'), hint = v_condition.stream;
        end if;
      end loop;

      return query
        with head as (
          select
            (select e.stream_revision from eventstore.events e
              where e.stream_name = p_stream order by e.stream_revision desc limit 1) as revision,
            exists (select 1 from eventstore.events e where e.event_id = (p_events -> 0 ->> 'id')::uuid) as seen
        ),
        inserted as (
          insert into eventstore.events as e (event_id, stream_name, stream_revision, event_type, data, metadata, tenant_id)
          select (x ->> 'id')::uuid, p_stream, coalesce(h.revision, -1) + t.n, x ->> 'type', x -> 'data', x -> 'metadata', p_tenant
            from head h, jsonb_array_elements(p_events) with ordinality as t(x, n)
            where not h.seen
              and case p_expected
                    when -2 then true
                    when -1 then h.revision is null
                    when -3 then h.revision is not null
                    else h.revision = p_expected
                  end
          returning e.stream_revision, e.transaction_id, e.global_position
        )
        select i.stream_revision, i.transaction_id::text, i.global_position, false
          from inserted i order by i.global_position desc limit 1;
      if found then
        return;
      end if;

      v_count := jsonb_array_length(p_events);
      -- An idempotent retry: every id already stands in this stream; answer as the first time.
      if exists (select 1 from eventstore.events e where e.event_id = (p_events -> 0 ->> 'id')::uuid) then
        select count(*) into v_found from eventstore.events e
          where e.event_id in (select (x ->> 'id')::uuid from jsonb_array_elements(p_events) x)
            and e.stream_name = p_stream;
        if v_found <> v_count then
          raise exception 'some of these event ids were already appended' using errcode = 'ES422';
        end if;
        return query select e.stream_revision, e.transaction_id::text, e.global_position, true
          from eventstore.events e where e.event_id = (p_events -> (v_count - 1) ->> 'id')::uuid;
        return;
      end if;

      select e.stream_revision into v_actual from eventstore.events e
        where e.stream_name = p_stream order by e.stream_revision desc limit 1;
      raise exception 'wrong expected revision' using errcode = 'ES409', detail = coalesce(v_actual::text, 'no_stream'),
        hint = p_stream;
    end
    $fn$;
  `.execute(db)
}
