-- The event row is described once in C (src/event.h) and once in SQL (the
-- table audit_log.events, src/sql/00_core.sql).  The library checks the
-- table against its field table before it writes (every test that writes
-- an event fails when they part); export_row and ingest() derive from the
-- table.  The SQL that must still list the columns (the event_log view and
-- the seal digest) is compared with the table here.
\i test/include/setup.sql

-- The columns, in table order (adding one changes this list on purpose).
SELECT a.attnum, a.attname, pg_catalog.format_type(a.atttypid, a.atttypmod) AS type
  FROM pg_attribute a
 WHERE a.attrelid = 'audit_log.events'::regclass AND a.attnum > 0 AND NOT a.attisdropped
 ORDER BY a.attnum;

CREATE TEMP VIEW event_columns AS
SELECT a.attnum, a.attname::text AS name, a.atttypid
  FROM pg_attribute a
 WHERE a.attrelid = 'audit_log.events'::regclass AND a.attnum > 0 AND NOT a.attisdropped;

-- event_log: every event column with its type, in table order; the view's
-- own columns after them.  No row: they agree.
WITH v AS (
    SELECT a.attnum, a.attname::text AS name, a.atttypid
      FROM pg_attribute a WHERE a.attrelid = 'audit_log.event_log'::regclass AND a.attnum > 0
)
SELECT 'event_log' AS list, e.name AS table_column, v.name AS view_column
  FROM event_columns e FULL JOIN v ON v.name = e.name
 WHERE v.name IS NULL OR (e.name IS NOT NULL AND v.atttypid <> e.atttypid)
 ORDER BY 2, 3;
SELECT array_agg(v.attname::text ORDER BY v.attnum) = (SELECT array_agg(name ORDER BY attnum) FROM event_columns)
       AS event_log_in_table_order
  FROM pg_attribute v
 WHERE v.attrelid = 'audit_log.event_log'::regclass AND v.attnum > 0
   AND v.attname IN (SELECT name FROM event_columns);
SELECT v.attname AS event_log_extra_column
  FROM pg_attribute v
 WHERE v.attrelid = 'audit_log.event_log'::regclass AND v.attnum > 0
   AND v.attname NOT IN (SELECT name FROM event_columns)
 ORDER BY v.attnum;

-- export_row: the same names in the same order, all text.
SELECT array_agg(a.attname::text ORDER BY a.attnum) = (SELECT array_agg(name ORDER BY attnum) FROM event_columns)
       AS export_row_matches,
       bool_and(a.atttypid = 'text'::regtype) AS export_row_all_text
  FROM pg_attribute a
 WHERE a.attrelid = 'audit_log.export_row'::regclass AND a.attnum > 0;

-- The seal digest hashes every column but source, in table order.
SELECT array_agg(m[1] ORDER BY n) = (SELECT array_agg(name ORDER BY attnum) FROM event_columns
                                      WHERE name <> 'source') AS digest_matches
  FROM regexp_matches(pg_get_functiondef('audit_log._event_digest(audit_log.events)'::regprocedure),
                      '\me\.([a-z_]+)', 'g') WITH ORDINALITY AS t(m, n);

-- ingest() takes a key for every column but source, and refuses others.
-- The stored feed is rolled back at the end: other files take this
-- database's ids as the only ones (unique, and max(event_id) as a start).
\set VERBOSITY terse
SELECT audit_log.ingest('structure_feed', '[{"event_type": "app.x", "tenant": "t1", "source": "forged"}]');
SELECT audit_log.ingest('structure_feed', '[{"event_type": "app.x", "no_such_column": 1}]');
SELECT audit_log.ingest('structure_feed', '[{"event_type": "app.x", "backend_pid": "not a number"}]');
BEGIN;
SELECT audit_log.ingest('structure_feed', '[{"event_type": "app.x", "event_id": 7, "tenant": "t1", "actor": null,
   "client_addr": "192.0.2.1", "old_data": {"a": null}, "txid": 12, "occurred_at": "2026-01-02T03:04:05Z"}]');
