-- maintain(): partitions ahead (month ends, leap days, DST), stray rows,
-- purges over 150 days by dropping whole partitions, legal holds.
\i test/include/setup_fresh.sql
SET audit_log.seal_delay = 0;
SET audit_log.seal_window = '1d';

-- Partitions ahead, named by their UTC day whatever the session TimeZone.
SET timezone = 'America/New_York';
SELECT action, object, detail FROM audit_log.maintain('2025-03-07 20:00-05') WHERE action = 'created' ORDER BY object;
SET timezone = 'Australia/Sydney';
SELECT action, object, detail FROM audit_log.maintain('2024-02-27 09:00+11') WHERE action = 'created' ORDER BY object;
-- A day of the DST change is 24 hours of UTC, not 23.
SELECT partition, range, upper(range) - lower(range) AS length FROM audit_log.partitions
 WHERE day IN ('audit_log.events_p20250309', 'audit_log.events_p20240229') ORDER BY partition;
SET timezone = 'UTC';
SELECT action, object, detail FROM audit_log.maintain('2025-12-29 12:00+00') WHERE action = 'created' ORDER BY object;
SET audit_log.premake_days = 2;
SELECT action, object FROM audit_log.maintain('2025-01-30 12:00+00') WHERE action = 'created' ORDER BY object;
-- Again: nothing to create.
SELECT count(*) AS created FROM audit_log.maintain('2025-01-30 12:00+00') WHERE action = 'created';
RESET audit_log.premake_days;
BEGIN;  -- a superuser who bypasses the guard for one transaction
SET LOCAL audit_log.internal = on;
DO $$ DECLARE p text; BEGIN
  FOR p IN SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
            WHERE i.inhparent = 'audit_log.events'::regclass AND c.relname ~ '^events_p2024|^events_p2025'
  LOOP EXECUTE format('DROP TABLE audit_log.%I', p); END LOOP; END $$;
SET LOCAL audit_log.internal = off;
COMMIT;

-- Policies, then 150 days of history: auth 30 days, role 400 days, the rest 90.
SELECT audit_log.set_retention('short', '30 days', '{auth}');
SELECT audit_log.set_retention('long', '400 days', '{role}');
SELECT count(*) FROM (
  SELECT audit_log._record_at('2025-01-01 12:00+00'::timestamptz + make_interval(days => d), c, c || '.test')
    FROM generate_series(0, 149) d, unnest('{auth,role,data}'::text[]) c) x;
-- No partition covers them yet: all in the safety net.
SELECT rows FROM audit_log.partitions WHERE partition = 'audit_log.events_default';

-- The first run moves them into their days and purges what has expired
-- on 2025-06-01: auth up to 2025-05-01, data up to 2025-03-02, no role.
CREATE TEMP TABLE run1 AS SELECT * FROM audit_log.maintain('2025-06-01 00:00+00');
SELECT action, count(*) FROM run1 GROUP BY action ORDER BY action;
SELECT object, detail FROM run1 WHERE action = 'moved' ORDER BY object LIMIT 3;
SELECT object, detail FROM run1 WHERE action = 'purged' ORDER BY object LIMIT 4;
SELECT object, detail FROM run1 WHERE action = 'purged' ORDER BY object DESC LIMIT 2;
SELECT rows FROM audit_log.partitions WHERE partition = 'audit_log.events_default';
-- What remains: no expired partition, no row inside its window lost.
SELECT category, count(*), min(occurred_at), max(occurred_at) FROM audit_log.events
 WHERE occurred_at < '2025-07-01' GROUP BY category ORDER BY category;
SELECT policy, count(*), min(lower(range)), bool_or(expires <= '2025-06-01') AS any_expired
  FROM audit_log.partitions WHERE lower(range) < '2025-07-01' GROUP BY policy ORDER BY policy;
-- Each purge is an audit.purged event with its row count.
SELECT count(*) AS purge_events, sum((details->>'rows')::int) AS rows_purged
  FROM audit_log.events WHERE event_type = 'audit.purged';
SELECT object_name, details->>'rows' AS rows, details->>'policy' AS policy, details->>'from_time' AS from_time
  FROM audit_log.events WHERE event_type = 'audit.purged' ORDER BY event_id LIMIT 2;
-- The purge dropped tables, it never deleted rows.
SELECT sum(n_tup_del) AS deleted_rows FROM pg_stat_user_tables
 WHERE schemaname = 'audit_log' AND relname LIKE 'events_p2025%';

-- A legal hold keeps expired partitions; release lets them go.
SELECT audit_log.hold('case-1', '2025-03-10 06:00+00', '2025-03-11 06:00+00', 'Litigation');
SELECT action, object, detail FROM audit_log.maintain('2025-06-12 00:00+00')
 WHERE action IN ('purged', 'held') ORDER BY object;
