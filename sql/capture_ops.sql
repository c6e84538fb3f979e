-- Table capture: every operation, multi-row statements, ON CONFLICT, MERGE,
-- partitioned tables, resource_id from primary keys, UPDATE storing only
-- the changed columns, no-op updates, session_replication_role = replica.
\i test/include/setup.sql
\set SHOW_CONTEXT never

\i test/include/table_events.sql

CREATE TABLE ops_items (id int PRIMARY KEY, name text, qty int, price numeric, tags jsonb, active bool);
SELECT audit_log.enable('ops_items');

-- The events of this file, without ids, times or pids.
CREATE VIEW ops_events AS
SELECT event_type, category, object_type, object_name, resource_id, command, status, old_data, new_data
  FROM table_events WHERE object_name LIKE 'public.ops\_%' ORDER BY event_id;

-- INSERT: one row, then several rows in one statement (one event per row).
INSERT INTO ops_items VALUES (1, 'bolt', 10, 0.25, '{"size": "m"}', true);
INSERT INTO ops_items VALUES (2, 'nut', 20, 0.10, NULL, true), (3, 'washer', 30, 0.05, '[]', false);
INSERT INTO ops_items SELECT g, 'gen' || g, g, g * 1.5, NULL, true FROM generate_series(4, 6) g;
SELECT * FROM ops_events;

-- UPDATE: only the changed columns in new_data; old_data || new_data is
-- the row after.
UPDATE ops_items SET qty = qty + 1, price = 0.30 WHERE id = 1;
SELECT resource_id, old_data, new_data FROM ops_events WHERE command = 'UPDATE';
SELECT (e.old_data || e.new_data) = to_jsonb(i) AS row_after_matches
  FROM table_events e JOIN ops_items i ON i.id::text = e.resource_id
 WHERE e.object_name = 'public.ops_items' AND e.command = 'UPDATE';
-- A multi-row UPDATE: one event per row that changed.
UPDATE ops_items SET active = NOT active WHERE id IN (2, 3);
SELECT resource_id, new_data FROM ops_events WHERE command = 'UPDATE' ORDER BY 1;
-- Setting a column to NULL and back from NULL counts as a change.
UPDATE ops_items SET tags = NULL WHERE id = 1;
UPDATE ops_items SET tags = '{"x": 1}' WHERE id = 2;
SELECT resource_id, old_data -> 'tags' AS old_tags, new_data FROM ops_events
 WHERE command = 'UPDATE' AND new_data ? 'tags' ORDER BY 1;
-- Every recorded UPDATE: old_data || new_data has all the columns.
SELECT count(*) AS updates,
       bool_and((SELECT count(*) FROM jsonb_object_keys(old_data || new_data)) = 6) AS all_columns
  FROM table_events WHERE object_name = 'public.ops_items' AND command = 'UPDATE';

-- A no-op UPDATE (every column equal) records nothing, even over many rows.
SELECT count(*) AS before FROM table_events WHERE object_name = 'public.ops_items' \gset
UPDATE ops_items SET name = name, qty = qty;
UPDATE ops_items SET tags = tags::text::jsonb WHERE id = 1;
UPDATE ops_items SET qty = qty WHERE false;
SELECT count(*) - :before AS new_events FROM table_events WHERE object_name = 'public.ops_items';

-- DELETE: old_data is the row before, new_data NULL.
DELETE FROM ops_items WHERE id = 6;
DELETE FROM ops_items WHERE id IN (4, 5);
SELECT resource_id, old_data, new_data FROM ops_events WHERE command = 'DELETE' ORDER BY 1;

-- INSERT ... ON CONFLICT DO UPDATE: an insert event for a new row, an
-- update event (changed columns only) for a conflicting one; DO NOTHING
-- and a conflicting no-op record nothing.
SELECT count(*) AS before FROM table_events WHERE object_name = 'public.ops_items' \gset
INSERT INTO ops_items (id, name, qty) VALUES (1, 'bolt', 99), (7, 'nail', 1)
    ON CONFLICT (id) DO UPDATE SET qty = excluded.qty;
INSERT INTO ops_items (id, name) VALUES (1, 'ignored') ON CONFLICT DO NOTHING;
INSERT INTO ops_items (id, name) VALUES (1, 'bolt') ON CONFLICT (id) DO UPDATE SET name = excluded.name;
SELECT event_type, command, resource_id, old_data -> 'qty' AS old_qty, new_data
  FROM table_events WHERE object_name = 'public.ops_items' AND event_id > 0
 ORDER BY event_id OFFSET :before;

-- MERGE: matched rows update or delete, unmatched ones insert.
SELECT count(*) AS before FROM table_events WHERE object_name = 'public.ops_items' \gset
MERGE INTO ops_items t
USING (VALUES (1, 'bolt-m'), (2, NULL), (8, 'screw')) AS s(id, name) ON t.id = s.id
WHEN MATCHED AND s.name IS NULL THEN DELETE
WHEN MATCHED THEN UPDATE SET name = s.name
WHEN NOT MATCHED THEN INSERT (id, name, qty) VALUES (s.id, s.name, 0);
SELECT event_type, command, resource_id, new_data
  FROM table_events WHERE object_name = 'public.ops_items'
 ORDER BY event_id OFFSET :before;

