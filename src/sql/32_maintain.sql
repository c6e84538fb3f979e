/*
 * audit_log install script, part 32: maintain(), as pg_partman's
 * run_maintenance(): it takes the advisory lock, the short lock_timeout and
 * the internal mark, and delegates to one function per step, each of which
 * returns its rows.  The layout and locking are described in part 30.
 */

/*
 * The steps of maintain().  Each returns what it did as rows (action,
 * object, detail) and goes on after a failure on one day or leaf, which it
 * reports as a row of _failed().  The caller holds maintain()'s advisory
 * lock, its short lock_timeout and the internal mark.
 *
 * _failed(failed_object, state, message, what): the row of a failure on
 * failed_object (SQLSTATE state, SQLERRM message): "retry" when a lock
 * was not granted in time (lock_not_available, deadlock_detected: the next
 * run tries again), else "error" with the SQLSTATE, after what was left
 * undone when given.
 */
CREATE FUNCTION @extschema@._failed(failed_object text, state text, message text, what text DEFAULT NULL)
RETURNS TABLE(action text, object text, detail text)
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE WHEN state IN ('55P03', '40P01') THEN 'retry' ELSE 'error' END, failed_object,
           CASE WHEN state IN ('55P03', '40P01') THEN 'lock not available: ' || message
                ELSE coalesce(what || ': ', '') || state || ': ' || message END
$$;

/*
 * _day_created(day): the row of a day partition just created.
 */
CREATE FUNCTION @extschema@._day_created(day date)
RETURNS TABLE(action text, object text, detail text)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT 'created', '@extschema@.' || @extschema@._partition_name(day),
           '[' || @extschema@._ts(@extschema@._day_lo(day)) || ', '
               || @extschema@._ts(@extschema@._day_lo(day + 1)) || ')'
$$;

/*
 * _premake(as_of, days): step 1, the day partitions ahead: as_of's day
 * (UTC) and the days more after it, created (or laid out again for the
 * current policies while still empty: "rebuilt").  A day that has stray
 * rows is left to _move_strays().
 */
CREATE FUNCTION @extschema@._premake(as_of timestamptz, days integer)
RETURNS TABLE(action text, object text, detail text)
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
SET audit_log.internal = on
AS $$
DECLARE
    d date;
BEGIN
    -- (dates, not times: a day whose local midnight does not exist is one)
    FOR d IN SELECT (as_of AT TIME ZONE 'UTC')::date + i FROM generate_series(0, days) i
    LOOP
        BEGIN
            CONTINUE WHEN EXISTS (SELECT 1 FROM @extschema@.events_default e
                                   WHERE e.occurred_at >= @extschema@._day_lo(d)
                                     AND e.occurred_at < @extschema@._day_lo(d + 1));
            IF @extschema@._create_partition(d) THEN
                RETURN QUERY SELECT * FROM @extschema@._day_created(d);
            ELSIF @extschema@._relayout_day(d) THEN
                -- Still empty, laid out before the last policy change.
                action := 'rebuilt'; object := '@extschema@.' || @extschema@._partition_name(d);
                detail := 'empty day laid out for the current retention policies'; RETURN NEXT;
            END IF;
        EXCEPTION WHEN OTHERS THEN
            RETURN QUERY SELECT * FROM @extschema@._failed('@extschema@.' || @extschema@._partition_name(d),
                                                           SQLSTATE, SQLERRM);
        END;
    END LOOP;
END
$$;

/*
 * _move_strays(): step 2, the rows of the safety net events_default go to
 * their day, created if need be ("created", then "moved").  A day's rows
 * are reported once they are moved: a failure undoes the day's work and
 * leaves them in the safety net, where search and verify see them.
 */
CREATE FUNCTION @extschema@._move_strays()
RETURNS TABLE(action text, object text, detail text)
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
SET audit_log.internal = on
AS $$
DECLARE
    d date;
    n bigint;
    created boolean;
