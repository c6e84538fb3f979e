-- table_events: the events of table capture, enable()/disable() and log()
-- (whose command is SELECT); events of other sources (DDL, roles,
-- privileges captured by the server hooks) are left out so that they
-- cannot change a file's output.  Included by the capture_* files.
CREATE TEMP VIEW table_events AS
SELECT * FROM audit_log.events
 WHERE command IN ('INSERT', 'UPDATE', 'DELETE', 'TRUNCATE', 'SELECT');
