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

DROP TABLE ver_deferrable, ver_immediate, ver_big;
DROP ROLE ver_member, ver_group;
