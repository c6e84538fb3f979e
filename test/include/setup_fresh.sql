-- setup_fresh: setup.sql on a new extension, for the files that must not
-- see the rules, policies, holds, seals or events of earlier files.
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS audit_log CASCADE;
CREATE EXTENSION audit_log CASCADE;
RESET client_min_messages;
\i test/include/setup.sql
