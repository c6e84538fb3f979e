-- A table owner changing the schema of an audited table cannot take rows
-- or columns out of the capture: inheritance (both ways), a capture
-- trigger made to depend on an extension, a column renamed or dropped;
-- the options of a dropped table are forgotten.  (With the preload; the
-- same without it: test/t/hooks_nopreload.pl.)
\i test/include/setup.sql
\i test/include/try.sql
CREATE ROLE sc_owner NOLOGIN;
GRANT CREATE ON SCHEMA public TO sc_owner;
DO $$ BEGIN EXECUTE format('GRANT CREATE ON DATABASE %I TO sc_owner', current_database()); END $$;
SET ROLE sc_owner;
CREATE TABLE sc_acct (id int PRIMARY KEY, balance int);
INSERT INTO sc_acct VALUES (1, 100), (2, 200);
CREATE TABLE sc_ih (id int, v text);
RESET ROLE;
SELECT audit_log.enable('sc_acct');
SELECT audit_log.enable('sc_ih');
SELECT coalesce(max(event_id), 0) AS start FROM audit_log.events \gset

-- 1a. The audited table made an inheritance child of the owner's own
-- table, to change its rows through that table unrecorded: refused.
SET ROLE sc_owner;
CREATE TABLE sc_sneaky (id int, balance int);
ALTER TABLE sc_acct INHERIT sc_sneaky;
UPDATE sc_sneaky SET balance = 0;
-- a new table inheriting from both an audited and an unaudited table
CREATE TABLE sc_both () INHERITS (sc_sneaky, sc_acct);
-- 1b. An unaudited inheritance child of an audited table, whose rows
-- would be seen through it unrecorded: refused, created or attached.
CREATE TABLE sc_ihc () INHERITS (sc_ih);
CREATE TABLE sc_ihc (id int, v text);
ALTER TABLE sc_ihc INHERIT sc_ih;
RESET ROLE;
-- both audited: allowed, and rows written through the parent are
-- recorded by the parent's capture
SELECT audit_log.enable('sc_ihc');
SET ROLE sc_owner;
ALTER TABLE sc_ihc INHERIT sc_ih;
INSERT INTO sc_ihc VALUES (1, 'child');
UPDATE sc_ih SET v = 'through parent';
ALTER TABLE sc_ihc NO INHERIT sc_ih;
RESET ROLE;
SELECT count(*) AS acct_children FROM pg_inherits WHERE inhparent = 'sc_sneaky'::regclass OR inhrelid = 'sc_acct'::regclass;
SELECT balance FROM sc_acct ORDER BY id;
SELECT event_type, object_name, old_data, new_data
  FROM audit_log.events WHERE event_id > :start AND category = 'data' ORDER BY event_id;
-- enable() and disable() keep the rule: an audited parent needs audited
-- children (enable the children first, disable the parents first).
CREATE TABLE sc_par (id int, v text);
CREATE TABLE sc_kid () INHERITS (sc_par);
SELECT pg_temp.try($$SELECT audit_log.enable('sc_par')$$);
SELECT audit_log.enable('sc_kid');
SELECT audit_log.enable('sc_par');
SELECT pg_temp.try($$SELECT audit_log.disable('sc_kid')$$);
SELECT audit_log.disable('sc_par');
SELECT audit_log.disable('sc_kid');
DROP TABLE sc_kid, sc_par;

-- 2. A capture trigger made to depend on an extension (dropping the
-- extension would drop it): refused; NO DEPENDS is harmless.
SELECT coalesce(max(event_id), 0) AS start FROM audit_log.events \gset
SET ROLE sc_owner;
CREATE EXTENSION cube;
ALTER TRIGGER audit_log_insert ON sc_acct DEPENDS ON EXTENSION cube;
ALTER TRIGGER audit_log_update ON sc_acct NO DEPENDS ON EXTENSION cube;
RESET ROLE;
-- Made anyway by a superuser with the event trigger disabled (itself
-- recorded): dropping the extension drops the triggers, and that is
-- recorded as capture turned off, once per trigger.
ALTER EVENT TRIGGER audit_log_ddl DISABLE;
ALTER TRIGGER audit_log_insert ON sc_acct DEPENDS ON EXTENSION cube;
ALTER TRIGGER audit_log_delete ON sc_acct DEPENDS ON EXTENSION cube;
ALTER EVENT TRIGGER audit_log_ddl ENABLE ALWAYS;
SET ROLE sc_owner;
DROP EXTENSION cube;
RESET ROLE;
SELECT tgname FROM pg_trigger WHERE tgrelid = 'sc_acct'::regclass ORDER BY 1;
SELECT event_type, object_name, details - 'source' AS details
  FROM audit_log.events WHERE event_id > :start AND event_type = 'audit.capture_disabled' ORDER BY event_id;
