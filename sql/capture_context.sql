-- Context settings, audit_log.set_context(), their fallbacks, and
-- application events with audit_log.log().
\i test/include/setup.sql
\set SHOW_CONTEXT never

\i test/include/table_events.sql

\i test/include/try.sql
\i test/include/wait_for.sql

CREATE TABLE ctx_t (id int PRIMARY KEY, v text);
SELECT audit_log.enable('ctx_t');
CREATE VIEW ctx_events AS
SELECT resource_id, actor, actor_type, db_user = session_user AS db_user_is_session,
       effective_role, client_addr, user_agent, tenant, request_id,
       application_name, database = current_database() AS in_this_db
  FROM table_events WHERE object_name = 'public.ctx_t' ORDER BY event_id;

-- No context: actor = session_user, actor_type db_role, no address on a
-- unix socket.
SET application_name = 'ctx_test';
INSERT INTO ctx_t VALUES (1, 'none');
SELECT resource_id, actor = session_user AS actor_is_session, actor_type, db_user_is_session,
       effective_role = current_user AS role_is_current, client_addr, user_agent, tenant,
       request_id, application_name, in_this_db
  FROM ctx_events WHERE resource_id = '1';

-- SET LOCAL: for one transaction only.  actor without actor_type gives
-- actor_type user.
BEGIN;
SET LOCAL audit_log.actor = 'alice@example.com';
SET LOCAL audit_log.client_addr = '203.0.113.7';
SET LOCAL audit_log.user_agent = 'Mozilla/5.0';
SET LOCAL audit_log.tenant = 'acme';
SET LOCAL audit_log.request_id = 'req-42';
INSERT INTO ctx_t VALUES (2, 'set local');
COMMIT;
INSERT INTO ctx_t VALUES (3, 'after commit');
SELECT resource_id, actor, actor_type, db_user_is_session, client_addr, user_agent, tenant, request_id
  FROM ctx_events WHERE resource_id IN ('2', '3') ORDER BY resource_id;

-- set_config(..., true) is the same as SET LOCAL.
BEGIN;
SELECT set_config('audit_log.actor', 'bob', true), set_config('audit_log.actor_type', 'api_client', true);
INSERT INTO ctx_t VALUES (4, 'set_config');
COMMIT;
SELECT resource_id, actor, actor_type FROM ctx_events WHERE resource_id = '4';

-- set_context(): every field, transaction-local; NULLs fall back.
BEGIN;
SELECT audit_log.set_context('carol', 'support', '2001:db8::1', 'curl/8', 'globex', 'req-7');
INSERT INTO ctx_t VALUES (5, 'set_context');
SELECT audit_log.set_context('dave');
INSERT INTO ctx_t VALUES (6, 'set_context again');
COMMIT;
INSERT INTO ctx_t VALUES (7, 'after set_context');
SELECT resource_id, actor, actor_type, client_addr, user_agent, tenant, request_id
  FROM ctx_events WHERE resource_id IN ('5', '6', '7') ORDER BY resource_id;
SELECT current_setting('audit_log.actor') AS actor_after_commit;
-- Outside a transaction block set_context() lasts for its statement only.
SELECT audit_log.set_context('erin', 'system');
INSERT INTO ctx_t VALUES (8, 'autocommit');
SELECT resource_id, actor, actor_type FROM ctx_events WHERE resource_id = '8';

-- The context is a claim: db_user stays the real session user, and
-- effective_role shows SET ROLE.
CREATE ROLE ctx_app NOLOGIN;
GRANT ALL ON ctx_t TO ctx_app;
BEGIN;
SET LOCAL ROLE ctx_app;
SET LOCAL audit_log.actor = 'postgres-impersonator';
INSERT INTO ctx_t VALUES (9, 'as ctx_app');
COMMIT;
SELECT resource_id, actor, db_user_is_session, effective_role FROM ctx_events WHERE resource_id = '9';

-- An address that is not an address is an error when it is set, and the
-- setting keeps its value.
SELECT pg_temp.try($$SET audit_log.client_addr = 'not-an-ip'$$);
SELECT pg_temp.try($$SET audit_log.client_addr = '300.1.1.1'$$);
SELECT pg_temp.try($$SELECT set_config('audit_log.client_addr', 'localhost', true)$$);
SELECT pg_temp.try($$SELECT audit_log.set_context('x', client_addr => 'nope')$$);
SELECT current_setting('audit_log.client_addr') AS client_addr_setting;
-- A network with a mask is an address too.
BEGIN;
SET LOCAL audit_log.client_addr = '10.0.0.0/8';
INSERT INTO ctx_t VALUES (10, 'cidr');
COMMIT;
SELECT resource_id, client_addr FROM ctx_events WHERE resource_id = '10';

-- audit_log.log(): returns the event_id; category from the code's prefix
-- when it names a category, else app; status success by default.
SELECT audit_log.log('user.api_key_created', object_type => 'api_key', object_name => 'key-1',
                     resource_id => '17', details => '{"scopes": ["read"]}') AS id1 \gset
SELECT event_id = :id1 AS returned_id, category, event_type, status, object_type, object_name,
       resource_id, command, details, actor = session_user AS actor_is_session, actor_type
  FROM table_events WHERE event_id = :id1;
