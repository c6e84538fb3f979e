/*
 * audit_log install script, part 80: sources.  Many databases and clusters
 * feed one central audit trail over PostgreSQL's logical replication:
 *
 * - a source runs publish(): the publication audit_log_events of
 *   audit_log.events (root-published, inserts only, every column but
 *   source);
 * - the central database runs subscribe(source, conninfo): a subscription
 *   audit_log_<source> with a slot of the same name on the source.  The
 *   apply leaves source NULL (it is not published); the trigger
 *   audit_log_source_fill (C, src/sources.c), enabled for replica only,
 *   sets it from the applying subscription's name;
 * - ingest(source, events) stores events of a feed from outside
 *   PostgreSQL.
 *
 * The seal records of a source (its audit_log.seal) are published too; on
 * the central database the trigger audit_log_source_seal (replica only)
 * stores them in source_seals instead of the central's own chain, and
 * verify(source => ...) checks them against the source's events here.
 * The central's own seal() and verify() cover its own events only
 * (source NULL), so events arriving late never disturb its chain.
 *
 * (source, event_id) is unique: the partial unique index
 * events_source_event_id_key (part 00) holds (source, event_id,
 * occurred_at, category) -- the partition keys must be in it, and a
 * source's event has one occurred_at and one category -- so a second copy
 * of an event fails.  Replication itself applies each source transaction
 * once (the subscription's origin tracks what was applied), subscribe()
 * refuses to copy the history of a source whose events are already here,
 * and ingest() refuses an event_id the source already has.
 *
 * A name keeps its kind: unsubscribe() marks the source unsubscribed
 * (its events stay, under its name), and neither ingest() nor a
 * subscription of another kind may take the name afterwards (an admin
 * would otherwise store events that read as a PostgreSQL source's).
 * subscribe(), unsubscribe() and ingest() are recorded in the central's
 * own trail (audit.source_subscribed, audit.source_unsubscribed,
 * audit.ingested).
 */

-- The sources this central database knows, by name.
CREATE TABLE @extschema@.source_registry (
    source     text PRIMARY KEY CHECK (source ~ '^[a-z0-9_]{1,50}$' AND source <> 'local'),
    kind       text NOT NULL CHECK (kind IN ('subscription', 'ingest')),
    host       text,
    port       text,
    dbname     text,
    created_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
    unsubscribed_at timestamptz     -- unsubscribe(): the name stays taken
);
COMMENT ON TABLE @extschema@.source_registry IS
    'The sources of this central database (subscriptions and ingested feeds); read it through audit_log.sources.';
REVOKE ALL ON TABLE @extschema@.source_registry FROM PUBLIC;
SELECT pg_catalog.pg_extension_config_dump('@extschema@.source_registry', '');

INSERT INTO @extschema@.event_type_catalog (event_type, category, description, builtin) VALUES
    ('audit.source_subscribed', 'audit', 'A source subscribed to by this central database', true),
    ('audit.source_unsubscribed', 'audit', 'A source or feed no longer received by this central database', true),
    ('audit.ingested', 'audit', 'Events of a feed stored with ingest()', true);

CREATE FUNCTION @extschema@._source_fill() RETURNS trigger
AS 'MODULE_PATHNAME', 'audit_source_fill'
LANGUAGE C;
REVOKE ALL ON FUNCTION @extschema@._source_fill() FROM PUBLIC;

CREATE TRIGGER audit_log_source_fill BEFORE INSERT ON @extschema@.events
    FOR EACH ROW EXECUTE FUNCTION @extschema@._source_fill();
ALTER TABLE @extschema@.events ENABLE REPLICA TRIGGER audit_log_source_fill;

-- The seal records of the sources, received with their events: the apply
-- of a source's audit_log.seal rows lands here (trigger below), so that
-- verify(source => ...) checks the source's chain over the central copy.
CREATE TABLE @extschema@.source_seals (
    source          text NOT NULL,
    window_start    timestamptz NOT NULL,
    window_end      timestamptz NOT NULL,
    events          bigint NOT NULL,
    event_ids       int8multirange NOT NULL,
    event_hashes    bytea NOT NULL,
    content_digest  bytea NOT NULL,
    prev_digest     bytea,
    digest          bytea NOT NULL,
    sealed_at       timestamptz NOT NULL,
    PRIMARY KEY (source, window_start)
);
COMMENT ON TABLE @extschema@.source_seals IS
    'Seal records of the sources of a central database, as they sealed them; verify(source => ...) reads them.';
