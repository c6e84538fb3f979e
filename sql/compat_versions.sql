-- The code paths that differ between PostgreSQL versions (src/compat.h),
-- each with the answer 15 gives: the suite passes unchanged on 15 and 18.
\i test/include/setup.sql
\i test/include/wait_for.sql
SELECT coalesce(max(event_id), 0) AS start FROM audit_log.events \gset

-- GRANT ... WITH ADMIN OPTION and REVOKE ADMIN OPTION FOR (GrantRoleStmt's
-- admin_opt of 15, the "admin" option of 16 and later): admin_option true;
-- a plain GRANT and REVOKE: false.
CREATE ROLE ver_group;
CREATE ROLE ver_member;
GRANT ver_group TO ver_member;
REVOKE ver_group FROM ver_member;
GRANT ver_group TO ver_member WITH ADMIN OPTION;
REVOKE ADMIN OPTION FOR ver_group FROM ver_member;
SELECT pg_temp.wait_for('role.membership_revoked', :start, 2) AS arrived;
SELECT event_type, details->>'member' AS member, details->'admin_option' AS admin_option, statement
  FROM audit_log.events
 WHERE event_id > :start AND event_type LIKE 'role.membership_%' ORDER BY event_id;

-- REVOKE ... OPTION FOR revokes one option, not the membership: 16 added
-- INHERIT and SET (REVOKE SET OPTION FOR there; REVOKE ADMIN OPTION FOR on
-- 15): role.membership_revoked says which option, and the member stays.
SELECT coalesce(max(event_id), 0) AS opt_start FROM audit_log.events \gset
DO $$
BEGIN
    IF current_setting('server_version_num')::int >= 160000 THEN
        EXECUTE 'REVOKE SET OPTION FOR ver_group FROM ver_member';
    ELSE
        EXECUTE 'REVOKE ADMIN OPTION FOR ver_group FROM ver_member';
    END IF;
END $$;
SELECT pg_temp.wait_for('role.membership_revoked', :opt_start, 1) AS arrived;
SELECT e.event_type, e.details->>'member' AS member,
       e.details->>'option_revoked' = CASE WHEN current_setting('server_version_num')::int >= 160000
                                         THEN 'set' ELSE 'admin' END AS option_named,
       pg_has_role('ver_member', 'ver_group', 'MEMBER') AS still_member
  FROM audit_log.events e
 WHERE e.event_id > :opt_start AND e.event_type = 'role.membership_revoked' ORDER BY e.event_id;

-- A DEFERRABLE primary key identifies no row (RelationGetPrimaryKeyIndex of
-- 15, deferrable_ok = false on 18): resource_id stays NULL; an immediate
-- one gives it.
CREATE TABLE ver_deferrable (id int PRIMARY KEY DEFERRABLE INITIALLY DEFERRED, v text);
CREATE TABLE ver_immediate (id int PRIMARY KEY, v text);
SELECT audit_log.enable('ver_deferrable'), audit_log.enable('ver_immediate');
INSERT INTO ver_deferrable VALUES (1, 'a');
INSERT INTO ver_immediate VALUES (1, 'a');
SELECT object_name, event_type, resource_id FROM audit_log.events
 WHERE event_id > :start AND object_name IN ('public.ver_deferrable', 'public.ver_immediate')
   AND event_type = 'data.insert'
 ORDER BY object_name;

-- The writer routes rows to their partition (the root-to-partition map of
-- 15, ExecGetRootToChildMap() of 16 and later; the range table and its
-- permission info of each version) and compresses large row images (LZ4,
-- or pglz without it): read back whole.  (The executor hook's permission
-- infos are checked by capture_privileges: writes to the events table are
-- refused and recorded as tamper attempts.)
CREATE TABLE ver_big (id int PRIMARY KEY, body text);
SELECT audit_log.enable('ver_big');
INSERT INTO ver_big VALUES (1, repeat('x', 5000));
SELECT length(new_data->>'body') AS body_length FROM audit_log.events
 WHERE event_id > :start AND object_name = 'public.ver_big' AND event_type = 'data.insert';

