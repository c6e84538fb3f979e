/*
 * audit_log install script, part 00: roles, the events table, the event
 * type catalogue, internal functions.  The install script
 * audit_log--1.0.sql is the files of src/sql concatenated in name order.
 */
\echo Use "CREATE EXTENSION audit_log CASCADE" to load this file. \quit

-- Roles are cluster-wide: a second database's CREATE EXTENSION reuses them.
DO $roles$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'audit_log_reader') THEN
        CREATE ROLE audit_log_reader NOLOGIN;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'audit_log_admin') THEN
        CREATE ROLE audit_log_admin NOLOGIN;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'audit_log_writer') THEN
        CREATE ROLE audit_log_writer NOLOGIN;
    END IF;
    IF NOT pg_catalog.pg_has_role('audit_log_admin', 'audit_log_reader', 'MEMBER') THEN
        GRANT audit_log_reader TO audit_log_admin;
    END IF;
    IF NOT pg_catalog.pg_has_role('audit_log_admin', 'audit_log_writer', 'MEMBER') THEN
        GRANT audit_log_writer TO audit_log_admin;
    END IF;
END
$roles$;

REVOKE ALL ON SCHEMA @extschema@ FROM PUBLIC;
GRANT USAGE ON SCHEMA @extschema@ TO audit_log_reader, audit_log_admin, audit_log_writer;

-- The events: one table, partitioned by day (UTC) on occurred_at.
CREATE SEQUENCE @extschema@.events_event_id_seq AS bigint;

CREATE TABLE @extschema@.events (
    event_id         bigint      NOT NULL,
    occurred_at      timestamptz NOT NULL,
    category         text        NOT NULL,
    event_type       text        NOT NULL,
    status           text        NOT NULL,
    actor            text,
    actor_type       text,
    db_user          text,
    effective_role   text,
    client_addr      inet,
    application_name text,
    user_agent       text,
    tenant           text,
    request_id       text,
    database         text,
    object_type      text,
    object_name      text,
    resource_id      text,
    command          text,
    old_data         jsonb,
    new_data         jsonb,
    statement        text,
    details          jsonb,
    txid             bigint,
    backend_pid      integer
) PARTITION BY RANGE (occurred_at);

CREATE INDEX events_event_id_idx ON @extschema@.events (event_id);

COMMENT ON TABLE @extschema@.events IS
    'Audit events, partitioned by day (UTC). Written only by the audit_log extension; read through the views.';

-- Nobody writes the events directly, the owner included.
REVOKE ALL ON TABLE @extschema@.events FROM PUBLIC;
REVOKE INSERT, UPDATE, DELETE, TRUNCATE, TRIGGER, REFERENCES ON TABLE @extschema@.events FROM CURRENT_USER;
REVOKE ALL ON SEQUENCE @extschema@.events_event_id_seq FROM PUBLIC;
REVOKE UPDATE ON SEQUENCE @extschema@.events_event_id_seq FROM CURRENT_USER;

-- The safety net: an event never fails for want of a partition.
CREATE TABLE @extschema@.events_default PARTITION OF @extschema@.events DEFAULT;
REVOKE ALL ON TABLE @extschema@.events_default FROM PUBLIC;
REVOKE INSERT, UPDATE, DELETE, TRUNCATE, TRIGGER, REFERENCES ON TABLE @extschema@.events_default FROM CURRENT_USER;

/*
 * _partition_name(day): the name of a day's partition, events_pYYYYMMDD.
 */
CREATE FUNCTION @extschema@._partition_name(day date) RETURNS text
LANGUAGE sql IMMUTABLE STRICT
SET search_path = pg_catalog, pg_temp
AS $$ SELECT 'events_p' || pg_catalog.to_char(day, 'YYYYMMDD') $$;

-- The daily partitions themselves (a level per retention policy below
-- each day) are created by _create_partition() in part 30_retention, once
-- the policies exist.
REVOKE ALL ON FUNCTION @extschema@._partition_name(date) FROM PUBLIC;

-- The event type catalogue.  builtin codes are recorded by the extension
-- itself and cannot be forged through audit_log.log().
CREATE TABLE @extschema@.event_type_catalog (
    event_type  text PRIMARY KEY
                CHECK (event_type ~ '^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$'),
    category    text NOT NULL
                CHECK (category IN ('data', 'ddl', 'privilege', 'role', 'auth', 'config', 'audit', 'app')),
    description text NOT NULL,
    builtin     boolean NOT NULL DEFAULT false
);
COMMENT ON TABLE @extschema@.event_type_catalog IS
    'Every event code with its category and description; read it through the event_types view.';
REVOKE ALL ON TABLE @extschema@.event_type_catalog FROM PUBLIC;
SELECT pg_catalog.pg_extension_config_dump('@extschema@.event_type_catalog', 'WHERE NOT builtin');

INSERT INTO @extschema@.event_type_catalog (event_type, category, description, builtin) VALUES
    ('data.insert', 'data', 'Row inserted into an audited table', true),
    ('data.update', 'data', 'Row updated in an audited table', true),
    ('data.delete', 'data', 'Row deleted from an audited table', true),
    ('data.truncate', 'data', 'Audited table truncated', true),
    ('role.created', 'role', 'Role created', true),
    ('role.altered', 'role', 'Role attributes altered', true),
    ('role.renamed', 'role', 'Role renamed', true),
    ('role.dropped', 'role', 'Role dropped', true),
    ('role.password_changed', 'role', 'Role password set or changed (the password is never recorded)', true),
    ('role.membership_granted', 'role', 'Role membership granted', true),
    ('role.membership_revoked', 'role', 'Role membership revoked', true),
    ('privilege.granted', 'privilege', 'Privilege granted on an object', true),
    ('privilege.revoked', 'privilege', 'Privilege revoked on an object', true),
    ('privilege.defaults_altered', 'privilege', 'Default privileges altered', true),
    ('config.system_altered', 'config', 'Server configuration changed with ALTER SYSTEM', true),
    ('config.setting_altered', 'config', 'Per-role or per-database setting changed (ALTER ROLE/DATABASE ... SET)', true),
    ('config.parameter_granted', 'config', 'Privilege on a configuration parameter granted or revoked', true),
    ('database.created', 'ddl', 'Database created', true),
    ('database.dropped', 'ddl', 'Database dropped', true),
    ('extension.created', 'ddl', 'Extension created', true),
    ('extension.altered', 'ddl', 'Extension altered or updated', true),
    ('extension.dropped', 'ddl', 'Extension dropped', true),
    ('auth.login_succeeded', 'auth', 'Successful login', true),
    ('auth.login_failed', 'auth', 'Failed login attempt', true),
    ('audit.enabled', 'audit', 'Auditing enabled or its options changed on a table', true),
    ('audit.disabled', 'audit', 'Auditing removed from a table', true),
    ('audit.capture_disabled', 'audit', 'Audit capture turned off by other means than disable()', true),
    ('audit.replication_role_changed', 'audit', 'session_replication_role changed', true),
    ('audit.tamper_attempt', 'audit', 'Attempt to write, truncate, alter or add a trigger to the audit tables', true),
    ('audit.setting_changed', 'audit', 'An audit_log setting changed', true),
    ('audit.purged', 'audit', 'Audit partition removed by retention', true),
    ('audit.retention_changed', 'audit', 'Retention policy set or changed', true),
    ('audit.hold_placed', 'audit', 'Legal hold placed on a time range', true),
    ('audit.hold_released', 'audit', 'Legal hold released', true),
    ('audit.exported', 'audit', 'Audit events exported', true);

