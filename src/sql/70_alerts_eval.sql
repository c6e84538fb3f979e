/*
 * audit_log install script, part 70 (continued): the evaluation of alert
 * rules, check_alerts() and its steps, and the rights of part 70's
 * functions.  What a pass reads, and why it neither loses nor repeats a
 * firing, is told at the top of 70_alerts.sql.
 */

/*
 * check_alerts(): one evaluation pass over the events not read yet;
 * returns the number of alerts raised.  Its steps: _alert_read() reads the
 * new events once for every rule into the hits; _alert_fire_rule() then
 * evaluates each rule that has hits, in name order.  Without JIT: the
 * statements of a pass are generated and used once, and compiling them
 * cost seconds a pass.
 */
CREATE FUNCTION @extschema@.check_alerts() RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET audit_log.internal = on
SET jit = off
AS $$
DECLARE
    rules @extschema@.alert_rule[];
    i integer;
    fired integer := 0;
BEGIN
    rules := @extschema@._alert_read();
    IF NOT EXISTS (SELECT 1 FROM pg_temp._alert_hits) THEN
        RETURN 0;
    END IF;
    CREATE INDEX ON pg_temp._alert_hits (rule_no);
    ANALYZE pg_temp._alert_hits;
    -- A rule without hits has nothing to do (nothing to fire, add or prune).
    FOR i IN SELECT DISTINCT h.rule_no FROM pg_temp._alert_hits h ORDER BY 1 LOOP
        fired := fired + @extschema@._alert_fire_rule(rules[i], i);
    END LOOP;
    RETURN fired;
END
$$;

/*
 * _alert_read(): the read of a pass, under the lock of alert_state; returns
 * the rules, numbered in name order (read after the lock: a pass never sees
 * half a replacement), and leaves their hits in pg_temp._alert_hits.
 *
 * One statement reads this database's new events (hwm and holes, through
 * the event_id index) and, in the same scan, tests every rule on each of
 * them: the hits (rule, group, time, id) go to the temp table _alert_hits,
 * no copy of the events is made (what the statement keeps of an event that
 * no rule matches is its id); the same statement computes the new hwm and
 * holes from the ids it read (one snapshot, as the header requires), and
 * spends nothing on holes when the ids it read have none.  A second
 * statement does the same for the sources' events, each source from its
 * own position (alert_source_state, see the header); _alert_sources()
 * moves those positions.  Rules that share their filters (all but
 * details_contain) share one evaluation of them per event, and a rule's
 * event types are tested before the rest.
 */
CREATE FUNCTION @extschema@._alert_read() RETURNS @extschema@.alert_rule[]
LANGUAGE plpgsql
AS $$
DECLARE
    st @extschema@.alert_state;
    a bigint;
    g bigint;
    x bigint;
    hi bigint;
    rules @extschema@.alert_rule[];
    r @extschema@.alert_rule;
    rf @extschema@.alert_rule;
    i integer;
    j integer;
    f text;
    filters text[] := '{}';
    cols text := '';
    tests text := '';
    groups text := '';
    head text;
    tail text;
