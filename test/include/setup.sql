-- setup: how every regression file starts.  Times in UTC; the extension,
-- created if no earlier file did (quietly: the output is the same either
-- way), else kept with what earlier files left.
SET timezone = 'UTC';
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS audit_log CASCADE;
RESET client_min_messages;
