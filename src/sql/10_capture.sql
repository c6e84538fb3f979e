/*
 * audit_log install script, part 10: capture of application tables
 * (enable, disable, audited_tables), the context, application events and
 * the status of capture.
 */

-- The options of every audited table (a configuration table: pg_dump keeps it).
CREATE TABLE @extschema@.table_config (
    relid           regclass PRIMARY KEY,
    category        text NOT NULL,
    event_types     jsonb NOT NULL,
    exclude_columns text[] NOT NULL DEFAULT '{}',
    mask_columns    text[] NOT NULL DEFAULT '{}',
    when_changed    text[] NOT NULL DEFAULT '{}',
    enabled_at      timestamptz NOT NULL DEFAULT pg_catalog.now(),
    enabled_by      text NOT NULL DEFAULT session_user
);
COMMENT ON TABLE @extschema@.table_config IS
    'Options of each audited table; change them with audit_log.enable(), read them through audit_log.audited_tables.';
REVOKE ALL ON TABLE @extschema@.table_config FROM PUBLIC;
SELECT pg_catalog.pg_extension_config_dump('@extschema@.table_config', '');

/*
 * capture(): the C trigger.  Attach it with enable(), never by hand.
 */
CREATE FUNCTION @extschema@.capture() RETURNS trigger
AS 'MODULE_PATHNAME', 'audit_capture'
LANGUAGE C;
REVOKE ALL ON FUNCTION @extschema@.capture() FROM PUBLIC;

/*
 * _check_columns(table, list, option): every name must be a column.
 */
CREATE FUNCTION @extschema@._check_columns(target regclass, cols text[], option text)
RETURNS text[]
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    c text;
BEGIN
    IF cols IS NULL THEN
        RETURN '{}'::text[];
    END IF;
    FOREACH c IN ARRAY cols LOOP
        IF c IS NULL OR NOT EXISTS (SELECT 1 FROM pg_attribute
                                    WHERE attrelid = target AND attname = c
                                      AND attnum > 0 AND NOT attisdropped) THEN
            RAISE EXCEPTION 'column "%" of relation "%" does not exist', c, target::text
                USING ERRCODE = 'undefined_column',
                      HINT = format('Every name in %s must be a column of %s.', option, target::text);
        END IF;
    END LOOP;
    RETURN ARRAY(SELECT DISTINCT x FROM unnest(cols) AS x ORDER BY 1);
END
$$;
REVOKE ALL ON FUNCTION @extschema@._check_columns(regclass, text[], text) FROM PUBLIC;

/*
 * _attach(table, args): create or replace the four capture triggers of one
 * table, ENABLE ALWAYS.
 */
CREATE FUNCTION @extschema@._attach(tbl regclass, args text)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    t text := tbl::text;
BEGIN
    EXECUTE format('CREATE OR REPLACE TRIGGER audit_log_insert AFTER INSERT ON %s '
                   'REFERENCING NEW TABLE AS audit_log_new FOR EACH STATEMENT '
                   'EXECUTE FUNCTION @extschema@.capture(%s)', t, args);
    EXECUTE format('CREATE OR REPLACE TRIGGER audit_log_update AFTER UPDATE ON %s '
                   'REFERENCING OLD TABLE AS audit_log_old NEW TABLE AS audit_log_new FOR EACH STATEMENT '
                   'EXECUTE FUNCTION @extschema@.capture(%s)', t, args);
    EXECUTE format('CREATE OR REPLACE TRIGGER audit_log_delete AFTER DELETE ON %s '
                   'REFERENCING OLD TABLE AS audit_log_old FOR EACH STATEMENT '
                   'EXECUTE FUNCTION @extschema@.capture(%s)', t, args);
    EXECUTE format('CREATE OR REPLACE TRIGGER audit_log_truncate AFTER TRUNCATE ON %s '
                   'FOR EACH STATEMENT EXECUTE FUNCTION @extschema@.capture(%s)', t, args);
    EXECUTE format('ALTER TABLE %s ENABLE ALWAYS TRIGGER audit_log_insert, '
                   'ENABLE ALWAYS TRIGGER audit_log_update, ENABLE ALWAYS TRIGGER audit_log_delete, '
                   'ENABLE ALWAYS TRIGGER audit_log_truncate', t);