SELECT partition, held FROM audit_log.partitions WHERE day IN ('audit_log.events_p20250310', 'audit_log.events_p20250311') ORDER BY 1;
SELECT audit_log.release('case-1');
SELECT action, object FROM audit_log.maintain('2025-06-12 00:00+00') WHERE action IN ('purged', 'held') ORDER BY object;

-- 400 days later the role events go too (month end: 2026-03-31 drops the role days before 2025-02-24).
-- So do the auth leaves of 2026-01-01..05: made before the policies existed, still empty
-- when they were set, they took the new leaves at once.
SELECT action, count(*) FROM audit_log.maintain('2026-03-31 00:00+00') WHERE action IN ('purged', 'held') GROUP BY 1;
SELECT category, count(*) FROM audit_log.events WHERE occurred_at < '2025-07-01' GROUP BY category ORDER BY category;

-- Verify after purges: purged windows are reported as such, the rest ok.
SELECT status, count(*) > 0 AS some FROM audit_log.verify('2025-01-01', '2025-06-01') GROUP BY status ORDER BY status;

-- A stray row for a day without partition is moved by the next run.
SELECT audit_log._record_at('2031-07-04 01:02:03+00', 'app', 'app.stray') > 0 AS written;
SELECT tableoid::regclass FROM audit_log.events WHERE event_type = 'app.stray';
SELECT action, object, detail FROM audit_log.maintain('2025-06-12 00:00+00') WHERE action IN ('created', 'moved') ORDER BY action, object;
SELECT tableoid::regclass FROM audit_log.events WHERE event_type = 'app.stray';

-- The attack: an admin that is not a superuser asks maintain() to act as if
-- it were 1,000 days later, to purge the partitions still inside their
-- window without changing a policy.  Refused (42501); nothing is removed.
CREATE ROLE rm_admin IN ROLE audit_log_admin;
CREATE TEMP TABLE parts_before AS SELECT partition FROM audit_log.partitions;
GRANT SELECT ON parts_before TO rm_admin;
SET SESSION AUTHORIZATION rm_admin;
SELECT count(*) FROM audit_log.maintain(now() + interval '1000 days');
RESET SESSION AUTHORIZATION;
SELECT (SELECT count(*) FROM audit_log.partitions) = (SELECT count(*) FROM parts_before) AS same_partitions,
       NOT EXISTS (SELECT 1 FROM parts_before b
                    WHERE NOT EXISTS (SELECT 1 FROM audit_log.partitions p WHERE p.partition = b.partition)) AS none_dropped;
DROP TABLE parts_before;

-- The attack on maintain()'s work tables: an admin plants, in its own
-- pg_temp, a view named like the purge's work table and a table named like
-- the strays' work table, with a trigger.  maintain() runs as the
-- extension's owner: if it used them, the admin's function would run with
-- the owner's rights and make the admin a superuser.  A stray row makes
-- maintain() move rows.  The planted table is dropped, the view cannot be
-- (the purge step reports an error and purges nothing): nothing planted runs.
SELECT audit_log._record_at('2031-07-09 01:02:03+00', 'app', 'app.stray2') > 0 AS written;
SET SESSION AUTHORIZATION rm_admin;
CREATE FUNCTION pg_temp.own() RETURNS oid LANGUAGE plpgsql
    AS $$BEGIN ALTER ROLE rm_admin SUPERUSER; RETURN 0; END$$;
CREATE FUNCTION pg_temp.own_trigger() RETURNS trigger LANGUAGE plpgsql
    AS $$BEGIN PERFORM pg_temp.own(); RETURN NULL; END$$;
CREATE TEMP TABLE audit_log_strays (x int);
CREATE TRIGGER own BEFORE TRUNCATE ON audit_log_strays EXECUTE FUNCTION pg_temp.own_trigger();
CREATE TRIGGER own_ins BEFORE INSERT ON audit_log_strays EXECUTE FUNCTION pg_temp.own_trigger();
CREATE TEMP VIEW audit_log_leaves AS
    SELECT pg_temp.own() AS leaf, 'x'::text AS leaf_name, 0::oid AS day_oid, 'x'::text AS day_name,
           now() AS lo, now() AS hi, '{}'::text[] AS categories, 'd'::text AS policy,
           '1 day'::interval AS keep, now() AS expires, true AS sealed, '{}'::text[] AS holds,
           1 AS policies, 'd'::text AS last_policy, '1 day'::interval AS last_keep,
           now() AS last_expires, true AS expired, true AS all_expired;
SELECT action, object, detail FROM audit_log.maintain('2025-06-12 00:00+00')
 WHERE action IN ('moved', 'error') ORDER BY action, object;
RESET SESSION AUTHORIZATION;
SELECT rolsuper AS attacker_is_superuser FROM pg_roles WHERE rolname = 'rm_admin';
SELECT tableoid::regclass FROM audit_log.events WHERE event_type = 'app.stray2';
DROP VIEW pg_temp.audit_log_leaves;
DROP FUNCTION pg_temp.own_trigger(), pg_temp.own();
DROP ROLE rm_admin;