INSERT INTO @extschema@.event_type_catalog (event_type, category, description, builtin)
SELECT 'ddl.' || lower(replace(c, ' ', '_')), 'ddl', 'Schema change: ' || c, true
FROM pg_catalog.unnest(ARRAY[
    'CREATE TABLE', 'ALTER TABLE', 'DROP TABLE', 'CREATE TABLE AS', 'SELECT INTO',
    'CREATE INDEX', 'ALTER INDEX', 'DROP INDEX', 'REINDEX',
    'CREATE VIEW', 'ALTER VIEW', 'DROP VIEW',
    'CREATE MATERIALIZED VIEW', 'ALTER MATERIALIZED VIEW', 'DROP MATERIALIZED VIEW',
    'CREATE SEQUENCE', 'ALTER SEQUENCE', 'DROP SEQUENCE',
    'CREATE SCHEMA', 'ALTER SCHEMA', 'DROP SCHEMA',
    'CREATE FUNCTION', 'ALTER FUNCTION', 'DROP FUNCTION',
    'CREATE PROCEDURE', 'ALTER PROCEDURE', 'DROP PROCEDURE',
    'CREATE TRIGGER', 'ALTER TRIGGER', 'DROP TRIGGER',
    'CREATE EVENT TRIGGER', 'ALTER EVENT TRIGGER', 'DROP EVENT TRIGGER',
    'CREATE TYPE', 'ALTER TYPE', 'DROP TYPE', 'CREATE DOMAIN', 'ALTER DOMAIN', 'DROP DOMAIN',
    'CREATE POLICY', 'ALTER POLICY', 'DROP POLICY', 'CREATE RULE', 'DROP RULE',
    'CREATE FOREIGN TABLE', 'ALTER FOREIGN TABLE', 'DROP FOREIGN TABLE',
    'CREATE SERVER', 'ALTER SERVER', 'DROP SERVER',
    'CREATE USER MAPPING', 'ALTER USER MAPPING', 'DROP USER MAPPING',
    'CREATE PUBLICATION', 'ALTER PUBLICATION', 'DROP PUBLICATION',
    'CREATE SUBSCRIPTION', 'ALTER SUBSCRIPTION', 'DROP SUBSCRIPTION',
    'COMMENT', 'SECURITY LABEL', 'ALTER DEFAULT PRIVILEGES', 'ALTER OWNER'
]) AS c
ON CONFLICT DO NOTHING;

/*
 * _record(...): write one event of the extension's own (audit.enabled,
 * audit.purged, ...) in the current transaction.  Granted to nobody.
 */
CREATE FUNCTION @extschema@._record(category text, event_type text, status text,
    object_type text, object_name text, command text, details jsonb, statement text DEFAULT NULL)
RETURNS bigint
AS 'MODULE_PATHNAME', 'audit_record'
LANGUAGE C VOLATILE;
REVOKE ALL ON FUNCTION @extschema@._record(text, text, text, text, text, text, jsonb, text) FROM PUBLIC;

/*
 * _internal(on): mark the start (true) and end (false) of an internal
 * operation of the extension's own functions; returns the previous value.
 * Their DDL on audit objects and triggers is not captured as a user's, and
 * the guards of the audit tables let it through.  Granted to nobody.
 */
CREATE FUNCTION @extschema@._internal(on_ boolean) RETURNS boolean
AS 'MODULE_PATHNAME', 'audit_internal'
LANGUAGE C STRICT VOLATILE;
REVOKE ALL ON FUNCTION @extschema@._internal(boolean) FROM PUBLIC;
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
    OUT events_logged bigint)
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
COMMENT ON COLUMN @extschema@.status.worker_pid IS 'Process id of the background worker, NULL when it is not running.';
COMMENT ON COLUMN @extschema@.status.queue_depth IS 'Events waiting in the shared-memory queue.';
COMMENT ON COLUMN @extschema@.status.queue_capacity IS 'Capacity of the shared-memory queue, in events.';
COMMENT ON COLUMN @extschema@.status.events_written IS 'Events the background worker stored since the server started.';
COMMENT ON COLUMN @extschema@.status.events_logged IS 'Events written to the server log instead of the table (queue full, worker down).';
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
/*
 * audit_log install script, part 20: capture of privileged changes.
 * With the preload the ProcessUtility hook (capture_utility.c) records
 * roles, grants, configuration, databases, extensions and DDL; without it
 * the event triggers below record DDL and GRANT/REVOKE (they return at
 * once when the hook is active, so nothing is recorded twice).
 */

/*
 * _redact(statement): the statement with its string literals replaced
 * when it mentions a password.  Used by the capture; granted to nobody.
 */
CREATE FUNCTION @extschema@._redact(statement text) RETURNS text
AS 'MODULE_PATHNAME', 'audit_redact'
LANGUAGE C IMMUTABLE STRICT;
REVOKE ALL ON FUNCTION @extschema@._redact(text) FROM PUBLIC;

/*
 * _ddl_command_end() / _sql_drop(): event trigger functions (C).  They run
 * as the user who issued the DDL, so db_user and effective_role are right.
 */
CREATE FUNCTION @extschema@._ddl_command_end() RETURNS event_trigger
AS 'MODULE_PATHNAME', 'audit_et_ddl_end'
LANGUAGE C;
CREATE FUNCTION @extschema@._sql_drop() RETURNS event_trigger
AS 'MODULE_PATHNAME', 'audit_et_sql_drop'
LANGUAGE C;
-- Event triggers call them without a privilege check: nobody else may.
REVOKE ALL ON FUNCTION @extschema@._ddl_command_end() FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@._sql_drop() FROM PUBLIC;

