/*
 * audit_log install script, part 00: roles, the events table, the event
 * type catalogue, internal functions.  The install script
 * audit_log--1.1.sql is the files of src/sql concatenated in name order.
 */
\echo Use "CREATE EXTENSION audit_log CASCADE" to load this file. \quit

-- The script's own statements (DO blocks, views) run under search_path =
-- pg_catalog, pg_temp: while it runs, PostgreSQL puts on the path the schema
-- of pgcrypto (public, by CASCADE), where a role may have planted a
-- function or operator that an unqualified call would pick over
-- pg_catalog's.  Everything of the extension is named with its schema.
SELECT pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', true);

-- Objects made ready beforehand by a role that is not a superuser are not
-- trusted: the owner of a schema named audit_log could drop the trail with
-- it, and a role that administers one of the extension's roles (16 and
-- later give it to the CREATEROLE role that created it) could grant it to
-- itself.  Roles are cluster-wide: a second database's CREATE EXTENSION
-- reuses them, and they pass this check.
DO $trust$
DECLARE
    who text;
BEGIN
    SELECT r.rolname INTO who
      FROM pg_catalog.pg_namespace n JOIN pg_catalog.pg_roles r ON r.oid = n.nspowner
     WHERE n.nspname = '@extschema@' AND NOT r.rolsuper;
    IF who IS NOT NULL THEN
        RAISE EXCEPTION 'schema "@extschema@" is owned by "%", a role that is not a superuser', who
            USING ERRCODE = 'insufficient_privilege',
                  DETAIL = 'The owner of the schema could drop the audit trail with it.',
                  HINT = 'Drop the schema, or make a superuser its owner, then create the extension.';
    END IF;
    -- The extension makes its roles NOLOGIN: one made beforehand that may
    -- log in (15 lets any CREATEROLE role make it so) has a password its
    -- maker may know, and every right of the extension's role.
    SELECT g.rolname INTO who
      FROM pg_catalog.pg_authid g
     WHERE g.rolname IN ('audit_log_reader', 'audit_log_admin', 'audit_log_writer')
       AND (g.rolcanlogin OR g.rolpassword IS NOT NULL)
     ORDER BY 1 LIMIT 1;
    IF who IS NOT NULL THEN
        RAISE EXCEPTION 'role "%" of the extension can log in or has a password', who
            USING ERRCODE = 'insufficient_privilege',
                  DETAIL = 'The extension makes its roles NOLOGIN; whoever made this one may log in as it.',
                  HINT = pg_catalog.format('Run ALTER ROLE %I NOLOGIN PASSWORD NULL, or drop the role, then create the extension.', who);
    END IF;
    SELECT m.rolname || ' administers ' || g.rolname INTO who
      FROM pg_catalog.pg_auth_members a
      JOIN pg_catalog.pg_roles g ON g.oid = a.roleid
      JOIN pg_catalog.pg_roles m ON m.oid = a.member
     WHERE g.rolname IN ('audit_log_reader', 'audit_log_admin', 'audit_log_writer')
       AND a.admin_option AND NOT m.rolsuper
     ORDER BY 1 LIMIT 1;
    IF who IS NOT NULL THEN
        RAISE EXCEPTION 'a role of the extension is administered by a role that is not a superuser: %', who
            USING ERRCODE = 'insufficient_privilege',
                  DETAIL = 'Such a role can grant itself the rights of the audit_log roles.',
                  HINT = 'Revoke the ADMIN OPTION, or drop the role made beforehand, then create the extension.';
    END IF;
    -- A membership granted by a role that is not a superuser (15 lets any
    -- CREATEROLE role grant itself a role it made): its member would hold
    -- the extension's rights from the start.
    SELECT m.rolname || ' is a member of ' || g.rolname || ' by the grant of '
           || coalesce(gr.rolname, 'a dropped role') INTO who
      FROM pg_catalog.pg_auth_members a
      JOIN pg_catalog.pg_roles g ON g.oid = a.roleid
      JOIN pg_catalog.pg_roles m ON m.oid = a.member
      LEFT JOIN pg_catalog.pg_roles gr ON gr.oid = a.grantor
     WHERE g.rolname IN ('audit_log_reader', 'audit_log_admin', 'audit_log_writer')
       AND NOT coalesce(gr.rolsuper, false)
     ORDER BY 1 LIMIT 1;
    IF who IS NOT NULL THEN
        RAISE EXCEPTION 'a role of the extension was granted by a role that is not a superuser: %', who
            USING ERRCODE = 'insufficient_privilege',
                  DETAIL = 'Such a grant gives the rights of the audit_log roles to whoever made it.',
                  HINT = 'Revoke the membership, or drop the role made beforehand, then create the extension.';
    END IF;
