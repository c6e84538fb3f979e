-- The sample application of the demo: users, roles, user_roles, api_keys.
-- Result sets (the void results of enable() and set_context()) go to
-- /dev/null; echo lines say what happens.  What was recorded is shown by
-- scripts/demo_search.sql.
\o /dev/null
SET client_min_messages = warning;
\echo '   CREATE EXTENSION audit_log'
CREATE EXTENSION audit_log CASCADE;

CREATE SCHEMA app;
CREATE TABLE app.users (
    id            bigint PRIMARY KEY,
    email         text NOT NULL UNIQUE,
    display_name  text,
    password_hash text,
    last_seen     timestamptz
);
CREATE TABLE app.roles (id int PRIMARY KEY, name text NOT NULL UNIQUE);
CREATE TABLE app.user_roles (
    user_id bigint REFERENCES app.users,
    role_id int REFERENCES app.roles,
    PRIMARY KEY (user_id, role_id)
);
CREATE TABLE app.api_keys (
    id         bigint PRIMARY KEY,
    user_id    bigint REFERENCES app.users,
    key_hash   text NOT NULL,
    scopes     text[] NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    revoked_at timestamptz
);

-- Attach auditing: the tables that hold users, roles and keys.
\echo '   enable(): app.users (password_hash masked, last_seen excluded), app.roles, app.user_roles, app.api_keys (key_hash masked)'
SELECT audit_log.enable('app.users', 'privilege',
    event_types => '{"INSERT": "user.created", "UPDATE": "user.updated", "DELETE": "user.deleted"}',
    mask_columns => '{password_hash}', exclude_columns => '{last_seen}');
SELECT audit_log.enable('app.roles', 'privilege');
SELECT audit_log.enable('app.user_roles', 'privilege',
    event_types => '{"INSERT": "user.role_added", "DELETE": "user.role_removed"}');
SELECT audit_log.enable('app.api_keys', 'privilege',
    event_types => '{"INSERT": "api_key.created", "UPDATE": "api_key.updated"}',
    mask_columns => '{key_hash}', when_changed => '{revoked_at,scopes}');

-- A role the application connects as.
\echo '   role app_service: the application''s login, member of audit_log_writer'
CREATE ROLE app_service LOGIN PASSWORD 's3rvice-pass';
GRANT USAGE ON SCHEMA app TO app_service;
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA app TO app_service;
GRANT audit_log_writer TO app_service;

-- A scripted session, as the application would run it: each request sets
-- who is behind the connection for its transaction.
\echo '   four requests of the application as app_service, each with its context (set_context()):'
\echo '     req-0001 admin@example.com creates three roles and three users'
\echo '     req-0002 admin@example.com makes Alice an editor, takes Bob''s role away, renames Alice'
\echo '     req-0003 alice@example.com changes her password, creates an API key, logs api_key.shown'
\echo '     req-0004 support@example.com revokes the key and touches Bob''s last_seen (excluded: not recorded)'
SET ROLE app_service;
BEGIN;
SELECT audit_log.set_context('admin@example.com', 'user', '203.0.113.7', 'Mozilla/5.0', 'acme', 'req-0001');
INSERT INTO app.roles VALUES (1, 'viewer'), (2, 'editor'), (3, 'admin');
INSERT INTO app.users VALUES
    (1, 'admin@example.com', 'Admin', '$argon2id$v=19$admin', now()),
    (2, 'alice@example.com', 'Alice', '$argon2id$v=19$alice', now()),
    (3, 'bob@example.com',   'Bob',   '$argon2id$v=19$bob',   now());
INSERT INTO app.user_roles VALUES (1, 3), (2, 1), (3, 1);
COMMIT;

BEGIN;
SELECT audit_log.set_context('admin@example.com', 'user', '203.0.113.7', 'Mozilla/5.0', 'acme', 'req-0002');
-- Alice is promoted to editor, Bob loses access.
INSERT INTO app.user_roles VALUES (2, 2);
DELETE FROM app.user_roles WHERE user_id = 3;
UPDATE app.users SET display_name = 'Alice Liddell' WHERE id = 2;
COMMIT;

BEGIN;
SELECT audit_log.set_context('alice@example.com', 'user', '198.51.100.23', 'curl/8.5', 'acme', 'req-0003');
-- Alice changes her password (the hash never reaches the audit trail) and creates an API key.
UPDATE app.users SET password_hash = '$argon2id$v=19$alice-2', last_seen = now() WHERE id = 2;
INSERT INTO app.api_keys (id, user_id, key_hash, scopes) VALUES (10, 2, 'sha256:4f1c...', '{read,write}');
SELECT audit_log.log('api_key.shown', object_type => 'api_key', resource_id => '10',
                     details => '{"channel": "web"}') IS NOT NULL AS logged;
COMMIT;

BEGIN;
SELECT audit_log.set_context('support@example.com', 'support', '192.0.2.50', 'Zendesk', 'acme', 'req-0004');
-- Support revokes the key; touching last_seen only is not recorded (excluded column).
UPDATE app.api_keys SET revoked_at = now() WHERE id = 10;
UPDATE app.users SET last_seen = now() WHERE id = 3;
COMMIT;
RESET ROLE;

-- Privileged database changes, captured by the server hooks.
\echo '   a DBA: CREATE ROLE auditor_jane, GRANT audit_log_reader, two ALTER ROLE, GRANT and REVOKE SELECT, ALTER TABLE, CREATE INDEX'
CREATE ROLE auditor_jane LOGIN PASSWORD 'correct horse battery staple';
GRANT audit_log_reader TO auditor_jane;
ALTER ROLE auditor_jane PASSWORD 'another secret';
ALTER ROLE app_service CONNECTION LIMIT 20;
GRANT SELECT ON app.users TO auditor_jane;
REVOKE SELECT ON app.users FROM auditor_jane;
ALTER TABLE app.users ADD COLUMN locale text;
CREATE INDEX users_locale_idx ON app.users (locale);
-- Denied privileged commands: app_service may not create roles nor grant
-- itself more.  Both fail, and both are recorded as failures.
\echo '   app_service tries CREATE ROLE backdoor SUPERUSER and GRANT audit_log_admin TO app_service: both refused'
SET ROLE app_service;
DO $$ BEGIN
    EXECUTE 'CREATE ROLE backdoor SUPERUSER LOGIN';
EXCEPTION WHEN insufficient_privilege THEN
    NULL;  -- refused; recorded as a failure
END $$;
DO $$ BEGIN
    EXECUTE 'GRANT audit_log_admin TO app_service';
EXCEPTION WHEN insufficient_privilege THEN
    NULL;  -- refused; recorded as a failure
END $$;
RESET ROLE;
