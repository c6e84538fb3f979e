-- The mark that lets the extension's own functions change audit objects
-- (their DDL not captured as a user's, the guards open) never outlives the
-- call that set it: not when the function fails inside a savepoint or an
-- EXCEPTION block and the transaction goes on.
\i test/include/setup.sql
SELECT coalesce(max(event_id), 0) AS start FROM audit_log.events \gset
CREATE ROLE ui_admin IN ROLE audit_log_admin;
CREATE TABLE ui_t2 (id int);
CREATE FUNCTION ui_noop() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NULL; END $$;
CREATE CONSTRAINT TRIGGER audit_log_insert AFTER INSERT ON ui_t2 FOR EACH ROW EXECUTE FUNCTION ui_noop();
CREATE TABLE ui_t3 (id int);
ALTER TABLE ui_t3 OWNER TO ui_admin;
CREATE TABLE ui_aud (id int PRIMARY KEY, v text);
INSERT INTO ui_aud VALUES (1, 'start');
SELECT audit_log.enable('ui_aud');
SELECT audit_log.hold('ui_hold', '2026-01-01', '2026-01-02', 'internal mark test');

-- The attack: an admin's enable() fails in an EXCEPTION block (t2 has a
-- trigger of that name), then a GRANT in the same transaction.
SET ROLE ui_admin;
BEGIN;
DO $$ BEGIN PERFORM audit_log.enable('public.ui_t2'); EXCEPTION WHEN others THEN NULL; END $$;
GRANT SELECT ON public.ui_t3 TO PUBLIC;
COMMIT;
RESET ROLE;

-- Every function that marks its work internal, made to fail inside a
-- savepoint, then a GRANT, a CREATE ROLE and an audited UPDATE.
CREATE FUNCTION pg_temp.after_failure(label text, failing text) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    BEGIN
        EXECUTE failing;
        RAISE EXCEPTION 'did not fail: %', failing;
    EXCEPTION WHEN others THEN
        RAISE NOTICE '% failed: %', label, SQLERRM;
    END;
    EXECUTE format('GRANT SELECT ON public.ui_t3 TO %I', 'audit_log_reader');
    EXECUTE format('REVOKE SELECT ON public.ui_t3 FROM %I', 'audit_log_reader');
    EXECUTE format('CREATE ROLE %I', 'ui_' || label);
    UPDATE public.ui_aud SET v = label WHERE id = 1;
END $$;
SELECT pg_temp.after_failure('enable', $$SELECT audit_log.enable('public.ui_t3', 'nope')$$);
SELECT pg_temp.after_failure('disable', $$SELECT audit_log.disable('public.ui_t3')$$);
SELECT pg_temp.after_failure('set_retention', $$SELECT audit_log.set_retention('ui', '-1 day')$$);
SELECT pg_temp.after_failure('hold', $$SELECT audit_log.hold('ui_hold', '2026-01-01', '2026-01-02', 'again')$$);
SELECT pg_temp.after_failure('release', $$SELECT audit_log.release('ui_no_such_hold')$$);
SELECT pg_temp.after_failure('maintain', $$SELECT audit_log.maintain('infinity')$$);
SELECT pg_temp.after_failure('seal', $$SELECT audit_log.seal('infinity')$$);
SELECT pg_temp.after_failure('create_partition', $$SELECT audit_log._create_partition('infinity')$$);
SELECT pg_temp.after_failure('index_leaf', $$SELECT audit_log._index_leaf(0)$$);
-- The same with a savepoint of the client, in one transaction.
BEGIN;
SAVEPOINT s;
SELECT audit_log.enable('public.ui_t2');
ROLLBACK TO SAVEPOINT s;
GRANT SELECT ON public.ui_t3 TO audit_log_admin;
CREATE ROLE ui_savepoint;
UPDATE ui_aud SET v = 'savepoint' WHERE id = 1;
COMMIT;

-- Every GRANT, CREATE ROLE and UPDATE after a failure is recorded.
SELECT event_type, object_name, command, new_data
  FROM audit_log.events
 WHERE event_id > :start
   AND (event_type IN ('privilege.granted', 'privilege.revoked', 'role.created')
        OR (event_type = 'data.update' AND object_name = 'public.ui_aud'))
   AND object_name IS DISTINCT FROM 'ui_admin'
 ORDER BY event_id;
-- The hidden setting is off again, and nobody but a superuser may set it.
SELECT current_setting('audit_log.internal') AS internal;
SET ROLE ui_admin;
SET audit_log.internal = on;
RESET ROLE;
-- The attack through PostgreSQL 15's GRANT SET ON PARAMETER: a grant of SET
-- does not let a role turn the guard off, nor claim to be restoring a dump.
CREATE TABLE ui_granted (id int PRIMARY KEY);
SELECT audit_log.enable('ui_granted');
GRANT INSERT ON ui_granted TO ui_admin;
GRANT SET ON PARAMETER audit_log.internal, audit_log.restore TO ui_admin;
SET ROLE ui_admin;
SELECT set_config('audit_log.internal', 'on', false);
SET audit_log.internal = on;
SELECT set_config('audit_log.restore', 'on', false);
SELECT current_setting('audit_log.internal') AS internal, current_setting('audit_log.restore') AS restore;
INSERT INTO ui_granted VALUES (1);
RESET ROLE;
REVOKE SET ON PARAMETER audit_log.internal, audit_log.restore FROM ui_admin;
SELECT event_type, object_name, new_data FROM audit_log.events
 WHERE event_id > :start AND object_name = 'public.ui_granted' AND category = 'data' ORDER BY event_id;
-- A superuser still may (the SET clause of the extension's functions).
SET audit_log.internal = on;
RESET audit_log.internal;

SELECT audit_log.release('ui_hold');
SELECT audit_log.disable('ui_aud');
SELECT audit_log.disable('ui_granted');
DROP TABLE ui_t2, ui_t3, ui_aud, ui_granted;
DROP FUNCTION ui_noop();
DROP ROLE ui_admin, ui_enable, ui_disable, ui_set_retention, ui_hold, ui_release, ui_maintain,
    ui_seal, ui_create_partition, ui_index_leaf, ui_savepoint;
