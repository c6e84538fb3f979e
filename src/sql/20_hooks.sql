/*
 * audit_log install script, part 20: capture of privileged changes.
 * With the preload the ProcessUtility hook (capture_utility.c) records
 * roles, grants, configuration, databases, extensions and DDL; without it
 * the event triggers below record DDL and GRANT/REVOKE (they return at
 * once when the hook is active, so nothing is recorded twice).
 */

/*
 * _redact(statement): the statement with its string literals replaced
 * when it may hold a password (redact.c).  Used by the capture; granted
 * to nobody.
 */
CREATE FUNCTION @extschema@._redact(statement text) RETURNS text
AS 'MODULE_PATHNAME', 'audit_redact'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
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
    'CREATE TRANSFORM', 'DROP TRANSFORM', 'ALTER CONVERSION', 'ALTER LANGUAGE',
    'CREATE OPERATOR CLASS', 'ALTER OPERATOR CLASS', 'DROP OPERATOR CLASS',
    'CREATE OPERATOR FAMILY', 'ALTER OPERATOR FAMILY', 'DROP OPERATOR FAMILY',
    'ALTER TEXT SEARCH CONFIGURATION', 'CREATE TEXT SEARCH DICTIONARY',
    'ALTER TEXT SEARCH DICTIONARY', 'DROP TEXT SEARCH DICTIONARY', 'CREATE TEXT SEARCH PARSER',
    'ALTER TEXT SEARCH PARSER', 'DROP TEXT SEARCH PARSER', 'CREATE TEXT SEARCH TEMPLATE',
    'ALTER TEXT SEARCH TEMPLATE', 'DROP TEXT SEARCH TEMPLATE', 'CLUSTER'
]) AS c
ON CONFLICT DO NOTHING;
