-- Retention policies and legal holds: settings, views, events, errors.
\i test/include/setup_fresh.sql
\set SHOW_CONTEXT never
SELECT policy, keep, categories, changed_at IS NULL AS builtin FROM audit_log.retention_policies ORDER BY policy;

-- Per-category policies.
SELECT audit_log.set_retention('short', '30 days', '{auth}');
SELECT audit_log.set_retention('long', '400 days', '{role,privilege,role}');
SELECT audit_log.set_retention('default', '120 days');
SELECT policy, keep, categories FROM audit_log.retention_policies ORDER BY policy;
-- Changing keep only keeps the categories.
SELECT audit_log.set_retention('short', '45 days');
SELECT policy, keep, categories FROM audit_log.retention_policies WHERE policy = 'short';
SELECT event_type, object_name, details->>'keep' AS keep, details->'categories' AS categories,
       details->>'previous_keep' AS previous_keep
  FROM audit_log.events WHERE event_type = 'audit.retention_changed' ORDER BY event_id;

-- Bad input: an error with an SQLSTATE, nothing changed.
\set VERBOSITY sqlstate
SELECT audit_log.set_retention('short', '0 days');
SELECT audit_log.set_retention('short', '-5 days');
SELECT audit_log.set_retention('short', NULL);
SELECT audit_log.set_retention('short', '101 years');
SELECT audit_log.set_retention('x', '10 days', '{nonsense}');
SELECT audit_log.set_retention('x', '10 days', '{auth}');
SELECT audit_log.set_retention('x', '10 days', '{}');
SELECT audit_log.set_retention('x', '10 days');
SELECT audit_log.set_retention('default', '10 days', '{auth}');
SELECT audit_log.set_retention('Bad Name', '10 days', '{app}');
SELECT audit_log.set_retention(NULL, '10 days', '{app}');
\set VERBOSITY default
SELECT audit_log.set_retention('short', '0 days');
SELECT audit_log.set_retention('x', '10 days', '{auth}');
SELECT audit_log.set_retention('short', '101 years');
SELECT policy, keep, categories FROM audit_log.retention_policies ORDER BY policy;
SELECT count(*) AS retention_events FROM audit_log.events WHERE event_type = 'audit.retention_changed';

-- Days created from now on have one leaf per policy.
SELECT audit_log._create_partition('2030-01-15');
SELECT partition, range, policy, expires, categories, day
  FROM audit_log.partitions WHERE day = 'audit_log.events_p20300115' ORDER BY partition;
-- Events route to their policy's leaf.
SELECT count(audit_log._record_at('2030-01-15 10:00+00', c, c || '.test')) FROM unnest('{auth,role,data,app}'::text[]) c;
SELECT tableoid::regclass AS leaf, category FROM audit_log.events
 WHERE occurred_at >= '2030-01-15' AND occurred_at < '2030-01-16' ORDER BY category;

-- Legal holds.
SELECT audit_log.hold('case-17', '2025-01-01', '2025-02-01', 'Litigation 17');
SELECT name, from_time, to_time, reason FROM audit_log.legal_holds;
\set VERBOSITY sqlstate
SELECT audit_log.hold('case-17', '2025-01-01', '2025-02-01', 'again');
SELECT audit_log.hold('case-18', '2025-02-01', '2025-01-01', 'backwards');
SELECT audit_log.hold('case-18', '2025-02-01', '2025-02-01', 'empty');
SELECT audit_log.hold('case-18', NULL, '2025-02-01', 'open');
SELECT audit_log.release('no-such-hold');
\set VERBOSITY default
SELECT audit_log.hold('case-18', '2025-02-01', '2025-01-01', 'backwards');
SELECT audit_log.release('no-such-hold');
SELECT name FROM audit_log.legal_holds ORDER BY name;
SELECT audit_log.release('case-17');
SELECT count(*) FROM audit_log.legal_holds;
SELECT event_type, object_name, details->>'from_time' AS from_time, details->>'to_time' AS to_time
  FROM audit_log.events WHERE event_type LIKE 'audit.hold%' ORDER BY event_id;

-- Privileges: admin functions for audit_log_admin, views for readers, PUBLIC nothing.
CREATE ROLE ret_reader IN ROLE audit_log_reader;
CREATE ROLE ret_admin IN ROLE audit_log_admin;
CREATE ROLE ret_nobody;
SET ROLE ret_reader;
SELECT count(*) > 0 AS reader_sees_policies FROM audit_log.retention_policies;
SELECT count(*) > 0 AS reader_sees_partitions FROM audit_log.partitions;
SELECT count(*) >= 0 AS reader_sees_seals FROM audit_log.seals;
\set VERBOSITY sqlstate
SELECT audit_log.set_retention('short', '10 days');
SELECT audit_log.hold('r', '2025-01-01', '2025-01-02', 'reader');
SELECT * FROM audit_log.maintain();
SELECT audit_log.seal();
RESET ROLE;
SET ROLE ret_nobody;
SELECT * FROM audit_log.retention_policies;
SELECT * FROM audit_log.partitions;
RESET ROLE;
\set VERBOSITY default
SET ROLE ret_admin;
SELECT audit_log.set_retention('short', '30 days');
SELECT audit_log.hold('admin-hold', '2025-01-01', '2025-01-02', 'by admin');
SELECT audit_log.release('admin-hold');
RESET ROLE;
SELECT policy, keep, changed_by = current_user AS by_me FROM audit_log.retention_policies WHERE policy = 'short';
SELECT p.proname, has_function_privilege('public', p.oid, 'EXECUTE') AS public_can
  FROM pg_proc p WHERE p.pronamespace = 'audit_log'::regnamespace
   AND p.proname IN ('set_retention', 'hold', 'release', 'maintain', 'seal', 'verify', 'chain_head', '_record_at', '_create_partition')
 ORDER BY 1;
DROP ROLE ret_reader, ret_admin, ret_nobody;
