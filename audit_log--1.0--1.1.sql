/*
 * audit_log upgrade script 1.0 -> 1.1.
 *
 * Every schema change of 1.1, in the order of src/sql, so that a database
 * updated with ALTER EXTENSION audit_log UPDATE has exactly the objects of a
 * fresh 1.1 install (test/t/upgrade_1_0.pl compares the two dumps).  Events,
 * seals, policies, holds and audited tables are kept: nothing here rewrites
 * or drops a table that holds them.
 */
\echo Use "ALTER EXTENSION audit_log UPDATE TO '1.1'" to load this file. \quit

-- ==== dumpenc: pg_dump/pg_restore keep the history; seals and upkeep in every encoding ====
-- Partitions become data (not members): pg_dump keeps their rows.
DO $members$
DECLARE
    r record;
BEGIN
    FOR r IN SELECT c.oid::regclass AS rel
               FROM pg_catalog.pg_depend d JOIN pg_catalog.pg_class c ON c.oid = d.objid
              WHERE d.classid = 'pg_catalog.pg_class'::regclass AND d.deptype = 'e'
                AND d.refclassid = 'pg_catalog.pg_extension'::regclass
                AND d.refobjid = (SELECT e.oid FROM pg_catalog.pg_extension e WHERE e.extname = 'audit_log')
                AND c.relnamespace = '@extschema@'::regnamespace
                AND c.relname ~ '^events_(p[0-9]{8}.*|default)$'
    LOOP
        EXECUTE pg_catalog.format('ALTER EXTENSION audit_log DROP TABLE %s', r.rel);
    END LOOP;
END
$members$;

-- part 30: maintain() steps on their own, restores
/*
 * maintain(as_of): create partitions ahead, move stray rows out of the
 * default partition, seal closed windows, drop expired partitions.
 * Returns what it did.  as_of stands for "now" (tests).  Each step, and
 * each day or leaf within a step, is on its own: an error is reported as
 * an "error" row (with its SQLSTATE) and the rest goes on.  While another
 * session restores a dump into the database it does nothing; the first
 * run after that restore records it (restore.c, part 70_restore).
 */
CREATE OR REPLACE FUNCTION @extschema@.maintain(as_of timestamptz DEFAULT NULL)
RETURNS TABLE(action text, object text, detail text)
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    t timestamptz := coalesce(as_of, now());
    old_lock_timeout text := current_setting('lock_timeout');
    events_busy boolean := false;
    premake int;
    d date;
    n bigint;
    lo timestamptz;
    sealed record;
    r record;
    l record;
    drop_list oid[];
    total int;
    leaves_ok boolean := false;
    i int;
    oa text[];      -- rows of a day's work, reported once it is done
    oo text[];
    od text[];
