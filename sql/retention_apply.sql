-- A retention policy applies from the moment it is set (time travel with
-- maintain(as_of)): the days already created take the new leaves while
-- they are empty; a leaf that holds the categories of several policies is
-- split when the first of them expires: the rows of the longer ones move
-- into leaves of their own, the rest goes with the leaf (no DELETE), the
-- moved rows still verify and the purge records count what went.
\i test/include/setup_fresh.sql
SET audit_log.seal_delay = 0;
SET audit_log.seal_window = '1d';
SET audit_log.premake_days = 3;

-- 2025-02-28, the default policy only: four days of one leaf each, and
-- events on the first two.
SELECT action, object FROM audit_log.maintain('2025-02-28 12:00+00') WHERE action = 'created' ORDER BY object;
SELECT count(audit_log._record_at('2025-02-28 10:00+00', c, c || '.test')) FROM unnest('{role,data}'::text[]) c;
SELECT count(audit_log._record_at('2025-03-01 10:00+00', c, c || '.test'))
  FROM unnest('{auth,auth,role,data,data,app}'::text[]) c;
CREATE TEMP TABLE before AS
SELECT e.event_id, e.category, audit_log._event_digest(e) AS h FROM audit_log.events e
 WHERE e.occurred_at >= '2025-02-28' AND e.occurred_at < '2025-03-02';

-- Logins 30 days, role changes 400 days, the rest 90 days.
SELECT audit_log.set_retention('short', '30 days', '{auth}');
SELECT audit_log.set_retention('long', '400 days', '{role}');
-- The empty days took the new leaves at once.  The two days with events
-- keep their leaf, which now expires with its shortest policy (auth, 30
-- days), not with its longest (role, 400 days).
SELECT partition, rows, policy, expires, categories FROM audit_log.partitions
 WHERE lower(range) >= '2025-02-28' AND lower(range) < '2025-03-04' ORDER BY partition;
-- Logins written on a day created before the change are kept 30 days.
SELECT count(audit_log._record_at('2025-03-03 10:00+00', c, c || '.test'))
  FROM unnest('{auth,role,data,privilege}'::text[]) c;
SELECT e.category, p.partition, p.policy, p.expires
  FROM audit_log.events e JOIN audit_log.partitions p ON p.partition = e.tableoid::regclass::text
 WHERE e.occurred_at >= '2025-03-03' AND e.occurred_at < '2025-03-04' ORDER BY e.category;

-- privilege joins policy long: the empty day 03-02 is laid out again; in
-- 03-03, which has events, the default leaf now also holds a 400-day category.
SELECT audit_log.set_retention('long', '400 days', '{role,privilege}');
SELECT partition, rows, policy, expires, categories FROM audit_log.partitions
 WHERE day IN ('audit_log.events_p20250302', 'audit_log.events_p20250303') ORDER BY partition;
-- maintain() finds nothing to lay out again (the days with events keep their leaves).
SELECT action, object FROM audit_log.maintain('2025-03-01 12:00+00')
 WHERE action NOT IN ('indexed', 'sealed') ORDER BY action, object;

-- 2025-03-31: the auth window of 02-28 is over.  That day had no login: its
-- rows move to leaves of their own, nothing is purged, the seal verifies.
SELECT action, object, detail FROM audit_log.maintain('2025-03-31 00:00+00')
 WHERE action IN ('moved', 'purged', 'deferred', 'held') ORDER BY action, object;
SELECT partition, rows, policy, expires, categories FROM audit_log.partitions
 WHERE day = 'audit_log.events_p20250228' ORDER BY partition;
SELECT window_start, status, events FROM audit_log.verify('2025-02-28', '2025-03-01');

-- 2025-04-01: the two logins of 03-01 go with the leaf, its 4 other rows move.
SELECT action, object, detail FROM audit_log.maintain('2025-04-01 00:00+00')
 WHERE action IN ('moved', 'purged', 'deferred', 'held') ORDER BY action, object;
SELECT partition, rows, policy, expires, categories FROM audit_log.partitions
 WHERE day = 'audit_log.events_p20250301' ORDER BY partition;
-- Every moved row is unchanged (same event, same digest); the logins are gone.
SELECT b.category, count(*) AS written, count(e.event_id) AS kept,
       bool_and(e.event_id IS NULL OR audit_log._event_digest(e) = b.h) AS unchanged
  FROM before b LEFT JOIN audit_log.events e ON e.event_id = b.event_id
 GROUP BY b.category ORDER BY b.category;
-- One audit.purged event and one purge-log row for what went, with its count.
SELECT object_name, details->>'rows' AS rows, details->>'moved_rows' AS moved_rows,
       details->>'policy' AS policy, details->'categories' AS categories
  FROM audit_log.events WHERE event_type = 'audit.purged' ORDER BY event_id;
SELECT partition, rows, policy, categories FROM audit_log.purge_log ORDER BY purged_at;
SELECT window_start, status, events FROM audit_log.verify('2025-02-28', '2025-03-02') ORDER BY window_start;
-- The attack on a partly purged window: an admin gives one category a short
-- policy so that verify() calls the window "purged" and checks it no more.
-- What retention left is still checked against the seal: an event kept
-- there and altered (a superuser past the guard) is a mismatch.
BEGIN;
SET LOCAL audit_log.internal = on;
UPDATE audit_log.events SET actor = 'forger'
 WHERE event_id = (SELECT min(event_id) FROM audit_log.events
                    WHERE occurred_at >= '2025-03-01' AND occurred_at < '2025-03-02');