END
$$;
REVOKE ALL ON FUNCTION @extschema@._attach(regclass, text) FROM PUBLIC;

/*
 * enable(target, category, event_types, exclude_columns, mask_columns,
 * when_changed): attach (or update) the C capture of a table.
 */
CREATE FUNCTION @extschema@.enable(target regclass, category text DEFAULT 'data',
    event_types jsonb DEFAULT NULL, exclude_columns text[] DEFAULT NULL,
    mask_columns text[] DEFAULT NULL, when_changed text[] DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    rel record;
    ops constant text[] := ARRAY['INSERT', 'UPDATE', 'DELETE', 'TRUNCATE'];
    codes text[] := ARRAY['data.insert', 'data.update', 'data.delete', 'data.truncate'];
    ex text[];
    mk text[];
    wc text[];
    k text;
    v jsonb;
    i int;
    other record;
    was_enabled boolean;
    qname text;
    args text;
BEGIN
    IF target IS NULL THEN
        RAISE EXCEPTION 'table to audit must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    SELECT c.relkind, c.relispartition, n.nspname, c.relname,
           EXISTS (SELECT 1 FROM pg_depend d JOIN pg_extension e ON e.oid = d.refobjid
                   WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid
                     AND d.refclassid = 'pg_extension'::regclass AND e.extname = 'audit_log') AS ours
      INTO rel
      FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE c.oid = target;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'relation with OID % does not exist', target::oid USING ERRCODE = 'undefined_table';
    END IF;
    qname := format('%I.%I', rel.nspname, rel.relname);
    IF rel.ours OR rel.nspname = '@extschema@' THEN
        RAISE EXCEPTION 'cannot audit "%": it belongs to audit_log', qname
            USING ERRCODE = 'wrong_object_type',
                  DETAIL = 'The audit tables are protected by the extension itself.';
    END IF;
    IF rel.relkind NOT IN ('r', 'p') THEN
        RAISE EXCEPTION '"%" is not a table', qname
            USING ERRCODE = 'wrong_object_type',
                  DETAIL = format('It is a %s.', CASE rel.relkind WHEN 'v' THEN 'view'
                      WHEN 'm' THEN 'materialized view' WHEN 'f' THEN 'foreign table'
                      WHEN 'S' THEN 'sequence' WHEN 'i' THEN 'index' WHEN 'I' THEN 'index'
                      WHEN 'c' THEN 'composite type' ELSE 'relation that is not a table' END),
                  HINT = 'Only ordinary and partitioned tables can be audited.';
    END IF;
    IF rel.relispartition THEN
        RAISE EXCEPTION '"%" is a partition', qname
            USING ERRCODE = 'wrong_object_type',
                  HINT = format('Enable auditing on its partitioned table %s.',
                                (SELECT inhparent::regclass::text FROM pg_inherits WHERE inhrelid = target));
    END IF;
    IF category IS NULL OR category NOT IN ('data', 'ddl', 'privilege', 'role', 'auth', 'config', 'audit', 'app') THEN
        RAISE EXCEPTION 'unknown event category "%"', coalesce(category, 'NULL')
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Use one of data, ddl, privilege, role, auth, config, audit, app.';
    END IF;

    IF event_types IS NOT NULL THEN
        IF jsonb_typeof(event_types) <> 'object' THEN
            RAISE EXCEPTION 'event_types must be a JSON object mapping operations to event codes'
                USING ERRCODE = 'invalid_parameter_value',
                      HINT = 'For example {"INSERT": "user.role_added", "DELETE": "user.role_removed"}.';
        END IF;
        FOR k, v IN SELECT * FROM jsonb_each(event_types) LOOP
            i := array_position(ops, upper(k));
            IF i IS NULL THEN
                RAISE EXCEPTION 'unknown operation "%" in event_types', k
                    USING ERRCODE = 'invalid_parameter_value',
                          HINT = 'Keys are INSERT, UPDATE, DELETE and TRUNCATE.';
            END IF;
            IF jsonb_typeof(v) <> 'string'
               OR (v #>> '{}') !~ '^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$'
               OR length(v #>> '{}') > 100 THEN
                RAISE EXCEPTION 'invalid event code % for %', v::text, upper(k)
                    USING ERRCODE = 'invalid_parameter_value',
                          HINT = 'Event codes are lowercase dotted identifiers such as "user.role_added".';
            END IF;
            codes[i] := v #>> '{}';
        END LOOP;
    END IF;
    FOR i IN 1..4 LOOP
        SELECT t.category, t.builtin INTO other
          FROM @extschema@.event_type_catalog t WHERE t.event_type = codes[i];
        IF FOUND AND other.builtin AND codes[i] NOT LIKE 'data.%' THEN
            RAISE EXCEPTION 'event type "%" is reserved for audit_log''s own capture', codes[i]
                USING ERRCODE = 'invalid_parameter_value',
                      HINT = 'Choose a code of your own, such as "user.role_added".';
        ELSIF FOUND AND NOT other.builtin AND other.category <> enable.category THEN
            RAISE EXCEPTION 'event type "%" already belongs to category "%"', codes[i], other.category
                USING ERRCODE = 'invalid_parameter_value',
                      HINT = 'Use the same category as the other tables with this code, or another code.';
        END IF;
    END LOOP;

    ex := @extschema@._check_columns(target, exclude_columns, 'exclude_columns');
    mk := @extschema@._check_columns(target, mask_columns, 'mask_columns');
    wc := @extschema@._check_columns(target, when_changed, 'when_changed');

    -- Everything is valid: apply.
    PERFORM @extschema@._internal(true);
    INSERT INTO @extschema@.event_type_catalog AS t (event_type, category, description)
    SELECT DISTINCT c, enable.category, format('%s on %s', ops[o], qname)
      FROM unnest(codes) WITH ORDINALITY AS u(c, o)
     WHERE c NOT LIKE 'data.%'
    ON CONFLICT (event_type) DO NOTHING;

    args := format('%L, %L, %L, %L, %L, %L, %L, %L', category, codes[1], codes[2], codes[3],
                   codes[4], ex::text, mk::text, wc::text);
    PERFORM @extschema@._attach(target, args);
    -- Statement triggers fire only for the table a statement names: the
    -- partitions of a partitioned table get their own, naming the parent.
    PERFORM @extschema@._attach(p.relid, args || format(', %L', qname))
       FROM pg_partition_tree(target) p
      WHERE p.relid <> target AND p.isleaf;

    was_enabled := EXISTS (SELECT 1 FROM @extschema@.table_config WHERE relid = target);
    INSERT INTO @extschema@.table_config AS t
           (relid, category, event_types, exclude_columns, mask_columns, when_changed, enabled_at, enabled_by)
    VALUES (target, category,
            jsonb_build_object('INSERT', codes[1], 'UPDATE', codes[2], 'DELETE', codes[3], 'TRUNCATE', codes[4]),
            ex, mk, wc, now(), session_user)
    ON CONFLICT (relid) DO UPDATE
       SET category = excluded.category, event_types = excluded.event_types,
           exclude_columns = excluded.exclude_columns, mask_columns = excluded.mask_columns,
           when_changed = excluded.when_changed, enabled_at = excluded.enabled_at,
           enabled_by = excluded.enabled_by;

    PERFORM @extschema@._record('audit', 'audit.enabled', 'success', 'table', qname, 'SELECT',
        jsonb_build_object('category', category,
            'event_types', jsonb_build_object('INSERT', codes[1], 'UPDATE', codes[2],
                                              'DELETE', codes[3], 'TRUNCATE', codes[4]),
            'exclude_columns', to_jsonb(ex), 'mask_columns', to_jsonb(mk),
            'when_changed', to_jsonb(wc), 'updated', was_enabled));
    PERFORM @extschema@._internal(false);
END
$$;

/*
 * disable(target): remove the capture of a table.
 */
CREATE FUNCTION @extschema@.disable(target regclass)
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    qname text;
BEGIN
    IF target IS NULL THEN
        RAISE EXCEPTION 'table must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    SELECT format('%I.%I', n.nspname, c.relname) INTO qname
      FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = target;
    IF NOT EXISTS (SELECT 1 FROM @extschema@.table_config WHERE relid = target) THEN
        RAISE EXCEPTION 'table "%" is not audited', coalesce(qname, target::text)
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'audit_log.audited_tables lists the audited tables.';
    END IF;
    PERFORM @extschema@._internal(true);
    FOR qname IN SELECT target::text
                 UNION
                 SELECT p.relid::text FROM pg_partition_tree(target) p WHERE p.isleaf
    LOOP
        EXECUTE format('DROP TRIGGER IF EXISTS audit_log_insert ON %s', qname);
        EXECUTE format('DROP TRIGGER IF EXISTS audit_log_update ON %s', qname);
        EXECUTE format('DROP TRIGGER IF EXISTS audit_log_delete ON %s', qname);
        EXECUTE format('DROP TRIGGER IF EXISTS audit_log_truncate ON %s', qname);
    END LOOP;
    SELECT format('%I.%I', n.nspname, c.relname) INTO qname
      FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = target;
    DELETE FROM @extschema@.table_config WHERE relid = target;
    PERFORM @extschema@._record('audit', 'audit.disabled', 'success', 'table', qname, 'SELECT', NULL);
    PERFORM @extschema@._internal(false);
END
$$;

REVOKE ALL ON FUNCTION @extschema@.enable(regclass, text, jsonb, text[], text[], text[]) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.disable(regclass) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION @extschema@.enable(regclass, text, jsonb, text[], text[], text[]) TO audit_log_admin;
GRANT EXECUTE ON FUNCTION @extschema@.disable(regclass) TO audit_log_admin;

CREATE VIEW @extschema@.audited_tables AS
SELECT c.relid::text AS table_name,
       c.category,
       jsonb_build_object('event_types', c.event_types,
                          'exclude_columns', to_jsonb(c.exclude_columns),
                          'mask_columns', to_jsonb(c.mask_columns),
                          'when_changed', to_jsonb(c.when_changed)) AS options,
       c.event_types,
       c.exclude_columns,
       c.mask_columns,
       c.when_changed,
       c.enabled_at,
       c.enabled_by
  FROM @extschema@.table_config c
 WHERE EXISTS (SELECT 1 FROM pg_catalog.pg_class r WHERE r.oid = c.relid);
COMMENT ON VIEW @extschema@.audited_tables IS 'Tables whose changes audit_log captures, with their options.';
COMMENT ON COLUMN @extschema@.audited_tables.table_name IS 'The audited table (schema-qualified when not on the search_path).';
COMMENT ON COLUMN @extschema@.audited_tables.category IS 'Category of every event of the table.';
COMMENT ON COLUMN @extschema@.audited_tables.options IS 'All options as one JSON object.';
COMMENT ON COLUMN @extschema@.audited_tables.event_types IS 'Event code recorded for each operation.';
COMMENT ON COLUMN @extschema@.audited_tables.exclude_columns IS 'Columns left out of old_data and new_data.';
COMMENT ON COLUMN @extschema@.audited_tables.mask_columns IS 'Columns whose key is kept but whose value is never recorded.';
COMMENT ON COLUMN @extschema@.audited_tables.when_changed IS 'When not empty, an UPDATE is recorded only if it changes one of these columns.';
COMMENT ON COLUMN @extschema@.audited_tables.enabled_at IS 'When auditing was enabled or its options last changed.';
COMMENT ON COLUMN @extschema@.audited_tables.enabled_by IS 'Session user who enabled auditing or last changed its options.';
REVOKE ALL ON @extschema@.audited_tables FROM PUBLIC;
GRANT SELECT ON @extschema@.audited_tables TO audit_log_reader, audit_log_admin;

/*
 * set_context(...): the application's claims about who is behind the
 * connection, for the rest of the transaction.
 */
CREATE FUNCTION @extschema@.set_context(actor text, actor_type text DEFAULT NULL,
    client_addr inet DEFAULT NULL, user_agent text DEFAULT NULL,
    tenant text DEFAULT NULL, request_id text DEFAULT NULL)
RETURNS void
AS 'MODULE_PATHNAME', 'audit_set_context'
LANGUAGE C VOLATILE;

/*
 * log(...): record an application event; returns its event_id.
 */
CREATE FUNCTION @extschema@.log(event_type text, status text DEFAULT 'success',
    object_type text DEFAULT NULL, object_name text DEFAULT NULL,
    resource_id text DEFAULT NULL, details jsonb DEFAULT NULL)
RETURNS bigint
AS 'MODULE_PATHNAME', 'audit_log_event'
LANGUAGE C VOLATILE;

REVOKE ALL ON FUNCTION @extschema@.set_context(text, text, inet, text, text, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.log(text, text, text, text, text, jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION @extschema@.set_context(text, text, inet, text, text, text) TO audit_log_writer;
GRANT EXECUTE ON FUNCTION @extschema@.log(text, text, text, text, text, jsonb) TO audit_log_writer;

/*
 * status: which capture is active in this server.
 */
CREATE FUNCTION @extschema@._status(OUT preloaded boolean, OUT table_capture boolean,
    OUT utility_capture boolean, OUT login_capture text, OUT worker_pid integer,
    OUT queue_depth bigint, OUT queue_capacity bigint, OUT events_written bigint,
    OUT events_logged bigint, OUT writers jsonb)
AS 'MODULE_PATHNAME', 'audit_status'
LANGUAGE C VOLATILE;
REVOKE ALL ON FUNCTION @extschema@._status() FROM PUBLIC;
-- A view runs its functions with the privileges of the caller: the readers
-- of audit_log.status need EXECUTE on _status().
GRANT EXECUTE ON FUNCTION @extschema@._status() TO audit_log_reader, audit_log_admin;

CREATE VIEW @extschema@.status AS SELECT * FROM @extschema@._status();
COMMENT ON VIEW @extschema@.status IS 'What audit_log captures in this server right now.';
COMMENT ON COLUMN @extschema@.status.preloaded IS 'Whether audit_log is in shared_preload_libraries.';
COMMENT ON COLUMN @extschema@.status.table_capture IS 'Whether audited tables are captured (always, by triggers).';
COMMENT ON COLUMN @extschema@.status.utility_capture IS 'Whether roles, privileges, configuration and failed commands are captured by the server hooks.';
COMMENT ON COLUMN @extschema@.status.login_capture IS 'Which logins are captured: all, failures, none, or off without the preload.';
COMMENT ON COLUMN @extschema@.status.worker_pid IS 'Process id of the writer of audit_log.database (which stores the cluster-wide events), NULL when it is not running.';
COMMENT ON COLUMN @extschema@.status.queue_depth IS 'Events waiting in the shared-memory queue.';
COMMENT ON COLUMN @extschema@.status.queue_capacity IS 'Capacity of the shared-memory queue, in events.';
COMMENT ON COLUMN @extschema@.status.events_written IS 'Events the writers stored since the server started.';
COMMENT ON COLUMN @extschema@.status.events_logged IS 'Events written to the server log instead of the table (queue full, worker down).';
COMMENT ON COLUMN @extschema@.status.writers IS 'One object per database writer, by database: database, pid, state, audit_database, started_at, last_write, events_written, queued.';
REVOKE ALL ON @extschema@.status FROM PUBLIC;
GRANT SELECT ON @extschema@.status TO audit_log_reader, audit_log_admin;

DO $warn$
BEGIN
    IF NOT (SELECT preloaded FROM @extschema@._status()) THEN
        RAISE WARNING 'audit_log is not in shared_preload_libraries: role, login, configuration and failed-command capture and the background worker are off'
            USING HINT = 'Add audit_log to shared_preload_libraries and restart; table auditing, search and export work without it.';
    END IF;
END
$warn$;