BEGIN
    -- The mark of this pass (header): A, then G, then the xmin X.  A is
    -- read before the row lock below, which gives this transaction its xid.
    a := coalesce(pg_sequence_last_value('@extschema@.events_event_id_seq'::regclass), 0);
    SELECT * INTO st FROM @extschema@.alert_state FOR UPDATE;
    g := pg_current_xact_id()::text::bigint;
    x := pg_snapshot_xmin(pg_current_snapshot())::text::bigint;

    -- The rules, numbered in name order.  A rule's test is its filters
    -- (_alert_where without details_contain; the same filters are computed
    -- once per event for all the rules that share them, as column f<j>;
    -- its event types, tested first, spare the rest for most events) and
    -- then its details_contain.
    rules := ARRAY(SELECT o FROM @extschema@.alert_rule o ORDER BY o.name);
    FOR i IN 1 .. coalesce(array_length(rules, 1), 0) LOOP
        r := rules[i];
        rf := r;
        rf.details_contain := NULL;
        f := '(' || CASE WHEN r.event_types IS NOT NULL
                         THEN format('e.event_type = ANY (%L::text[]) AND ', r.event_types) ELSE '' END
                 || '(' || @extschema@._alert_where(rf) || '))';
        j := array_position(filters, f);
        IF j IS NULL THEN
            filters := filters || f;
            j := cardinality(filters);
            cols := cols || format(', %s AS f%s', f, j);
        END IF;
        tests := tests || format('CASE WHEN e.f%s%s THEN %s END, ', j,
            CASE WHEN r.details_contain IS NOT NULL
                 THEN format(' AND e.details OPERATOR(pg_catalog.@>) %L::jsonb', r.details_contain) ELSE '' END,
            i);
        groups := groups || format(' WHEN %s THEN %s', i, @extschema@._alert_group_expr(r.group_by));
    END LOOP;

    -- Settled marks (they depend on X only).
    st.settled := greatest(st.settled, (SELECT max(m.id) FROM unnest(st.mark_ids, st.mark_xids) AS m(id, xid)
                                         WHERE m.xid <= x));

    IF to_regclass('pg_temp._alert_hits') IS NOT NULL THEN
        DROP TABLE pg_temp._alert_hits;
    END IF;
    CREATE TEMP TABLE _alert_hits (rule_no integer, gv text, t timestamptz, id bigint) ON COMMIT DROP;
    -- What both reads compute of an event (the events read go between head
    -- and tail, as e, with a column probe): its rules (rn, NULL for none)
    -- and, for the events some rule matched only, what the hits need.
    head := 'n AS MATERIALIZED ('
        '  SELECT e.event_id, e.source, e.probe, e.rn,'
        '         CASE WHEN e.rn IS NOT NULL THEN e.occurred_at END AS occurred_at,'
        '         CASE WHEN e.rn IS NOT NULL THEN e.actor END AS actor,'
        '         CASE WHEN e.rn IS NOT NULL THEN e.db_user END AS db_user,'
        '         CASE WHEN e.rn IS NOT NULL THEN e.client_addr END AS client_addr,'
        '         CASE WHEN e.rn IS NOT NULL THEN e.object_name END AS object_name,'
        '         CASE WHEN e.rn IS NOT NULL THEN e.resource_id END AS resource_id,'
        '         CASE WHEN e.rn IS NOT NULL THEN e.tenant END AS tenant'
        '    FROM (SELECT e.event_id, e.occurred_at, e.actor, e.db_user, e.client_addr, e.object_name,'
        '                 e.resource_id, e.tenant, e.source, e.probe,'
        '                 NULLIF(pg_catalog.array_remove(ARRAY[' || tests || ' NULL]::integer[], NULL),'
        '                                   ''{}''::integer[]) AS rn'
        '            FROM (SELECT e.event_id, e.occurred_at, e.actor, e.db_user, e.client_addr, e.object_name,'
        '                         e.resource_id, e.tenant, e.source, e.details, e.probe ' || cols ||
        '                    FROM (';
    tail := ') e OFFSET 0) e OFFSET 0) e), '
        'ins AS ('
        '  INSERT INTO pg_temp._alert_hits (rule_no, gv, t, id)'
        '  SELECT m.rule_no, CASE m.rule_no WHEN 0 THEN NULL::text ' || groups || ' END, e.occurred_at, e.event_id'
        '    FROM n e, pg_catalog.unnest(e.rn) AS m(rule_no) WHERE e.rn IS NOT NULL) ';

    -- This database's events: hits, new hwm, holes (those above settled the
    -- read did not see; none to look for when the ids above settled are as
    -- many as the range they span).  lim: no local event visible to this
    -- statement has an id above the sequence's last value read after its
    -- snapshot, so a source's greater ids are never read here.
    EXECUTE
        'WITH lim AS MATERIALIZED ('
        '  SELECT coalesce(pg_catalog.pg_sequence_last_value(''@extschema@.events_event_id_seq''::pg_catalog.regclass), 0) AS v), '
        || head ||
        'SELECT e.*, false AS probe FROM @extschema@.events e'
        ' WHERE e.source IS NULL'
        '   AND ((e.event_id > $1 AND e.event_id <= (SELECT l.v FROM lim l)) OR e.event_id = ANY ($2))'
        || tail ||
        'SELECT greatest($1, a.mx),'
        '       ARRAY(SELECT s.h FROM (SELECT pg_catalog.unnest($2) AS h'
        '                              UNION ALL SELECT pg_catalog.generate_series(greatest($1, $3) + 1, a.mx)'
        '                                         WHERE a.c < a.mx - greatest($1, $3)) s'
        '              WHERE s.h > $3 AND NOT EXISTS (SELECT 1 FROM n WHERE n.event_id = s.h)'
        '              ORDER BY s.h)'
        '  FROM (SELECT max(n.event_id) AS mx, count(*) FILTER (WHERE n.event_id > greatest($1, $3)) AS c FROM n) a'
      INTO hi, st.holes USING st.hwm, st.holes, st.settled;

    -- New state: marks, hwm.
    SELECT coalesce(array_agg(m.id ORDER BY m.xid), '{}'), coalesce(array_agg(m.xid ORDER BY m.xid), '{}')
      INTO st.mark_ids, st.mark_xids
      FROM (SELECT * FROM unnest(st.mark_ids, st.mark_xids) AS m(id, xid) WHERE m.xid > x
            UNION ALL SELECT a, g) m;
    UPDATE @extschema@.alert_state s
       SET hwm = hi, settled = st.settled, holes = st.holes, mark_ids = st.mark_ids,
           mark_xids = st.mark_xids, passes = s.passes + 1;

    -- The sources' events: each source's events above its hwm (at most
    -- 100,000, in event_id order) and in its holes, through the
    -- (source, event_id) index; the ids read go to _alert_src for
    -- _alert_sources().
    IF EXISTS (SELECT 1 FROM @extschema@.source_registry) OR EXISTS (SELECT 1 FROM @extschema@.alert_source_state) THEN
        IF to_regclass('pg_temp._alert_src') IS NOT NULL THEN
            DROP TABLE pg_temp._alert_src;
        END IF;
        CREATE TEMP TABLE _alert_src (source text, event_id bigint, probe boolean) ON COMMIT DROP;
        EXECUTE
            'WITH k AS MATERIALIZED ('
            '  SELECT x.source, s.hwm, coalesce(s.holes, ''{}''::pg_catalog.int8multirange) AS holes'
            '    FROM (SELECT r.source FROM @extschema@.source_registry r'
            '          UNION SELECT t.source FROM @extschema@.alert_source_state t) x'
            '    LEFT JOIN @extschema@.alert_source_state s ON s.source = x.source), '
            || head ||
            'SELECT e.*, false AS probe FROM k CROSS JOIN LATERAL ('
            '  SELECT e.* FROM @extschema@.events e'
            '   WHERE e.source = k.source AND e.event_id > coalesce(k.hwm, ''-9223372036854775808''::bigint)'
            '   ORDER BY e.event_id LIMIT 100000) e'
            ' UNION ALL '
            'SELECT e.*, true AS probe FROM k CROSS JOIN LATERAL pg_catalog.unnest(k.holes) AS h(r) CROSS JOIN LATERAL ('
            '  SELECT e.* FROM @extschema@.events e'
            '   WHERE e.source = k.source AND e.event_id >= pg_catalog.lower(h.r)'
            '     AND e.event_id < pg_catalog.upper(h.r) OFFSET 0) e'
            || tail ||
            ', src AS (INSERT INTO pg_temp._alert_src SELECT n.source, n.event_id, n.probe FROM n) '
            'SELECT 1';
        PERFORM @extschema@._alert_sources();
    END IF;

    RETURN rules;