SELECT window_start, status, events, regexp_replace(detail, '^event [0-9]+', 'event N') AS detail
  FROM audit_log.verify('2025-03-01', '2025-03-02') ORDER BY window_start;
ROLLBACK;
-- Rows were copied and leaves dropped: nothing was DELETEd.
SELECT coalesce(sum(n_tup_del), 0) AS deleted_rows FROM pg_stat_user_tables
 WHERE schemaname = 'audit_log' AND relname LIKE 'events_p2025%';

-- The attack on the split: a table planted in pg_temp under the name of the
-- split's work table, with triggers.  maintain() runs as the extension's
-- owner, so a trigger it fired would run the planter's code with the
-- owner's rights.  The planted table is dropped, never used: no trigger runs.
CREATE TEMP TABLE planted_ran (what text);
CREATE FUNCTION pg_temp.planted() RETURNS trigger LANGUAGE plpgsql
    AS $$BEGIN INSERT INTO pg_temp.planted_ran VALUES (TG_OP); RETURN NULL; END$$;
CREATE TEMP TABLE audit_log_groups (policy text, keep interval, cats text[], expires timestamptz);
CREATE TRIGGER planted BEFORE TRUNCATE ON audit_log_groups EXECUTE FUNCTION pg_temp.planted();
CREATE TRIGGER planted_ins BEFORE INSERT ON audit_log_groups EXECUTE FUNCTION pg_temp.planted();

-- 2025-06-02: the 90-day rows go; in 03-03 the privilege row moves to a leaf
-- of policy long next to the one of role (a name of its own), data goes.
SELECT action, object, detail FROM audit_log.maintain('2025-06-02 00:00+00')
 WHERE action IN ('moved', 'purged', 'deferred', 'held') AND object ~ 'events_p2025(0228|0301|0302|0303)'
 ORDER BY action, object;
SELECT partition, rows, policy, expires, categories FROM audit_log.partitions
 WHERE lower(range) >= '2025-02-28' AND lower(range) < '2025-03-04' ORDER BY partition;
SELECT category, count(*) FROM audit_log.events WHERE occurred_at < '2025-03-04' GROUP BY category ORDER BY category;
SELECT count(*) AS purge_events, sum((details->>'rows')::int) AS rows_purged
  FROM audit_log.events WHERE event_type = 'audit.purged';
SELECT count(*) AS planted_triggers_ran FROM pg_temp.planted_ran;
SELECT pg_catalog.to_regclass('pg_temp.audit_log_groups') IS NULL AS planted_table_gone;

-- The days CREATE EXTENSION made are data like any other day: no members
-- of the extension (a member cannot be dropped: maintain() failed on them
-- once they expired, and pg_dump left out their rows).
SELECT count(*) AS member_partitions
  FROM pg_depend d JOIN pg_class c ON c.oid = d.objid
 WHERE d.classid = 'pg_class'::regclass AND d.refclassid = 'pg_extension'::regclass AND d.deptype = 'e'
   AND c.relname ~ '^events_p';
SELECT count(*) > 0 AS install_day_purged
  FROM audit_log.maintain(now() + interval '500 days')
 WHERE action = 'purged'
   AND object LIKE 'audit_log.' || audit_log._partition_name((now() AT TIME ZONE 'UTC')::date + 3) || '%';

-- A leaf without rows takes no event away: its purge leaves no purge-log
-- row, so its windows are not "partly purged" and verify() still finds an
-- event deleted from them (the attack: a short policy for a category the
-- day never had, then a superuser past the guard deletes a sealed event).
\i test/include/setup_fresh.sql
SET audit_log.seal_delay = 0;
SET audit_log.seal_window = '1d';
SET audit_log.premake_days = 3;
SELECT audit_log.set_retention('short', '30 days', '{auth}');
SELECT count(*) > 0 AS laid_out FROM audit_log.maintain('2024-01-10 00:00+00') WHERE action = 'created';
SELECT count(audit_log._record_at('2024-01-11 10:00+00', 'data', 'data.test')) FROM generate_series(1, 3);
SELECT count(*) AS empty_leaves_purged FROM audit_log.maintain('2024-02-12 00:00+00')
 WHERE action = 'purged' AND object LIKE '%_short' AND detail LIKE '0 rows%';
SELECT count(*) AS purge_log_rows FROM audit_log.purge_log;
BEGIN;
SET LOCAL audit_log.internal = on;
DELETE FROM audit_log.events
 WHERE event_id = (SELECT min(event_id) FROM audit_log.events
                    WHERE occurred_at >= '2024-01-11' AND occurred_at < '2024-01-12');
SELECT window_start, status, events, regexp_replace(detail, 'event [0-9]+', 'event N') AS detail
  FROM audit_log.verify('2024-01-11', '2024-01-12') ORDER BY window_start;
ROLLBACK;
