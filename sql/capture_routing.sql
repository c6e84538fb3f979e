-- Where the writer puts an event: the leaf partition routing gives it,
-- also when the leaf this backend wrote the day's events to before
-- (src/leaf_cache.c remembers it) was dropped, laid out again or never
-- committed.
\i test/include/setup_fresh.sql
CREATE FUNCTION pg_temp.leaves(lo timestamptz, hi timestamptz)
RETURNS TABLE(at text, category text, leaf regclass) LANGUAGE sql AS $$
    SELECT to_char(e.occurred_at, 'YYYY-MM-DD HH24:MI:SS.US'), e.category, e.tableoid::regclass
      FROM audit_log.events e WHERE e.occurred_at >= lo AND e.occurred_at < hi
     ORDER BY e.occurred_at, e.category $$;
SELECT audit_log._create_partition('2031-03-10') AS day10, audit_log._create_partition('2031-03-11') AS day11;

-- A day laid out again after this backend wrote to it: the event of the
-- first write rolls back (the day stays empty), a policy for auth gives
-- the day new leaves (the old one is dropped), the next auth event goes
-- to the new leaf and a data event to the new default leaf.
BEGIN;
SELECT audit_log._record_at('2031-03-11 10:00+00', 'auth', 'auth.first') > 0 AS recorded;
SELECT * FROM pg_temp.leaves('2031-03-11', '2031-03-12');
ROLLBACK;
SELECT audit_log.set_retention('short', '30 days', '{auth}');
SELECT partition FROM audit_log.partitions WHERE day = 'audit_log.events_p20310311' ORDER BY 1;
SELECT audit_log._record_at('2031-03-11 11:00+00', 'auth', 'auth.second') > 0 AS recorded;
SELECT audit_log._record_at('2031-03-11 12:00+00', 'data', 'data.second') > 0 AS recorded;
SELECT audit_log._record_at('2031-03-11 13:00+00', 'auth', 'auth.third') > 0 AS recorded;
SELECT * FROM pg_temp.leaves('2031-03-11', '2031-03-12');

-- The edges of a day: the last microsecond of the 10th and the first of
-- the 11th, each after an event of the other day.
SELECT audit_log._record_at('2031-03-10 23:59:59.999999+00', 'data', 'data.edge') > 0 AS recorded;
SELECT audit_log._record_at('2031-03-11 00:00:00+00', 'data', 'data.edge') > 0 AS recorded;
SELECT audit_log._record_at('2031-03-10 23:59:59.999999+00', 'auth', 'auth.edge') > 0 AS recorded;
SELECT audit_log._record_at('2031-03-11 00:00:00+00', 'auth', 'auth.edge') > 0 AS recorded;
SELECT * FROM pg_temp.leaves('2031-03-10 23:00+00', '2031-03-11 01:00+00');

-- A day created and written in a transaction that rolls back, whole or to
-- a savepoint: the next events of that day go to the DEFAULT partition of
-- audit_log.events, as routing sends them.
BEGIN;
SELECT audit_log._create_partition('2031-04-01') AS created;
SELECT audit_log._record_at('2031-04-01 10:00+00', 'data', 'data.gone') > 0 AS recorded;
ROLLBACK;
SELECT audit_log._record_at('2031-04-01 11:00+00', 'data', 'data.kept') > 0 AS recorded;
BEGIN;
SAVEPOINT s;
SELECT audit_log._create_partition('2031-04-02') AS created;
SELECT audit_log._record_at('2031-04-02 10:00+00', 'data', 'data.gone') > 0 AS recorded;
ROLLBACK TO SAVEPOINT s;
SELECT audit_log._record_at('2031-04-02 11:00+00', 'data', 'data.kept') > 0 AS recorded;
COMMIT;
SELECT * FROM pg_temp.leaves('2031-04-01', '2031-04-03');

-- A day that appears after events of its date went to the DEFAULT
-- partition: the new day's events go to the day.
SELECT audit_log._record_at('2031-05-01 10:00+00', 'data', 'data.before') > 0 AS recorded;
SELECT audit_log._create_partition('2031-05-02') AS created;
SELECT audit_log._record_at('2031-05-02 10:00+00', 'data', 'data.after') > 0 AS recorded;
SELECT * FROM pg_temp.leaves('2031-05-01', '2031-05-03');


-- The files after this one start without the auth policy.
SET client_min_messages = warning;
DROP EXTENSION audit_log CASCADE;
CREATE EXTENSION audit_log CASCADE;
RESET client_min_messages;