CREATE EVENT TRIGGER audit_log_ddl ON ddl_command_end
    EXECUTE FUNCTION @extschema@._ddl_command_end();
CREATE EVENT TRIGGER audit_log_drop ON sql_drop
    EXECUTE FUNCTION @extschema@._sql_drop();
-- Keep capturing with session_replication_role = replica.
ALTER EVENT TRIGGER audit_log_ddl ENABLE ALWAYS;
ALTER EVENT TRIGGER audit_log_drop ENABLE ALWAYS;

-- DDL codes beyond part 00's list.
INSERT INTO @extschema@.event_type_catalog (event_type, category, description, builtin)
SELECT 'ddl.' || lower(replace(c, ' ', '_')), 'ddl', 'Schema change: ' || c, true
FROM pg_catalog.unnest(ARRAY[
    'ALTER DATABASE', 'ALTER TABLESPACE', 'CREATE TABLESPACE', 'DROP TABLESPACE',
    'ALTER ROUTINE', 'DROP ROUTINE', 'CREATE CAST', 'DROP CAST', 'CREATE OPERATOR',
    'DROP OPERATOR', 'ALTER OPERATOR', 'CREATE AGGREGATE', 'ALTER AGGREGATE',
    'DROP AGGREGATE', 'CREATE COLLATION', 'ALTER COLLATION', 'DROP COLLATION',
    'CREATE CONVERSION', 'DROP CONVERSION', 'CREATE LANGUAGE', 'DROP LANGUAGE',
    'CREATE FOREIGN DATA WRAPPER', 'ALTER FOREIGN DATA WRAPPER', 'DROP FOREIGN DATA WRAPPER',
    'CREATE STATISTICS', 'ALTER STATISTICS', 'DROP STATISTICS', 'ALTER RULE',
    'CREATE TEXT SEARCH CONFIGURATION', 'DROP TEXT SEARCH CONFIGURATION',
    'CREATE ACCESS METHOD', 'DROP ACCESS METHOD', 'IMPORT FOREIGN SCHEMA',
    'ALTER LARGE OBJECT', 'DROP OWNED', 'REASSIGN OWNED', 'REFRESH MATERIALIZED VIEW',
    'CREATE TRANSFORM', 'DROP TRANSFORM', 'ALTER CONVERSION', 'ALTER LANGUAGE'
]) AS c
ON CONFLICT DO NOTHING;
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
 * Returns what it did.  as_of stands for "now" (tests).
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
    sealed int;
    r record;
    l record;
    drop_list oid[];
    total int;
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

    -- 1. Partitions ahead: today (UTC) and premake_days more.
    FOR d IN SELECT g::date FROM generate_series((t AT TIME ZONE 'UTC')::date,
                                                 (t AT TIME ZONE 'UTC')::date + premake, interval '1 day') g
    LOOP
        -- A day with stray rows is created when they are moved (step 2).
        CONTINUE WHEN EXISTS (SELECT 1 FROM @extschema@.events_default e
                               WHERE e.occurred_at >= @extschema@._day_lo(d)
                                 AND e.occurred_at < @extschema@._day_lo(d + 1));
        BEGIN
            IF @extschema@._create_partition(d) THEN
                action := 'created'; object := '@extschema@.' || @extschema@._partition_name(d);
                detail := '[' || @extschema@._ts(@extschema@._day_lo(d)) || ', '
                              || @extschema@._ts(@extschema@._day_lo(d + 1)) || ')';
                RETURN NEXT;
            END IF;
        EXCEPTION WHEN lock_not_available OR deadlock_detected THEN
            action := 'retry'; object := '@extschema@.' || @extschema@._partition_name(d);
            detail := 'lock not available: ' || SQLERRM; RETURN NEXT;
        END;
    END LOOP;

    -- 2. Stray rows of the safety net go to their day.
    FOR d IN SELECT DISTINCT (e.occurred_at AT TIME ZONE 'UTC')::date
               FROM @extschema@.events_default e ORDER BY 1
    LOOP
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
            IF @extschema@._create_partition(d) THEN
                action := 'created'; object := '@extschema@.' || @extschema@._partition_name(d);
                detail := '[' || @extschema@._ts(@extschema@._day_lo(d)) || ', '
                              || @extschema@._ts(@extschema@._day_lo(d + 1)) || ')';
                RETURN NEXT;
            END IF;
            INSERT INTO @extschema@.events SELECT * FROM pg_temp.audit_log_strays;
            action := 'moved'; object := '@extschema@.' || @extschema@._partition_name(d);
            detail := n || ' rows from @extschema@.events_default'; RETURN NEXT;
        EXCEPTION WHEN lock_not_available OR deadlock_detected THEN
            action := 'retry'; object := '@extschema@.events_default';
            detail := 'lock not available: ' || SQLERRM; RETURN NEXT;
        END;
    END LOOP;

    -- 3. Seal the closed windows (before anything is dropped).
    sealed := @extschema@.seal(t);
    IF sealed > 0 THEN
        action := 'sealed'; object := '@extschema@.seals';
        detail := sealed || ' windows up to ' ||
                  @extschema@._ts((SELECT max(s.window_end) FROM @extschema@.seal s));
        RETURN NEXT;
    END IF;

    -- 4. Drop what has expired, by whole leaves, or whole days when every
    --    leaf of the day goes.
    IF pg_catalog.to_regclass('pg_temp.audit_log_leaves') IS NOT NULL THEN
        DROP TABLE pg_temp.audit_log_leaves;
    END IF;
    CREATE TEMP TABLE audit_log_leaves ON COMMIT DROP AS
        SELECT s.*, s.expires <= t AS expired FROM @extschema@._leaf_state() s;
    FOR r IN SELECT s.day_oid, s.day_name, count(*) AS leaves
               FROM pg_temp.audit_log_leaves s
              GROUP BY s.day_oid, s.day_name
             HAVING bool_or(s.expired)
              ORDER BY s.day_name
    LOOP
        -- Report held and unsealed leaves; keep only the droppable ones.
        drop_list := '{}';
        FOR l IN SELECT s.* FROM pg_temp.audit_log_leaves s
                  WHERE s.day_oid = r.day_oid AND s.expired ORDER BY s.leaf_name
        LOOP
            IF cardinality(l.holds) > 0 THEN
                action := 'held'; object := '@extschema@.' || l.leaf_name;
                detail := 'expired but kept by legal hold ' || array_to_string(l.holds, ', '); RETURN NEXT;
            ELSIF NOT l.sealed AND @extschema@._rows(l.leaf) > 0 THEN
                action := 'deferred'; object := '@extschema@.' || l.leaf_name;
                detail := 'expired but its windows are not sealed yet'; RETURN NEXT;
            ELSE
                drop_list := drop_list || l.leaf;
            END IF;
        END LOOP;
        CONTINUE WHEN cardinality(drop_list) = 0;
        IF events_busy AND cardinality(drop_list) = r.leaves THEN
            -- Writers hold audit_log.events: do not queue behind them again.
            action := 'retry'; object := '@extschema@.' || r.day_name;
            detail := 'audit_log.events is busy: retried at the next run'; RETURN NEXT;
            CONTINUE;
        END IF;
        BEGIN
            IF cardinality(drop_list) = r.leaves THEN
                events_busy := true;
                EXECUTE pg_catalog.format('LOCK TABLE %I.events IN ACCESS EXCLUSIVE MODE', '@extschema@');
            END IF;
            events_busy := false;
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
                action := 'purged'; object := '@extschema@.' || l.leaf_name;
                detail := n || ' rows, [' || @extschema@._ts(l.lo) || ', ' || @extschema@._ts(l.hi)
                          || '), policy ' || l.policy || ' (' || l.keep::text || ')';
                RETURN NEXT;
            END LOOP;
            IF cardinality(drop_list) = r.leaves THEN
                EXECUTE pg_catalog.format('DROP TABLE %s', r.day_oid::regclass);
            END IF;
        EXCEPTION WHEN lock_not_available OR deadlock_detected THEN
            action := 'retry'; object := '@extschema@.' || r.day_name;
            detail := 'lock not available: ' || SQLERRM; RETURN NEXT;
        END;
    END LOOP;

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