BEGIN
    PERFORM @extschema@._internal(true);    -- also loads the library and its settings
    -- Short lock waits: the session's lock_timeout if it has one, else 250ms.
    IF old_lock_timeout = '0' THEN
        PERFORM set_config('lock_timeout', '250ms', true);
    END IF;
    IF NOT pg_try_advisory_xact_lock(hashtext('audit_log.maintain')) THEN
        PERFORM @extschema@._internal(false);
        PERFORM set_config('lock_timeout', old_lock_timeout, true);
        action := 'skipped'; object := 'maintain'; detail := 'another maintain() is running';
        RETURN NEXT;
        RETURN;
    END IF;
    premake := current_setting('audit_log.premake_days')::int;

    -- 0. A dump restored into this database: nothing moves while its
    --    session works; then the restore is recorded and closed.
    IF EXISTS (SELECT 1 FROM @extschema@.restore_state) THEN
        IF @extschema@._restore_running() THEN
            PERFORM @extschema@._internal(false);
            PERFORM set_config('lock_timeout', old_lock_timeout, true);
            action := 'skipped'; object := 'maintain';
            detail := 'a dump is being restored into this database by another session';
            RETURN NEXT;
            RETURN;
        END IF;
        BEGIN
            RETURN QUERY SELECT * FROM @extschema@._restore_close();
        EXCEPTION WHEN OTHERS THEN
            action := 'error'; object := '@extschema@.restore_state';
            detail := SQLSTATE || ': ' || SQLERRM; RETURN NEXT;
        END;
    END IF;

    -- 1. Partitions ahead: today (UTC) and premake_days more.
    FOR d IN SELECT g::date FROM generate_series((t AT TIME ZONE 'UTC')::date,
                                                 (t AT TIME ZONE 'UTC')::date + premake, interval '1 day') g
    LOOP
        BEGIN
            -- A day with stray rows is created when they are moved (step 2).
            CONTINUE WHEN EXISTS (SELECT 1 FROM @extschema@.events_default e
                                   WHERE e.occurred_at >= @extschema@._day_lo(d)
                                     AND e.occurred_at < @extschema@._day_lo(d + 1));
            IF @extschema@._create_partition(d) THEN
                action := 'created'; object := '@extschema@.' || @extschema@._partition_name(d);
                detail := '[' || @extschema@._ts(@extschema@._day_lo(d)) || ', '
                              || @extschema@._ts(@extschema@._day_lo(d + 1)) || ')';
                RETURN NEXT;
            END IF;
        EXCEPTION WHEN lock_not_available OR deadlock_detected THEN
            action := 'retry'; object := '@extschema@.' || @extschema@._partition_name(d);
            detail := 'lock not available: ' || SQLERRM; RETURN NEXT;
        WHEN OTHERS THEN
            action := 'error'; object := '@extschema@.' || @extschema@._partition_name(d);
            detail := SQLSTATE || ': ' || SQLERRM; RETURN NEXT;
        END;
    END LOOP;

    -- 2. Stray rows of the safety net go to their day.
    FOR d IN SELECT DISTINCT (e.occurred_at AT TIME ZONE 'UTC')::date
               FROM @extschema@.events_default e ORDER BY 1
    LOOP
        IF NOT isfinite(d) THEN
            action := 'error'; object := '@extschema@.events_default';
            detail := (SELECT count(*) FROM @extschema@.events_default e
                        WHERE (e.occurred_at AT TIME ZONE 'UTC')::date = d)
                      || ' rows at ' || d || ' belong to no day: they stay here';
            RETURN NEXT;
            CONTINUE;
        END IF;
        BEGIN
            LOCK TABLE @extschema@.events_default IN ACCESS EXCLUSIVE MODE;
            IF pg_catalog.to_regclass('pg_temp.audit_log_strays') IS NULL THEN
                CREATE TEMP TABLE audit_log_strays (LIKE @extschema@.events) ON COMMIT DROP;
            END IF;
            TRUNCATE pg_temp.audit_log_strays;
            WITH m AS (DELETE FROM @extschema@.events_default e
                        WHERE e.occurred_at >= @extschema@._day_lo(d) AND e.occurred_at < @extschema@._day_lo(d + 1)
                        RETURNING e.*)
            INSERT INTO pg_temp.audit_log_strays SELECT * FROM m;
            GET DIAGNOSTICS n = ROW_COUNT;
            oa := '{}'; oo := '{}'; od := '{}';
            IF @extschema@._create_partition(d) THEN
                oa := oa || 'created'::text; oo := oo || ('@extschema@.' || @extschema@._partition_name(d));
                od := od || ('[' || @extschema@._ts(@extschema@._day_lo(d)) || ', '
                             || @extschema@._ts(@extschema@._day_lo(d + 1)) || ')');
            END IF;
            INSERT INTO @extschema@.events SELECT * FROM pg_temp.audit_log_strays;
            oa := oa || 'moved'::text; oo := oo || ('@extschema@.' || @extschema@._partition_name(d));
            od := od || (n || ' rows from @extschema@.events_default');
        EXCEPTION WHEN lock_not_available OR deadlock_detected THEN
            action := 'retry'; object := '@extschema@.events_default';
            detail := 'lock not available: ' || SQLERRM; RETURN NEXT;
        WHEN OTHERS THEN
            -- Such rows stay in the safety net, where search and verify see them.
            action := 'error'; object := '@extschema@.events_default';
            detail := 'rows of ' || coalesce(d::text, 'NULL') || ' not moved: ' || SQLSTATE || ': ' || SQLERRM;
            RETURN NEXT;
            CONTINUE;
        END;
        -- Reported once done: an error undoes the step's work, not its rows.
        FOR i IN 1 .. cardinality(oa) LOOP
            action := oa[i]; object := oo[i]; detail := od[i]; RETURN NEXT;
        END LOOP;
    END LOOP;

    -- 3. Seal the closed windows (before anything is dropped).
    BEGIN
        SELECT * INTO sealed FROM @extschema@._seal(t);
        IF sealed.sealed > 0 THEN
            action := 'sealed'; object := '@extschema@.seals';
            detail := sealed.sealed || ' windows up to ' ||
                      @extschema@._ts((SELECT max(s.window_end) FROM @extschema@.seal s));
            RETURN NEXT;
        END IF;
        IF sealed.error IS NOT NULL THEN
            action := 'error'; object := '@extschema@.seals'; detail := sealed.error; RETURN NEXT;
        END IF;
    EXCEPTION WHEN OTHERS THEN
        action := 'error'; object := '@extschema@.seals'; detail := SQLSTATE || ': ' || SQLERRM; RETURN NEXT;
    END;

    -- 4. Drop what has expired, by whole leaves, or whole days when every
    --    leaf of the day goes.
    BEGIN
        IF pg_catalog.to_regclass('pg_temp.audit_log_leaves') IS NOT NULL THEN
            DROP TABLE pg_temp.audit_log_leaves;
        END IF;
        CREATE TEMP TABLE audit_log_leaves ON COMMIT DROP AS
            SELECT s.*, s.expires <= t AS expired FROM @extschema@._leaf_state() s;
        leaves_ok := true;
    EXCEPTION WHEN OTHERS THEN
        action := 'error'; object := '@extschema@.partitions'; detail := SQLSTATE || ': ' || SQLERRM; RETURN NEXT;
    END;
    IF leaves_ok THEN
        FOR r IN SELECT s.day_oid, s.day_name, count(*) AS leaves
                   FROM pg_temp.audit_log_leaves s
                  GROUP BY s.day_oid, s.day_name
                 HAVING bool_or(s.expired)
                  ORDER BY s.day_name
        LOOP
            oa := '{}'; oo := '{}'; od := '{}';
            BEGIN
                -- Report held and unsealed leaves; keep only the droppable ones.
                drop_list := '{}';
                FOR l IN SELECT s.* FROM pg_temp.audit_log_leaves s
                          WHERE s.day_oid = r.day_oid AND s.expired ORDER BY s.leaf_name
                LOOP
                    IF cardinality(l.holds) > 0 THEN
                        oa := oa || 'held'::text; oo := oo || ('@extschema@.' || l.leaf_name);
                        od := od || ('expired but kept by legal hold ' || array_to_string(l.holds, ', '));
                    ELSIF NOT l.sealed AND @extschema@._rows(l.leaf) > 0 THEN
                        oa := oa || 'deferred'::text; oo := oo || ('@extschema@.' || l.leaf_name);
                        od := od || 'expired but its windows are not sealed yet'::text;
                    ELSE
                        drop_list := drop_list || l.leaf;
                    END IF;
                END LOOP;
                IF cardinality(drop_list) = 0 THEN
                    NULL;
                ELSIF events_busy AND cardinality(drop_list) = r.leaves THEN
                    -- Writers hold audit_log.events: do not queue behind them again.
                    oa := oa || 'retry'::text; oo := oo || ('@extschema@.' || r.day_name);
                    od := od || 'audit_log.events is busy: retried at the next run'::text;
                ELSE
                    IF cardinality(drop_list) = r.leaves THEN
                        events_busy := true;
                        EXECUTE pg_catalog.format('LOCK TABLE %I.events IN ACCESS EXCLUSIVE MODE', '@extschema@');
                    END IF;
                    events_busy := false;
                    EXECUTE pg_catalog.format('LOCK TABLE %s IN ACCESS EXCLUSIVE MODE', r.day_oid::regclass);
                    -- Every lock first: once a leaf is dropped, nothing waits any more.
                    FOR l IN SELECT s.leaf FROM pg_temp.audit_log_leaves s
                              WHERE s.leaf = ANY (drop_list) AND s.leaf <> r.day_oid ORDER BY s.leaf_name
                    LOOP
                        EXECUTE pg_catalog.format('LOCK TABLE %s IN ACCESS EXCLUSIVE MODE', l.leaf::regclass);
                    END LOOP;
                    FOR l IN SELECT s.* FROM pg_temp.audit_log_leaves s
                              WHERE s.leaf = ANY (drop_list) ORDER BY s.leaf_name
                    LOOP
                        n := @extschema@._rows(l.leaf);
                        INSERT INTO @extschema@.purge_log (partition, from_time, to_time, categories, policy, rows, purged_at)
                        VALUES ('@extschema@.' || l.leaf_name, l.lo, l.hi, l.categories, l.policy, n, clock_timestamp());
                        PERFORM @extschema@._record('audit', 'audit.purged', 'success', 'table',
                            '@extschema@.' || l.leaf_name, 'DROP TABLE',
                            jsonb_build_object('rows', n, 'from_time', @extschema@._ts(l.lo),
                                               'to_time', @extschema@._ts(l.hi), 'policy', l.policy,
                                               'keep', l.keep::text, 'categories', to_jsonb(l.categories)));
                        IF cardinality(drop_list) < r.leaves THEN
                            EXECUTE pg_catalog.format('DROP TABLE %s', l.leaf::regclass);
                        END IF;
                        oa := oa || 'purged'::text; oo := oo || ('@extschema@.' || l.leaf_name);
                        od := od || (n || ' rows, [' || @extschema@._ts(l.lo) || ', ' || @extschema@._ts(l.hi)
                                     || '), policy ' || l.policy || ' (' || l.keep::text || ')');
                    END LOOP;
                    IF cardinality(drop_list) = r.leaves THEN
                        EXECUTE pg_catalog.format('DROP TABLE %s', r.day_oid::regclass);
                    END IF;
                END IF;
            EXCEPTION WHEN OTHERS THEN
                -- Undone: report what was kept and why the rest was not purged.
                FOR i IN 1 .. cardinality(oa) LOOP
                    CONTINUE WHEN oa[i] NOT IN ('held', 'deferred');
                    action := oa[i]; object := oo[i]; detail := od[i]; RETURN NEXT;
                END LOOP;
                object := '@extschema@.' || r.day_name;
                IF SQLSTATE IN ('55P03', '40P01') THEN    -- lock_not_available, deadlock_detected
                    action := 'retry'; detail := 'lock not available: ' || SQLERRM;
                ELSE
                    action := 'error'; detail := SQLSTATE || ': ' || SQLERRM;
                END IF;
                RETURN NEXT;
                CONTINUE;
            END;
            FOR i IN 1 .. cardinality(oa) LOOP
                action := oa[i]; object := oo[i]; detail := od[i]; RETURN NEXT;
            END LOOP;
        END LOOP;
    END IF;

    -- 5. Search indexes for the days that have ended (see _index_leaf()),
    --    by the real clock whatever as_of says: nobody writes those days.
    FOR l IN SELECT s.leaf, s.leaf_name FROM @extschema@._leaves() s
              WHERE s.hi <= least(t, now()) AND NOT @extschema@._leaf_indexed(s.leaf)
              ORDER BY s.leaf_name
    LOOP
        BEGIN
            PERFORM @extschema@._index_leaf(l.leaf);
            action := 'indexed'; object := '@extschema@.' || l.leaf_name;
            detail := 'search indexes built'; RETURN NEXT;
        EXCEPTION WHEN lock_not_available OR deadlock_detected THEN
            action := 'retry'; object := '@extschema@.' || l.leaf_name;
            detail := 'lock not available: ' || SQLERRM; RETURN NEXT;
        WHEN OTHERS THEN
            action := 'error'; object := '@extschema@.' || l.leaf_name;
            detail := SQLSTATE || ': ' || SQLERRM; RETURN NEXT;
        END;
    END LOOP;

    PERFORM @extschema@._internal(false);
    PERFORM set_config('lock_timeout', old_lock_timeout, true);
    RETURN;
