-- Planted objects: a role that owns a schema first on a caller's search_path
-- plants functions and operators that shadow what the extension uses
-- (lower(varchar), jsonb_build_object(text, text), =, ~~*, && on the types
-- it compares).  None of them may run inside the extension's code, for a
-- writer, a reader, an admin or a superuser calling it.
\i test/include/setup.sql
\i test/include/wait_for.sql
SELECT coalesce(max(event_id), 0) AS start FROM audit_log.events \gset

CREATE ROLE sp_attacker;
CREATE ROLE sp_writer IN ROLE audit_log_writer;
CREATE ROLE sp_reader IN ROLE audit_log_reader;
CREATE ROLE sp_admin IN ROLE audit_log_admin;
CREATE SCHEMA sp_evil AUTHORIZATION sp_attacker;
GRANT USAGE ON SCHEMA sp_evil TO PUBLIC;
CREATE TABLE sp_app (id int PRIMARY KEY, email varchar(40), secret text);
GRANT SELECT, INSERT, UPDATE, DELETE ON sp_app TO sp_writer;
SELECT audit_log.enable('sp_app', 'privilege', mask_columns => '{secret}');

-- The attacker's objects: each records that it ran, and as whom.
SET ROLE sp_attacker;
CREATE TABLE sp_evil.hits (fn text, ran_as text);
GRANT INSERT ON sp_evil.hits TO PUBLIC;
CREATE FUNCTION sp_evil.hit(fn text) RETURNS void LANGUAGE sql
    AS $$ INSERT INTO sp_evil.hits VALUES (fn, current_user) $$;
CREATE FUNCTION sp_evil.lower(varchar) RETURNS text LANGUAGE plpgsql
    AS $$ BEGIN PERFORM sp_evil.hit('lower'); RETURN pg_catalog.lower($1::text); END $$;
CREATE FUNCTION sp_evil.jsonb_build_object(text, text) RETURNS jsonb LANGUAGE plpgsql
    AS $$ BEGIN PERFORM sp_evil.hit('jsonb_build_object'); RETURN pg_catalog.jsonb_build_object($1, $2); END $$;
CREATE FUNCTION sp_evil.eq(text, text) RETURNS boolean LANGUAGE plpgsql
    AS $$ BEGIN PERFORM sp_evil.hit('='); RETURN pg_catalog.texteq($1, $2); END $$;
CREATE OPERATOR sp_evil.= (LEFTARG = text, RIGHTARG = text, FUNCTION = sp_evil.eq);
CREATE FUNCTION sp_evil.ilike(text, text) RETURNS boolean LANGUAGE plpgsql
    AS $$ BEGIN PERFORM sp_evil.hit('~~*'); RETURN pg_catalog.texticlike($1, $2); END $$;
CREATE OPERATOR sp_evil.~~* (LEFTARG = text, RIGHTARG = text, FUNCTION = sp_evil.ilike);
CREATE FUNCTION sp_evil.overlap(text[], text[]) RETURNS boolean LANGUAGE plpgsql
    AS $$ BEGIN PERFORM sp_evil.hit('&&'); RETURN pg_catalog.arrayoverlap($1, $2); END $$;
CREATE OPERATOR sp_evil.&& (LEFTARG = text[], RIGHTARG = text[], FUNCTION = sp_evil.overlap);
CREATE FUNCTION sp_evil.inet_contained(inet, inet) RETURNS boolean LANGUAGE plpgsql
    AS $$ BEGIN PERFORM sp_evil.hit('<<='); RETURN pg_catalog.network_subeq($1, $2); END $$;
CREATE OPERATOR sp_evil.<<= (LEFTARG = inet, RIGHTARG = inet, FUNCTION = sp_evil.inet_contained);
CREATE FUNCTION sp_evil.bigint_gt(bigint, bigint) RETURNS boolean LANGUAGE plpgsql
    AS $$ BEGIN PERFORM sp_evil.hit('>'); RETURN pg_catalog.int8gt($1, $2); END $$;
CREATE OPERATOR sp_evil.> (LEFTARG = bigint, RIGHTARG = bigint, FUNCTION = sp_evil.bigint_gt);
RESET ROLE;
-- The planted objects work where they are in the path (the test can fail).
SET search_path = sp_evil, pg_catalog;
SELECT 'a'::text = 'a'::text AS planted_eq, lower('X'::varchar) AS planted_lower;
SELECT fn FROM sp_evil.hits ORDER BY fn;
TRUNCATE sp_evil.hits;
RESET search_path;

-- A writer: log() with a new code (registers it), the context, capture.
SET ROLE sp_writer;
SET search_path = sp_evil, pg_catalog;
BEGIN;
SELECT audit_log.set_context('alice@example.com', 'user', '203.0.113.7') IS NULL AS context_set;
SELECT audit_log.log('app.sp_first_use', object_type => 'api_key', resource_id => '1') > 0 AS logged;
SELECT audit_log.log('app.sp_first_use', details => '{"k": "v"}') > 0 AS logged_again;
INSERT INTO public.sp_app VALUES (1, 'a@example.com', 's1'), (2, 'b@example.com', 's2');
UPDATE public.sp_app SET email = 'c@example.com', secret = 's3' WHERE id = 1;
DELETE FROM public.sp_app WHERE id = 2;
COMMIT;
RESET search_path;
RESET ROLE;