END
$trust$;

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
    backend_pid      integer,
    source           text
) PARTITION BY RANGE (occurred_at);

CREATE INDEX events_event_id_idx ON @extschema@.events (event_id);

-- (source, event_id) is the key of a central store (see part 80_sources).
-- A unique index of a partitioned table must hold the partition keys
-- (occurred_at, and category one level down); a source's event has one
-- occurred_at and one category, so a second copy of it collides here.
-- Partial: local events (source NULL) cost the writer nothing more.
CREATE UNIQUE INDEX events_source_event_id_key ON @extschema@.events
    (source, event_id, occurred_at, category) WHERE source IS NOT NULL;

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
 * _replica_guard(): the trigger, ENABLE ALWAYS on every audit table, that
 * refuses in a subscription's workers every write but the inserts of events
 * and seal records (C, src/sources.c: a source's subscription writes as a
 * superuser, past the tamper guard).  _replica_fence(rel, rows) puts it on a
 * table: for TRUNCATE always; with rows (a table that is no partition of the
 * events), for the row writes a subscription never makes there (events and
 * seal: UPDATE and DELETE; the others: INSERT too).  The partitions of the
 * events inherit that row trigger; part 80 fences every table the install
 * made, _lock_down() every partition made later (built detached).
 */
CREATE FUNCTION @extschema@._replica_guard() RETURNS trigger
AS 'MODULE_PATHNAME', 'audit_replica_guard'
LANGUAGE C;
CREATE FUNCTION @extschema@._replica_fence(rel regclass, rows boolean) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_trigger t
                    WHERE t.tgrelid = rel AND t.tgname = 'audit_log_replica_truncate') THEN
        EXECUTE pg_catalog.format('CREATE TRIGGER audit_log_replica_truncate BEFORE TRUNCATE ON %s'
                                  ' FOR EACH STATEMENT EXECUTE FUNCTION %I._replica_guard()', rel, '@extschema@');
        EXECUTE pg_catalog.format('ALTER TABLE %s ENABLE ALWAYS TRIGGER audit_log_replica_truncate', rel);
    END IF;
    IF rows AND NOT EXISTS (SELECT FROM pg_catalog.pg_trigger t
                                 WHERE t.tgrelid = rel AND t.tgname = 'audit_log_replica_write') THEN
        EXECUTE pg_catalog.format('CREATE TRIGGER audit_log_replica_write BEFORE %s ON %s'
                                  ' FOR EACH ROW EXECUTE FUNCTION %I._replica_guard()',
            CASE WHEN rel::text IN ('@extschema@.events', '@extschema@.seal')
                 THEN 'UPDATE OR DELETE' ELSE 'INSERT OR UPDATE OR DELETE' END,
            rel, '@extschema@');
        EXECUTE pg_catalog.format('ALTER TABLE %s ENABLE ALWAYS TRIGGER audit_log_replica_write', rel);
    END IF;
END
$$;
REVOKE ALL ON FUNCTION @extschema@._replica_guard(), @extschema@._replica_fence(regclass, boolean) FROM PUBLIC;

/*
 * _partition_name(day): the name of a day's partition, events_pYYYYMMDD.
 */