REVOKE ALL ON TABLE @extschema@.source_seals FROM PUBLIC;
SELECT pg_catalog.pg_extension_config_dump('@extschema@.source_seals', '');

/*
 * _seal_rows(src): the seal records of this database (src NULL) or of the
 * source src, as rows of audit_log.seal.
 */
CREATE FUNCTION @extschema@._seal_rows(src text) RETURNS SETOF @extschema@.seal
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT * FROM @extschema@.seal WHERE src IS NULL
    UNION ALL
    SELECT x.window_start, x.window_end, x.events, x.event_ids, x.event_hashes, x.content_digest,
           x.prev_digest, x.digest, x.sealed_at
      FROM @extschema@.source_seals x WHERE x.source = src
$$;
REVOKE ALL ON FUNCTION @extschema@._seal_rows(text) FROM PUBLIC;

CREATE FUNCTION @extschema@._apply_source() RETURNS text
AS 'MODULE_PATHNAME', 'audit_apply_source'
LANGUAGE C STABLE;
REVOKE ALL ON FUNCTION @extschema@._apply_source() FROM PUBLIC;

/*
 * _source_seal_fill(): BEFORE INSERT row trigger of audit_log.seal, for
 * replica only: a seal record a source's subscription applies goes to
 * source_seals instead.
 */
CREATE FUNCTION @extschema@._source_seal_fill() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    src text := @extschema@._apply_source();
BEGIN
    IF src IS NULL THEN
        RETURN NEW;
    END IF;
    INSERT INTO @extschema@.source_seals (source, window_start, window_end, events, event_ids,
        event_hashes, content_digest, prev_digest, digest, sealed_at)
    VALUES (src, NEW.window_start, NEW.window_end, NEW.events, NEW.event_ids, NEW.event_hashes,
            NEW.content_digest, NEW.prev_digest, NEW.digest, NEW.sealed_at)
    ON CONFLICT DO NOTHING;
    RETURN NULL;
END
$$;
REVOKE ALL ON FUNCTION @extschema@._source_seal_fill() FROM PUBLIC;

CREATE TRIGGER audit_log_source_seal BEFORE INSERT ON @extschema@.seal
    FOR EACH ROW EXECUTE FUNCTION @extschema@._source_seal_fill();
ALTER TABLE @extschema@.seal ENABLE REPLICA TRIGGER audit_log_source_seal;

CREATE FUNCTION @extschema@._source_remote(conninfo text, slot text, action text) RETURNS text
AS 'MODULE_PATHNAME', 'audit_source_remote'
LANGUAGE C VOLATILE;
REVOKE ALL ON FUNCTION @extschema@._source_remote(text, text, text) FROM PUBLIC;

/*
 * _check_source_name(source): lowercase letters, digits and _, not
 * 'local' (which stands for the central database's own events).
 */
CREATE FUNCTION @extschema@._check_source_name(source text) RETURNS void
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF source IS NULL OR source !~ '^[a-z0-9_]{1,50}$' OR source = 'local' THEN
        RAISE EXCEPTION 'invalid source name "%"', source
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = 'A source name is 1 to 50 lowercase letters, digits and underscores; local is reserved for this database''s own events.',
                  HINT = 'Name the source after its server and database, e.g. billing_db1.';
    END IF;
END
$$;
REVOKE ALL ON FUNCTION @extschema@._check_source_name(text) FROM PUBLIC;

/*
 * _conninfo_part(conninfo, key): one key of a conninfo string, either
 * key=value or a postgresql:// URI; never the password.
 */