-- TRUNCATE: one event, no row data.
TRUNCATE ops_items;
SELECT event_type, command, resource_id, old_data, new_data FROM ops_events WHERE command = 'TRUNCATE';
-- Events group by transaction: txid is set, backend_pid too.
SELECT count(*) FILTER (WHERE txid IS NULL OR backend_pid IS NULL) AS missing_ids
  FROM table_events WHERE object_name = 'public.ops_items';
-- event_id increases in capture order and is unique.
SELECT count(*) = count(DISTINCT event_id) AS unique_ids FROM audit_log.events;

-- resource_id: composite keys comma-joined in key order, no key gives NULL.
CREATE TABLE ops_pairs (b int, a int, note text, PRIMARY KEY (a, b));
CREATE TABLE ops_nokey (a int, note text);
CREATE TABLE ops_textkey (code text PRIMARY KEY, note text);
SELECT audit_log.enable('ops_pairs');
SELECT audit_log.enable('ops_nokey');
SELECT audit_log.enable('ops_textkey');
INSERT INTO ops_pairs VALUES (7, 1, 'x');
UPDATE ops_pairs SET note = 'y';
DELETE FROM ops_pairs;
INSERT INTO ops_nokey VALUES (1, 'x');
UPDATE ops_nokey SET note = 'y';
INSERT INTO ops_textkey VALUES ('a,b c', 'x');
SELECT object_name, command, resource_id FROM ops_events
 WHERE object_name IN ('public.ops_pairs', 'public.ops_nokey', 'public.ops_textkey');

-- A partitioned table: rows of every partition, one TRUNCATE event; a row
-- moved to another partition is one UPDATE.
CREATE TABLE ops_parted (id int, k int, v text, PRIMARY KEY (id, k)) PARTITION BY RANGE (id);
CREATE TABLE ops_parted_1 PARTITION OF ops_parted FOR VALUES FROM (0) TO (10);
CREATE TABLE ops_parted_2 PARTITION OF ops_parted FOR VALUES FROM (10) TO (20);
SELECT audit_log.enable('ops_parted');
INSERT INTO ops_parted VALUES (1, 7, 'a'), (12, 8, 'b');
UPDATE ops_parted SET id = 11 WHERE id = 1;
DELETE FROM ops_parted WHERE id = 12;
TRUNCATE ops_parted;
SELECT object_name, command, resource_id, old_data, new_data FROM ops_events
 WHERE object_name LIKE 'public.ops_parted%';

-- session_replication_role = replica does not silence capture.
SET session_replication_role = replica;
INSERT INTO ops_items (id, name) VALUES (100, 'replica');
UPDATE ops_items SET name = 'replica2' WHERE id = 100;
DELETE FROM ops_items WHERE id = 100;
TRUNCATE ops_items;
RESET session_replication_role;
SET session_replication_role = local;
INSERT INTO ops_items (id, name) VALUES (101, 'local');
RESET session_replication_role;
SELECT command, resource_id FROM ops_events
 WHERE object_name = 'public.ops_items' AND (resource_id IN ('100', '101') OR command = 'TRUNCATE');
-- The triggers are ENABLE ALWAYS.
SELECT tgname, tgenabled FROM pg_trigger WHERE tgrelid = 'ops_items'::regclass ORDER BY 1;

-- COPY FROM, a writable CTE, statements of more than one batch (1000
-- rows) and rows deleted by an ON DELETE CASCADE are all captured.
CREATE TABLE ops_bulk (id int PRIMARY KEY, v int);
SELECT audit_log.enable('ops_bulk');
INSERT INTO ops_bulk SELECT g, g FROM generate_series(1, 2500) g;
COPY ops_bulk FROM STDIN;
5000	1
5001	2
\.
WITH u AS (UPDATE ops_bulk SET v = v + 1 WHERE id <= 1500 RETURNING id) SELECT count(*) FROM u;
DELETE FROM ops_bulk WHERE id > 1000;
SELECT command, count(*) AS events, count(DISTINCT resource_id) AS rows
  FROM table_events WHERE object_name = 'public.ops_bulk' AND category = 'data'
 GROUP BY command ORDER BY command;
SELECT count(*) = count(DISTINCT event_id) AS unique_ids FROM audit_log.events;
CREATE TABLE ops_parent (id int PRIMARY KEY);
CREATE TABLE ops_child (id int PRIMARY KEY, parent int REFERENCES ops_parent ON DELETE CASCADE);
SELECT audit_log.enable('ops_child');
INSERT INTO ops_parent VALUES (1), (2);
INSERT INTO ops_child VALUES (10, 1), (11, 1), (12, 2);
DELETE FROM ops_parent WHERE id = 1;
SELECT command, resource_id FROM ops_events WHERE object_name = 'public.ops_child';

-- A table in another schema with quoted names keeps its qualified name.
CREATE SCHEMA "Ops Schema";
CREATE TABLE "Ops Schema"."Odd Table" ("Id" int PRIMARY KEY, "Col" text);
SELECT audit_log.enable('"Ops Schema"."Odd Table"');
INSERT INTO "Ops Schema"."Odd Table" VALUES (1, 'x');
SELECT object_name, resource_id, new_data FROM table_events
 WHERE object_name = '"Ops Schema"."Odd Table"' AND command = 'INSERT';
