/*
 * audit_log install script, part 40: tamper-evident seals.
 *
 * seal() cuts time into windows of audit_log.seal_window and chains them:
 *   h(e)     = SHA-256 of the canonical encoding of event e (every column)
 *   content  = SHA-256(h(e1) || h(e2) || ...)   events of the window in event_id order
 *   digest   = SHA-256(previous digest || 'audit_log seal v1|start|end|count' || content)
 * The canonical encoding is the UTF-8 text of a JSON array of the columns,
 * with occurred_at as integer microseconds since 1970-01-01 UTC and inet
 * and jsonb in their text form, so no TimeZone, DateStyle,
 * extra_float_digits or client_encoding setting changes it.  The UTF-8
 * bytes come from _canonical() (restore.c), which works in every server
 * encoding: in a UTF8 database they are the text's own bytes (as in 1.0),
 * and a character without a UTF-8 form (a SQL_ASCII byte that is not
 * UTF-8, say) is written as 0xFF and its own bytes instead of failing.
 * Each seal also keeps the event ids and the first 4 bytes of each h(e),
 * so verify() can name the first bad event of a window.
 *
 * Locking: seal() serialises on an advisory transaction lock (a second
 * caller waits); it only reads audit_log.events and inserts into the seal
 * table.  A window is sealed only when it ended seal_delay ago and no
 * transaction that began before its end and has written anything (holds
 * an xid) is still running, no prepared transaction is waiting (its
 * start is not known), and no event captured before its end is still
 * waiting in the queue for the writer (queue.c).  seal() runs at READ
 * COMMITTED only, and says (a WARNING) what keeps a window that is due
 * open.
 */

-- SHA-256, PostgreSQL's own (the bytes pgcrypto's digest(x, 'sha256') gave
-- 1.0).  Inlined into seal(), verify() and maintain() (no SET clause), so it
-- names nothing a role could replace: pgcrypto's schema is often one a
-- database owner may write to.
CREATE FUNCTION @extschema@._sha256(bytea) RETURNS bytea
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
AS $f$ SELECT pg_catalog.sha256($1) $f$;

/*
 * _canonical(text): the UTF-8 bytes of a text in any server encoding,
 * never an error (see restore.c).
 */
CREATE FUNCTION @extschema@._canonical(text) RETURNS bytea
AS 'MODULE_PATHNAME', 'audit_canonical'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

/*
 * _event_digest(e): SHA-256 of the canonical encoding of one event.
 */
CREATE FUNCTION @extschema@._event_digest(e @extschema@.events) RETURNS bytea
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
    SELECT @extschema@._sha256(@extschema@._canonical(pg_catalog.jsonb_build_array(
        e.event_id, (EXTRACT(epoch FROM e.occurred_at) * 1000000)::bigint,
        e.category, e.event_type, e.status, e.actor, e.actor_type, e.db_user, e.effective_role,
        e.client_addr::text, e.application_name, e.user_agent, e.tenant, e.request_id,
        e.database, e.object_type, e.object_name, e.resource_id, e.command,
        e.old_data, e.new_data, e.statement, e.details, e.txid, e.backend_pid)::text))
$$;

/*
 * _seal_digest(prev, start, end, events, content): the chained digest of
 * one window.
 */
CREATE FUNCTION @extschema@._seal_digest(prev bytea, ws timestamptz, we timestamptz, n bigint, content bytea)
RETURNS bytea
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT @extschema@._sha256(coalesce(prev, ''::bytea)
        || pg_catalog.convert_to('audit_log seal v1|' || (EXTRACT(epoch FROM ws) * 1000000)::bigint
              || '|' || (EXTRACT(epoch FROM we) * 1000000)::bigint || '|' || n, 'UTF8')
        || content)
$$;

/*
 * _setting_seconds(name): an audit_log time setting in seconds.
 */
CREATE FUNCTION @extschema@._setting_seconds(name text) RETURNS bigint
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$ SELECT setting::bigint FROM pg_settings WHERE pg_settings.name = _setting_seconds.name $$;

/*
 * _chain_origin(): where the first window starts: the earliest event,
 * rounded down to a multiple of the window since 1970-01-01 UTC.
 */
CREATE FUNCTION @extschema@._chain_origin(wsec bigint) RETURNS timestamptz
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    l record;
    m timestamptz;
    found timestamptz;
    found_hi timestamptz;