CREATE FUNCTION @extschema@._conninfo_part(conninfo text, key text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
SELECT CASE
    WHEN conninfo ~ '^postgres(ql)?://' THEN
        CASE key
            WHEN 'host' THEN (regexp_match(conninfo, '^postgres(?:ql)?://(?:[^@/]*@)?([^:/?]*)'))[1]
            WHEN 'port' THEN (regexp_match(conninfo, '^postgres(?:ql)?://(?:[^@/]*@)?[^:/?]*:([0-9]+)'))[1]
            WHEN 'dbname' THEN (regexp_match(conninfo, '^postgres(?:ql)?://[^/]*/([^?]+)'))[1]
        END
    ELSE (regexp_match(conninfo, '(?:^|\s)' || key || '\s*=\s*(''(?:[^''\\]|\\.)*''|\S+)'))[1]
END
$$;
REVOKE ALL ON FUNCTION @extschema@._conninfo_part(text, text) FROM PUBLIC;

/*
 * publish(): on a source database, the publication audit_log_events
 * (idempotent); returns its name.
 */
CREATE FUNCTION @extschema@.publish() RETURNS text
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET audit_log.internal = on
AS $$
DECLARE
    cols text;
BEGIN
    IF current_setting('wal_level') <> 'logical' THEN
        RAISE EXCEPTION 'wal_level is %, a source needs logical', current_setting('wal_level')
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'Run ALTER SYSTEM SET wal_level = logical; and restart the server, then publish() again.';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_publication WHERE pubname = 'audit_log_events') THEN
        SELECT string_agg(quote_ident(a.attname), ', ' ORDER BY a.attnum) INTO cols
          FROM pg_attribute a
         WHERE a.attrelid = '@extschema@.events'::regclass AND a.attnum > 0
           AND NOT a.attisdropped AND a.attname <> 'source';
        -- Only the events captured here (source NULL): a feed ingest()ed
        -- here must not reach the central database as this source's events.
        EXECUTE format('CREATE PUBLICATION audit_log_events FOR TABLE %I.events (%s) WHERE (source IS NULL), %I.seal'
                       ' WITH (publish = ''insert'', publish_via_partition_root = true)',
                       '@extschema@', cols, '@extschema@');
    ELSIF NOT EXISTS (
        SELECT FROM pg_publication p JOIN pg_roles o ON o.oid = p.pubowner
         WHERE p.pubname = 'audit_log_events' AND o.rolsuper AND NOT p.puballtables
           AND p.pubinsert AND NOT p.pubupdate AND NOT p.pubdelete AND NOT p.pubtruncate
           AND p.pubviaroot
           AND (SELECT pg_catalog.array_agg(r.prrelid ORDER BY r.prrelid) FROM pg_publication_rel r
                 WHERE r.prpubid = p.oid)
               = (SELECT pg_catalog.array_agg(x ORDER BY x)
                    FROM unnest(ARRAY['@extschema@.events'::regclass::oid, '@extschema@.seal'::regclass::oid]) x)
           AND NOT EXISTS (SELECT FROM pg_publication_namespace n WHERE n.pnpubid = p.oid)
           -- the events: captured here only, every column but source
           AND EXISTS (SELECT FROM pg_publication_tables t
                        WHERE t.pubname = p.pubname AND t.schemaname = '@extschema@' AND t.tablename = 'events'
                          AND t.rowfilter = '(source IS NULL)'
                          AND t.attnames = (SELECT pg_catalog.array_agg(a.attname ORDER BY a.attnum)
                                              FROM pg_attribute a
                                             WHERE a.attrelid = '@extschema@.events'::regclass AND a.attnum > 0
                                               AND NOT a.attisdropped AND a.attname <> 'source'))) THEN
        -- Made by another role (it may alter it at will), left by an earlier
        -- install of the extension (it names tables that are gone), or
        -- altered since: not the trail's publication.
        RAISE EXCEPTION 'publication "audit_log_events" exists and is not the one publish() makes'
            USING ERRCODE = 'duplicate_object',
                  DETAIL = 'It must belong to a superuser and publish only the inserts of audit_log.events and audit_log.seal, through the partitioned root.',
                  HINT = 'Drop it (DROP PUBLICATION audit_log_events), then call publish() again.';
    END IF;
    -- The central database connects as a member of audit_log_reader (with
    -- REPLICATION); the initial copy reads the events table itself.
    EXECUTE format('GRANT SELECT ON TABLE %I.events, %I.seal TO audit_log_reader', '@extschema@', '@extschema@');
    RETURN 'audit_log_events';
END
$$;
COMMENT ON FUNCTION @extschema@.publish() IS
    'On a source database: create (once) the publication audit_log_events of the audit events for a central audit database; returns its name.';

/*
 * subscribe(source, conninfo, copy_history): on the central database,
 * receive the events of a source under the name source.
 */
CREATE FUNCTION @extschema@.subscribe(source text, conninfo text, copy_history boolean DEFAULT true)
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET audit_log.internal = on
AS $$
DECLARE
    sub text := 'audit_log_' || source;
    known @extschema@.source_registry;