END
$$;

-- part 40: canonical bytes in every encoding (identical in UTF8), _seal()
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
CREATE OR REPLACE FUNCTION @extschema@._event_digest(e @extschema@.events) RETURNS bytea
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
 * _chain_origin(): where the first window starts: the earliest event,
 * rounded down to a multiple of the window since 1970-01-01 UTC.
 */
CREATE OR REPLACE FUNCTION @extschema@._chain_origin(wsec bigint) RETURNS timestamptz
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
 * _seal(as_of): seal every closed window after the last seal; how many
 * windows it sealed, and why it stopped early (NULL when it did not).  A
 * window that cannot be sealed stops the chain there (a chain has no
 * holes): the windows before it are sealed, one at a time once a batch of
 * windows failed.  Nothing is sealed while a dump is being restored into
 * the database by another session (restore.c).  as_of stands for "now"
 * (never later than the clock: the future is never sealed).
 */
CREATE FUNCTION @extschema@._seal(as_of timestamptz, OUT sealed integer, OUT error text)
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    was_internal boolean := @extschema@._internal(true);   -- also loads the settings
    wsec bigint := @extschema@._setting_seconds('audit_log.seal_window');
    w interval := @extschema@._setting_seconds('audit_log.seal_window') * interval '1 second';
    lim timestamptz;
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
    sealed := 0;
    IF @extschema@._restore_running() THEN
        PERFORM @extschema@._internal(was_internal);
        RETURN;
    END IF;
    PERFORM pg_advisory_xact_lock(hashtext('audit_log.seal'));
    lim := least(coalesce(as_of, now()), clock_timestamp())
           - @extschema@._setting_seconds('audit_log.seal_delay') * interval '1 second';
    -- No transaction that began before a window's end may still add to it.
    lim := least(lim,
                 (SELECT min(a.xact_start) FROM pg_stat_activity a
                   WHERE a.backend_xid IS NOT NULL AND a.pid <> pg_backend_pid()),
                 (SELECT min(p.prepared) FROM pg_prepared_xacts p));

    SELECT s.window_end, s.digest INTO start, prev FROM @extschema@.seal s ORDER BY s.window_end DESC LIMIT 1;
    IF start IS NULL THEN
        start := @extschema@._chain_origin(wsec);
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
                               WHERE e.occurred_at >= start AND e.occurred_at < start + nwin * w) x
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
    PERFORM @extschema@._internal(was_internal);
