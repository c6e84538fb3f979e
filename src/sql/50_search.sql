/*
 * audit_log install script, part 50: search.  The indexes search needs on
 * audit_log.events, the views that users and BI tools read, and
 * audit_log.search().
 *
 * Indexes.  Every index costs every audited write, so the partitions
 * being written (today's and the days ahead) carry only the event_id index
 * of part 00.  When a day has ended, maintain() builds its search indexes in
 * bulk (_index_leaf), which costs a fraction of maintaining them row by row:
 *   - <leaf>_keys_idx: ONE GIN over a prefixed key array (u:actor,
 *     u:db_user, t:event_type, r:resource_id) serves the username, event
 *     type and resource id filters;
 *   - <leaf>_addr_idx: a btree on client_addr; `client_addr <<= net` with a
 *     constant network becomes a btree range (network_subset_support).
 * Today's partition is read in full by such filters; date ranges need no
 * index: the table is partitioned by day and search() plans with
 * constants, so only the partitions in range are read.
 */

/*
 * _leaf_indexed(leaf): has this leaf partition its search indexes?
 */
CREATE FUNCTION @extschema@._leaf_indexed(leaf oid) RETURNS boolean
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT count(*) = 2 FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
     WHERE i.indrelid = leaf
       AND c.relname IN (left((SELECT relname FROM pg_class WHERE oid = leaf), 54) || '_keys_idx',
                         left((SELECT relname FROM pg_class WHERE oid = leaf), 54) || '_addr_idx')
$$;

/*
 * _index_leaf(leaf): build the search indexes of one leaf partition of a
 * day that has ended, then ANALYZE it.  Takes a SHARE lock on the leaf
 * (nobody writes a past day) within the caller's lock_timeout: a late
 * writer makes it fail with lock_not_available (maintain() retries at its
 * next run); an autovacuum of the leaf gives way after deadlock_timeout.
 */
CREATE FUNCTION @extschema@._index_leaf(leaf oid) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
SET audit_log.internal = on       -- the extension's own DDL
AS $$
DECLARE
    base text := left((SELECT relname FROM pg_class WHERE oid = leaf), 54);
BEGIN
    EXECUTE pg_catalog.format('LOCK TABLE %s IN SHARE MODE', leaf::regclass);
    EXECUTE pg_catalog.format(
        'CREATE INDEX IF NOT EXISTS %I ON %s USING gin '
        '((ARRAY[''u:'' || actor, ''u:'' || db_user, ''t:'' || event_type, ''r:'' || resource_id]))',
        base || '_keys_idx', leaf::regclass);
    EXECUTE pg_catalog.format('CREATE INDEX IF NOT EXISTS %I ON %s (client_addr)',
                              base || '_addr_idx', leaf::regclass);
    -- Statistics of the key expression, so the planner costs the GIN index.
    EXECUTE pg_catalog.format('ANALYZE %s', leaf::regclass);
END
$$;

/*
 * _index_closed(as_of): build the search indexes of every leaf of the days
 * that ended before as_of (never after the real clock: nobody writes
 * those days); one row per leaf: "indexed", or "retry"/"error"
 * (_failed()) and the next leaf.  maintain() does this as its step 5;
 * tests call it directly.  Waits for each lock at most the session's
 * lock_timeout, or 10 seconds when it has none.
 */
CREATE FUNCTION @extschema@._index_closed(as_of timestamptz DEFAULT NULL)
RETURNS TABLE(action text, object text, detail text)
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    l record;
    old_lock_timeout text := current_setting('lock_timeout');
BEGIN
    IF old_lock_timeout = '0' THEN
        PERFORM set_config('lock_timeout', '10s', true);
    END IF;
    FOR l IN SELECT s.leaf, s.leaf_name FROM @extschema@._leaves() s
              WHERE s.hi <= least(coalesce(as_of, now()), now()) AND NOT @extschema@._leaf_indexed(s.leaf)
              ORDER BY s.leaf_name
    LOOP
        BEGIN
            PERFORM @extschema@._index_leaf(l.leaf);
            action := 'indexed'; object := '@extschema@.' || l.leaf_name;
            detail := 'search indexes built'; RETURN NEXT;
        EXCEPTION WHEN OTHERS THEN
            RETURN QUERY SELECT * FROM @extschema@._failed('@extschema@.' || l.leaf_name, SQLSTATE, SQLERRM);
        END;
    END LOOP;
    PERFORM set_config('lock_timeout', old_lock_timeout, true);
