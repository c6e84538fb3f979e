-- Evasion and tamper attempts.
\i test/include/setup.sql
\i test/include/wait_for.sql
SELECT coalesce(max(event_id), 0) AS start FROM audit_log.events \gset
CREATE TABLE ue_t (id int PRIMARY KEY);
SELECT audit_log.enable('ue_t');
ALTER TABLE ue_t DISABLE TRIGGER audit_log_insert;
ALTER TABLE ue_t ENABLE ALWAYS TRIGGER audit_log_insert;
ALTER TABLE ue_t ENABLE REPLICA TRIGGER audit_log_update;
ALTER TABLE ue_t DISABLE TRIGGER ALL;
ALTER TABLE ue_t ENABLE ALWAYS TRIGGER audit_log_insert, ENABLE ALWAYS TRIGGER audit_log_update,
    ENABLE ALWAYS TRIGGER audit_log_delete, ENABLE ALWAYS TRIGGER audit_log_truncate;
DROP TRIGGER audit_log_delete ON ue_t;
-- the table owner replaces a capture trigger with a function of its own
CREATE FUNCTION pg_temp.ue_nop() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN RETURN NULL; END$$;
CREATE OR REPLACE TRIGGER audit_log_update AFTER UPDATE ON ue_t
    FOR EACH STATEMENT EXECUTE FUNCTION pg_temp.ue_nop();
-- a rolled back disable is no event
BEGIN;
ALTER TABLE ue_t DISABLE TRIGGER audit_log_update;
ROLLBACK;
SET session_replication_role = replica;
SET session_replication_role = origin;
SET LOCAL session_replication_role = replica;
-- tamper attempts: each fails and is recorded as a failure
INSERT INTO audit_log.events (event_id, occurred_at, category, event_type, status)
    VALUES (-1, now(), 'app', 'app.forged', 'success');
UPDATE audit_log.events SET actor = 'nobody' WHERE event_id > :start;
DELETE FROM audit_log.events WHERE event_id > :start;
TRUNCATE audit_log.events;
TRUNCATE audit_log.events_default;
ALTER TABLE audit_log.events ADD COLUMN x int;
ALTER TABLE audit_log.events_default RENAME TO hidden;
CREATE TRIGGER t BEFORE INSERT ON audit_log.events FOR EACH ROW EXECUTE FUNCTION suppress_redundant_updates_trigger();
DROP TABLE audit_log.events_default;
GRANT INSERT ON audit_log.events TO PUBLIC;
CREATE TABLE public.ue_part PARTITION OF audit_log.events FOR VALUES FROM ('2000-01-01') TO ('2000-01-02');
-- also from an unprivileged role
CREATE ROLE ue_nobody;
GRANT USAGE ON SCHEMA audit_log TO ue_nobody;
SET ROLE ue_nobody;
DELETE FROM audit_log.events;
RESET ROLE;
REVOKE USAGE ON SCHEMA audit_log FROM ue_nobody;
DROP ROLE ue_nobody;
SELECT pg_temp.wait_for('audit.tamper_attempt', :start, 12) AS all_there;
SELECT event_type, status, effective_role, object_name, command, details
  FROM audit_log.events
 WHERE event_id > :start AND category = 'audit' AND event_type <> 'audit.enabled'
 ORDER BY status DESC, event_id;
-- nothing was changed
SELECT count(*) AS forged FROM audit_log.events WHERE event_type = 'app.forged';
SELECT tgname, tgenabled FROM pg_trigger WHERE tgrelid = 'ue_t'::regclass ORDER BY 1;
DROP TABLE ue_t;
-- Grants on every table of the audit schema, now or to come, that would
-- write to the events: refused and recorded; SELECT passes.
SELECT coalesce(max(event_id), 0) AS schema_start FROM audit_log.events \gset
CREATE ROLE ue_own;
GRANT INSERT, UPDATE, DELETE, TRUNCATE, TRIGGER ON ALL TABLES IN SCHEMA audit_log TO ue_own;
GRANT ALL ON ALL TABLES IN SCHEMA public, audit_log TO ue_own;
ALTER DEFAULT PRIVILEGES IN SCHEMA audit_log GRANT INSERT ON TABLES TO ue_own;
ALTER DEFAULT PRIVILEGES FOR ROLE CURRENT_USER IN SCHEMA public, audit_log GRANT ALL ON TABLES TO ue_own;
GRANT SELECT ON ALL TABLES IN SCHEMA audit_log TO ue_own;
ALTER DEFAULT PRIVILEGES IN SCHEMA audit_log GRANT SELECT ON TABLES TO ue_own;
SELECT has_table_privilege('ue_own', 'audit_log.events', 'INSERT') AS can_insert,
       has_table_privilege('ue_own', 'audit_log.events', 'TRIGGER') AS can_trigger,
       has_table_privilege('ue_own', 'audit_log.events', 'SELECT') AS can_select;
SELECT defaclobjtype, defaclacl::text LIKE '%ue_own=r/%' AS select_only
  FROM pg_default_acl WHERE defaclnamespace = 'audit_log'::regnamespace ORDER BY 1;
SELECT pg_temp.wait_for('audit.tamper_attempt', :schema_start, 4) AS all_there;
SELECT event_type, status, object_type, object_name, command, details
  FROM audit_log.events
 WHERE event_id > :schema_start AND event_type = 'audit.tamper_attempt' ORDER BY event_id;
-- The sequence of the event ids: ALTER SEQUENCE ... RESTART (a superuser's),
-- or UPDATE granted for setval(), would hand the same ids out again.
SELECT coalesce(max(event_id), 0) AS seq_start FROM audit_log.events \gset
SELECT last_value AS seq_before FROM audit_log.events_event_id_seq \gset
ALTER SEQUENCE audit_log.events_event_id_seq RESTART WITH 1;
ALTER SEQUENCE audit_log.events_event_id_seq RENAME TO ids;
GRANT UPDATE ON SEQUENCE audit_log.events_event_id_seq TO ue_own;
GRANT USAGE ON ALL SEQUENCES IN SCHEMA audit_log TO ue_own;
ALTER DEFAULT PRIVILEGES IN SCHEMA audit_log GRANT UPDATE ON SEQUENCES TO ue_own;
SELECT has_sequence_privilege('ue_own', 'audit_log.events_event_id_seq', 'UPDATE') AS can_setval,
       (SELECT last_value FROM audit_log.events_event_id_seq) >= :seq_before AS ids_not_restarted;
SELECT pg_temp.wait_for('audit.tamper_attempt', :seq_start, 5) AS all_there;
SELECT event_type, status, object_type, object_name, command, details->>'attempt' AS attempt
  FROM audit_log.events
 WHERE event_id > :seq_start AND event_type = 'audit.tamper_attempt' ORDER BY event_id;
ALTER DEFAULT PRIVILEGES IN SCHEMA audit_log REVOKE SELECT ON TABLES FROM ue_own;
REVOKE SELECT ON ALL TABLES IN SCHEMA audit_log FROM ue_own;
DROP ROLE ue_own;