BEGIN
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
            -- A new table, never one found in pg_temp (see _split_leaf()).
            IF pg_catalog.to_regclass('pg_temp.audit_log_strays') IS NOT NULL THEN
                DROP TABLE pg_temp.audit_log_strays;
            END IF;
            CREATE TEMP TABLE audit_log_strays (LIKE @extschema@.events) ON COMMIT DROP;
            WITH m AS (DELETE FROM @extschema@.events_default e
                        WHERE e.occurred_at >= @extschema@._day_lo(d) AND e.occurred_at < @extschema@._day_lo(d + 1)
                        RETURNING e.*)
            INSERT INTO pg_temp.audit_log_strays SELECT * FROM m;
            GET DIAGNOSTICS n = ROW_COUNT;
            created := @extschema@._create_partition(d);
            INSERT INTO @extschema@.events SELECT * FROM pg_temp.audit_log_strays;
        EXCEPTION WHEN OTHERS THEN
            RETURN QUERY SELECT * FROM @extschema@._failed('@extschema@.events_default', SQLSTATE, SQLERRM,
                                                           'rows of ' || coalesce(d::text, 'NULL') || ' not moved');
            CONTINUE;
        END;
        IF created THEN
            RETURN QUERY SELECT * FROM @extschema@._day_created(d);
        END IF;
        action := 'moved'; object := '@extschema@.' || @extschema@._partition_name(d);
        detail := n || ' rows from @extschema@.events_default'; RETURN NEXT;
    END LOOP;
END
$$;

/*
 * _seal_closed(as_of): step 3, seal the closed windows (before anything is
 * dropped): "sealed", "error" when the chain stopped early, and "waiting"
 * with what keeps a window that is due open.
 */
CREATE FUNCTION @extschema@._seal_closed(as_of timestamptz)
RETURNS TABLE(action text, object text, detail text)
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    sealed record;
BEGIN
    SELECT * INTO sealed FROM @extschema@._seal(as_of);
    IF sealed.sealed > 0 THEN
        action := 'sealed'; object := '@extschema@.seals';
        detail := sealed.sealed || ' windows up to ' ||
                  @extschema@._ts((SELECT max(s.window_end) FROM @extschema@.seal s));
        RETURN NEXT;
    END IF;
    IF sealed.error IS NOT NULL THEN
        action := 'error'; object := '@extschema@.seals'; detail := sealed.error; RETURN NEXT;
    END IF;
    IF sealed.waiting IS NOT NULL THEN
        action := 'waiting'; object := '@extschema@.seals'; detail := sealed.waiting; RETURN NEXT;
    END IF;
EXCEPTION WHEN OTHERS THEN
    action := 'error'; object := '@extschema@.seals'; detail := SQLSTATE || ': ' || SQLERRM; RETURN NEXT;
END
$$;

/*
 * _purge_expired(as_of): step 4, drop what has expired as of as_of, by
 * whole leaves, or whole days when every leaf of the day goes ("purged");
 * a leaf that also holds categories of policies not expired yet is split
 * (_split_leaf(): "moved", "purged").  An expired leaf under a legal hold
 * is "held", one whose windows are not sealed yet "deferred".  Each day is
 * on its own: a failure undoes that day.
 */
CREATE FUNCTION @extschema@._purge_expired(as_of timestamptz)
RETURNS TABLE(action text, object text, detail text)
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
SET audit_log.internal = on
AS $$
DECLARE
    events_busy boolean := false;
    r record;
    l record;
    n bigint;
    drop_list oid[];
    split_list oid[];
    whole boolean;