END
$$;
REVOKE ALL ON FUNCTION @extschema@._leaf_indexed(oid) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@._index_leaf(oid) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@._index_closed(timestamptz) FROM PUBLIC;

CREATE VIEW @extschema@.event_types AS
SELECT event_type, category, description
  FROM @extschema@.event_type_catalog;

CREATE VIEW @extschema@.event_log AS
SELECT e.event_id, e.occurred_at, e.category, e.event_type, e.status,
       e.actor, e.actor_type, e.db_user, e.effective_role, e.client_addr,
       e.application_name, e.user_agent, e.tenant, e.request_id, e.database,
       e.object_type, e.object_name, e.resource_id, e.command,
       e.old_data, e.new_data, e.statement, e.details, e.txid, e.backend_pid,
       t.description,
       CASE WHEN e.command = 'UPDATE' AND pg_catalog.jsonb_typeof(e.new_data) = 'object'
            THEN ARRAY(SELECT k FROM pg_catalog.jsonb_object_keys(e.new_data) AS k ORDER BY k)
       END AS changed_columns,
       e.source
  FROM @extschema@.events e
  LEFT JOIN @extschema@.event_type_catalog t ON t.event_type = e.event_type;

CREATE VIEW @extschema@.privileged_changes AS
SELECT *
  FROM @extschema@.event_log
 WHERE category IN ('role', 'privilege', 'config', 'ddl', 'audit');

-- The user name and method of a login the extension captured come from its
-- details; an application's auth.* event (log(), a feed) names its actor
-- and says its method as "method": its details cannot make it read as a
-- login of another role.  db_user and source tell who wrote it, and where.
CREATE VIEW @extschema@.login_activity AS
SELECT e.event_id, e.occurred_at, e.event_type, e.status,
       (e.status = 'success') AS succeeded,
       CASE WHEN e.event_type IN ('auth.login_succeeded', 'auth.login_failed')
            THEN COALESCE(e.details ->> 'user_name', e.db_user) ELSE e.actor END AS user_name,
       e.database, e.client_addr, e.application_name,
       CASE WHEN e.event_type IN ('auth.login_succeeded', 'auth.login_failed')
            THEN e.details ->> 'auth_method' ELSE e.details ->> 'method' END AS auth_method,
       COALESCE(e.details ->> 'error', e.details ->> 'reason') AS failure_reason,
       e.details, e.db_user, e.source
  FROM @extschema@.events e
 WHERE e.category = 'auth';

CREATE VIEW @extschema@.daily_counts AS
SELECT (e.occurred_at AT TIME ZONE 'UTC')::date AS day,
       e.category, e.event_type, e.status,
       pg_catalog.count(*) AS events
  FROM @extschema@.events e
 GROUP BY 1, 2, 3, 4;

-- Comments: BI tools show them.  One text per column name, shared by the views.
COMMENT ON VIEW @extschema@.event_types IS 'Every event code with its category and description.';
COMMENT ON VIEW @extschema@.event_log IS
    'Every audit event, with the description of its code and the columns an UPDATE changed. Filter it with audit_log.search().';
COMMENT ON VIEW @extschema@.privileged_changes IS
    'Privileged changes: events of the categories role, privilege, config, ddl and audit.';
COMMENT ON VIEW @extschema@.login_activity IS
    'Successful and failed logins (category auth), one row per attempt.';
COMMENT ON VIEW @extschema@.daily_counts IS
    'Number of events per UTC day, category, event type and status: a dashboard''s starting point.';

