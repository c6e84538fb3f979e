-- Partitions of the audit tables: adding one (CREATE [FOREIGN] TABLE ...
-- PARTITION OF, in any schema and under any name, also inside CREATE
-- SCHEMA or a DO block, ATTACH PARTITION) or detaching one outside the
-- extension's own upkeep is refused, superusers included, and recorded as
-- audit.tamper_attempt; a partition of the events is guarded whatever its
-- name.
\i test/include/setup.sql
\i test/include/wait_for.sql
SELECT coalesce(max(event_id), 0) AS start FROM audit_log.events \gset
SELECT rolsuper AS superuser FROM pg_roles WHERE rolname = current_user;
CREATE TABLE audit_log.utp_sneaky PARTITION OF audit_log.events
    FOR VALUES FROM ('2099-01-01') TO ('2099-01-02');
CREATE TABLE audit_log.events_p20990102 PARTITION OF audit_log.events
    FOR VALUES FROM ('2099-01-02') TO ('2099-01-03');
CREATE TABLE public.utp_sneaky PARTITION OF audit_log.events
    FOR VALUES FROM ('2099-01-03') TO ('2099-01-04');
-- below today's day partition (LIST by category), from PL/pgSQL
DO $$
BEGIN
    EXECUTE format('CREATE TABLE public.utp_day PARTITION OF audit_log.%I FOR VALUES IN (''zz'')',
                   audit_log._partition_name((now() AT TIME ZONE 'UTC')::date));
EXCEPTION WHEN insufficient_privilege THEN
    RAISE NOTICE 'refused: %', SQLSTATE;
END
$$;
CREATE SCHEMA utp_schema
    CREATE TABLE utp_p PARTITION OF audit_log.events FOR VALUES FROM ('2099-01-04') TO ('2099-01-05');
CREATE FOREIGN DATA WRAPPER utp_fdw;
CREATE SERVER utp_server FOREIGN DATA WRAPPER utp_fdw;
CREATE FOREIGN TABLE public.utp_remote PARTITION OF audit_log.events
    FOR VALUES FROM ('2099-01-05') TO ('2099-01-06') SERVER utp_server;
CREATE TABLE public.utp_loose (LIKE audit_log.events);
ALTER TABLE audit_log.events ATTACH PARTITION public.utp_loose
    FOR VALUES FROM ('2099-01-06') TO ('2099-01-07');
ALTER TABLE audit_log.events DETACH PARTITION audit_log.events_default;
-- nothing was added or removed
SELECT count(*) AS added
  FROM pg_partition_tree('audit_log.events') p
 WHERE p.relid::text LIKE '%utp%' OR p.relid::text LIKE '%2099%';
SELECT to_regnamespace('utp_schema') AS schema_created,
       (SELECT count(*) FROM pg_inherits WHERE inhrelid = 'audit_log.events_default'::regclass) AS default_attached;

-- A partition of the events that is there under another name (added
-- without the preload, or before this guard): writes to it are refused.
BEGIN;
SET LOCAL audit_log.internal = on;
CREATE TABLE public.utp_old PARTITION OF audit_log.events
    FOR VALUES FROM ('2099-02-01') TO ('2099-02-02');
SET LOCAL audit_log.internal = off;
COMMIT;
INSERT INTO public.utp_old (event_id, occurred_at, category, event_type, status)
    VALUES (-1, '2099-02-01 12:00+00', 'app', 'app.forged', 'success');
TRUNCATE public.utp_old;
SELECT count(*) AS forged FROM audit_log.events WHERE event_type = 'app.forged';

SELECT pg_temp.wait_for('audit.tamper_attempt', :start, 10) AS all_there;
SELECT event_type, status, regexp_replace(object_name, '\d{8}', 'YYYYMMDD') AS object_name, command,
       details->>'attempt' AS attempt, details->>'error' ~ 'is not allowed' AS error_recorded
  FROM audit_log.events
 WHERE event_id > :start AND event_type = 'audit.tamper_attempt'
 ORDER BY event_id;

BEGIN;
SET LOCAL audit_log.internal = on;
DROP TABLE public.utp_old;
SET LOCAL audit_log.internal = off;
COMMIT;
DROP TABLE public.utp_loose;
DROP SERVER utp_server;
DROP FOREIGN DATA WRAPPER utp_fdw;