BEGIN;
SELECT audit_log.set_context('frank', 'user', '198.51.100.2');
SELECT audit_log.log('privilege.export_requested', 'failure') AS id2 \gset
COMMIT;
SELECT audit_log.log('data.exported') AS id3 \gset
SELECT audit_log.log('auth.mfa_failed', 'failure') AS id4 \gset
SELECT audit_log.log('apps.x.y') AS id5 \gset
SELECT event_id > :id1 AS increasing, category, event_type, status, actor, actor_type, client_addr
  FROM table_events WHERE event_id IN (:id2, :id3, :id4, :id5) ORDER BY event_id;
-- New application codes join audit_log.event_types.
SELECT event_type, category, description FROM audit_log.event_types
 WHERE event_type IN ('user.api_key_created', 'privilege.export_requested', 'data.exported',
                      'auth.mfa_failed', 'apps.x.y') ORDER BY 1;
-- Bad input: status, malformed codes, codes reserved for the extension.
SELECT count(*) AS before FROM table_events \gset
SELECT pg_temp.try($$SELECT audit_log.log('user.x', 'ok')$$);
SELECT pg_temp.try($$SELECT audit_log.log('user.x', NULL)$$);
SELECT pg_temp.try($$SELECT audit_log.log('user.x', 'SUCCESS')$$);
SELECT pg_temp.try($$SELECT audit_log.log('UserLoggedIn')$$);
SELECT pg_temp.try($$SELECT audit_log.log('user')$$);
SELECT pg_temp.try($$SELECT audit_log.log('user.')$$);
SELECT pg_temp.try($$SELECT audit_log.log(NULL)$$);
SELECT pg_temp.try($$SELECT audit_log.log('role.created')$$);
SELECT pg_temp.try($$SELECT audit_log.log('auth.login_failed', 'failure')$$);
SELECT pg_temp.try($$SELECT audit_log.log('data.insert')$$);
SELECT pg_temp.try($$SELECT audit_log.log('audit.purged')$$);
-- The audit category is the trail's own: a new audit.* code would read as
-- the extension's (in privileged_changes, too).
SELECT pg_temp.try($$SELECT audit_log.log('audit.seal_checked')$$);
SELECT count(*) - :before AS new_events FROM table_events;
SELECT count(*) AS new_codes FROM audit_log.event_types WHERE event_type IN ('user.x', 'user', 'audit.seal_checked');

-- The attack on the seal chain: an event too large for its seal digest
-- (one JSON array of its columns, which PostgreSQL cannot build past 256 MB)
-- would stop every later window from being sealed.  Refused (54000) past
-- 64 MB, whether logged or captured from a table; nothing is stored.
SELECT regexp_replace(pg_temp.try($$SELECT audit_log.log('user.huge', object_name => repeat('x', 65 * 1024 * 1024))$$),
                      '[0-9]+ bytes', 'N bytes') AS refused;
CREATE TABLE ctx_big (id int PRIMARY KEY, blob text);
SELECT count(*) AS enabled FROM (SELECT audit_log.enable('ctx_big')) e;
SELECT regexp_replace(pg_temp.try($$INSERT INTO ctx_big VALUES (1, repeat('y', 40 * 1024 * 1024) || repeat('z', 30 * 1024 * 1024))$$),
                      '[0-9]+ bytes', 'N bytes') AS refused;
SELECT count(*) AS big_rows FROM ctx_big;
SELECT count(*) AS disabled FROM (SELECT audit_log.disable('ctx_big')) d;
DROP TABLE ctx_big;

-- Who may call log() and set_context(): audit_log_writer, not PUBLIC.
CREATE ROLE ctx_plain NOLOGIN;
CREATE ROLE ctx_writer NOLOGIN IN ROLE audit_log_writer;
SET ROLE ctx_plain;
SELECT pg_temp.try($$SELECT audit_log.log('user.x')$$);
SELECT pg_temp.try($$SELECT audit_log.set_context('x')$$);
RESET ROLE;
SET ROLE ctx_writer;
SELECT audit_log.log('user.by_writer') > 0 AS logged;
RESET ROLE;
SELECT event_type, category, effective_role FROM table_events WHERE event_type = 'user.by_writer';

-- The attack: a superuser becomes another role with SET SESSION
-- AUTHORIZATION and acts as it.  db_user stays session_user (the role it
-- became), but the switch is recorded and every event after it names the
-- role that logged in (details.authenticated_user); a failed switch is a
-- failure; nothing is added once the session is itself again.
CREATE ROLE ctx_mallory NOLOGIN;
GRANT CREATE ON SCHEMA public TO ctx_mallory;
GRANT INSERT ON ctx_t TO ctx_mallory;
SELECT coalesce(max(event_id), 0) AS sa_start FROM audit_log.events \gset
SET SESSION AUTHORIZATION ctx_mallory;
CREATE TABLE ctx_mallory_t (a int);
INSERT INTO ctx_t VALUES (900, 'as mallory');
SET SESSION AUTHORIZATION ctx_writer;
RESET SESSION AUTHORIZATION;
SELECT pg_temp.try($$SET SESSION AUTHORIZATION ctx_nosuch$$);
BEGIN;
SET LOCAL SESSION AUTHORIZATION ctx_plain;
COMMIT;
DROP TABLE ctx_mallory_t;
SELECT pg_temp.wait_for('auth.session_authorization_set', :sa_start, 5) AS all_there;
SELECT event_type, status, actor, db_user, effective_role, object_name,
       details - 'sqlstate' AS details
  FROM audit_log.events
 WHERE event_id > :sa_start AND category IN ('auth', 'ddl', 'data')
 ORDER BY status DESC, event_id;
REVOKE CREATE ON SCHEMA public FROM ctx_mallory;
REVOKE INSERT ON ctx_t FROM ctx_mallory;
DROP ROLE ctx_mallory;