BEGIN
    -- Holds and policies as they are now, until this run ends: hold(),
    -- release() and set_retention() wait for it (a hold committed while a
    -- day's lock was awaited would otherwise not be seen).
    BEGIN
        EXECUTE pg_catalog.format('LOCK TABLE %I.legal_hold, %I.retention_policy IN SHARE MODE',
                                  '@extschema@', '@extschema@');
    EXCEPTION WHEN lock_not_available OR deadlock_detected THEN
        RETURN QUERY SELECT * FROM @extschema@._failed('@extschema@.legal_hold', SQLSTATE, SQLERRM);
        RETURN;
    END;
    -- A new table, never one found in pg_temp (see _split_leaf()): when
    -- it cannot be made, nothing is purged this run.
    BEGIN
        IF pg_catalog.to_regclass('pg_temp.audit_log_leaves') IS NOT NULL THEN
            DROP TABLE pg_temp.audit_log_leaves;
        END IF;
        CREATE TEMP TABLE audit_log_leaves ON COMMIT DROP AS
            SELECT s.*, s.expires <= as_of AS expired, s.last_expires <= as_of AS all_expired
              FROM @extschema@._leaf_state() s;
    EXCEPTION WHEN OTHERS THEN
        action := 'error'; object := '@extschema@.partitions'; detail := SQLSTATE || ': ' || SQLERRM; RETURN NEXT;
        RETURN;
    END;
    FOR r IN SELECT s.day_oid, s.day_name, count(*) AS leaves
               FROM pg_temp.audit_log_leaves s
              GROUP BY s.day_oid, s.day_name
             HAVING bool_or(s.expired)
              ORDER BY s.day_name
    LOOP
        -- Report held and unsealed leaves; keep only the droppable ones.
        drop_list := '{}';
        split_list := '{}';
        FOR l IN SELECT s.* FROM pg_temp.audit_log_leaves s
                  WHERE s.day_oid = r.day_oid AND s.expired ORDER BY s.leaf_name
        LOOP
            IF cardinality(l.holds) > 0 THEN
                action := 'held'; object := '@extschema@.' || l.leaf_name;
                detail := 'expired but kept by legal hold ' || array_to_string(l.holds, ', '); RETURN NEXT;
            ELSIF NOT l.sealed AND @extschema@._rows(l.leaf) > 0 THEN
                action := 'deferred'; object := '@extschema@.' || l.leaf_name;
                detail := 'expired but its windows are not sealed yet'; RETURN NEXT;
            ELSIF l.all_expired THEN
                drop_list := drop_list || l.leaf;
            ELSE
                split_list := split_list || l.leaf;
            END IF;
        END LOOP;
        CONTINUE WHEN cardinality(drop_list) = 0 AND cardinality(split_list) = 0;
        whole := cardinality(drop_list) = r.leaves;
        IF events_busy AND whole THEN
            -- Writers hold audit_log.events: do not queue behind them again.
            action := 'retry'; object := '@extschema@.' || r.day_name;
            detail := 'audit_log.events is busy: retried at the next run'; RETURN NEXT;
            CONTINUE;
        END IF;
        BEGIN
            IF whole THEN
                events_busy := true;
                EXECUTE pg_catalog.format('LOCK TABLE %I.events IN ACCESS EXCLUSIVE MODE', '@extschema@');
            END IF;
            events_busy := false;
            -- The day and all its leaves (LOCK recurses): a split also
            -- checks the day's DEFAULT leaf when it attaches new leaves.
            EXECUTE pg_catalog.format('LOCK TABLE %s IN ACCESS EXCLUSIVE MODE', r.day_oid::regclass);
            -- Every lock first: once a row is reported, nothing waits any more.
            FOR l IN SELECT s.leaf FROM pg_temp.audit_log_leaves s
                      WHERE s.leaf = ANY (drop_list) AND s.leaf <> r.day_oid ORDER BY s.leaf_name
            LOOP
                EXECUTE pg_catalog.format('LOCK TABLE %s IN ACCESS EXCLUSIVE MODE', l.leaf::regclass);
            END LOOP;
            FOR l IN SELECT s.* FROM pg_temp.audit_log_leaves s
                      WHERE s.leaf = ANY (drop_list) ORDER BY s.leaf_name
            LOOP
                -- Everything in it has expired: the longest policy decides.
                n := @extschema@._rows(l.leaf);
                PERFORM @extschema@._log_purge(l.leaf_name, l.lo, l.hi, l.categories, l.last_policy,
                                               l.last_keep, n);
                IF NOT whole THEN
                    EXECUTE pg_catalog.format('DROP TABLE %s', l.leaf::regclass);
                END IF;
                DELETE FROM @extschema@.leaf_categories k WHERE k.leaf = l.leaf_name;
                action := 'purged'; object := '@extschema@.' || l.leaf_name;
                detail := n || ' rows, [' || @extschema@._ts(l.lo) || ', ' || @extschema@._ts(l.hi)
                          || '), policy ' || l.last_policy || ' (' || l.last_keep::text || ')';
                RETURN NEXT;
            END LOOP;
            IF whole THEN
                EXECUTE pg_catalog.format('DROP TABLE %s', r.day_oid::regclass);
            END IF;
            FOR l IN SELECT s.* FROM pg_temp.audit_log_leaves s
                      WHERE s.leaf = ANY (split_list) ORDER BY s.leaf_name
            LOOP
                RETURN QUERY SELECT * FROM @extschema@._split_leaf(l.leaf, l.leaf_name, l.day_oid,
                                                                  l.lo, l.hi, l.categories, as_of);
            END LOOP;
        EXCEPTION WHEN OTHERS THEN
            -- That day is undone; the other days go on.
            RETURN QUERY SELECT * FROM @extschema@._failed('@extschema@.' || r.day_name, SQLSTATE, SQLERRM);
        END;
    END LOOP;
END
$$;

/*
 * maintain(as_of): the upkeep, in steps: 0. close a restore that ended;
 * 1. create partitions ahead (_premake(); and lay out again the empty ones
 * a policy change left with old leaves); 2. move stray rows out of the
 * default partition (_move_strays()); 3. seal closed windows
 * (_seal_closed()); 4. drop expired partitions (_purge_expired(); split a
 * leaf that holds categories of several policies when the first of them
 * expires); 5. build the search indexes of the days that ended
 * (_index_closed()).  Returns what it did.  as_of stands for "now"
 * (tests).  Each step, and each day or leaf within a step, is on its own:
 * an error is reported as an "error" row (with its SQLSTATE) and the rest
 * goes on.  While another session restores a dump into the database it
 * does nothing; the first run after that restore records it (restore.c,
 * part 70_restore).
 */
CREATE FUNCTION @extschema@.maintain(as_of timestamptz DEFAULT NULL)
RETURNS TABLE(action text, object text, detail text)
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET audit_log.internal = on
AS $$
DECLARE
    t timestamptz := coalesce(as_of, now());
    old_lock_timeout text := current_setting('lock_timeout');
BEGIN
    PERFORM @extschema@._load();    -- the library's settings, without the preload
    IF NOT pg_catalog.isfinite(t) THEN
        RAISE EXCEPTION 'as_of must be a finite time, not %', t
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Leave it NULL for now, or give a time such as now() + interval ''1 day''.';
    END IF;
    -- A later "now" would purge partitions still inside their window, with
    -- no policy change recorded: only a superuser may (tests, drills).
    IF t > now() AND NOT (SELECT r.rolsuper FROM pg_catalog.pg_roles r WHERE r.rolname = session_user) THEN
        RAISE EXCEPTION 'as_of later than now() is refused for a role that is not a superuser'
            USING ERRCODE = 'insufficient_privilege',
                  DETAIL = 'A later as_of would remove partitions whose events are still inside their retention window.',
                  HINT = 'Leave as_of NULL. To keep events for less time, change the policy with audit_log.set_retention(), which is recorded.';
    END IF;
    -- Short lock waits: the session's lock_timeout if it has one, else 250ms.
    IF old_lock_timeout = '0' THEN
        PERFORM set_config('lock_timeout', '250ms', true);
    END IF;
    IF NOT pg_try_advisory_xact_lock(hashtext('audit_log.maintain')) THEN
        PERFORM set_config('lock_timeout', old_lock_timeout, true);
        action := 'skipped'; object := 'maintain'; detail := 'another maintain() is running';
        RETURN NEXT;
        RETURN;
    END IF;

    -- 0. A dump restored into this database: nothing moves while its
    --    session works; then the restore is recorded and closed.
    IF EXISTS (SELECT 1 FROM @extschema@.restore_state) THEN
        IF @extschema@._restore_running() THEN
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

    RETURN QUERY SELECT * FROM @extschema@._premake(t, current_setting('audit_log.premake_days')::int);
    RETURN QUERY SELECT * FROM @extschema@._move_strays();
    RETURN QUERY SELECT * FROM @extschema@._seal_closed(t);
    RETURN QUERY SELECT * FROM @extschema@._purge_expired(t);
    RETURN QUERY SELECT * FROM @extschema@._index_closed(t);

    PERFORM set_config('lock_timeout', old_lock_timeout, true);
END
$$;

/*
 * _disown_partitions(): the day partitions and their leaves created by the
 * install or update script are data, not members of the extension (a
 * member cannot be dropped by maintain() and pg_dump leaves out its rows).
 * Returns how many it released.
 */
CREATE FUNCTION @extschema@._disown_partitions() RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    r record;
    n integer := 0;
BEGIN
    FOR r IN SELECT c.oid::regclass AS rel
               FROM pg_depend d JOIN pg_class c ON c.oid = d.objid
              WHERE d.classid = 'pg_class'::regclass AND d.refclassid = 'pg_extension'::regclass
                AND d.deptype = 'e' AND c.relnamespace = '@extschema@'::regnamespace
                AND d.refobjid = (SELECT e.oid FROM pg_extension e WHERE e.extname = 'audit_log')
                AND c.relname ~ '^events_p[0-9]{8}'
              ORDER BY c.relname
    LOOP
        EXECUTE pg_catalog.format('ALTER EXTENSION audit_log DROP TABLE %s', r.rel);
        n := n + 1;
    END LOOP;
    RETURN n;
END
$$;

/*
 * _record_at(occurred_at, category, event_type, object_name, details):
 * test hook writing an event at a given time.  Granted to nobody.
 */
CREATE FUNCTION @extschema@._record_at(occurred_at timestamptz, category text, event_type text,
    object_name text DEFAULT NULL, details jsonb DEFAULT NULL)
RETURNS bigint
AS 'MODULE_PATHNAME', 'audit_record_at'
LANGUAGE C VOLATILE;

-- Today (UTC) and the next 7 days are created last, by part 70_restore.

REVOKE ALL ON FUNCTION @extschema@._policies(),
    @extschema@._day_lo(date), @extschema@._ts(timestamptz), @extschema@._create_partition(date),
    @extschema@._layout(), @extschema@._lock_down(text), @extschema@._add_leaves(text),
    @extschema@._layout_matches(regclass), @extschema@._has_rows(regclass), @extschema@._relayout_day(date),
    @extschema@._split_leaf(oid, text, oid, timestamptz, timestamptz, text[], timestamptz),
    @extschema@._disown_partitions(), @extschema@._remember_leaf(text, text[]),
    @extschema@._fill_leaf_categories(),
    @extschema@._log_purge(text, timestamptz, timestamptz, text[], text, interval, bigint, jsonb),
    @extschema@._failed(text, text, text, text), @extschema@._day_created(date),
    @extschema@._premake(timestamptz, integer), @extschema@._move_strays(),
    @extschema@._seal_closed(timestamptz), @extschema@._purge_expired(timestamptz),
    @extschema@._leaves(), @extschema@._rows(oid), @extschema@._leaf_state(timestamptz),
    @extschema@._partition_info(), @extschema@.set_retention(text, interval, text[]),
    @extschema@.hold(text, timestamptz, timestamptz, text), @extschema@.release(text),
    @extschema@.maintain(timestamptz),
    @extschema@._record_at(timestamptz, text, text, text, jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION @extschema@._partition_info(), @extschema@._categories(),
    @extschema@._policies() TO audit_log_reader, audit_log_admin;
GRANT EXECUTE ON FUNCTION @extschema@.set_retention(text, interval, text[]),
    @extschema@.hold(text, timestamptz, timestamptz, text), @extschema@.release(text),
    @extschema@.maintain(timestamptz) TO audit_log_admin;
REVOKE ALL ON @extschema@.partitions, @extschema@.retention_policies, @extschema@.legal_holds FROM PUBLIC;
GRANT SELECT ON @extschema@.partitions, @extschema@.retention_policies, @extschema@.legal_holds
    TO audit_log_reader, audit_log_admin;