BEGIN
    PERFORM @extschema@._check_source_name(source);
    -- The fence of a subscription (src/sources.c) is half in a hook of the
    -- preloaded library: without it a source's publication could name any
    -- table of this database.
    IF NOT (SELECT s.preloaded FROM @extschema@._status() s) THEN
        RAISE EXCEPTION 'a central audit database needs audit_log in shared_preload_libraries'
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  DETAIL = 'Without the preload a subscription could write any table a source publishes.',
                  HINT = 'Add audit_log to shared_preload_libraries and restart, then subscribe.';
    END IF;
    IF conninfo IS NULL OR conninfo = '' THEN
        RAISE EXCEPTION 'conninfo must not be empty'
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Give the source database''s connection string, e.g. ''host=db1 dbname=app user=replicator''.';
    END IF;
    -- One call for a name at a time, ingest() included (a name keeps its kind).
    PERFORM pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtext('audit_log.ingest'), pg_catalog.hashtext(source));
    SELECT * INTO known FROM @extschema@.source_registry r WHERE r.source = subscribe.source;
    IF known.kind = 'ingest' THEN
        RAISE EXCEPTION 'source "%" is an ingested feed', source
            USING ERRCODE = 'duplicate_object',
                  DETAIL = 'A name keeps its kind: the feed''s events would mix with the source''s.',
                  HINT = 'Subscribe to the source under a name of its own.';
    END IF;
    IF (known.source IS NOT NULL AND known.unsubscribed_at IS NULL)
       OR EXISTS (SELECT 1 FROM pg_subscription s WHERE s.subname = sub) THEN
        RAISE EXCEPTION 'source "%" already exists', source
            USING ERRCODE = 'duplicate_object',
                  HINT = 'Choose another name, or call audit_log.unsubscribe() first.';
    END IF;
    IF coalesce(copy_history, true) AND EXISTS (SELECT 1 FROM @extschema@.events e WHERE e.source = subscribe.source) THEN
        RAISE EXCEPTION 'events of source "%" are already stored here', source
            USING ERRCODE = 'duplicate_object',
                  DETAIL = 'Copying the source''s history again would store its events twice.',
                  HINT = 'Subscribe with copy_history => false to receive only new events.';
    END IF;
    -- The server connects with its own identity: a role that is not a
    -- superuser must not borrow it (trust, peer, .pgpass) on the source.
    -- An empty password is none (libpq reads .pgpass); _source_remote()
    -- then checks that the source asked for it.
    IF NOT (SELECT r.rolsuper FROM pg_roles r WHERE r.rolname = session_user)
       AND coalesce(@extschema@._conninfo_part(conninfo, 'password'), '') IN ('', '''''') THEN
        RAISE EXCEPTION 'a conninfo without a password is refused for a role that is not a superuser'
            USING ERRCODE = 'insufficient_privilege',
                  HINT = 'Put the password of the source''s replication role in the conninfo (password=...).';
    END IF;
    -- Reachable, with the publication: a clear error, nothing created
    -- (and, for a role that is not a superuser, one host: _source_remote()).
    PERFORM @extschema@._source_remote(conninfo, NULL, 'check');
    -- binary: events travel in the types' binary forms (no jsonb or inet
    -- text to parse again on the central side; the apply's main cost).
    EXECUTE format('CREATE SUBSCRIPTION %I CONNECTION %L PUBLICATION audit_log_events'
                   ' WITH (create_slot = false, slot_name = %L, copy_data = %s, enabled = true,'
                   ' binary = true)',
                   sub, conninfo, sub, CASE WHEN coalesce(copy_history, true) THEN 'true' ELSE 'false' END);
    INSERT INTO @extschema@.source_registry AS r (source, kind, host, port, dbname)
    VALUES (source, 'subscription', @extschema@._conninfo_part(conninfo, 'host'),
            @extschema@._conninfo_part(conninfo, 'port'), @extschema@._conninfo_part(conninfo, 'dbname'))
    ON CONFLICT ON CONSTRAINT source_registry_pkey DO UPDATE
        SET host = excluded.host, port = excluded.port, dbname = excluded.dbname, unsubscribed_at = NULL;
    PERFORM @extschema@._record('audit', 'audit.source_subscribed', 'success', 'source', source, 'SELECT',
        pg_catalog.jsonb_build_object('host', @extschema@._conninfo_part(conninfo, 'host'),
                                      'port', @extschema@._conninfo_part(conninfo, 'port'),
                                      'database', @extschema@._conninfo_part(conninfo, 'dbname'),
                                      'copy_history', coalesce(copy_history, true),
                                      'again', known.source IS NOT NULL));
    -- Last: the slot is on the source, outside this transaction.
    PERFORM @extschema@._source_remote(conninfo, sub, 'create');
END
$$;
COMMENT ON FUNCTION @extschema@.subscribe(text, text, boolean) IS
    'On the central database: receive the audit events of a source database (which ran audit_log.publish()) under the name source.';

/*
 * unsubscribe(source): stop receiving a source; its events stay.
 */
CREATE FUNCTION @extschema@.unsubscribe(source text) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET audit_log.internal = on
AS $$
DECLARE
    sub text := 'audit_log_' || source;
    conn text;
    k text;