SELECT audit_log.ingest('structure_feed', '[{"event_type": "app.y", "status": "failure"}, {"event_type": "app.y"}]');
\set VERBOSITY default
SELECT event_id, occurred_at > now() - interval '1 hour' AS recent, category, status, tenant, actor,
       client_addr, old_data, txid, source
  FROM audit_log.events WHERE source = 'structure_feed' AND event_type = 'app.y' ORDER BY event_id;
SELECT event_id, occurred_at AT TIME ZONE 'UTC' AS occurred_utc, category, status, tenant, actor,
       client_addr, old_data, txid, source
  FROM audit_log.events WHERE source = 'structure_feed' AND event_type = 'app.x' ORDER BY event_id;
-- (source, event_id) is the key: an id the source has, at another time or
-- in another category, or one given twice, is refused; nothing is stored.
\set VERBOSITY terse
SAVEPOINT dup;
SELECT audit_log.ingest('structure_feed', '[{"event_type": "app.z"}, {"event_type": "app.x", "event_id": 7, "occurred_at": "2026-01-09T00:00:00Z"}]');
ROLLBACK TO dup;
SELECT audit_log.ingest('structure_feed', '[{"event_type": "app.z", "event_id": 100}, {"event_type": "app.z", "event_id": 100, "category": "auth"}]');
ROLLBACK TO dup;
-- A code's category is its prefix when that names a category, as log()
-- gives it; the audit category is the central's own.
SELECT audit_log.ingest('structure_feed', '[{"event_type": "auth.sso_failed", "status": "failure"}]');
SAVEPOINT audit_code;
SELECT audit_log.ingest('structure_feed', '[{"event_type": "audit.forged"}]');
ROLLBACK TO audit_code;
-- An event from the future would hold its alert group quiet until then.
SELECT audit_log.ingest('structure_feed', '[{"event_type": "app.z", "occurred_at": "2999-01-01T00:00:00Z"}]');
ROLLBACK TO audit_code;
-- So would a time no day partition holds (it stayed in the safety net,
-- and maintain() churned on it at every run).
SELECT audit_log.ingest('structure_feed', '[{"event_type": "app.z", "occurred_at": "-infinity"}]');
ROLLBACK TO audit_code;
SELECT audit_log.ingest('structure_feed', '[{"event_type": "app.z", "occurred_at": "0100-06-01 12:00:00+00 BC"}]');
ROLLBACK TO audit_code;
-- The ids ingest() numbers come after every id of the source, those given
-- in the same call included: an element without an id never gets the id
-- of one that has it (the source's last id is 10 here).
SELECT audit_log.ingest('structure_feed', '[{"event_type": "app.w"}, {"event_type": "app.w", "event_id": 11, "occurred_at": "2021-01-01T00:00:00Z"}]');
SELECT event_id, occurred_at < now() - interval '1 year' AS given FROM audit_log.events
 WHERE source = 'structure_feed' AND event_type = 'app.w' ORDER BY event_id;
\set VERBOSITY default
SELECT event_type, category, count(*) FROM audit_log.events
 WHERE source = 'structure_feed' GROUP BY 1, 2 ORDER BY 1, 2;
SELECT event_type, category FROM audit_log.event_types WHERE event_type = 'auth.sso_failed';
ROLLBACK;
-- Calls for one source run one at a time, each seeing what the one before
-- committed: an older snapshot (REPEATABLE READ) would not.
\set VERBOSITY terse
BEGIN ISOLATION LEVEL REPEATABLE READ;
SELECT audit_log.ingest('structure_feed', '[{"event_type": "app.x"}]');
ROLLBACK;
\set VERBOSITY default

-- The library checks the table against its own list before it writes: a
-- column renamed or added (here by a superuser past the guard, undone
-- below) stops the write with 55000 instead of filling the wrong column.
\i test/include/try.sql
BEGIN;
SET LOCAL audit_log.internal = on;
ALTER TABLE audit_log.events RENAME COLUMN tenant TO tenant_renamed;
SELECT pg_temp.try($$SELECT audit_log.log('app.column_check')$$) AS renamed_column;
ALTER TABLE audit_log.events RENAME COLUMN tenant_renamed TO tenant;
ALTER TABLE audit_log.events ADD COLUMN extra text;
SELECT pg_temp.try($$SELECT audit_log.log('app.column_check')$$) AS added_column;
ROLLBACK;
SELECT audit_log.log('app.column_check') > 0 AS written_again;
