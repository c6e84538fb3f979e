/*
 * audit_log install script, part 70: backups with pg_dump, and the first
 * days.
 *
 * What pg_dump keeps.  Every partition of audit_log.events (the days,
 * their leaves and the safety net events_default) is data, not a member of
 * the extension: pg_dump dumps them, their rows and indexes like any table.
 * (events_default is not a configuration table instead: pg_dump -n
 * audit_log crashes on a configuration table that is a partition.)  The
 * event id sequence is configuration, so its value is dumped, like the
 * configuration tables of the other parts (table_config,
 * event_type_catalog, retention_policy, legal_hold, purge_log,
 * leaf_categories, seal, alert_rule, alerts, source_registry,
 * source_seals).
 *
 * Restoring.  pg_restore (or psql) into a new database, in a session with
 * audit_log.restore = on (superuser): its CREATE EXTENSION creates no
 * partition (the dump brings them: events_default is dropped again), drops
 * the partitioned event_id index until the dump's indexes come (restore.c)
 * and opens a restore (restore_state); restore.c
 * lets that session build and fill the partitions, and captures nothing it
 * does.  Meanwhile nothing else writes events here (the worker waits),
 * maintain() and seal() do nothing.  The first maintain() after the
 * session ended (or called by that session) closes the restore: it records
 * one audit.restored event, with ids after the restored ones.
 */

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
 * the highest restored id if it is behind, and the alert passes start after
 * the restored events.  One row for maintain().
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
    -- Alerts are about what happens from now on (70_alerts.sql): the passes
    -- start after the restored events, this database's and each source's.
    UPDATE @extschema@.alert_state s
       SET hwm = greatest(s.hwm, l.id), settled = greatest(s.settled, l.id), holes = '{}'
      FROM (SELECT coalesce(max(e.event_id), 0) AS id FROM @extschema@.events e WHERE e.source IS NULL) l;
    INSERT INTO @extschema@.alert_source_state AS t (source, hwm)
    SELECT e.source, max(e.event_id) FROM @extschema@.events e WHERE e.source IS NOT NULL GROUP BY e.source
        ON CONFLICT (source) DO UPDATE SET hwm = greatest(t.hwm, excluded.hwm);
    -- New alerts are numbered after the restored ones.
    SELECT max(a.alert_id) INTO last FROM @extschema@.alerts a;
    IF last IS NOT NULL THEN
        PERFORM pg_catalog.setval(pg_catalog.pg_get_serial_sequence('@extschema@.alerts', 'alert_id'), last);
    END IF;
    -- The event_id index of every partition (see restore.c).
    IF NOT EXISTS (SELECT 1 FROM pg_index i
                    WHERE i.indexrelid = pg_catalog.to_regclass('@extschema@.events_event_id_idx') AND i.indisvalid) THEN
        DROP INDEX IF EXISTS @extschema@.events_event_id_idx;
        CREATE INDEX events_event_id_idx ON @extschema@.events (event_id);
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_index i
                    WHERE i.indexrelid = pg_catalog.to_regclass('@extschema@.events_source_event_id_key') AND i.indisvalid) THEN
        DROP INDEX IF EXISTS @extschema@.events_source_event_id_key;
        CREATE UNIQUE INDEX events_source_event_id_key ON @extschema@.events
            (source, event_id, occurred_at, category) WHERE source IS NOT NULL;
    END IF;
    -- The leaves of a dump made before leaf_categories existed.
    PERFORM @extschema@._fill_leaf_categories();
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

-- A restore begins here (the dump brings every partition); otherwise
-- today (UTC) and the next 7 days exist from the start.  Partitions are
-- data, not members: pg_dump keeps their rows.
DO $days$
DECLARE
    r record;
BEGIN
    IF @extschema@._restore_begin() THEN
        -- The partitioned index would reach every partition the dump
        -- attaches, and the dump's own indexes would then fail with
        -- "already exists": it comes back with the dump's first CREATE
        -- INDEX (restore.c), its partitions attach to it.
        DROP INDEX @extschema@.events_event_id_idx;
        DROP INDEX @extschema@.events_source_event_id_key;
        DROP TABLE @extschema@.events_default;
        -- The dump brings every rule, the built-in ones as they were.
        DELETE FROM @extschema@.alert_rule;
        INSERT INTO @extschema@.restore_state (pid, backend_start, began_at, began_by)
        SELECT pg_backend_pid(), a.backend_start, now(), session_user
          FROM pg_stat_get_activity(pg_backend_pid()) a;
        RETURN;
    END IF;
    PERFORM @extschema@._create_partition(d::date)
       FROM generate_series((now() AT TIME ZONE 'UTC')::date,
                            (now() AT TIME ZONE 'UTC')::date + 7, interval '1 day') AS d;
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
$days$;
