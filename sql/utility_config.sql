-- Utility capture: configuration (ALTER SYSTEM, ALTER ROLE/DATABASE SET, GRANT SET ON PARAMETER, audit_log settings).
\i test/include/setup.sql
\i test/include/wait_for.sql
SELECT coalesce(max(event_id), 0) AS start FROM audit_log.events \gset
CREATE ROLE uc_role;
ALTER ROLE uc_role SET work_mem = '8MB';
ALTER ROLE uc_role IN DATABASE contrib_regression SET statement_timeout TO 1000;
ALTER ROLE uc_role RESET work_mem;
ALTER DATABASE contrib_regression SET lock_timeout = '5s';
ALTER DATABASE contrib_regression RESET lock_timeout;
-- ALTER SYSTEM writes postgresql.auto.conf of this instance: set, then reset
ALTER SYSTEM SET log_min_duration_statement = '10s';
ALTER SYSTEM RESET log_min_duration_statement;
GRANT SET ON PARAMETER log_min_duration_statement TO uc_role;
GRANT ALTER SYSTEM ON PARAMETER log_min_duration_statement TO uc_role;
REVOKE SET, ALTER SYSTEM ON PARAMETER log_min_duration_statement FROM uc_role;
-- a failing ALTER SYSTEM (unknown setting)
ALTER SYSTEM SET no_such_setting_xyz = 1;
-- audit_log settings: recorded; the context settings are not
SET audit_log.export_max_rows = 500;
RESET audit_log.export_max_rows;
SET audit_log.actor = 'someone';
RESET audit_log.actor;
-- settings that change what is audited are superuser-only
SET ROLE uc_role;
SET audit_log.export_max_rows = 5;
RESET ROLE;
SELECT pg_temp.wait_for('config.system_altered', :start, 3) AS all_there,
       pg_temp.wait_for('audit.setting_changed', :start, 3) AS settings;
SELECT category, event_type, status, object_type, object_name, command, details
  FROM audit_log.events
 WHERE event_id > :start AND category IN ('config', 'audit') AND database = current_database()
 ORDER BY status DESC, event_id;
DROP ROLE uc_role;
