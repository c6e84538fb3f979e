-- Table capture: bad input to enable()/disable(), each a clear error with
-- an SQLSTATE, and a failed call changes nothing.
\i test/include/setup.sql
\set SHOW_CONTEXT never

\i test/include/table_events.sql

\i test/include/try.sql

-- state(): everything a call of enable() could change.
CREATE FUNCTION pg_temp.state() RETURNS text LANGUAGE sql AS $$
SELECT format('config=%s types=%s events=%s triggers=%s',
    (SELECT count(*) FROM audit_log.table_config),
    (SELECT count(*) FROM audit_log.event_type_catalog),
    (SELECT count(*) FROM audit_log.events),
    (SELECT count(*) FROM pg_trigger WHERE tgname LIKE 'audit_log%'))
$$;

CREATE TABLE err_t (id int PRIMARY KEY, a text, b text);
CREATE VIEW err_view AS SELECT * FROM err_t;
CREATE MATERIALIZED VIEW err_mview AS SELECT * FROM err_t;
CREATE SEQUENCE err_seq;
CREATE TYPE err_type AS (x int);
CREATE TABLE err_parted (id int) PARTITION BY RANGE (id);
CREATE TABLE err_parted_1 PARTITION OF err_parted FOR VALUES FROM (0) TO (10);
CREATE FOREIGN DATA WRAPPER err_fdw;
CREATE SERVER err_srv FOREIGN DATA WRAPPER err_fdw;
CREATE FOREIGN TABLE err_foreign (id int) SERVER err_srv;

SELECT pg_temp.state() AS initial \gset

-- Unknown table (the regclass cast fails before the call).
SELECT pg_temp.try($$SELECT audit_log.enable('no_such_table')$$);
SELECT pg_temp.try($$SELECT audit_log.disable('no_such_table')$$);
SELECT pg_temp.try($$SELECT audit_log.enable(NULL)$$);
-- Not a table.
SELECT pg_temp.try($$SELECT audit_log.enable('err_view')$$);
SELECT pg_temp.try($$SELECT audit_log.enable('err_mview')$$);
SELECT pg_temp.try($$SELECT audit_log.enable('err_seq')$$);
SELECT pg_temp.try($$SELECT audit_log.enable('err_type')$$);
SELECT pg_temp.try($$SELECT audit_log.enable('err_foreign')$$);
SELECT pg_temp.try($$SELECT audit_log.enable('err_t_pkey')$$);
-- A partition child: enable its partitioned table instead.
SELECT pg_temp.try($$SELECT audit_log.enable('err_parted_1')$$);
-- The extension's own tables.
SELECT pg_temp.try($$SELECT audit_log.enable('audit_log.events')$$);
SELECT pg_temp.try($$SELECT audit_log.enable('audit_log.events_default')$$);
SELECT pg_temp.try($$SELECT audit_log.enable('audit_log.table_config')$$);
SELECT pg_temp.try($$SELECT audit_log.enable('audit_log.event_type_catalog')$$);
-- Unknown category.
SELECT pg_temp.try($$SELECT audit_log.enable('err_t', 'finance')$$);
SELECT pg_temp.try($$SELECT audit_log.enable('err_t', 'DATA')$$);
SELECT pg_temp.try($$SELECT audit_log.enable('err_t', NULL)$$);
-- Unknown column in each column list.
SELECT pg_temp.try($$SELECT audit_log.enable('err_t', exclude_columns => '{a,nope}')$$);
SELECT pg_temp.try($$SELECT audit_log.enable('err_t', mask_columns => '{nope}')$$);
SELECT pg_temp.try($$SELECT audit_log.enable('err_t', when_changed => '{b,Nope}')$$);
SELECT pg_temp.try($$SELECT audit_log.enable('err_t', mask_columns => '{NULL}')$$);
SELECT pg_temp.try($$SELECT audit_log.enable('err_t', exclude_columns => '{ctid}')$$);
-- Malformed event_types: not an object, unknown operation, bad codes.
SELECT pg_temp.try($$SELECT audit_log.enable('err_t', event_types => '["user.added"]')$$);
SELECT pg_temp.try($$SELECT audit_log.enable('err_t', event_types => '"user.added"')$$);
SELECT pg_temp.try($$SELECT audit_log.enable('err_t', event_types => '{"UPSERT": "user.added"}')$$);
SELECT pg_temp.try($$SELECT audit_log.enable('err_t', event_types => '{"SELECT": "user.read"}')$$);
SELECT pg_temp.try($$SELECT audit_log.enable('err_t', event_types => '{"INSERT": "User.Added"}')$$);
SELECT pg_temp.try($$SELECT audit_log.enable('err_t', event_types => '{"INSERT": "useradded"}')$$);
SELECT pg_temp.try($$SELECT audit_log.enable('err_t', event_types => '{"INSERT": "user..added"}')$$);
SELECT pg_temp.try($$SELECT audit_log.enable('err_t', event_types => '{"INSERT": "user.added."}')$$);
SELECT pg_temp.try($$SELECT audit_log.enable('err_t', event_types => '{"INSERT": "1user.added"}')$$);
SELECT pg_temp.try($$SELECT audit_log.enable('err_t', event_types => '{"INSERT": "user.add-ed"}')$$);
SELECT pg_temp.try($$SELECT audit_log.enable('err_t', event_types => '{"INSERT": 42}')$$);
SELECT pg_temp.try($$SELECT audit_log.enable('err_t', event_types => '{"INSERT": null}')$$);
SELECT pg_temp.try($$SELECT audit_log.enable('err_t', event_types => '{"INSERT": ""}')$$);
SELECT pg_temp.try(format($f$SELECT audit_log.enable('err_t', event_types => '{"INSERT": "a.%s"}')$f$, repeat('b', 120)));
-- Codes reserved for the extension's own capture.
SELECT pg_temp.try($$SELECT audit_log.enable('err_t', event_types => '{"INSERT": "role.created"}')$$);
SELECT pg_temp.try($$SELECT audit_log.enable('err_t', event_types => '{"DELETE": "audit.purged"}')$$);
SELECT pg_temp.try($$SELECT audit_log.enable('err_t', event_types => '{"UPDATE": "audit.row_checked"}')$$);

