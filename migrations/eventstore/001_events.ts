import { type Kysely, sql } from 'kysely'

/*
 * Why the transaction id: positions come from a sequence at insert time, but transactions commit out
 * of order. Readers only see rows whose transaction is older than every transaction still in flight
 * (pg_snapshot_xmin) and order by (transaction_id, global_position), so a late commit is never skipped.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    create table eventstore.events (
      global_position bigint generated always as identity primary key,
      transaction_id xid8 not null default pg_current_xact_id(),
      event_id uuid not null,
      stream_name text not null,
      stream_revision bigint not null,
      event_type text not null,
      data jsonb not null,
      metadata jsonb not null,
      tenant_id uuid,
      recorded_at timestamptz not null default now()
    );

    create unique index events_event_id on eventstore.events (event_id);
    -- A stream's revision is its newest event's: no stream table to update (a hot row, written twice per
    -- append). This unique index is what refuses the loser of two appends that read the same revision.
    create unique index events_stream on eventstore.events (stream_name, stream_revision);
    create index events_all_order on eventstore.events (transaction_id, global_position);
    create index events_tenant on eventstore.events (tenant_id, global_position) where tenant_id is not null;

    -- One round trip per append: idempotency, the four expected-revision modes and the insert.
    -- p_expected: >= 0 exact revision, -1 no_stream, -2 any, -3 stream_exists.
    -- The happy path is one statement: the stream's revision (its newest event's), the idempotency probe,
    -- the check and the insert. Only when it inserts nothing does the function look at why.
    -- Concurrent appends that read the same revision both try to insert its successor: events_stream lets
    -- one through and fails the other with a unique violation (23505), which the adapter reports as a
    -- wrong expected revision (or, under 'any', which rarely meets it, retries).
    create function eventstore.append(p_stream text, p_expected bigint, p_events jsonb, p_tenant uuid)
    returns table (next_revision bigint, commit_position text, global_position bigint, duplicate boolean)
    language plpgsql as $fn$
    declare
      -- The transaction id is taken on entry, the position only at the insert: appends interleave in
      -- between, so positions do not follow transaction order (readers order by both, and never pass the
      -- oldest transaction in flight), and a conflict or an idempotent answer is a transaction like any.
      v_xid xid8 := pg_current_xact_id();
      v_count int;
      v_actual bigint;
      v_found int;
    begin
      -- 'any' appends to one stream queue up here (until commit) rather than collide on events_stream and
      -- retry: the statement below then reads the revision the previous one committed.
      if p_expected = -2 then
        perform pg_advisory_xact_lock(hashtextextended(p_stream, 0));
      end if;

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
      raise exception 'wrong expected revision' using errcode = 'ES409', detail = coalesce(v_actual::text, 'no_stream');
    end
    $fn$;
  `.execute(db)
}
