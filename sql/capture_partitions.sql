-- Audited partitioned tables: statements addressed to the parent or
-- directly to a partition are captured once, under the parent's name.
\i test/include/setup.sql
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

-- Partitions created, attached or detached after enable(), at any depth:
-- each is audited at once with the audited table's options and name.
SELECT coalesce(max(event_id), 0) AS start FROM audit_log.events \gset
CREATE TABLE pt_keys (id int PRIMARY KEY, owner text, secret text, note text) PARTITION BY RANGE (id);
CREATE TABLE pt_keys_0 PARTITION OF pt_keys FOR VALUES FROM (0) TO (100);
SELECT audit_log.enable('pt_keys', 'privilege', event_types => '{"INSERT": "key.created", "DELETE": "key.revoked"}',
                        exclude_columns => '{note}', mask_columns => '{secret}');
-- created later
CREATE TABLE pt_keys_1 PARTITION OF pt_keys FOR VALUES FROM (100) TO (200);
-- attached
CREATE TABLE pt_keys_2 (id int PRIMARY KEY, owner text, secret text, note text);
ALTER TABLE pt_keys ATTACH PARTITION pt_keys_2 FOR VALUES FROM (200) TO (300);
-- sub-partitioned, depth 2, its leaf created later
CREATE TABLE pt_keys_3 PARTITION OF pt_keys FOR VALUES FROM (300) TO (400) PARTITION BY RANGE (id);
CREATE TABLE pt_keys_3a PARTITION OF pt_keys_3 FOR VALUES FROM (300) TO (350);
-- a sub-partitioned table with its own partitions, attached
CREATE TABLE pt_keys_4 (id int PRIMARY KEY, owner text, secret text, note text) PARTITION BY RANGE (id);
CREATE TABLE pt_keys_4a PARTITION OF pt_keys_4 FOR VALUES FROM (400) TO (450);
CREATE TABLE pt_keys_4b PARTITION OF pt_keys_4 FOR VALUES FROM (450) TO (500) PARTITION BY RANGE (id);
CREATE TABLE pt_keys_4b1 PARTITION OF pt_keys_4b FOR VALUES FROM (450) TO (500);
ALTER TABLE pt_keys ATTACH PARTITION pt_keys_4 FOR VALUES FROM (400) TO (500);
-- a partition created in a transaction that rolls back leaves nothing
BEGIN;
CREATE TABLE pt_keys_9 PARTITION OF pt_keys FOR VALUES FROM (900) TO (1000);
ROLLBACK;
-- every member of the tree carries the capture: the audited table with
-- 8 arguments, every partition with 9 (the audited table's name last)
SELECT tgrelid::regclass AS tbl, count(*) AS triggers, min(tgenabled) AS enabled, min(tgnargs) AS nargs,
       min(split_part(encode(tgargs, 'escape'), '\000', 2)) AS insert_code,
       min(split_part(encode(tgargs, 'escape'), '\000', 7)) AS masked,
       min(split_part(encode(tgargs, 'escape'), '\000', 9)) AS audited_as
  FROM pg_trigger WHERE tgname LIKE 'audit_log_%' AND tgrelid::regclass::text LIKE 'pt_keys%'
 GROUP BY 1 ORDER BY 1::text;
-- direct writes to each new partition, with the options of pt_keys
INSERT INTO pt_keys_1 VALUES (101, 'alice', 's1', 'n1');
INSERT INTO pt_keys_2 VALUES (201, 'bob', 's2', 'n2');
UPDATE pt_keys_2 SET secret = 's2b', note = 'n2b' WHERE id = 201;
INSERT INTO pt_keys_3 VALUES (301, 'carol', 's3', 'n3');
INSERT INTO pt_keys_3a VALUES (302, 'dave', 's3', 'n3');
INSERT INTO pt_keys_4 VALUES (401, 'erin', 's4', 'n4');
INSERT INTO pt_keys_4b VALUES (451, 'frank', 's4', 'n4');
INSERT INTO pt_keys_4b1 VALUES (452, 'grace', 's4', 'n4');
DELETE FROM pt_keys_4a WHERE id = 401;
-- through the parent: one event per row, no partition in details
INSERT INTO pt_keys VALUES (102, 'heidi', 's5', 'n5');
-- TRUNCATE of a sub-partitioned partition is one event; of two named
-- partitions, two
TRUNCATE pt_keys_3;
TRUNCATE pt_keys_1, pt_keys_4b1;
SELECT event_type, category, status, object_type, object_name, resource_id, old_data, new_data, details
  FROM audit_log.events WHERE event_id > :start AND category IN ('privilege', 'audit') ORDER BY event_id;
SELECT table_name, category, mask_columns, partition_of FROM audit_log.audited_tables
 WHERE table_name LIKE 'pt_keys%' ORDER BY 1;
-- Renamed or moved, the audited table's partitions name it anew.
SELECT coalesce(max(event_id), 0) AS start FROM audit_log.events \gset
CREATE SCHEMA pt_other;
ALTER TABLE pt_keys RENAME TO pt_keys_renamed;
INSERT INTO pt_keys_4b1 VALUES (460, 'ursula', 's', 'n');
ALTER TABLE pt_keys_renamed SET SCHEMA pt_other;
INSERT INTO pt_keys_4b1 VALUES (461, 'victor', 's', 'n');
INSERT INTO pt_other.pt_keys_renamed VALUES (462, 'walter', 's', 'n');
ALTER TABLE pt_other.pt_keys_renamed SET SCHEMA public;
ALTER TABLE pt_keys_renamed RENAME TO pt_keys;
DROP SCHEMA pt_other;
SELECT event_type, object_name, resource_id, details
  FROM audit_log.events WHERE event_id > :start AND category IN ('privilege', 'audit') ORDER BY event_id;

-- DETACH: an event, and no more capture of the detached table (nor of
-- its own partitions)
SELECT coalesce(max(event_id), 0) AS start FROM audit_log.events \gset
ALTER TABLE pt_keys DETACH PARTITION pt_keys_2;
ALTER TABLE pt_keys DETACH PARTITION pt_keys_4;
ALTER TABLE pt_keys_3 DETACH PARTITION pt_keys_3a CONCURRENTLY;
INSERT INTO pt_keys_2 VALUES (202, 'ivan', 's', 'n');
INSERT INTO pt_keys_4b1 VALUES (453, 'judy', 's', 'n');
INSERT INTO pt_keys_3a VALUES (303, 'mallory', 's', 'n');
INSERT INTO pt_keys_1 VALUES (103, 'niaj', 's', 'n');
SELECT event_type, object_name, resource_id, details
  FROM audit_log.events WHERE event_id > :start AND category IN ('privilege', 'audit') ORDER BY event_id;
SELECT count(*) AS triggers_left FROM pg_trigger WHERE tgname LIKE 'audit_log_%'
   AND tgrelid IN ('pt_keys_2'::regclass, 'pt_keys_3a'::regclass, 'pt_keys_4'::regclass,
                   'pt_keys_4a'::regclass, 'pt_keys_4b'::regclass, 'pt_keys_4b1'::regclass);

-- A table enabled on its own, then attached: captured with the parent's
-- options and name while attached (audited_tables says so), and with its
-- own again once detached.
SELECT coalesce(max(event_id), 0) AS start FROM audit_log.events \gset
CREATE TABLE pt_own (id int PRIMARY KEY, owner text, secret text, note text);
SELECT audit_log.enable('pt_own', 'data');
ALTER TABLE pt_keys ATTACH PARTITION pt_own FOR VALUES FROM (500) TO (600);
SELECT table_name, category, partition_of FROM audit_log.audited_tables
 WHERE table_name IN ('pt_keys', 'pt_own') ORDER BY 1;
INSERT INTO pt_own VALUES (501, 'olivia', 's', 'n');
ALTER TABLE pt_keys DETACH PARTITION pt_own;
INSERT INTO pt_own VALUES (502, 'peggy', 's', 'n');
SELECT table_name, category, partition_of FROM audit_log.audited_tables
 WHERE table_name IN ('pt_keys', 'pt_own') ORDER BY 1;
-- attached again, then the parent's auditing is disabled: it keeps its own
ALTER TABLE pt_keys ATTACH PARTITION pt_own FOR VALUES FROM (500) TO (600);
SELECT audit_log.disable('pt_keys');
INSERT INTO pt_own VALUES (503, 'rupert', 's', 'n');
INSERT INTO pt_keys_1 VALUES (104, 'sybil', 's', 'n');
SELECT event_type, category, object_name, resource_id, new_data, details
  FROM audit_log.events WHERE event_id > :start AND category IN ('data', 'privilege', 'audit') ORDER BY event_id;
SELECT tgrelid::regclass AS tbl, count(*) AS triggers, min(tgnargs) AS nargs
  FROM pg_trigger WHERE tgname LIKE 'audit_log_%' AND tgrelid::regclass::text LIKE 'pt_%'
 GROUP BY 1 ORDER BY 1::text;
SELECT audit_log.disable('pt_own');

\set SHOW_CONTEXT never
-- An audited table cannot become a partition of a table that is not
-- audited (rows written through the parent would be lost), nor can a
-- foreign table join an audited tree (it cannot carry the capture).
CREATE TABLE pt_plain (id int, v text) PARTITION BY RANGE (id);
CREATE TABLE pt_audited (id int, v text);
SELECT audit_log.enable('pt_audited');
ALTER TABLE pt_plain ATTACH PARTITION pt_audited FOR VALUES FROM (0) TO (10);
SELECT count(*) AS attached FROM pg_inherits WHERE inhrelid = 'pt_audited'::regclass;
SELECT audit_log.disable('pt_audited');
SELECT audit_log.enable('pt_plain');
CREATE FOREIGN DATA WRAPPER pt_fdw;
CREATE SERVER pt_server FOREIGN DATA WRAPPER pt_fdw;
CREATE FOREIGN TABLE pt_plain_f PARTITION OF pt_plain FOR VALUES FROM (10) TO (20) SERVER pt_server;
SELECT count(*) AS created FROM pg_class WHERE relname = 'pt_plain_f';
SELECT audit_log.disable('pt_plain');

-- A table owner without any right on the audit schema creates and attaches
-- partitions of an audited table in a transaction: they are audited, and
-- the internal functions stay out of the owner's reach.
CREATE ROLE pt_owner;
GRANT CREATE ON SCHEMA public TO pt_owner;
SET ROLE pt_owner;
CREATE TABLE pt_orders (id int PRIMARY KEY, item text) PARTITION BY RANGE (id);
RESET ROLE;
SELECT audit_log.enable('pt_orders');
SELECT coalesce(max(event_id), 0) AS start FROM audit_log.events \gset
SET ROLE pt_owner;
BEGIN;
CREATE TABLE pt_orders_1 PARTITION OF pt_orders FOR VALUES FROM (0) TO (10);
INSERT INTO pt_orders_1 VALUES (1, 'book');
CREATE TABLE pt_orders_2 (id int PRIMARY KEY, item text);
ALTER TABLE pt_orders ATTACH PARTITION pt_orders_2 FOR VALUES FROM (10) TO (20);
INSERT INTO pt_orders_2 VALUES (11, 'pen');
COMMIT;
SELECT audit_log._partition_changed('pt_orders_2', 'pt_orders', false, 'ALTER TABLE');
SELECT audit_log._sync_capture('pt_orders_2');
CREATE TRIGGER pt_forged AFTER INSERT ON pt_orders_2 FOR EACH STATEMENT EXECUTE FUNCTION audit_log.capture();
RESET ROLE;
SELECT event_type, effective_role, object_name, resource_id, new_data, details
  FROM audit_log.events WHERE event_id > :start AND category IN ('data', 'audit') ORDER BY event_id;
SELECT audit_log.disable('pt_orders');
DROP TABLE pt_orders, pt_keys, pt_keys_2, pt_keys_3a, pt_keys_4, pt_own, pt_plain, pt_audited;
DROP SERVER pt_server;
DROP FOREIGN DATA WRAPPER pt_fdw;
REVOKE CREATE ON SCHEMA public FROM pt_owner;
DROP ROLE pt_owner;

-- An UPDATE moving rows between partitions, where a BEFORE INSERT trigger
-- of the new partition skips some of them: those rows leave the table
-- (their old row is in the transition table, without a new one).  The
-- events never pair a row with another row's values: rows that all left
-- are recorded as deleted (command UPDATE); a statement where only some
-- left cannot be paired and fails.
CREATE TABLE pt_move (id int, k int, v text, PRIMARY KEY (id, k)) PARTITION BY LIST (k);
CREATE TABLE pt_move_1 PARTITION OF pt_move FOR VALUES IN (1);
CREATE TABLE pt_move_2 PARTITION OF pt_move FOR VALUES IN (2);
INSERT INTO pt_move VALUES (1, 1, 'a'), (2, 1, 'b'), (4, 1, 'd'), (3, 2, 'c');
SELECT audit_log.enable('pt_move');
CREATE FUNCTION pt_move_skip() RETURNS trigger LANGUAGE plpgsql AS
  $$BEGIN IF NEW.id < 3 THEN RETURN NULL; END IF; RETURN NEW; END$$;
CREATE TRIGGER pt_move_skip BEFORE INSERT ON pt_move_2 FOR EACH ROW EXECUTE FUNCTION pt_move_skip();
SELECT coalesce(max(event_id), 0) AS start FROM audit_log.events \gset
UPDATE pt_move SET k = 2, v = v || '!';
SELECT * FROM pt_move ORDER BY id;
UPDATE pt_move SET k = 2, v = v || '!' WHERE id = 4;
UPDATE pt_move SET k = 2, v = v || '!' WHERE id = 3;
UPDATE pt_move SET k = 2, v = v || '?' WHERE id < 3;
SELECT * FROM pt_move ORDER BY id;
SELECT event_type, command, resource_id, old_data, new_data
  FROM audit_log.events WHERE event_id > :start AND category = 'data' ORDER BY event_id;
-- rows a BEFORE UPDATE or BEFORE DELETE trigger skips leave no row in
-- either transition table: the others pair as they should
CREATE FUNCTION pt_move_keep() RETURNS trigger LANGUAGE plpgsql AS
  $$BEGIN IF OLD.id = 1 THEN RETURN NULL; END IF; RETURN coalesce(NEW, OLD); END$$;
CREATE TABLE pt_plain_skip (id int PRIMARY KEY, v text);
INSERT INTO pt_plain_skip VALUES (1, 'a'), (2, 'b'), (3, 'c');
SELECT audit_log.enable('pt_plain_skip');
CREATE TRIGGER pt_keep BEFORE UPDATE ON pt_plain_skip FOR EACH ROW EXECUTE FUNCTION pt_move_keep();
INSERT INTO pt_move VALUES (1, 1, 'a'), (2, 1, 'b');
DROP TRIGGER pt_move_skip ON pt_move_2;
CREATE TRIGGER pt_keep BEFORE DELETE ON pt_move_1 FOR EACH ROW EXECUTE FUNCTION pt_move_keep();
SELECT coalesce(max(event_id), 0) AS start FROM audit_log.events \gset
UPDATE pt_plain_skip SET v = v || '!';
UPDATE pt_move SET k = 2, v = v || '!' WHERE id < 3;
SELECT * FROM pt_move ORDER BY id;
SELECT event_type, command, object_name, resource_id, old_data, new_data
  FROM audit_log.events WHERE event_id > :start AND category = 'data' ORDER BY event_id;
SELECT audit_log.disable('pt_move');
SELECT audit_log.disable('pt_plain_skip');
DROP TABLE pt_move, pt_plain_skip;
DROP FUNCTION pt_move_skip(), pt_move_keep();
