-- Capture leaves the session's sequence state alone: after an audited
-- INSERT, UPDATE, DELETE, DDL or audit_log.log(), lastval() and currval()
-- of every sequence are what they would be without audit_log, for a
-- superuser and for a role with no right on the audit sequence; event ids
-- still come from audit_log.events_event_id_seq, in capture order.
\i test/include/setup.sql
\set SHOW_CONTEXT never

-- The helpers live in a schema of their own: they outlive \c.
CREATE SCHEMA lv_test;
GRANT USAGE ON SCHEMA lv_test TO PUBLIC;
-- try(sql): 'ok: <first column>' or the error's SQLSTATE and message.
CREATE FUNCTION lv_test.try(stmt text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    st text; msg text; r text;
BEGIN
    EXECUTE stmt INTO r;
    RETURN 'ok: ' || coalesce(r, 'null');
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, msg = MESSAGE_TEXT;
    RETURN st || ': ' || msg;
END
$$;


-- seqs(): lastval(), currval() of the application's sequence and currval()
-- of the audit sequence, each as try() reports it.
CREATE FUNCTION lv_test.seqs(app_seq text)
RETURNS TABLE (lastval text, app_currval text, audit_currval text) LANGUAGE sql AS $$
SELECT lv_test.try('SELECT lastval()'),
       lv_test.try(format('SELECT currval(%L)', app_seq)),
       lv_test.try($q$SELECT currval('audit_log.events_event_id_seq') IS NOT NULL$q$)
$$;

CREATE ROLE regress_lv_app;
GRANT audit_log_writer TO regress_lv_app;
CREATE SCHEMA lv_app AUTHORIZATION regress_lv_app;
CREATE TABLE lv_su (id serial PRIMARY KEY, v text);
CREATE TABLE lv_app.items (id serial PRIMARY KEY, v text);
ALTER TABLE lv_app.items OWNER TO regress_lv_app;
SELECT audit_log.enable('lv_su');
SELECT audit_log.enable('lv_app.items');
-- The role has no right on the audit sequence.
SELECT has_sequence_privilege('regress_lv_app', 'audit_log.events_event_id_seq', 'USAGE') AS usage,
       has_sequence_privilege('regress_lv_app', 'audit_log.events_event_id_seq', 'SELECT') AS select,
       has_sequence_privilege('regress_lv_app', 'audit_log.events_event_id_seq', 'UPDATE') AS update;
SELECT coalesce(max(event_id), 0) AS start FROM audit_log.events \gset

-- A fresh session, as superuser: a captured write before any nextval of
-- the session leaves lastval() undefined, with its usual error.
\c
SET timezone = 'UTC';
\set SHOW_CONTEXT never
SELECT audit_log.log('app.lastval_first') > :start AS logged;
SELECT * FROM lv_test.seqs('lv_su_id_seq');
DELETE FROM lv_su;
SELECT * FROM lv_test.seqs('lv_su_id_seq');

-- INSERT (one row, then three), UPDATE, DELETE, DDL, log(): lastval() is
-- the application's last id each time.
INSERT INTO lv_su (v) VALUES ('a');
SELECT * FROM lv_test.seqs('lv_su_id_seq');
INSERT INTO lv_su (v) VALUES ('b'), ('c'), ('d');
SELECT * FROM lv_test.seqs('lv_su_id_seq');
UPDATE lv_su SET v = v || '!';
SELECT * FROM lv_test.seqs('lv_su_id_seq');
DELETE FROM lv_su WHERE id = 1;
SELECT * FROM lv_test.seqs('lv_su_id_seq');
CREATE TABLE lv_su_ddl (x int);
ALTER TABLE lv_su_ddl ADD COLUMN y int;
SELECT * FROM lv_test.seqs('lv_su_id_seq');
SELECT audit_log.log('app.lastval_su') > :start AS logged;
SELECT * FROM lv_test.seqs('lv_su_id_seq');
-- The same in one transaction, and the application's sequence goes on.
BEGIN;
INSERT INTO lv_su (v) VALUES ('e') RETURNING id;
DROP TABLE lv_su_ddl;
SELECT audit_log.log('app.lastval_su_txn') > :start AS logged;
UPDATE lv_su SET v = 'f' WHERE id = 5;
SELECT * FROM lv_test.seqs('lv_su_id_seq');
COMMIT;
SELECT nextval('lv_su_id_seq');

-- A fresh session of the ordinary role: the same, where the old writer's
-- nextval made lastval() fail with "permission denied".
\c
SET timezone = 'UTC';
\set SHOW_CONTEXT never
SET ROLE regress_lv_app;
SELECT audit_log.log('app.lastval_first_role') > :start AS logged;
SELECT * FROM lv_test.seqs('lv_app.items_id_seq');
INSERT INTO lv_app.items (v) VALUES ('a');
SELECT * FROM lv_test.seqs('lv_app.items_id_seq');
INSERT INTO lv_app.items (v) VALUES ('b'), ('c'), ('d');
SELECT * FROM lv_test.seqs('lv_app.items_id_seq');
UPDATE lv_app.items SET v = v || '!';
SELECT * FROM lv_test.seqs('lv_app.items_id_seq');
DELETE FROM lv_app.items WHERE id = 1;
SELECT * FROM lv_test.seqs('lv_app.items_id_seq');
CREATE TABLE lv_app.ddl (x int);
ALTER TABLE lv_app.ddl ADD COLUMN y int;
DROP TABLE lv_app.ddl;
SELECT * FROM lv_test.seqs('lv_app.items_id_seq');
SELECT audit_log.log('app.lastval_role') > :start AS logged;
SELECT * FROM lv_test.seqs('lv_app.items_id_seq');
BEGIN;
INSERT INTO lv_app.items (v) VALUES ('e'), ('f') RETURNING id;
SELECT audit_log.log('app.lastval_role_txn') > :start AS logged;
DELETE FROM lv_app.items WHERE id = 2;
SELECT * FROM lv_test.seqs('lv_app.items_id_seq');
COMMIT;
SELECT nextval('lv_app.items_id_seq');
RESET ROLE;

-- Every one of these was recorded (the writes above were not silently
-- skipped), in capture order: within a transaction ids increase with the
-- rows, and each returned id is the stored one.
SELECT object_name, event_type, count(*) AS events
  FROM audit_log.events
 WHERE event_id > :start
   AND (object_name IN ('public.lv_su', 'lv_app.items', 'public.lv_su_ddl', 'lv_app.ddl')
        OR event_type LIKE 'app.lastval%')
 GROUP BY 1, 2 ORDER BY 1, 2;
SELECT object_name, array_agg(resource_id ORDER BY event_id) AS rows_in_id_order
  FROM audit_log.events
 WHERE event_id > :start AND event_type = 'data.insert'
 GROUP BY 1 ORDER BY 1;
SELECT count(DISTINCT event_id) = count(*) AS unique_ids
  FROM audit_log.events WHERE event_id > :start;
BEGIN;
SELECT audit_log.log('app.order_1') AS o1 \gset
SELECT audit_log.log('app.order_2') AS o2 \gset
INSERT INTO lv_su (v) VALUES ('g'), ('h');
SELECT audit_log.log('app.order_3') AS o3 \gset
SELECT :o1 < :o2 AND :o2 < :o3 AS increasing;
SELECT array_agg(event_type || coalesce(':' || resource_id, '') ORDER BY event_id) AS capture_order,
       bool_and(event_id BETWEEN :o1 AND :o3) AS between_first_and_last
  FROM audit_log.events WHERE txid = txid_current() AND event_id >= :o1;
SELECT event_type FROM audit_log.events WHERE event_id = :o2;
COMMIT;

-- The sequence stays the source of truth: its last_value covers every id,
-- setval() (as a restore does) moves the next id, and nextval() goes on
-- after the ids capture took.
SELECT last_value >= (SELECT max(event_id) FROM audit_log.events) AS covers_all,
       is_called
  FROM audit_log.events_event_id_seq;
SELECT setval('audit_log.events_event_id_seq', (SELECT max(event_id) FROM audit_log.events) + 1000) AS jumped \gset
-- (the worker may take a few ids meanwhile: only bounds are certain)
SELECT audit_log.log('app.after_setval') - :jumped BETWEEN 1 AND 100 AS after_setval;
SELECT setval('audit_log.events_event_id_seq', :jumped + 5000, false) AS jumped \gset
SELECT audit_log.log('app.after_setval_false') AS a1 \gset
SELECT :a1 - :jumped BETWEEN 0 AND 100 AS from_the_set_value,
       audit_log.log('app.after_setval_false') > :a1 AS next_one_after;
SELECT nextval('audit_log.events_event_id_seq') > (SELECT max(event_id) FROM audit_log.events) AS nextval_after_capture;

-- Like nextval(), capture is refused in a read-only transaction.
BEGIN READ ONLY;
SELECT audit_log.log('app.lastval_su');
ROLLBACK;

DROP TABLE lv_su;
DROP SCHEMA lv_app CASCADE;
DROP SCHEMA lv_test CASCADE;
DROP ROLE regress_lv_app;
