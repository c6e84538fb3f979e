-- Table capture rides the audited transaction: rolled-back work leaves no
-- event, committed work keeps every event.
\i test/include/setup.sql
\set SHOW_CONTEXT never

\i test/include/table_events.sql

CREATE TABLE txn_t (id int PRIMARY KEY, v text, CONSTRAINT v_not_bad CHECK (v <> 'bad'));
SELECT audit_log.enable('txn_t');
CREATE VIEW txn_events AS
SELECT command, resource_id, new_data ->> 'v' AS v FROM table_events
 WHERE object_name = 'public.txn_t' AND category = 'data' ORDER BY event_id;

-- Rollback: no event, for every operation and for log().
BEGIN;
INSERT INTO txn_t VALUES (1, 'rolled back');
UPDATE txn_t SET v = 'rolled back 2';
SELECT audit_log.log('txn.rolled_back') > 0 AS logged;
-- Inside the transaction the events are visible.
SELECT count(*) AS events_in_xact FROM txn_events;
DELETE FROM txn_t;
TRUNCATE txn_t;
ROLLBACK;
SELECT count(*) AS events_after_rollback FROM txn_events;
SELECT count(*) AS logged_after_rollback FROM table_events WHERE event_type = 'txn.rolled_back';

-- Savepoints: the rolled-back part leaves nothing, the rest stays.
BEGIN;
INSERT INTO txn_t VALUES (2, 'kept');
SAVEPOINT s1;
INSERT INTO txn_t VALUES (3, 'undone');
UPDATE txn_t SET v = 'undone too' WHERE id = 2;
SAVEPOINT s2;
DELETE FROM txn_t WHERE id = 3;
ROLLBACK TO SAVEPOINT s1;
INSERT INTO txn_t VALUES (4, 'kept after savepoint');
SAVEPOINT s3;
UPDATE txn_t SET v = 'released' WHERE id = 4;
RELEASE SAVEPOINT s3;
COMMIT;
SELECT * FROM txn_events;

-- A statement that fails part-way (its 2nd row violates a constraint)
-- leaves no event of its earlier rows.
INSERT INTO txn_t VALUES (5, 'fine'), (6, 'bad');
UPDATE txn_t SET v = CASE id WHEN 2 THEN 'bad' ELSE 'x' END;
SELECT * FROM txn_events;

-- An exception caught in PL/pgSQL undoes its block's events only.
DO $$
BEGIN
    INSERT INTO txn_t VALUES (7, 'in do block');
    BEGIN
        INSERT INTO txn_t VALUES (8, 'caught');
        RAISE EXCEPTION 'boom';
    EXCEPTION WHEN OTHERS THEN
        NULL;
    END;
END
$$;
SELECT * FROM txn_events WHERE resource_id IN ('7', '8');

-- A deferred constraint that fails at COMMIT rolls the events back too.
CREATE TABLE txn_parent (id int PRIMARY KEY);
CREATE TABLE txn_child (id int PRIMARY KEY,
    parent int REFERENCES txn_parent DEFERRABLE INITIALLY DEFERRED);
SELECT audit_log.enable('txn_child');
BEGIN;
INSERT INTO txn_child VALUES (1, 999);
COMMIT;
SELECT count(*) AS child_events FROM table_events
 WHERE object_name = 'public.txn_child' AND category = 'data';

-- All events of one transaction share its txid; another transaction has
-- another.
BEGIN;
INSERT INTO txn_t VALUES (20, 'a');
UPDATE txn_t SET v = 'b' WHERE id = 20;
SELECT audit_log.log('txn.same_xact') AS same_id \gset
COMMIT;
INSERT INTO txn_t VALUES (21, 'c');
SELECT count(DISTINCT txid) AS txids,
       count(DISTINCT txid) FILTER (WHERE resource_id = '20' OR event_id = :same_id) AS txids_first_xact
  FROM table_events
 WHERE (object_name = 'public.txn_t' AND resource_id IN ('20', '21')) OR event_id = :same_id;
-- The event's txid is the writing transaction's.
BEGIN;
INSERT INTO txn_t VALUES (22, 'd');
SELECT txid = txid_current() AS txid_matches FROM table_events
 WHERE object_name = 'public.txn_t' AND resource_id = '22';
COMMIT;
