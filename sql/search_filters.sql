-- Search: every filter and its semantics, paging, the views, comments,
-- privileges, partition pruning.
\i test/include/setup.sql
SELECT count(*) AS partitions FROM (
    SELECT audit_log._create_partition(d::date)
      FROM generate_series('2025-03-01'::date, '2025-03-10'::date, '1 day') d) s;

-- Fixture events f1..f8 (request_id is the label; ids are never printed).
BEGIN;
SET LOCAL audit_log.internal = on;
INSERT INTO audit_log.events (event_id, occurred_at, category, event_type, status, actor, actor_type,
    db_user, client_addr, tenant, request_id, object_type, object_name, resource_id, command,
    old_data, new_data, statement, details)
SELECT nextval('audit_log.events_event_id_seq'), v.*
  FROM (VALUES
    ('2025-03-01 10:00'::timestamptz, 'data', 'data.update', 'success', 'alice', 'user', 'app', '10.0.0.5'::inet, 't1', 'f1',
     'table', 'public.accounts', '42', 'UPDATE', '{"email": "a@x", "name": "A"}'::jsonb, '{"email": "b@x"}'::jsonb,
     'UPDATE accounts SET email = $1', NULL::jsonb),
    ('2025-03-02 00:00', 'data', 'data.insert', 'success', 'bob', 'api_client', 'app', '10.0.1.7', 't2', 'f2',
     'table', 'public.orders', '7', 'INSERT', NULL, '{"total": 99}', NULL, NULL),
    ('2025-03-03 12:00', 'role', 'role.created', 'success', 'carol', 'support', 'alice', '192.168.1.1', 't1', 'f3',
     'role', 'auditor', NULL, 'CREATE ROLE', NULL, NULL, 'CREATE ROLE auditor', '{"note": "Needle in JSON"}'),
    ('2025-03-04 23:59:59.999999', 'privilege', 'privilege.granted', 'failure', 'dave', 'provisioner', 'ops', '2001:db8::1', NULL, 'f4',
     'table', 'public.accounts', NULL, 'GRANT', NULL, NULL, 'GRANT SELECT ON accounts TO x', '{"error": "permission denied"}'),
    ('2025-03-05 08:00', 'app', 'app.report_sent', 'success', 'erin', 'user', 'app', NULL, 't3', 'f5',
     'report', 'Report_100%', '1,7', 'SELECT', NULL, NULL, NULL, '{"to": "ops@example.com"}'),
    ('2025-03-06 09:00', 'data', 'data.delete', 'success', 'ALICE', 'user', 'app', '10.0.0.200', 't2', 'f6',
     'table', 'public.accounts', '42', 'DELETE', '{"email": "b@x"}', NULL, NULL, NULL),
    ('2025-03-07 09:00', 'ddl', 'ddl.create_table', 'success', 'frank', 'db_role', 'frank', '10.1.0.1', NULL, 'f7',
     'table', 'public.a_b', NULL, 'CREATE TABLE', NULL, NULL, 'SELECT 100%', NULL),
    ('2025-03-08 09:00', 'ddl', 'ddl.create_table', 'success', 'frank', 'db_role', 'frank', '10.1.0.2', NULL, 'f8',
     'table', 'public.axb', NULL, 'CREATE TABLE', NULL, NULL, NULL, NULL)
  ) AS v;
SET LOCAL audit_log.internal = off;
COMMIT;