-- None of the failed calls changed anything.
SELECT pg_temp.state() = :'initial' AS unchanged;

-- A failed call on an audited table keeps its options and triggers.
SELECT audit_log.enable('err_t', 'app', event_types => '{"INSERT": "err.created"}', mask_columns => '{b}');
SELECT pg_temp.state() AS enabled \gset
SELECT options FROM audit_log.audited_tables WHERE table_name = 'err_t';
SELECT pg_temp.try($$SELECT audit_log.enable('err_t', 'data', mask_columns => '{nope}')$$);
SELECT pg_temp.try($$SELECT audit_log.enable('err_t', 'app', event_types => '{"INSERT": "err.created", "DELETE": "Bad"}')$$);
SELECT pg_temp.try($$SELECT audit_log.enable('err_t', 'app', event_types => '{"UPDATE": "err.updated"}', when_changed => '{zzz}')$$);
SELECT pg_temp.state() = :'enabled' AS unchanged;
SELECT options FROM audit_log.audited_tables WHERE table_name = 'err_t';
SELECT count(*) AS new_code FROM audit_log.event_types WHERE event_type = 'err.updated';
-- Its mask still applies.
INSERT INTO err_t VALUES (1, 'visible', 'MASKED-VALUE');
SELECT event_type, category, new_data FROM table_events WHERE object_name = 'public.err_t' AND command = 'INSERT';
SELECT count(*) AS leaks FROM audit_log.events e WHERE e::text LIKE '%MASKED-VALUE%';

-- A code taken by another category is refused.
CREATE TABLE err_u (id int PRIMARY KEY);
SELECT pg_temp.try($$SELECT audit_log.enable('err_u', 'privilege', event_types => '{"INSERT": "err.created"}')$$);
SELECT count(*) AS configured FROM audit_log.audited_tables WHERE table_name = 'err_u';

-- The capture function refuses to run other than as enable() attaches it.
SELECT pg_temp.try($$SELECT audit_log.capture()$$);
CREATE TRIGGER err_manual_row AFTER INSERT ON err_u FOR EACH ROW EXECUTE FUNCTION audit_log.capture();
SELECT pg_temp.try($$INSERT INTO err_u VALUES (1)$$);
DROP TRIGGER err_manual_row ON err_u;
CREATE TRIGGER err_manual_stmt AFTER INSERT ON err_u FOR EACH STATEMENT EXECUTE FUNCTION audit_log.capture();
SELECT pg_temp.try($$INSERT INTO err_u VALUES (1)$$);
DROP TRIGGER err_manual_stmt ON err_u;
SELECT count(*) AS rows_kept FROM err_u;