BEGIN
    FOR l IN SELECT * FROM @extschema@._leaves() ORDER BY lo LOOP
        EXIT WHEN found_hi IS NOT NULL AND l.lo >= found_hi;
        EXECUTE pg_catalog.format('SELECT min(occurred_at) FROM ONLY %s', l.leaf::regclass) INTO m;
        IF m IS NOT NULL THEN
            found := least(found, m);
            found_hi := l.hi;
        END IF;
    END LOOP;
    -- (an event at +/-infinity is in no window: it cannot hold the chain back)
    found := least(found, (SELECT min(occurred_at) FROM @extschema@.events_default WHERE isfinite(occurred_at)));
    IF found IS NULL THEN
        RETURN NULL;
    END IF;
    RETURN to_timestamp((floor(EXTRACT(epoch FROM found) / wsec) * wsec)::double precision);
END
$$;

/*
 * _queue_oldest(): the capture time of the oldest event still waiting in
 * the shared queue for this database's writer (queue.c); NULL when none
 * waits or without the preload.  Once stored, such an event lands in the
 * window of its capture time, so no window from there on is sealed.
 */
CREATE FUNCTION @extschema@._queue_oldest() RETURNS timestamptz
AS 'MODULE_PATHNAME', 'audit_queue_oldest_sql'
LANGUAGE C STABLE PARALLEL RESTRICTED;

/*
 * _seal(as_of): seal every closed window after the last seal; how many
 * windows it sealed, why it stopped early (error, NULL when it did not),
 * and what keeps a window that is due (ended seal_delay ago) open
 * (waiting: a running transaction that began before its end, a prepared
 * transaction, events of its time still waiting for the writer; NULL when
 * nothing does).  A
 * window that cannot be sealed stops the chain there (a chain has no
 * holes): the windows before it are sealed, one at a time once a batch of
 * windows failed.  Nothing is sealed while a dump is being restored into
 * the database by another session (restore.c).  as_of stands for "now"
 * (never later than the clock: the future is never sealed).
 */
CREATE FUNCTION @extschema@._seal(as_of timestamptz, OUT sealed integer, OUT error text, OUT waiting text)
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
SET audit_log.internal = on
AS $$
DECLARE
    loaded boolean := @extschema@._load();   -- the library's settings, without the preload
    wsec bigint := @extschema@._setting_seconds('audit_log.seal_window');
    w interval := @extschema@._setting_seconds('audit_log.seal_window') * interval '1 second';
    lim timestamptz;
    due timestamptz;
    held_start timestamptz;
    held_pid int;
    held_gid text;
    queued timestamptz;
    start timestamptz;
    prev bytea;
    prev0 bytea;
    nwin int;
    one boolean := false;
    r record;
    ws timestamptz;
    dg bytea;
    total int := 0;
    total0 int;