END
$$;

/*
 * seal(as_of): seal every closed window after the last seal; returns how
 * many windows it sealed.  A window that cannot be sealed is a WARNING and
 * the windows before it are sealed (see _seal()).
 */
CREATE OR REPLACE FUNCTION @extschema@.seal(as_of timestamptz DEFAULT NULL) RETURNS integer
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
    RETURN r.sealed;
END
$$;

REVOKE ALL ON FUNCTION @extschema@._canonical(text), @extschema@._seal(timestamptz) FROM PUBLIC;

-- part 70: backups
-- pg_dump keeps where event ids stand.
SELECT pg_catalog.pg_extension_config_dump('@extschema@.events_event_id_seq', '');

-- The restore in progress, if any (never dumped).
CREATE TABLE @extschema@.restore_state (
    pid           integer NOT NULL,
    backend_start timestamptz NOT NULL,
    began_at      timestamptz NOT NULL,
    began_by      text NOT NULL
);
COMMENT ON TABLE @extschema@.restore_state IS
    'The restore of a dump in progress: the session that runs it (see audit_log.maintain()).';
REVOKE ALL ON TABLE @extschema@.restore_state FROM PUBLIC;

INSERT INTO @extschema@.event_type_catalog (event_type, category, description, builtin) VALUES
    ('audit.restored', 'audit', 'Audit trail restored from a dump (pg_restore or psql)', true);

