-- Audited partitioned tables: statements addressed to the parent or
-- directly to a partition are captured once, under the parent's name.
SET timezone = 'UTC';
CREATE EXTENSION IF NOT EXISTS audit_log CASCADE;
CREATE TABLE part_accounts (id int PRIMARY KEY, owner text) PARTITION BY RANGE (id);
CREATE TABLE part_accounts_low PARTITION OF part_accounts FOR VALUES FROM (0) TO (100);
CREATE TABLE part_accounts_high PARTITION OF part_accounts FOR VALUES FROM (100) TO (200);
SELECT audit_log.enable('part_accounts', 'privilege');
-- Every leaf has the four capture triggers, ENABLE ALWAYS.
SELECT tgrelid::regclass AS tbl, count(*) AS triggers, min(tgenabled) AS enabled
  FROM pg_trigger WHERE tgname LIKE 'audit_log_%' AND tgrelid::regclass::text LIKE 'part_accounts%'
 GROUP BY 1 ORDER BY 1;
INSERT INTO part_accounts VALUES (1, 'alice'), (150, 'bob');
INSERT INTO part_accounts_low VALUES (2, 'carol');
UPDATE part_accounts_high SET owner = 'robert' WHERE id = 150;
DELETE FROM part_accounts_low WHERE id = 2;
TRUNCATE part_accounts;
TRUNCATE part_accounts_high;
SELECT event_type, object_name, resource_id, old_data, new_data, details
  FROM audit_log.events WHERE object_name = 'public.part_accounts' AND category <> 'ddl' ORDER BY event_id;
-- disable() removes the triggers of the parent and of every partition.
SELECT audit_log.disable('part_accounts');
SELECT count(*) AS triggers_left FROM pg_trigger WHERE tgname LIKE 'audit_log_%'
   AND tgrelid IN ('part_accounts'::regclass, 'part_accounts_low'::regclass, 'part_accounts_high'::regclass);
DROP TABLE part_accounts;