END
$$;

/*
 * _alert_sources(): move each source's read position (alert_source_state)
 * past what _alert_read() read of it (pg_temp._alert_src): hwm to the
 * greatest id read above it, the gaps between the ids read become holes,
 * the holes read are filled, and the holes at or below the source's hwm of
 * an hour ago (its settled mark, see the header) are forgotten.
 */
CREATE FUNCTION @extschema@._alert_sources() RETURNS void
LANGUAGE plpgsql
AS $$
DECLARE
    src text;
    ss @extschema@.alert_source_state;
    was @extschema@.alert_source_state;
    mx bigint;
    gaps pg_catalog.int8multirange;
    found pg_catalog.int8multirange;
BEGIN
    FOR src IN SELECT x.source FROM (SELECT t.source FROM @extschema@.alert_source_state t
                                     UNION SELECT a.source FROM pg_temp._alert_src a) x
                ORDER BY x.source LOOP
        SELECT * INTO ss FROM @extschema@.alert_source_state t WHERE t.source = src;
        was := ss;
        SELECT max(r.event_id),
               range_agg(pg_catalog.int8range(r.prev + 1, r.event_id)) FILTER (WHERE r.prev + 1 < r.event_id)
          INTO mx, gaps
          FROM (SELECT a.event_id, coalesce(lag(a.event_id) OVER (ORDER BY a.event_id), ss.hwm) AS prev
                  FROM pg_temp._alert_src a WHERE a.source = src AND NOT a.probe) r;
        SELECT range_agg(pg_catalog.int8range(a.event_id, a.event_id, '[]')) INTO found
          FROM pg_temp._alert_src a WHERE a.source = src AND a.probe;
        ss.source := src;
        ss.holes := coalesce(ss.holes, '{}') - coalesce(found, '{}') + coalesce(gaps, '{}');
        ss.hwm := greatest(ss.hwm, mx);          -- greatest() skips NULLs
        IF mx IS NOT NULL THEN
            ss.mark_at := coalesce(ss.mark_at, '{}') || now();
            ss.mark_hwms := coalesce(ss.mark_hwms, '{}') || ss.hwm;
        END IF;
        ss.settled := greatest(ss.settled, (SELECT max(m.h) FROM unnest(ss.mark_at, ss.mark_hwms) AS m(t, h)
                                             WHERE m.t <= now() - interval '1 hour'));
        SELECT coalesce(array_agg(m.t ORDER BY m.t), '{}'), coalesce(array_agg(m.h ORDER BY m.t), '{}')
          INTO ss.mark_at, ss.mark_hwms
          FROM unnest(ss.mark_at, ss.mark_hwms) AS m(t, h) WHERE m.t > now() - interval '1 hour';
        IF ss.settled IS NOT NULL THEN
            ss.holes := ss.holes - pg_catalog.int8multirange(pg_catalog.int8range(NULL, ss.settled, '(]'));
        END IF;
        -- A pass that moved nothing leaves the row as it is (no dead tuple).
        CONTINUE WHEN was.source IS NOT NULL AND ss IS NOT DISTINCT FROM was;
        INSERT INTO @extschema@.alert_source_state AS t VALUES (ss.*)
            ON CONFLICT (source) DO UPDATE
            SET hwm = excluded.hwm, holes = excluded.holes, settled = excluded.settled,
                mark_at = excluded.mark_at, mark_hwms = excluded.mark_hwms;
    END LOOP;
