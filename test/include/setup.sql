-- setup: how every regression file starts.  Times in UTC; the extension,
-- created if no earlier file did (quietly: the output is the same either
-- way), else kept with what earlier files left; :start, the last event_id
-- before this file's own events.
SET timezone = 'UTC';
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS audit_log CASCADE;
RESET client_min_messages;
SELECT coalesce(max(event_id), 0) AS start FROM audit_log.events \gset
