-- Privileges: nobody writes audit_log.events or its partitions, PUBLIC
-- gets nothing, audit_log_reader reads, audit_log_admin enables.
\i test/include/setup.sql
\set SHOW_CONTEXT never

\i test/include/table_events.sql

\i test/include/try.sql
-- errors without their hints here
SET regress.try_hint = off;
GRANT EXECUTE ON FUNCTION pg_temp.try(text) TO PUBLIC;

-- try_writes(): every kind of write on the events table and a partition.
CREATE FUNCTION pg_temp.try_writes() RETURNS TABLE (stmt text, result text) LANGUAGE sql AS $$
SELECT s, pg_temp.try(s) FROM unnest(ARRAY[
    $q$INSERT INTO audit_log.events (event_id, occurred_at, category, event_type, status) VALUES (-1, now(), 'app', 'app.forged', 'success')$q$,
    $q$UPDATE audit_log.events SET actor = 'forged'$q$,
    $q$DELETE FROM audit_log.events$q$,
    $q$TRUNCATE audit_log.events$q$,
    $q$INSERT INTO audit_log.events_default (event_id, occurred_at, category, event_type, status) VALUES (-1, now(), 'app', 'app.forged', 'success')$q$,
    $q$UPDATE audit_log.events_default SET actor = 'forged'$q$,
    $q$DELETE FROM audit_log.events_default$q$,
    $q$TRUNCATE audit_log.events_default$q$,
    $q$SELECT audit_log._record('app', 'app.forged', 'success', NULL, NULL, NULL, NULL)$q$,
    $q$SET audit_log.internal = on$q$,
    $q$SELECT nextval('audit_log.events_event_id_seq')$q$,
    $q$UPDATE audit_log.table_config SET mask_columns = '{}'$q$,
    $q$DELETE FROM audit_log.event_type_catalog WHERE NOT builtin$q$
]) AS s
$$;
GRANT EXECUTE ON FUNCTION pg_temp.try_writes() TO PUBLIC;

CREATE TABLE priv_t (id int PRIMARY KEY, v text);
SELECT audit_log.enable('priv_t');
INSERT INTO priv_t VALUES (1, 'x');
SELECT count(*) AS initial_events FROM table_events \gset
SELECT coalesce(max(event_id), 0) AS start FROM audit_log.events \gset

-- No role has a write privilege on the events table or a partition, the
-- owner included; the only grants are SELECT to the owner (and, from
-- PostgreSQL 17, the owner's MAINTAIN: VACUUM, ANALYZE, REINDEX, CLUSTER,
-- LOCK, which change no row).
SELECT c.relname ~ '^events_p[0-9]{8}$' AS daily, c.relname, a.privilege_type
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace, aclexplode(c.relacl) a
 WHERE n.nspname = 'audit_log' AND (c.relname = 'events' OR c.relname LIKE 'events\_%')
   AND c.relkind IN ('r', 'p') AND a.privilege_type <> 'SELECT'
   AND NOT (a.privilege_type = 'MAINTAIN' AND a.grantee = c.relowner);
SELECT DISTINCT a.privilege_type, a.grantee = c.relowner AS to_owner
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace, aclexplode(c.relacl) a
 WHERE n.nspname = 'audit_log' AND (c.relname = 'events' OR c.relname LIKE 'events\_%')
   AND c.relkind IN ('r', 'p') AND NOT (a.privilege_type = 'MAINTAIN' AND a.grantee = c.relowner);
-- Every partition has an ACL (none falls back to the owner's defaults).
SELECT count(*) AS without_acl FROM pg_class c JOIN pg_inherits i ON i.inhrelid = c.oid
 WHERE i.inhparent = 'audit_log.events'::regclass AND c.relacl IS NULL;

-- PUBLIC gets nothing: no privilege on any object of the schema.
SELECT 'schema' AS kind, n.nspname AS object, a.privilege_type
  FROM pg_namespace n, aclexplode(n.nspacl) a WHERE n.nspname = 'audit_log' AND a.grantee = 0
UNION ALL
SELECT 'relation', c.relname, a.privilege_type
  FROM pg_class c, aclexplode(coalesce(c.relacl, acldefault('r', c.relowner))) a
 WHERE c.relnamespace = 'audit_log'::regnamespace AND a.grantee = 0
UNION ALL
SELECT 'function', p.oid::regprocedure::text, a.privilege_type
  FROM pg_proc p, aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) a
 WHERE p.pronamespace = 'audit_log'::regnamespace AND a.grantee = 0