END
$$;

/*
 * _alert_quiet(rule, group_value, quiet_until): no firing of the rule for
 * that group up to quiet_until.
 */
CREATE FUNCTION @extschema@._alert_quiet(rule_name text, gv text, quiet timestamptz) RETURNS void
LANGUAGE plpgsql
AS $$
BEGIN
    UPDATE @extschema@.alert_group q SET quiet_until = quiet
     WHERE q.rule = rule_name AND q.group_value IS NOT DISTINCT FROM gv;
    IF NOT FOUND THEN
        INSERT INTO @extschema@.alert_group VALUES (rule_name, gv, quiet);
    END IF;
END
$$;

/*
 * _alert_fire_rule(rule, rule_no): evaluate one rule over its hits (rule_no
 * in pg_temp._alert_hits); returns the alerts raised.  A rule of threshold
 * 1 fires on every match outside its quiet windows; a higher threshold
 * reads alert_pending through its index, group by group, and the first
 * event of a window is looked up for the firings only.
 */
CREATE FUNCTION @extschema@._alert_fire_rule(r @extschema@.alert_rule, i integer) RETURNS integer
LANGUAGE plpgsql
AS $$
DECLARE
    c record;
    fired integer := 0;
    cur_group text;
    first_row boolean;
    quiet timestamptz;
    first_id bigint;
