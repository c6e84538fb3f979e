/*
 * audit_log install script, part 90: every SQL and PL/pgSQL function of
 * the extension runs under search_path = pg_catalog, pg_temp, whoever calls
 * it and whatever their search_path: no object a role plants (a function,
 * an operator, a cast target in a schema first on its path) can run inside
 * the extension's code, with its rights or a caller's.  Functions written
 * above with the clause keep it; the rest get it here.  The C functions pin
 * the path themselves around the queries they run (guard.c).  The
 * regression test utility_search_path checks that nothing is left out.
 */
DO $pin$
DECLARE
    f regprocedure;
BEGIN
    FOR f IN
        SELECT p.oid::regprocedure
          FROM pg_catalog.pg_proc p
          JOIN pg_catalog.pg_language l ON l.oid = p.prolang
         WHERE p.pronamespace = '@extschema@'::regnamespace
           AND l.lanname IN ('sql', 'plpgsql')
           AND NOT coalesce(p.proconfig, '{}') @> '{"search_path=pg_catalog, pg_temp"}'
         ORDER BY p.oid
    LOOP
        EXECUTE pg_catalog.format('ALTER FUNCTION %s SET search_path = pg_catalog, pg_temp', f);
    END LOOP;
END
$pin$;