DO $comments$
DECLARE
    c record;
    txt text;
    doc constant jsonb := $doc${
      "event_id": "Identifier of the event, increasing in capture order; unique.",
      "occurred_at": "When the event was captured (clock time).",
      "category": "Category: data, ddl, privilege, role, auth, config, audit or app.",
      "event_type": "Lowercase dotted event code, e.g. role.created; see audit_log.event_types.",
      "status": "success or failure.",
      "actor": "Application user from the context (audit_log.actor), else the session user.",
      "actor_type": "Kind of actor from the context (user, api_client, support, provisioner, system...), else db_role.",
      "db_user": "The real database login (session_user); never taken from the context.",
      "effective_role": "current_user at capture: shows SET ROLE and SECURITY DEFINER.",
      "client_addr": "End user's address from the context, else the connection's client address.",
      "application_name": "application_name of the session.",
      "user_agent": "End user's user agent, from the context.",
      "tenant": "Tenant, from the context.",
      "request_id": "Correlation id of the request, from the context.",
      "database": "Database the event happened in.",
      "object_type": "Kind of object affected: table, role, database, function...",
      "object_name": "Schema-qualified name of the object, or the role name.",
      "resource_id": "Primary key of the affected row, as text (42, or 1,7 for composite keys).",
      "command": "Command tag, e.g. UPDATE, GRANT, ALTER ROLE.",
      "old_data": "Row before the change (UPDATE, DELETE), after exclusions and masks.",
      "new_data": "INSERT: the new row; UPDATE: only the changed columns, so old_data || new_data is the row after.",
      "statement": "SQL text where captured, with secrets redacted.",
      "details": "Everything else: error of a failure, authentication method, export filters...",
      "txid": "Transaction id: groups the events of one transaction.",
      "backend_pid": "Process id of the server backend that captured the event.",
      "description": "What an event of this code means (from audit_log.event_types).",
      "changed_columns": "For an UPDATE, the names of the columns whose values changed (keys of new_data).",
      "source": "NULL for an event captured in this database; in a central audit database, the source it came from (see audit_log.sources).",
      "succeeded": "True for a successful login, false for a failed attempt.",
      "user_name": "User name the client logged in (or tried to log in) with.",
      "auth_method": "Authentication method (from details).",
      "failure_reason": "Why a failed login failed (from details).",
      "day": "UTC calendar day of the events.",
      "events": "Number of events."
    }$doc$;
    special constant jsonb := $doc${
      "event_types.event_type": "Lowercase dotted event code, e.g. role.created.",
      "event_types.category": "Category of the code: data, ddl, privilege, role, auth, config, audit or app.",
      "event_types.description": "What an event of this code means.",
      "login_activity.event_type": "auth.login_succeeded or auth.login_failed.",
      "login_activity.client_addr": "Address the login came from.",
      "login_activity.database": "Database the client asked for."
    }$doc$;
BEGIN
    FOR c IN
        SELECT cl.relname, a.attname
          FROM pg_catalog.pg_attribute a
          JOIN pg_catalog.pg_class cl ON cl.oid = a.attrelid
         WHERE cl.relnamespace = '@extschema@'::regnamespace
           AND cl.relname IN ('event_types', 'event_log', 'privileged_changes', 'login_activity', 'daily_counts')
           AND a.attnum > 0 AND NOT a.attisdropped
    LOOP
        txt := COALESCE(special ->> (c.relname || '.' || c.attname), doc ->> c.attname);
        IF txt IS NULL THEN
            RAISE EXCEPTION 'no comment for %.%', c.relname, c.attname;
        END IF;
        EXECUTE pg_catalog.format('COMMENT ON COLUMN %I.%I.%I IS %L', '@extschema@', c.relname, c.attname, txt);
    END LOOP;
END
$comments$;

/*
 * _search_where(filters): the WHERE clause of search() and export() over
 * alias "e" of audit_log.events or audit_log.event_log, with every value
 * inlined as a quoted constant, so that the planner prunes partitions and
 * matches the indexes at plan time.  Raises the errors of bad filters.
 * Granted to nobody.
 */