-- labels(...): the labels of a search's fixture rows, in result order.
CREATE FUNCTION labels(q text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE r text;
BEGIN
    EXECUTE 'SELECT coalesce(string_agg(request_id, '','' ORDER BY n), ''-'') FROM (SELECT request_id, row_number() OVER () AS n FROM '
            || q || ') s WHERE request_id LIKE ''f_'''
       INTO r;
    RETURN r;
END $$;

SELECT labels($$audit_log.search(since => '2025-03-01', until => '2025-04-01')$$) AS everything;
-- usernames: actor or db_user, exact; any of the names; NULL elements ignored; {} matches nothing
SELECT labels($$audit_log.search(usernames => '{alice}')$$) AS alice_actor_or_db_user;
SELECT labels($$audit_log.search(usernames => '{alice,bob}')$$) AS alice_or_bob;
SELECT labels($$audit_log.search(usernames => '{ALICE}')$$) AS upper_alice;
SELECT labels($$audit_log.search(usernames => ARRAY[NULL, 'bob'])$$) AS null_element;
SELECT labels($$audit_log.search(usernames => '{}')$$) AS empty_list;
-- event types, categories, resource ids, user types
SELECT labels($$audit_log.search(event_types => '{data.update,data.delete}')$$) AS event_types;
SELECT labels($$audit_log.search(categories => '{role,privilege}')$$) AS categories;
SELECT labels($$audit_log.search(resource_ids => '{42}')$$) AS resource_42;
SELECT labels($$audit_log.search(resource_ids => '{"1,7"}')$$) AS resource_composite;
SELECT labels($$audit_log.search(user_types => '{support,provisioner}')$$) AS user_types;
-- ip_addresses: an address inside any network; NULL addresses never match
SELECT labels($$audit_log.search(ip_addresses => '{10.0.0.0/24}')$$) AS net_10_0_0;
SELECT labels($$audit_log.search(ip_addresses => '{10.0.0.0/16,2001:db8::/32}')$$) AS two_networks;
SELECT labels($$audit_log.search(ip_addresses => '{192.168.1.1/32}')$$) AS one_host;
SELECT labels($$audit_log.search(ip_addresses => '{0.0.0.0/0,::/0}')$$) AS every_address;
-- since inclusive, until exclusive
SELECT labels($$audit_log.search(since => '2025-03-02', until => '2025-03-04')$$) AS since_inclusive;
SELECT labels($$audit_log.search(since => '2025-03-01', until => '2025-03-02')$$) AS until_exclusive;
SELECT labels($$audit_log.search(since => '2025-03-04 23:59:59.999999', until => '2025-03-05')$$) AS last_microsecond;
SELECT labels($$audit_log.search(since => '2025-03-02', until => '2025-03-02')$$) AS empty_range;
SELECT * FROM audit_log.search(since => '2025-03-03', until => '2025-03-02');
-- text_query: case-insensitive substring over actor, db_user, event_type,
-- object_name, resource_id, statement and the JSON columns; % and _ literal
SELECT labels($$audit_log.search(text_query => 'NEEDLE')$$) AS in_details;
SELECT labels($$audit_log.search(text_query => 'cArOl')$$) AS in_actor;
SELECT labels($$audit_log.search(text_query => 'ops')$$) AS db_user_or_json;
SELECT labels($$audit_log.search(text_query => 'report_sent')$$) AS in_event_type;
SELECT labels($$audit_log.search(text_query => 'accounts')$$) AS in_object_or_statement;
SELECT labels($$audit_log.search(text_query => '1,7')$$) AS in_resource_id;
SELECT labels($$audit_log.search(text_query => 'b@x')$$) AS in_old_or_new_data;
SELECT labels($$audit_log.search(text_query => 'a_b')$$) AS underscore_literal;
SELECT labels($$audit_log.search(text_query => '100%')$$) AS percent_literal;
SELECT labels($$audit_log.search(text_query => 'no such text anywhere')$$) AS nothing;
-- statuses, tenants
SELECT labels($$audit_log.search(statuses => '{failure}')$$) AS failures;
SELECT labels($$audit_log.search(tenants => '{t1,t3}')$$) AS tenants;
-- AND across filters
SELECT labels($$audit_log.search(usernames => '{alice}', categories => '{data}')$$) AS alice_data;
SELECT labels($$audit_log.search(resource_ids => '{42}', event_types => '{data.delete}', tenants => '{t2}',
                                 ip_addresses => '{10.0.0.0/8}', since => '2025-03-06')$$) AS all_and;
SELECT labels($$audit_log.search(usernames => '{alice}', statuses => '{failure}')$$) AS no_match;

-- Paging: after_event_id + max_rows, in event_id order
SELECT labels($$audit_log.search(since => '2025-03-01', until => '2025-04-01', max_rows => 3)$$) AS page1;
SELECT labels(format('audit_log.search(since => %L, until => %L, max_rows => 3, after_event_id => %s)',
              '2025-03-01', '2025-04-01', (SELECT event_id FROM audit_log.events WHERE request_id = 'f3'))) AS page2;
SELECT labels(format('audit_log.search(since => %L, until => %L, max_rows => 3, after_event_id => %s)',
              '2025-03-01', '2025-04-01', (SELECT event_id FROM audit_log.events WHERE request_id = 'f6'))) AS page3;
SELECT labels($$audit_log.search(max_rows => 0)$$) AS zero_rows;
SELECT * FROM audit_log.search(max_rows => -1);
SELECT bool_and(a.event_id < b.event_id) AS increasing
  FROM (SELECT event_id, lead(event_id) OVER (ORDER BY n) AS next
          FROM (SELECT event_id, row_number() OVER () n FROM audit_log.search()) s) a
  JOIN LATERAL (SELECT a.next AS event_id) b ON b.event_id IS NOT NULL;

-- event_log: description and changed_columns (UPDATE only)
SELECT request_id, event_type, description, changed_columns
  FROM audit_log.search(since => '2025-03-01', until => '2025-03-03');
SELECT request_id, event_type, status FROM audit_log.privileged_changes WHERE request_id LIKE 'f_' ORDER BY event_id;
SELECT day, category, event_type, status, events FROM audit_log.daily_counts
 WHERE day BETWEEN '2025-03-01' AND '2025-03-10' ORDER BY 1, 2, 3, 4;
SELECT * FROM audit_log.event_types WHERE event_type IN ('role.created', 'audit.exported') ORDER BY 1;

-- Every view and every column of the views has a comment.
SELECT c.relname, d.description IS NOT NULL AS commented
  FROM pg_class c LEFT JOIN pg_description d ON d.objoid = c.oid AND d.classoid = 'pg_class'::regclass AND d.objsubid = 0
 WHERE c.relnamespace = 'audit_log'::regnamespace AND c.relkind = 'v'
 ORDER BY 1;
SELECT c.relname, a.attname
  FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
  LEFT JOIN pg_description d ON d.objoid = c.oid AND d.classoid = 'pg_class'::regclass AND d.objsubid = a.attnum
 WHERE c.relnamespace = 'audit_log'::regnamespace AND c.relkind IN ('v', 'c')
   AND coalesce(d.description, '') = ''
 ORDER BY 1, 2;
SELECT c.relname, count(*) AS commented_columns
  FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0
  JOIN pg_description d ON d.objoid = c.oid AND d.objsubid = a.attnum
 WHERE c.relnamespace = 'audit_log'::regnamespace AND c.relname IN ('event_log', 'login_activity', 'daily_counts')
 GROUP BY 1 ORDER BY 1;

-- A date range reads only its partitions: the plan of the query search()
-- runs names exactly the partitions in range.
CREATE FUNCTION plan_partitions(w text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE l text; parts text[] := '{}';
BEGIN
    FOR l IN EXECUTE 'EXPLAIN (COSTS OFF) SELECT * FROM audit_log.event_log e WHERE ' || w || ' ORDER BY e.event_id' LOOP
        parts := parts || ARRAY(SELECT m[1] FROM regexp_matches(l, '(events_p\d{8}|events_default)', 'g') m);
    END LOOP;
    RETURN (SELECT string_agg(DISTINCT p, ',' ORDER BY p) FROM unnest(parts) p);
END $$;
SELECT plan_partitions(audit_log._search_where(NULL, NULL, NULL, NULL, NULL, NULL,
       '2025-03-02', '2025-03-04', NULL, NULL, NULL, NULL)) AS two_days;
SELECT plan_partitions(audit_log._search_where('{alice}', NULL, NULL, NULL, NULL, NULL,
       '2025-03-05 12:00', '2025-03-06 01:00', 'x', NULL, NULL, NULL)) AS partial_days;
SELECT plan_partitions(audit_log._search_where(NULL, NULL, NULL, NULL, NULL, NULL,
       '2025-03-09', NULL, NULL, NULL, NULL, NULL)) ~ 'events_p20250308' AS open_end_reads_before;

-- Privileges: audit_log_reader searches, reads the views, exports; nothing else.
CREATE ROLE search_reader IN ROLE audit_log_reader;
CREATE ROLE search_nobody;
SET ROLE search_reader;
SELECT labels($$audit_log.search(usernames => '{bob}')$$) AS reader_search;
SELECT count(*) > 0 AS reader_views FROM audit_log.event_log;
SELECT count(*) >= 0 AS ok FROM audit_log.privileged_changes, audit_log.login_activity, audit_log.daily_counts, audit_log.event_types LIMIT 1;
SELECT actor FROM audit_log.export(usernames => '{bob}', until => '2026-01-01');
SELECT count(*) FROM audit_log.events;
SELECT count(*) FROM audit_log.events_p20250301;
SELECT count(*) FROM audit_log.event_type_catalog;
SELECT audit_log._search_where(NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL);
SELECT audit_log._record('audit', 'audit.exported', 'success', NULL, NULL, NULL, NULL);
SELECT audit_log.enable('pg_class');
SET audit_log.export_max_rows = 200000;
-- COPY to a file needs pg_write_server_files: refused (the code only, the
-- message differs between PostgreSQL versions).
\set VERBOSITY sqlstate
SELECT audit_log.export_csv('/tmp/search_reader.csv');
\set VERBOSITY default
RESET ROLE;
SET ROLE search_nobody;
SELECT * FROM audit_log.search();
SELECT * FROM audit_log.event_log;
RESET ROLE;
-- Only the grants the contract names; SECURITY DEFINER functions pin search_path.
SELECT p.proname, p.prosecdef FROM pg_proc p
 WHERE p.pronamespace = 'audit_log'::regnamespace
   AND (has_function_privilege('public', p.oid, 'EXECUTE'))
 ORDER BY 1;
SELECT p.proname FROM pg_proc p
 WHERE p.pronamespace = 'audit_log'::regnamespace AND p.prosecdef
   AND NOT coalesce('search_path=pg_catalog, pg_temp' = ANY (p.proconfig), false)
 ORDER BY 1;
SELECT p.proname FROM pg_proc p
 WHERE p.pronamespace = 'audit_log'::regnamespace
   AND has_function_privilege('audit_log_reader', p.oid, 'EXECUTE')
   AND p.proname IN ('search', 'export', 'export_csv', '_search_where', '_search_filters', '_record', '_load')
 ORDER BY 1;
DROP ROLE search_reader, search_nobody;

-- The attack on login_activity: an application login (audit_log_writer)
-- logs an auth.* event whose details mimic a trust login of postgres.  The
-- view names its actor and its db_user, not what the details claim.
CREATE ROLE search_app LOGIN IN ROLE audit_log_writer;
SET SESSION AUTHORIZATION search_app;
SELECT audit_log.log('auth.login', 'success', 'database', 'postgres', NULL,
       '{"user_name": "postgres", "auth_method": "trust", "connection": "local"}') IS NOT NULL AS logged;
RESET SESSION AUTHORIZATION;
SELECT event_type, user_name, auth_method, db_user, source
  FROM audit_log.login_activity WHERE event_type = 'auth.login' ORDER BY event_id;
DROP ROLE search_app;
