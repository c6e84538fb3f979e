-- Table capture: every option of audit_log.enable(), calling it again,
-- disable(), audited_tables, and the audit.enabled / audit.disabled events.
\i test/include/setup.sql
\set SHOW_CONTEXT never

\i test/include/table_events.sql

CREATE TABLE opt_accounts (
    id int PRIMARY KEY,
    email text,
    password_hash text,
    api_token text,
    last_seen timestamptz,
    login_count int,
    notes text
);

-- category and event_types: the table's events take the category and codes
-- given; the codes join audit_log.event_types under that category.
SELECT audit_log.enable('opt_accounts', 'privilege',
    event_types => '{"INSERT": "account.created", "update": "account.changed", "DELETE": "account.removed"}',
    exclude_columns => '{notes}',
    mask_columns => '{password_hash,api_token}',
    when_changed => '{email,password_hash}');
SELECT table_name, category, options, event_types, exclude_columns, mask_columns, when_changed,
       enabled_by = session_user AS by_me
  FROM audit_log.audited_tables WHERE table_name = 'opt_accounts';
SELECT event_type, category, description FROM audit_log.event_types
 WHERE event_type LIKE 'account.%' ORDER BY 1;
SELECT event_type, category, status, object_type, object_name, details
  FROM table_events WHERE event_type = 'audit.enabled' AND object_name = 'public.opt_accounts'
 ORDER BY event_id;

INSERT INTO opt_accounts VALUES (1, 'a@example.com', 'hash-SECRET-1', 'tok-SECRET-1', '2024-01-01 00:00+00', 1, 'note-1');
-- Changes a watched and a masked column: recorded, the value masked.
UPDATE opt_accounts SET password_hash = 'hash-SECRET-2' WHERE id = 1;
-- Changes only unwatched columns: not recorded (when_changed).
UPDATE opt_accounts SET last_seen = '2024-01-02 00:00+00', login_count = 2 WHERE id = 1;
-- Changes a watched column and an unwatched one: recorded with both.
UPDATE opt_accounts SET email = 'b@example.com', login_count = 3 WHERE id = 1;
-- Changes only an excluded column: not recorded.
UPDATE opt_accounts SET notes = 'note-2' WHERE id = 1;
-- A masked token change alone is not watched: not recorded.
UPDATE opt_accounts SET api_token = 'tok-SECRET-2' WHERE id = 1;
DELETE FROM opt_accounts WHERE id = 1;
TRUNCATE opt_accounts;
SELECT event_type, category, command, resource_id, old_data, new_data
  FROM table_events WHERE object_name = 'public.opt_accounts' AND category = 'privilege'
 ORDER BY event_id;

-- The masked values never appear anywhere in audit_log.events, nor the
-- excluded one.
SELECT count(*) AS leaks FROM audit_log.events e
 WHERE e::text LIKE '%SECRET%' OR e::text LIKE '%note-%';

-- Calling enable() again updates the options (and records audit.enabled
-- with updated = true); codes not given fall back to the defaults.
SELECT audit_log.enable('opt_accounts', 'data', event_types => '{"UPDATE": "account.edited"}',
                        mask_columns => '{password_hash}');
-- A code already registered under another category is refused.
SELECT audit_log.enable('opt_accounts', 'app', event_types => '{"UPDATE": "account.edited"}');
SELECT table_name, category, event_types, exclude_columns, mask_columns, when_changed
  FROM audit_log.audited_tables WHERE table_name = 'opt_accounts';
SELECT details ->> 'updated' AS updated, details -> 'event_types' AS event_types
  FROM table_events WHERE event_type = 'audit.enabled' AND object_name = 'public.opt_accounts'
 ORDER BY event_id;
-- One trigger per operation, never duplicated by a second enable().
SELECT tgname FROM pg_trigger WHERE tgrelid = 'opt_accounts'::regclass ORDER BY 1;
INSERT INTO opt_accounts VALUES (2, 'c@example.com', 'hash-SECRET-3', 'tok-visible', NULL, 0, 'now-visible');
UPDATE opt_accounts SET login_count = 1 WHERE id = 2;
DELETE FROM opt_accounts WHERE id = 2;
SELECT event_type, category, command, resource_id, old_data, new_data
  FROM table_events WHERE object_name = 'public.opt_accounts' AND category = 'data'
 ORDER BY event_id;
SELECT count(*) AS leaks FROM audit_log.events e WHERE e::text LIKE '%SECRET%';

-- Masks cover every column kind, a masked NULL included; a masked key
-- column hides resource_id too.
CREATE TABLE opt_keys (secret_id text PRIMARY KEY, payload jsonb, pin int, spare text);
SELECT audit_log.enable('opt_keys', mask_columns => '{secret_id,payload,pin,spare}');
INSERT INTO opt_keys VALUES ('KEY-SECRET-9', '{"k": "SECRET-json"}', 424242, NULL);
UPDATE opt_keys SET pin = 434343, spare = 'SECRET-spare';
SELECT command, resource_id, old_data, new_data FROM table_events
 WHERE object_name = 'public.opt_keys' AND category = 'data' ORDER BY event_id;