ORDER BY 1, 2, 3;
-- Every SECURITY DEFINER function pins its search_path.
SELECT p.oid::regprocedure AS unpinned FROM pg_proc p
 WHERE p.pronamespace = 'audit_log'::regnamespace AND p.prosecdef
   AND NOT coalesce(p.proconfig @> '{"search_path=pg_catalog, pg_temp"}', false);

-- The owner of an audited table (not a superuser) can write nothing.
CREATE ROLE priv_owner NOLOGIN;
CREATE TABLE priv_owned (id int PRIMARY KEY);
ALTER TABLE priv_owned OWNER TO priv_owner;
SELECT audit_log.enable('priv_owned');
GRANT USAGE ON SCHEMA audit_log TO priv_owner;   -- even with the schema open
SET ROLE priv_owner;
SELECT * FROM pg_temp.try_writes();
-- It cannot attach the capture function by hand with forged arguments.
SELECT pg_temp.try($$CREATE TRIGGER forged AFTER INSERT ON priv_owned FOR EACH STATEMENT
    EXECUTE FUNCTION audit_log.capture('audit', 'audit.enabled', 'x', 'x', 'x', '{}', '{}', '{}')$$);
-- Nor enable or disable auditing.
SELECT pg_temp.try($$SELECT audit_log.disable('priv_owned')$$);
SELECT pg_temp.try($$SELECT audit_log.enable('priv_owned', mask_columns => '{id}')$$);
-- Its own writes to the audited table are captured.
INSERT INTO priv_owned VALUES (1);
RESET ROLE;
REVOKE USAGE ON SCHEMA audit_log FROM priv_owner;

-- An ordinary role: nothing either.
CREATE ROLE priv_plain NOLOGIN;
SET ROLE priv_plain;
SELECT * FROM pg_temp.try_writes();
SELECT pg_temp.try($$SELECT count(*) FROM audit_log.events$$);
SELECT pg_temp.try($$SELECT count(*) FROM audit_log.event_log$$);
SELECT pg_temp.try($$SELECT audit_log.enable('priv_t')$$);
RESET ROLE;

-- audit_log_reader reads the views but cannot enable, disable or write.
CREATE ROLE priv_reader NOLOGIN IN ROLE audit_log_reader;
SET ROLE priv_reader;
SELECT count(*) > 0 AS reads_event_log FROM audit_log.event_log;
SELECT count(*) > 0 AS reads_event_types FROM audit_log.event_types;
SELECT count(*) > 0 AS reads_audited_tables FROM audit_log.audited_tables;
SELECT count(*) = 1 AS reads_status FROM audit_log.status;
SELECT pg_temp.try($$SELECT audit_log.enable('priv_t', 'app')$$);
SELECT pg_temp.try($$SELECT audit_log.disable('priv_t')$$);
SELECT pg_temp.try($$SELECT audit_log.log('user.x')$$);
SELECT * FROM pg_temp.try_writes();
RESET ROLE;

-- audit_log_admin enables and disables.
CREATE ROLE priv_admin NOLOGIN IN ROLE audit_log_admin;
SET ROLE priv_admin;
SELECT pg_temp.try($$SELECT audit_log.enable('priv_t', 'app')$$);
SELECT pg_temp.try($$SELECT audit_log.disable('priv_t')$$);
SELECT * FROM pg_temp.try_writes();
RESET ROLE;
SELECT event_type, db_user = session_user AS db_user_is_session, effective_role FROM table_events
 WHERE object_name = 'public.priv_t' AND category = 'audit' ORDER BY event_id;

-- Each refused write is an audit.tamper_attempt failure: 8 each for the
-- owner, the reader and the admin, and the 2 TRUNCATEs of the ordinary role
-- (refused before PostgreSQL checks the schema; its DML never gets that far).
-- Failures are written by the worker, after their transaction: wait for
-- all 26 before looking.
\i test/include/wait_for.sql
SELECT pg_temp.wait_for('audit.tamper_attempt', :start, 26) AS tamper_attempts_arrived;
SELECT effective_role, command, status, object_name, count(*)
  FROM audit_log.events WHERE event_type = 'audit.tamper_attempt' AND event_id > :start
 GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4;

-- Nothing was forged, changed or removed: only the expected new events
-- (the 18 INSERT/UPDATE/DELETE attempts, the owner's INSERT, enable and
-- disable by the admin).
SELECT count(*) AS forged FROM audit_log.events WHERE event_type = 'app.forged' OR actor = 'forged';
SELECT count(*) - :initial_events AS new_events FROM table_events;
SELECT command, resource_id, effective_role FROM table_events
 WHERE object_name = 'public.priv_owned' AND category = 'data';