-- the trigger's name in ALTER TRIGGER events (the refused one failed)
SELECT event_type, object_name, status FROM audit_log.events
 WHERE event_id > :start AND event_type = 'ddl.alter_trigger' ORDER BY object_name, status;
SELECT audit_log.enable('sc_acct');

-- 3. A masked or watched column renamed, and a new column given its name:
-- the options follow the renamed column (audit.enabled says so).
SET ROLE sc_owner;
CREATE TABLE sc_users (id int PRIMARY KEY, name text, password text, status text, note text);
INSERT INTO sc_users VALUES (1, 'alice', 'hunter2', 'active', 'n');
RESET ROLE;
SELECT audit_log.enable('sc_users', mask_columns => '{password}', when_changed => '{status,name}',
                        exclude_columns => '{note}');
SELECT coalesce(max(event_id), 0) AS start FROM audit_log.events \gset
SET ROLE sc_owner;
ALTER TABLE sc_users RENAME password TO password_old;
ALTER TABLE sc_users ADD COLUMN password text;
ALTER TABLE sc_users RENAME COLUMN status TO status_old;
ALTER TABLE sc_users ADD COLUMN status text;
UPDATE sc_users SET name = 'alice2';
UPDATE sc_users SET status_old = 'locked';
UPDATE sc_users SET status = 'x', password = 'new';
-- a dropped column leaves the options; a new one of the same name is
-- another column
ALTER TABLE sc_users DROP COLUMN note;
ALTER TABLE sc_users ADD COLUMN note text;
UPDATE sc_users SET name = 'alice3', note = 'visible';
RESET ROLE;
SELECT exclude_columns, mask_columns, when_changed FROM audit_log.audited_tables WHERE table_name = 'sc_users';
SELECT event_type, command, details - 'event_types' - 'category' AS details
  FROM audit_log.events WHERE event_id > :start AND event_type = 'audit.enabled' ORDER BY event_id;
SELECT event_type, old_data, new_data
  FROM audit_log.events WHERE event_id > :start AND category = 'data' ORDER BY event_id;
-- a renamed column of an audited partitioned table: its partitions'
-- capture follows too
CREATE TABLE sc_parted (id int PRIMARY KEY, secret text) PARTITION BY RANGE (id);
CREATE TABLE sc_parted_1 PARTITION OF sc_parted FOR VALUES FROM (0) TO (10);
SELECT audit_log.enable('sc_parted', mask_columns => '{secret}');
ALTER TABLE sc_parted RENAME secret TO secret_old;
ALTER TABLE sc_parted ADD COLUMN secret text;
INSERT INTO sc_parted_1 VALUES (1, 'x', 'y');
SELECT new_data FROM audit_log.events WHERE object_name = 'public.sc_parted' AND category = 'data' ORDER BY event_id;

-- The columns of a typed table are renamed and dropped through its type
-- (ALTER TYPE ... CASCADE): the options follow them all the same.
CREATE TYPE sc_emp_t AS (id int, salary int, notes text, pin text);
CREATE TABLE sc_emp OF sc_emp_t (PRIMARY KEY (id));
SELECT audit_log.enable('sc_emp', exclude_columns => '{notes}', mask_columns => '{pin}');
INSERT INTO sc_emp VALUES (1, 100, 'n', '1234');
ALTER TYPE sc_emp_t DROP ATTRIBUTE notes CASCADE;
ALTER TYPE sc_emp_t RENAME ATTRIBUTE salary TO notes CASCADE;
ALTER TYPE sc_emp_t RENAME ATTRIBUTE pin TO pin_old CASCADE;
ALTER TYPE sc_emp_t ADD ATTRIBUTE pin text CASCADE;
UPDATE sc_emp SET notes = 999999, pin = 'visible' WHERE id = 1;
SELECT exclude_columns, mask_columns FROM audit_log.audited_tables WHERE table_name = 'sc_emp';
SELECT command, old_data, new_data FROM audit_log.events
 WHERE object_name = 'public.sc_emp' AND category = 'data' ORDER BY event_id;
SELECT audit_log.disable('sc_emp');
DROP TABLE sc_emp;
DROP TYPE sc_emp_t;

-- 4. A dropped audited table's options are forgotten.
SET ROLE sc_owner;
DROP TABLE sc_users;
DROP TABLE sc_ihc, sc_ih, sc_sneaky;
RESET ROLE;
DROP TABLE sc_parted;
SELECT count(*) AS forgotten FROM audit_log.table_config
 WHERE NOT EXISTS (SELECT 1 FROM pg_class WHERE oid = relid);
SELECT table_name FROM audit_log.audited_tables WHERE table_name LIKE 'sc\_%' ORDER BY 1;

SELECT audit_log.disable('sc_acct');
DROP TABLE sc_acct;
REVOKE CREATE ON SCHEMA public FROM sc_owner;
DO $$ BEGIN EXECUTE format('REVOKE CREATE ON DATABASE %I FROM sc_owner', current_database()); END $$;
DROP ROLE sc_owner;