BEGIN
    IF as_of IS NOT NULL AND NOT pg_catalog.isfinite(as_of) THEN
        RAISE EXCEPTION 'as_of must be a finite time, not %', as_of
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Leave it NULL for now.';
    END IF;
    sealed := 0;
    IF @extschema@._restore_running() THEN
        RETURN;
    END IF;
    -- A snapshot older than this call would not see events committed
    -- since it was taken, in windows this call would seal.
    IF current_setting('transaction_isolation') <> 'read committed' THEN
        RAISE EXCEPTION 'seal() needs the read committed isolation level, not %', current_setting('transaction_isolation')
            USING ERRCODE = 'invalid_transaction_state',
                  HINT = 'Call it in a transaction of its own, or at READ COMMITTED.';
    END IF;
    PERFORM pg_advisory_xact_lock(hashtext('audit_log.seal'));
    due := least(coalesce(as_of, now()), clock_timestamp())
           - @extschema@._setting_seconds('audit_log.seal_delay') * interval '1 second';
    -- No transaction that began before a window's end may still add to it.
    -- A prepared transaction's start is not known (pg_prepared_xacts has
    -- the time of its PREPARE): while one exists, no window closes.  An
    -- event waiting in the queue for the writer lands in the window of its
    -- capture time.
    SELECT a.xact_start, a.pid INTO held_start, held_pid FROM pg_stat_activity a
     WHERE a.backend_xid IS NOT NULL AND a.pid <> pg_backend_pid()
     ORDER BY a.xact_start LIMIT 1;
    SELECT p.gid INTO held_gid FROM pg_prepared_xacts p ORDER BY p.prepared LIMIT 1;
    queued := @extschema@._queue_oldest();
    lim := least(due, held_start, queued,
                 CASE WHEN held_gid IS NOT NULL THEN '-infinity'::timestamptz END);

    SELECT s.window_end, s.digest INTO start, prev FROM @extschema@.seal s ORDER BY s.window_end DESC LIMIT 1;
    IF start IS NULL THEN
        start := @extschema@._chain_origin(wsec);
    END IF;
    IF start + w <= due AND start + w > lim THEN
        waiting := 'windows from ' || @extschema@._ts(start) || ' are due and wait for '
            || CASE WHEN held_gid IS NOT NULL THEN
                        'the prepared transaction ' || quote_literal(held_gid) || ' (its start is not known)'
                    WHEN queued IS NOT NULL AND queued <= lim THEN
                        'events captured since ' || @extschema@._ts(queued) || ' that the writer has not stored yet'
                    ELSE 'the transaction of process ' || held_pid || ', begun at ' || @extschema@._ts(held_start)
               END;
    END IF;
    WHILE start IS NOT NULL AND start + w <= lim LOOP
        nwin := CASE WHEN one THEN 1
                     ELSE least(floor(EXTRACT(epoch FROM (lim - start)) / wsec)::int, greatest(1, 604800 / wsec)::int) END;
        total0 := total;
        prev0 := prev;
        BEGIN
            FOR r IN
                SELECT g.i, coalesce(a.n, 0) AS n, coalesce(a.ids, '{}'::int8multirange) AS ids,
                       coalesce(a.hashes, ''::bytea) AS hashes,
                       @extschema@._sha256(coalesce(a.cat, ''::bytea)) AS content
                  FROM generate_series(0, nwin - 1) g(i)
                  LEFT JOIN (
                      SELECT floor((EXTRACT(epoch FROM x.occurred_at) - EXTRACT(epoch FROM start)) / wsec)::int AS i,
                             count(*) AS n,
                             range_agg(int8range(x.event_id, x.event_id, '[]')) AS ids,
                             string_agg(substring(x.h FROM 1 FOR 4), ''::bytea ORDER BY x.event_id) AS hashes,
                             string_agg(x.h, ''::bytea ORDER BY x.event_id) AS cat
                        FROM (SELECT e.event_id, e.occurred_at, @extschema@._event_digest(e) AS h
                                FROM @extschema@.events e
                               WHERE e.occurred_at >= start AND e.occurred_at < start + nwin * w
                                 AND e.source IS NULL) x
                       GROUP BY 1) a ON a.i = g.i
                 ORDER BY g.i
            LOOP
                ws := start + r.i * w;
                dg := @extschema@._seal_digest(prev, ws, ws + w, r.n, r.content);
                INSERT INTO @extschema@.seal (window_start, window_end, events, event_ids, event_hashes,
                                              content_digest, prev_digest, digest)
                VALUES (ws, ws + w, r.n, r.ids, r.hashes, r.content, prev, dg);
                prev := dg;
                total := total + 1;
            END LOOP;
        EXCEPTION WHEN OTHERS THEN
            -- The block's inserts are undone; so are its windows here.
            total := total0;
            prev := prev0;
            IF nwin > 1 THEN
                one := true;
                CONTINUE;
            END IF;
            error := 'window [' || @extschema@._ts(start) || ', ' || @extschema@._ts(start + w)
                     || ') cannot be sealed: ' || SQLERRM;
            EXIT;
        END;
        start := start + nwin * w;
    END LOOP;
    sealed := total;
END
$$;

/*
 * seal(as_of): seal every closed window after the last seal; returns how
 * many windows it sealed.  A window that cannot be sealed is a WARNING and
 * the windows before it are sealed (see _seal()); so is a window that is
 * due and kept open (what keeps it).
 */
CREATE FUNCTION @extschema@.seal(as_of timestamptz DEFAULT NULL) RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    r record;
BEGIN
    SELECT * INTO r FROM @extschema@._seal(as_of);
    IF r.error IS NOT NULL THEN
        RAISE WARNING 'audit_log: %', r.error
            USING HINT = 'The windows before it are sealed; sealing goes on from there once the cause is fixed.';
    END IF;
    IF r.waiting IS NOT NULL THEN
        RAISE WARNING 'audit_log: %', r.waiting
            USING HINT = 'They are sealed once it is over: end a transaction left open, or start the writer.';
    END IF;
    RETURN r.sealed;
END
$$;

/*
 * chain_head(): the newest seal, to copy outside the database.
 */
CREATE FUNCTION @extschema@.chain_head() RETURNS TABLE(window_end timestamptz, digest text)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT s.window_end, encode(s.digest, 'hex') FROM @extschema@.seal s ORDER BY s.window_end DESC LIMIT 1
$$;

