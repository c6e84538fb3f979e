-- Searches of the demo, as a security analyst would run them.  Each is
-- printed under a heading; nothing else is printed.
SET timezone = 'UTC';
\pset footer off

\echo
\echo '--- Everything alice@example.com did, or was done as her (search(usernames => ...)):'
SELECT event_id, category, event_type, actor, object_name, resource_id, changed_columns
  FROM audit_log.search(usernames => '{alice@example.com}');

\echo '--- Role grants and removals in the application (search(event_types => ...)):'
SELECT event_type, actor, object_name, resource_id, new_data, old_data
  FROM audit_log.search(event_types => '{user.role_added,user.role_removed}');

\echo '--- Privileged database changes (roles, privileges, configuration, schema), failures included:'
SELECT category, event_type, status, effective_role, object_type, object_name, command,
       details->>'error' AS error
  FROM audit_log.privileged_changes
 WHERE command NOT IN ('INSERT', 'UPDATE', 'DELETE', 'TRUNCATE')
 ORDER BY event_id;

\echo '--- API keys that were ever given the "write" scope (arrays are JSON arrays; key_hash is masked):'
SELECT event_type, actor, resource_id, row_after -> 'scopes' AS scopes,
       row_after ->> 'key_hash' AS key_hash, row_after ->> 'revoked_at' IS NOT NULL AS revoked
  FROM (SELECT *, coalesce(old_data, '{}') || coalesce(new_data, '{}') AS row_after
          FROM audit_log.search(event_types => '{api_key.created,api_key.updated}')) s
 WHERE (row_after -> 'scopes') ? 'write'
 ORDER BY event_id;

\echo '--- Logins over TCP (audit_log.login_activity):'
SELECT event_type, status, user_name, client_addr, auth_method, failure_reason
  FROM audit_log.login_activity
 WHERE client_addr IS NOT NULL
 ORDER BY event_id;

\echo '--- Changes made from 198.51.100.0/24 that mention "api" (search(ip_addresses => ..., text_query => ...)):'
SELECT event_type, actor, client_addr, object_name, resource_id
  FROM audit_log.search(ip_addresses => '{198.51.100.0/24}', text_query => 'api');

\echo '--- Events recorded, by category (audit_log.daily_counts):'
SELECT coalesce(category, 'all') AS category, sum(events) AS events,
       coalesce(sum(events) FILTER (WHERE status = 'failure'), 0) AS failures
  FROM audit_log.daily_counts
 GROUP BY ROLLUP (category)
 ORDER BY grouping(category), category;

\echo '--- The password and key hashes never reached the audit trail:'
SELECT count(*) AS events_containing_a_secret
  FROM audit_log.events e
 WHERE e::text LIKE '%argon2id%' OR e::text LIKE '%horse battery%'
    OR e::text LIKE '%another secret%' OR e::text LIKE '%sha256:4f1c%';
