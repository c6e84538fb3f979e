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
-- Every schema change has its code in audit_log.event_types, so event_log
-- describes it (operator classes and families, the text search objects
-- and CLUSTER had none).
CREATE TABLE ud.clustered (id int PRIMARY KEY);
SELECT coalesce(max(event_id), 0) AS catalogue_start FROM audit_log.events \gset
CREATE OPERATOR FAMILY ud.opf USING btree;
ALTER OPERATOR FAMILY ud.opf USING btree RENAME TO opf2;
DROP OPERATOR FAMILY ud.opf2 USING btree;
CREATE OPERATOR CLASS ud.opc FOR TYPE int4 USING hash AS OPERATOR 1 =, FUNCTION 1 hashint4(int4);
ALTER OPERATOR CLASS ud.opc USING hash RENAME TO opc2;
DROP OPERATOR CLASS ud.opc2 USING hash;
DROP OPERATOR FAMILY ud.opc USING hash;
CREATE TEXT SEARCH DICTIONARY ud.dict (TEMPLATE = simple);
ALTER TEXT SEARCH DICTIONARY ud.dict (STOPWORDS = english);
DROP TEXT SEARCH DICTIONARY ud.dict;
CREATE TEXT SEARCH CONFIGURATION ud.cfg (COPY = simple);
ALTER TEXT SEARCH CONFIGURATION ud.cfg RENAME TO cfg2;
DROP TEXT SEARCH CONFIGURATION ud.cfg2;
CREATE TEXT SEARCH TEMPLATE ud.tmpl (LEXIZE = dsimple_lexize);
ALTER TEXT SEARCH TEMPLATE ud.tmpl RENAME TO tmpl2;
DROP TEXT SEARCH TEMPLATE ud.tmpl2;
CREATE TEXT SEARCH PARSER ud.prs (START = prsd_start, GETTOKEN = prsd_nexttoken, END = prsd_end,
                                  LEXTYPES = prsd_lextype);
ALTER TEXT SEARCH PARSER ud.prs RENAME TO prs2;
DROP TEXT SEARCH PARSER ud.prs2;
CLUSTER ud.clustered USING clustered_pkey;
SELECT event_type, count(*) AS events, bool_and(description IS NOT NULL) AS described
  FROM audit_log.event_log WHERE event_id > :catalogue_start GROUP BY event_type ORDER BY event_type;
SELECT DISTINCT event_type AS undescribed FROM audit_log.event_log
 WHERE event_id > :start AND description IS NULL ORDER BY 1;
-- nothing is recorded twice: with the preload the event triggers step aside
SELECT event_type, object_name, status, count(*) FROM audit_log.events
 WHERE event_id > :start AND category = 'ddl'
 GROUP BY 1, 2, 3 HAVING count(*) > 1 ORDER BY 1, 2, 3;
-- temporary objects and the extension's own work are not schema changes of the user
SELECT count(*) AS internal_ddl FROM audit_log.events
 WHERE event_id > :start AND object_name LIKE 'audit_log.%' AND category = 'ddl';
-- Names and owners: ALTER TABLE ... OWNER TO and REASSIGN OWNED name the
-- new owner, REASSIGN/DROP OWNED their roles, a renamed schema its old
-- name; ALTER SUBSCRIPTION and SECURITY LABEL (both failing here: no such
-- subscription, no label provider) their object.
CREATE ROLE ud_heir;
CREATE ROLE ud_gone;
SELECT coalesce(max(event_id), 0) AS names_start FROM audit_log.events \gset
CREATE TABLE ud.owned (id int);
ALTER TABLE ud.owned OWNER TO ud_gone;
REASSIGN OWNED BY ud_gone TO ud_heir;
DROP OWNED BY ud_heir CASCADE;
CREATE SCHEMA ud_named;
ALTER SCHEMA ud_named RENAME TO ud_renamed;
DROP SCHEMA ud_renamed;
ALTER SUBSCRIPTION ud_nosuch DISABLE;
SECURITY LABEL ON ROLE ud_gone IS 'secret';
SELECT pg_temp.wait_for('ddl.security_label', :names_start, 1) AS all_there;
SELECT event_type, status, object_type, object_name, command, details - 'sqlstate' AS details
  FROM audit_log.events
 WHERE event_id > :names_start AND category = 'ddl'
 ORDER BY status DESC, event_id;
DROP ROLE ud_heir, ud_gone;
DROP SCHEMA ud CASCADE;
-- The attack on a queued event: claims of the application too long for a
-- queue slot (4 kB each) cannot crowd out what nobody can forge.  The
-- actor's type and user agent are cut; db_user, the object, the command
-- and the error are kept whole.
CREATE TABLE ud_crowd (id int);
SELECT coalesce(max(event_id), 0) AS crowd_start FROM audit_log.events \gset
SELECT set_config('audit_log.actor_type', repeat('y', 4100), false) IS NOT NULL AS claimed,
       set_config('audit_log.user_agent', repeat('z', 4100), false) IS NOT NULL AS claimed_too;
CREATE TABLE ud_crowd (id int);
RESET audit_log.actor_type;
RESET audit_log.user_agent;
SELECT pg_temp.wait_for('ddl.create_table', :crowd_start) AS stored;
SELECT status, db_user = current_user AS db_user_kept, effective_role = current_user AS role_kept,
       database = current_database() AS database_kept, object_name, command,
       details->>'error' AS error, length(actor_type) BETWEEN 1000 AND 2000 AS actor_type_cut,
       length(user_agent) BETWEEN 1000 AND 2000 AS user_agent_cut
  FROM audit_log.events WHERE event_id > :crowd_start AND event_type = 'ddl.create_table';
DROP TABLE ud_crowd;
