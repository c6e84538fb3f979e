-- Utility capture: schema changes recorded as ddl.<command>.
\i test/include/setup.sql
\i test/include/wait_for.sql
SELECT coalesce(max(event_id), 0) AS start FROM audit_log.events \gset
CREATE SCHEMA ud;
CREATE TABLE ud.items (id int PRIMARY KEY, label text);
CREATE INDEX items_label_idx ON ud.items (label);
ALTER TABLE ud.items ADD COLUMN price numeric;
CREATE VIEW ud.cheap AS SELECT * FROM ud.items WHERE price < 10;
CREATE SEQUENCE ud.seq;
ALTER SEQUENCE ud.seq RESTART 5;
CREATE FUNCTION ud.twice(int) RETURNS int LANGUAGE sql AS 'SELECT 2 * $1';
ALTER FUNCTION ud.twice(int) STABLE;
CREATE TYPE ud.mood AS ENUM ('ok', 'bad');
CREATE MATERIALIZED VIEW ud.mv AS SELECT 1 AS x;
CREATE TABLE ud.copy AS SELECT * FROM ud.items;
ALTER TABLE ud.copy RENAME TO copy2;
COMMENT ON TABLE ud.items IS 'Items';
CREATE TRIGGER items_noop BEFORE INSERT ON ud.items FOR EACH ROW EXECUTE FUNCTION suppress_redundant_updates_trigger();
-- nested in DO and EXECUTE
DO $$ BEGIN CREATE TABLE ud.from_do (x int); EXECUTE 'DROP TABLE ud.from_do'; END $$;
-- a failing DDL: failure with the error
CREATE TABLE ud.items (id int);
-- a failing statement longer than a queue slot: kept, shortened
SELECT format('CREATE FUNCTION ud.twice(int) RETURNS int LANGUAGE sql AS %L',
              'SELECT 1 /* ' || repeat('x', 6000) || ' */') AS long_ddl \gset
:long_ddl;
DROP VIEW ud.cheap;
DROP TABLE ud.copy2, ud.items CASCADE;
SELECT pg_temp.wait_for('ddl.create_table', :start, 3) AS all_there,
       pg_temp.wait_for('ddl.create_function', :start, 2) AS long_one;
SELECT status, left(statement, 40) AS statement_start, length(statement) BETWEEN 3000 AND 4096 AS shortened,
       details->>'error' AS error
  FROM audit_log.events WHERE event_id > :start AND event_type = 'ddl.create_function' AND status = 'failure';
SELECT event_type, status, object_type, object_name, command, details
  FROM audit_log.events
 WHERE event_id > :start AND category = 'ddl'
 ORDER BY status DESC, event_id;
-- nothing is recorded twice: with the preload the event triggers step aside
SELECT event_type, object_name, status, count(*) FROM audit_log.events
 WHERE event_id > :start AND category = 'ddl'
 GROUP BY 1, 2, 3 HAVING count(*) > 1 ORDER BY 1, 2, 3;
-- temporary objects and the extension's own work are not schema changes of the user
SELECT count(*) AS internal_ddl FROM audit_log.events
 WHERE event_id > :start AND object_name LIKE 'audit_log.%' AND category = 'ddl';
DROP SCHEMA ud CASCADE;