-- Today (UTC) and the next 7 days exist from the start.
SELECT @extschema@._create_partition(d::date)
  FROM pg_catalog.generate_series((pg_catalog.now() AT TIME ZONE 'UTC')::date,
                                  (pg_catalog.now() AT TIME ZONE 'UTC')::date + 7, interval '1 day') AS d;

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
 * extra_float_digits or client_encoding setting changes it.  Each seal also
 * keeps the event ids and the first 4 bytes of each h(e), so verify() can
 * name the first bad event of a window.
 *
 * Locking: seal() serialises on an advisory transaction lock (a second
 * caller waits); it only reads audit_log.events and inserts into the seal
 * table.  A window is sealed only when it ended seal_delay ago and no
 * transaction that began before its end and has written anything (holds
 * an xid) is still running, nor any prepared transaction from before it.
 */

-- SHA-256 through pgcrypto, wherever CASCADE installed it.
DO $sha$
DECLARE
    s text;
BEGIN
    SELECT n.nspname INTO STRICT s FROM pg_catalog.pg_extension e
      JOIN pg_catalog.pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = 'pgcrypto';
    EXECUTE pg_catalog.format(
        'CREATE FUNCTION @extschema@._sha256(bytea) RETURNS bytea LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE '
        'AS $f$ SELECT %I.digest($1, ''sha256'') $f$', s);
END
$sha$;

/*
 * _event_digest(e): SHA-256 of the canonical encoding of one event.
 */
CREATE FUNCTION @extschema@._event_digest(e @extschema@.events) RETURNS bytea
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
    SELECT @extschema@._sha256(pg_catalog.convert_to(pg_catalog.jsonb_build_array(
        e.event_id, (EXTRACT(epoch FROM e.occurred_at) * 1000000)::bigint,
        e.category, e.event_type, e.status, e.actor, e.actor_type, e.db_user, e.effective_role,
        e.client_addr::text, e.application_name, e.user_agent, e.tenant, e.request_id,
        e.database, e.object_type, e.object_name, e.resource_id, e.command,
        e.old_data, e.new_data, e.statement, e.details, e.txid, e.backend_pid)::text, 'UTF8'))
$$;

/*
 * _seal_digest(prev, start, end, events, content): the chained digest of
 * one window.
 */
CREATE FUNCTION @extschema@._seal_digest(prev bytea, ws timestamptz, we timestamptz, n bigint, content bytea)
RETURNS bytea
LANGUAGE sql IMMUTABLE
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
    found := least(found, (SELECT min(occurred_at) FROM @extschema@.events_default));
    IF found IS NULL THEN
        RETURN NULL;
    END IF;
    RETURN to_timestamp((floor(EXTRACT(epoch FROM found) / wsec) * wsec)::double precision);
END
$$;

/*
 * seal(as_of): seal every closed window after the last seal; returns how
 * many windows it sealed.  as_of stands for "now" (never later than the
 * clock: the future is never sealed).
 */
CREATE FUNCTION @extschema@.seal(as_of timestamptz DEFAULT NULL) RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    was_internal boolean := @extschema@._internal(true);   -- also loads the settings
    wsec bigint := @extschema@._setting_seconds('audit_log.seal_window');
    w interval := @extschema@._setting_seconds('audit_log.seal_window') * interval '1 second';
    lim timestamptz;
    start timestamptz;
    prev bytea;
    nwin int;
    r record;
    ws timestamptz;
    dg bytea;
    total int := 0;
BEGIN
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
        nwin := least(floor(EXTRACT(epoch FROM (lim - start)) / wsec)::int, greatest(1, 604800 / wsec)::int);
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
        start := start + nwin * w;
    END LOOP;
    PERFORM @extschema@._internal(was_internal);
    RETURN total;
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
CREATE FUNCTION @extschema@._first_bad_event(ws timestamptz, we timestamptz, ids int8multirange, hashes bytea)
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
    )
    SELECT 'event ' || coalesce(sh.id, act.id) || ' ' ||
           CASE WHEN act.id IS NULL THEN 'deleted or moved out of the window'
                WHEN sh.id IS NULL THEN 'not in the seal: inserted or moved into the window'
                WHEN act.copies > 1 THEN 'duplicated'
                ELSE 'altered' END
      FROM sh FULL JOIN act ON sh.id = act.id
     WHERE sh.id IS NULL OR act.id IS NULL OR sh.h <> act.h OR act.copies > 1
     ORDER BY coalesce(sh.id, act.id)
     LIMIT 1
$$;

/*
 * verify(from_time, to_time): check every sealed window overlapping
 * [from_time, to_time) against the events and the chain.
 */
