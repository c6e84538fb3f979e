-- The steps of maintain() on their own, each returning its rows; the
-- categories and the event code syntax, one list in C that SQL reads; the
-- categories of each leaf, recorded when it is created.
\i test/include/setup_fresh.sql
SET audit_log.seal_delay = 0;
SET audit_log.seal_window = '1d';
\i test/include/try.sql

-- The categories: C's list (context.c), sorted; SQL has no other.
SELECT audit_log._categories();
SELECT l.lanname, p.provolatile FROM pg_proc p JOIN pg_language l ON l.oid = p.prolang
 WHERE p.oid = 'audit_log._categories()'::regprocedure;
-- C's own check (the internal recorder's) accepts each of them, and
-- nothing else; so do the CHECK of the catalogue and enable().
BEGIN;
SELECT c, pg_temp.try(format($$SELECT audit_log._record(%L, 'app.steps_check', 'success', NULL, NULL, NULL, NULL)$$, c))
  FROM unnest(audit_log._categories() || '{nonsense,DATA}'::text[]) c ORDER BY c;
ROLLBACK;
SELECT pg_temp.try($$INSERT INTO audit_log.event_type_catalog VALUES ('app.steps_bad', 'nonsense', 'x')$$);
SELECT pg_temp.try($$INSERT INTO audit_log.event_type_catalog VALUES ('App.steps_bad', 'app', 'x')$$);
SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint
 WHERE conrelid = 'audit_log.event_type_catalog'::regclass AND contype = 'c' ORDER BY conname;

-- The event code syntax: C's, the same as the regular expression it
-- replaced; log() (C) also limits the length to 100 bytes.
SELECT code, audit_log._is_event_code(code) AS c_side,
       code ~ '^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$' AS regex
  FROM unnest('{user.role_added,a.b,a1.b_2.c3,app,.a,a.,a..b,1a.b,a.1b,A.b,a.b-c,a.b c,"",a._b,é.b}'::text[]) code
 ORDER BY code COLLATE "C";
SELECT audit_log._is_event_code(NULL) IS NULL AS strict;
SELECT length(c) AS bytes, audit_log._is_event_code(c) AS syntax_ok,
       pg_temp.try(format('SELECT audit_log.log(%L)', c)) AS log
  FROM (VALUES ('app.' || repeat('x', 96)), ('app.' || repeat('x', 97))) v(c) ORDER BY 1;

-- Each leaf's categories are recorded when it is created: the same as
-- its bound says (_fill_leaf_categories() reads them back from there).
SELECT count(*) > 0 AS recorded,
       count(*) = (SELECT count(*) FROM audit_log._leaves()) AS every_leaf
  FROM audit_log.leaf_categories;
CREATE TEMP TABLE recorded AS SELECT * FROM audit_log.leaf_categories;
DELETE FROM audit_log.leaf_categories;
SELECT audit_log._fill_leaf_categories() = (SELECT count(*) FROM recorded) AS refilled;
SELECT audit_log._fill_leaf_categories() AS refilled_again;
SELECT count(*) AS differ FROM ((TABLE recorded EXCEPT TABLE audit_log.leaf_categories)
                                UNION ALL (TABLE audit_log.leaf_categories EXCEPT TABLE recorded)) x;
-- A policy change lays out the empty days again: new records, none left
-- for the leaves it dropped.
SELECT audit_log.set_retention('short', '30 days', '{auth,role}');
SELECT replace(k.leaf, d.name, 'DAY') AS leaf, k.categories
  FROM audit_log.leaf_categories k,
       LATERAL (SELECT audit_log._partition_name((now() AT TIME ZONE 'UTC')::date + 3) AS name) d
 WHERE k.leaf LIKE d.name || '\_%' ORDER BY 1;
SELECT count(*) AS forgotten_leaves_recorded FROM audit_log.leaf_categories k
 WHERE to_regclass(format('audit_log.%I', k.leaf)) IS NULL;

-- _failed(): the rows of a failure, "retry" for a lock not granted.
SELECT * FROM audit_log._failed('audit_log.events_p20250101', '55P03', 'canceling statement due to lock timeout');
SELECT * FROM audit_log._failed('audit_log.events_p20250101', '40P01', 'deadlock detected');
SELECT * FROM audit_log._failed('audit_log.events_default', '23514', 'boom', 'rows of 2025-01-01 not moved');
SELECT * FROM audit_log._failed('audit_log.events_p20250101', 'XX000', 'boom');

-- Step 1, _premake(): the days ahead, once.
SELECT * FROM audit_log._premake('2025-01-30 12:00+00', 2) ORDER BY object;
SELECT count(*) AS again FROM audit_log._premake('2025-01-30 12:00+00', 2);
SELECT k.leaf, k.categories FROM audit_log.leaf_categories k WHERE k.leaf LIKE 'events\_p20250130\_%' ORDER BY 1;

-- Step 2, _move_strays(): rows of a day without partition go to it.
SELECT audit_log._record_at('2025-01-10 08:00+00', 'auth', 'auth.login_failed') > 0 AS stray;
SELECT audit_log._record_at('2025-01-10 09:00+00', 'app', 'app.thing') > 0 AS stray;
SELECT * FROM audit_log._move_strays() ORDER BY action, object;
SELECT count(*) AS again FROM audit_log._move_strays();
SELECT partition, rows, categories FROM audit_log.partitions WHERE day = 'audit_log.events_p20250110' ORDER BY 1;

-- Step 3, _seal_closed(): the closed windows.
SELECT action, object FROM audit_log._seal_closed('2025-01-11 00:00+00');
SELECT count(*) AS again FROM audit_log._seal_closed('2025-01-11 00:00+00');

-- Step 4, _purge_expired(): by leaves, each policy its own; the record
-- goes with the leaf.
SELECT action, object, detail FROM audit_log._purge_expired('2025-02-10 00:00+00') ORDER BY object;
SELECT partition, rows, policy, categories FROM audit_log.partitions WHERE day = 'audit_log.events_p20250110' ORDER BY 1;
SELECT count(*) AS forgotten_leaves_recorded FROM audit_log.leaf_categories k
 WHERE to_regclass(format('audit_log.%I', k.leaf)) IS NULL;
SELECT partition, categories, policy, rows FROM audit_log.purge_log ORDER BY partition;

-- Step 5, _index_closed(): the leaves of the days that ended, once.
SELECT action, object FROM audit_log._index_closed('2025-01-31 00:00+00') ORDER BY object;
SELECT count(*) AS again FROM audit_log._index_closed('2025-01-31 00:00+00');

-- maintain() runs those steps in that order.
SELECT action, count(*) FROM audit_log.maintain('2025-06-01 00:00+00') GROUP BY 1 ORDER BY 1;