BEGIN
    IF r.threshold = 1 THEN
        -- Every match is a candidate; the quiet windows decide.
        FOR c IN
            SELECT h.gv, h.t, h.id, 1 AS n, h.id AS first_id, q.quiet_until
              FROM pg_temp._alert_hits h
              LEFT JOIN @extschema@.alert_group q
                ON q.rule = r.name AND q.group_value IS NOT DISTINCT FROM h.gv
             WHERE h.rule_no = i AND (q.quiet_until IS NULL OR h.t > q.quiet_until)
             ORDER BY h.gv, h.t, h.id
        LOOP
            IF first_row IS NULL OR cur_group IS DISTINCT FROM c.gv THEN
                cur_group := c.gv; first_row := false; quiet := c.quiet_until;
            END IF;
            IF quiet IS NULL OR c.t > quiet THEN
                PERFORM @extschema@._alert_fire(r, c.gv, c.n, c.first_id, c.id);
                fired := fired + 1;
                quiet := least(c.t, now()) + r.within;   -- (a future time would hold it quiet until then)
                PERFORM @extschema@._alert_quiet(r.name, c.gv, quiet);
            END IF;
        END LOOP;
    ELSE
        INSERT INTO @extschema@.alert_pending
        SELECT r.name, h.gv, h.t, h.id FROM pg_temp._alert_hits h WHERE h.rule_no = i;
        -- The window of each touched group, read through alert_pending_idx.
        FOR c IN EXECUTE format(
            'WITH touched AS (SELECT h.gv, min(h.t) AS t0 FROM pg_temp._alert_hits h'
            '                  WHERE h.rule_no = %4$s GROUP BY h.gv) '
            'SELECT w.gv, w.t, w.id, w.n::integer AS n, q.quiet_until FROM ('
            '  SELECT tc.gv, p.occurred_at AS t, p.event_id AS id, tc.t0,'
            '         count(*) OVER win AS n'
            '    FROM touched tc CROSS JOIN LATERAL ('
            '         SELECT p.occurred_at, p.event_id FROM @extschema@.alert_pending p'
            '          WHERE p.rule = %1$L AND p.group_value = tc.gv'
            '            AND p.occurred_at >= tc.t0 - %2$L::interval'
            '         UNION ALL'
            '         SELECT p.occurred_at, p.event_id FROM @extschema@.alert_pending p'
            '          WHERE tc.gv IS NULL AND p.rule = %1$L AND p.group_value IS NULL'
            '            AND p.occurred_at >= tc.t0 - %2$L::interval) p'
            '  WINDOW win AS (PARTITION BY tc.gv ORDER BY p.occurred_at'
            '                 RANGE BETWEEN %2$L::interval PRECEDING AND CURRENT ROW)) w'
            '  LEFT JOIN @extschema@.alert_group q ON q.rule = %1$L AND q.group_value IS NOT DISTINCT FROM w.gv'
            ' WHERE w.t >= w.t0 AND w.n >= %3$s AND (q.quiet_until IS NULL OR w.t > q.quiet_until)'
            ' ORDER BY w.gv, w.t, w.id', r.name, r.within, r.threshold, i)
        LOOP
            IF first_row IS NULL OR cur_group IS DISTINCT FROM c.gv THEN
                cur_group := c.gv; first_row := false; quiet := c.quiet_until;
            END IF;
            IF quiet IS NULL OR c.t > quiet THEN
                -- The first event of the window (its frame above, read
                -- for the firings only: min() over a moving frame is
                -- recomputed for every row).
                IF c.gv IS NULL THEN
                    SELECT min(p.event_id) INTO first_id FROM @extschema@.alert_pending p
                     WHERE p.rule = r.name AND p.group_value IS NULL
                       AND p.occurred_at >= c.t - r.within AND p.occurred_at <= c.t;
                ELSE
                    SELECT min(p.event_id) INTO first_id FROM @extschema@.alert_pending p
                     WHERE p.rule = r.name AND p.group_value = c.gv
                       AND p.occurred_at >= c.t - r.within AND p.occurred_at <= c.t;
                END IF;
                PERFORM @extschema@._alert_fire(r, c.gv, c.n, first_id, c.id);
                fired := fired + 1;
                quiet := least(c.t, now()) + r.within;   -- (a future time would hold it quiet until then)
                PERFORM @extschema@._alert_quiet(r.name, c.gv, quiet);
            END IF;
        END LOOP;
        -- What no window needs any more (an hour of slack for late commits),
        -- by the newest match, never later than now: one event dated in the
        -- future (a source's clock, or its superuser) would otherwise clear
        -- the pending matches of every group.
        DELETE FROM @extschema@.alert_pending p
         WHERE p.rule = r.name
           AND p.occurred_at < least((SELECT max(h.t) FROM pg_temp._alert_hits h WHERE h.rule_no = i), now())
                               - r.within - interval '1 hour';
    END IF;
    RETURN fired;
END
$$;

REVOKE ALL ON FUNCTION @extschema@._alert_group_expr(text), @extschema@._alert_where(@extschema@.alert_rule),
    @extschema@._alert_bad(text, text),
    @extschema@._alert_fire(@extschema@.alert_rule, text, integer, bigint, bigint),
    @extschema@._alert_read(), @extschema@._alert_sources(), @extschema@._alert_quiet(text, text, timestamptz),
    @extschema@._alert_fire_rule(@extschema@.alert_rule, integer),
    @extschema@.create_alert(text, integer, interval, text, text, text[], text[], text[], text[], text[],
        cidr[], timestamptz, timestamptz, text, text[], text[], text[], jsonb),
    @extschema@.drop_alert(text), @extschema@.acknowledge(bigint, text),
    @extschema@.check_alerts() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION
    @extschema@.create_alert(text, integer, interval, text, text, text[], text[], text[], text[], text[],
        cidr[], timestamptz, timestamptz, text, text[], text[], text[], jsonb),
    @extschema@.drop_alert(text), @extschema@.acknowledge(bigint, text),
    @extschema@.check_alerts() TO audit_log_admin;
REVOKE ALL ON @extschema@.alert_rules FROM PUBLIC;
GRANT SELECT ON @extschema@.alerts, @extschema@.alert_rules TO audit_log_reader, audit_log_admin;
