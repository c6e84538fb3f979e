/*
 * audit_log install script, part 90: every SQL and PL/pgSQL function of
 * the extension runs under search_path = pg_catalog, pg_temp, whoever calls
 * it and whatever their search_path: no object a role plants (a function,
 * an operator, a cast target in a schema first on its path) can run inside
 * the extension's code, with its rights or a caller's.  Functions written
 * above with the clause keep it; the rest get it here.  The C functions pin
 * the path themselves around the queries they run (guard.c).  The
 * exceptions are the few per-row SQL helpers that must stay inlinable:
 * they are inlined into the extension's own pinned queries, and no role
 * but the owner may call them.  The regression test utility_search_path
 * checks that nothing else is left out.
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
           -- Per-row helpers, inlined into the (pinned) queries of seal(),
           -- verify(), search() and maintain(): a SET clause would forbid the
           -- inlining (verify() 2.7 times slower).  Callable by nobody else.
           AND p.proname NOT IN ('_day_lo', '_ts', '_sha256', '_event_digest', '_seal_digest')
         ORDER BY p.oid
    LOOP
        EXECUTE pg_catalog.format('ALTER FUNCTION %s SET search_path = pg_catalog, pg_temp', f);
    END LOOP;
END
$pin$;
