-- seal(), chain_head(), verify(), the seals view.
\i test/include/setup_fresh.sql
SET audit_log.seal_delay = '5min';
-- Events of the last days, the newest over an hour old so that its window
-- is closed whatever the minute (relative times: output shows no dates).
SELECT count(*) FROM (
  SELECT audit_log._record_at(date_trunc('hour', now()) - make_interval(hours => h + 1, mins => m), 'app', 'app.test',
                              'obj' || h, jsonb_build_object('h', h, 'pi', 3.14159265358979, 'txt', 'ünïcødé "q"'))
    FROM generate_series(1, 72) h, generate_series(0, 50, 10) m) x;
SELECT audit_log.seal() > 0 AS sealed_some;
SELECT audit_log.seal() AS sealed_again;
-- Every window is contiguous and chained to the previous one.
SELECT count(*) AS unchained FROM audit_log.seals s
 WHERE s.prev_digest IS NOT NULL AND NOT EXISTS (
       SELECT 1 FROM audit_log.seals p WHERE p.window_end = s.window_start AND p.digest = s.prev_digest);
SELECT count(*) AS genesis FROM audit_log.seals WHERE prev_digest IS NULL;
SELECT sum(events) AS sealed_events FROM audit_log.seals;
-- The newest window ended at least seal_delay ago; the head is the newest seal.
SELECT max(window_end) <= now() - interval '5 min' AS delay_respected FROM audit_log.seals;
SELECT h.window_end = (SELECT max(window_end) FROM audit_log.seals) AS head_is_newest,
       h.digest = (SELECT digest FROM audit_log.seals ORDER BY window_end DESC LIMIT 1) AS head_digest,
       length(h.digest) AS hex_length
  FROM audit_log.chain_head() h;
SELECT status, count(*) >= 72 AS windows, sum(events) FROM audit_log.verify() GROUP BY status ORDER BY status;
-- Verification does not depend on session settings.
CREATE TEMP TABLE v1 AS SELECT * FROM audit_log.verify();
SET timezone = 'Asia/Kathmandu';
SET datestyle = 'SQL, DMY';
SET extra_float_digits = -3;
SET client_encoding = 'LATIN1';
SELECT count(*) AS differences FROM (
  (SELECT window_start, status, events FROM audit_log.verify() EXCEPT SELECT window_start, status, events FROM v1)
  UNION ALL
  (SELECT window_start, status, events FROM v1 EXCEPT SELECT window_start, status, events FROM audit_log.verify())) d;
RESET client_encoding;
RESET extra_float_digits;
RESET datestyle;
SET timezone = 'UTC';
-- Tampering is detected and located (details in the TAP test).
BEGIN;  -- a superuser who bypasses the guard for one transaction
SET LOCAL audit_log.internal = on;
UPDATE audit_log.events SET actor = 'mallory'
 WHERE event_id = (SELECT min(event_id) FROM audit_log.events WHERE object_name = 'obj30');
SET LOCAL audit_log.internal = off;
COMMIT;
SELECT status, count(*) > 0 AS windows, regexp_replace(detail, '[0-9]+', 'N', 'g') AS detail
  FROM audit_log.verify() GROUP BY status, 3 ORDER BY status;
-- A range: only the windows overlapping it.
SELECT count(*) FROM audit_log.verify(date_trunc('hour', now()) - interval '10 hours', date_trunc('hour', now()) - interval '8 hours');
\set VERBOSITY sqlstate
SELECT * FROM audit_log.verify(now(), now() - interval '1 hour');

-- seal() under an older snapshot (REPEATABLE READ, SERIALIZABLE) would miss
-- events committed since it was taken, in the windows it seals: refused.
BEGIN ISOLATION LEVEL REPEATABLE READ;
SELECT 1 AS snapshot_taken;
SELECT audit_log.seal();
ROLLBACK;