-- Statements that name a password are stored with every string literal
-- redacted, whatever its kind (the scanner's token numbers differ between
-- versions and are learnt at run time).
ALTER ROLE ver_member PASSWORD 'ver-secret-1';
ALTER ROLE ver_member PASSWORD E'ver-secret-2' VALID UNTIL '2100-01-01';
SELECT statement FROM audit_log.events
 WHERE event_id > :start AND object_name = 'ver_member' AND event_type = 'role.password_changed'
 ORDER BY event_id;

-- A CREATEROLE role that is not a superuser cannot take or change the
-- extension's roles: 15 lets CREATEROLE administer every such role, and
-- audit_log refuses it (42501, recorded as audit.tamper_attempt); 16 and
-- later ask for the ADMIN OPTION, which PostgreSQL refuses itself (42501,
-- not recorded by audit_log).  Either way every attack fails with 42501 and
-- changes nothing.  The same holds for a member of the roles (ver_alice),
-- whose password would open them.  A role given the ADMIN OPTION by a
-- superuser may grant.
SELECT coalesce(max(event_id), 0) AS cr_start FROM audit_log.events \gset
CREATE ROLE ver_cr CREATEROLE;
CREATE ROLE ver_admin_holder CREATEROLE;
CREATE ROLE ver_alice LOGIN IN ROLE audit_log_admin;
GRANT audit_log_reader TO ver_admin_holder WITH ADMIN OPTION;
CREATE FUNCTION pg_temp.attempt(stmt text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE stmt;
    RETURN 'done';
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE;
END $$;
SET ROLE ver_cr;
SELECT s AS attack, pg_temp.attempt(s) AS sqlstate
  FROM unnest(ARRAY[
    'GRANT audit_log_admin TO ver_cr',
    'CREATE ROLE ver_evil IN ROLE audit_log_admin',
    'ALTER GROUP audit_log_admin ADD USER ver_cr',
    'ALTER ROLE audit_log_admin LOGIN PASSWORD ''ver-x''',
    'ALTER ROLE audit_log_admin SET search_path = public',
    'ALTER ROLE audit_log_writer RENAME TO ver_writer',
    'REVOKE audit_log_reader FROM audit_log_admin',
    'DROP ROLE audit_log_reader',
    'ALTER ROLE ver_alice PASSWORD ''ver-y''',
    'GRANT ver_alice TO ver_cr']) WITH ORDINALITY AS a(s, n)
 ORDER BY n;
RESET ROLE;
SET ROLE ver_admin_holder;
GRANT audit_log_reader TO ver_cr;
RESET ROLE;
SELECT r.rolname, r.rolcanlogin, r.rolconfig,
       pg_has_role('ver_cr', r.oid, 'MEMBER') AS ver_cr_member,
       pg_has_role('audit_log_admin', 'audit_log_reader', 'MEMBER') AS admin_reads
  FROM pg_roles r WHERE r.rolname LIKE 'audit\_log\_%' ORDER BY r.rolname;
SELECT count(*) AS ver_evil FROM pg_roles WHERE rolname = 'ver_evil';
SELECT rolpassword IS NULL AS alice_no_password, pg_has_role('ver_cr', 'ver_alice', 'MEMBER') AS ver_cr_alice
  FROM pg_authid WHERE rolname = 'ver_alice';
-- 15 recorded the ten attempts, as tamper attempts on the roles
SELECT current_setting('server_version_num')::int >= 160000 OR
       pg_temp.wait_for('audit.tamper_attempt', :cr_start, 10) AS arrived;
SELECT count(*) = CASE WHEN current_setting('server_version_num')::int >= 160000 THEN 0 ELSE 10 END
       AS tamper_recorded,
       count(*) FILTER (WHERE object_type = 'role' AND status = 'failure' AND effective_role = 'ver_cr')
         = count(*) AS all_on_roles
  FROM audit_log.events WHERE event_id > :cr_start AND event_type = 'audit.tamper_attempt';
DROP ROLE ver_cr, ver_admin_holder, ver_alice;

DROP TABLE ver_deferrable, ver_immediate, ver_big;
DROP ROLE ver_member, ver_group;
