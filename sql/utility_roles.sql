-- Utility capture: roles and memberships (ProcessUtility hook).
\i test/include/setup.sql
\i test/include/wait_for.sql
SELECT coalesce(max(event_id), 0) AS start FROM audit_log.events \gset

CREATE ROLE ut_alice LOGIN CREATEDB CONNECTION LIMIT 3;
CREATE USER ut_bob;
CREATE GROUP ut_group;
ALTER ROLE ut_alice NOCREATEDB VALID UNTIL 'infinity';
ALTER ROLE ut_alice RENAME TO ut_alice2;
ALTER ROLE ut_alice2 RENAME TO ut_alice;
GRANT ut_group TO ut_alice, ut_bob WITH ADMIN OPTION;
REVOKE ut_group FROM ut_bob;
ALTER GROUP ut_group ADD USER ut_bob;
ALTER GROUP ut_group DROP USER ut_bob;
CREATE ROLE ut_carol IN ROLE ut_group;
-- nested: DO block and EXECUTE
DO $$ BEGIN EXECUTE 'ALTER ROLE ut_carol CREATEROLE'; END $$;
-- a database privilege (cluster-wide object)
GRANT CREATE ON DATABASE contrib_regression TO ut_carol;
ALTER ROLE ut_carol NOCREATEROLE;
-- rolled back: recorded as a failure through the queue
BEGIN;
CREATE ROLE ut_rolled_back;
ROLLBACK;
-- a failing command: recorded as a failure with the error
CREATE ROLE ut_alice;
-- a failure inside a subtransaction that is caught
DO $$ BEGIN DROP ROLE ut_nobody; EXCEPTION WHEN undefined_object THEN NULL; END $$;
DROP ROLE ut_carol, ut_bob;

SELECT pg_temp.wait_for('role.created', :start, 6) AS created,
       pg_temp.wait_for('role.dropped', :start, 3) AS dropped;
SELECT category, event_type, status, db_user = session_user AS by_me, effective_role,
       object_type, object_name, command, details, statement
  FROM audit_log.events
 WHERE event_id > :start AND category IN ('role', 'privilege')
 ORDER BY status DESC, event_id;

-- SECURITY DEFINER: effective_role is the definer
CREATE ROLE ut_owner CREATEROLE;
CREATE FUNCTION ut_make_role() RETURNS void LANGUAGE sql SECURITY DEFINER
AS $$ CREATE ROLE ut_definer_made $$;
ALTER FUNCTION ut_make_role() OWNER TO ut_owner;
CREATE ROLE ut_caller;
GRANT EXECUTE ON FUNCTION ut_make_role() TO ut_caller;
SELECT coalesce(max(event_id), 0) AS mark FROM audit_log.events \gset
SET ROLE ut_caller;
SELECT ut_make_role();
RESET ROLE;
SELECT event_type, db_user = session_user AS by_me, effective_role, object_name FROM audit_log.events
 WHERE event_id > :mark AND category = 'role' ORDER BY event_id;
DROP FUNCTION ut_make_role();
REVOKE CREATE ON DATABASE contrib_regression FROM ut_carol;
DROP ROLE ut_definer_made, ut_caller, ut_alice, ut_group, ut_owner, ut_carol, ut_bob;