CREATE FUNCTION @extschema@._search_where(usernames text[], event_types text[], categories text[],
    resource_ids text[], user_types text[], ip_addresses cidr[], since timestamptz,
    until timestamptz, text_query text, statuses text[], tenants text[], after_event_id bigint,
    sources text[] DEFAULT NULL)
RETURNS text
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
SET datestyle = 'ISO, YMD'
AS $$
DECLARE
    w text[] := ARRAY['true'];
    keys constant text := '(ARRAY[''u:'' || e.actor, ''u:'' || e.db_user, ''t:'' || e.event_type, ''r:'' || e.resource_id])';
    ors text[];
    net cidr;
    pat text;
BEGIN
    IF since IS NOT NULL AND until IS NOT NULL AND since > until THEN
        RAISE EXCEPTION 'since (%) is after until (%)', since, until
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'since is the inclusive start of the range and until its exclusive end.';
    END IF;
    IF usernames IS NOT NULL THEN
        w := w || format('%s OPERATOR(pg_catalog.&&) %L::text[]', keys,
                         ARRAY(SELECT 'u:' || x FROM unnest(usernames) x WHERE x IS NOT NULL));
    END IF;
    IF event_types IS NOT NULL THEN
        w := w || format('%s OPERATOR(pg_catalog.&&) %L::text[]', keys,
                         ARRAY(SELECT 't:' || x FROM unnest(event_types) x WHERE x IS NOT NULL));
    END IF;
    IF resource_ids IS NOT NULL THEN
        w := w || format('%s OPERATOR(pg_catalog.&&) %L::text[]', keys,
                         ARRAY(SELECT 'r:' || x FROM unnest(resource_ids) x WHERE x IS NOT NULL));
    END IF;
    IF categories IS NOT NULL THEN
        w := w || format('e.category = ANY (%L::text[])', categories);
    END IF;
    IF user_types IS NOT NULL THEN
        w := w || format('e.actor_type = ANY (%L::text[])', user_types);
    END IF;
    IF ip_addresses IS NOT NULL THEN
        ors := ARRAY['false'];
        FOREACH net IN ARRAY ip_addresses LOOP
            IF net IS NOT NULL THEN
                ors := ors || format('e.client_addr OPERATOR(pg_catalog.<<=) %L::inet', net);
            END IF;
        END LOOP;
        w := w || ('(' || array_to_string(ors, ' OR ') || ')');
    END IF;
    IF since IS NOT NULL THEN
        w := w || format('e.occurred_at >= %L::timestamptz', since);
    END IF;
    IF until IS NOT NULL THEN
        w := w || format('e.occurred_at < %L::timestamptz', until);
    END IF;
    IF text_query IS NOT NULL THEN
        -- (chr(92), a backslash: read alike whatever standard_conforming_strings says)
        pat := '%' || replace(replace(replace(text_query, chr(92), chr(92) || chr(92)), '%', chr(92) || '%'),
                              '_', chr(92) || '_') || '%';
        w := w || format('(e.actor ILIKE %1$L OR e.db_user ILIKE %1$L OR e.event_type ILIKE %1$L'
                         ' OR e.object_name ILIKE %1$L OR e.resource_id ILIKE %1$L OR e.statement ILIKE %1$L'
                         ' OR e.old_data::text ILIKE %1$L OR e.new_data::text ILIKE %1$L'
                         ' OR e.details::text ILIKE %1$L)', pat);
    END IF;
    IF statuses IS NOT NULL THEN
        w := w || format('e.status = ANY (%L::text[])', statuses);
    END IF;
    IF tenants IS NOT NULL THEN
        w := w || format('e.tenant = ANY (%L::text[])', tenants);
    END IF;
    IF after_event_id IS NOT NULL THEN
        w := w || format('e.event_id > %s', after_event_id);
    END IF;
    IF sources IS NOT NULL THEN
        -- 'local' stands for this database's own events (source NULL).
        w := w || format('(e.source = ANY (%L::text[])%s)', sources,
                         CASE WHEN 'local' = ANY (sources) THEN ' OR e.source IS NULL' ELSE '' END);
    END IF;
    RETURN array_to_string(w, ' AND ');