CREATE FUNCTION @extschema@._partition_name(day date) RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$ SELECT 'events_p' || pg_catalog.to_char(day, 'YYYYMMDD') $$;

-- The daily partitions themselves (a level per retention policy below
-- each day) are created by _create_partition() in part 30_partitions, once
-- the policies exist.
REVOKE ALL ON FUNCTION @extschema@._partition_name(date) FROM PUBLIC;

/*
 * _categories(): the event categories of DESIGN.md, sorted.
 * _is_event_code(code): is code a lowercase dotted identifier such as
 * "user.role_added" (any length)?  _category_of(code): the category log()
 * gives an application code (its prefix when that names a category, else
 * app).  All three are the C side's own (context.c), so that SQL and C
 * never disagree; see doc/internals.md.
 */
CREATE FUNCTION @extschema@._categories() RETURNS text[]
AS 'MODULE_PATHNAME', 'audit_categories_sql'
LANGUAGE C IMMUTABLE PARALLEL SAFE;
CREATE FUNCTION @extschema@._is_event_code(code text) RETURNS boolean
AS 'MODULE_PATHNAME', 'audit_is_event_code_sql'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
REVOKE ALL ON FUNCTION @extschema@._categories(), @extschema@._is_event_code(text) FROM PUBLIC;
CREATE FUNCTION @extschema@._category_of(code text) RETURNS text
AS 'MODULE_PATHNAME', 'audit_category_of_sql'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
REVOKE ALL ON FUNCTION @extschema@._category_of(text) FROM PUBLIC;

-- The event type catalogue.  builtin codes are recorded by the extension
-- itself and cannot be forged through audit_log.log().
CREATE TABLE @extschema@.event_type_catalog (
    event_type  text PRIMARY KEY
                CHECK (@extschema@._is_event_code(event_type)),
    category    text NOT NULL
                CHECK (category = ANY (@extschema@._categories())),
    description text NOT NULL,
    builtin     boolean NOT NULL DEFAULT false
);
COMMENT ON TABLE @extschema@.event_type_catalog IS
    'Every event code with its category and description; read it through the event_types view.';
REVOKE ALL ON TABLE @extschema@.event_type_catalog FROM PUBLIC;
SELECT pg_catalog.pg_extension_config_dump('@extschema@.event_type_catalog', 'WHERE NOT builtin');

/*
 * _is_reserved_code(code): may only the extension record events with this
 * code?  The rule is the C side's (context.c: a built-in code, or any code of
 * the audit category); log(), enable() and ingest() all apply it.
 */
CREATE FUNCTION @extschema@._code_reserved(code text, builtin boolean) RETURNS boolean
AS 'MODULE_PATHNAME', 'audit_code_reserved_sql'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION @extschema@._is_reserved_code(code text) RETURNS boolean
LANGUAGE sql STABLE STRICT
AS $$
SELECT @extschema@._code_reserved(code,
           coalesce((SELECT c.builtin FROM @extschema@.event_type_catalog c
                      WHERE c.event_type = code), false))
$$;
REVOKE ALL ON FUNCTION @extschema@._code_reserved(text, boolean),
    @extschema@._is_reserved_code(text) FROM PUBLIC;

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
    ('auth.session_authorization_set', 'auth', 'Session user changed with SET or RESET SESSION AUTHORIZATION', true),
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
 * The extension's own functions that change audit objects and triggers
 * carry SET audit_log.internal = on: their DDL is not captured as a user's
 * and the guards of the audit tables let it through, for the duration of
 * the call only (PostgreSQL restores the setting on return and on error).
 *
 * _load(): loads the library, so that its settings are defined in a
 * session without the preload; returns true.
 */
CREATE FUNCTION @extschema@._load() RETURNS boolean
AS 'MODULE_PATHNAME', 'audit_load'
LANGUAGE C STRICT VOLATILE;
REVOKE ALL ON FUNCTION @extschema@._load() FROM PUBLIC;