/*
 * _first_bad_event(seal, actual): what differs first, in event_id order,
 * between a window's seal and its rows.
 */
CREATE FUNCTION @extschema@._first_bad_event(ws timestamptz, we timestamptz, ids int8multirange, hashes bytea,
    src text DEFAULT NULL, kept_only boolean DEFAULT false)
RETURNS text
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    WITH sealed AS (
        SELECT id, row_number() OVER (ORDER BY id) AS ord
          FROM (SELECT generate_series(lower(r), upper(r) - 1) AS id FROM unnest(ids) r) x
    ), sh AS (
        SELECT id, substring(hashes FROM ((ord - 1) * 4 + 1)::int FOR 4) AS h FROM sealed
    ), act AS (
        SELECT e.event_id AS id, substring(@extschema@._event_digest(e) FROM 1 FOR 4) AS h,
               count(*) OVER (PARTITION BY e.event_id) AS copies
          FROM @extschema@.events e WHERE e.occurred_at >= ws AND e.occurred_at < we
           AND e.source IS NOT DISTINCT FROM src
    )
    SELECT 'event ' || coalesce(sh.id, act.id) || ' ' ||
           CASE WHEN act.id IS NULL THEN 'deleted or moved out of the window'
                WHEN sh.id IS NULL THEN 'not in the seal: inserted or moved into the window'
                WHEN act.copies > 1 THEN 'duplicated'
                ELSE 'altered' END
      FROM sh FULL JOIN act ON sh.id = act.id
     WHERE sh.id IS NULL OR (act.id IS NULL AND NOT kept_only) OR sh.h <> act.h OR act.copies > 1
     ORDER BY coalesce(sh.id, act.id)
     LIMIT 1
$$;

/*
 * verify(from_time, to_time, source): check every sealed window
 * overlapping [from_time, to_time) against the events and the chain: this
 * database's own (source NULL), or on a central database a source's chain
 * (its seal records, received with its events) against its events here.
 */
CREATE FUNCTION @extschema@.verify(from_time timestamptz DEFAULT NULL, to_time timestamptz DEFAULT NULL,
    source text DEFAULT NULL)
RETURNS TABLE(window_start timestamptz, window_end timestamptz, status text, events bigint, detail text)
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    s record;
    p record;
    first boolean := true;
    n bigint;
    content bytea;
    pg record;
    bad text;
BEGIN
    IF from_time IS NOT NULL AND to_time IS NOT NULL AND from_time >= to_time THEN
        RAISE EXCEPTION 'verify range starts at or after its end' USING ERRCODE = 'invalid_parameter_value',
            DETAIL = 'from_time must be earlier than to_time.';
    END IF;
    FOR s IN SELECT * FROM @extschema@._seal_rows(verify.source) x
              WHERE (from_time IS NULL OR x.window_end > from_time)
                AND (to_time IS NULL OR x.window_start < to_time)
              ORDER BY x.window_start
    LOOP
        IF first THEN
            SELECT * INTO p FROM @extschema@._seal_rows(verify.source) x WHERE x.window_end <= s.window_start
             ORDER BY x.window_end DESC LIMIT 1;
            first := false;
        END IF;
        -- A hole in the chain: seal records are gone.
        IF p.window_end IS NOT NULL AND p.window_end < s.window_start THEN
            window_start := p.window_end; window_end := s.window_start; status := 'missing';
            SELECT count(*) INTO events FROM @extschema@.events e
             WHERE e.occurred_at >= p.window_end AND e.occurred_at < s.window_start
               AND e.source IS NOT DISTINCT FROM verify.source;
            detail := 'no seal record for this range: the chain is broken';
            RETURN NEXT;
        END IF;
        window_start := s.window_start; window_end := s.window_end;
        SELECT string_agg(pl.partition, ', ' ORDER BY pl.partition) AS parts, max(pl.purged_at) AS at
          INTO pg FROM @extschema@.purge_log pl
         WHERE pl.from_time < s.window_end AND pl.to_time > s.window_start;

        IF s.digest <> @extschema@._seal_digest(s.prev_digest, s.window_start, s.window_end, s.events, s.content_digest) THEN
            status := 'mismatch'; events := s.events;
            detail := 'seal record altered: its digest does not match its content';
        ELSIF s.prev_digest IS DISTINCT FROM p.digest
              AND NOT (s.prev_digest IS NOT NULL AND p.window_end IS NOT NULL AND p.window_end < s.window_start) THEN
            status := 'mismatch'; events := s.events;
            detail := 'seal chain broken: the previous digest does not match the previous seal';
        ELSIF pg.parts IS NOT NULL THEN
            -- What retention left of the window (a category of a longer
            -- policy, say) is still checked, event by event, against the
            -- ids and digest prefixes of the seal: a purge of one category
            -- does not blind verify() to the others.
            bad := @extschema@._first_bad_event(s.window_start, s.window_end, s.event_ids, s.event_hashes,
                                                verify.source, true);
            events := s.events;
            IF bad IS NOT NULL THEN
                status := 'mismatch';
                detail := bad || ' (a window partly purged by retention: ' || pg.parts || ')';
            ELSE
                status := 'purged';
                detail := s.events || ' events sealed, purged by retention (' || pg.parts || ') at '
                          || @extschema@._ts(pg.at) || '; anchor digest ' || encode(s.digest, 'hex');
            END IF;
        ELSE
            SELECT count(*), @extschema@._sha256(coalesce(string_agg(x.h, ''::bytea ORDER BY x.event_id), ''::bytea))
              INTO n, content
              FROM (SELECT e.event_id, @extschema@._event_digest(e) AS h FROM @extschema@.events e
                     WHERE e.occurred_at >= s.window_start AND e.occurred_at < s.window_end
                       AND e.source IS NOT DISTINCT FROM verify.source) x;
            events := n;
            IF n = s.events AND content = s.content_digest THEN
                status := 'ok'; detail := NULL;
            ELSIF n = 0 THEN
                status := 'missing';
                detail := 'all ' || s.events || ' sealed events are gone and no purge was recorded';
            ELSE
                status := 'mismatch';
                bad := @extschema@._first_bad_event(s.window_start, s.window_end, s.event_ids, s.event_hashes,
                                                    verify.source);
                detail := coalesce(bad, 'window digest differs') || ' (' || n || ' events, ' || s.events || ' sealed)';
            END IF;
        END IF;
        RETURN NEXT;
        p := s;
    END LOOP;
