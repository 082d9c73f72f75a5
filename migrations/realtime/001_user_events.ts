import { type Kysely, sql } from 'kysely'

/*
 * The realtime port on Postgres (used when REDIS_URL is unset): one stream of events per user, the
 * queues long-polling clients hold, and wakeups by NOTIFY realtime_wake, '<userId>'.
 *
 * An entry's id is its global position (commit, prepare). Appends lock the user's head row, so a user's
 * entries commit in id order and a reader never skips one that commits late; an id at or below the
 * head is refused as already delivered (a replayed batch adds nothing).
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    create table realtime.user_heads (
      user_id text primary key,
      last_commit bigint not null default 0,
      last_prepare bigint not null default 0,
      -- The newest id trimmed away: a reader standing before it missed events.
      trimmed_commit bigint not null default 0,
      trimmed_prepare bigint not null default 0,
      entries int not null default 0
    );

    create table realtime.user_events (
      user_id text not null,
      commit_position bigint not null,
      prepare_position bigint not null,
      type text not null,
      position bigint not null,
      occurred_at timestamptz not null,
      data jsonb not null,
      primary key (user_id, commit_position, prepare_position)
    );

    create table realtime.event_queues (
      queue_id uuid primary key,
      user_id text not null,
      event_types text[],
      last_acked_id text not null,
      last_seen_at timestamptz not null default now()
    );
    create index event_queues_last_seen on realtime.event_queues (last_seen_at);

    -- One round trip per batch. p_entries: [{u, c, p, t, n, o, d}], each user's entries in id order.
    -- Trims a user's stream to p_max_len once it holds a tenth more; notifies each user that grew.
    create function realtime.append(p_entries jsonb, p_max_len int)
    returns table (woken_user text, added int)
    language plpgsql as $fn$
    declare
      v_slack int := greatest(p_max_len / 10, 1);
      r record;
      v_gone int;
      v_tc bigint;
      v_tp bigint;
    begin
      -- Lock every touched head in user order (no deadlock between two batches).
      insert into realtime.user_heads as h (user_id)
        select distinct x ->> 'u' from jsonb_array_elements(p_entries) x order by 1
        on conflict on constraint user_heads_pkey do nothing;
      perform 1 from realtime.user_heads h
        where h.user_id in (select x ->> 'u' from jsonb_array_elements(p_entries) x)
        order by h.user_id for update;

      for r in
        with input as (
          select x ->> 'u' as u, (x ->> 'c')::bigint as c, (x ->> 'p')::bigint as p, x ->> 't' as t,
                 (x ->> 'n')::bigint as n, (x ->> 'o')::timestamptz as o, x -> 'd' as d
            from jsonb_array_elements(p_entries) x
        ),
        inserted as (
          insert into realtime.user_events as e
            (user_id, commit_position, prepare_position, type, position, occurred_at, data)
          select i.u, i.c, i.p, i.t, i.n, i.o, i.d
            from input i join realtime.user_heads h on h.user_id = i.u
           where (i.c, i.p) > (h.last_commit, h.last_prepare)
          on conflict on constraint user_events_pkey do nothing
          returning e.user_id, e.commit_position, e.prepare_position
        ),
        per_user as (
          select distinct on (i.user_id) i.user_id, i.commit_position as c, i.prepare_position as p,
                 count(*) over (partition by i.user_id) as n
            from inserted i
           order by i.user_id, i.commit_position desc, i.prepare_position desc
        )
        update realtime.user_heads h
           set last_commit = pu.c, last_prepare = pu.p, entries = h.entries + pu.n
          from per_user pu
         where h.user_id = pu.user_id
        returning h.user_id as uid, pu.n::int as n, h.entries as entries
      loop
        if r.entries > p_max_len + v_slack then
          with doomed as (
            select e.commit_position, e.prepare_position from realtime.user_events e
             where e.user_id = r.uid
             order by e.commit_position, e.prepare_position
             limit r.entries - p_max_len
          ),
          gone as (
            delete from realtime.user_events e using doomed d
             where e.user_id = r.uid and e.commit_position = d.commit_position
               and e.prepare_position = d.prepare_position
            returning e.commit_position, e.prepare_position
          )
          select count(*) over (), g.commit_position, g.prepare_position into v_gone, v_tc, v_tp
            from gone g order by g.commit_position desc, g.prepare_position desc limit 1;
          update realtime.user_heads h
             set entries = h.entries - coalesce(v_gone, 0),
                 trimmed_commit = coalesce(v_tc, h.trimmed_commit),
                 trimmed_prepare = coalesce(v_tp, h.trimmed_prepare)
           where h.user_id = r.uid;
        end if;
        perform pg_notify('realtime_wake', r.uid);
        woken_user := r.uid;
        added := r.n;
        return next;
      end loop;
    end
    $fn$;
  `.execute(db)
}