-- A reader: search() with every filter, export(), the views.
SET ROLE sp_reader;
SET search_path = sp_evil, pg_catalog;
SELECT count(*) > 0 AS found FROM audit_log.search(usernames => '{alice@example.com}',
    event_types => '{data.update,app.sp_first_use}', categories => '{privilege,app}',
    resource_ids => '{1}', user_types => '{user}', ip_addresses => '{203.0.113.0/24}',
    since => now() - interval '1 hour', until => now() + interval '1 hour',
    text_query => 'example', statuses => '{success}', tenants => NULL,
    after_event_id => :start, max_rows => 100);
SELECT count(*) > 0 AS exported FROM audit_log.export(usernames => '{alice@example.com}',
    categories => '{privilege}', text_query => 'EXAMPLE', ip_addresses => '{203.0.113.7/32}',
    after_event_id => :start);
SELECT count(*) > 0 AS seen FROM audit_log.event_log WHERE event_id > :start;
SELECT count(*) >= 0 AS counted FROM audit_log.daily_counts;
SELECT count(*) >= 0 AS listed FROM audit_log.privileged_changes WHERE event_id > :start;
RESET search_path;
RESET ROLE;

-- An admin, then a superuser: enable, retention, holds, maintain, seal,
-- verify, search, export.
SET ROLE sp_admin;
SET search_path = sp_evil, pg_catalog;
SELECT audit_log.enable('public.sp_app', 'privilege', event_types => '{"INSERT": "user.sp_created"}',
                        mask_columns => '{secret}', exclude_columns => '{email}');
SELECT audit_log.set_retention('default', '90 days');
SELECT audit_log.hold('sp-case', now() - interval '1 day', now(), 'planted objects test');
SELECT audit_log.release('sp-case');
SELECT count(*) >= 0 AS maintained FROM audit_log.maintain();
SELECT audit_log.seal() >= 0 AS sealed;
SELECT count(*) >= 0 AS verified FROM audit_log.verify(now() - interval '1 day', now());
SELECT count(*) > 0 AS found FROM audit_log.search(text_query => 'sp_', categories => '{audit}');
RESET search_path;
RESET ROLE;

SET search_path = sp_evil, pg_catalog;
SELECT audit_log.log('app.sp_superuser_use') > 0 AS logged;
SELECT audit_log.enable('public.sp_app', 'privilege', mask_columns => '{secret}');
INSERT INTO public.sp_app VALUES (3, 'd@example.com', 's4');
SELECT audit_log.set_retention('default', '90 days');
SELECT count(*) >= 0 AS maintained FROM audit_log.maintain();
SELECT audit_log.seal() >= 0 AS sealed;
SELECT count(*) >= 0 AS verified FROM audit_log.verify();
SELECT count(*) > 0 AS found FROM audit_log.search(usernames => '{alice@example.com}', text_query => 'Example');
SELECT count(*) > 0 AS exported FROM audit_log.export(event_types => '{data.update}', after_event_id => :start);
CREATE TABLE public.sp_ddl (id int);
DROP TABLE public.sp_ddl;
SELECT audit_log.disable('public.sp_app');
RESET search_path;

-- None of the planted objects ran.
SELECT fn, ran_as, count(*) FROM sp_evil.hits GROUP BY fn, ran_as ORDER BY fn, ran_as;
-- And the work was done: the events are there.
SELECT event_type, actor, resource_id, old_data, new_data
  FROM audit_log.events
 WHERE event_id > :start AND object_name = 'public.sp_app' AND category = 'privilege'
 ORDER BY event_id;
SELECT event_type, category FROM audit_log.event_types WHERE event_type LIKE 'app.sp_%' ORDER BY 1;

-- Every SQL and PL/pgSQL function of the extension pins its search_path,
-- but the per-row helpers inlined into the extension's own pinned queries,
-- which nobody else may call.
SELECT p.oid::regprocedure AS unpinned
  FROM pg_proc p JOIN pg_language l ON l.oid = p.prolang
 WHERE p.pronamespace = 'audit_log'::regnamespace AND l.lanname IN ('sql', 'plpgsql')
   AND NOT coalesce(p.proconfig, '{}') @> '{"search_path=pg_catalog, pg_temp"}'
   AND p.proname NOT IN ('_day_lo', '_ts', '_sha256', '_event_digest', '_seal_digest')
 ORDER BY 1;
-- The inlined helpers: plain SQL, not SECURITY DEFINER, not callable by the
-- extension's roles; and the constant _categories(), C (context.c's list).
SELECT p.proname, l.lanname, p.prosecdef,
       has_function_privilege('audit_log_writer', p.oid, 'EXECUTE') AS writer,
       has_function_privilege('audit_log_admin', p.oid, 'EXECUTE') AS admin
  FROM pg_proc p JOIN pg_language l ON l.oid = p.prolang
 WHERE p.pronamespace = 'audit_log'::regnamespace
   AND p.proname IN ('_categories', '_day_lo', '_ts', '_sha256', '_event_digest', '_seal_digest')
 ORDER BY 1;
-- So does every SECURITY DEFINER function, whatever its language.
SELECT p.oid::regprocedure AS unpinned_definer
  FROM pg_proc p
 WHERE p.pronamespace = 'audit_log'::regnamespace AND p.prosecdef
   AND NOT coalesce(p.proconfig, '{}') @> '{"search_path=pg_catalog, pg_temp"}'
 ORDER BY 1;

DROP TABLE sp_app;
DROP SCHEMA sp_evil CASCADE;
DROP ROLE sp_attacker, sp_writer, sp_reader, sp_admin;
