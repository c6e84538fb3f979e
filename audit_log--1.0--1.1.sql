/*
 * audit_log upgrade script 1.0 -> 1.1.
 *
 * Every schema change of 1.1, in the order of src/sql, so that a database
 * updated with ALTER EXTENSION audit_log UPDATE has exactly the objects of a
 * fresh 1.1 install (test/t/upgrade_1_0.pl compares the two dumps).  Events,
 * seals, policies, holds and audited tables are kept: nothing here rewrites
 * or drops a table that holds them.
 */
\echo Use "ALTER EXTENSION audit_log UPDATE TO '1.1'" to load this file. \quit

-- ==== workers: a writer per database; audit_log.status shows each writer ====
-- _status() gains the column writers: the view is dropped and created again.
DROP VIEW @extschema@.status;
DROP FUNCTION @extschema@._status();
CREATE FUNCTION @extschema@._status(OUT preloaded boolean, OUT table_capture boolean,
    OUT utility_capture boolean, OUT login_capture text, OUT worker_pid integer,
    OUT queue_depth bigint, OUT queue_capacity bigint, OUT events_written bigint,
    OUT events_logged bigint, OUT writers jsonb)
AS 'MODULE_PATHNAME', 'audit_status'
LANGUAGE C VOLATILE;
REVOKE ALL ON FUNCTION @extschema@._status() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION @extschema@._status() TO audit_log_reader, audit_log_admin;
CREATE VIEW @extschema@.status AS SELECT * FROM @extschema@._status();
COMMENT ON VIEW @extschema@.status IS 'What audit_log captures in this server right now.';
COMMENT ON COLUMN @extschema@.status.preloaded IS 'Whether audit_log is in shared_preload_libraries.';
COMMENT ON COLUMN @extschema@.status.table_capture IS 'Whether audited tables are captured (always, by triggers).';
COMMENT ON COLUMN @extschema@.status.utility_capture IS 'Whether roles, privileges, configuration and failed commands are captured by the server hooks.';
COMMENT ON COLUMN @extschema@.status.login_capture IS 'Which logins are captured: all, failures, none, or off without the preload.';
COMMENT ON COLUMN @extschema@.status.worker_pid IS 'Process id of the writer of audit_log.database (which stores the cluster-wide events), NULL when it is not running.';
COMMENT ON COLUMN @extschema@.status.queue_depth IS 'Events waiting in the shared-memory queue.';
COMMENT ON COLUMN @extschema@.status.queue_capacity IS 'Capacity of the shared-memory queue, in events.';
COMMENT ON COLUMN @extschema@.status.events_written IS 'Events the writers stored since the server started.';
COMMENT ON COLUMN @extschema@.status.events_logged IS 'Events written to the server log instead of the table (queue full, worker down).';
COMMENT ON COLUMN @extschema@.status.writers IS 'One object per database writer, by database: database, pid, state, audit_database, started_at, last_write, events_written, queued.';
REVOKE ALL ON @extschema@.status FROM PUBLIC;
GRANT SELECT ON @extschema@.status TO audit_log_reader, audit_log_admin;
