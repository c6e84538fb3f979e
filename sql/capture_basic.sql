-- Table capture: the basic operations.
\i test/include/setup.sql
CREATE TABLE basic_users (id bigint PRIMARY KEY, email text, password_hash text);
SELECT audit_log.enable('basic_users', 'privilege', mask_columns => '{password_hash}');
INSERT INTO basic_users VALUES (1, 'a@example.com', 'secret-1');
UPDATE basic_users SET email = 'b@example.com' WHERE id = 1;
UPDATE basic_users SET email = email;
DELETE FROM basic_users;
SELECT category, event_type, object_name, resource_id, command, old_data, new_data
  FROM audit_log.events WHERE object_name = 'public.basic_users' ORDER BY event_id;