END
$$;

CREATE VIEW @extschema@.seals AS
SELECT s.window_start, s.window_end, s.events,
       lower(s.event_ids) AS first_event_id, upper(s.event_ids) - 1 AS last_event_id,
       encode(s.digest, 'hex') AS digest, encode(s.prev_digest, 'hex') AS prev_digest, s.sealed_at,
       EXISTS (SELECT 1 FROM @extschema@.purge_log pl
                WHERE pl.from_time < s.window_end AND pl.to_time > s.window_start) AS purged
  FROM @extschema@.seal s;
COMMENT ON VIEW @extschema@.seals IS 'The seal chain: one row per sealed window, oldest first by window_start.';
COMMENT ON COLUMN @extschema@.seals.window_start IS 'Start of the window (inclusive).';
COMMENT ON COLUMN @extschema@.seals.window_end IS 'End of the window (exclusive).';
COMMENT ON COLUMN @extschema@.seals.events IS 'Number of events sealed in the window.';
COMMENT ON COLUMN @extschema@.seals.first_event_id IS 'Lowest event_id in the window.';
COMMENT ON COLUMN @extschema@.seals.last_event_id IS 'Highest event_id in the window.';
COMMENT ON COLUMN @extschema@.seals.digest IS 'SHA-256 (hex) of the previous digest, the window bounds and count, and its events.';
COMMENT ON COLUMN @extschema@.seals.prev_digest IS 'Digest of the previous window (NULL for the first).';
COMMENT ON COLUMN @extschema@.seals.sealed_at IS 'When the window was sealed.';
COMMENT ON COLUMN @extschema@.seals.purged IS 'Whether retention dropped (some of) the window''s events since.';

REVOKE ALL ON FUNCTION @extschema@._sha256(bytea), @extschema@._canonical(text),
    @extschema@._event_digest(@extschema@.events),
    @extschema@._seal_digest(bytea, timestamptz, timestamptz, bigint, bytea),
    @extschema@._setting_seconds(text), @extschema@._chain_origin(bigint), @extschema@._queue_oldest(),
    @extschema@._seal(timestamptz), @extschema@.seal(timestamptz), @extschema@.chain_head(),
    @extschema@._first_bad_event(timestamptz, timestamptz, int8multirange, bytea, text, boolean),
    @extschema@.verify(timestamptz, timestamptz, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION @extschema@.seal(timestamptz), @extschema@.chain_head(),
    @extschema@.verify(timestamptz, timestamptz, text) TO audit_log_admin;
REVOKE ALL ON @extschema@.seals FROM PUBLIC;
GRANT SELECT ON @extschema@.seals TO audit_log_reader, audit_log_admin;
