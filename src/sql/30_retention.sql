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

-- The categories each leaf partition of a day holds, recorded by the
-- function that creates the leaf (_add_leaves(), _split_leaf()) and
-- forgotten when the leaf is dropped.  A LIST leaf holds the categories of
-- its bound; the DEFAULT leaf those no LIST leaf of its day named when the
-- day was laid out (dropping a LIST leaf later does not move its
-- categories into it).  Keyed by name, not OID: the partitions are data
-- that pg_dump keeps, and this table is dumped with them.
CREATE TABLE @extschema@.leaf_categories (
    leaf        text PRIMARY KEY,
    categories  text[] NOT NULL
);
COMMENT ON TABLE @extschema@.leaf_categories IS
    'The event categories each leaf partition of audit_log.events holds, recorded when it was created; read them through audit_log.partitions.';
REVOKE ALL ON TABLE @extschema@.leaf_categories FROM PUBLIC;
SELECT pg_catalog.pg_extension_config_dump('@extschema@.leaf_categories', '');

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
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
AS $$ SELECT day::timestamp AT TIME ZONE 'UTC' $$;

/*
 * _ts(t): a timestamp as text that does not depend on TimeZone/DateStyle.
 */
CREATE FUNCTION @extschema@._ts(t timestamptz) RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
AS $$ SELECT pg_catalog.to_char(t AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS"+00"') $$;

/*
 * _layout(): the leaves a day gets when it is laid out now: one LIST leaf
 * per named policy that has categories, and the DEFAULT leaf (policy
 * default) for every other category; categories sorted.
 */
CREATE FUNCTION @extschema@._layout() RETURNS TABLE(policy text, categories text[])
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT p.policy, ARRAY(SELECT c FROM unnest(p.categories) c ORDER BY c)
      FROM @extschema@._policies() p
     WHERE p.policy = 'default' OR cardinality(p.categories) > 0
$$;

/*
 * _remember_leaf(leaf, categories): record the categories of a leaf just
 * created (leaf_categories).
 */
CREATE FUNCTION @extschema@._remember_leaf(leaf text, categories text[]) RETURNS void
LANGUAGE sql
SET search_path = pg_catalog, pg_temp
AS $$
    INSERT INTO @extschema@.leaf_categories AS k (leaf, categories) VALUES (leaf, categories)
    ON CONFLICT (leaf) DO UPDATE SET categories = EXCLUDED.categories
$$;

/*
 * _lock_down(rel): nobody may write an audit table directly, its owner
 * included (the extension's own code passes the tamper guard).
 */
CREATE FUNCTION @extschema@._lock_down(rel text) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    EXECUTE pg_catalog.format('REVOKE ALL ON TABLE %I.%I FROM PUBLIC', '@extschema@', rel);
    EXECUTE pg_catalog.format(
        'REVOKE INSERT, UPDATE, DELETE, TRUNCATE, TRIGGER, REFERENCES ON TABLE %I.%I FROM CURRENT_USER',
        '@extschema@', rel);
END
$$;

/*
 * _add_leaves(part): the leaves of the day partition part, which has none,
 * as _layout() says.  Callers mark the internal operation and, for a day
 * already attached, hold its ACCESS EXCLUSIVE lock.
 */
CREATE FUNCTION @extschema@._add_leaves(part text) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    p record;
BEGIN
    FOR p IN SELECT l.policy, l.categories FROM @extschema@._layout() l
              ORDER BY l.policy = 'default', l.policy
    LOOP
        IF p.policy = 'default' THEN
            EXECUTE pg_catalog.format('CREATE TABLE %I.%I PARTITION OF %I.%I DEFAULT',
                                      '@extschema@', part || '_' || p.policy, '@extschema@', part);
        ELSE
            EXECUTE pg_catalog.format('CREATE TABLE %I.%I PARTITION OF %I.%I FOR VALUES IN (%s)',
                '@extschema@', part || '_' || p.policy, '@extschema@', part,
                (SELECT string_agg(quote_literal(c), ', ' ORDER BY c) FROM unnest(p.categories) c));
        END IF;
        PERFORM @extschema@._lock_down(part || '_' || p.policy);
        PERFORM @extschema@._remember_leaf(part || '_' || p.policy, p.categories);
    END LOOP;
END
$$;

/*
 * _create_partition(day): create the day's partition [day 00:00 UTC,
 * day+1 00:00 UTC) with one leaf per retention policy, unless it exists;
 * true when it created one.  Built detached, then attached, so writers are
 * not blocked.  Callers mark the internal operation.
 */
CREATE FUNCTION @extschema@._create_partition(day date) RETURNS boolean
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
SET audit_log.internal = on
AS $$
DECLARE
    part text := @extschema@._partition_name(day);
BEGIN
    IF pg_catalog.to_regclass(pg_catalog.format('%I.%I', '@extschema@', part)) IS NOT NULL THEN
        RETURN false;
    END IF;
    EXECUTE pg_catalog.format('CREATE TABLE %I.%I (LIKE %I.events) PARTITION BY LIST (category)',
                              '@extschema@', part, '@extschema@');
    PERFORM @extschema@._add_leaves(part);
    PERFORM @extschema@._lock_down(part);
    EXECUTE pg_catalog.format('ALTER TABLE %I.events ATTACH PARTITION %I.%I FOR VALUES FROM (%L) TO (%L)',
        '@extschema@', '@extschema@', part,
        @extschema@._ts(@extschema@._day_lo(day)), @extschema@._ts(@extschema@._day_lo(day + 1)));
    RETURN true;
END
$$;

/*
 * _layout_matches(day): has the day partition the leaves _layout() gives
 * (same names, same recorded categories)?
 */
CREATE FUNCTION @extschema@._layout_matches(day regclass) RETURNS boolean
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    WITH cur AS (
        SELECT c.relname::text AS name, k.categories AS cats
          FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
          LEFT JOIN @extschema@.leaf_categories k ON k.leaf = c.relname::text
         WHERE i.inhparent = day
    ), want AS (
        SELECT (SELECT d.relname::text FROM pg_class d WHERE d.oid = day) || '_' || l.policy AS name,
               l.categories AS cats
          FROM @extschema@._layout() l
    )
    SELECT NOT EXISTS (SELECT * FROM cur EXCEPT SELECT * FROM want)
       AND NOT EXISTS (SELECT * FROM want EXCEPT SELECT * FROM cur)
$$;

/*
 * _has_rows(rel): does the table (with its partitions) hold any row?
 */
CREATE FUNCTION @extschema@._has_rows(rel regclass) RETURNS boolean
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    found boolean;
BEGIN
    EXECUTE pg_catalog.format('SELECT EXISTS (SELECT 1 FROM %s)', rel) INTO found;
    RETURN found;
END
$$;

/*
 * _relayout_day(day): give a day partition that holds no event yet the
 * leaves of the policies as they are now, so that a policy applies at
 * once to the days already created ahead (set_retention() and maintain()
 * call it).  false when the day does not exist, already has that layout
 * or holds events: those keep their leaves, and maintain() splits a leaf
 * when the shortest policy of its categories expires.  Waits for the
 * day's ACCESS EXCLUSIVE lock within the caller's lock_timeout
 * (lock_not_available when a writer holds it, before anything changed).
 */
CREATE FUNCTION @extschema@._relayout_day(day date) RETURNS boolean
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
SET audit_log.internal = on       -- the extension's own DDL
AS $$
DECLARE
    part text := @extschema@._partition_name(day);
    rel regclass := pg_catalog.to_regclass(pg_catalog.format('%I.%I', '@extschema@', part));
    l record;
BEGIN
    IF rel IS NULL OR (SELECT c.relkind FROM pg_class c WHERE c.oid = rel) <> 'p'
       OR @extschema@._layout_matches(rel) OR @extschema@._has_rows(rel) THEN
        RETURN false;
    END IF;
    -- The day and its leaves (LOCK recurses), then look again.
    EXECUTE pg_catalog.format('LOCK TABLE %s IN ACCESS EXCLUSIVE MODE', rel);
    IF @extschema@._has_rows(rel) THEN
        RETURN false;
    END IF;
    FOR l IN SELECT i.inhrelid::regclass AS leaf, c.relname::text AS name
               FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = rel LOOP
        EXECUTE pg_catalog.format('DROP TABLE %s', l.leaf);
        DELETE FROM @extschema@.leaf_categories k WHERE k.leaf = l.name;
    END LOOP;
    PERFORM @extschema@._add_leaves(part);
    RETURN true;
END
$$;

/*
 * _leaves(): every leaf partition of the days: its day, range and the
 * categories it holds, as recorded when it was created (leaf_categories;
 * NULL when none is: such a leaf is never purged).  A day that is a plain
 * table (no policy level, made by 1.0) is its own leaf holding every
 * category.
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
    )
    SELECT c.oid, c.relname::text, d.oid, d.name, @extschema@._day_lo(d.day), @extschema@._day_lo(d.day + 1),
           k.categories
      FROM days d JOIN pg_inherits i ON i.inhparent = d.oid JOIN pg_class c ON c.oid = i.inhrelid
      LEFT JOIN @extschema@.leaf_categories k ON k.leaf = c.relname::text
     WHERE d.relkind = 'p'
    UNION ALL
    SELECT d.oid, d.name, d.oid, d.name, @extschema@._day_lo(d.day), @extschema@._day_lo(d.day + 1),
           @extschema@._categories()
      FROM days d WHERE d.relkind = 'r'
$$;

/*
 * _fill_leaf_categories(): record the categories of the leaves that have
 * no record: those of a database updated from 1.0, or restored from a dump
 * made before leaf_categories existed.  Only here are they read back from
 * the partition bounds: a DEFAULT leaf holds the categories no LIST leaf
 * of its day names, except those whose rows the day already purged
 * (purge_log): they had a leaf of their own.  Returns how many leaves it
 * recorded.
 */
CREATE FUNCTION @extschema@._fill_leaf_categories() RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    n integer;
BEGIN
    WITH subs AS (
        SELECT d.oid AS day_oid, to_date(substr(d.relname, 9, 8), 'YYYYMMDD') AS day,
               c.relname::text AS name, pg_get_expr(c.relpartbound, c.oid) AS bound
          FROM pg_inherits di JOIN pg_class d ON d.oid = di.inhrelid
          JOIN pg_inherits i ON i.inhparent = d.oid JOIN pg_class c ON c.oid = i.inhrelid
         WHERE di.inhparent = '@extschema@.events'::regclass
           AND d.relname ~ '^events_p[0-9]{8}$' AND d.relkind = 'p'
    ), listed AS (
        SELECT s.*, ARRAY(SELECT m[1] FROM regexp_matches(s.bound, '''([a-z]+)''', 'g') m ORDER BY 1) AS cats
          FROM subs s
    ), purged AS (
        SELECT p.from_time, array_agg(DISTINCT c) AS cats
          FROM @extschema@.purge_log p CROSS JOIN LATERAL unnest(p.categories) c
         GROUP BY p.from_time
    )
    INSERT INTO @extschema@.leaf_categories (leaf, categories)
    SELECT l.name,
           CASE WHEN l.bound = 'DEFAULT'
                THEN ARRAY(SELECT c FROM unnest(@extschema@._categories()) c
                            WHERE NOT EXISTS (SELECT 1 FROM listed l2
                                               WHERE l2.day_oid = l.day_oid AND l2.bound <> 'DEFAULT'
                                                 AND c = ANY (l2.cats))
                              AND NOT c = ANY (coalesce(pu.cats, '{}'))
                            ORDER BY c)
                ELSE l.cats END
      FROM listed l LEFT JOIN purged pu ON pu.from_time = @extschema@._day_lo(l.day)
     WHERE NOT EXISTS (SELECT 1 FROM @extschema@.leaf_categories k WHERE k.leaf = l.name)
    ON CONFLICT DO NOTHING;
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END
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
 * _leaf_state(as_of): every leaf with its seal and hold, and the policies
 * of the categories it holds: the first to expire (policy, keep, expires:
 * when maintain() acts on the leaf), the last (last_policy, last_keep,
 * last_expires: when all of it has expired) and how many (policies).  A
 * leaf holds several policies' categories when its day was created before
 * a policy change and held events by then.
 */
CREATE FUNCTION @extschema@._leaf_state(as_of timestamptz DEFAULT NULL)
RETURNS TABLE(leaf oid, leaf_name text, day_oid oid, day_name text, lo timestamptz, hi timestamptz,
              categories text[], policy text, keep interval, expires timestamptz,
              sealed boolean, holds text[], policies integer, last_policy text, last_keep interval,
              last_expires timestamptz)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    WITH pol AS MATERIALIZED (SELECT * FROM @extschema@._policies()),
         chain AS MATERIALIZED (SELECT coalesce(max(s.window_end), '-infinity') AS sealed_to
                                  FROM @extschema@.seal s)
    SELECT l.leaf, l.leaf_name, l.day_oid, l.day_name, l.lo, l.hi, l.categories,
           k.first[1], k.first_keep[1], k.first_expires,
           l.hi <= (SELECT c.sealed_to FROM chain c),
           ARRAY(SELECT h.name FROM @extschema@.legal_hold h
                  WHERE h.from_time < l.hi AND h.to_time > l.lo ORDER BY h.name),
           k.n, k.last[1], k.last_keep[1], k.last_expires
      FROM @extschema@._leaves() l
      CROSS JOIN LATERAL (
          SELECT count(*)::integer AS n,
                 array_agg(x.policy ORDER BY x.expires, x.policy) AS first,
                 array_agg(x.keep ORDER BY x.expires, x.policy) AS first_keep,
                 min(x.expires) AS first_expires,
                 array_agg(x.policy ORDER BY x.expires DESC, x.policy) AS last,
                 array_agg(x.keep ORDER BY x.expires DESC, x.policy) AS last_keep,
                 max(x.expires) AS last_expires
            FROM (SELECT p.policy, p.keep, ((l.hi AT TIME ZONE 'UTC') + p.keep) AT TIME ZONE 'UTC' AS expires
                    FROM pol p
                   WHERE p.categories && l.categories
                      OR (p.policy = 'default' AND cardinality(l.categories) = 0)) x) k
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
COMMENT ON COLUMN @extschema@.partitions.policy IS 'Retention policy that expires first among the categories the partition holds (it holds the categories of one policy, unless its day held events before a policy change).';
COMMENT ON COLUMN @extschema@.partitions.expires IS 'When maintain() acts on it: end of its range plus that policy''s keep. It drops the partition then, after moving the rows of categories whose policies keep them longer into partitions of their own.';
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
 * set_retention(policy, keep, categories): create or change a policy.  It
 * applies at once: every day partition that holds no event yet is laid
 * out again for the new policies (_relayout_day()); a day whose lock a
 * writer holds (waited for within lock_timeout, 250ms when the session has
 * none) is left to the next maintain().  Days that hold events keep their
 * leaves until maintain() splits them (_split_leaf()).
 */
CREATE FUNCTION @extschema@.set_retention(policy text, keep interval, categories text[] DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET audit_log.internal = on
AS $$
DECLARE
    cats text[];
    c text;
    other text;
    old record;
    d date;
    old_lock_timeout text := current_setting('lock_timeout');
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

    INSERT INTO @extschema@.retention_policy AS r (policy, keep, categories, changed_at, changed_by)
    VALUES (policy, keep, cats, now(), session_user)
    ON CONFLICT ON CONSTRAINT retention_policy_pkey DO UPDATE
       SET keep = EXCLUDED.keep, categories = EXCLUDED.categories,
           changed_at = EXCLUDED.changed_at, changed_by = EXCLUDED.changed_by;

    -- The days still empty take the new layout now.
    IF old_lock_timeout = '0' THEN
        PERFORM set_config('lock_timeout', '250ms', true);
    END IF;
    FOR d IN SELECT to_date(substr(k.relname, 9, 8), 'YYYYMMDD')
               FROM pg_inherits i JOIN pg_class k ON k.oid = i.inhrelid
              WHERE i.inhparent = '@extschema@.events'::regclass AND k.relname ~ '^events_p[0-9]{8}$'
              ORDER BY 1
    LOOP
        BEGIN
            PERFORM @extschema@._relayout_day(d);
        EXCEPTION WHEN lock_not_available OR deadlock_detected THEN
            NULL;   -- a writer is in it: maintain() tries again while it is empty
        END;
    END LOOP;
    PERFORM set_config('lock_timeout', old_lock_timeout, true);

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
SET audit_log.internal = on
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
    INSERT INTO @extschema@.legal_hold (name, from_time, to_time, reason) VALUES (name, from_time, to_time, reason);
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
SET audit_log.internal = on
AS $$
DECLARE
    h record;
BEGIN
    DELETE FROM @extschema@.legal_hold l WHERE l.name = release.name RETURNING * INTO h;
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
 * _log_purge(leaf_name, lo, hi, cats, pol, keep, n, extra): what retention
 * removed from a leaf: a purge_log row (verify() reports its windows as
 * purged) and an audit.purged event, whose details are the rows, range,
 * policy, keep and categories, and extra.
 */
CREATE FUNCTION @extschema@._log_purge(leaf_name text, lo timestamptz, hi timestamptz, cats text[],
    pol text, keep interval, n bigint, extra jsonb DEFAULT '{}')
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    INSERT INTO @extschema@.purge_log (partition, from_time, to_time, categories, policy, rows, purged_at)
    VALUES ('@extschema@.' || leaf_name, lo, hi, cats, pol, n, clock_timestamp());
    PERFORM @extschema@._record('audit', 'audit.purged', 'success', 'table',
        '@extschema@.' || leaf_name, 'DROP TABLE',
        jsonb_build_object('rows', n, 'from_time', @extschema@._ts(lo), 'to_time', @extschema@._ts(hi),
                           'policy', pol, 'keep', keep::text, 'categories', to_jsonb(cats)) || extra);
END
$$;

/*
 * _split_leaf(leaf, leaf_name, day, lo, hi, categories, as_of): a leaf that
 * holds the categories of several policies (its day held events before a
 * policy change), some of which have expired as of as_of.  The rows of
 * the categories still inside their window are copied into new leaves of
 * the day, one per policy (named events_pYYYYMMDD_<policy>, with a suffix
 * _2, _3... when that name is taken), then the leaf is dropped with the
 * expired rows: never a DELETE.  Moved rows keep every column, so the
 * seals still verify.  The expired rows are one audit.purged event and a
 * purge-log row (none when there were none).  A row of a category no
 * policy covers stops the split (deferred): it is never lost.  The caller
 * holds the day's ACCESS EXCLUSIVE lock (on its leaves too) and marks the
 * internal operation.  Returns what it did: moved, purged or deferred.
 */
CREATE FUNCTION @extschema@._split_leaf(leaf oid, leaf_name text, day_oid oid, lo timestamptz,
    hi timestamptz, categories text[], as_of timestamptz)
RETURNS TABLE(action text, object text, detail text)
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    part text := (SELECT c.relname::text FROM pg_class c WHERE c.oid = day_oid);
    g record;
    gone text[] := '{}';
    gone_policy text;
    gone_keep interval;
    kept text[] := '{}';
    n_gone bigint;
    n_other bigint;
    n_moved bigint := 0;
    n bigint;
    k int;
    name text;
    i int := 0;
    news text[] := '{}';
    newcats text[] := '{}';
BEGIN
    IF pg_catalog.to_regclass('pg_temp.audit_log_groups') IS NULL THEN
        CREATE TEMP TABLE audit_log_groups (policy text, keep interval, cats text[], expires timestamptz)
            ON COMMIT DROP;
    END IF;
    TRUNCATE pg_temp.audit_log_groups;
    INSERT INTO pg_temp.audit_log_groups
    SELECT p.policy, p.keep,
           ARRAY(SELECT c FROM unnest(p.categories) c WHERE c = ANY (_split_leaf.categories) ORDER BY c),
           ((hi AT TIME ZONE 'UTC') + p.keep) AT TIME ZONE 'UTC'
      FROM @extschema@._policies() p WHERE p.categories && _split_leaf.categories;
    FOR g IN SELECT * FROM pg_temp.audit_log_groups x ORDER BY x.expires, x.policy LOOP
        IF g.expires <= as_of THEN
            gone := gone || g.cats;
            gone_policy := g.policy;      -- the last of the expired ones decides
            gone_keep := g.keep;
        ELSE
            kept := kept || g.cats;
        END IF;
    END LOOP;
    EXECUTE pg_catalog.format(
        'SELECT count(*) FILTER (WHERE category OPERATOR(pg_catalog.=) ANY ($1)), '
        'count(*) FILTER (WHERE NOT category OPERATOR(pg_catalog.=) ANY ($1 || $2)) FROM ONLY %s',
        leaf::regclass) INTO n_gone, n_other USING gone, kept;
    IF n_other > 0 THEN
        action := 'deferred'; object := '@extschema@.' || leaf_name;
        detail := n_other || ' rows of a category no retention policy covers'; RETURN NEXT;
        RETURN;
    END IF;

    -- The rows to keep, each policy's into a table of its own; then the
    -- leaf goes and they take its place in the day.
    FOR g IN SELECT * FROM pg_temp.audit_log_groups x WHERE x.expires > as_of ORDER BY x.policy LOOP
        i := i + 1;
        EXECUTE pg_catalog.format('CREATE TABLE %I.%I (LIKE %I.events)',
                                  '@extschema@', 'events_split_' || i, '@extschema@');
        EXECUTE pg_catalog.format(
            'INSERT INTO %I.%I SELECT * FROM ONLY %s WHERE category OPERATOR(pg_catalog.=) ANY ($1)',
            '@extschema@', 'events_split_' || i, leaf::regclass) USING g.cats;
    END LOOP;
    EXECUTE pg_catalog.format('DROP TABLE %s', leaf::regclass);
    DELETE FROM @extschema@.leaf_categories k WHERE k.leaf = leaf_name;
    i := 0;
    FOR g IN SELECT * FROM pg_temp.audit_log_groups x WHERE x.expires > as_of ORDER BY x.policy LOOP
        i := i + 1;
        name := part || '_' || g.policy;
        k := 1;
        WHILE pg_catalog.to_regclass(pg_catalog.format('%I.%I', '@extschema@', name)) IS NOT NULL LOOP
            k := k + 1;
            name := part || '_' || g.policy || '_' || k;
        END LOOP;
        EXECUTE pg_catalog.format('ALTER TABLE %I.%I RENAME TO %I', '@extschema@', 'events_split_' || i, name);
        PERFORM @extschema@._lock_down(name);
        EXECUTE pg_catalog.format('ALTER TABLE %s ATTACH PARTITION %I.%I FOR VALUES IN (%s)',
            day_oid::regclass, '@extschema@', name,
            (SELECT string_agg(quote_literal(c), ', ' ORDER BY c) FROM unnest(g.cats) c));
        PERFORM @extschema@._remember_leaf(name, g.cats);
        n := @extschema@._rows(pg_catalog.format('%I.%I', '@extschema@', name)::regclass);
        n_moved := n_moved + n;
        action := 'moved'; object := '@extschema@.' || name;
        detail := n || ' rows from @extschema@.' || leaf_name || ', policy ' || g.policy
                  || ' (' || g.keep::text || ')';
        RETURN NEXT;
    END LOOP;

    IF n_gone > 0 THEN
        PERFORM @extschema@._log_purge(leaf_name, lo, hi, gone, gone_policy, gone_keep, n_gone,
                                       jsonb_build_object('moved_rows', n_moved));
        action := 'purged'; object := '@extschema@.' || leaf_name;
        detail := n_gone || ' rows, [' || @extschema@._ts(lo) || ', ' || @extschema@._ts(hi)
                  || '), policy ' || gone_policy || ' (' || gone_keep::text || '), '
                  || n_moved || ' rows of longer policies moved out';
        RETURN NEXT;
    END IF;
END
$$;

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
LANGUAGE sql IMMUTABLE
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
    FOR d IN SELECT g::date FROM generate_series((as_of AT TIME ZONE 'UTC')::date,
                                                 (as_of AT TIME ZONE 'UTC')::date + days, interval '1 day') g
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
            IF pg_catalog.to_regclass('pg_temp.audit_log_strays') IS NULL THEN
                CREATE TEMP TABLE audit_log_strays (LIKE @extschema@.events) ON COMMIT DROP;
            END IF;
            TRUNCATE pg_temp.audit_log_strays;
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
 * dropped): "sealed", and "error" when the chain stopped early.
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
    BEGIN
        IF pg_catalog.to_regclass('pg_temp.audit_log_leaves') IS NOT NULL THEN
            DROP TABLE pg_temp.audit_log_leaves;
        END IF;
        CREATE TEMP TABLE audit_log_leaves ON COMMIT DROP AS
            SELECT s.*, s.expires <= as_of AS expired, s.last_expires <= as_of AS all_expired
              FROM @extschema@._leaf_state() s;
    EXCEPTION WHEN OTHERS THEN
        action := 'error'; object := '@extschema@.partitions'; detail := SQLSTATE || ': ' || SQLERRM; RETURN NEXT;
        CREATE TEMP TABLE IF NOT EXISTS audit_log_leaves ON COMMIT DROP AS
            SELECT s.*, false AS expired, false AS all_expired FROM @extschema@._leaf_state() s LIMIT 0;
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