/*
 * _restore_begin(): in CREATE EXTENSION with audit_log.restore = on, this
 * session now restores a dump (restore.c); false otherwise.
 * _restore_end(): this session's restore is over.  _restoring(): is this
 * session restoring?  Granted to nobody.
 */
CREATE FUNCTION @extschema@._restore_begin() RETURNS boolean
AS 'MODULE_PATHNAME', 'audit_restore_begin'
LANGUAGE C VOLATILE;
CREATE FUNCTION @extschema@._restore_end() RETURNS boolean
AS 'MODULE_PATHNAME', 'audit_restore_end'
LANGUAGE C VOLATILE;
CREATE FUNCTION @extschema@._restoring() RETURNS boolean
AS 'MODULE_PATHNAME', 'audit_restoring_sql'
LANGUAGE C VOLATILE;

/*
 * _restore_running(): is another session, still connected, restoring a
 * dump into this database?
 */
CREATE FUNCTION @extschema@._restore_running() RETURNS boolean
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT EXISTS (SELECT 1 FROM @extschema@.restore_state r
                    CROSS JOIN LATERAL pg_stat_get_activity(r.pid) a
                    WHERE r.pid <> pg_backend_pid() AND a.backend_start = r.backend_start)
$$;

/*
 * _restore_close(): record the restore that ended (audit.restored, with
 * what it brought back) and close it; the event id sequence is moved past
 * the highest restored id if it is behind.  One row for maintain().
 */