CREATE FUNCTION @extschema@.verify(from_time timestamptz DEFAULT NULL, to_time timestamptz DEFAULT NULL)
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
    FOR s IN SELECT * FROM @extschema@.seal x
              WHERE (from_time IS NULL OR x.window_end > from_time)
                AND (to_time IS NULL OR x.window_start < to_time)
              ORDER BY x.window_start
    LOOP
        IF first THEN
            SELECT * INTO p FROM @extschema@.seal x WHERE x.window_end <= s.window_start
             ORDER BY x.window_end DESC LIMIT 1;
            first := false;
        END IF;
        -- A hole in the chain: seal records are gone.
        IF p.window_end IS NOT NULL AND p.window_end < s.window_start THEN
            window_start := p.window_end; window_end := s.window_start; status := 'missing';
            SELECT count(*) INTO events FROM @extschema@.events e
             WHERE e.occurred_at >= p.window_end AND e.occurred_at < s.window_start;
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
            status := 'purged'; events := s.events;
            detail := s.events || ' events sealed, purged by retention (' || pg.parts || ') at '
                      || @extschema@._ts(pg.at) || '; anchor digest ' || encode(s.digest, 'hex');
        ELSE
            SELECT count(*), @extschema@._sha256(coalesce(string_agg(x.h, ''::bytea ORDER BY x.event_id), ''::bytea))
              INTO n, content
              FROM (SELECT e.event_id, @extschema@._event_digest(e) AS h FROM @extschema@.events e
                     WHERE e.occurred_at >= s.window_start AND e.occurred_at < s.window_end) x;
            events := n;
            IF n = s.events AND content = s.content_digest THEN
                status := 'ok'; detail := NULL;
            ELSIF n = 0 THEN
                status := 'missing';
                detail := 'all ' || s.events || ' sealed events are gone and no purge was recorded';
            ELSE
                status := 'mismatch';
                bad := @extschema@._first_bad_event(s.window_start, s.window_end, s.event_ids, s.event_hashes);
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

