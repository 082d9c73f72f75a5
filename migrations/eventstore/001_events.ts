import { type Kysely, sql } from 'kysely'

/*
 * Why the transaction id: positions come from a sequence at insert time, but transactions commit out
 * of order. Readers only see rows whose transaction is older than every transaction still in flight
 * (pg_snapshot_xmin) and order by (transaction_id, global_position), so a late commit is never skipped.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    create table eventstore.streams (
      stream_name text primary key,
      revision bigint not null
    );

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
    create unique index events_stream on eventstore.events (stream_name, stream_revision);
    create index events_all_order on eventstore.events (transaction_id, global_position);
    create index events_tenant on eventstore.events (tenant_id, global_position) where tenant_id is not null;

    -- One round trip per append: idempotency, the four expected-revision modes and the insert.
    -- p_expected: >= 0 exact revision, -1 no_stream, -2 any, -3 stream_exists.
    create function eventstore.append(p_stream text, p_expected bigint, p_events jsonb, p_tenant uuid)
    returns table (next_revision bigint, commit_position text, global_position bigint, duplicate boolean)
    language plpgsql as $fn$
    declare
      v_count int := jsonb_array_length(p_events);
      v_next bigint;
      v_actual bigint;
      v_found int;
      v_last_id uuid := (p_events -> (v_count - 1) ->> 'id')::uuid;
    begin
      -- An idempotent retry: every id already stands in this stream; answer as the first time.
      if exists (select 1 from eventstore.events e where e.event_id = (p_events -> 0 ->> 'id')::uuid) then
        select count(*) into v_found from eventstore.events e
          where e.event_id in (select (x ->> 'id')::uuid from jsonb_array_elements(p_events) x)
            and e.stream_name = p_stream;
        if v_found <> v_count then
          raise exception 'some of these event ids were already appended' using errcode = 'ES422';
        end if;
        return query select e.stream_revision, e.transaction_id::text, e.global_position, true
          from eventstore.events e where e.event_id = v_last_id;
        return;
      end if;

      if p_expected = -1 then
        insert into eventstore.streams as s values (p_stream, v_count - 1)
          on conflict (stream_name) do nothing returning s.revision into v_next;
      elsif p_expected = -2 then
        insert into eventstore.streams as s values (p_stream, v_count - 1)
          on conflict (stream_name) do update set revision = s.revision + v_count returning s.revision into v_next;
      elsif p_expected = -3 then
        update eventstore.streams s set revision = s.revision + v_count
          where s.stream_name = p_stream returning s.revision into v_next;
      else
        update eventstore.streams s set revision = s.revision + v_count
          where s.stream_name = p_stream and s.revision = p_expected returning s.revision into v_next;
      end if;

      if v_next is null then
        select s.revision into v_actual from eventstore.streams s where s.stream_name = p_stream;
        raise exception 'wrong expected revision' using errcode = 'ES409', detail = coalesce(v_actual::text, 'no_stream');
      end if;

      return query
        with inserted as (
          insert into eventstore.events as e (event_id, stream_name, stream_revision, event_type, data, metadata, tenant_id)
          select (x ->> 'id')::uuid, p_stream, v_next - v_count + n, x ->> 'type', x -> 'data', x -> 'metadata', p_tenant
            from jsonb_array_elements(p_events) with ordinality as t(x, n)
          returning e.stream_revision, e.transaction_id, e.global_position
        )
        select i.stream_revision, i.transaction_id::text, i.global_position, false
          from inserted i order by i.global_position desc limit 1;
    end
    $fn$;
  `.execute(db)
}
