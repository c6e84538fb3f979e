-- lastval() and currval() stay the application's, whatever audit_log
-- writes in its session: captured DML, DDL, log().  (PHP's
-- PDO::lastInsertId() is SELECT lastval(): it used to return an audit
-- event id, or fail with "permission denied for sequence
-- events_event_id_seq" for a role that may not read the audit sequence.)
SET timezone = 'UTC';
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS audit_log CASCADE;
CREATE EXTENSION audit_log CASCADE;
RESET client_min_messages;
CREATE TABLE lv_orders (id serial PRIMARY KEY, item text);
SELECT audit_log.enable('lv_orders', 'data');
CREATE ROLE lv_app;
GRANT INSERT, SELECT ON lv_orders TO lv_app;
GRANT USAGE ON SEQUENCE lv_orders_id_seq TO lv_app;

-- A fresh session has no lastval, even after audit_log wrote events in it.
\c
CREATE TABLE lv_other (x int);
SELECT audit_log.log('app.lastval_test') > 0 AS logged;
\set VERBOSITY sqlstate
SELECT lastval();
SELECT currval('audit_log.events_event_id_seq');
\set VERBOSITY default

-- An audited INSERT: lastval() is the row's id.
INSERT INTO lv_orders (item) VALUES ('a');
SELECT lastval(), currval('lv_orders_id_seq');
-- DDL and log() after it change nothing.
CREATE TABLE lv_more (x int);
SELECT audit_log.log('app.lastval_test') > 0 AS logged;
SELECT lastval();
-- A role that may not read the audit sequence gets its own value, no error.
SET ROLE lv_app;
INSERT INTO lv_orders (item) VALUES ('b'), ('c');
SELECT lastval();
RESET ROLE;
-- The events got their ids, one each, in order.
SELECT event_type, object_name, resource_id,
       event_id > lag(event_id) OVER (ORDER BY event_id) AS increasing
  FROM audit_log.events
 WHERE event_type IN ('data.insert', 'ddl.create_table', 'app.lastval_test')
 ORDER BY event_id;
SELECT count(*) = count(DISTINCT event_id) AS unique_ids FROM audit_log.events;

DROP TABLE lv_orders, lv_other, lv_more;
DROP ROLE lv_app;