REVOKE ALL ON FUNCTION @extschema@._sha256(bytea), @extschema@._event_digest(@extschema@.events),
    @extschema@._seal_digest(bytea, timestamptz, timestamptz, bigint, bytea),
    @extschema@._setting_seconds(text), @extschema@._chain_origin(bigint),
    @extschema@.seal(timestamptz), @extschema@.chain_head(),
    @extschema@._first_bad_event(timestamptz, timestamptz, int8multirange, bytea),
    @extschema@.verify(timestamptz, timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION @extschema@.seal(timestamptz), @extschema@.chain_head(),
    @extschema@.verify(timestamptz, timestamptz) TO audit_log_admin;
REVOKE ALL ON @extschema@.seals FROM PUBLIC;
GRANT SELECT ON @extschema@.seals TO audit_log_reader, audit_log_admin;
/*
 * audit_log install script, part 50: search.  The indexes search needs on
 * audit_log.events, the views that users and BI tools read, and
 * audit_log.search().
 *
 * Indexes.  Every index costs every audited write, so the partitions
 * being written (today's and the days ahead) carry only the event_id index
 * of part 00.  When a day has ended, maintain() builds its search indexes in
 * bulk (_index_leaf), which costs a fraction of maintaining them row by row:
 *   - <leaf>_keys_idx: ONE GIN over a prefixed key array (u:actor,
 *     u:db_user, t:event_type, r:resource_id) serves the username, event
 *     type and resource id filters;
 *   - <leaf>_addr_idx: a btree on client_addr; `client_addr <<= net` with a
 *     constant network becomes a btree range (network_subset_support).
 * Today's partition is read in full by such filters; date ranges need no
 * index: the table is partitioned by day and search() plans with
 * constants, so only the partitions in range are read.
 */

/*
 * _leaf_indexed(leaf): has this leaf partition its search indexes?
 */
CREATE FUNCTION @extschema@._leaf_indexed(leaf oid) RETURNS boolean
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT count(*) = 2 FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
     WHERE i.indrelid = leaf
       AND c.relname IN (left((SELECT relname FROM pg_class WHERE oid = leaf), 54) || '_keys_idx',
                         left((SELECT relname FROM pg_class WHERE oid = leaf), 54) || '_addr_idx')
$$;

/*
 * _index_leaf(leaf): build the search indexes of one leaf partition of a
 * day that has ended, then ANALYZE it.  Takes a SHARE lock on the leaf
 * (nobody writes a past day) within the caller's lock_timeout: a late
 * writer makes it fail with lock_not_available (maintain() retries at its
 * next run); an autovacuum of the leaf gives way after deadlock_timeout.
 */
CREATE FUNCTION @extschema@._index_leaf(leaf oid) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    base text := left((SELECT relname FROM pg_class WHERE oid = leaf), 54);
    prev boolean := @extschema@._internal(true);    -- the extension's own DDL
BEGIN
    EXECUTE pg_catalog.format('LOCK TABLE %s IN SHARE MODE', leaf::regclass);
    EXECUTE pg_catalog.format(
        'CREATE INDEX IF NOT EXISTS %I ON %s USING gin '
        '((ARRAY[''u:'' || actor, ''u:'' || db_user, ''t:'' || event_type, ''r:'' || resource_id]))',
        base || '_keys_idx', leaf::regclass);
    EXECUTE pg_catalog.format('CREATE INDEX IF NOT EXISTS %I ON %s (client_addr)',
                              base || '_addr_idx', leaf::regclass);
    -- Statistics of the key expression, so the planner costs the GIN index.
    EXECUTE pg_catalog.format('ANALYZE %s', leaf::regclass);
    PERFORM @extschema@._internal(prev);
END
$$;

/*
 * _index_closed(as_of): build the search indexes of every leaf of the days
 * that ended before as_of; returns how many leaves it indexed.  maintain()
 * does this as its step 5; tests call it directly.  Waits for each lock at
 * most the session's lock_timeout, or 10 seconds when it has none.
 */
CREATE FUNCTION @extschema@._index_closed(as_of timestamptz DEFAULT NULL) RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    l record;
    n integer := 0;
    old_lock_timeout text := current_setting('lock_timeout');
BEGIN
    IF old_lock_timeout = '0' THEN
        PERFORM set_config('lock_timeout', '10s', true);
    END IF;
    FOR l IN SELECT s.leaf FROM @extschema@._leaves() s
              WHERE s.hi <= least(coalesce(as_of, now()), now()) AND NOT @extschema@._leaf_indexed(s.leaf)
    LOOP
        PERFORM @extschema@._index_leaf(l.leaf);
        n := n + 1;
    END LOOP;
    PERFORM set_config('lock_timeout', old_lock_timeout, true);
    RETURN n;
END
$$;
REVOKE ALL ON FUNCTION @extschema@._leaf_indexed(oid) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@._index_leaf(oid) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@._index_closed(timestamptz) FROM PUBLIC;

CREATE VIEW @extschema@.event_types AS
SELECT event_type, category, description
  FROM @extschema@.event_type_catalog;

CREATE VIEW @extschema@.event_log AS
SELECT e.event_id, e.occurred_at, e.category, e.event_type, e.status,
       e.actor, e.actor_type, e.db_user, e.effective_role, e.client_addr,
       e.application_name, e.user_agent, e.tenant, e.request_id, e.database,
       e.object_type, e.object_name, e.resource_id, e.command,
       e.old_data, e.new_data, e.statement, e.details, e.txid, e.backend_pid,
       t.description,
       CASE WHEN e.command = 'UPDATE' AND pg_catalog.jsonb_typeof(e.new_data) = 'object'
            THEN ARRAY(SELECT k FROM pg_catalog.jsonb_object_keys(e.new_data) AS k ORDER BY k)
       END AS changed_columns
  FROM @extschema@.events e
  LEFT JOIN @extschema@.event_type_catalog t ON t.event_type = e.event_type;

CREATE VIEW @extschema@.privileged_changes AS
SELECT *
  FROM @extschema@.event_log
 WHERE category IN ('role', 'privilege', 'config', 'ddl', 'audit');

CREATE VIEW @extschema@.login_activity AS
SELECT e.event_id, e.occurred_at, e.event_type, e.status,
       (e.status = 'success') AS succeeded,
       COALESCE(e.details ->> 'user_name', e.db_user, e.actor) AS user_name,
       e.database, e.client_addr, e.application_name,
       COALESCE(e.details ->> 'auth_method', e.details ->> 'method') AS auth_method,
       COALESCE(e.details ->> 'error', e.details ->> 'reason') AS failure_reason,
       e.details
  FROM @extschema@.events e
 WHERE e.category = 'auth';

CREATE VIEW @extschema@.daily_counts AS
SELECT (e.occurred_at AT TIME ZONE 'UTC')::date AS day,
       e.category, e.event_type, e.status,
       pg_catalog.count(*) AS events
  FROM @extschema@.events e
 GROUP BY 1, 2, 3, 4;

-- Comments: BI tools show them.  One text per column name, shared by the views.
COMMENT ON VIEW @extschema@.event_types IS 'Every event code with its category and description.';
COMMENT ON VIEW @extschema@.event_log IS
    'Every audit event, with the description of its code and the columns an UPDATE changed. Filter it with audit_log.search().';
COMMENT ON VIEW @extschema@.privileged_changes IS
    'Privileged changes: events of the categories role, privilege, config, ddl and audit.';
COMMENT ON VIEW @extschema@.login_activity IS
    'Successful and failed logins (category auth), one row per attempt.';
COMMENT ON VIEW @extschema@.daily_counts IS
    'Number of events per UTC day, category, event type and status: a dashboard''s starting point.';

DO $comments$
DECLARE
    c record;
    txt text;
    doc constant jsonb := $doc${
      "event_id": "Identifier of the event, increasing in capture order; unique.",
      "occurred_at": "When the event was captured (clock time).",
      "category": "Category: data, ddl, privilege, role, auth, config, audit or app.",
      "event_type": "Lowercase dotted event code, e.g. role.created; see audit_log.event_types.",
      "status": "success or failure.",
      "actor": "Application user from the context (audit_log.actor), else the session user.",
      "actor_type": "Kind of actor from the context (user, api_client, support, provisioner, system...), else db_role.",
      "db_user": "The real database login (session_user); never taken from the context.",
      "effective_role": "current_user at capture: shows SET ROLE and SECURITY DEFINER.",
      "client_addr": "End user's address from the context, else the connection's client address.",
      "application_name": "application_name of the session.",
      "user_agent": "End user's user agent, from the context.",
      "tenant": "Tenant, from the context.",
      "request_id": "Correlation id of the request, from the context.",
      "database": "Database the event happened in.",
      "object_type": "Kind of object affected: table, role, database, function...",
      "object_name": "Schema-qualified name of the object, or the role name.",
      "resource_id": "Primary key of the affected row, as text (42, or 1,7 for composite keys).",
      "command": "Command tag, e.g. UPDATE, GRANT, ALTER ROLE.",
      "old_data": "Row before the change (UPDATE, DELETE), after exclusions and masks.",
      "new_data": "INSERT: the new row; UPDATE: only the changed columns, so old_data || new_data is the row after.",
      "statement": "SQL text where captured, with secrets redacted.",
      "details": "Everything else: error of a failure, authentication method, export filters...",
      "txid": "Transaction id: groups the events of one transaction.",
      "backend_pid": "Process id of the server backend that captured the event.",
      "description": "What an event of this code means (from audit_log.event_types).",
      "changed_columns": "For an UPDATE, the names of the columns whose values changed (keys of new_data).",
      "succeeded": "True for a successful login, false for a failed attempt.",
      "user_name": "User name the client logged in (or tried to log in) with.",
      "auth_method": "Authentication method (from details).",
      "failure_reason": "Why a failed login failed (from details).",
      "day": "UTC calendar day of the events.",
      "events": "Number of events."
    }$doc$;
    special constant jsonb := $doc${
      "event_types.event_type": "Lowercase dotted event code, e.g. role.created.",
      "event_types.category": "Category of the code: data, ddl, privilege, role, auth, config, audit or app.",
      "event_types.description": "What an event of this code means.",
      "login_activity.event_type": "auth.login_succeeded or auth.login_failed.",
      "login_activity.client_addr": "Address the login came from.",
      "login_activity.database": "Database the client asked for."
    }$doc$;
BEGIN
    FOR c IN
        SELECT cl.relname, a.attname
          FROM pg_catalog.pg_attribute a
          JOIN pg_catalog.pg_class cl ON cl.oid = a.attrelid
         WHERE cl.relnamespace = '@extschema@'::regnamespace
           AND cl.relname IN ('event_types', 'event_log', 'privileged_changes', 'login_activity', 'daily_counts')
           AND a.attnum > 0 AND NOT a.attisdropped
    LOOP
        txt := COALESCE(special ->> (c.relname || '.' || c.attname), doc ->> c.attname);
        IF txt IS NULL THEN
            RAISE EXCEPTION 'no comment for %.%', c.relname, c.attname;
        END IF;
        EXECUTE pg_catalog.format('COMMENT ON COLUMN %I.%I.%I IS %L', '@extschema@', c.relname, c.attname, txt);
    END LOOP;
END
$comments$;

/*
 * _search_where(filters): the WHERE clause of search() and export() over
 * alias "e" of audit_log.events or audit_log.event_log, with every value
 * inlined as a quoted constant, so that the planner prunes partitions and
 * matches the indexes at plan time.  Raises the errors of bad filters.
 * Granted to nobody.
 */
CREATE FUNCTION @extschema@._search_where(usernames text[], event_types text[], categories text[],
    resource_ids text[], user_types text[], ip_addresses cidr[], since timestamptz,
    until timestamptz, text_query text, statuses text[], tenants text[], after_event_id bigint)
RETURNS text
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
SET datestyle = 'ISO, YMD'
AS $$
DECLARE
    w text[] := ARRAY['true'];
    keys constant text := '(ARRAY[''u:'' || e.actor, ''u:'' || e.db_user, ''t:'' || e.event_type, ''r:'' || e.resource_id])';
    ors text[];
    net cidr;
    pat text;
BEGIN
    IF since IS NOT NULL AND until IS NOT NULL AND since > until THEN
        RAISE EXCEPTION 'since (%) is after until (%)', since, until
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'since is the inclusive start of the range and until its exclusive end.';
    END IF;
    IF usernames IS NOT NULL THEN
        w := w || format('%s OPERATOR(pg_catalog.&&) %L::text[]', keys,
                         ARRAY(SELECT 'u:' || x FROM unnest(usernames) x WHERE x IS NOT NULL));
    END IF;
    IF event_types IS NOT NULL THEN
        w := w || format('%s OPERATOR(pg_catalog.&&) %L::text[]', keys,
                         ARRAY(SELECT 't:' || x FROM unnest(event_types) x WHERE x IS NOT NULL));
    END IF;
    IF resource_ids IS NOT NULL THEN
        w := w || format('%s OPERATOR(pg_catalog.&&) %L::text[]', keys,
                         ARRAY(SELECT 'r:' || x FROM unnest(resource_ids) x WHERE x IS NOT NULL));
    END IF;
    IF categories IS NOT NULL THEN
        w := w || format('e.category = ANY (%L::text[])', categories);
    END IF;
    IF user_types IS NOT NULL THEN
        w := w || format('e.actor_type = ANY (%L::text[])', user_types);
    END IF;
    IF ip_addresses IS NOT NULL THEN
        ors := ARRAY['false'];
        FOREACH net IN ARRAY ip_addresses LOOP
            IF net IS NOT NULL THEN
                ors := ors || format('e.client_addr OPERATOR(pg_catalog.<<=) %L::inet', net);
            END IF;
        END LOOP;
        w := w || ('(' || array_to_string(ors, ' OR ') || ')');
    END IF;
    IF since IS NOT NULL THEN
        w := w || format('e.occurred_at >= %L::timestamptz', since);
    END IF;
    IF until IS NOT NULL THEN
        w := w || format('e.occurred_at < %L::timestamptz', until);
    END IF;
    IF text_query IS NOT NULL THEN
        pat := '%' || replace(replace(replace(text_query, '\', '\\'), '%', '\%'), '_', '\_') || '%';
        w := w || format('(e.actor ILIKE %1$L OR e.db_user ILIKE %1$L OR e.event_type ILIKE %1$L'
                         ' OR e.object_name ILIKE %1$L OR e.resource_id ILIKE %1$L OR e.statement ILIKE %1$L'
                         ' OR e.old_data::text ILIKE %1$L OR e.new_data::text ILIKE %1$L'
                         ' OR e.details::text ILIKE %1$L)', pat);
    END IF;
    IF statuses IS NOT NULL THEN
        w := w || format('e.status = ANY (%L::text[])', statuses);
    END IF;
    IF tenants IS NOT NULL THEN
        w := w || format('e.tenant = ANY (%L::text[])', tenants);
    END IF;
    IF after_event_id IS NOT NULL THEN
        w := w || format('e.event_id > %s', after_event_id);
    END IF;
    RETURN array_to_string(w, ' AND ');
END
$$;

/*
 * _search_filters(filters): the filters given, as a jsonb object (for the
 * details of audit.exported).  Granted to nobody.
 */
CREATE FUNCTION @extschema@._search_filters(usernames text[], event_types text[], categories text[],
    resource_ids text[], user_types text[], ip_addresses cidr[], since timestamptz,
    until timestamptz, text_query text, statuses text[], tenants text[], after_event_id bigint,
    max_rows integer)
RETURNS jsonb
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
SELECT jsonb_strip_nulls(jsonb_build_object(
    'usernames', usernames, 'event_types', event_types, 'categories', categories,
    'resource_ids', resource_ids, 'user_types', user_types, 'ip_addresses', ip_addresses,
    'since', since, 'until', until, 'text_query', text_query, 'statuses', statuses,
    'tenants', tenants, 'after_event_id', after_event_id, 'max_rows', max_rows))
$$;

/*
 * search(filters): the events matching every filter given (AND; any value
 * within one filter), in event_id order, at most max_rows of them after
 * after_event_id.
 */
CREATE FUNCTION @extschema@.search(usernames text[] DEFAULT NULL, event_types text[] DEFAULT NULL,
    categories text[] DEFAULT NULL, resource_ids text[] DEFAULT NULL, user_types text[] DEFAULT NULL,
    ip_addresses cidr[] DEFAULT NULL, since timestamptz DEFAULT NULL, until timestamptz DEFAULT NULL,
    text_query text DEFAULT NULL, statuses text[] DEFAULT NULL, tenants text[] DEFAULT NULL,
    after_event_id bigint DEFAULT NULL, max_rows integer DEFAULT NULL)
RETURNS SETOF @extschema@.event_log
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF max_rows IS NOT NULL AND max_rows < 0 THEN
        RAISE EXCEPTION 'max_rows must not be negative'
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Pass the page size, e.g. max_rows => 100, or NULL for every matching event.';
    END IF;
    RETURN QUERY EXECUTE
        'SELECT * FROM @extschema@.event_log e WHERE '
        || @extschema@._search_where(usernames, event_types, categories, resource_ids, user_types,
                                     ip_addresses, since, until, text_query, statuses, tenants,
                                     after_event_id)
        || ' ORDER BY e.event_id'
        || CASE WHEN max_rows IS NOT NULL THEN ' LIMIT ' || max_rows ELSE '' END;
END
$$;
COMMENT ON FUNCTION @extschema@.search(text[], text[], text[], text[], text[], cidr[], timestamptz,
    timestamptz, text, text[], text[], bigint, integer) IS
    'Events matching every filter given (any value within one filter), in event_id order; page with after_event_id and max_rows.';

REVOKE ALL ON FUNCTION @extschema@._search_where(text[], text[], text[], text[], text[], cidr[],
    timestamptz, timestamptz, text, text[], text[], bigint) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@._search_filters(text[], text[], text[], text[], text[], cidr[],
    timestamptz, timestamptz, text, text[], text[], bigint, integer) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.search(text[], text[], text[], text[], text[], cidr[], timestamptz,
    timestamptz, text, text[], text[], bigint, integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION @extschema@.search(text[], text[], text[], text[], text[], cidr[], timestamptz,
    timestamptz, text, text[], text[], bigint, integer) TO audit_log_reader, audit_log_admin;

REVOKE ALL ON @extschema@.event_types, @extschema@.event_log, @extschema@.privileged_changes,
    @extschema@.login_activity, @extschema@.daily_counts FROM PUBLIC;
GRANT SELECT ON @extschema@.event_types, @extschema@.event_log, @extschema@.privileged_changes,
    @extschema@.login_activity, @extschema@.daily_counts TO audit_log_reader, audit_log_admin;
/*
 * audit_log install script, part 60: export.  audit_log.export() (C, in
 * src/export.c) returns the events matching the search filters as text
 * cells ready for COPY ... CSV, capped at audit_log.export_max_rows;
 * audit_log.export_csv() writes them to a server file.
 */

-- One text column per event column, in table order.
CREATE TYPE @extschema@.export_row AS (
    event_id text, occurred_at text, category text, event_type text, status text,
    actor text, actor_type text, db_user text, effective_role text, client_addr text,
    application_name text, user_agent text, tenant text, request_id text, database text,
    object_type text, object_name text, resource_id text, command text,
    old_data text, new_data text, statement text, details text, txid text, backend_pid text
);
COMMENT ON TYPE @extschema@.export_row IS
    'A row of an export: every event column as text (UTC ISO 8601 timestamps, compact JSON, formula-like cells prefixed with a single quote).';

DO $comments$
DECLARE
    a record;
BEGIN
    FOR a IN SELECT attname FROM pg_catalog.pg_attribute
              WHERE attrelid = '@extschema@.export_row'::regclass AND attnum > 0 LOOP
        EXECUTE pg_catalog.format('COMMENT ON COLUMN %I.export_row.%I IS %L', '@extschema@', a.attname,
            pg_catalog.format('The event''s %s as text (see audit_log.event_log.%s).', a.attname, a.attname));
    END LOOP;
END
$comments$;

/*
 * export(filters): the search filters of search(), the events as text
 * cells, at most audit_log.export_max_rows of them (WARNING and HINT when
 * more match); records audit.exported.  SECURITY DEFINER: it reads
 * audit_log.events and writes the audit.exported event for the caller.
 */
CREATE FUNCTION @extschema@.export(usernames text[] DEFAULT NULL, event_types text[] DEFAULT NULL,
    categories text[] DEFAULT NULL, resource_ids text[] DEFAULT NULL, user_types text[] DEFAULT NULL,
    ip_addresses cidr[] DEFAULT NULL, since timestamptz DEFAULT NULL, until timestamptz DEFAULT NULL,
    text_query text DEFAULT NULL, statuses text[] DEFAULT NULL, tenants text[] DEFAULT NULL,
    after_event_id bigint DEFAULT NULL, max_rows integer DEFAULT NULL)
RETURNS SETOF @extschema@.export_row
AS 'MODULE_PATHNAME', 'audit_export'
LANGUAGE C VOLATILE SECURITY DEFINER ROWS 1000
SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION @extschema@.export(text[], text[], text[], text[], text[], cidr[], timestamptz,
    timestamptz, text, text[], text[], bigint, integer) IS
    'Matching events as text cells for COPY ... CSV, in event_id order, at most audit_log.export_max_rows rows; recorded as audit.exported.';

/*
 * export_csv(path, filters): COPY the export to a server file (CSV with a
 * header) and return the rows written.  SECURITY INVOKER: COPY checks that
 * the caller may write server files (pg_write_server_files).
 */
CREATE FUNCTION @extschema@.export_csv(path text, usernames text[] DEFAULT NULL,
    event_types text[] DEFAULT NULL, categories text[] DEFAULT NULL, resource_ids text[] DEFAULT NULL,
    user_types text[] DEFAULT NULL, ip_addresses cidr[] DEFAULT NULL, since timestamptz DEFAULT NULL,
    until timestamptz DEFAULT NULL, text_query text DEFAULT NULL, statuses text[] DEFAULT NULL,
    tenants text[] DEFAULT NULL, after_event_id bigint DEFAULT NULL, max_rows integer DEFAULT NULL)
RETURNS bigint
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
SET datestyle = 'ISO, YMD'
AS $$
DECLARE
    n bigint;
BEGIN
    IF path IS NULL OR path = '' THEN
        RAISE EXCEPTION 'path must not be empty'
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Give an absolute path of a file the server may write, e.g. /var/lib/postgresql/audit.csv.';
    END IF;
    EXECUTE format('COPY (SELECT * FROM @extschema@.export(usernames => %L, event_types => %L,'
                   ' categories => %L, resource_ids => %L, user_types => %L, ip_addresses => %L,'
                   ' since => %L, until => %L, text_query => %L, statuses => %L, tenants => %L,'
                   ' after_event_id => %L, max_rows => %L)) TO %L WITH (FORMAT csv, HEADER)',
                   usernames, event_types, categories, resource_ids, user_types, ip_addresses,
                   since, until, text_query, statuses, tenants, after_event_id, max_rows, path);
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END
$$;
COMMENT ON FUNCTION @extschema@.export_csv(text, text[], text[], text[], text[], text[], cidr[],
    timestamptz, timestamptz, text, text[], text[], bigint, integer) IS
    'COPY audit_log.export(filters) as CSV with a header to a server file; needs pg_write_server_files; returns the rows written.';

REVOKE ALL ON FUNCTION @extschema@.export(text[], text[], text[], text[], text[], cidr[], timestamptz,
    timestamptz, text, text[], text[], bigint, integer) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.export_csv(text, text[], text[], text[], text[], text[], cidr[],
    timestamptz, timestamptz, text, text[], text[], bigint, integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION @extschema@.export(text[], text[], text[], text[], text[], cidr[], timestamptz,
    timestamptz, text, text[], text[], bigint, integer) TO audit_log_reader, audit_log_admin;
GRANT EXECUTE ON FUNCTION @extschema@.export_csv(text, text[], text[], text[], text[], text[], cidr[],
    timestamptz, timestamptz, text, text[], text[], bigint, integer) TO audit_log_reader, audit_log_admin;
