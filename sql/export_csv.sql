-- Export: cells, formula neutralisation, the cap at exactly 99,999 /
-- 100,000 / 100,001 matching events, continuation, audit.exported,
-- export_csv, and the indexes search uses on a month of events.
\i test/include/setup.sql
\set VERBOSITY default
SELECT count(*) AS partitions FROM (
    SELECT audit_log._create_partition(d::date)
      FROM generate_series('2025-04-01'::date, '2025-04-30'::date, '1 day') d) s;

-- 100,001 bulk events over April, 1,000 actors, 250 addresses, with
-- deterministic event ids: the EXCLUSIVE lock keeps the background worker
-- (logins, failures of earlier tests) from taking ids in between.
BEGIN;
SET LOCAL audit_log.internal = on;
LOCK TABLE audit_log.events IN EXCLUSIVE MODE;
SELECT setval('audit_log.events_event_id_seq', 1000000) AS first_id_minus_1;
INSERT INTO audit_log.events (event_id, occurred_at, category, event_type, status, actor, actor_type,
    db_user, client_addr, tenant, object_type, object_name, resource_id, command, new_data, txid, backend_pid)
SELECT nextval('audit_log.events_event_id_seq'),
       '2025-04-01'::timestamptz + (i * interval '25 seconds'),
       'app', 'app.bulk', 'success', 'user' || (i % 1000), 'user', 'app',
       CASE WHEN i % 5000 = 0 THEN '192.0.2.1' ELSE '10.' || (i % 250) || '.0.1' END::inet, 't' || (i % 7), 'table', 'public.bulk', i::text, 'INSERT',
       jsonb_build_object('i', i), 1, 1
  FROM generate_series(1, 100001) i;
SET LOCAL audit_log.internal = off;
COMMIT;
VACUUM ANALYZE audit_log.events;

-- 99,999: no warning
SELECT count(*) FROM audit_log.export(event_types => '{app.bulk}', after_event_id => 1000002);
-- 100,000: exactly the cap, no warning
SELECT count(*) FROM audit_log.export(event_types => '{app.bulk}', after_event_id => 1000001);
-- 100,001: truncated, WARNING with the count and a HINT with the continuation
SELECT count(*), min(event_id::bigint), max(event_id::bigint) FROM audit_log.export(event_types => '{app.bulk}');
SELECT event_id, resource_id FROM audit_log.export(event_types => '{app.bulk}', after_event_id => 1100000);
-- What each export recorded
SELECT details FROM audit_log.events WHERE event_type = 'audit.exported' ORDER BY event_id;

-- The cap: max_rows may lower it, never exceed it; only a superuser raises it.
SELECT count(*) FROM audit_log.export(event_types => '{app.bulk}', max_rows => 10);
SELECT count(*) FROM audit_log.export(max_rows => 100001);
SELECT count(*) FROM audit_log.export(max_rows => 0);
SET audit_log.export_max_rows = 100001;
SELECT count(*) FROM audit_log.export(event_types => '{app.bulk}');
SET audit_log.export_max_rows = 5;
SELECT count(*) FROM audit_log.export(event_types => '{app.bulk}', since => '2025-04-02', until => '2025-04-03');
-- max_rows at the cap is the cap: the same WARNING
SELECT count(*) FROM audit_log.export(event_types => '{app.bulk}', since => '2025-04-02', until => '2025-04-03', max_rows => 5);
RESET audit_log.export_max_rows;

-- Cells: UTC ISO 8601, compact JSON, formula neutralisation.
SET timezone = 'America/New_York';
SET datestyle = 'SQL, DMY';
BEGIN;
SET LOCAL audit_log.internal = on;
LOCK TABLE audit_log.events IN EXCLUSIVE MODE;
SELECT setval('audit_log.events_event_id_seq', 1200000) AS cells_first_id_minus_1;
INSERT INTO audit_log.events (event_id, occurred_at, category, event_type, status, actor, actor_type,
    db_user, client_addr, application_name, user_agent, tenant, request_id, object_type, object_name,
    resource_id, command, old_data, new_data, statement, details, txid, backend_pid)
