/*
 * audit_log install script, part 30: daily partitions, retention policies,
 * legal holds and maintain().
 *
 * Layout.  audit_log.events is partitioned by RANGE (occurred_at), one
 * partition per UTC day, audit_log.events_pYYYYMMDD.  Each day is itself
 * partitioned by LIST (category), one leaf per retention policy:
 * events_pYYYYMMDD_<policy> holds the categories the policy names, and
 * events_pYYYYMMDD_default (the DEFAULT list partition) every other
 * category.  So a policy's expired data is always whole leaves, removed by
 * DROP TABLE, never by DELETE.  A day's layout is fixed when the day is
 * created; a leaf is kept as long as the longest policy of any category it
 * holds, so changing policies never removes rows inside their window.
 * audit_log.events_default (the top-level DEFAULT partition) catches rows
 * no day covers; maintain() moves them to their day.
 *
 * Locking.  New days are built detached and ATTACHed (SHARE UPDATE
 * EXCLUSIVE on audit_log.events: writers are not blocked).  Dropping a
 * leaf locks its (old) day only; dropping a whole day and moving stray rows
 * take ACCESS EXCLUSIVE locks on audit_log.events / events_default for a
 * moment.  maintain() runs with a short lock_timeout: a lock it cannot get
 * is reported as "retry" and tried again at the next run.  Two maintain()
 * calls never run at once: the second one skips (advisory lock).
 */

