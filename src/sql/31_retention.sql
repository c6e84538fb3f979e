/*
 * audit_log install script, part 31: retention policies and legal holds:
 * set_retention(), hold(), release(), and _split_leaf(), which maintain()
 * uses to split a leaf that holds categories of several policies.  The
 * layout, locking and tables are described in part 30.
 */

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
    -- A leaf without rows took no event away: a purge-log row would make
    -- verify() read its windows as partly purged, and miss an event
    -- deleted from them.
    IF n > 0 THEN
        INSERT INTO @extschema@.purge_log (partition, from_time, to_time, categories, policy, rows, purged_at)
        VALUES ('@extschema@.' || leaf_name, lo, hi, cats, pol, n, clock_timestamp());
    END IF;
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
    -- Never an object found in pg_temp: the caller may have planted it
    -- (a view or a trigger would run its code with the owner's rights).
    -- DROP TABLE fails on anything but a plain table without dependents.
    IF pg_catalog.to_regclass('pg_temp.audit_log_groups') IS NOT NULL THEN
        DROP TABLE pg_temp.audit_log_groups;
    END IF;
    CREATE TEMP TABLE audit_log_groups (policy text, keep interval, cats text[], expires timestamptz)
        ON COMMIT DROP;
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