CREATE FUNCTION @extschema@._restore_close()
RETURNS TABLE(action text, object text, detail text)
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    rs record;
    ev record;
    head record;
    seals bigint;
    last bigint;
BEGIN
    SELECT * INTO rs FROM @extschema@.restore_state ORDER BY began_at LIMIT 1;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    SELECT count(*) AS n, min(e.event_id) AS first_id, max(e.event_id) AS last_id,
           min(e.occurred_at) AS from_time, max(e.occurred_at) AS to_time
      INTO ev FROM @extschema@.events e;
    SELECT count(*) INTO seals FROM @extschema@.seal;
    SELECT s.window_end, s.digest INTO head FROM @extschema@.seal s ORDER BY s.window_end DESC LIMIT 1;
    SELECT CASE WHEN q.is_called THEN q.last_value ELSE q.last_value - 1 END INTO last
      FROM @extschema@.events_event_id_seq q;
    IF ev.last_id > last THEN
        PERFORM pg_catalog.setval('@extschema@.events_event_id_seq', ev.last_id);
    END IF;
    -- The event_id index of every partition (see restore.c).
    IF NOT EXISTS (SELECT 1 FROM pg_index i
                    WHERE i.indexrelid = pg_catalog.to_regclass('@extschema@.events_event_id_idx') AND i.indisvalid) THEN
        DROP INDEX IF EXISTS @extschema@.events_event_id_idx;
        CREATE INDEX events_event_id_idx ON @extschema@.events (event_id);
    END IF;
    DELETE FROM @extschema@.restore_state;
    PERFORM @extschema@._restore_end();     -- when this very session restored
    PERFORM @extschema@._record('audit', 'audit.restored', 'success', 'database', current_database(),
        'RESTORE', jsonb_build_object(
            'events', ev.n, 'first_event_id', ev.first_id, 'last_event_id', ev.last_id,
            'from_time', @extschema@._ts(ev.from_time), 'to_time', @extschema@._ts(ev.to_time),
            'seals', seals, 'chain_head', encode(head.digest, 'hex'),
            'chain_head_end', @extschema@._ts(head.window_end),
            'partitions', (SELECT count(*) FROM @extschema@._leaves()),
            'retention_policies', (SELECT count(*) FROM @extschema@.retention_policy),
            'legal_holds', (SELECT count(*) FROM @extschema@.legal_hold),
            'audited_tables', (SELECT count(*) FROM @extschema@.table_config),
            'restored_by', rs.began_by, 'began_at', @extschema@._ts(rs.began_at),
            'closed_at', @extschema@._ts(now())));
    action := 'restored'; object := '@extschema@.events';
    detail := ev.n || ' events' || coalesce(' (ids ' || ev.first_id || ' to ' || ev.last_id || ')', '')
              || ', ' || seals || ' seals, restored by ' || rs.began_by || ' since '
              || @extschema@._ts(rs.began_at);
    RETURN NEXT;
END
$$;

REVOKE ALL ON FUNCTION @extschema@._restore_begin(), @extschema@._restore_end(),
    @extschema@._restoring(), @extschema@._restore_running(),
    @extschema@._restore_close() FROM PUBLIC;

