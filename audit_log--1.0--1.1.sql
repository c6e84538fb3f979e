/*
 * audit_log upgrade script 1.0 -> 1.1.
 *
 * Every schema change of 1.1, in the order of src/sql, so that a database
 * updated with ALTER EXTENSION audit_log UPDATE has exactly the objects of a
 * fresh 1.1 install (test/t/upgrade_1_0.pl compares the two dumps).  Events,
 * seals, policies, holds and audited tables are kept: nothing here rewrites
 * or drops a table that holds them.
 */
\echo Use "ALTER EXTENSION audit_log UPDATE TO '1.1'" to load this file. \quit

-- ==== paging: pages and exports stop below the transactions still in progress ====
-- search() pages (after_event_id or max_rows) through _page(), which reads
-- below the paging horizon with a snapshot of its own (src/horizon.c);
-- export() does the same in C (no schema change).
/*
 * _page(query): the rows of query, whose $1 is the paging horizon (the
 * lowest event_id that a transaction still in progress may commit), read
 * with a snapshot taken after the horizon (src/horizon.c).  search() pages
 * through it.  Granted to nobody: it runs the query it is given.
 */
CREATE FUNCTION @extschema@._page(query text) RETURNS SETOF @extschema@.event_log
AS 'MODULE_PATHNAME', 'audit_page'
LANGUAGE C VOLATILE STRICT;
REVOKE ALL ON FUNCTION @extschema@._page(text) FROM PUBLIC;

/*
 * search(filters): the events matching every filter given (AND; any value
 * within one filter), in event_id order, at most max_rows of them after
 * after_event_id.  A page (after_event_id or max_rows given) stops below
 * the paging horizon, so that continuing after its last event_id never
 * skips an event that commits later.
 */
CREATE OR REPLACE FUNCTION @extschema@.search(usernames text[] DEFAULT NULL, event_types text[] DEFAULT NULL,
    categories text[] DEFAULT NULL, resource_ids text[] DEFAULT NULL, user_types text[] DEFAULT NULL,
    ip_addresses cidr[] DEFAULT NULL, since timestamptz DEFAULT NULL, until timestamptz DEFAULT NULL,
    text_query text DEFAULT NULL, statuses text[] DEFAULT NULL, tenants text[] DEFAULT NULL,
    after_event_id bigint DEFAULT NULL, max_rows integer DEFAULT NULL)
RETURNS SETOF @extschema@.event_log
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF max_rows IS NOT NULL AND max_rows < 0 THEN
        RAISE EXCEPTION 'max_rows must not be negative'
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Pass the page size, e.g. max_rows => 100, or NULL for every matching event.';
    END IF;
    IF after_event_id IS NOT NULL OR max_rows IS NOT NULL THEN
        RETURN QUERY SELECT * FROM @extschema@._page(
            'SELECT * FROM @extschema@.event_log e WHERE '
            || @extschema@._search_where(usernames, event_types, categories, resource_ids, user_types,
                                         ip_addresses, since, until, text_query, statuses, tenants,
                                         after_event_id)
            || ' AND e.event_id OPERATOR(pg_catalog.<) $1 ORDER BY e.event_id'
            || CASE WHEN max_rows IS NOT NULL THEN ' LIMIT ' || max_rows ELSE '' END);
        RETURN;
    END IF;
    RETURN QUERY EXECUTE
        'SELECT * FROM @extschema@.event_log e WHERE '
        || @extschema@._search_where(usernames, event_types, categories, resource_ids, user_types,
                                     ip_addresses, since, until, text_query, statuses, tenants,
                                     after_event_id)
        || ' ORDER BY e.event_id';
END
$$;
COMMENT ON FUNCTION @extschema@.search(text[], text[], text[], text[], text[], cidr[], timestamptz,
    timestamptz, text, text[], text[], bigint, integer) IS
    'Events matching every filter given (any value within one filter), in event_id order; page with after_event_id and max_rows (a page stops below the transactions still in progress).';