BEGIN
    PERFORM pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtext('audit_log.ingest'), pg_catalog.hashtext(source));
    SELECT r.kind INTO k FROM @extschema@.source_registry r
     WHERE r.source = unsubscribe.source AND r.unsubscribed_at IS NULL;
    IF k IS NULL THEN
        RAISE EXCEPTION 'source "%" does not exist', source
            USING ERRCODE = 'undefined_object',
                  HINT = 'See audit_log.sources for the sources of this database.';
    END IF;
    -- The name stays taken, with its kind (its events stay, under it).
    UPDATE @extschema@.source_registry r SET unsubscribed_at = pg_catalog.now()
     WHERE r.source = unsubscribe.source;
    PERFORM @extschema@._record('audit', 'audit.source_unsubscribed', 'success', 'source', source, 'SELECT',
        pg_catalog.jsonb_build_object('kind', k, 'events_received',
            (SELECT count(*) FROM @extschema@.events e WHERE e.source = unsubscribe.source)));
    SELECT s.subconninfo INTO conn FROM pg_subscription s
     WHERE s.subname = sub
       AND s.subdbid = (SELECT d.oid FROM pg_database d WHERE d.datname = current_database());
    IF conn IS NULL THEN
        RETURN;
    END IF;
    EXECUTE format('ALTER SUBSCRIPTION %I DISABLE', sub);
    EXECUTE format('ALTER SUBSCRIPTION %I SET (slot_name = NONE)', sub);
    EXECUTE format('DROP SUBSCRIPTION %I', sub);
    BEGIN
        PERFORM @extschema@._source_remote(conn, sub, 'drop');
    EXCEPTION WHEN OTHERS THEN
        RAISE WARNING 'the replication slot "%" was left on the source', sub
            USING DETAIL = SQLERRM,
                  HINT = format('It keeps the source''s WAL: when the source is reachable, run there SELECT pg_drop_replication_slot(%L);', sub);
    END;
END
$$;
COMMENT ON FUNCTION @extschema@.unsubscribe(text) IS
    'On the central database: stop receiving a source and drop its slot on the source; the events received stay.';

/*
 * ingest(source, events): store the events of a feed from outside
 * PostgreSQL, all or nothing; returns how many were stored.
 */
CREATE FUNCTION @extschema@.ingest(source text, events jsonb) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET audit_log.internal = on
AS $$
DECLARE
    n integer;
    i integer;
    el jsonb;
    code text;
    cat text;
    known record;
    k text;
    base bigint;
    dup bigint;
    lo bigint;
    hi bigint;
    erow @extschema@.events;
    -- The keys an element may have: the columns of events, source excepted.
    cols constant text[] := ARRAY(SELECT a.attname::text FROM pg_catalog.pg_attribute a
                                   WHERE a.attrelid = '@extschema@.events'::pg_catalog.regclass
                                     AND a.attnum > 0 AND NOT a.attisdropped AND a.attname <> 'source');
