-- Utility capture: grants, revokes, default privileges; a denied GRANT.
\i test/include/setup.sql
\i test/include/wait_for.sql
SELECT coalesce(max(event_id), 0) AS start FROM audit_log.events \gset
CREATE ROLE ug_reader;
CREATE ROLE ug_owner;
CREATE ROLE ug_nobody;
CREATE SCHEMA ug;
CREATE TABLE ug.accounts (id int PRIMARY KEY, name text);
CREATE FUNCTION ug.f(int) RETURNS int LANGUAGE sql AS 'SELECT $1';
ALTER TABLE ug.accounts OWNER TO ug_owner;
SET search_path = ug, public;
GRANT SELECT, INSERT ON accounts TO ug_reader WITH GRANT OPTION;
GRANT SELECT (name) ON ug.accounts TO PUBLIC;
REVOKE INSERT ON accounts FROM ug_reader CASCADE;
GRANT USAGE ON SCHEMA ug TO ug_reader;
GRANT EXECUTE ON FUNCTION ug.f(int) TO ug_reader;
GRANT ALL ON ALL TABLES IN SCHEMA ug TO ug_owner;
REVOKE ALL ON FUNCTION ug.f(int) FROM PUBLIC;
ALTER DEFAULT PRIVILEGES IN SCHEMA ug GRANT SELECT ON TABLES TO ug_reader;
ALTER DEFAULT PRIVILEGES FOR ROLE ug_owner REVOKE EXECUTE ON FUNCTIONS FROM PUBLIC;
RESET search_path;
-- inside a function, through EXECUTE
CREATE FUNCTION pg_temp.grant_it() RETURNS void LANGUAGE plpgsql
AS $$ BEGIN EXECUTE 'GRANT UPDATE ON ug.accounts TO ug_reader'; END $$;
SELECT pg_temp.grant_it();
-- denied: an unprivileged role grants on a table it does not own
GRANT USAGE ON SCHEMA ug TO ug_nobody;
SET ROLE ug_nobody;
GRANT SELECT ON ug.accounts TO ug_nobody;
GRANT SELECT ON ug.accounts TO ug_nobody;
RESET ROLE;
SELECT pg_temp.wait_for('privilege.granted', :start, 9) AS all_there;
SELECT event_type, status, effective_role, object_type, object_name, command, details
  FROM audit_log.events
 WHERE event_id > :start AND category = 'privilege'
 ORDER BY status DESC, event_id;
-- the statement is kept as written
SELECT statement FROM audit_log.events
 WHERE event_id > :start AND category = 'privilege' AND status = 'failure';
-- A failure caught inside a statement does not hide that statement's own
-- failure: a function that CREATE TABLE AS runs catches a denied GRANT,
-- then fails (division by zero): both are recorded.  When the handler does
-- not catch it, the GRANT's error fails the CREATE TABLE AS too: recorded
-- once, by the GRANT.  A last denied statement marks the end of the queue.
SELECT coalesce(max(event_id), 0) AS nested_start FROM audit_log.events \gset
CREATE FUNCTION ug.caught() RETURNS int LANGUAGE plpgsql AS $$
BEGIN
    BEGIN
        EXECUTE 'GRANT SELECT ON ug.accounts TO ug_nobody';
    EXCEPTION WHEN insufficient_privilege THEN NULL;
    END;
    RETURN 1 / 0;
END $$;
CREATE FUNCTION ug.not_caught() RETURNS int LANGUAGE plpgsql AS $$
BEGIN
    BEGIN
        EXECUTE 'GRANT SELECT ON ug.accounts TO ug_nobody';
    EXCEPTION WHEN division_by_zero THEN NULL;
    END;
    RETURN 1;
END $$;
GRANT USAGE, CREATE ON SCHEMA ug TO ug_nobody;
SET ROLE ug_nobody;
\set SHOW_CONTEXT never
CREATE TABLE ug.nested1 AS SELECT ug.caught();
CREATE TABLE ug.nested2 AS SELECT ug.not_caught();
CREATE TABLE pg_catalog.ug_marker (x int);
\set SHOW_CONTEXT errors
RESET ROLE;
SELECT pg_temp.wait_for('ddl.create_table', :nested_start, 1) AS marker_there;
SELECT event_type, status, object_name, details->>'error' AS error
  FROM audit_log.events
 WHERE event_id > :nested_start AND event_type IN ('privilege.granted', 'ddl.create_table_as', 'ddl.create_table')
 ORDER BY event_id;
-- CREATE SCHEMA's elements run as subcommands: each is recorded with its
-- own command, named in the new schema; the GRANTs among them too, those
-- on the database and on parameters cluster-wide as any such GRANT.  A
-- failing CREATE SCHEMA fails them all.
SELECT coalesce(max(event_id), 0) AS schema_start FROM audit_log.events \gset
CREATE SCHEMA ug_s1 CREATE TABLE t1 (a int) CREATE VIEW v1 AS SELECT a FROM t1
  CREATE INDEX ON t1 (a) CREATE SEQUENCE sq
  CREATE TRIGGER t1_noop BEFORE UPDATE ON t1 FOR EACH ROW EXECUTE FUNCTION suppress_redundant_updates_trigger()
  GRANT ALL ON TABLE ug.accounts TO ug_nobody GRANT SELECT ON t1, v1 TO ug_reader;
CREATE SCHEMA ug_s2 GRANT SET ON PARAMETER work_mem TO ug_nobody
  GRANT CONNECT, TEMP ON DATABASE contrib_regression TO ug_nobody
  GRANT ALL ON ALL TABLES IN SCHEMA ug TO ug_nobody;
CREATE SCHEMA AUTHORIZATION ug_owner CREATE TABLE t2 (b int) GRANT SELECT ON t2 TO ug_reader;
CREATE SCHEMA ug_s2 GRANT SELECT ON ug.accounts TO ug_nobody;
SELECT pg_temp.wait_for('ddl.create_schema', :schema_start, 4) AS all_there;
SELECT event_type, status, object_type, object_name, command,
       details - 'sqlstate' AS details
  FROM audit_log.events
 WHERE event_id > :schema_start AND category IN ('ddl', 'privilege', 'config')
 ORDER BY status DESC, event_id;
REVOKE SET ON PARAMETER work_mem FROM ug_nobody;
REVOKE CONNECT, TEMP ON DATABASE contrib_regression FROM ug_nobody;
DROP SCHEMA ug_s1, ug_s2, ug_owner CASCADE;
DROP SCHEMA ug CASCADE;
ALTER DEFAULT PRIVILEGES FOR ROLE ug_owner GRANT EXECUTE ON FUNCTIONS TO PUBLIC;
DROP ROLE ug_reader, ug_owner, ug_nobody;