END
$$;

/*
 * _search_filters(filters): the filters given, as a jsonb object (for the
 * details of audit.exported).  Granted to nobody.
 */
CREATE FUNCTION @extschema@._search_filters(usernames text[], event_types text[], categories text[],
    resource_ids text[], user_types text[], ip_addresses cidr[], since timestamptz,
    until timestamptz, text_query text, statuses text[], tenants text[], after_event_id bigint,
    max_rows integer, sources text[] DEFAULT NULL)
RETURNS jsonb
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
SELECT jsonb_strip_nulls(jsonb_build_object(
    'usernames', usernames, 'event_types', event_types, 'categories', categories,
    'resource_ids', resource_ids, 'user_types', user_types, 'ip_addresses', ip_addresses,
    'since', since, 'until', until, 'text_query', text_query, 'statuses', statuses,
    'tenants', tenants, 'after_event_id', after_event_id, 'max_rows', max_rows,
    'sources', sources))
$$;

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
 * skips an event that commits later.  The horizon is this database's: a
 * source's events (a central database) are not held back by it.
 */
CREATE FUNCTION @extschema@.search(usernames text[] DEFAULT NULL, event_types text[] DEFAULT NULL,
    categories text[] DEFAULT NULL, resource_ids text[] DEFAULT NULL, user_types text[] DEFAULT NULL,
    ip_addresses cidr[] DEFAULT NULL, since timestamptz DEFAULT NULL, until timestamptz DEFAULT NULL,
    text_query text DEFAULT NULL, statuses text[] DEFAULT NULL, tenants text[] DEFAULT NULL,
    after_event_id bigint DEFAULT NULL, max_rows integer DEFAULT NULL, sources text[] DEFAULT NULL)
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
                                         after_event_id, sources)
            || ' AND (e.source IS NOT NULL OR e.event_id OPERATOR(pg_catalog.<) $1) ORDER BY e.event_id'
            || CASE WHEN max_rows IS NOT NULL THEN ' LIMIT ' || max_rows ELSE '' END);
        RETURN;
    END IF;
    RETURN QUERY EXECUTE
        'SELECT * FROM @extschema@.event_log e WHERE '
        || @extschema@._search_where(usernames, event_types, categories, resource_ids, user_types,
                                     ip_addresses, since, until, text_query, statuses, tenants,
                                     after_event_id, sources)
        || ' ORDER BY e.event_id';
END
$$;
COMMENT ON FUNCTION @extschema@.search(text[], text[], text[], text[], text[], cidr[], timestamptz,
    timestamptz, text, text[], text[], bigint, integer, text[]) IS
    'Events matching every filter given (any value within one filter), in event_id order; page with after_event_id and max_rows (a page stops below the transactions still in progress).';

REVOKE ALL ON FUNCTION @extschema@._search_where(text[], text[], text[], text[], text[], cidr[],
    timestamptz, timestamptz, text, text[], text[], bigint, text[]) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@._search_filters(text[], text[], text[], text[], text[], cidr[],
    timestamptz, timestamptz, text, text[], text[], bigint, integer, text[]) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.search(text[], text[], text[], text[], text[], cidr[], timestamptz,
    timestamptz, text, text[], text[], bigint, integer, text[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION @extschema@.search(text[], text[], text[], text[], text[], cidr[], timestamptz,
    timestamptz, text, text[], text[], bigint, integer, text[]) TO audit_log_reader, audit_log_admin;

REVOKE ALL ON @extschema@.event_types, @extschema@.event_log, @extschema@.privileged_changes,
    @extschema@.login_activity, @extschema@.daily_counts FROM PUBLIC;
GRANT SELECT ON @extschema@.event_types, @extschema@.event_log, @extschema@.privileged_changes,
    @extschema@.login_activity, @extschema@.daily_counts TO audit_log_reader, audit_log_admin;
