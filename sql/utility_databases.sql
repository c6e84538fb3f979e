-- Utility capture: databases and extensions; cluster-wide events from another database.
\i test/include/setup.sql
\i test/include/wait_for.sql
SELECT coalesce(max(event_id), 0) AS start FROM audit_log.events \gset
SELECT current_database() AS regdb \gset
CREATE DATABASE ud_other;
CREATE EXTENSION cube;
ALTER EXTENSION cube UPDATE;
CREATE FUNCTION ud_f(cube) RETURNS int LANGUAGE sql AS 'SELECT 1';
ALTER EXTENSION cube ADD FUNCTION ud_f(cube);
ALTER EXTENSION cube DROP FUNCTION ud_f(cube);
DROP FUNCTION ud_f(cube);
DROP EXTENSION cube;
DROP EXTENSION no_such_extension;
-- role changes made in another database (without the extension) reach this one
\c ud_other
CREATE ROLE ud_elsewhere;
ALTER ROLE ud_elsewhere PASSWORD 'ElsewhereSecret1';
BEGIN;
CREATE ROLE ud_never;
ROLLBACK;
CREATE TABLE ud_local (id int);
\c :regdb
SET timezone = 'UTC';
\i test/include/wait_for.sql
SELECT pg_temp.wait_for('role.created', :start, 2) AS roles_arrived;
DROP DATABASE ud_other;
DROP DATABASE IF EXISTS ud_other;
DROP ROLE ud_elsewhere;
SELECT pg_temp.wait_for('extension.dropped', :start, 2) AS all_there;
SELECT category, event_type, status, database = :'regdb' AS here, object_type, object_name, command, details, statement
  FROM audit_log.events
 WHERE event_id > :start AND category IN ('ddl', 'role') AND event_type NOT LIKE 'ddl.%'
 ORDER BY status DESC, event_id;
-- DDL of the other database stays there (it has no audit_log)
SELECT count(*) AS other_db_ddl FROM audit_log.events
 WHERE event_id > :start AND database = 'ud_other' AND category = 'ddl' AND event_type LIKE 'ddl.%';