SELECT count(*) AS leaks FROM audit_log.events e
 WHERE e::text LIKE '%SECRET%'
    OR (e.old_data, e.new_data, e.details, e.resource_id, e.statement)::text ~ '424242|434343';

-- A masked column renamed after enable() while the event trigger that
-- makes the options follow a rename is disabled (a superuser; recorded):
-- capture fails safe and masks every column, with a WARNING.
ALTER EVENT TRIGGER audit_log_ddl DISABLE;
ALTER TABLE opt_keys RENAME pin TO pin_code;
ALTER EVENT TRIGGER audit_log_ddl ENABLE ALWAYS;
INSERT INTO opt_keys VALUES ('KEY-SECRET-10', NULL, 454545, 'SECRET-x');
SELECT command, resource_id, new_data FROM table_events
 WHERE object_name = 'public.opt_keys' AND category = 'data' ORDER BY event_id DESC LIMIT 1;
-- (the number is looked for where a value can be, not in ids and times)
SELECT count(*) AS leaks FROM audit_log.events e
 WHERE e::text LIKE '%SECRET%'
    OR (e.old_data, e.new_data, e.details, e.resource_id, e.statement)::text LIKE '%454545%';

-- A when_changed column renamed after enable() (event trigger disabled,
-- as above): capture records every update rather than lose them
-- silently, with a WARNING.
CREATE TABLE opt_watch (id int PRIMARY KEY, email text, n int);
SELECT audit_log.enable('opt_watch', when_changed => '{email}');
INSERT INTO opt_watch VALUES (1, 'a@example.com', 1);
UPDATE opt_watch SET n = 2;
ALTER EVENT TRIGGER audit_log_ddl DISABLE;
ALTER TABLE opt_watch RENAME email TO mail;
ALTER EVENT TRIGGER audit_log_ddl ENABLE ALWAYS;
UPDATE opt_watch SET mail = 'b@example.com';
UPDATE opt_watch SET n = 3;
SELECT command, new_data FROM table_events
 WHERE object_name = 'public.opt_watch' AND category = 'data' ORDER BY event_id;

-- An exclude_columns column renamed after enable() (event trigger
-- disabled, as above): a WARNING says its values may now be recorded.
CREATE TABLE opt_excl (id int PRIMARY KEY, notes text);
SELECT audit_log.enable('opt_excl', exclude_columns => '{notes}');
INSERT INTO opt_excl VALUES (1, 'hidden');
ALTER EVENT TRIGGER audit_log_ddl DISABLE;
ALTER TABLE opt_excl RENAME notes TO remarks;
ALTER EVENT TRIGGER audit_log_ddl ENABLE ALWAYS;
INSERT INTO opt_excl VALUES (2, 'renamed');
-- enable() again with the new name restores the exclusion, quietly.
SELECT audit_log.enable('opt_excl', exclude_columns => '{remarks}');
INSERT INTO opt_excl VALUES (3, 'hidden again');
SELECT command, new_data FROM table_events
 WHERE object_name = 'public.opt_excl' AND category = 'data' ORDER BY event_id;

-- disable(): the triggers go, the configuration row goes, audit.disabled
-- is recorded, and later changes are not captured.
SELECT audit_log.disable('opt_accounts');
SELECT count(*) AS triggers FROM pg_trigger WHERE tgrelid = 'opt_accounts'::regclass;
SELECT count(*) AS configured FROM audit_log.audited_tables WHERE table_name = 'opt_accounts';
SELECT event_type, category, object_type, object_name FROM table_events
 WHERE event_type = 'audit.disabled' AND object_name = 'public.opt_accounts';
SELECT count(*) AS before FROM table_events WHERE object_name = 'public.opt_accounts' \gset
INSERT INTO opt_accounts VALUES (3, 'd@example.com');
UPDATE opt_accounts SET email = 'e@example.com';
DELETE FROM opt_accounts;
TRUNCATE opt_accounts;
SELECT count(*) - :before AS new_events FROM table_events WHERE object_name = 'public.opt_accounts';
-- Disabling a table that is not audited is an error.
\set VERBOSITY sqlstate
SELECT audit_log.disable('opt_accounts');
\set VERBOSITY default
-- Enabling again after disable() works from scratch.
SELECT audit_log.enable('opt_accounts');
INSERT INTO opt_accounts VALUES (4, 'f@example.com');
SELECT event_type, resource_id FROM table_events
 WHERE object_name = 'public.opt_accounts' ORDER BY event_id DESC LIMIT 1;

-- Dropping an audited table: it leaves audited_tables.
CREATE TABLE opt_gone (id int PRIMARY KEY);
SELECT audit_log.enable('opt_gone');
DROP TABLE opt_gone;
SELECT count(*) AS listed FROM audit_log.audited_tables WHERE table_name LIKE '%opt_gone%';
