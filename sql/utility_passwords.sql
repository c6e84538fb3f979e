-- Passwords never reach the audit tables, in any case, quoted or not.
\i test/include/setup.sql
\i test/include/wait_for.sql
SELECT coalesce(max(event_id), 0) AS start FROM audit_log.events \gset
CREATE ROLE up_user PASSWORD 'Pw0-Create';
alter role up_user password 'pw0-lower';
ALTER USER up_user WITH ENCRYPTED PASSWORD E'Pw0\-Escaped';
ALTER ROLE up_user PaSsWoRd $$Pw0-Dollar$$ VALID UNTIL 'infinity';
ALTER ROLE up_user PASSWORD $tag$Pw0-Tagged$tag$;
ALTER ROLE up_user PASSWORD U&'Pw0-Unicode';
ALTER ROLE up_user PASSWORD NULL;
CREATE ROLE "up_Quoted" PASSWORD 'Pw0-Quoted';
DO $$ BEGIN EXECUTE format('ALTER ROLE up_user PASSWORD %L', 'Pw0-Dynamic'); END $$;
-- a failing one: the error and the statement still carry no secret
ALTER ROLE up_missing PASSWORD 'Pw0-Failed';
CREATE FOREIGN DATA WRAPPER up_fdw;
CREATE SERVER up_srv FOREIGN DATA WRAPPER up_fdw;
CREATE USER MAPPING FOR up_user SERVER up_srv OPTIONS (user 'remote', password 'Pw0-Mapping');
ALTER USER MAPPING FOR up_user SERVER up_srv OPTIONS (SET "password" 'Pw0-Mapping2');
-- a function whose body holds a password
CREATE FUNCTION pg_temp.set_pw() RETURNS void LANGUAGE sql
AS $$ ALTER ROLE up_user PASSWORD 'Pw0-Body' $$;
SELECT pg_temp.wait_for('role.password_changed', :start, 10) AS all_there;
SELECT event_type, status, object_name, details, statement
  FROM audit_log.events
 WHERE event_id > :start AND category IN ('role', 'ddl')
 ORDER BY status DESC, event_id;
SELECT count(*) AS leaks FROM audit_log.events e
 WHERE event_id > :start AND e::text ILIKE '%pw0-%';
SELECT count(*) AS leaks_in_view FROM audit_log.event_log e
 WHERE event_id > :start AND e::text ILIKE '%pw0-%';
SELECT audit_log._redact('CREATE ROLE x PASSWORD ''a''''b'' LOGIN') AS redacted,
       audit_log._redact('SELECT ''kept''') AS untouched;
-- Passwords that do not say "password": a URI's user:password@, a
-- connection string set as a whole (subscription, primary_conninfo), and
-- "password" spelt with escapes the text scan cannot read (U& identifier,
-- E'' escape, a string continued on the next line).  Each secret contains
-- "Hunter2"; no event holds it, and _redact() hides a URI's.
SELECT coalesce(max(event_id), 0) AS uri_start FROM audit_log.events \gset
CREATE SERVER up_srv2 FOREIGN DATA WRAPPER up_fdw;
CREATE USER MAPPING FOR up_user SERVER up_srv2 OPTIONS (user 'bob', U&"p\0061ssword" 'Hunter2-A');
ALTER SERVER up_srv2 OPTIONS (ADD U&"p\0061ssword" 'Hunter2-B');
SET client_min_messages = error;  -- (the warnings of connect = false differ between versions)
CREATE SUBSCRIPTION up_sub_e CONNECTION E'host=h user=rep p\x61ssword=Hunter2-C dbname=x'
    PUBLICATION p WITH (connect = false);
CREATE SUBSCRIPTION up_sub_uri CONNECTION 'postgresql://rep:Hunter2-D@db.example:5432/x'
    PUBLICATION p WITH (connect = false);
RESET client_min_messages;
ALTER SUBSCRIPTION up_sub_uri CONNECTION 'postgresql://rep:Hunter2-E@db.example/x';
ALTER SUBSCRIPTION up_sub_uri CONNECTION 'host=h pass'
    'word=Hunter2-F';
ALTER SYSTEM SET primary_conninfo = 'postgresql://rep:Hunter2-H@primary.example/postgres';
ALTER SYSTEM SET U&"primary_conn\0069nfo" = 'host=h p'
    'assword=Hunter2-I';
ALTER SYSTEM RESET primary_conninfo;
SELECT pg_temp.wait_for('config.system_altered', :uri_start, 3) AS all_there;
SELECT event_type, object_name, details, statement
  FROM audit_log.events
 WHERE event_id > :uri_start AND category IN ('ddl', 'role', 'config')
 ORDER BY event_id;
SELECT count(*) AS leaks FROM audit_log.events e
 WHERE event_id > :uri_start AND e::text ILIKE '%hunter2%';
SELECT audit_log._redact('SELECT dblink_connect(''postgres://rep:Hunter2-G@h/x'')') AS uri_redacted;
ALTER SUBSCRIPTION up_sub_e SET (slot_name = NONE);
ALTER SUBSCRIPTION up_sub_uri SET (slot_name = NONE);
DROP SUBSCRIPTION up_sub_e;
DROP SUBSCRIPTION up_sub_uri;
DROP SERVER up_srv CASCADE;
DROP SERVER up_srv2 CASCADE;
DROP FOREIGN DATA WRAPPER up_fdw;
DROP ROLE up_user, "up_Quoted";