BEGIN
    PERFORM @extschema@._check_source_name(source);
    -- (source, event_id) is an event's key: one ingest() of a source at a
    -- time, each reading what the one before committed (a snapshot older
    -- than the lock would not see its ids).
    IF current_setting('transaction_isolation') <> 'read committed' THEN
        RAISE EXCEPTION 'ingest() needs the read committed isolation level, not %', current_setting('transaction_isolation')
            USING ERRCODE = 'invalid_transaction_state',
                  HINT = 'Call it in a transaction of its own, or at READ COMMITTED.';
    END IF;
    PERFORM pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtext('audit_log.ingest'), pg_catalog.hashtext(source));
    IF EXISTS (SELECT 1 FROM @extschema@.source_registry r
                WHERE r.source = ingest.source AND r.kind <> 'ingest') THEN
        RAISE EXCEPTION 'source "%" is a subscription', source
            USING ERRCODE = 'duplicate_object',
                  DETAIL = 'A name keeps its kind, after unsubscribe() too: a feed''s events would read as the source''s.',
                  HINT = 'Ingest a feed under a name of its own.';
    END IF;
    IF events IS NULL OR jsonb_typeof(events) <> 'array' THEN
        RAISE EXCEPTION 'events must be a JSON array of objects'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    n := jsonb_array_length(events);
    -- Validate every element first, like log(): the first bad one names its index.
    FOR i IN 0 .. n - 1 LOOP
        el := events -> i;
        IF jsonb_typeof(el) <> 'object' THEN
            RAISE EXCEPTION 'element % of events is not a JSON object', i USING ERRCODE = 'invalid_parameter_value';
        END IF;
        FOR k IN SELECT jsonb_object_keys(el) LOOP
            IF k <> ALL (cols) THEN
                RAISE EXCEPTION 'element % of events: unknown column "%"', i, k
                    USING ERRCODE = 'invalid_parameter_value', HINT = 'The keys are column names of audit_log.events (source excepted).';
            END IF;
        END LOOP;
        code := el ->> 'event_type';
        IF code IS NULL OR NOT @extschema@._is_event_code(code) THEN
            RAISE EXCEPTION 'element % of events: invalid event type "%"', i, code
                USING ERRCODE = 'invalid_parameter_value',
                      HINT = 'Event types are lowercase dotted identifiers such as "idp.login_failed".';
        END IF;
        SELECT c.builtin, c.category INTO known FROM @extschema@.event_type_catalog c WHERE c.event_type = code;
        IF @extschema@._is_reserved_code(code) THEN
            RAISE EXCEPTION 'element % of events: event type "%" is reserved for audit_log''s own capture', i, code
                USING ERRCODE = 'insufficient_privilege',
                      HINT = format('Choose an application code, such as "app.%s".', code);
        END IF;
        cat := coalesce(el ->> 'category', known.category, @extschema@._category_of(code));
        IF NOT cat = ANY (array_remove(@extschema@._categories(), 'audit')) THEN
            RAISE EXCEPTION 'element % of events: invalid category "%"', i, cat
                USING ERRCODE = 'invalid_parameter_value',
                      HINT = 'Use one of ' || array_to_string(array_remove(@extschema@._categories(), 'audit'), ', ') || '.';
        END IF;
        IF coalesce(el ->> 'status', 'success') NOT IN ('success', 'failure') THEN
            RAISE EXCEPTION 'element % of events: invalid event status "%"', i, el ->> 'status'
                USING ERRCODE = 'invalid_parameter_value', HINT = 'Use ''success'' or ''failure''.';
        END IF;
        BEGIN
            -- every value must read as its column's type
            erow := pg_catalog.jsonb_populate_record(NULL::@extschema@.events, el);
        EXCEPTION WHEN data_exception THEN
            RAISE EXCEPTION 'element % of events: %', i, SQLERRM USING ERRCODE = SQLSTATE;
        END;
        -- A time no day partition can hold (infinite, or before year 1: the
        -- partition names have no era) would stay in the safety net.
        IF NOT pg_catalog.isfinite(erow.occurred_at) OR erow.occurred_at < '0001-01-01 00:00:00+00' THEN
            RAISE EXCEPTION 'element % of events: occurred_at % is out of range', i, erow.occurred_at
                USING ERRCODE = 'invalid_parameter_value',
                      HINT = 'Times of a feed are from year 1 on, and finite.';
        END IF;
        -- An event from the future would hold alert windows shut until then.
        IF erow.occurred_at > pg_catalog.now() + interval '5 minutes' THEN
            RAISE EXCEPTION 'element % of events: occurred_at % is in the future', i,
                pg_catalog.to_char(erow.occurred_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')
                USING ERRCODE = 'invalid_parameter_value',
                      HINT = 'Times of a feed may run at most 5 minutes ahead of this server''s clock.';
        END IF;
        -- A seal digests an event as one JSON array (part 40_integrity).
        IF pg_catalog.octet_length(el::text) > 64 * 1024 * 1024 THEN
            RAISE EXCEPTION 'element % of events is too large to be sealed', i
                USING ERRCODE = 'program_limit_exceeded',
                      DETAIL = 'An event may take at most 64 MB of JSON.';
        END IF;
    END LOOP;
    INSERT INTO @extschema@.event_type_catalog (event_type, category, description, builtin)
    SELECT DISTINCT ON (x ->> 'event_type') x ->> 'event_type',
           coalesce(x ->> 'category', @extschema@._category_of(x ->> 'event_type')), 'Application event', false
      FROM jsonb_array_elements(events) x
    ON CONFLICT DO NOTHING;
    -- An id given is refused when the source has it already, whatever its
    -- time or category (the unique index also holds those, below), or
    -- when it is given twice.
    SELECT min(d.i) INTO dup
      FROM (SELECT a.o - 1 AS i, (a.x ->> 'event_id')::bigint AS id,
                   count(*) OVER (PARTITION BY (a.x ->> 'event_id')::bigint) AS copies
              FROM pg_catalog.jsonb_array_elements(events) WITH ORDINALITY AS a(x, o)
             WHERE a.x ? 'event_id' AND pg_catalog.jsonb_typeof(a.x -> 'event_id') <> 'null') d
     WHERE d.copies > 1
        OR EXISTS (SELECT 1 FROM @extschema@.events e WHERE e.source = ingest.source AND e.event_id = d.id);
    IF dup IS NOT NULL THEN
        RAISE EXCEPTION 'element % of events: its event_id is already stored for source "%", or given twice', dup, source
            USING ERRCODE = 'unique_violation',
                  DETAIL = '(source, event_id) identifies an event; nothing was stored.';
    END IF;
    -- Elements without an event_id are numbered after the source's last
    -- one and after every id given here.
    SELECT greatest(coalesce(max(e.event_id), 0),
                    (SELECT max((a.x ->> 'event_id')::bigint) FROM pg_catalog.jsonb_array_elements(events) a(x)
                      WHERE pg_catalog.jsonb_typeof(a.x -> 'event_id') = 'number'))
      INTO base FROM @extschema@.events e WHERE e.source = ingest.source;
    BEGIN
        -- The row is the element's keys (JSON nulls as SQL NULL) over the
        -- defaults, with the source: every column comes from the table's type.
        WITH ins AS (
        INSERT INTO @extschema@.events
        SELECT r.*
          FROM pg_catalog.jsonb_array_elements(events) WITH ORDINALITY AS a(x, o)
          LEFT JOIN @extschema@.event_type_catalog c ON c.event_type = a.x ->> 'event_type'
         CROSS JOIN LATERAL pg_catalog.jsonb_populate_record(NULL::@extschema@.events,
                pg_catalog.jsonb_build_object('event_id', base + a.o, 'occurred_at', pg_catalog.now(),
                                              'category', coalesce(c.category, 'app'), 'status', 'success')
                || (SELECT coalesce(pg_catalog.jsonb_object_agg(k.key, k.value), '{}'::jsonb)
                      FROM pg_catalog.jsonb_each(a.x) k WHERE pg_catalog.jsonb_typeof(k.value) <> 'null')
                || pg_catalog.jsonb_build_object('source', ingest.source)) AS r
        RETURNING event_id)
        SELECT min(ins.event_id), max(ins.event_id) INTO lo, hi FROM ins;
    EXCEPTION WHEN unique_violation THEN
        RAISE EXCEPTION 'an event_id of events is already stored for source "%"', source
            USING ERRCODE = 'unique_violation',
                  DETAIL = '(source, event_id) identifies an event; nothing was stored.';
    END;
    INSERT INTO @extschema@.source_registry AS r (source, kind) VALUES (source, 'ingest')
    ON CONFLICT ON CONSTRAINT source_registry_pkey DO UPDATE SET unsubscribed_at = NULL WHERE r.unsubscribed_at IS NOT NULL;
    IF n > 0 THEN
        PERFORM @extschema@._record('audit', 'audit.ingested', 'success', 'source', source, 'SELECT',
            pg_catalog.jsonb_build_object('events', n, 'first_event_id', lo, 'last_event_id', hi));
    END IF;
    RETURN n;
END
$$;
COMMENT ON FUNCTION @extschema@.ingest(text, jsonb) IS
    'On the central database: store events of a feed from outside PostgreSQL (a JSON array of objects with the event columns) under the name source; all or nothing.';

/*
 * _source_slot_state(source): for a source whose apply worker is not
 * running, the state of its slot on the source (wal_status, 'missing', or
 * 'unreachable'), asked with a 3-second connect timeout.  SECURITY
 * DEFINER: it reads the subscription's conninfo, and returns only that.
 */
CREATE FUNCTION @extschema@._source_slot_state(source text) RETURNS text
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    conn text;
BEGIN
    SELECT s.subconninfo INTO conn FROM pg_subscription s
     WHERE s.subname = 'audit_log_' || _source_slot_state.source
       AND s.subdbid = (SELECT d.oid FROM pg_database d WHERE d.datname = current_database());
    IF conn IS NULL THEN
        RETURN NULL;
    END IF;
    IF conn !~ '^postgres(ql)?://' THEN
        conn := conn || ' connect_timeout=3';
    END IF;
    BEGIN
        RETURN @extschema@._source_remote(conn, 'audit_log_' || _source_slot_state.source, 'slot');
    EXCEPTION WHEN OTHERS THEN
        RETURN 'unreachable';
    END;
END
$$;
REVOKE ALL ON FUNCTION @extschema@._source_slot_state(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION @extschema@._source_slot_state(text) TO audit_log_reader, audit_log_admin;

/*
 * sources (view): the sources of this central database and how they are
 * doing.
 */
CREATE VIEW @extschema@.sources AS
SELECT r.source, r.kind, r.host, r.port, r.dbname AS database,
       CASE WHEN r.unsubscribed_at IS NOT NULL THEN 'unsubscribed'
            WHEN r.kind = 'ingest' THEN NULL
            -- No worker, or one that has received nothing yet (it restarts
            -- every wal_retrieve_retry_interval after a failure): ask the source.
            WHEN st.pid IS NULL OR st.received_lsn IS NULL THEN
                 CASE WHEN @extschema@._source_slot_state(r.source) IN ('lost', 'missing') THEN 'lost'
                      ELSE 'down' END
            WHEN EXISTS (SELECT 1 FROM pg_subscription_rel sr
                          WHERE sr.srsubid = s.oid AND sr.srsubstate <> 'r')
                 OR pg_wal_lsn_diff(st.latest_end_lsn, st.received_lsn) > 16 * 1024 * 1024
                 THEN 'catching_up'
            ELSE 'streaming'
       END AS state,
       (SELECT count(*) FROM @extschema@.events e WHERE e.source = r.source) AS events_received,
       (SELECT max(e.occurred_at) FROM @extschema@.events e WHERE e.source = r.source) AS newest_event,
       greatest(pg_wal_lsn_diff(st.latest_end_lsn, st.received_lsn), 0)::bigint AS lag_bytes,
       EXTRACT(epoch FROM now() - st.last_msg_send_time)::double precision AS lag_seconds
  FROM @extschema@.source_registry r
  LEFT JOIN pg_subscription s
         ON s.subname = 'audit_log_' || r.source
        AND s.subdbid = (SELECT d.oid FROM pg_database d WHERE d.datname = current_database())
  LEFT JOIN pg_stat_subscription st ON st.subid = s.oid AND st.relid IS NULL;
COMMENT ON VIEW @extschema@.sources IS
    'The sources of this central database: where they are (never a password), their state, events received and lag.';
COMMENT ON COLUMN @extschema@.sources.source IS 'Name of the source (the source column of its events).';
COMMENT ON COLUMN @extschema@.sources.kind IS 'subscription (a PostgreSQL source) or ingest (a feed stored with audit_log.ingest()).';
COMMENT ON COLUMN @extschema@.sources.host IS 'Host of the source, from its conninfo.';
COMMENT ON COLUMN @extschema@.sources.port IS 'Port of the source, from its conninfo.';
COMMENT ON COLUMN @extschema@.sources.database IS 'Database of the source, from its conninfo.';
COMMENT ON COLUMN @extschema@.sources.state IS 'streaming, catching_up (initial copy or more than 16 MB behind), down (no apply worker: the source is unreachable or failing), lost (the slot on the source was invalidated or dropped: events may be missing) or unsubscribed (its events stay; the name stays taken); NULL for a feed.';
COMMENT ON COLUMN @extschema@.sources.events_received IS 'Events of this source stored here.';
COMMENT ON COLUMN @extschema@.sources.newest_event IS 'occurred_at of the newest event of this source stored here.';
COMMENT ON COLUMN @extschema@.sources.lag_bytes IS 'WAL of the source not yet received, as last reported by the source.';
COMMENT ON COLUMN @extschema@.sources.lag_seconds IS 'Seconds since the last message from the source (it sends one at least every wal_sender_timeout / 2).';

REVOKE ALL ON FUNCTION @extschema@.publish(), @extschema@.subscribe(text, text, boolean),
    @extschema@.unsubscribe(text), @extschema@.ingest(text, jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION @extschema@.publish(), @extschema@.subscribe(text, text, boolean),
    @extschema@.unsubscribe(text), @extschema@.ingest(text, jsonb) TO audit_log_admin;
REVOKE ALL ON @extschema@.sources FROM PUBLIC;
GRANT SELECT ON @extschema@.sources TO audit_log_reader, audit_log_admin;

-- Every table of the extension refuses what a subscription's worker may not
-- write (_replica_fence(), part 00); partitions made later get it from
-- _lock_down().
DO $fence$
DECLARE
    r record;
BEGIN
    FOR r IN SELECT c.oid::regclass AS rel, NOT c.relispartition AS rows FROM pg_catalog.pg_class c
              WHERE c.relnamespace = '@extschema@'::regnamespace AND c.relkind IN ('r', 'p')
              ORDER BY c.oid
    LOOP
        PERFORM @extschema@._replica_fence(r.rel, r.rows);
    END LOOP;
END
$fence$;