-- The categories of DESIGN.md.
CREATE FUNCTION @extschema@._categories() RETURNS text[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT '{app,audit,auth,config,data,ddl,privilege,role}'::text[] $$;
REVOKE ALL ON FUNCTION @extschema@._categories() FROM PUBLIC;

-- Retention policies.  The policy "default" is implicit (90 days) until
-- set_retention('default', ...) stores it.
CREATE TABLE @extschema@.retention_policy (
    policy      text PRIMARY KEY CHECK (policy ~ '^[a-z][a-z0-9_]{0,39}$'),
    keep        interval NOT NULL CHECK (keep > interval '0' AND keep <= interval '100 years'),
    categories  text[] CHECK ((policy = 'default') = (categories IS NULL)),
    changed_at  timestamptz NOT NULL DEFAULT pg_catalog.now(),
    changed_by  text NOT NULL DEFAULT session_user
);
COMMENT ON TABLE @extschema@.retention_policy IS
    'Retention policies; change them with audit_log.set_retention(), read them through audit_log.retention_policies.';
REVOKE ALL ON TABLE @extschema@.retention_policy FROM PUBLIC;
SELECT pg_catalog.pg_extension_config_dump('@extschema@.retention_policy', '');

-- Legal holds: time ranges never purged.
CREATE TABLE @extschema@.legal_hold (
    name       text PRIMARY KEY,
    from_time  timestamptz NOT NULL,
    to_time    timestamptz NOT NULL CHECK (from_time < to_time),
    reason     text,
    placed_at  timestamptz NOT NULL DEFAULT pg_catalog.now(),
    placed_by  text NOT NULL DEFAULT session_user
);
COMMENT ON TABLE @extschema@.legal_hold IS
    'Legal holds; place them with audit_log.hold(), read them through audit_log.legal_holds.';
REVOKE ALL ON TABLE @extschema@.legal_hold FROM PUBLIC;
SELECT pg_catalog.pg_extension_config_dump('@extschema@.legal_hold', '');

-- Every leaf partition retention dropped: verify() reports their windows
-- as purged.
CREATE TABLE @extschema@.purge_log (
    partition   text NOT NULL,
    from_time   timestamptz NOT NULL,
    to_time     timestamptz NOT NULL,
    categories  text[] NOT NULL,
    policy      text NOT NULL,
    rows        bigint NOT NULL,
    purged_at   timestamptz NOT NULL DEFAULT pg_catalog.now(),
    PRIMARY KEY (partition, purged_at)
);
COMMENT ON TABLE @extschema@.purge_log IS
    'Partitions removed by retention: what they held and when they were dropped.';
REVOKE ALL ON TABLE @extschema@.purge_log FROM PUBLIC;
SELECT pg_catalog.pg_extension_config_dump('@extschema@.purge_log', '');

-- The seal chain (part 40_integrity has its functions): one row per
-- sealed window.  Seal records outlive the partitions they cover.
CREATE TABLE @extschema@.seal (
    window_start    timestamptz PRIMARY KEY,
    window_end      timestamptz NOT NULL UNIQUE CHECK (window_end > window_start),
    events          bigint NOT NULL,
    event_ids       int8multirange NOT NULL,
    event_hashes    bytea NOT NULL,
    content_digest  bytea NOT NULL,
    prev_digest     bytea,
    digest          bytea NOT NULL,
    sealed_at       timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp()
);
COMMENT ON TABLE @extschema@.seal IS
    'Seal chain: one row per sealed window; read it through audit_log.seals.';
REVOKE ALL ON TABLE @extschema@.seal FROM PUBLIC;
SELECT pg_catalog.pg_extension_config_dump('@extschema@.seal', '');

/*
 * _policies(): every policy with its effective categories (for default:
 * every category no other policy names).
 */
CREATE FUNCTION @extschema@._policies()
RETURNS TABLE(policy text, keep interval, categories text[], changed_at timestamptz, changed_by text)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    WITH named AS (
        SELECT r.policy, r.keep, r.categories, r.changed_at, r.changed_by
          FROM @extschema@.retention_policy r WHERE r.policy <> 'default'
    ), dflt AS (
        SELECT 'default'::text AS policy,
               coalesce((SELECT r.keep FROM @extschema@.retention_policy r WHERE r.policy = 'default'),
                        interval '90 days') AS keep,
               ARRAY(SELECT c FROM unnest(@extschema@._categories()) c
                      WHERE NOT EXISTS (SELECT 1 FROM named n WHERE c = ANY (n.categories))
                      ORDER BY c) AS categories,
               (SELECT r.changed_at FROM @extschema@.retention_policy r WHERE r.policy = 'default') AS changed_at,
               (SELECT r.changed_by FROM @extschema@.retention_policy r WHERE r.policy = 'default') AS changed_by
    )
    SELECT * FROM named UNION ALL SELECT * FROM dflt
$$;

/*
 * _day_bounds(day): [day 00:00 UTC, next day 00:00 UTC), whatever TimeZone.
 */
CREATE FUNCTION @extschema@._day_lo(day date) RETURNS timestamptz
LANGUAGE sql IMMUTABLE STRICT
AS $$ SELECT day::timestamp AT TIME ZONE 'UTC' $$;

/*
 * _ts(t): a timestamp as text that does not depend on TimeZone/DateStyle.
 */
CREATE FUNCTION @extschema@._ts(t timestamptz) RETURNS text
LANGUAGE sql IMMUTABLE STRICT
AS $$ SELECT pg_catalog.to_char(t AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS"+00"') $$;

/*
 * _create_partition(day): create the day's partition [day 00:00 UTC,
 * day+1 00:00 UTC) with one leaf per retention policy, unless it exists;
 * true when it created one.  Built detached, then attached, so writers are
 * not blocked.  Callers mark the internal operation.
 */
CREATE FUNCTION @extschema@._create_partition(day date) RETURNS boolean
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    part text := @extschema@._partition_name(day);
    p record;
    leaves text[] := '{}';
    leaf text;
    prev boolean;
BEGIN
    IF pg_catalog.to_regclass(pg_catalog.format('%I.%I', '@extschema@', part)) IS NOT NULL THEN
        RETURN false;
    END IF;
    prev := @extschema@._internal(true);    -- the extension's own DDL: not a tamper attempt
    EXECUTE pg_catalog.format('CREATE TABLE %I.%I (LIKE %I.events) PARTITION BY LIST (category)',
                              '@extschema@', part, '@extschema@');
    FOR p IN SELECT r.policy, r.categories FROM @extschema@.retention_policy r
              WHERE r.policy <> 'default' AND cardinality(r.categories) > 0 ORDER BY r.policy
    LOOP
        leaf := part || '_' || p.policy;
        EXECUTE pg_catalog.format('CREATE TABLE %I.%I PARTITION OF %I.%I FOR VALUES IN (%s)',
            '@extschema@', leaf, '@extschema@', part,
            (SELECT string_agg(quote_literal(c), ', ' ORDER BY c) FROM unnest(p.categories) c));
        leaves := leaves || leaf;
    END LOOP;
    EXECUTE pg_catalog.format('CREATE TABLE %I.%I PARTITION OF %I.%I DEFAULT',
                              '@extschema@', part || '_default', '@extschema@', part);
    leaves := leaves || (part || '_default') || part;
    FOREACH leaf IN ARRAY leaves LOOP
        EXECUTE pg_catalog.format('REVOKE ALL ON TABLE %I.%I FROM PUBLIC', '@extschema@', leaf);
        EXECUTE pg_catalog.format(
            'REVOKE INSERT, UPDATE, DELETE, TRUNCATE, TRIGGER, REFERENCES ON TABLE %I.%I FROM CURRENT_USER',
            '@extschema@', leaf);
    END LOOP;
    EXECUTE pg_catalog.format('ALTER TABLE %I.events ATTACH PARTITION %I.%I FOR VALUES FROM (%L) TO (%L)',
        '@extschema@', '@extschema@', part,
        @extschema@._ts(@extschema@._day_lo(day)), @extschema@._ts(@extschema@._day_lo(day + 1)));
    PERFORM @extschema@._internal(prev);
    RETURN true;
END
$$;

/*
 * _leaves(): every leaf partition of the days: its day, range and the
 * categories it holds.  A day that is a plain table (no policy level)
 * is its own leaf holding every category.
 */
CREATE FUNCTION @extschema@._leaves()
RETURNS TABLE(leaf oid, leaf_name text, day_oid oid, day_name text, lo timestamptz, hi timestamptz, categories text[])
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    WITH days AS (
        SELECT c.oid, c.relname::text AS name, c.relkind,
               to_date(substr(c.relname, 9, 8), 'YYYYMMDD') AS day
          FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
         WHERE i.inhparent = '@extschema@.events'::regclass
           AND c.relname ~ '^events_p[0-9]{8}$'
    ), subs AS (
        SELECT d.oid AS day_oid, d.name AS day_name, d.day, c.oid, c.relname::text AS name,
               pg_get_expr(c.relpartbound, c.oid) AS bound
          FROM days d JOIN pg_inherits i ON i.inhparent = d.oid JOIN pg_class c ON c.oid = i.inhrelid
         WHERE d.relkind = 'p'
    ), listed AS (
        SELECT s.*, ARRAY(SELECT m[1] FROM regexp_matches(s.bound, '''([a-z]+)''', 'g') m ORDER BY 1) AS cats
          FROM subs s
    )
    SELECT l.oid, l.name, l.day_oid, l.day_name,
           @extschema@._day_lo(l.day), @extschema@._day_lo(l.day + 1),
           CASE WHEN l.bound = 'DEFAULT'
                THEN ARRAY(SELECT c FROM unnest(@extschema@._categories()) c
                            WHERE NOT EXISTS (SELECT 1 FROM listed l2
                                               WHERE l2.day_oid = l.day_oid AND l2.bound <> 'DEFAULT'
                                                 AND c = ANY (l2.cats))
                            ORDER BY c)
                ELSE l.cats END
      FROM listed l
    UNION ALL
    SELECT d.oid, d.name, d.oid, d.name, @extschema@._day_lo(d.day), @extschema@._day_lo(d.day + 1),
           @extschema@._categories()
      FROM days d WHERE d.relkind = 'r'
$$;

/*
 * _rows(rel): exact row count of one partition.
 */
CREATE FUNCTION @extschema@._rows(rel oid) RETURNS bigint
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    n bigint;
BEGIN
    EXECUTE pg_catalog.format('SELECT count(*) FROM ONLY %s', rel::regclass) INTO n;
    RETURN n;
END
$$;

/*
 * _leaf_state(as_of): every leaf with its policy, expiry, seal and hold.
 */
CREATE FUNCTION @extschema@._leaf_state(as_of timestamptz DEFAULT NULL)
RETURNS TABLE(leaf oid, leaf_name text, day_oid oid, day_name text, lo timestamptz, hi timestamptz,
              categories text[], policy text, keep interval, expires timestamptz,
              sealed boolean, holds text[])
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    WITH pol AS MATERIALIZED (SELECT * FROM @extschema@._policies()),
         chain AS MATERIALIZED (SELECT coalesce(max(s.window_end), '-infinity') AS sealed_to
                                  FROM @extschema@.seal s)
    SELECT l.leaf, l.leaf_name, l.day_oid, l.day_name, l.lo, l.hi, l.categories,
           k.policy, k.keep,
           ((l.hi AT TIME ZONE 'UTC') + k.keep) AT TIME ZONE 'UTC',
           l.hi <= (SELECT c.sealed_to FROM chain c),
           ARRAY(SELECT h.name FROM @extschema@.legal_hold h
                  WHERE h.from_time < l.hi AND h.to_time > l.lo ORDER BY h.name)
      FROM @extschema@._leaves() l
      CROSS JOIN LATERAL (
          SELECT p.policy, p.keep FROM pol p
           WHERE p.categories && l.categories OR (p.policy = 'default' AND cardinality(l.categories) = 0)
           ORDER BY p.keep DESC, p.policy LIMIT 1) k
$$;

/*
 * _partition_info(): the rows of the audit_log.partitions view.
 */
CREATE FUNCTION @extschema@._partition_info()
RETURNS TABLE(partition text, range tstzrange, rows bigint, bytes bigint, policy text,
              expires timestamptz, sealed boolean, held boolean, categories text[], day text)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT '@extschema@.' || s.leaf_name, tstzrange(s.lo, s.hi), @extschema@._rows(s.leaf),
           pg_total_relation_size(s.leaf), s.policy, s.expires, s.sealed,
           cardinality(s.holds) > 0, s.categories, '@extschema@.' || s.day_name
      FROM @extschema@._leaf_state() s
    UNION ALL
    SELECT '@extschema@.events_default', NULL, @extschema@._rows('@extschema@.events_default'::regclass),
           pg_total_relation_size('@extschema@.events_default'::regclass), NULL, NULL, NULL, NULL, NULL, NULL
$$;

CREATE VIEW @extschema@.partitions AS
SELECT partition, range, rows, bytes, policy, expires, sealed, held, categories, day
  FROM @extschema@._partition_info();
COMMENT ON VIEW @extschema@.partitions IS
    'Every leaf partition of audit_log.events: one per day (UTC) and retention policy, plus the safety-net default partition.';
COMMENT ON COLUMN @extschema@.partitions.partition IS 'Leaf partition, audit_log.events_pYYYYMMDD_<policy> (or audit_log.events_default, the safety net).';
COMMENT ON COLUMN @extschema@.partitions.range IS 'Time range [from, to) of occurred_at the partition holds: one UTC day.';
COMMENT ON COLUMN @extschema@.partitions.rows IS 'Number of events in the partition (exact count).';
COMMENT ON COLUMN @extschema@.partitions.bytes IS 'Size on disk, indexes and TOAST included.';
COMMENT ON COLUMN @extschema@.partitions.policy IS 'Retention policy that decides when the partition is dropped (the longest policy of any category it holds).';
COMMENT ON COLUMN @extschema@.partitions.expires IS 'When maintain() may drop it: end of its range plus the policy''s keep.';
COMMENT ON COLUMN @extschema@.partitions.sealed IS 'Whether every seal window of its range is sealed.';
COMMENT ON COLUMN @extschema@.partitions.held IS 'Whether a legal hold overlaps its range (then it is never dropped).';
COMMENT ON COLUMN @extschema@.partitions.categories IS 'Event categories the partition holds.';
COMMENT ON COLUMN @extschema@.partitions.day IS 'The day partition audit_log.events_pYYYYMMDD it belongs to.';

CREATE VIEW @extschema@.retention_policies AS
SELECT policy, keep, categories, changed_at, changed_by FROM @extschema@._policies();
COMMENT ON VIEW @extschema@.retention_policies IS
    'Retention policies: how long events of each category are kept. default covers every category no other policy names.';
COMMENT ON COLUMN @extschema@.retention_policies.policy IS 'Policy name.';
COMMENT ON COLUMN @extschema@.retention_policies.keep IS 'How long events are kept after the end of their day.';
COMMENT ON COLUMN @extschema@.retention_policies.categories IS 'Event categories the policy covers.';
COMMENT ON COLUMN @extschema@.retention_policies.changed_at IS 'When the policy was last set (NULL: built-in default).';
COMMENT ON COLUMN @extschema@.retention_policies.changed_by IS 'Who last set it.';

CREATE VIEW @extschema@.legal_holds AS
SELECT name, from_time, to_time, reason, placed_at, placed_by FROM @extschema@.legal_hold;
COMMENT ON VIEW @extschema@.legal_holds IS 'Legal holds: time ranges retention never purges.';
COMMENT ON COLUMN @extschema@.legal_holds.name IS 'Name of the hold, used to release it.';
COMMENT ON COLUMN @extschema@.legal_holds.from_time IS 'Start of the held range (inclusive).';
COMMENT ON COLUMN @extschema@.legal_holds.to_time IS 'End of the held range (exclusive).';
COMMENT ON COLUMN @extschema@.legal_holds.reason IS 'Why the range is held.';
COMMENT ON COLUMN @extschema@.legal_holds.placed_at IS 'When the hold was placed.';
COMMENT ON COLUMN @extschema@.legal_holds.placed_by IS 'Who placed it (session user).';

/*
 * set_retention(policy, keep, categories): create or change a policy.
 */
CREATE FUNCTION @extschema@.set_retention(policy text, keep interval, categories text[] DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    cats text[];
    c text;
    other text;
    old record;
BEGIN
    IF policy IS NULL THEN
        RAISE EXCEPTION 'retention policy name must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF policy !~ '^[a-z][a-z0-9_]{0,39}$' THEN
        RAISE EXCEPTION 'invalid retention policy name "%"', policy
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'A policy name is 1 to 40 characters: lowercase letters, digits and underscores, starting with a letter.';
    END IF;
    IF keep IS NULL THEN
        RAISE EXCEPTION 'retention period must not be null' USING ERRCODE = 'null_value_not_allowed',
            HINT = 'Give an interval such as ''90 days''.';
    END IF;
    IF keep <= interval '0' THEN
        RAISE EXCEPTION 'retention period must be positive, not %', keep
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Give an interval such as ''90 days''.';
    END IF;
    IF keep > interval '100 years' THEN
        RAISE EXCEPTION 'retention period % is longer than 100 years', keep
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = 'The longest retention period is 100 years.';
    END IF;
    SELECT * INTO old FROM @extschema@.retention_policy r WHERE r.policy = set_retention.policy;
    IF policy = 'default' THEN
        IF categories IS NOT NULL THEN
            RAISE EXCEPTION 'the default retention policy takes no categories'
                USING ERRCODE = 'invalid_parameter_value',
                      DETAIL = 'Policy default covers every category no other policy names.',
                      HINT = 'Call set_retention(''default'', keep) without categories.';
        END IF;
    ELSE
        cats := coalesce(categories, old.categories);
        IF cats IS NULL OR cardinality(cats) = 0 THEN
            RAISE EXCEPTION 'retention policy "%" needs at least one category', policy
                USING ERRCODE = 'invalid_parameter_value',
                      HINT = 'Name the categories it covers, e.g. set_retention(''short'', ''30 days'', ''{auth}'').';
        END IF;
        FOREACH c IN ARRAY cats LOOP
            IF c IS NULL OR NOT c = ANY (@extschema@._categories()) THEN
                RAISE EXCEPTION 'unknown event category "%"', coalesce(c, 'NULL')
                    USING ERRCODE = 'invalid_parameter_value',
                          HINT = 'The categories are ' || array_to_string(@extschema@._categories(), ', ') || '.';
            END IF;
            SELECT r.policy INTO other FROM @extschema@.retention_policy r
             WHERE r.policy <> set_retention.policy AND c = ANY (r.categories);
            IF other IS NOT NULL THEN
                RAISE EXCEPTION 'category "%" already belongs to retention policy "%"', c, other
                    USING ERRCODE = 'duplicate_object',
                          DETAIL = 'A category can belong to one retention policy only.',
                          HINT = 'Remove it from policy "' || other || '" first.';
            END IF;
        END LOOP;
        cats := ARRAY(SELECT DISTINCT x FROM unnest(cats) x ORDER BY x);
    END IF;

    PERFORM @extschema@._internal(true);
    INSERT INTO @extschema@.retention_policy AS r (policy, keep, categories, changed_at, changed_by)
    VALUES (policy, keep, cats, now(), session_user)
    ON CONFLICT ON CONSTRAINT retention_policy_pkey DO UPDATE
       SET keep = EXCLUDED.keep, categories = EXCLUDED.categories,
           changed_at = EXCLUDED.changed_at, changed_by = EXCLUDED.changed_by;
    PERFORM @extschema@._internal(false);

    PERFORM @extschema@._record('audit', 'audit.retention_changed', 'success', 'retention_policy', policy,
        'SELECT audit_log.set_retention',
        jsonb_build_object('policy', policy, 'keep', keep::text, 'categories', to_jsonb(cats),
                           'previous_keep', old.keep::text, 'previous_categories', to_jsonb(old.categories)));
END
$$;

/*
 * hold(name, from_time, to_time, reason): place a legal hold.
 */
CREATE FUNCTION @extschema@.hold(name text, from_time timestamptz, to_time timestamptz, reason text)
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF name IS NULL OR from_time IS NULL OR to_time IS NULL THEN
        RAISE EXCEPTION 'legal hold name, from_time and to_time must not be null'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF btrim(name) = '' THEN
        RAISE EXCEPTION 'legal hold name must not be empty' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF from_time >= to_time THEN
        RAISE EXCEPTION 'legal hold "%" starts at or after its end', name
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = 'from_time must be earlier than to_time.';
    END IF;
    IF EXISTS (SELECT 1 FROM @extschema@.legal_hold h WHERE h.name = hold.name) THEN
        RAISE EXCEPTION 'legal hold "%" already exists', name
            USING ERRCODE = 'duplicate_object', HINT = 'Release it first or choose another name.';
    END IF;
    PERFORM @extschema@._internal(true);
    INSERT INTO @extschema@.legal_hold (name, from_time, to_time, reason) VALUES (name, from_time, to_time, reason);
    PERFORM @extschema@._internal(false);
    PERFORM @extschema@._record('audit', 'audit.hold_placed', 'success', 'legal_hold', name,
        'SELECT audit_log.hold',
        jsonb_build_object('name', name, 'from_time', @extschema@._ts(from_time),
                           'to_time', @extschema@._ts(to_time), 'reason', reason));
END
$$;

/*
 * release(name): remove a legal hold.
 */
CREATE FUNCTION @extschema@.release(name text)
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    h record;
BEGIN
    PERFORM @extschema@._internal(true);
    DELETE FROM @extschema@.legal_hold l WHERE l.name = release.name RETURNING * INTO h;
    PERFORM @extschema@._internal(false);
    IF h.name IS NULL THEN
        RAISE EXCEPTION 'legal hold "%" does not exist', coalesce(name, 'NULL')
            USING ERRCODE = 'undefined_object', HINT = 'See audit_log.legal_holds.';
    END IF;
    PERFORM @extschema@._record('audit', 'audit.hold_released', 'success', 'legal_hold', name,
        'SELECT audit_log.release',
        jsonb_build_object('name', name, 'from_time', @extschema@._ts(h.from_time),
                           'to_time', @extschema@._ts(h.to_time), 'reason', h.reason));
END
$$;

/*
 * maintain(as_of): create partitions ahead, move stray rows out of the
 * default partition, seal closed windows, drop expired partitions.
 * Returns what it did.  as_of stands for "now" (tests).  Each step, and
 * each day or leaf within a step, is on its own: an error is reported as
 * an "error" row (with its SQLSTATE) and the rest goes on.  While another
 * session restores a dump into the database it does nothing; the first
 * run after that restore records it (restore.c, part 70_restore).
 */
CREATE FUNCTION @extschema@.maintain(as_of timestamptz DEFAULT NULL)
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

REVOKE ALL ON FUNCTION @extschema@._categories(), @extschema@._policies(),
    @extschema@._day_lo(date), @extschema@._ts(timestamptz), @extschema@._create_partition(date),
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