VALUES
  (nextval('audit_log.events_event_id_seq'), '2025-04-30 23:00:00.5+00', 'data', 'data.update', 'success',
   '=HYPERLINK("http://evil","x")', E'\tuser', 'app', '2001:db8::7', '@SUM(A1)', E'\rcr', '', 'x1',
   'table', '+cmd|'' /C calc''!A0', '-42', 'UPDATE', '{"n": -5, "s": "-2+3", "t": "ok"}',
   '{"s": "=1+1", "a": ["@x", -1.5, null, true, {"k": "+y"}], "=key": "v"}', '-2+3', '"-7"', 42, 4242),
  (nextval('audit_log.events_event_id_seq'), '2025-04-30 23:00:01+00', 'app', 'app.cells', 'failure',
   '-', 'user', 'app', '10.0.0.1', '+', '@', NULL, 'x2', 'report', '=', '-1e3', 'SELECT', NULL, '-3.5', NULL, '[]', 42, 4242);
SET LOCAL audit_log.internal = off;
COMMIT;
SELECT * FROM audit_log.export(tenants => '{""}', since => '2025-04-30') \gx
SELECT actor, actor_type, application_name, user_agent, object_name, resource_id, new_data, statement, details
  FROM audit_log.export(since => '2025-04-30 23:00:01+00', until => '2025-05-01') \gx
-- The stored values are unchanged.
SELECT actor, application_name, object_name, resource_id, new_data, statement
  FROM audit_log.events WHERE request_id IN ('x1', 'x2') ORDER BY event_id \gx
RESET timezone;
RESET datestyle;
SET timezone = 'UTC';

-- export_csv: rows written; the caller needs pg_write_server_files.
SELECT audit_log.export_csv('/tmp/audit_log_regress_export.csv', event_types => '{app.bulk}', max_rows => 3) AS rows_written;
SELECT pg_read_file('/tmp/audit_log_regress_export.csv') ~ '^event_id,occurred_at,category,' AS has_header,
       array_length(regexp_split_to_array(trim(trailing E'\n' FROM pg_read_file('/tmp/audit_log_regress_export.csv')), E'\n'), 1) AS lines;
SELECT audit_log.export_csv('relative.csv', max_rows => 1);
SELECT audit_log.export_csv(NULL);
CREATE ROLE export_writer IN ROLE audit_log_reader, pg_write_server_files;
SET ROLE export_writer;
SELECT audit_log.export_csv('/tmp/audit_log_regress_export2.csv', usernames => '{user7}', since => '2025-04-01', until => '2025-04-02') AS writer_rows;
RESET ROLE;
DROP ROLE export_writer;

-- With a month of events, searches by username, event type, resource id
-- and address use the indexes (no partition read in full), and a date
-- range reads only its partitions.  The search indexes of a day are built
-- once the day has ended (maintain() step 5); the partitions being written
-- carry only the event_id index.
SELECT count(*) > 0 AS closed_days_indexed FROM audit_log._index_closed() WHERE action = 'indexed';
SELECT count(*) AS search_indexes_on_today
  FROM pg_inherits i JOIN pg_index x ON x.indrelid = i.inhrelid JOIN pg_class c ON c.oid = x.indexrelid
 WHERE i.inhparent = format('audit_log.events_p%s', to_char(now() AT TIME ZONE 'UTC', 'YYYYMMDD'))::regclass
   AND (c.relname LIKE '%_keys_idx' OR c.relname LIKE '%_addr_idx');
SELECT count(*) = 0 AS every_closed_leaf_indexed
  FROM audit_log._leaves() s WHERE s.hi <= now() AND NOT audit_log._leaf_indexed(s.leaf);
