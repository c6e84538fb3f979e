/*
 * audit_log install script, part 30: daily partitions and their leaves
 * (parts 31 and 32: retention policies and legal holds, maintain()).
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
 * included (the extension's own code passes the tamper guard), nor a
 * subscription's worker truncate it (_replica_fence()).
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
    PERFORM @extschema@._replica_fence(pg_catalog.format('%I.%I', '@extschema@', rel)::regclass, false);
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