CREATE FUNCTION plan_scans(w text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE l text; scans text[] := '{}';
BEGIN
    FOR l IN EXECUTE 'EXPLAIN (COSTS OFF) SELECT * FROM audit_log.event_log e WHERE ' || w
                     || ' ORDER BY e.event_id LIMIT 100' LOOP
        IF l ~ 'Scan' AND l !~ 'event_type_catalog|jsonb_object_keys' THEN
            scans := scans || regexp_replace(regexp_replace(trim(l), '^->\s*', ''), 'events_p\d{8}', 'events_pN', 'g');
            scans[array_upper(scans, 1)] := regexp_replace(scans[array_upper(scans, 1)], ' e(_\d+)?$', '');
        END IF;
    END LOOP;
    RETURN (SELECT string_agg(DISTINCT s, '; ' ORDER BY s) FROM unnest(scans) s);
END $$;
SELECT plan_scans(audit_log._search_where('{user7}', NULL, NULL, NULL, NULL, NULL,
       '2025-04-01', '2025-04-29', NULL, NULL, NULL, NULL)) AS by_username;
SELECT plan_scans(audit_log._search_where(NULL, '{data.update}', NULL, NULL, NULL, NULL,
       '2025-04-01', '2025-04-29', NULL, NULL, NULL, NULL)) AS by_event_type;
SELECT plan_scans(audit_log._search_where(NULL, NULL, NULL, '{4242}', NULL, NULL,
       '2025-04-01', '2025-04-29', NULL, NULL, NULL, NULL)) AS by_resource_id;
SELECT plan_scans(audit_log._search_where(NULL, NULL, NULL, NULL, NULL, '{192.0.2.0/24}',
       '2025-04-01', '2025-04-29', NULL, NULL, NULL, NULL)) AS by_address;
SELECT (SELECT count(*) FROM audit_log.search(usernames => '{user7}', since => '2025-04-01', until => '2025-05-01')) AS user7,
       (SELECT count(*) FROM audit_log.search(resource_ids => '{4242}')) AS resource_4242,
       (SELECT count(*) FROM audit_log.search(ip_addresses => '{10.7.0.0/16}', since => '2025-04-01', until => '2025-05-01')) AS net_10_7,
       (SELECT count(*) FROM audit_log.search(ip_addresses => '{192.0.2.0/24}', since => '2025-04-01', until => '2025-05-01')) AS net_192_0_2;

-- Central databases: a source's events keep their own ids, which can be
-- far above this database's: they are exported and paged (the paging
-- horizon is this database's own).
BEGIN;
SELECT audit_log.ingest('far_feed', '[{"event_type": "app.far", "event_id": 9000000000000}]');
SELECT count(*) AS exported FROM audit_log.export(sources => '{far_feed}');
SELECT count(*) AS paged FROM audit_log.search(sources => '{far_feed}', after_event_id => 0);
ROLLBACK;
-- An export whose transaction rolls back still leaves its trace (its rows
-- have left): audit.exported, queued as a failure and stored by the
-- writer (polled for): the one above, and one in a rolled back savepoint.
BEGIN;
SAVEPOINT s;
SELECT count(*) FROM audit_log.export(event_types => '{app.bulk}', max_rows => 3);
ROLLBACK TO SAVEPOINT s;
COMMIT;
DO $$
BEGIN
    FOR i IN 1 .. 600 LOOP
        EXIT WHEN (SELECT count(*) FROM audit_log.events
                    WHERE event_type = 'audit.exported' AND status = 'failure') = 2;
        PERFORM pg_sleep(0.1);
    END LOOP;
END $$;
SELECT status, details->>'error' AS error, details->>'rows' AS rows, details->'filters' AS filters
  FROM audit_log.events WHERE event_type = 'audit.exported' AND status = 'failure'
 ORDER BY details->>'rows';
-- A read-only transaction (BI tools often connect so) exports too: its
-- audit.exported is queued when the transaction ends (polled for).
BEGIN READ ONLY;
SELECT count(*) FROM audit_log.export(event_types => '{app.bulk}', max_rows => 4);
COMMIT;
DO $$
BEGIN
    FOR i IN 1 .. 600 LOOP
        EXIT WHEN EXISTS (SELECT 1 FROM audit_log.events
                           WHERE event_type = 'audit.exported' AND details->'filters'->>'max_rows' = '4');
        PERFORM pg_sleep(0.1);
    END LOOP;
END $$;
SELECT status, details->>'rows' AS rows FROM audit_log.events
 WHERE event_type = 'audit.exported' AND details->'filters'->>'max_rows' = '4';
-- search() whatever standard_conforming_strings says (legacy drivers): a
-- new session, whose first search() reads its functions with it off.
\c
SET standard_conforming_strings = off;
SELECT count(*) > 0 AS found FROM audit_log.search(text_query => 'user7', since => '2025-04-01', until => '2025-04-02');
SELECT count(*) AS in_april FROM audit_log.search(since => '2025-04-01', until => '2025-04-02');
RESET standard_conforming_strings;
