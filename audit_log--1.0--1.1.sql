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

-- The script's own statements (DO blocks, views) run under search_path =
-- pg_catalog, pg_temp: while it runs, PostgreSQL puts on the path the schema
-- of pgcrypto (public, by CASCADE), where a role may have planted a
-- function or operator that an unqualified call would pick over
-- pg_catalog's.  Everything of the extension is named with its schema.
SELECT pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', true);

-- ==== hardening (issue 8): internal operations marked by the SET clause ====
-- The mark of 1.0, _internal(), could outlive a failed call; 1.1 functions
-- set audit_log.internal in their SET clause instead.
CREATE OR REPLACE FUNCTION @extschema@._load() RETURNS boolean
AS 'MODULE_PATHNAME', 'audit_load'
LANGUAGE C STRICT VOLATILE;

REVOKE ALL ON FUNCTION @extschema@._load() FROM PUBLIC;

CREATE OR REPLACE FUNCTION @extschema@.hold(name text, from_time timestamptz, to_time timestamptz, reason text)
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET audit_log.internal = on
AS $$
BEGIN
    IF name IS NULL OR from_time IS NULL OR to_time IS NULL THEN
        RAISE EXCEPTION 'legal hold name, from_time and to_time must not be null'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF btrim(name) = '' THEN
        RAISE EXCEPTION 'legal hold name must not be empty' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF from_time >= to_time THEN
        RAISE EXCEPTION 'legal hold "%" starts at or after its end', name
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = 'from_time must be earlier than to_time.';
    END IF;
    IF EXISTS (SELECT 1 FROM @extschema@.legal_hold h WHERE h.name = hold.name) THEN
        RAISE EXCEPTION 'legal hold "%" already exists', name
            USING ERRCODE = 'duplicate_object', HINT = 'Release it first or choose another name.';
    END IF;
    INSERT INTO @extschema@.legal_hold (name, from_time, to_time, reason) VALUES (name, from_time, to_time, reason);
    PERFORM @extschema@._record('audit', 'audit.hold_placed', 'success', 'legal_hold', name,
        'SELECT audit_log.hold',
        jsonb_build_object('name', name, 'from_time', @extschema@._ts(from_time),
                           'to_time', @extschema@._ts(to_time), 'reason', reason));
END
$$;

CREATE OR REPLACE FUNCTION @extschema@.release(name text)
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET audit_log.internal = on
AS $$
DECLARE
    h record;
BEGIN
    DELETE FROM @extschema@.legal_hold l WHERE l.name = release.name RETURNING * INTO h;
    IF h.name IS NULL THEN
        RAISE EXCEPTION 'legal hold "%" does not exist', coalesce(name, 'NULL')
            USING ERRCODE = 'undefined_object', HINT = 'See audit_log.legal_holds.';
    END IF;
    PERFORM @extschema@._record('audit', 'audit.hold_released', 'success', 'legal_hold', name,
        'SELECT audit_log.release',
        jsonb_build_object('name', name, 'from_time', @extschema@._ts(h.from_time),
                           'to_time', @extschema@._ts(h.to_time), 'reason', h.reason));
END
$$;

CREATE OR REPLACE FUNCTION @extschema@._index_leaf(leaf oid) RETURNS void
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

DROP FUNCTION @extschema@._internal(boolean);

-- ==== partitions: new, attached and detached partitions of an audited table audited at once ====
-- New: _audited_ancestor, _capture_args, _sync_capture, _partition_changed
-- (called by the ddl_command_end event trigger), the event types
-- audit.partition_attached / audit.partition_detached; enable() and
-- disable() apply the capture to every member of the tree (intermediate
-- partitions included); audited_tables gains partition_of.
/*
 * Partitions.  Statement triggers fire only for the table a statement
 * names, so every member of an audited partition tree carries the capture:
 * the audited table with its own options, each partition (leaf or
 * sub-partitioned, at any depth) with the audited table's options and its
 * name as a ninth argument (events name the audited table; details name
 * the partition).  The options that apply to a table are those of its
 * topmost audited ancestor (itself included): a table enabled on its own
 * and later attached is captured with its new parent's options until it is
 * detached.  _sync_capture() applies that rule to a tree;
 * _partition_changed() runs it when a partition is created, attached or
 * detached (called by the ddl_command_end event trigger, with or without
 * the preload).
 */

/*
 * _audited_ancestor(rel): the topmost audited table among rel and its
 * ancestors, NULL when none is audited.
 */
CREATE FUNCTION @extschema@._audited_ancestor(rel regclass)
RETURNS regclass
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT a.relid
      FROM (SELECT rel AS relid, 0::bigint AS n
            UNION ALL
            SELECT x.relid, x.n FROM pg_catalog.pg_partition_ancestors(rel) WITH ORDINALITY AS x(relid, n)) a
     WHERE EXISTS (SELECT 1 FROM @extschema@.table_config c WHERE c.relid OPERATOR(pg_catalog.=) a.relid)
     ORDER BY a.n DESC
     LIMIT 1
$$;
REVOKE ALL ON FUNCTION @extschema@._audited_ancestor(regclass) FROM PUBLIC;

/*
 * _capture_args(audited): the arguments of capture() for an audited
 * table's options (the same text enable() builds).
 */
CREATE FUNCTION @extschema@._capture_args(audited regclass)
RETURNS text
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT pg_catalog.format('%L, %L, %L, %L, %L, %L, %L, %L', c.category,
               c.event_types ->> 'INSERT', c.event_types ->> 'UPDATE',
               c.event_types ->> 'DELETE', c.event_types ->> 'TRUNCATE',
               c.exclude_columns::text, c.mask_columns::text, c.when_changed::text)
      FROM @extschema@.table_config c
     WHERE c.relid OPERATOR(pg_catalog.=) audited
$$;
REVOKE ALL ON FUNCTION @extschema@._capture_args(regclass) FROM PUBLIC;

/*
 * _sync_capture(top): give top and every member of its partition tree the
 * capture its topmost audited ancestor asks for (none: the triggers are
 * dropped).  Callers mark the internal operation.  A foreign table cannot
 * carry the capture (no transition tables): it is refused.
 */
CREATE FUNCTION @extschema@._sync_capture(top regclass)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    m record;
    t record;
    a regclass;
BEGIN
    -- (pg_partition_tree() is empty for a table that is not partitioned)
    FOR m IN SELECT c.oid::regclass AS relid, c.relkind, format('%I.%I', n.nspname, c.relname) AS qname
               FROM (SELECT top AS relid, 0 AS level
                     UNION
                     SELECT p.relid, p.level FROM pg_partition_tree(top) p) p
               JOIN pg_class c ON c.oid OPERATOR(pg_catalog.=) p.relid
               JOIN pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace
              ORDER BY p.level, c.oid
    LOOP
        a := @extschema@._audited_ancestor(m.relid);
        IF a IS NULL THEN
            FOR t IN SELECT g.tgname FROM pg_trigger g
                      WHERE g.tgrelid OPERATOR(pg_catalog.=) m.relid
                        AND g.tgname IN ('audit_log_insert', 'audit_log_update',
                                         'audit_log_delete', 'audit_log_truncate')
                      ORDER BY g.tgname
            LOOP
                EXECUTE format('DROP TRIGGER %I ON %s', t.tgname, m.relid);
            END LOOP;
        ELSIF m.relkind = 'f' THEN
            RAISE EXCEPTION 'cannot audit foreign table "%" as a partition of audited table %', m.qname, a::text
                USING ERRCODE = 'feature_not_supported',
                      DETAIL = 'Triggers on foreign tables cannot have transition tables: its direct writes could not be recorded.',
                      HINT = format('Use an ordinary table, or disable auditing on %s first.', a::text);
        ELSIF a OPERATOR(pg_catalog.=) m.relid THEN
            PERFORM @extschema@._attach(m.relid, @extschema@._capture_args(a));
        ELSE
            PERFORM @extschema@._attach(m.relid, @extschema@._capture_args(a) ||
                format(', %L', (SELECT format('%I.%I', n.nspname, c.relname)
                                  FROM pg_class c JOIN pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace
                                 WHERE c.oid OPERATOR(pg_catalog.=) a)));
        END IF;
    END LOOP;
END
$$;
REVOKE ALL ON FUNCTION @extschema@._sync_capture(regclass) FROM PUBLIC;

/*
 * _partition_changed(child, parent, attached, command): child was just
 * created as or attached as a partition of parent (attached), or detached
 * from it.  When parent belongs to an audited tree, child's tree gets the
 * audited table's capture (or, detached, its own capture if it was enabled
 * itself, else none) and an audit.partition_attached / _detached event
 * says so.  Attaching an audited table below a tree that is not audited is
 * refused: the rows written through the parent would not be recorded.
 * parent 0: child, a partitioned table, was renamed or moved to another
 * schema; if it is audited, its partitions' capture takes its new name.
 * Called by the ddl_command_end event trigger (C) through the function
 * manager, in the DDL's transaction; granted to nobody.
 */
CREATE FUNCTION @extschema@._partition_changed(child regclass, parent regclass, attached boolean, command text)
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET audit_log.internal = on
AS $$
DECLARE
    audited regclass;
    own boolean;
    names record;
BEGIN
    IF child IS NULL OR parent IS NULL
       OR NOT EXISTS (SELECT 1 FROM pg_class WHERE oid OPERATOR(pg_catalog.=) child) THEN
        RETURN;
    END IF;
    IF parent::oid OPERATOR(pg_catalog.=) 0::oid THEN
        -- child was renamed or moved: if audited, its partitions' capture
        -- names it anew
        IF EXISTS (SELECT 1 FROM @extschema@.table_config c WHERE c.relid OPERATOR(pg_catalog.=) child) THEN
            PERFORM @extschema@._sync_capture(child);
        END IF;
        RETURN;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_class WHERE oid OPERATOR(pg_catalog.=) parent) THEN
        RETURN;
    END IF;
    audited := @extschema@._audited_ancestor(parent);
    SELECT format('%I.%I', cn.nspname, c.relname) AS child_name,
           format('%I.%I', pn.nspname, p.relname) AS parent_name,
           (SELECT format('%I.%I', an.nspname, a.relname)
              FROM pg_class a JOIN pg_namespace an ON an.oid OPERATOR(pg_catalog.=) a.relnamespace
             WHERE a.oid OPERATOR(pg_catalog.=) audited) AS audited_name
      INTO names
      FROM pg_class c JOIN pg_namespace cn ON cn.oid OPERATOR(pg_catalog.=) c.relnamespace,
           pg_class p JOIN pg_namespace pn ON pn.oid OPERATOR(pg_catalog.=) p.relnamespace
     WHERE c.oid OPERATOR(pg_catalog.=) child AND p.oid OPERATOR(pg_catalog.=) parent;
    IF audited IS NULL THEN
        IF attached AND EXISTS (SELECT 1 FROM pg_partition_tree(child) t
                                  JOIN @extschema@.table_config c ON c.relid OPERATOR(pg_catalog.=) t.relid) THEN
            RAISE EXCEPTION 'cannot attach audited table "%" as a partition of "%", which is not audited',
                            names.child_name, names.parent_name
                USING ERRCODE = 'object_not_in_prerequisite_state',
                      DETAIL = format('Rows written through %s would not be recorded.', names.parent_name),
                      HINT = format('Enable auditing on %s first, or disable auditing on %s.',
                                    pg_partition_root(parent)::text, child::text);
        END IF;
        RETURN;
    END IF;
    own := EXISTS (SELECT 1 FROM @extschema@.table_config c WHERE c.relid OPERATOR(pg_catalog.=) child);
    PERFORM @extschema@._sync_capture(child);
    IF attached THEN
        PERFORM @extschema@._record('audit', 'audit.partition_attached', 'success', 'table',
            names.audited_name, command,
            jsonb_build_object('partition', names.child_name, 'parent', names.parent_name,
                               'enabled_itself', own));
    ELSE
        PERFORM @extschema@._record('audit', 'audit.partition_detached', 'success', 'table',
            names.audited_name, command,
            jsonb_build_object('partition', names.child_name, 'parent', names.parent_name,
                               'audited', own));
    END IF;
END
$$;
REVOKE ALL ON FUNCTION @extschema@._partition_changed(regclass, regclass, boolean, text) FROM PUBLIC;

INSERT INTO @extschema@.event_type_catalog (event_type, category, description, builtin) VALUES
    ('audit.partition_attached', 'audit', 'Partition created in or attached to an audited table: captured with its options', true),
    ('audit.partition_detached', 'audit', 'Partition detached from an audited table: no longer captured with its options', true)
ON CONFLICT (event_type) DO UPDATE
    SET category = excluded.category, description = excluded.description, builtin = true;

-- Schema changes 1.0 recorded without a code in the catalogue (no
-- description in event_log).  A code a 1.0 application registered through
-- log() (the ON CONFLICT above and here) becomes the extension's.
INSERT INTO @extschema@.event_type_catalog (event_type, category, description, builtin)
SELECT 'ddl.' || lower(replace(c, ' ', '_')), 'ddl', 'Schema change: ' || c, true
FROM pg_catalog.unnest(ARRAY[
    'CREATE OPERATOR CLASS', 'ALTER OPERATOR CLASS', 'DROP OPERATOR CLASS',
    'CREATE OPERATOR FAMILY', 'ALTER OPERATOR FAMILY', 'DROP OPERATOR FAMILY',
    'ALTER TEXT SEARCH CONFIGURATION', 'CREATE TEXT SEARCH DICTIONARY',
    'ALTER TEXT SEARCH DICTIONARY', 'DROP TEXT SEARCH DICTIONARY', 'CREATE TEXT SEARCH PARSER',
    'ALTER TEXT SEARCH PARSER', 'DROP TEXT SEARCH PARSER', 'CREATE TEXT SEARCH TEMPLATE',
    'ALTER TEXT SEARCH TEMPLATE', 'DROP TEXT SEARCH TEMPLATE', 'CLUSTER'
]) AS c
ON CONFLICT (event_type) DO UPDATE
    SET category = excluded.category, description = excluded.description, builtin = true;

CREATE OR REPLACE FUNCTION @extschema@.enable(target regclass, category text DEFAULT 'data',
    event_types jsonb DEFAULT NULL, exclude_columns text[] DEFAULT NULL,
    mask_columns text[] DEFAULT NULL, when_changed text[] DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET audit_log.internal = on
AS $$
DECLARE
    rel record;
    ops constant text[] := ARRAY['INSERT', 'UPDATE', 'DELETE', 'TRUNCATE'];
    codes text[] := ARRAY['data.insert', 'data.update', 'data.delete', 'data.truncate'];
    ex text[];
    mk text[];
    wc text[];
    k text;
    v jsonb;
    i int;
    other record;
    was_enabled boolean;
    qname text;
BEGIN
    IF target IS NULL THEN
        RAISE EXCEPTION 'table to audit must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    SELECT c.relkind, c.relispartition, n.nspname, c.relname,
           EXISTS (SELECT 1 FROM pg_depend d JOIN pg_extension e ON e.oid = d.refobjid
                   WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid
                     AND d.refclassid = 'pg_extension'::regclass AND e.extname = 'audit_log') AS ours
      INTO rel
      FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE c.oid = target;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'relation with OID % does not exist', target::oid USING ERRCODE = 'undefined_table';
    END IF;
    qname := format('%I.%I', rel.nspname, rel.relname);
    IF rel.ours OR rel.nspname = '@extschema@' THEN
        RAISE EXCEPTION 'cannot audit "%": it belongs to audit_log', qname
            USING ERRCODE = 'wrong_object_type',
                  DETAIL = 'The audit tables are protected by the extension itself.';
    END IF;
    IF rel.relkind NOT IN ('r', 'p') THEN
        RAISE EXCEPTION '"%" is not a table', qname
            USING ERRCODE = 'wrong_object_type',
                  DETAIL = format('It is a %s.', CASE rel.relkind WHEN 'v' THEN 'view'
                      WHEN 'm' THEN 'materialized view' WHEN 'f' THEN 'foreign table'
                      WHEN 'S' THEN 'sequence' WHEN 'i' THEN 'index' WHEN 'I' THEN 'index'
                      WHEN 'c' THEN 'composite type' ELSE 'relation that is not a table' END),
                  HINT = 'Only ordinary and partitioned tables can be audited.';
    END IF;
    IF rel.relispartition THEN
        RAISE EXCEPTION '"%" is a partition', qname
            USING ERRCODE = 'wrong_object_type',
                  HINT = format('Enable auditing on its partitioned table %s.',
                                (SELECT inhparent::regclass::text FROM pg_inherits WHERE inhrelid = target));
    END IF;
    IF category IS NULL OR NOT category = ANY (@extschema@._categories()) THEN
        RAISE EXCEPTION 'unknown event category "%"', coalesce(category, 'NULL')
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Use one of ' || array_to_string(@extschema@._categories(), ', ') || '.';
    END IF;

    IF event_types IS NOT NULL THEN
        IF jsonb_typeof(event_types) <> 'object' THEN
            RAISE EXCEPTION 'event_types must be a JSON object mapping operations to event codes'
                USING ERRCODE = 'invalid_parameter_value',
                      HINT = 'For example {"INSERT": "user.role_added", "DELETE": "user.role_removed"}.';
        END IF;
        FOR k, v IN SELECT * FROM jsonb_each(event_types) LOOP
            i := array_position(ops, upper(k));
            IF i IS NULL THEN
                RAISE EXCEPTION 'unknown operation "%" in event_types', k
                    USING ERRCODE = 'invalid_parameter_value',
                          HINT = 'Keys are INSERT, UPDATE, DELETE and TRUNCATE.';
            END IF;
            IF jsonb_typeof(v) <> 'string'
               OR NOT @extschema@._is_event_code(v #>> '{}')
               OR length(v #>> '{}') > 100 THEN
                RAISE EXCEPTION 'invalid event code % for %', v::text, upper(k)
                    USING ERRCODE = 'invalid_parameter_value',
                          HINT = 'Event codes are lowercase dotted identifiers such as "user.role_added".';
            END IF;
            codes[i] := v #>> '{}';
        END LOOP;
    END IF;
    FOR i IN 1..4 LOOP
        SELECT t.category, t.builtin INTO other
          FROM @extschema@.event_type_catalog t WHERE t.event_type = codes[i];
        IF FOUND AND other.builtin AND codes[i] NOT LIKE 'data.%' THEN
            RAISE EXCEPTION 'event type "%" is reserved for audit_log''s own capture', codes[i]
                USING ERRCODE = 'invalid_parameter_value',
                      HINT = 'Choose a code of your own, such as "user.role_added".';
        ELSIF FOUND AND NOT other.builtin AND other.category <> enable.category THEN
            RAISE EXCEPTION 'event type "%" already belongs to category "%"', codes[i], other.category
                USING ERRCODE = 'invalid_parameter_value',
                      HINT = 'Use the same category as the other tables with this code, or another code.';
        END IF;
    END LOOP;

    ex := @extschema@._check_columns(target, exclude_columns, 'exclude_columns');
    mk := @extschema@._check_columns(target, mask_columns, 'mask_columns');
    wc := @extschema@._check_columns(target, when_changed, 'when_changed');

    -- Everything is valid: apply.
    INSERT INTO @extschema@.event_type_catalog AS t (event_type, category, description)
    SELECT DISTINCT c, enable.category, format('%s on %s', ops[o], qname)
      FROM unnest(codes) WITH ORDINALITY AS u(c, o)
     WHERE c NOT LIKE 'data.%'
    ON CONFLICT (event_type) DO NOTHING;

    -- The whole tree, before it is read: a partition being attached or
    -- detached (SHARE UPDATE EXCLUSIVE on its parent) is waited for.
    EXECUTE format('LOCK TABLE %s IN SHARE ROW EXCLUSIVE MODE', target);
    was_enabled := EXISTS (SELECT 1 FROM @extschema@.table_config WHERE relid = target);
    INSERT INTO @extschema@.table_config AS t
           (relid, category, event_types, exclude_columns, mask_columns, when_changed, enabled_at, enabled_by)
    VALUES (target, category,
            jsonb_build_object('INSERT', codes[1], 'UPDATE', codes[2], 'DELETE', codes[3], 'TRUNCATE', codes[4]),
            ex, mk, wc, now(), session_user)
    ON CONFLICT (relid) DO UPDATE
       SET category = excluded.category, event_types = excluded.event_types,
           exclude_columns = excluded.exclude_columns, mask_columns = excluded.mask_columns,
           when_changed = excluded.when_changed, enabled_at = excluded.enabled_at,
           enabled_by = excluded.enabled_by;
    -- The table and every partition of its tree, at any depth (statement
    -- triggers fire only for the table a statement names).
    PERFORM @extschema@._sync_capture(target);

    PERFORM @extschema@._record('audit', 'audit.enabled', 'success', 'table', qname, 'SELECT',
        jsonb_build_object('category', category,
            'event_types', jsonb_build_object('INSERT', codes[1], 'UPDATE', codes[2],
                                              'DELETE', codes[3], 'TRUNCATE', codes[4]),
            'exclude_columns', to_jsonb(ex), 'mask_columns', to_jsonb(mk),
            'when_changed', to_jsonb(wc), 'updated', was_enabled));
END
$$;

CREATE OR REPLACE FUNCTION @extschema@.disable(target regclass)
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET audit_log.internal = on
AS $$
DECLARE
    qname text;
BEGIN
    IF target IS NULL THEN
        RAISE EXCEPTION 'table must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    SELECT format('%I.%I', n.nspname, c.relname) INTO qname
      FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = target;
    IF NOT EXISTS (SELECT 1 FROM @extschema@.table_config WHERE relid = target) THEN
        RAISE EXCEPTION 'table "%" is not audited', coalesce(qname, target::text)
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'audit_log.audited_tables lists the audited tables.';
    END IF;
    IF qname IS NOT NULL THEN
        -- the whole tree, before it is read (see enable())
        EXECUTE format('LOCK TABLE %s IN SHARE ROW EXCLUSIVE MODE', target);
    END IF;
    DELETE FROM @extschema@.table_config WHERE relid = target;
    -- The tree loses this table's capture; a partition enabled itself gets
    -- its own back, one below an audited ancestor keeps the ancestor's.
    PERFORM @extschema@._sync_capture(target);
    PERFORM @extschema@._record('audit', 'audit.disabled', 'success', 'table', qname, 'SELECT', NULL);
END
$$;

CREATE OR REPLACE VIEW @extschema@.audited_tables AS
SELECT c.relid::text AS table_name,
       c.category,
       jsonb_build_object('event_types', c.event_types,
                          'exclude_columns', to_jsonb(c.exclude_columns),
                          'mask_columns', to_jsonb(c.mask_columns),
                          'when_changed', to_jsonb(c.when_changed)) AS options,
       c.event_types,
       c.exclude_columns,
       c.mask_columns,
       c.when_changed,
       c.enabled_at,
       c.enabled_by,
       (SELECT a.relid::text
          FROM pg_catalog.pg_partition_ancestors(c.relid) WITH ORDINALITY AS a(relid, n)
         WHERE a.relid OPERATOR(pg_catalog.<>) c.relid
           AND EXISTS (SELECT 1 FROM @extschema@.table_config t WHERE t.relid OPERATOR(pg_catalog.=) a.relid)
         ORDER BY a.n DESC LIMIT 1) AS partition_of
  FROM @extschema@.table_config c
 WHERE EXISTS (SELECT 1 FROM pg_catalog.pg_class r WHERE r.oid = c.relid);
COMMENT ON COLUMN @extschema@.audited_tables.partition_of IS 'When the table is now a partition of an audited table: that table, whose name and options its events carry until it is detached; NULL otherwise.';

-- Trees enabled under 1.0: their intermediate partitions and the partitions
-- created or attached since enable() get the capture now.  A tree that
-- cannot carry it (a foreign table partition) is left as it was, with a
-- warning, rather than blocking the update.
DO $sync$
DECLARE
    r record;
BEGIN
    FOR r IN SELECT c.relid FROM @extschema@.table_config c
              WHERE EXISTS (SELECT 1 FROM pg_catalog.pg_class k WHERE k.oid OPERATOR(pg_catalog.=) c.relid)
              ORDER BY c.relid
    LOOP
        BEGIN
            PERFORM @extschema@._sync_capture(r.relid);
        EXCEPTION WHEN feature_not_supported THEN
            RAISE WARNING '%', SQLERRM USING HINT = 'Its other partitions keep the capture of 1.0.';
        END;
    END LOOP;
END
$sync$;

-- ==== retention: a retention policy applies at once; parallel-safe helpers ====
-- Immutable helpers are parallel safe.
ALTER FUNCTION @extschema@._partition_name(date) PARALLEL SAFE;
ALTER FUNCTION @extschema@._redact(text) PARALLEL SAFE;
ALTER FUNCTION @extschema@._day_lo(date) PARALLEL SAFE;
ALTER FUNCTION @extschema@._ts(timestamptz) PARALLEL SAFE;
ALTER FUNCTION @extschema@._seal_digest(bytea, timestamptz, timestamptz, bigint, bytea) PARALLEL SAFE;

-- Days are laid out by _add_leaves() (set_retention() lays out the empty
-- ones again); a leaf of several policies is split by maintain().
/*
 * _layout(): the leaves a day gets when it is laid out now: one LIST leaf
 * per named policy that has categories (sorted), then the DEFAULT leaf
 * (categories NULL) for every other category.
 */
CREATE FUNCTION @extschema@._layout() RETURNS TABLE(policy text, categories text[])
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT r.policy, ARRAY(SELECT c FROM unnest(r.categories) c ORDER BY c)
      FROM @extschema@.retention_policy r
     WHERE r.policy <> 'default' AND cardinality(r.categories) > 0
    UNION ALL
    SELECT 'default', NULL::text[]
$$;

/*
 * _lock_down(rel): nobody may write an audit table directly, its owner
 * included (the extension's own code passes the tamper guard).
 */
CREATE FUNCTION @extschema@._lock_down(rel text) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    EXECUTE pg_catalog.format('REVOKE ALL ON TABLE %I.%I FROM PUBLIC', '@extschema@', rel);
    EXECUTE pg_catalog.format(
        'REVOKE INSERT, UPDATE, DELETE, TRUNCATE, TRIGGER, REFERENCES ON TABLE %I.%I FROM CURRENT_USER',
        '@extschema@', rel);
END
$$;

/*
 * _add_leaves(part): the leaves of the day partition part, which has none,
 * as _layout() says.  Callers mark the internal operation and, for a day
 * already attached, hold its ACCESS EXCLUSIVE lock.
 */
CREATE FUNCTION @extschema@._add_leaves(part text) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    p record;
BEGIN
    FOR p IN SELECT l.policy, l.categories FROM @extschema@._layout() l
              ORDER BY l.policy = 'default', l.policy
    LOOP
        IF p.policy = 'default' THEN
            EXECUTE pg_catalog.format('CREATE TABLE %I.%I PARTITION OF %I.%I DEFAULT',
                                      '@extschema@', part || '_' || p.policy, '@extschema@', part);
        ELSE
            EXECUTE pg_catalog.format('CREATE TABLE %I.%I PARTITION OF %I.%I FOR VALUES IN (%s)',
                '@extschema@', part || '_' || p.policy, '@extschema@', part,
                (SELECT string_agg(quote_literal(c), ', ' ORDER BY c) FROM unnest(p.categories) c));
        END IF;
        PERFORM @extschema@._lock_down(part || '_' || p.policy);
        PERFORM @extschema@._remember_leaf(part || '_' || p.policy, p.categories);
    END LOOP;
END
$$;

/*
 * _create_partition(day): create the day's partition [day 00:00 UTC,
 * day+1 00:00 UTC) with one leaf per retention policy, unless it exists;
 * true when it created one.  Built detached, then attached, so writers are
 * not blocked.  Callers mark the internal operation.
 */
CREATE OR REPLACE FUNCTION @extschema@._create_partition(day date) RETURNS boolean
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
SET audit_log.internal = on
AS $$
DECLARE
    part text := @extschema@._partition_name(day);
BEGIN
    IF pg_catalog.to_regclass(pg_catalog.format('%I.%I', '@extschema@', part)) IS NOT NULL THEN
        RETURN false;
    END IF;
    EXECUTE pg_catalog.format('CREATE TABLE %I.%I (LIKE %I.events) PARTITION BY LIST (category)',
                              '@extschema@', part, '@extschema@');
    PERFORM @extschema@._add_leaves(part);
    PERFORM @extschema@._lock_down(part);
    EXECUTE pg_catalog.format('ALTER TABLE %I.events ATTACH PARTITION %I.%I FOR VALUES FROM (%L) TO (%L)',
        '@extschema@', '@extschema@', part,
        @extschema@._ts(@extschema@._day_lo(day)), @extschema@._ts(@extschema@._day_lo(day + 1)));
    RETURN true;
END
$$;

/*
 * _layout_matches(day): has the day partition the leaves _layout() gives
 * (same names, same categories)?
 */
CREATE FUNCTION @extschema@._layout_matches(day regclass) RETURNS boolean
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    WITH cur AS (
        SELECT c.relname::text AS name,
               CASE WHEN pg_get_expr(c.relpartbound, c.oid) = 'DEFAULT' THEN NULL
                    ELSE ARRAY(SELECT m[1] FROM regexp_matches(pg_get_expr(c.relpartbound, c.oid),
                                                               '''([a-z]+)''', 'g') m ORDER BY 1) END AS cats
          FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
         WHERE i.inhparent = day
    ), want AS (
        SELECT (SELECT d.relname::text FROM pg_class d WHERE d.oid = day) || '_' || l.policy AS name,
               l.categories AS cats
          FROM @extschema@._layout() l
    )
    SELECT NOT EXISTS (SELECT * FROM cur EXCEPT SELECT * FROM want)
       AND NOT EXISTS (SELECT * FROM want EXCEPT SELECT * FROM cur)
$$;

/*
 * _has_rows(rel): does the table (with its partitions) hold any row?
 */
CREATE FUNCTION @extschema@._has_rows(rel regclass) RETURNS boolean
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    found boolean;
BEGIN
    EXECUTE pg_catalog.format('SELECT EXISTS (SELECT 1 FROM %s)', rel) INTO found;
    RETURN found;
END
$$;

/*
 * _relayout_day(day): give a day partition that holds no event yet the
 * leaves of the policies as they are now, so that a policy applies at
 * once to the days already created ahead (set_retention() and maintain()
 * call it).  false when the day does not exist, already has that layout
 * or holds events: those keep their leaves, and maintain() splits a leaf
 * when the shortest policy of its categories expires.  Waits for the
 * day's ACCESS EXCLUSIVE lock within the caller's lock_timeout
 * (lock_not_available when a writer holds it, before anything changed).
 */
CREATE FUNCTION @extschema@._relayout_day(day date) RETURNS boolean
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
SET audit_log.internal = on       -- the extension's own DDL
AS $$
DECLARE
    part text := @extschema@._partition_name(day);
    rel regclass := pg_catalog.to_regclass(pg_catalog.format('%I.%I', '@extschema@', part));
    l record;
BEGIN
    IF rel IS NULL OR (SELECT c.relkind FROM pg_class c WHERE c.oid = rel) <> 'p'
       OR @extschema@._layout_matches(rel) OR @extschema@._has_rows(rel) THEN
        RETURN false;
    END IF;
    -- The day and its leaves (LOCK recurses), then look again.
    EXECUTE pg_catalog.format('LOCK TABLE %s IN ACCESS EXCLUSIVE MODE', rel);
    IF @extschema@._has_rows(rel) THEN
        RETURN false;
    END IF;
    FOR l IN SELECT i.inhrelid::regclass AS leaf, c.relname::text AS name
               FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = rel LOOP
        EXECUTE pg_catalog.format('DROP TABLE %s', l.leaf);
        DELETE FROM @extschema@.leaf_categories k WHERE k.leaf = l.name;
    END LOOP;
    PERFORM @extschema@._add_leaves(part);
    RETURN true;
END
$$;

/*
 * _leaves(): every leaf partition of the days: its day, range and the
 * categories it holds.  A day's DEFAULT leaf holds the categories no LIST
 * leaf of the day names, except those whose rows the day already purged
 * (purge_log): they had a leaf of their own, and dropping it does not move
 * its categories into the DEFAULT leaf.  A day that is a plain table (no
 * policy level) is its own leaf holding every category.
 */
CREATE OR REPLACE FUNCTION @extschema@._leaves()
RETURNS TABLE(leaf oid, leaf_name text, day_oid oid, day_name text, lo timestamptz, hi timestamptz, categories text[])
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    WITH days AS (
        SELECT c.oid, c.relname::text AS name, c.relkind,
               to_date(substr(c.relname, 9, 8), 'YYYYMMDD') AS day
          FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
         WHERE i.inhparent = '@extschema@.events'::regclass
           AND c.relname ~ '^events_p[0-9]{8}$'
    ), subs AS (
        SELECT d.oid AS day_oid, d.name AS day_name, d.day, c.oid, c.relname::text AS name,
               pg_get_expr(c.relpartbound, c.oid) AS bound
          FROM days d JOIN pg_inherits i ON i.inhparent = d.oid JOIN pg_class c ON c.oid = i.inhrelid
         WHERE d.relkind = 'p'
    ), listed AS (
        SELECT s.*, ARRAY(SELECT m[1] FROM regexp_matches(s.bound, '''([a-z]+)''', 'g') m ORDER BY 1) AS cats
          FROM subs s
    ), purged AS (
        SELECT p.from_time, array_agg(DISTINCT c) AS cats
          FROM @extschema@.purge_log p CROSS JOIN LATERAL unnest(p.categories) c
         GROUP BY p.from_time
    )
    SELECT l.oid, l.name, l.day_oid, l.day_name,
           @extschema@._day_lo(l.day), @extschema@._day_lo(l.day + 1),
           CASE WHEN l.bound = 'DEFAULT'
                THEN ARRAY(SELECT c FROM unnest(@extschema@._categories()) c
                            WHERE NOT EXISTS (SELECT 1 FROM listed l2
                                               WHERE l2.day_oid = l.day_oid AND l2.bound <> 'DEFAULT'
                                                 AND c = ANY (l2.cats))
                              AND NOT c = ANY (coalesce(pu.cats, '{}'))
                            ORDER BY c)
                ELSE l.cats END
      FROM listed l LEFT JOIN purged pu ON pu.from_time = @extschema@._day_lo(l.day)
    UNION ALL
    SELECT d.oid, d.name, d.oid, d.name, @extschema@._day_lo(d.day), @extschema@._day_lo(d.day + 1),
           @extschema@._categories()
      FROM days d WHERE d.relkind = 'r'
$$;

-- _leaf_state() returns the first and the last policy to expire.
DROP FUNCTION @extschema@._leaf_state(timestamptz);
/*
 * _leaf_state(as_of): every leaf with its seal and hold, and the policies
 * of the categories it holds: the first to expire (policy, keep, expires:
 * when maintain() acts on the leaf), the last (last_policy, last_keep,
 * last_expires: when all of it has expired) and how many (policies).  A
 * leaf holds several policies' categories when its day was created before
 * a policy change and held events by then.
 */
CREATE FUNCTION @extschema@._leaf_state(as_of timestamptz DEFAULT NULL)
RETURNS TABLE(leaf oid, leaf_name text, day_oid oid, day_name text, lo timestamptz, hi timestamptz,
              categories text[], policy text, keep interval, expires timestamptz,
              sealed boolean, holds text[], policies integer, last_policy text, last_keep interval,
              last_expires timestamptz)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    WITH pol AS MATERIALIZED (SELECT * FROM @extschema@._policies()),
         chain AS MATERIALIZED (SELECT coalesce(max(s.window_end), '-infinity') AS sealed_to
                                  FROM @extschema@.seal s)
    SELECT l.leaf, l.leaf_name, l.day_oid, l.day_name, l.lo, l.hi, l.categories,
           k.first[1], k.first_keep[1], k.first_expires,
           l.hi <= (SELECT c.sealed_to FROM chain c),
           ARRAY(SELECT h.name FROM @extschema@.legal_hold h
                  WHERE h.from_time < l.hi AND h.to_time > l.lo ORDER BY h.name),
           k.n, k.last[1], k.last_keep[1], k.last_expires
      FROM @extschema@._leaves() l
      CROSS JOIN LATERAL (
          SELECT count(*)::integer AS n,
                 array_agg(x.policy ORDER BY x.expires, x.policy) AS first,
                 array_agg(x.keep ORDER BY x.expires, x.policy) AS first_keep,
                 min(x.expires) AS first_expires,
                 array_agg(x.policy ORDER BY x.expires DESC, x.policy) AS last,
                 array_agg(x.keep ORDER BY x.expires DESC, x.policy) AS last_keep,
                 max(x.expires) AS last_expires
            FROM (SELECT p.policy, p.keep, ((l.hi AT TIME ZONE 'UTC') + p.keep) AT TIME ZONE 'UTC' AS expires
                    FROM pol p
                   WHERE p.categories && l.categories
                      OR (p.policy = 'default' AND cardinality(l.categories) = 0)) x) k
$$;

COMMENT ON COLUMN @extschema@.partitions.policy IS 'Retention policy that expires first among the categories the partition holds (it holds the categories of one policy, unless its day held events before a policy change).';
COMMENT ON COLUMN @extschema@.partitions.expires IS 'When maintain() acts on it: end of its range plus that policy''s keep. It drops the partition then, after moving the rows of categories whose policies keep them longer into partitions of their own.';

/*
 * set_retention(policy, keep, categories): create or change a policy.  It
 * applies at once: every day partition that holds no event yet is laid
 * out again for the new policies (_relayout_day()); a day whose lock a
 * writer holds (waited for within lock_timeout, 250ms when the session has
 * none) is left to the next maintain().  Days that hold events keep their
 * leaves until maintain() splits them (_split_leaf()).
 */
CREATE OR REPLACE FUNCTION @extschema@.set_retention(policy text, keep interval, categories text[] DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET audit_log.internal = on
AS $$
DECLARE
    cats text[];
    c text;
    other text;
    old record;
    d date;
    old_lock_timeout text := current_setting('lock_timeout');
BEGIN
    IF policy IS NULL THEN
        RAISE EXCEPTION 'retention policy name must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF policy !~ '^[a-z][a-z0-9_]{0,39}$' THEN
        RAISE EXCEPTION 'invalid retention policy name "%"', policy
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'A policy name is 1 to 40 characters: lowercase letters, digits and underscores, starting with a letter.';
    END IF;
    IF keep IS NULL THEN
        RAISE EXCEPTION 'retention period must not be null' USING ERRCODE = 'null_value_not_allowed',
            HINT = 'Give an interval such as ''90 days''.';
    END IF;
    IF keep <= interval '0' THEN
        RAISE EXCEPTION 'retention period must be positive, not %', keep
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Give an interval such as ''90 days''.';
    END IF;
    IF keep > interval '100 years' THEN
        RAISE EXCEPTION 'retention period % is longer than 100 years', keep
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = 'The longest retention period is 100 years.';
    END IF;
    SELECT * INTO old FROM @extschema@.retention_policy r WHERE r.policy = set_retention.policy;
    IF policy = 'default' THEN
        IF categories IS NOT NULL THEN
            RAISE EXCEPTION 'the default retention policy takes no categories'
                USING ERRCODE = 'invalid_parameter_value',
                      DETAIL = 'Policy default covers every category no other policy names.',
                      HINT = 'Call set_retention(''default'', keep) without categories.';
        END IF;
    ELSE
        cats := coalesce(categories, old.categories);
        IF cats IS NULL OR cardinality(cats) = 0 THEN
            RAISE EXCEPTION 'retention policy "%" needs at least one category', policy
                USING ERRCODE = 'invalid_parameter_value',
                      HINT = 'Name the categories it covers, e.g. set_retention(''short'', ''30 days'', ''{auth}'').';
        END IF;
        FOREACH c IN ARRAY cats LOOP
            IF c IS NULL OR NOT c = ANY (@extschema@._categories()) THEN
                RAISE EXCEPTION 'unknown event category "%"', coalesce(c, 'NULL')
                    USING ERRCODE = 'invalid_parameter_value',
                          HINT = 'The categories are ' || array_to_string(@extschema@._categories(), ', ') || '.';
            END IF;
            SELECT r.policy INTO other FROM @extschema@.retention_policy r
             WHERE r.policy <> set_retention.policy AND c = ANY (r.categories);
            IF other IS NOT NULL THEN
                RAISE EXCEPTION 'category "%" already belongs to retention policy "%"', c, other
                    USING ERRCODE = 'duplicate_object',
                          DETAIL = 'A category can belong to one retention policy only.',
                          HINT = 'Remove it from policy "' || other || '" first.';
            END IF;
        END LOOP;
        cats := ARRAY(SELECT DISTINCT x FROM unnest(cats) x ORDER BY x);
    END IF;

    INSERT INTO @extschema@.retention_policy AS r (policy, keep, categories, changed_at, changed_by)
    VALUES (policy, keep, cats, now(), session_user)
    ON CONFLICT ON CONSTRAINT retention_policy_pkey DO UPDATE
       SET keep = EXCLUDED.keep, categories = EXCLUDED.categories,
           changed_at = EXCLUDED.changed_at, changed_by = EXCLUDED.changed_by;

    -- The days still empty take the new layout now.
    IF old_lock_timeout = '0' THEN
        PERFORM set_config('lock_timeout', '250ms', true);
    END IF;
    FOR d IN SELECT to_date(substr(k.relname, 9, 8), 'YYYYMMDD')
               FROM pg_inherits i JOIN pg_class k ON k.oid = i.inhrelid
              WHERE i.inhparent = '@extschema@.events'::regclass AND k.relname ~ '^events_p[0-9]{8}$'
              ORDER BY 1
    LOOP
        BEGIN
            PERFORM @extschema@._relayout_day(d);
        EXCEPTION WHEN lock_not_available OR deadlock_detected THEN
            NULL;   -- a writer is in it: maintain() tries again while it is empty
        END;
    END LOOP;
    PERFORM set_config('lock_timeout', old_lock_timeout, true);

    PERFORM @extschema@._record('audit', 'audit.retention_changed', 'success', 'retention_policy', policy,
        'SELECT audit_log.set_retention',
        jsonb_build_object('policy', policy, 'keep', keep::text, 'categories', to_jsonb(cats),
                           'previous_keep', old.keep::text, 'previous_categories', to_jsonb(old.categories)));
END
$$;

/*
 * _split_leaf(leaf, leaf_name, day, lo, hi, categories, as_of): a leaf that
 * holds the categories of several policies (its day held events before a
 * policy change), some of which have expired as of as_of.  The rows of
 * the categories still inside their window are copied into new leaves of
 * the day, one per policy (named events_pYYYYMMDD_<policy>, with a suffix
 * _2, _3... when that name is taken), then the leaf is dropped with the
 * expired rows: never a DELETE.  Moved rows keep every column, so the
 * seals still verify.  The expired rows are one audit.purged event and a
 * purge-log row (none when there were none).  A row of a category no
 * policy covers stops the split (deferred): it is never lost.  The caller
 * holds the day's ACCESS EXCLUSIVE lock (on its leaves too) and marks the
 * internal operation.  Returns what it did: moved, purged or deferred.
 */
CREATE FUNCTION @extschema@._split_leaf(leaf oid, leaf_name text, day_oid oid, lo timestamptz,
    hi timestamptz, categories text[], as_of timestamptz)
RETURNS TABLE(action text, object text, detail text)
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    part text := (SELECT c.relname::text FROM pg_class c WHERE c.oid = day_oid);
    g record;
    gone text[] := '{}';
    gone_policy text;
    gone_keep interval;
    kept text[] := '{}';
    n_gone bigint;
    n_other bigint;
    n_moved bigint := 0;
    n bigint;
    k int;
    name text;
    i int := 0;
    news text[] := '{}';
    newcats text[] := '{}';
BEGIN
    -- Never an object found in pg_temp: the caller may have planted it
    -- (a view or a trigger would run its code with the owner's rights).
    -- DROP TABLE fails on anything but a plain table without dependents.
    IF pg_catalog.to_regclass('pg_temp.audit_log_groups') IS NOT NULL THEN
        DROP TABLE pg_temp.audit_log_groups;
    END IF;
    CREATE TEMP TABLE audit_log_groups (policy text, keep interval, cats text[], expires timestamptz)
        ON COMMIT DROP;
    INSERT INTO pg_temp.audit_log_groups
    SELECT p.policy, p.keep,
           ARRAY(SELECT c FROM unnest(p.categories) c WHERE c = ANY (_split_leaf.categories) ORDER BY c),
           ((hi AT TIME ZONE 'UTC') + p.keep) AT TIME ZONE 'UTC'
      FROM @extschema@._policies() p WHERE p.categories && _split_leaf.categories;
    FOR g IN SELECT * FROM pg_temp.audit_log_groups x ORDER BY x.expires, x.policy LOOP
        IF g.expires <= as_of THEN
            gone := gone || g.cats;
            gone_policy := g.policy;      -- the last of the expired ones decides
            gone_keep := g.keep;
        ELSE
            kept := kept || g.cats;
        END IF;
    END LOOP;
    EXECUTE pg_catalog.format(
        'SELECT count(*) FILTER (WHERE category OPERATOR(pg_catalog.=) ANY ($1)), '
        'count(*) FILTER (WHERE NOT category OPERATOR(pg_catalog.=) ANY ($1 || $2)) FROM ONLY %s',
        leaf::regclass) INTO n_gone, n_other USING gone, kept;
    IF n_other > 0 THEN
        action := 'deferred'; object := '@extschema@.' || leaf_name;
        detail := n_other || ' rows of a category no retention policy covers'; RETURN NEXT;
        RETURN;
    END IF;

    -- The rows to keep, each policy's into a table of its own; then the
    -- leaf goes and they take its place in the day.
    FOR g IN SELECT * FROM pg_temp.audit_log_groups x WHERE x.expires > as_of ORDER BY x.policy LOOP
        i := i + 1;
        EXECUTE pg_catalog.format('CREATE TABLE %I.%I (LIKE %I.events)',
                                  '@extschema@', 'events_split_' || i, '@extschema@');
        EXECUTE pg_catalog.format(
            'INSERT INTO %I.%I SELECT * FROM ONLY %s WHERE category OPERATOR(pg_catalog.=) ANY ($1)',
            '@extschema@', 'events_split_' || i, leaf::regclass) USING g.cats;
    END LOOP;
    EXECUTE pg_catalog.format('DROP TABLE %s', leaf::regclass);
    DELETE FROM @extschema@.leaf_categories k WHERE k.leaf = leaf_name;
    i := 0;
    FOR g IN SELECT * FROM pg_temp.audit_log_groups x WHERE x.expires > as_of ORDER BY x.policy LOOP
        i := i + 1;
        name := part || '_' || g.policy;
        k := 1;
        WHILE pg_catalog.to_regclass(pg_catalog.format('%I.%I', '@extschema@', name)) IS NOT NULL LOOP
            k := k + 1;
            name := part || '_' || g.policy || '_' || k;
        END LOOP;
        EXECUTE pg_catalog.format('ALTER TABLE %I.%I RENAME TO %I', '@extschema@', 'events_split_' || i, name);
        PERFORM @extschema@._lock_down(name);
        EXECUTE pg_catalog.format('ALTER TABLE %s ATTACH PARTITION %I.%I FOR VALUES IN (%s)',
            day_oid::regclass, '@extschema@', name,
            (SELECT string_agg(quote_literal(c), ', ' ORDER BY c) FROM unnest(g.cats) c));
        PERFORM @extschema@._remember_leaf(name, g.cats);
        n := @extschema@._rows(pg_catalog.format('%I.%I', '@extschema@', name)::regclass);
        n_moved := n_moved + n;
        action := 'moved'; object := '@extschema@.' || name;
        detail := n || ' rows from @extschema@.' || leaf_name || ', policy ' || g.policy
                  || ' (' || g.keep::text || ')';
        RETURN NEXT;
    END LOOP;

    IF n_gone > 0 THEN
        PERFORM @extschema@._log_purge(leaf_name, lo, hi, gone, gone_policy, gone_keep, n_gone,
                                       jsonb_build_object('moved_rows', n_moved));
        action := 'purged'; object := '@extschema@.' || leaf_name;
        detail := n_gone || ' rows, [' || @extschema@._ts(lo) || ', ' || @extschema@._ts(hi)
                  || '), policy ' || gone_policy || ' (' || gone_keep::text || '), '
                  || n_moved || ' rows of longer policies moved out';
        RETURN NEXT;
    END IF;
END
$$;

/*
 * maintain(as_of): create partitions ahead (and lay out again the empty
 * ones a policy change left with old leaves), move stray rows out of the
 * default partition, seal closed windows, drop expired partitions (split
 * a leaf that holds categories of several policies when the first of them
 * expires).  Returns what it did.  as_of stands for "now" (tests).
 */
/*
 * _disown_partitions(): the day partitions and their leaves created by the
 * install or update script are data, not members of the extension (a
 * member cannot be dropped by maintain() and pg_dump leaves out its rows).
 * Returns how many it released.
 */
CREATE FUNCTION @extschema@._disown_partitions() RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    r record;
    n integer := 0;
BEGIN
    FOR r IN SELECT c.oid::regclass AS rel
               FROM pg_depend d JOIN pg_class c ON c.oid = d.objid
              WHERE d.classid = 'pg_class'::regclass AND d.refclassid = 'pg_extension'::regclass
                AND d.deptype = 'e' AND c.relnamespace = '@extschema@'::regnamespace
                AND d.refobjid = (SELECT e.oid FROM pg_extension e WHERE e.extname = 'audit_log')
                AND c.relname ~ '^events_p[0-9]{8}'
              ORDER BY c.relname
    LOOP
        EXECUTE pg_catalog.format('ALTER EXTENSION audit_log DROP TABLE %s', r.rel);
        n := n + 1;
    END LOOP;
    RETURN n;
END
$$;

-- The days the 1.0 install script created are still members of the
-- extension: release them.
SELECT @extschema@._disown_partitions();

REVOKE ALL ON FUNCTION @extschema@._layout(), @extschema@._lock_down(text), @extschema@._add_leaves(text),
    @extschema@._layout_matches(regclass), @extschema@._has_rows(regclass), @extschema@._relayout_day(date),
    @extschema@._leaf_state(timestamptz),
    @extschema@._split_leaf(oid, text, oid, timestamptz, timestamptz, text[], timestamptz),
    @extschema@._disown_partitions() FROM PUBLIC;

-- ==== alerts: alert rules, alerts, check_alerts() (issue 14; design notes in src/sql/70_alerts.sql) ====
INSERT INTO @extschema@.event_type_catalog (event_type, category, description, builtin) VALUES
    ('audit.alert_raised', 'audit', 'An alert rule fired', true),
    ('audit.alert_acknowledged', 'audit', 'An alert was acknowledged', true),
    ('audit.alert_rule_changed', 'audit', 'An alert rule was created, replaced or dropped', true)
ON CONFLICT (event_type) DO UPDATE
    SET category = excluded.category, description = excluded.description, builtin = true;

CREATE TABLE @extschema@.alert_rule (
    name            text PRIMARY KEY CHECK (name ~ '^[a-z][a-z0-9_]{0,62}$'),
    threshold       integer NOT NULL CHECK (threshold >= 1),
    within          interval NOT NULL CHECK (within > interval '0' AND within <= interval '30 days'),
    group_by        text CHECK (group_by IN ('actor', 'db_user', 'client_addr', 'object_name',
                                             'resource_id', 'tenant', 'source')),
    severity        text NOT NULL CHECK (severity IN ('low', 'medium', 'high', 'critical')),
    usernames       text[],
    event_types     text[],
    categories      text[],
    resource_ids    text[],
    user_types      text[],
    ip_addresses    cidr[],
    since           timestamptz,
    until           timestamptz,
    text_query      text,
    statuses        text[],
    tenants         text[],
    sources         text[],
    details_contain jsonb,
    builtin         boolean NOT NULL DEFAULT false,
    changed_at      timestamptz NOT NULL DEFAULT pg_catalog.now(),
    changed_by      text NOT NULL DEFAULT session_user
);
COMMENT ON TABLE @extschema@.alert_rule IS
    'Alert rules; change them with audit_log.create_alert() and drop_alert(), read them through audit_log.alert_rules.';

CREATE TABLE @extschema@.alerts (
    alert_id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    raised_at       timestamptz NOT NULL,
    rule            text NOT NULL,
    severity        text NOT NULL,
    group_value     text,
    events          integer NOT NULL,
    first_event_id  bigint NOT NULL,
    last_event_id   bigint NOT NULL,
    acknowledged_at timestamptz,
    acknowledged_by text
);
COMMENT ON TABLE @extschema@.alerts IS 'Every firing of an alert rule; acknowledge one with audit_log.acknowledge().';
COMMENT ON COLUMN @extschema@.alerts.alert_id IS 'Identifier of the alert.';
COMMENT ON COLUMN @extschema@.alerts.raised_at IS 'When the pass that found it raised it.';
COMMENT ON COLUMN @extschema@.alerts.rule IS 'Name of the rule that fired.';
COMMENT ON COLUMN @extschema@.alerts.severity IS 'Severity of the rule when it fired.';
COMMENT ON COLUMN @extschema@.alerts.group_value IS 'Value of the rule''s group_by column shared by the events (NULL without group_by).';
COMMENT ON COLUMN @extschema@.alerts.events IS 'Number of matching events of the group in the window when it fired.';
COMMENT ON COLUMN @extschema@.alerts.first_event_id IS 'First event of the window.';
COMMENT ON COLUMN @extschema@.alerts.last_event_id IS 'The event that made the rule fire.';
COMMENT ON COLUMN @extschema@.alerts.acknowledged_at IS 'When it was acknowledged, NULL while it is not.';
COMMENT ON COLUMN @extschema@.alerts.acknowledged_by IS 'Who acknowledged it (session user).';

-- Evaluation state: one row.  See the header for hwm, holes, marks, settled.
CREATE TABLE @extschema@.alert_state (
    one         boolean PRIMARY KEY DEFAULT true CHECK (one),
    hwm         bigint NOT NULL,
    settled     bigint NOT NULL,
    holes       bigint[] NOT NULL DEFAULT '{}',
    mark_ids    bigint[] NOT NULL DEFAULT '{}',
    mark_xids   bigint[] NOT NULL DEFAULT '{}',
    passes      bigint NOT NULL DEFAULT 0
);
-- Alerts are about what happens from now on.
INSERT INTO @extschema@.alert_state (hwm, settled)
SELECT coalesce(pg_catalog.pg_sequence_last_value('@extschema@.events_event_id_seq'::regclass), 0),
       coalesce(pg_catalog.pg_sequence_last_value('@extschema@.events_event_id_seq'::regclass), 0);

-- Evaluation state of each source's events (header): one row a source.
CREATE TABLE @extschema@.alert_source_state (
    source      text PRIMARY KEY,
    hwm         bigint NOT NULL,
    holes       int8multirange NOT NULL DEFAULT '{}',
    settled     bigint,
    mark_at     timestamptz[] NOT NULL DEFAULT '{}',
    mark_hwms   bigint[] NOT NULL DEFAULT '{}'
);

-- Recent matches of the rules whose threshold is above 1.
CREATE TABLE @extschema@.alert_pending (
    rule        text NOT NULL,
    group_value text,
    occurred_at timestamptz NOT NULL,
    event_id    bigint NOT NULL
);
CREATE INDEX alert_pending_idx ON @extschema@.alert_pending (rule, group_value, occurred_at);

-- Per rule and group: no firing for events up to quiet_until.
CREATE TABLE @extschema@.alert_group (
    rule        text NOT NULL,
    group_value text,
    quiet_until timestamptz NOT NULL
);
CREATE UNIQUE INDEX alert_group_key ON @extschema@.alert_group (rule, (coalesce(group_value, '')), (group_value IS NULL));

REVOKE ALL ON @extschema@.alert_rule, @extschema@.alerts, @extschema@.alert_state,
    @extschema@.alert_source_state, @extschema@.alert_pending, @extschema@.alert_group FROM PUBLIC;

-- pg_dump keeps the rules (all of them, so that a replaced or dropped
-- built-in stays so: a restore starts without the built-ins, 70_restore)
-- and the alerts raised.  The evaluation state is not kept: the passes of
-- a restored database start after the restored events (_restore_close).
SELECT pg_catalog.pg_extension_config_dump('@extschema@.alert_rule', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.alerts', '');

-- The built-in rules: installed enabled, changeable with create_alert/drop_alert.
INSERT INTO @extschema@.alert_rule (name, threshold, within, group_by, severity, event_types,
                                    categories, statuses, details_contain, builtin) VALUES
    ('login_brute_force', 10, '5 minutes', 'client_addr', 'high', '{auth.login_failed}', NULL, NULL, NULL, true),
    ('superuser_granted', 1, '5 minutes', 'object_name', 'critical', '{role.created,role.altered}',
     NULL, '{success}', '{"superuser": true}', true),
    ('capture_disabled', 1, '5 minutes', 'object_name', 'critical',
     '{audit.capture_disabled,audit.replication_role_changed,audit.disabled}', NULL, NULL, NULL, true),
    ('tamper_attempt', 1, '5 minutes', 'db_user', 'critical', '{audit.tamper_attempt}', NULL, NULL, NULL, true),
    ('privileged_failures', 5, '10 minutes', 'db_user', 'high', NULL, '{role,privilege,config}',
     '{failure}', NULL, true);

CREATE VIEW @extschema@.alert_rules AS
SELECT name, threshold, within, group_by, severity, usernames, event_types, categories,
       resource_ids, user_types, ip_addresses, since, until, text_query, statuses, tenants,
       sources, details_contain, builtin, changed_at, changed_by
  FROM @extschema@.alert_rule;
COMMENT ON VIEW @extschema@.alert_rules IS
    'Alert rules: when threshold matching events of one group_by value occur within the interval, an alert is raised.';

DO $comments$
DECLARE
    c text[];
BEGIN
    FOREACH c SLICE 1 IN ARRAY ARRAY[
        ['name', 'Name of the rule.'],
        ['threshold', 'Number of matching events of one group that makes the rule fire.'],
        ['within', 'Window in which threshold matching events must occur.'],
        ['group_by', 'Column whose value groups the events (NULL: all events together).'],
        ['severity', 'Severity of its alerts: low, medium, high or critical.'],
        ['usernames', 'Filter, as in search(): actor or db_user.'],
        ['event_types', 'Filter, as in search(): event codes.'],
        ['categories', 'Filter, as in search(): categories.'],
        ['resource_ids', 'Filter, as in search(): resource ids.'],
        ['user_types', 'Filter, as in search(): actor types.'],
        ['ip_addresses', 'Filter, as in search(): client address networks.'],
        ['since', 'Filter, as in search(): events at or after.'],
        ['until', 'Filter, as in search(): events before.'],
        ['text_query', 'Filter, as in search(): text anywhere in the event.'],
        ['statuses', 'Filter, as in search(): success or failure.'],
        ['tenants', 'Filter, as in search(): tenants.'],
        ['sources', 'Filter, as in search(): sources of the events (local: the database''s own).'],
        ['details_contain', 'Filter: the event details contain this JSON object.'],
        ['builtin', 'True for a built-in rule as installed; false once created or replaced by create_alert().'],
        ['changed_at', 'When the rule was created or last replaced.'],
        ['changed_by', 'Who created or last replaced the rule.']]
    LOOP
        EXECUTE pg_catalog.format('COMMENT ON COLUMN @extschema@.alert_rules.%I IS %L', c[1], c[2]);
    END LOOP;
END
$comments$;

/*
 * _alert_group_expr(group_by): the SQL expression of a group over alias e.
 * The column source does not exist yet: every event is local.
 */
CREATE FUNCTION @extschema@._alert_group_expr(group_by text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
SELECT CASE group_by
         WHEN 'actor' THEN 'e.actor' WHEN 'db_user' THEN 'e.db_user'
         WHEN 'client_addr' THEN 'pg_catalog.host(e.client_addr)'
         WHEN 'object_name' THEN 'e.object_name' WHEN 'resource_id' THEN 'e.resource_id'
         WHEN 'tenant' THEN 'e.tenant' WHEN 'source' THEN 'coalesce(e.source, ''local'')'
         ELSE 'NULL::text' END
$$;

/*
 * _alert_where(rule): the WHERE clause of a rule over alias e: search()'s
 * filters (_search_where) and details_contain.  Raises search()'s errors.
 */
CREATE FUNCTION @extschema@._alert_where(r @extschema@.alert_rule) RETURNS text
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN @extschema@._search_where(r.usernames, r.event_types, r.categories, r.resource_ids,
                                     r.user_types, r.ip_addresses, r.since, r.until, r.text_query,
                                     r.statuses, r.tenants, NULL, r.sources)
        || CASE WHEN r.details_contain IS NOT NULL
                THEN format(' AND e.details OPERATOR(pg_catalog.@>) %L::jsonb', r.details_contain)
                ELSE '' END
        || ' AND e.event_type OPERATOR(pg_catalog.<>) ALL (''{audit.alert_raised,audit.alert_acknowledged}''::text[])';
END
$$;

/*
 * _alert_bad(message, hint): raise invalid_parameter_value.
 */
CREATE FUNCTION @extschema@._alert_bad(message text, hint text) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RAISE EXCEPTION '%', message USING ERRCODE = 'invalid_parameter_value', HINT = hint;
END
$$;

/*
 * create_alert(...): create the rule, or replace the rule of that name
 * (its windows start afresh).  Records audit.alert_rule_changed.
 */
CREATE FUNCTION @extschema@.create_alert(name text, threshold integer DEFAULT 1,
    within interval DEFAULT '5 minutes', group_by text DEFAULT NULL, severity text DEFAULT 'high',
    usernames text[] DEFAULT NULL, event_types text[] DEFAULT NULL,
    categories text[] DEFAULT NULL, resource_ids text[] DEFAULT NULL, user_types text[] DEFAULT NULL,
    ip_addresses cidr[] DEFAULT NULL, since timestamptz DEFAULT NULL, until timestamptz DEFAULT NULL,
    text_query text DEFAULT NULL, statuses text[] DEFAULT NULL, tenants text[] DEFAULT NULL,
    sources text[] DEFAULT NULL, details_contain jsonb DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET audit_log.internal = on
AS $$
DECLARE
    r @extschema@.alert_rule;
    existed boolean;
    x text;
BEGIN
    IF name IS NULL OR name !~ '^[a-z][a-z0-9_]{0,62}$' THEN
        PERFORM @extschema@._alert_bad(format('invalid alert rule name %L', name),
            'A rule name is 1 to 63 lowercase letters, digits or underscores, starting with a letter.');
    END IF;
    IF threshold IS NULL OR threshold < 1 THEN
        PERFORM @extschema@._alert_bad(format('threshold must be at least 1, not %s', coalesce(threshold::text, 'NULL')),
            'threshold is the number of matching events that makes the rule fire.');
    END IF;
    IF within IS NULL OR within <= interval '0' OR within > interval '30 days' THEN
        PERFORM @extschema@._alert_bad(format('within must be above 0 and at most 30 days, not %s', coalesce(within::text, 'NULL')),
            'within is the window in which threshold events must occur, e.g. ''5 minutes''.');
    END IF;
    IF group_by IS NOT NULL AND group_by <> ALL ('{actor,db_user,client_addr,object_name,resource_id,tenant,source}') THEN
        PERFORM @extschema@._alert_bad(format('unknown group_by %L', group_by),
            'Group by actor, db_user, client_addr, object_name, resource_id, tenant or source, or NULL for all events.');
    END IF;
    IF severity IS NULL OR severity <> ALL ('{low,medium,high,critical}') THEN
        PERFORM @extschema@._alert_bad(format('unknown severity %L', severity),
            'The severities are low, medium, high and critical.');
    END IF;
    IF usernames = '{}' OR event_types = '{}' OR categories = '{}' OR resource_ids = '{}'
       OR user_types = '{}' OR ip_addresses = '{}' OR statuses = '{}' OR tenants = '{}' OR sources = '{}' THEN
        PERFORM @extschema@._alert_bad('an empty filter matches no event',
            'Pass NULL to leave a filter out, or list at least one value.');
    END IF;
    FOREACH x IN ARRAY coalesce(categories, '{}') LOOP
        IF x IS NULL OR x <> ALL (@extschema@._categories()) THEN
            PERFORM @extschema@._alert_bad(format('unknown event category %L', x),
                'The categories are ' || array_to_string(@extschema@._categories(), ', ') || '.');
        END IF;
    END LOOP;
    FOREACH x IN ARRAY coalesce(event_types, '{}') LOOP
        IF x IS NULL OR NOT @extschema@._is_event_code(x) THEN
            PERFORM @extschema@._alert_bad(format('invalid event type %L', x),
                'An event type is a lowercase dotted code such as auth.login_failed; see audit_log.event_types.');
        END IF;
    END LOOP;
    FOREACH x IN ARRAY coalesce(statuses, '{}') LOOP
        IF x IS NULL OR x NOT IN ('success', 'failure') THEN
            PERFORM @extschema@._alert_bad(format('unknown status %L', x), 'The statuses are success and failure.');
        END IF;
    END LOOP;
    IF details_contain IS NOT NULL AND jsonb_typeof(details_contain) <> 'object' THEN
        PERFORM @extschema@._alert_bad('details_contain must be a JSON object',
            'The details of an event are an object; pass e.g. ''{"superuser": true}''.');
    END IF;

    r := ROW(name, threshold, within, group_by, severity, usernames, event_types, categories,
             resource_ids, user_types, ip_addresses, since, until, text_query, statuses, tenants,
             sources, details_contain, false, now(), session_user);
    PERFORM @extschema@._alert_where(r);     -- search()'s own checks (since after until...)

    -- Serialize with check_alerts(): a pass never sees half a replacement.
    PERFORM 1 FROM @extschema@.alert_state FOR UPDATE;
    DELETE FROM @extschema@.alert_rule o WHERE o.name = r.name;
    existed := FOUND;
    DELETE FROM @extschema@.alert_pending p WHERE p.rule = r.name;
    DELETE FROM @extschema@.alert_group g WHERE g.rule = r.name;
    INSERT INTO @extschema@.alert_rule SELECT r.*;
    PERFORM @extschema@._record('audit', 'audit.alert_rule_changed', 'success', 'alert_rule', r.name,
        CASE WHEN existed THEN 'REPLACE ALERT' ELSE 'CREATE ALERT' END,
        jsonb_build_object('rule', r.name, 'action', CASE WHEN existed THEN 'replaced' ELSE 'created' END,
                           'definition', jsonb_strip_nulls(to_jsonb(r) - 'changed_at' - 'changed_by' - 'builtin')));
END
$$;

/*
 * drop_alert(name): remove a rule (built-in ones included); its alerts stay.
 */
CREATE FUNCTION @extschema@.drop_alert(name text) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET audit_log.internal = on
AS $$
BEGIN
    PERFORM 1 FROM @extschema@.alert_state FOR UPDATE;
    DELETE FROM @extschema@.alert_rule o WHERE o.name = drop_alert.name;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'alert rule % does not exist', quote_literal(drop_alert.name)
            USING ERRCODE = 'undefined_object', HINT = 'See audit_log.alert_rules.';
    END IF;
    DELETE FROM @extschema@.alert_pending p WHERE p.rule = drop_alert.name;
    DELETE FROM @extschema@.alert_group g WHERE g.rule = drop_alert.name;
    PERFORM @extschema@._record('audit', 'audit.alert_rule_changed', 'success', 'alert_rule', drop_alert.name,
        'DROP ALERT', jsonb_build_object('rule', drop_alert.name, 'action', 'dropped'));
END
$$;

/*
 * acknowledge(alert_id, note): mark an alert seen; records
 * audit.alert_acknowledged with the note.
 */
CREATE FUNCTION @extschema@.acknowledge(alert_id bigint, note text DEFAULT NULL) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET audit_log.internal = on
AS $$
DECLARE
    a @extschema@.alerts;
BEGIN
    SELECT * INTO a FROM @extschema@.alerts x WHERE x.alert_id = acknowledge.alert_id FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'alert % does not exist', coalesce(acknowledge.alert_id::text, 'NULL')
            USING ERRCODE = 'undefined_object', HINT = 'See audit_log.alerts.';
    END IF;
    IF a.acknowledged_at IS NOT NULL THEN
        RAISE EXCEPTION 'alert % is already acknowledged', a.alert_id
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  DETAIL = format('It was acknowledged by %s at %s.', a.acknowledged_by, a.acknowledged_at);
    END IF;
    UPDATE @extschema@.alerts x SET acknowledged_at = now(), acknowledged_by = session_user
     WHERE x.alert_id = a.alert_id;
    PERFORM @extschema@._record('audit', 'audit.alert_acknowledged', 'success', 'alert', a.rule,
        'ACKNOWLEDGE', jsonb_strip_nulls(jsonb_build_object('alert_id', a.alert_id, 'rule', a.rule,
                                                            'group_value', a.group_value, 'note', note)));
END
$$;

/*
 * _alert_fire(rule, group_value, events, first, last): one firing: a row of
 * alerts, an audit.alert_raised event, a NOTIFY audit_log_alerts (sent at
 * commit).  The payload holds ids, the rule, the group and the count only.
 */
CREATE FUNCTION @extschema@._alert_fire(r @extschema@.alert_rule, gv text, n integer,
    first_id bigint, last_id bigint) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    id bigint;
    payload jsonb;
BEGIN
    INSERT INTO @extschema@.alerts (raised_at, rule, severity, group_value, events, first_event_id, last_event_id)
    VALUES (clock_timestamp(), r.name, r.severity, gv, n, first_id, last_id)
    RETURNING alerts.alert_id INTO id;
    payload := jsonb_build_object('alert_id', id, 'rule', r.name, 'severity', r.severity,
                                  'group_value', gv, 'events', n,
                                  'first_event_id', first_id, 'last_event_id', last_id);
    PERFORM @extschema@._record('audit', 'audit.alert_raised', 'success', 'alert', r.name, 'ALERT', payload);
    -- A full NOTIFY queue (a listener that never reads, held in a
    -- transaction, lets anyone fill it) fails the commit: the alert, its
    -- event and the pass would all roll back, pass after pass.  Past 90%
    -- the alert is kept and only its notification is left out.
    IF pg_catalog.pg_notification_queue_usage() < 0.9 THEN
        PERFORM pg_notify('audit_log_alerts', payload::text);
    ELSE
        RAISE WARNING 'alert % (%) raised without a notification: the NOTIFY queue is % full', id, r.name,
            pg_catalog.round((pg_catalog.pg_notification_queue_usage() * 100)::numeric) || '%'
            USING HINT = 'Listeners read audit_log.alerts; find the session that holds the queue (LISTEN in a long transaction).';
    END IF;
END
$$;

/*
 * check_alerts(): one evaluation pass over the events not read yet;
 * returns the number of alerts raised.  Its steps: _alert_read() reads the
 * new events once for every rule into the hits; _alert_fire_rule() then
 * evaluates each rule that has hits, in name order.  Without JIT: the
 * statements of a pass are generated and used once, and compiling them
 * cost seconds a pass.
 */
CREATE FUNCTION @extschema@.check_alerts() RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET audit_log.internal = on
SET jit = off
AS $$
DECLARE
    rules @extschema@.alert_rule[];
    i integer;
    fired integer := 0;
BEGIN
    rules := @extschema@._alert_read();
    IF NOT EXISTS (SELECT 1 FROM pg_temp._alert_hits) THEN
        RETURN 0;
    END IF;
    CREATE INDEX ON pg_temp._alert_hits (rule_no);
    ANALYZE pg_temp._alert_hits;
    -- A rule without hits has nothing to do (nothing to fire, add or prune).
    FOR i IN SELECT DISTINCT h.rule_no FROM pg_temp._alert_hits h ORDER BY 1 LOOP
        fired := fired + @extschema@._alert_fire_rule(rules[i], i);
    END LOOP;
    RETURN fired;
END
$$;

/*
 * _alert_read(): the read of a pass, under the lock of alert_state; returns
 * the rules, numbered in name order (read after the lock: a pass never sees
 * half a replacement), and leaves their hits in pg_temp._alert_hits.
 *
 * One statement reads this database's new events (hwm and holes, through
 * the event_id index) and, in the same scan, tests every rule on each of
 * them: the hits (rule, group, time, id) go to the temp table _alert_hits,
 * no copy of the events is made (what the statement keeps of an event that
 * no rule matches is its id); the same statement computes the new hwm and
 * holes from the ids it read (one snapshot, as the header requires), and
 * spends nothing on holes when the ids it read have none.  A second
 * statement does the same for the sources' events, each source from its
 * own position (alert_source_state, see the header); _alert_sources()
 * moves those positions.  Rules that share their filters (all but
 * details_contain) share one evaluation of them per event, and a rule's
 * event types are tested before the rest.
 */
CREATE FUNCTION @extschema@._alert_read() RETURNS @extschema@.alert_rule[]
LANGUAGE plpgsql
AS $$
DECLARE
    st @extschema@.alert_state;
    a bigint;
    g bigint;
    x bigint;
    hi bigint;
    rules @extschema@.alert_rule[];
    r @extschema@.alert_rule;
    rf @extschema@.alert_rule;
    i integer;
    j integer;
    f text;
    filters text[] := '{}';
    cols text := '';
    tests text := '';
    groups text := '';
    head text;
    tail text;
BEGIN
    -- The mark of this pass (header): A, then G, then the xmin X.  A is
    -- read before the row lock below, which gives this transaction its xid.
    a := coalesce(pg_sequence_last_value('@extschema@.events_event_id_seq'::regclass), 0);
    SELECT * INTO st FROM @extschema@.alert_state FOR UPDATE;
    g := pg_current_xact_id()::text::bigint;
    x := pg_snapshot_xmin(pg_current_snapshot())::text::bigint;

    -- The rules, numbered in name order.  A rule's test is its filters
    -- (_alert_where without details_contain; the same filters are computed
    -- once per event for all the rules that share them, as column f<j>;
    -- its event types, tested first, spare the rest for most events) and
    -- then its details_contain.
    rules := ARRAY(SELECT o FROM @extschema@.alert_rule o ORDER BY o.name);
    FOR i IN 1 .. coalesce(array_length(rules, 1), 0) LOOP
        r := rules[i];
        rf := r;
        rf.details_contain := NULL;
        f := '(' || CASE WHEN r.event_types IS NOT NULL
                         THEN format('e.event_type = ANY (%L::text[]) AND ', r.event_types) ELSE '' END
                 || '(' || @extschema@._alert_where(rf) || '))';
        j := array_position(filters, f);
        IF j IS NULL THEN
            filters := filters || f;
            j := cardinality(filters);
            cols := cols || format(', %s AS f%s', f, j);
        END IF;
        tests := tests || format('CASE WHEN e.f%s%s THEN %s END, ', j,
            CASE WHEN r.details_contain IS NOT NULL
                 THEN format(' AND e.details OPERATOR(pg_catalog.@>) %L::jsonb', r.details_contain) ELSE '' END,
            i);
        groups := groups || format(' WHEN %s THEN %s', i, @extschema@._alert_group_expr(r.group_by));
    END LOOP;

    -- Settled marks (they depend on X only).
    st.settled := greatest(st.settled, (SELECT max(m.id) FROM unnest(st.mark_ids, st.mark_xids) AS m(id, xid)
                                         WHERE m.xid <= x));

    IF to_regclass('pg_temp._alert_hits') IS NOT NULL THEN
        DROP TABLE pg_temp._alert_hits;
    END IF;
    CREATE TEMP TABLE _alert_hits (rule_no integer, gv text, t timestamptz, id bigint) ON COMMIT DROP;
    -- What both reads compute of an event (the events read go between head
    -- and tail, as e, with a column probe): its rules (rn, NULL for none)
    -- and, for the events some rule matched only, what the hits need.
    head := 'n AS MATERIALIZED ('
        '  SELECT e.event_id, e.source, e.probe, e.rn,'
        '         CASE WHEN e.rn IS NOT NULL THEN e.occurred_at END AS occurred_at,'
        '         CASE WHEN e.rn IS NOT NULL THEN e.actor END AS actor,'
        '         CASE WHEN e.rn IS NOT NULL THEN e.db_user END AS db_user,'
        '         CASE WHEN e.rn IS NOT NULL THEN e.client_addr END AS client_addr,'
        '         CASE WHEN e.rn IS NOT NULL THEN e.object_name END AS object_name,'
        '         CASE WHEN e.rn IS NOT NULL THEN e.resource_id END AS resource_id,'
        '         CASE WHEN e.rn IS NOT NULL THEN e.tenant END AS tenant'
        '    FROM (SELECT e.event_id, e.occurred_at, e.actor, e.db_user, e.client_addr, e.object_name,'
        '                 e.resource_id, e.tenant, e.source, e.probe,'
        '                 NULLIF(pg_catalog.array_remove(ARRAY[' || tests || ' NULL]::integer[], NULL),'
        '                                   ''{}''::integer[]) AS rn'
        '            FROM (SELECT e.event_id, e.occurred_at, e.actor, e.db_user, e.client_addr, e.object_name,'
        '                         e.resource_id, e.tenant, e.source, e.details, e.probe ' || cols ||
        '                    FROM (';
    tail := ') e OFFSET 0) e OFFSET 0) e), '
        'ins AS ('
        '  INSERT INTO pg_temp._alert_hits (rule_no, gv, t, id)'
        '  SELECT m.rule_no, CASE m.rule_no WHEN 0 THEN NULL::text ' || groups || ' END, e.occurred_at, e.event_id'
        '    FROM n e, pg_catalog.unnest(e.rn) AS m(rule_no) WHERE e.rn IS NOT NULL) ';

    -- This database's events: hits, new hwm, holes (those above settled the
    -- read did not see; none to look for when the ids above settled are as
    -- many as the range they span).  lim: no local event visible to this
    -- statement has an id above the sequence's last value read after its
    -- snapshot, so a source's greater ids are never read here.
    EXECUTE
        'WITH lim AS MATERIALIZED ('
        '  SELECT coalesce(pg_catalog.pg_sequence_last_value(''@extschema@.events_event_id_seq''::pg_catalog.regclass), 0) AS v), '
        || head ||
        'SELECT e.*, false AS probe FROM @extschema@.events e'
        ' WHERE e.source IS NULL'
        '   AND ((e.event_id > $1 AND e.event_id <= (SELECT l.v FROM lim l)) OR e.event_id = ANY ($2))'
        || tail ||
        'SELECT greatest($1, a.mx),'
        '       ARRAY(SELECT s.h FROM (SELECT pg_catalog.unnest($2) AS h'
        '                              UNION ALL SELECT pg_catalog.generate_series(greatest($1, $3) + 1, a.mx)'
        '                                         WHERE a.c < a.mx - greatest($1, $3)) s'
        '              WHERE s.h > $3 AND NOT EXISTS (SELECT 1 FROM n WHERE n.event_id = s.h)'
        '              ORDER BY s.h)'
        '  FROM (SELECT max(n.event_id) AS mx, count(*) FILTER (WHERE n.event_id > greatest($1, $3)) AS c FROM n) a'
      INTO hi, st.holes USING st.hwm, st.holes, st.settled;

    -- New state: marks, hwm.
    SELECT coalesce(array_agg(m.id ORDER BY m.xid), '{}'), coalesce(array_agg(m.xid ORDER BY m.xid), '{}')
      INTO st.mark_ids, st.mark_xids
      FROM (SELECT * FROM unnest(st.mark_ids, st.mark_xids) AS m(id, xid) WHERE m.xid > x
            UNION ALL SELECT a, g) m;
    UPDATE @extschema@.alert_state s
       SET hwm = hi, settled = st.settled, holes = st.holes, mark_ids = st.mark_ids,
           mark_xids = st.mark_xids, passes = s.passes + 1;

    -- The sources' events: each source's events above its hwm (at most
    -- 100,000, in event_id order) and in its holes, through the
    -- (source, event_id) index; the ids read go to _alert_src for
    -- _alert_sources().
    IF EXISTS (SELECT 1 FROM @extschema@.source_registry) OR EXISTS (SELECT 1 FROM @extschema@.alert_source_state) THEN
        IF to_regclass('pg_temp._alert_src') IS NOT NULL THEN
            DROP TABLE pg_temp._alert_src;
        END IF;
        CREATE TEMP TABLE _alert_src (source text, event_id bigint, probe boolean) ON COMMIT DROP;
        EXECUTE
            'WITH k AS MATERIALIZED ('
            '  SELECT x.source, s.hwm, coalesce(s.holes, ''{}''::pg_catalog.int8multirange) AS holes'
            '    FROM (SELECT r.source FROM @extschema@.source_registry r'
            '          UNION SELECT t.source FROM @extschema@.alert_source_state t) x'
            '    LEFT JOIN @extschema@.alert_source_state s ON s.source = x.source), '
            || head ||
            'SELECT e.*, false AS probe FROM k CROSS JOIN LATERAL ('
            '  SELECT e.* FROM @extschema@.events e'
            '   WHERE e.source = k.source AND e.event_id > coalesce(k.hwm, ''-9223372036854775808''::bigint)'
            '   ORDER BY e.event_id LIMIT 100000) e'
            ' UNION ALL '
            'SELECT e.*, true AS probe FROM k CROSS JOIN LATERAL pg_catalog.unnest(k.holes) AS h(r) CROSS JOIN LATERAL ('
            '  SELECT e.* FROM @extschema@.events e'
            '   WHERE e.source = k.source AND e.event_id >= pg_catalog.lower(h.r)'
            '     AND e.event_id < pg_catalog.upper(h.r) OFFSET 0) e'
            || tail ||
            ', src AS (INSERT INTO pg_temp._alert_src SELECT n.source, n.event_id, n.probe FROM n) '
            'SELECT 1';
        PERFORM @extschema@._alert_sources();
    END IF;

    RETURN rules;
END
$$;

/*
 * _alert_sources(): move each source's read position (alert_source_state)
 * past what _alert_read() read of it (pg_temp._alert_src): hwm to the
 * greatest id read above it, the gaps between the ids read become holes,
 * the holes read are filled, and the holes at or below the source's hwm of
 * an hour ago (its settled mark, see the header) are forgotten.
 */
CREATE FUNCTION @extschema@._alert_sources() RETURNS void
LANGUAGE plpgsql
AS $$
DECLARE
    src text;
    ss @extschema@.alert_source_state;
    was @extschema@.alert_source_state;
    mx bigint;
    gaps pg_catalog.int8multirange;
    found pg_catalog.int8multirange;
BEGIN
    FOR src IN SELECT x.source FROM (SELECT t.source FROM @extschema@.alert_source_state t
                                     UNION SELECT a.source FROM pg_temp._alert_src a) x
                ORDER BY x.source LOOP
        SELECT * INTO ss FROM @extschema@.alert_source_state t WHERE t.source = src;
        was := ss;
        SELECT max(r.event_id),
               range_agg(pg_catalog.int8range(r.prev + 1, r.event_id)) FILTER (WHERE r.prev + 1 < r.event_id)
          INTO mx, gaps
          FROM (SELECT a.event_id, coalesce(lag(a.event_id) OVER (ORDER BY a.event_id), ss.hwm) AS prev
                  FROM pg_temp._alert_src a WHERE a.source = src AND NOT a.probe) r;
        SELECT range_agg(pg_catalog.int8range(a.event_id, a.event_id, '[]')) INTO found
          FROM pg_temp._alert_src a WHERE a.source = src AND a.probe;
        ss.source := src;
        ss.holes := coalesce(ss.holes, '{}') - coalesce(found, '{}') + coalesce(gaps, '{}');
        ss.hwm := greatest(ss.hwm, mx);          -- greatest() skips NULLs
        IF mx IS NOT NULL THEN
            ss.mark_at := coalesce(ss.mark_at, '{}') || now();
            ss.mark_hwms := coalesce(ss.mark_hwms, '{}') || ss.hwm;
        END IF;
        ss.settled := greatest(ss.settled, (SELECT max(m.h) FROM unnest(ss.mark_at, ss.mark_hwms) AS m(t, h)
                                             WHERE m.t <= now() - interval '1 hour'));
        SELECT coalesce(array_agg(m.t ORDER BY m.t), '{}'), coalesce(array_agg(m.h ORDER BY m.t), '{}')
          INTO ss.mark_at, ss.mark_hwms
          FROM unnest(ss.mark_at, ss.mark_hwms) AS m(t, h) WHERE m.t > now() - interval '1 hour';
        IF ss.settled IS NOT NULL THEN
            ss.holes := ss.holes - pg_catalog.int8multirange(pg_catalog.int8range(NULL, ss.settled, '(]'));
        END IF;
        -- A pass that moved nothing leaves the row as it is (no dead tuple).
        CONTINUE WHEN was.source IS NOT NULL AND ss IS NOT DISTINCT FROM was;
        INSERT INTO @extschema@.alert_source_state AS t VALUES (ss.*)
            ON CONFLICT (source) DO UPDATE
            SET hwm = excluded.hwm, holes = excluded.holes, settled = excluded.settled,
                mark_at = excluded.mark_at, mark_hwms = excluded.mark_hwms;
    END LOOP;
END
$$;

/*
 * _alert_quiet(rule, group_value, quiet_until): no firing of the rule for
 * that group up to quiet_until.
 */
CREATE FUNCTION @extschema@._alert_quiet(rule_name text, gv text, quiet timestamptz) RETURNS void
LANGUAGE plpgsql
AS $$
BEGIN
    UPDATE @extschema@.alert_group q SET quiet_until = quiet
     WHERE q.rule = rule_name AND q.group_value IS NOT DISTINCT FROM gv;
    IF NOT FOUND THEN
        INSERT INTO @extschema@.alert_group VALUES (rule_name, gv, quiet);
    END IF;
END
$$;

/*
 * _alert_fire_rule(rule, rule_no): evaluate one rule over its hits (rule_no
 * in pg_temp._alert_hits); returns the alerts raised.  A rule of threshold
 * 1 fires on every match outside its quiet windows; a higher threshold
 * reads alert_pending through its index, group by group, and the first
 * event of a window is looked up for the firings only.
 */
CREATE FUNCTION @extschema@._alert_fire_rule(r @extschema@.alert_rule, i integer) RETURNS integer
LANGUAGE plpgsql
AS $$
DECLARE
    c record;
    fired integer := 0;
    cur_group text;
    first_row boolean;
    quiet timestamptz;
    first_id bigint;
BEGIN
    IF r.threshold = 1 THEN
        -- Every match is a candidate; the quiet windows decide.
        FOR c IN
            SELECT h.gv, h.t, h.id, 1 AS n, h.id AS first_id, q.quiet_until
              FROM pg_temp._alert_hits h
              LEFT JOIN @extschema@.alert_group q
                ON q.rule = r.name AND q.group_value IS NOT DISTINCT FROM h.gv
             WHERE h.rule_no = i AND (q.quiet_until IS NULL OR h.t > q.quiet_until)
             ORDER BY h.gv, h.t, h.id
        LOOP
            IF first_row IS NULL OR cur_group IS DISTINCT FROM c.gv THEN
                cur_group := c.gv; first_row := false; quiet := c.quiet_until;
            END IF;
            IF quiet IS NULL OR c.t > quiet THEN
                PERFORM @extschema@._alert_fire(r, c.gv, c.n, c.first_id, c.id);
                fired := fired + 1;
                quiet := c.t + r.within;
                PERFORM @extschema@._alert_quiet(r.name, c.gv, quiet);
            END IF;
        END LOOP;
    ELSE
        INSERT INTO @extschema@.alert_pending
        SELECT r.name, h.gv, h.t, h.id FROM pg_temp._alert_hits h WHERE h.rule_no = i;
        -- The window of each touched group, read through alert_pending_idx.
        FOR c IN EXECUTE format(
            'WITH touched AS (SELECT h.gv, min(h.t) AS t0 FROM pg_temp._alert_hits h'
            '                  WHERE h.rule_no = %4$s GROUP BY h.gv) '
            'SELECT w.gv, w.t, w.id, w.n::integer AS n, q.quiet_until FROM ('
            '  SELECT tc.gv, p.occurred_at AS t, p.event_id AS id, tc.t0,'
            '         count(*) OVER win AS n'
            '    FROM touched tc CROSS JOIN LATERAL ('
            '         SELECT p.occurred_at, p.event_id FROM @extschema@.alert_pending p'
            '          WHERE p.rule = %1$L AND p.group_value = tc.gv'
            '            AND p.occurred_at >= tc.t0 - %2$L::interval'
            '         UNION ALL'
            '         SELECT p.occurred_at, p.event_id FROM @extschema@.alert_pending p'
            '          WHERE tc.gv IS NULL AND p.rule = %1$L AND p.group_value IS NULL'
            '            AND p.occurred_at >= tc.t0 - %2$L::interval) p'
            '  WINDOW win AS (PARTITION BY tc.gv ORDER BY p.occurred_at'
            '                 RANGE BETWEEN %2$L::interval PRECEDING AND CURRENT ROW)) w'
            '  LEFT JOIN @extschema@.alert_group q ON q.rule = %1$L AND q.group_value IS NOT DISTINCT FROM w.gv'
            ' WHERE w.t >= w.t0 AND w.n >= %3$s AND (q.quiet_until IS NULL OR w.t > q.quiet_until)'
            ' ORDER BY w.gv, w.t, w.id', r.name, r.within, r.threshold, i)
        LOOP
            IF first_row IS NULL OR cur_group IS DISTINCT FROM c.gv THEN
                cur_group := c.gv; first_row := false; quiet := c.quiet_until;
            END IF;
            IF quiet IS NULL OR c.t > quiet THEN
                -- The first event of the window (its frame above, read
                -- for the firings only: min() over a moving frame is
                -- recomputed for every row).
                IF c.gv IS NULL THEN
                    SELECT min(p.event_id) INTO first_id FROM @extschema@.alert_pending p
                     WHERE p.rule = r.name AND p.group_value IS NULL
                       AND p.occurred_at >= c.t - r.within AND p.occurred_at <= c.t;
                ELSE
                    SELECT min(p.event_id) INTO first_id FROM @extschema@.alert_pending p
                     WHERE p.rule = r.name AND p.group_value = c.gv
                       AND p.occurred_at >= c.t - r.within AND p.occurred_at <= c.t;
                END IF;
                PERFORM @extschema@._alert_fire(r, c.gv, c.n, first_id, c.id);
                fired := fired + 1;
                quiet := c.t + r.within;
                PERFORM @extschema@._alert_quiet(r.name, c.gv, quiet);
            END IF;
        END LOOP;
        -- What no window needs any more (an hour of slack for late commits).
        DELETE FROM @extschema@.alert_pending p
         WHERE p.rule = r.name
           AND p.occurred_at < (SELECT max(h.t) FROM pg_temp._alert_hits h WHERE h.rule_no = i)
                               - r.within - interval '1 hour';
    END IF;
    RETURN fired;
END
$$;

REVOKE ALL ON FUNCTION @extschema@._alert_group_expr(text), @extschema@._alert_where(@extschema@.alert_rule),
    @extschema@._alert_bad(text, text),
    @extschema@._alert_fire(@extschema@.alert_rule, text, integer, bigint, bigint),
    @extschema@._alert_read(), @extschema@._alert_sources(), @extschema@._alert_quiet(text, text, timestamptz),
    @extschema@._alert_fire_rule(@extschema@.alert_rule, integer),
    @extschema@.create_alert(text, integer, interval, text, text, text[], text[], text[], text[], text[],
        cidr[], timestamptz, timestamptz, text, text[], text[], text[], jsonb),
    @extschema@.drop_alert(text), @extschema@.acknowledge(bigint, text),
    @extschema@.check_alerts() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION
    @extschema@.create_alert(text, integer, interval, text, text, text[], text[], text[], text[], text[],
        cidr[], timestamptz, timestamptz, text, text[], text[], text[], jsonb),
    @extschema@.drop_alert(text), @extschema@.acknowledge(bigint, text),
    @extschema@.check_alerts() TO audit_log_admin;
REVOKE ALL ON @extschema@.alert_rules FROM PUBLIC;
GRANT SELECT ON @extschema@.alerts, @extschema@.alert_rules TO audit_log_reader, audit_log_admin;

-- ==== workers: a writer per database; audit_log.status shows each writer ====
-- _status() gains the column writers: the view is dropped and created again.
DROP VIEW @extschema@.status;
DROP FUNCTION @extschema@._status();
CREATE FUNCTION @extschema@._status(OUT preloaded boolean, OUT table_capture boolean,
    OUT utility_capture boolean, OUT login_capture text, OUT worker_pid integer,
    OUT queue_depth bigint, OUT queue_capacity bigint, OUT events_written bigint,
    OUT events_logged bigint, OUT writers jsonb)
AS 'MODULE_PATHNAME', 'audit_status'
LANGUAGE C VOLATILE;
REVOKE ALL ON FUNCTION @extschema@._status() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION @extschema@._status() TO audit_log_reader, audit_log_admin;
CREATE VIEW @extschema@.status AS SELECT * FROM @extschema@._status();
COMMENT ON VIEW @extschema@.status IS 'What audit_log captures in this server right now.';
COMMENT ON COLUMN @extschema@.status.preloaded IS 'Whether audit_log is in shared_preload_libraries.';
COMMENT ON COLUMN @extschema@.status.table_capture IS 'Whether audited tables are captured (always, by triggers).';
COMMENT ON COLUMN @extschema@.status.utility_capture IS 'Whether roles, privileges, configuration and failed commands are captured by the server hooks.';
COMMENT ON COLUMN @extschema@.status.login_capture IS 'Which logins are captured: all, failures, none, or off without the preload.';
COMMENT ON COLUMN @extschema@.status.worker_pid IS 'Process id of the writer of audit_log.database (which stores the cluster-wide events), NULL when it is not running.';
COMMENT ON COLUMN @extschema@.status.queue_depth IS 'Events waiting in the shared-memory queue.';
COMMENT ON COLUMN @extschema@.status.queue_capacity IS 'Capacity of the shared-memory queue, in events.';
COMMENT ON COLUMN @extschema@.status.events_written IS 'Events the writers stored since the server started.';
COMMENT ON COLUMN @extschema@.status.events_logged IS 'Events written to the server log instead of the table (queue full, worker down).';
COMMENT ON COLUMN @extschema@.status.writers IS 'One object per database writer, by database: database, pid, state, audit_database, started_at, last_write, events_written, queued.';
REVOKE ALL ON @extschema@.status FROM PUBLIC;
GRANT SELECT ON @extschema@.status TO audit_log_reader, audit_log_admin;

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

-- ==== dumpenc: pg_dump/pg_restore keep the history; seals and upkeep in every encoding ====
-- Partitions become data (not members): pg_dump keeps their rows.
DO $members$
DECLARE
    r record;
BEGIN
    FOR r IN SELECT c.oid::regclass AS rel
               FROM pg_catalog.pg_depend d JOIN pg_catalog.pg_class c ON c.oid = d.objid
              WHERE d.classid = 'pg_catalog.pg_class'::regclass AND d.deptype = 'e'
                AND d.refclassid = 'pg_catalog.pg_extension'::regclass
                AND d.refobjid = (SELECT e.oid FROM pg_catalog.pg_extension e WHERE e.extname = 'audit_log')
                AND c.relnamespace = '@extschema@'::regnamespace
                AND c.relname ~ '^events_(p[0-9]{8}.*|default)$'
    LOOP
        EXECUTE pg_catalog.format('ALTER EXTENSION audit_log DROP TABLE %s', r.rel);
    END LOOP;
END
$members$;

-- part 30: maintain() steps on their own, restores
/*
 * maintain(as_of): create partitions ahead, move stray rows out of the
 * default partition, seal closed windows, drop expired partitions.
 * Returns what it did.  as_of stands for "now" (tests).  Each step, and
 * each day or leaf within a step, is on its own: an error is reported as
 * an "error" row (with its SQLSTATE) and the rest goes on.  While another
 * session restores a dump into the database it does nothing; the first
 * run after that restore records it (restore.c, part 70_restore).
 */
CREATE OR REPLACE FUNCTION @extschema@.maintain(as_of timestamptz DEFAULT NULL)
RETURNS TABLE(action text, object text, detail text)
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET audit_log.internal = on
AS $$
DECLARE
    t timestamptz := coalesce(as_of, now());
    old_lock_timeout text := current_setting('lock_timeout');
BEGIN
    PERFORM @extschema@._load();    -- the library's settings, without the preload
    IF NOT pg_catalog.isfinite(t) THEN
        RAISE EXCEPTION 'as_of must be a finite time, not %', t
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Leave it NULL for now, or give a time such as now() + interval ''1 day''.';
    END IF;
    -- A later "now" would purge partitions still inside their window, with
    -- no policy change recorded: only a superuser may (tests, drills).
    IF t > now() AND NOT (SELECT r.rolsuper FROM pg_catalog.pg_roles r WHERE r.rolname = session_user) THEN
        RAISE EXCEPTION 'as_of later than now() is refused for a role that is not a superuser'
            USING ERRCODE = 'insufficient_privilege',
                  DETAIL = 'A later as_of would remove partitions whose events are still inside their retention window.',
                  HINT = 'Leave as_of NULL. To keep events for less time, change the policy with audit_log.set_retention(), which is recorded.';
    END IF;
    -- Short lock waits: the session's lock_timeout if it has one, else 250ms.
    IF old_lock_timeout = '0' THEN
        PERFORM set_config('lock_timeout', '250ms', true);
    END IF;
    IF NOT pg_try_advisory_xact_lock(hashtext('audit_log.maintain')) THEN
        PERFORM set_config('lock_timeout', old_lock_timeout, true);
        action := 'skipped'; object := 'maintain'; detail := 'another maintain() is running';
        RETURN NEXT;
        RETURN;
    END IF;

    -- 0. A dump restored into this database: nothing moves while its
    --    session works; then the restore is recorded and closed.
    IF EXISTS (SELECT 1 FROM @extschema@.restore_state) THEN
        IF @extschema@._restore_running() THEN
            PERFORM set_config('lock_timeout', old_lock_timeout, true);
            action := 'skipped'; object := 'maintain';
            detail := 'a dump is being restored into this database by another session';
            RETURN NEXT;
            RETURN;
        END IF;
        BEGIN
            RETURN QUERY SELECT * FROM @extschema@._restore_close();
        EXCEPTION WHEN OTHERS THEN
            action := 'error'; object := '@extschema@.restore_state';
            detail := SQLSTATE || ': ' || SQLERRM; RETURN NEXT;
        END;
    END IF;

    RETURN QUERY SELECT * FROM @extschema@._premake(t, current_setting('audit_log.premake_days')::int);
    RETURN QUERY SELECT * FROM @extschema@._move_strays();
    RETURN QUERY SELECT * FROM @extschema@._seal_closed(t);
    RETURN QUERY SELECT * FROM @extschema@._purge_expired(t);
    RETURN QUERY SELECT * FROM @extschema@._index_closed(t);

    PERFORM set_config('lock_timeout', old_lock_timeout, true);
END
$$;

-- part 40: canonical bytes in every encoding (identical in UTF8), _seal()
/*
 * _canonical(text): the UTF-8 bytes of a text in any server encoding,
 * never an error (see restore.c).
 */
CREATE FUNCTION @extschema@._canonical(text) RETURNS bytea
AS 'MODULE_PATHNAME', 'audit_canonical'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

/*
 * _event_digest(e): SHA-256 of the canonical encoding of one event.
 */
CREATE OR REPLACE FUNCTION @extschema@._event_digest(e @extschema@.events) RETURNS bytea
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
    SELECT @extschema@._sha256(@extschema@._canonical(pg_catalog.jsonb_build_array(
        e.event_id, (EXTRACT(epoch FROM e.occurred_at) * 1000000)::bigint,
        e.category, e.event_type, e.status, e.actor, e.actor_type, e.db_user, e.effective_role,
        e.client_addr::text, e.application_name, e.user_agent, e.tenant, e.request_id,
        e.database, e.object_type, e.object_name, e.resource_id, e.command,
        e.old_data, e.new_data, e.statement, e.details, e.txid, e.backend_pid)::text))
$$;

/*
 * _chain_origin(): where the first window starts: the earliest event,
 * rounded down to a multiple of the window since 1970-01-01 UTC.
 */
CREATE OR REPLACE FUNCTION @extschema@._chain_origin(wsec bigint) RETURNS timestamptz
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    l record;
    m timestamptz;
    found timestamptz;
    found_hi timestamptz;
BEGIN
    FOR l IN SELECT * FROM @extschema@._leaves() ORDER BY lo LOOP
        EXIT WHEN found_hi IS NOT NULL AND l.lo >= found_hi;
        EXECUTE pg_catalog.format('SELECT min(occurred_at) FROM ONLY %s', l.leaf::regclass) INTO m;
        IF m IS NOT NULL THEN
            found := least(found, m);
            found_hi := l.hi;
        END IF;
    END LOOP;
    -- (an event at +/-infinity is in no window: it cannot hold the chain back)
    found := least(found, (SELECT min(occurred_at) FROM @extschema@.events_default WHERE isfinite(occurred_at)));
    IF found IS NULL THEN
        RETURN NULL;
    END IF;
    RETURN to_timestamp((floor(EXTRACT(epoch FROM found) / wsec) * wsec)::double precision);
END
$$;

/*
 * _seal(as_of): seal every closed window after the last seal; how many
 * windows it sealed, and why it stopped early (NULL when it did not).  A
 * window that cannot be sealed stops the chain there (a chain has no
 * holes): the windows before it are sealed, one at a time once a batch of
 * windows failed.  Nothing is sealed while a dump is being restored into
 * the database by another session (restore.c).  as_of stands for "now"
 * (never later than the clock: the future is never sealed).
 */
CREATE FUNCTION @extschema@._seal(as_of timestamptz, OUT sealed integer, OUT error text)
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
SET audit_log.internal = on
AS $$
DECLARE
    loaded boolean := @extschema@._load();   -- the library's settings, without the preload
    wsec bigint := @extschema@._setting_seconds('audit_log.seal_window');
    w interval := @extschema@._setting_seconds('audit_log.seal_window') * interval '1 second';
    lim timestamptz;
    start timestamptz;
    prev bytea;
    prev0 bytea;
    nwin int;
    one boolean := false;
    r record;
    ws timestamptz;
    dg bytea;
    total int := 0;
    total0 int;
BEGIN
    IF as_of IS NOT NULL AND NOT pg_catalog.isfinite(as_of) THEN
        RAISE EXCEPTION 'as_of must be a finite time, not %', as_of
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Leave it NULL for now.';
    END IF;
    sealed := 0;
    IF @extschema@._restore_running() THEN
        RETURN;
    END IF;
    -- A snapshot older than this call would not see events committed
    -- since it was taken, in windows this call would seal.
    IF current_setting('transaction_isolation') <> 'read committed' THEN
        RAISE EXCEPTION 'seal() needs the read committed isolation level, not %', current_setting('transaction_isolation')
            USING ERRCODE = 'invalid_transaction_state',
                  HINT = 'Call it in a transaction of its own, or at READ COMMITTED.';
    END IF;
    PERFORM pg_advisory_xact_lock(hashtext('audit_log.seal'));
    lim := least(coalesce(as_of, now()), clock_timestamp())
           - @extschema@._setting_seconds('audit_log.seal_delay') * interval '1 second';
    -- No transaction that began before a window's end may still add to it.
    -- A prepared transaction's start is not known (pg_prepared_xacts has
    -- the time of its PREPARE): while one exists, no window closes.
    lim := least(lim,
                 (SELECT min(a.xact_start) FROM pg_stat_activity a
                   WHERE a.backend_xid IS NOT NULL AND a.pid <> pg_backend_pid()),
                 (SELECT '-infinity'::timestamptz FROM pg_prepared_xacts p LIMIT 1));

    SELECT s.window_end, s.digest INTO start, prev FROM @extschema@.seal s ORDER BY s.window_end DESC LIMIT 1;
    IF start IS NULL THEN
        start := @extschema@._chain_origin(wsec);
    END IF;
    WHILE start IS NOT NULL AND start + w <= lim LOOP
        nwin := CASE WHEN one THEN 1
                     ELSE least(floor(EXTRACT(epoch FROM (lim - start)) / wsec)::int, greatest(1, 604800 / wsec)::int) END;
        total0 := total;
        prev0 := prev;
        BEGIN
            FOR r IN
                SELECT g.i, coalesce(a.n, 0) AS n, coalesce(a.ids, '{}'::int8multirange) AS ids,
                       coalesce(a.hashes, ''::bytea) AS hashes,
                       @extschema@._sha256(coalesce(a.cat, ''::bytea)) AS content
                  FROM generate_series(0, nwin - 1) g(i)
                  LEFT JOIN (
                      SELECT floor((EXTRACT(epoch FROM x.occurred_at) - EXTRACT(epoch FROM start)) / wsec)::int AS i,
                             count(*) AS n,
                             range_agg(int8range(x.event_id, x.event_id, '[]')) AS ids,
                             string_agg(substring(x.h FROM 1 FOR 4), ''::bytea ORDER BY x.event_id) AS hashes,
                             string_agg(x.h, ''::bytea ORDER BY x.event_id) AS cat
                        FROM (SELECT e.event_id, e.occurred_at, @extschema@._event_digest(e) AS h
                                FROM @extschema@.events e
                               WHERE e.occurred_at >= start AND e.occurred_at < start + nwin * w
                                 AND e.source IS NULL) x
                       GROUP BY 1) a ON a.i = g.i
                 ORDER BY g.i
            LOOP
                ws := start + r.i * w;
                dg := @extschema@._seal_digest(prev, ws, ws + w, r.n, r.content);
                INSERT INTO @extschema@.seal (window_start, window_end, events, event_ids, event_hashes,
                                              content_digest, prev_digest, digest)
                VALUES (ws, ws + w, r.n, r.ids, r.hashes, r.content, prev, dg);
                prev := dg;
                total := total + 1;
            END LOOP;
        EXCEPTION WHEN OTHERS THEN
            -- The block's inserts are undone; so are its windows here.
            total := total0;
            prev := prev0;
            IF nwin > 1 THEN
                one := true;
                CONTINUE;
            END IF;
            error := 'window [' || @extschema@._ts(start) || ', ' || @extschema@._ts(start + w)
                     || ') cannot be sealed: ' || SQLERRM;
            EXIT;
        END;
        start := start + nwin * w;
    END LOOP;
    sealed := total;
END
$$;

/*
 * seal(as_of): seal every closed window after the last seal; returns how
 * many windows it sealed.  A window that cannot be sealed is a WARNING and
 * the windows before it are sealed (see _seal()).
 */
REVOKE ALL ON FUNCTION @extschema@._canonical(text), @extschema@._seal(timestamptz) FROM PUBLIC;

-- part 70: backups
-- pg_dump keeps where event ids stand.
SELECT pg_catalog.pg_extension_config_dump('@extschema@.events_event_id_seq', '');

-- The restore in progress, if any (never dumped).
CREATE TABLE @extschema@.restore_state (
    pid           integer NOT NULL,
    backend_start timestamptz NOT NULL,
    began_at      timestamptz NOT NULL,
    began_by      text NOT NULL
);
COMMENT ON TABLE @extschema@.restore_state IS
    'The restore of a dump in progress: the session that runs it (see audit_log.maintain()).';
REVOKE ALL ON TABLE @extschema@.restore_state FROM PUBLIC;

INSERT INTO @extschema@.event_type_catalog (event_type, category, description, builtin) VALUES
    ('audit.restored', 'audit', 'Audit trail restored from a dump (pg_restore or psql)', true)
ON CONFLICT (event_type) DO UPDATE
    SET category = excluded.category, description = excluded.description, builtin = true;

/*
 * _restore_begin(): in CREATE EXTENSION with audit_log.restore = on, this
 * session now restores a dump (restore.c); false otherwise.
 * _restore_end(): this session's restore is over.  _restoring(): is this
 * session restoring?  Granted to nobody.
 */
CREATE FUNCTION @extschema@._restore_begin() RETURNS boolean
AS 'MODULE_PATHNAME', 'audit_restore_begin'
LANGUAGE C VOLATILE;
CREATE FUNCTION @extschema@._restore_end() RETURNS boolean
AS 'MODULE_PATHNAME', 'audit_restore_end'
LANGUAGE C VOLATILE;
CREATE FUNCTION @extschema@._restoring() RETURNS boolean
AS 'MODULE_PATHNAME', 'audit_restoring_sql'
LANGUAGE C VOLATILE;

/*
 * _restore_running(): is another session, still connected, restoring a
 * dump into this database?
 */
CREATE FUNCTION @extschema@._restore_running() RETURNS boolean
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT EXISTS (SELECT 1 FROM @extschema@.restore_state r
                    CROSS JOIN LATERAL pg_stat_get_activity(r.pid) a
                    WHERE r.pid <> pg_backend_pid() AND a.backend_start = r.backend_start)
$$;

/*
 * _restore_close(): record the restore that ended (audit.restored, with
 * what it brought back) and close it; the event id sequence is moved past
 * the highest restored id if it is behind, and the alert passes start after
 * the restored events.  One row for maintain().
 */
CREATE FUNCTION @extschema@._restore_close()
RETURNS TABLE(action text, object text, detail text)
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    rs record;
    ev record;
    head record;
    seals bigint;
    last bigint;
BEGIN
    SELECT * INTO rs FROM @extschema@.restore_state ORDER BY began_at LIMIT 1;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    SELECT count(*) AS n, min(e.event_id) AS first_id, max(e.event_id) AS last_id,
           min(e.occurred_at) AS from_time, max(e.occurred_at) AS to_time
      INTO ev FROM @extschema@.events e;
    SELECT count(*) INTO seals FROM @extschema@.seal;
    SELECT s.window_end, s.digest INTO head FROM @extschema@.seal s ORDER BY s.window_end DESC LIMIT 1;
    SELECT CASE WHEN q.is_called THEN q.last_value ELSE q.last_value - 1 END INTO last
      FROM @extschema@.events_event_id_seq q;
    IF ev.last_id > last THEN
        PERFORM pg_catalog.setval('@extschema@.events_event_id_seq', ev.last_id);
    END IF;
    -- Alerts are about what happens from now on (70_alerts.sql): the passes
    -- start after the restored events, this database's and each source's.
    UPDATE @extschema@.alert_state s
       SET hwm = greatest(s.hwm, l.id), settled = greatest(s.settled, l.id), holes = '{}'
      FROM (SELECT coalesce(max(e.event_id), 0) AS id FROM @extschema@.events e WHERE e.source IS NULL) l;
    INSERT INTO @extschema@.alert_source_state AS t (source, hwm)
    SELECT e.source, max(e.event_id) FROM @extschema@.events e WHERE e.source IS NOT NULL GROUP BY e.source
        ON CONFLICT (source) DO UPDATE SET hwm = greatest(t.hwm, excluded.hwm);
    -- New alerts are numbered after the restored ones.
    SELECT max(a.alert_id) INTO last FROM @extschema@.alerts a;
    IF last IS NOT NULL THEN
        PERFORM pg_catalog.setval(pg_catalog.pg_get_serial_sequence('@extschema@.alerts', 'alert_id'), last);
    END IF;
    -- The event_id index of every partition (see restore.c).
    IF NOT EXISTS (SELECT 1 FROM pg_index i
                    WHERE i.indexrelid = pg_catalog.to_regclass('@extschema@.events_event_id_idx') AND i.indisvalid) THEN
        DROP INDEX IF EXISTS @extschema@.events_event_id_idx;
        CREATE INDEX events_event_id_idx ON @extschema@.events (event_id);
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_index i
                    WHERE i.indexrelid = pg_catalog.to_regclass('@extschema@.events_source_event_id_key') AND i.indisvalid) THEN
        DROP INDEX IF EXISTS @extschema@.events_source_event_id_key;
        CREATE UNIQUE INDEX events_source_event_id_key ON @extschema@.events
            (source, event_id, occurred_at, category) WHERE source IS NOT NULL;
    END IF;
    -- The leaves of a dump made before leaf_categories existed.
    PERFORM @extschema@._fill_leaf_categories();
    DELETE FROM @extschema@.restore_state;
    PERFORM @extschema@._restore_end();     -- when this very session restored
    PERFORM @extschema@._record('audit', 'audit.restored', 'success', 'database', current_database(),
        'RESTORE', jsonb_build_object(
            'events', ev.n, 'first_event_id', ev.first_id, 'last_event_id', ev.last_id,
            'from_time', @extschema@._ts(ev.from_time), 'to_time', @extschema@._ts(ev.to_time),
            'seals', seals, 'chain_head', encode(head.digest, 'hex'),
            'chain_head_end', @extschema@._ts(head.window_end),
            'partitions', (SELECT count(*) FROM @extschema@._leaves()),
            'retention_policies', (SELECT count(*) FROM @extschema@.retention_policy),
            'legal_holds', (SELECT count(*) FROM @extschema@.legal_hold),
            'audited_tables', (SELECT count(*) FROM @extschema@.table_config),
            'restored_by', rs.began_by, 'began_at', @extschema@._ts(rs.began_at),
            'closed_at', @extschema@._ts(now())));
    action := 'restored'; object := '@extschema@.events';
    detail := ev.n || ' events' || coalesce(' (ids ' || ev.first_id || ' to ' || ev.last_id || ')', '')
              || ', ' || seals || ' seals, restored by ' || rs.began_by || ' since '
              || @extschema@._ts(rs.began_at);
    RETURN NEXT;
END
$$;

REVOKE ALL ON FUNCTION @extschema@._restore_begin(), @extschema@._restore_end(),
    @extschema@._restoring(), @extschema@._restore_running(),
    @extschema@._restore_close() FROM PUBLIC;

-- ==== sources: (issue 13) the source column, search/export sources filter, publish/subscribe/ingest, verify(source) ====
-- The events of a central database carry their source (NULL: captured
-- here).  Adding a nullable column rewrites nothing.
ALTER TABLE @extschema@.events ADD COLUMN source text;
CREATE UNIQUE INDEX events_source_event_id_key ON @extschema@.events
    (source, event_id, occurred_at, category) WHERE source IS NOT NULL;

-- The views gain the column (last), and search()/export()/export_csv() the
-- sources filter (their last parameter), verify() its source: a new
-- parameter list is a new function, so the old ones are dropped and their
-- grants and comments made again.
DROP FUNCTION @extschema@.search(text[], text[], text[], text[], text[], cidr[], timestamptz,
    timestamptz, text, text[], text[], bigint, integer);
DROP FUNCTION @extschema@._search_where(text[], text[], text[], text[], text[], cidr[],
    timestamptz, timestamptz, text, text[], text[], bigint);
DROP FUNCTION @extschema@._search_filters(text[], text[], text[], text[], text[], cidr[],
    timestamptz, timestamptz, text, text[], text[], bigint, integer);
DROP FUNCTION @extschema@.export_csv(text, text[], text[], text[], text[], text[], cidr[],
    timestamptz, timestamptz, text, text[], text[], bigint, integer);
DROP FUNCTION @extschema@.export(text[], text[], text[], text[], text[], cidr[], timestamptz,
    timestamptz, text, text[], text[], bigint, integer);
DROP FUNCTION @extschema@.verify(timestamptz, timestamptz);
DROP FUNCTION @extschema@._first_bad_event(timestamptz, timestamptz, int8multirange, bytea);

CREATE OR REPLACE VIEW @extschema@.event_log AS
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

CREATE OR REPLACE VIEW @extschema@.privileged_changes AS
SELECT *
  FROM @extschema@.event_log
 WHERE category IN ('role', 'privilege', 'config', 'ddl', 'audit');

COMMENT ON COLUMN @extschema@.event_log.source IS 'NULL for an event captured in this database; in a central audit database, the source it came from (see audit_log.sources).';
COMMENT ON COLUMN @extschema@.privileged_changes.source IS 'NULL for an event captured in this database; in a central audit database, the source it came from (see audit_log.sources).';

ALTER TYPE @extschema@.export_row ADD ATTRIBUTE source text;
COMMENT ON COLUMN @extschema@.export_row.source IS 'The event''s source as text (see audit_log.event_log.source).';

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
        pat := '%' || replace(replace(replace(text_query, '\', '\\'), '%', '\%'), '_', '\_') || '%';
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
            || ' AND e.event_id OPERATOR(pg_catalog.<) $1 ORDER BY e.event_id'
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

CREATE FUNCTION @extschema@.export(usernames text[] DEFAULT NULL, event_types text[] DEFAULT NULL,
    categories text[] DEFAULT NULL, resource_ids text[] DEFAULT NULL, user_types text[] DEFAULT NULL,
    ip_addresses cidr[] DEFAULT NULL, since timestamptz DEFAULT NULL, until timestamptz DEFAULT NULL,
    text_query text DEFAULT NULL, statuses text[] DEFAULT NULL, tenants text[] DEFAULT NULL,
    after_event_id bigint DEFAULT NULL, max_rows integer DEFAULT NULL, sources text[] DEFAULT NULL)
RETURNS SETOF @extschema@.export_row
AS 'MODULE_PATHNAME', 'audit_export'
LANGUAGE C VOLATILE SECURITY DEFINER ROWS 1000
SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION @extschema@.export(text[], text[], text[], text[], text[], cidr[], timestamptz,
    timestamptz, text, text[], text[], bigint, integer, text[]) IS
    'Matching events as text cells for COPY ... CSV, in event_id order, at most audit_log.export_max_rows rows; recorded as audit.exported.';

CREATE FUNCTION @extschema@.export_csv(path text, usernames text[] DEFAULT NULL,
    event_types text[] DEFAULT NULL, categories text[] DEFAULT NULL, resource_ids text[] DEFAULT NULL,
    user_types text[] DEFAULT NULL, ip_addresses cidr[] DEFAULT NULL, since timestamptz DEFAULT NULL,
    until timestamptz DEFAULT NULL, text_query text DEFAULT NULL, statuses text[] DEFAULT NULL,
    tenants text[] DEFAULT NULL, after_event_id bigint DEFAULT NULL, max_rows integer DEFAULT NULL,
    sources text[] DEFAULT NULL)
RETURNS bigint
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
SET datestyle = 'ISO, YMD'
AS $$
DECLARE
    n bigint;
BEGIN
    IF path IS NULL OR path = '' THEN
        RAISE EXCEPTION 'path must not be empty'
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Give an absolute path of a file the server may write, e.g. /var/lib/postgresql/audit.csv.';
    END IF;
    EXECUTE format('COPY (SELECT * FROM @extschema@.export(usernames => %L, event_types => %L,'
                   ' categories => %L, resource_ids => %L, user_types => %L, ip_addresses => %L,'
                   ' since => %L, until => %L, text_query => %L, statuses => %L, tenants => %L,'
                   ' after_event_id => %L, max_rows => %L, sources => %L)) TO %L WITH (FORMAT csv, HEADER)',
                   usernames, event_types, categories, resource_ids, user_types, ip_addresses,
                   since, until, text_query, statuses, tenants, after_event_id, max_rows, sources, path);
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END
$$;
COMMENT ON FUNCTION @extschema@.export_csv(text, text[], text[], text[], text[], text[], cidr[],
    timestamptz, timestamptz, text, text[], text[], bigint, integer, text[]) IS
    'COPY audit_log.export(filters) as CSV with a header to a server file; needs pg_write_server_files; returns the rows written.';

REVOKE ALL ON FUNCTION @extschema@.export(text[], text[], text[], text[], text[], cidr[], timestamptz,
    timestamptz, text, text[], text[], bigint, integer, text[]) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.export_csv(text, text[], text[], text[], text[], text[], cidr[],
    timestamptz, timestamptz, text, text[], text[], bigint, integer, text[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION @extschema@.export(text[], text[], text[], text[], text[], cidr[], timestamptz,
    timestamptz, text, text[], text[], bigint, integer, text[]) TO audit_log_reader, audit_log_admin;
GRANT EXECUTE ON FUNCTION @extschema@.export_csv(text, text[], text[], text[], text[], text[], cidr[],
    timestamptz, timestamptz, text, text[], text[], bigint, integer, text[]) TO audit_log_reader, audit_log_admin;

-- The chain of this database covers its own events (source NULL) only.
CREATE OR REPLACE FUNCTION @extschema@.seal(as_of timestamptz DEFAULT NULL) RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    r record;
BEGIN
    SELECT * INTO r FROM @extschema@._seal(as_of);
    IF r.error IS NOT NULL THEN
        RAISE WARNING 'audit_log: %', r.error
            USING HINT = 'The windows before it are sealed; sealing goes on from there once the cause is fixed.';
    END IF;
    RETURN r.sealed;
END
$$;

CREATE FUNCTION @extschema@._first_bad_event(ws timestamptz, we timestamptz, ids int8multirange, hashes bytea,
    src text DEFAULT NULL, kept_only boolean DEFAULT false)
RETURNS text
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    WITH sealed AS (
        SELECT id, row_number() OVER (ORDER BY id) AS ord
          FROM (SELECT generate_series(lower(r), upper(r) - 1) AS id FROM unnest(ids) r) x
    ), sh AS (
        SELECT id, substring(hashes FROM ((ord - 1) * 4 + 1)::int FOR 4) AS h FROM sealed
    ), act AS (
        SELECT e.event_id AS id, substring(@extschema@._event_digest(e) FROM 1 FOR 4) AS h,
               count(*) OVER (PARTITION BY e.event_id) AS copies
          FROM @extschema@.events e WHERE e.occurred_at >= ws AND e.occurred_at < we
           AND e.source IS NOT DISTINCT FROM src
    )
    SELECT 'event ' || coalesce(sh.id, act.id) || ' ' ||
           CASE WHEN act.id IS NULL THEN 'deleted or moved out of the window'
                WHEN sh.id IS NULL THEN 'not in the seal: inserted or moved into the window'
                WHEN act.copies > 1 THEN 'duplicated'
                ELSE 'altered' END
      FROM sh FULL JOIN act ON sh.id = act.id
     WHERE sh.id IS NULL OR (act.id IS NULL AND NOT kept_only) OR sh.h <> act.h OR act.copies > 1
     ORDER BY coalesce(sh.id, act.id)
     LIMIT 1
$$;

CREATE FUNCTION @extschema@.verify(from_time timestamptz DEFAULT NULL, to_time timestamptz DEFAULT NULL,
    source text DEFAULT NULL)
RETURNS TABLE(window_start timestamptz, window_end timestamptz, status text, events bigint, detail text)
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    s record;
    p record;
    first boolean := true;
    n bigint;
    content bytea;
    pg record;
    bad text;
BEGIN
    IF from_time IS NOT NULL AND to_time IS NOT NULL AND from_time >= to_time THEN
        RAISE EXCEPTION 'verify range starts at or after its end' USING ERRCODE = 'invalid_parameter_value',
            DETAIL = 'from_time must be earlier than to_time.';
    END IF;
    FOR s IN SELECT * FROM @extschema@._seal_rows(verify.source) x
              WHERE (from_time IS NULL OR x.window_end > from_time)
                AND (to_time IS NULL OR x.window_start < to_time)
              ORDER BY x.window_start
    LOOP
        IF first THEN
            SELECT * INTO p FROM @extschema@._seal_rows(verify.source) x WHERE x.window_end <= s.window_start
             ORDER BY x.window_end DESC LIMIT 1;
            first := false;
        END IF;
        -- A hole in the chain: seal records are gone.
        IF p.window_end IS NOT NULL AND p.window_end < s.window_start THEN
            window_start := p.window_end; window_end := s.window_start; status := 'missing';
            SELECT count(*) INTO events FROM @extschema@.events e
             WHERE e.occurred_at >= p.window_end AND e.occurred_at < s.window_start
               AND e.source IS NOT DISTINCT FROM verify.source;
            detail := 'no seal record for this range: the chain is broken';
            RETURN NEXT;
        END IF;
        window_start := s.window_start; window_end := s.window_end;
        SELECT string_agg(pl.partition, ', ' ORDER BY pl.partition) AS parts, max(pl.purged_at) AS at
          INTO pg FROM @extschema@.purge_log pl
         WHERE pl.from_time < s.window_end AND pl.to_time > s.window_start;

        IF s.digest <> @extschema@._seal_digest(s.prev_digest, s.window_start, s.window_end, s.events, s.content_digest) THEN
            status := 'mismatch'; events := s.events;
            detail := 'seal record altered: its digest does not match its content';
        ELSIF s.prev_digest IS DISTINCT FROM p.digest
              AND NOT (s.prev_digest IS NOT NULL AND p.window_end IS NOT NULL AND p.window_end < s.window_start) THEN
            status := 'mismatch'; events := s.events;
            detail := 'seal chain broken: the previous digest does not match the previous seal';
        ELSIF pg.parts IS NOT NULL THEN
            -- What retention left of the window (a category of a longer
            -- policy, say) is still checked, event by event, against the
            -- ids and digest prefixes of the seal: a purge of one category
            -- does not blind verify() to the others.
            bad := @extschema@._first_bad_event(s.window_start, s.window_end, s.event_ids, s.event_hashes,
                                                verify.source, true);
            events := s.events;
            IF bad IS NOT NULL THEN
                status := 'mismatch';
                detail := bad || ' (a window partly purged by retention: ' || pg.parts || ')';
            ELSE
                status := 'purged';
                detail := s.events || ' events sealed, purged by retention (' || pg.parts || ') at '
                          || @extschema@._ts(pg.at) || '; anchor digest ' || encode(s.digest, 'hex');
            END IF;
        ELSE
            SELECT count(*), @extschema@._sha256(coalesce(string_agg(x.h, ''::bytea ORDER BY x.event_id), ''::bytea))
              INTO n, content
              FROM (SELECT e.event_id, @extschema@._event_digest(e) AS h FROM @extschema@.events e
                     WHERE e.occurred_at >= s.window_start AND e.occurred_at < s.window_end
                       AND e.source IS NOT DISTINCT FROM verify.source) x;
            events := n;
            IF n = s.events AND content = s.content_digest THEN
                status := 'ok'; detail := NULL;
            ELSIF n = 0 THEN
                status := 'missing';
                detail := 'all ' || s.events || ' sealed events are gone and no purge was recorded';
            ELSE
                status := 'mismatch';
                bad := @extschema@._first_bad_event(s.window_start, s.window_end, s.event_ids, s.event_hashes,
                                                    verify.source);
                detail := coalesce(bad, 'window digest differs') || ' (' || n || ' events, ' || s.events || ' sealed)';
            END IF;
        END IF;
        RETURN NEXT;
        p := s;
    END LOOP;
END
$$;

REVOKE ALL ON FUNCTION @extschema@._first_bad_event(timestamptz, timestamptz, int8multirange, bytea, text, boolean),
    @extschema@.verify(timestamptz, timestamptz, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION @extschema@.verify(timestamptz, timestamptz, text) TO audit_log_admin;

-- The sources this central database knows, by name.
CREATE TABLE @extschema@.source_registry (
    source     text PRIMARY KEY CHECK (source ~ '^[a-z0-9_]{1,50}$' AND source <> 'local'),
    kind       text NOT NULL CHECK (kind IN ('subscription', 'ingest')),
    host       text,
    port       text,
    dbname     text,
    created_at timestamptz NOT NULL DEFAULT pg_catalog.now()
);
COMMENT ON TABLE @extschema@.source_registry IS
    'The sources of this central database (subscriptions and ingested feeds); read it through audit_log.sources.';
REVOKE ALL ON TABLE @extschema@.source_registry FROM PUBLIC;
SELECT pg_catalog.pg_extension_config_dump('@extschema@.source_registry', '');

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
BEGIN
    PERFORM @extschema@._check_source_name(source);
    IF conninfo IS NULL OR conninfo = '' THEN
        RAISE EXCEPTION 'conninfo must not be empty'
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Give the source database''s connection string, e.g. ''host=db1 dbname=app user=replicator''.';
    END IF;
    IF EXISTS (SELECT 1 FROM @extschema@.source_registry r WHERE r.source = subscribe.source)
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
    -- Reachable, with the publication: a clear error, nothing created.
    PERFORM @extschema@._source_remote(conninfo, NULL, 'check');
    -- binary: events travel in the types' binary forms (no jsonb or inet
    -- text to parse again on the central side; the apply's main cost).
    EXECUTE format('CREATE SUBSCRIPTION %I CONNECTION %L PUBLICATION audit_log_events'
                   ' WITH (create_slot = false, slot_name = %L, copy_data = %s, enabled = true,'
                   ' binary = true)',
                   sub, conninfo, sub, CASE WHEN coalesce(copy_history, true) THEN 'true' ELSE 'false' END);
    INSERT INTO @extschema@.source_registry (source, kind, host, port, dbname)
    VALUES (source, 'subscription', @extschema@._conninfo_part(conninfo, 'host'),
            @extschema@._conninfo_part(conninfo, 'port'), @extschema@._conninfo_part(conninfo, 'dbname'));
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
    SELECT r.kind INTO k FROM @extschema@.source_registry r WHERE r.source = unsubscribe.source;
    IF k IS NULL THEN
        RAISE EXCEPTION 'source "%" does not exist', source
            USING ERRCODE = 'undefined_object',
                  HINT = 'See audit_log.sources for the sources of this database.';
    END IF;
    DELETE FROM @extschema@.source_registry r WHERE r.source = unsubscribe.source;
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
    erow @extschema@.events;
    -- The keys an element may have: the columns of events, source excepted.
    cols constant text[] := ARRAY(SELECT a.attname::text FROM pg_catalog.pg_attribute a
                                   WHERE a.attrelid = '@extschema@.events'::pg_catalog.regclass
                                     AND a.attnum > 0 AND NOT a.attisdropped AND a.attname <> 'source');
BEGIN
    PERFORM @extschema@._check_source_name(source);
    IF EXISTS (SELECT 1 FROM @extschema@.source_registry r
                WHERE r.source = ingest.source AND r.kind <> 'ingest') THEN
        RAISE EXCEPTION 'source "%" is a subscription', source
            USING ERRCODE = 'duplicate_object',
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
        IF known.builtin THEN
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
    -- (source, event_id) is an event's key: one ingest() of a source at a
    -- time (ids numbered after the last, duplicates looked for, without a
    -- race), and an id is refused when the source has it already, whatever
    -- its time or category (the unique index also holds those, below).
    PERFORM pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtext('audit_log.ingest'), pg_catalog.hashtext(source));
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
    -- Elements without an event_id are numbered after the source's last one.
    SELECT coalesce(max(e.event_id), 0) INTO base FROM @extschema@.events e WHERE e.source = ingest.source;
    BEGIN
        -- The row is the element's keys (JSON nulls as SQL NULL) over the
        -- defaults, with the source: every column comes from the table's type.
        INSERT INTO @extschema@.events
        SELECT r.*
          FROM pg_catalog.jsonb_array_elements(events) WITH ORDINALITY AS a(x, o)
          LEFT JOIN @extschema@.event_type_catalog c ON c.event_type = a.x ->> 'event_type'
         CROSS JOIN LATERAL pg_catalog.jsonb_populate_record(NULL::@extschema@.events,
                pg_catalog.jsonb_build_object('event_id', base + a.o, 'occurred_at', pg_catalog.now(),
                                              'category', coalesce(c.category, 'app'), 'status', 'success')
                || (SELECT coalesce(pg_catalog.jsonb_object_agg(k.key, k.value), '{}'::jsonb)
                      FROM pg_catalog.jsonb_each(a.x) k WHERE pg_catalog.jsonb_typeof(k.value) <> 'null')
                || pg_catalog.jsonb_build_object('source', ingest.source)) AS r;
    EXCEPTION WHEN unique_violation THEN
        RAISE EXCEPTION 'an event_id of events is already stored for source "%"', source
            USING ERRCODE = 'unique_violation',
                  DETAIL = '(source, event_id) identifies an event; nothing was stored.';
    END;
    INSERT INTO @extschema@.source_registry (source, kind) VALUES (source, 'ingest')
    ON CONFLICT DO NOTHING;
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
       CASE WHEN r.kind = 'ingest' THEN NULL
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
COMMENT ON COLUMN @extschema@.sources.state IS 'streaming, catching_up (initial copy or more than 16 MB behind), down (no apply worker: the source is unreachable or failing) or lost (the slot on the source was invalidated or dropped: events may be missing); NULL for a feed.';
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



-- ==== structure: maintain() in steps (issue 11) ====
-- The event categories and the syntax of event codes come from the C side
-- (context.c): the CHECKs of event_type_catalog, enable(), create_alert()
-- and ingest() read them through _categories() and _is_event_code().

/*
 * _categories(): the event categories of DESIGN.md, sorted.
 * _is_event_code(code): is code a lowercase dotted identifier such as
 * "user.role_added" (any length)?  Both are the C side's own (context.c),
 * so that SQL and C never disagree; see doc/internals.md.
 */
CREATE OR REPLACE FUNCTION @extschema@._categories() RETURNS text[]
AS 'MODULE_PATHNAME', 'audit_categories_sql'
LANGUAGE C IMMUTABLE PARALLEL SAFE;

CREATE FUNCTION @extschema@._is_event_code(code text) RETURNS boolean
AS 'MODULE_PATHNAME', 'audit_is_event_code_sql'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

REVOKE ALL ON FUNCTION @extschema@._is_event_code(text) FROM PUBLIC;
CREATE FUNCTION @extschema@._category_of(code text) RETURNS text
AS 'MODULE_PATHNAME', 'audit_category_of_sql'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
REVOKE ALL ON FUNCTION @extschema@._category_of(text) FROM PUBLIC;
ALTER TABLE @extschema@.event_type_catalog
    DROP CONSTRAINT event_type_catalog_event_type_check,
    DROP CONSTRAINT event_type_catalog_category_check,
    ADD CONSTRAINT event_type_catalog_event_type_check CHECK (@extschema@._is_event_code(event_type)),
    ADD CONSTRAINT event_type_catalog_category_check CHECK (category = ANY (@extschema@._categories()));

/*
 * enable(target, category, event_types, exclude_columns, mask_columns,
 * when_changed): attach (or update) the C capture of a table.
 */


-- Each leaf's categories, recorded when it is created (the leaves of
-- this database: read back from their bounds once, at the end).
CREATE TABLE @extschema@.leaf_categories (
    leaf        text PRIMARY KEY,
    categories  text[] NOT NULL
);
COMMENT ON TABLE @extschema@.leaf_categories IS
    'The event categories each leaf partition of audit_log.events holds, recorded when it was created; read them through audit_log.partitions.';
REVOKE ALL ON TABLE @extschema@.leaf_categories FROM PUBLIC;
SELECT pg_catalog.pg_extension_config_dump('@extschema@.leaf_categories', '');

/*
 * _layout(): the leaves a day gets when it is laid out now: one LIST leaf
 * per named policy that has categories, and the DEFAULT leaf (policy
 * default) for every other category; categories sorted.
 */
CREATE OR REPLACE FUNCTION @extschema@._layout() RETURNS TABLE(policy text, categories text[])
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT p.policy, ARRAY(SELECT c FROM unnest(p.categories) c ORDER BY c)
      FROM @extschema@._policies() p
     WHERE p.policy = 'default' OR cardinality(p.categories) > 0
$$;

/*
 * _remember_leaf(leaf, categories): record the categories of a leaf just
 * created (leaf_categories).
 */
CREATE OR REPLACE FUNCTION @extschema@._remember_leaf(leaf text, categories text[]) RETURNS void
LANGUAGE sql
SET search_path = pg_catalog, pg_temp
AS $$
    INSERT INTO @extschema@.leaf_categories AS k (leaf, categories) VALUES (leaf, categories)
    ON CONFLICT (leaf) DO UPDATE SET categories = EXCLUDED.categories
$$;

/*
 * _add_leaves(part): the leaves of the day partition part, which has none,
 * as _layout() says.  Callers mark the internal operation and, for a day
 * already attached, hold its ACCESS EXCLUSIVE lock.
 */

/*
 * _layout_matches(day): has the day partition the leaves _layout() gives
 * (same names, same recorded categories)?
 */
CREATE OR REPLACE FUNCTION @extschema@._layout_matches(day regclass) RETURNS boolean
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    WITH cur AS (
        SELECT c.relname::text AS name, k.categories AS cats
          FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
          LEFT JOIN @extschema@.leaf_categories k ON k.leaf = c.relname::text
         WHERE i.inhparent = day
    ), want AS (
        SELECT (SELECT d.relname::text FROM pg_class d WHERE d.oid = day) || '_' || l.policy AS name,
               l.categories AS cats
          FROM @extschema@._layout() l
    )
    SELECT NOT EXISTS (SELECT * FROM cur EXCEPT SELECT * FROM want)
       AND NOT EXISTS (SELECT * FROM want EXCEPT SELECT * FROM cur)
$$;

/*
 * _relayout_day(day): give a day partition that holds no event yet the
 * leaves of the policies as they are now, so that a policy applies at
 * once to the days already created ahead (set_retention() and maintain()
 * call it).  false when the day does not exist, already has that layout
 * or holds events: those keep their leaves, and maintain() splits a leaf
 * when the shortest policy of its categories expires.  Waits for the
 * day's ACCESS EXCLUSIVE lock within the caller's lock_timeout
 * (lock_not_available when a writer holds it, before anything changed).
 */

/*
 * _leaves(): every leaf partition of the days: its day, range and the
 * categories it holds, as recorded when it was created (leaf_categories;
 * NULL when none is: such a leaf is never purged).  A day that is a plain
 * table (no policy level, made by 1.0) is its own leaf holding every
 * category.
 */
CREATE OR REPLACE FUNCTION @extschema@._leaves()
RETURNS TABLE(leaf oid, leaf_name text, day_oid oid, day_name text, lo timestamptz, hi timestamptz, categories text[])
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    WITH days AS (
        SELECT c.oid, c.relname::text AS name, c.relkind,
               to_date(substr(c.relname, 9, 8), 'YYYYMMDD') AS day
          FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
         WHERE i.inhparent = '@extschema@.events'::regclass
           AND c.relname ~ '^events_p[0-9]{8}$'
    )
    SELECT c.oid, c.relname::text, d.oid, d.name, @extschema@._day_lo(d.day), @extschema@._day_lo(d.day + 1),
           k.categories
      FROM days d JOIN pg_inherits i ON i.inhparent = d.oid JOIN pg_class c ON c.oid = i.inhrelid
      LEFT JOIN @extschema@.leaf_categories k ON k.leaf = c.relname::text
     WHERE d.relkind = 'p'
    UNION ALL
    SELECT d.oid, d.name, d.oid, d.name, @extschema@._day_lo(d.day), @extschema@._day_lo(d.day + 1),
           @extschema@._categories()
      FROM days d WHERE d.relkind = 'r'
$$;

/*
 * _fill_leaf_categories(): record the categories of the leaves that have
 * no record: those of a database updated from 1.0, or restored from a dump
 * made before leaf_categories existed.  Only here are they read back from
 * the partition bounds: a DEFAULT leaf holds the categories no LIST leaf
 * of its day names, except those whose rows the day already purged
 * (purge_log): they had a leaf of their own.  Returns how many leaves it
 * recorded.
 */
CREATE OR REPLACE FUNCTION @extschema@._fill_leaf_categories() RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    n integer;
BEGIN
    WITH subs AS (
        SELECT d.oid AS day_oid, to_date(substr(d.relname, 9, 8), 'YYYYMMDD') AS day,
               c.relname::text AS name, pg_get_expr(c.relpartbound, c.oid) AS bound
          FROM pg_inherits di JOIN pg_class d ON d.oid = di.inhrelid
          JOIN pg_inherits i ON i.inhparent = d.oid JOIN pg_class c ON c.oid = i.inhrelid
         WHERE di.inhparent = '@extschema@.events'::regclass
           AND d.relname ~ '^events_p[0-9]{8}$' AND d.relkind = 'p'
    ), listed AS (
        SELECT s.*, ARRAY(SELECT m[1] FROM regexp_matches(s.bound, '''([a-z]+)''', 'g') m ORDER BY 1) AS cats
          FROM subs s
    ), purged AS (
        SELECT p.from_time, array_agg(DISTINCT c) AS cats
          FROM @extschema@.purge_log p CROSS JOIN LATERAL unnest(p.categories) c
         GROUP BY p.from_time
    )
    INSERT INTO @extschema@.leaf_categories (leaf, categories)
    SELECT l.name,
           CASE WHEN l.bound = 'DEFAULT'
                THEN ARRAY(SELECT c FROM unnest(@extschema@._categories()) c
                            WHERE NOT EXISTS (SELECT 1 FROM listed l2
                                               WHERE l2.day_oid = l.day_oid AND l2.bound <> 'DEFAULT'
                                                 AND c = ANY (l2.cats))
                              AND NOT c = ANY (coalesce(pu.cats, '{}'))
                            ORDER BY c)
                ELSE l.cats END
      FROM listed l LEFT JOIN purged pu ON pu.from_time = @extschema@._day_lo(l.day)
     WHERE NOT EXISTS (SELECT 1 FROM @extschema@.leaf_categories k WHERE k.leaf = l.name)
    ON CONFLICT DO NOTHING;
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END
$$;

/*
 * _log_purge(leaf_name, lo, hi, cats, pol, keep, n, extra): what retention
 * removed from a leaf: a purge_log row (verify() reports its windows as
 * purged) and an audit.purged event, whose details are the rows, range,
 * policy, keep and categories, and extra.
 */
CREATE OR REPLACE FUNCTION @extschema@._log_purge(leaf_name text, lo timestamptz, hi timestamptz, cats text[],
    pol text, keep interval, n bigint, extra jsonb DEFAULT '{}')
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    INSERT INTO @extschema@.purge_log (partition, from_time, to_time, categories, policy, rows, purged_at)
    VALUES ('@extschema@.' || leaf_name, lo, hi, cats, pol, n, clock_timestamp());
    PERFORM @extschema@._record('audit', 'audit.purged', 'success', 'table',
        '@extschema@.' || leaf_name, 'DROP TABLE',
        jsonb_build_object('rows', n, 'from_time', @extschema@._ts(lo), 'to_time', @extschema@._ts(hi),
                           'policy', pol, 'keep', keep::text, 'categories', to_jsonb(cats)) || extra);
END
$$;

/*
 * _split_leaf(leaf, leaf_name, day, lo, hi, categories, as_of): a leaf that
 * holds the categories of several policies (its day held events before a
 * policy change), some of which have expired as of as_of.  The rows of
 * the categories still inside their window are copied into new leaves of
 * the day, one per policy (named events_pYYYYMMDD_<policy>, with a suffix
 * _2, _3... when that name is taken), then the leaf is dropped with the
 * expired rows: never a DELETE.  Moved rows keep every column, so the
 * seals still verify.  The expired rows are one audit.purged event and a
 * purge-log row (none when there were none).  A row of a category no
 * policy covers stops the split (deferred): it is never lost.  The caller
 * holds the day's ACCESS EXCLUSIVE lock (on its leaves too) and marks the
 * internal operation.  Returns what it did: moved, purged or deferred.
 */

/*
 * The steps of maintain().  Each returns what it did as rows (action,
 * object, detail) and goes on after a failure on one day or leaf, which it
 * reports as a row of _failed().  The caller holds maintain()'s advisory
 * lock, its short lock_timeout and the internal mark.
 *
 * _failed(failed_object, state, message, what): the row of a failure on
 * failed_object (SQLSTATE state, SQLERRM message): "retry" when a lock
 * was not granted in time (lock_not_available, deadlock_detected: the next
 * run tries again), else "error" with the SQLSTATE, after what was left
 * undone when given.
 */
CREATE OR REPLACE FUNCTION @extschema@._failed(failed_object text, state text, message text, what text DEFAULT NULL)
RETURNS TABLE(action text, object text, detail text)
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE WHEN state IN ('55P03', '40P01') THEN 'retry' ELSE 'error' END, failed_object,
           CASE WHEN state IN ('55P03', '40P01') THEN 'lock not available: ' || message
                ELSE coalesce(what || ': ', '') || state || ': ' || message END
$$;

/*
 * _day_created(day): the row of a day partition just created.
 */
CREATE OR REPLACE FUNCTION @extschema@._day_created(day date)
RETURNS TABLE(action text, object text, detail text)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT 'created', '@extschema@.' || @extschema@._partition_name(day),
           '[' || @extschema@._ts(@extschema@._day_lo(day)) || ', '
               || @extschema@._ts(@extschema@._day_lo(day + 1)) || ')'
$$;

/*
 * _premake(as_of, days): step 1, the day partitions ahead: as_of's day
 * (UTC) and the days more after it, created (or laid out again for the
 * current policies while still empty: "rebuilt").  A day that has stray
 * rows is left to _move_strays().
 */
CREATE OR REPLACE FUNCTION @extschema@._premake(as_of timestamptz, days integer)
RETURNS TABLE(action text, object text, detail text)
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
SET audit_log.internal = on
AS $$
DECLARE
    d date;
BEGIN
    FOR d IN SELECT g::date FROM generate_series((as_of AT TIME ZONE 'UTC')::date,
                                                 (as_of AT TIME ZONE 'UTC')::date + days, interval '1 day') g
    LOOP
        BEGIN
            CONTINUE WHEN EXISTS (SELECT 1 FROM @extschema@.events_default e
                                   WHERE e.occurred_at >= @extschema@._day_lo(d)
                                     AND e.occurred_at < @extschema@._day_lo(d + 1));
            IF @extschema@._create_partition(d) THEN
                RETURN QUERY SELECT * FROM @extschema@._day_created(d);
            ELSIF @extschema@._relayout_day(d) THEN
                -- Still empty, laid out before the last policy change.
                action := 'rebuilt'; object := '@extschema@.' || @extschema@._partition_name(d);
                detail := 'empty day laid out for the current retention policies'; RETURN NEXT;
            END IF;
        EXCEPTION WHEN OTHERS THEN
            RETURN QUERY SELECT * FROM @extschema@._failed('@extschema@.' || @extschema@._partition_name(d),
                                                           SQLSTATE, SQLERRM);
        END;
    END LOOP;
END
$$;

/*
 * _move_strays(): step 2, the rows of the safety net events_default go to
 * their day, created if need be ("created", then "moved").  A day's rows
 * are reported once they are moved: a failure undoes the day's work and
 * leaves them in the safety net, where search and verify see them.
 */
CREATE OR REPLACE FUNCTION @extschema@._move_strays()
RETURNS TABLE(action text, object text, detail text)
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
SET audit_log.internal = on
AS $$
DECLARE
    d date;
    n bigint;
    created boolean;
BEGIN
    FOR d IN SELECT DISTINCT (e.occurred_at AT TIME ZONE 'UTC')::date
               FROM @extschema@.events_default e ORDER BY 1
    LOOP
        IF NOT isfinite(d) THEN
            action := 'error'; object := '@extschema@.events_default';
            detail := (SELECT count(*) FROM @extschema@.events_default e
                        WHERE (e.occurred_at AT TIME ZONE 'UTC')::date = d)
                      || ' rows at ' || d || ' belong to no day: they stay here';
            RETURN NEXT;
            CONTINUE;
        END IF;
        BEGIN
            LOCK TABLE @extschema@.events_default IN ACCESS EXCLUSIVE MODE;
            -- A new table, never one found in pg_temp (see _split_leaf()).
            IF pg_catalog.to_regclass('pg_temp.audit_log_strays') IS NOT NULL THEN
                DROP TABLE pg_temp.audit_log_strays;
            END IF;
            CREATE TEMP TABLE audit_log_strays (LIKE @extschema@.events) ON COMMIT DROP;
            WITH m AS (DELETE FROM @extschema@.events_default e
                        WHERE e.occurred_at >= @extschema@._day_lo(d) AND e.occurred_at < @extschema@._day_lo(d + 1)
                        RETURNING e.*)
            INSERT INTO pg_temp.audit_log_strays SELECT * FROM m;
            GET DIAGNOSTICS n = ROW_COUNT;
            created := @extschema@._create_partition(d);
            INSERT INTO @extschema@.events SELECT * FROM pg_temp.audit_log_strays;
        EXCEPTION WHEN OTHERS THEN
            RETURN QUERY SELECT * FROM @extschema@._failed('@extschema@.events_default', SQLSTATE, SQLERRM,
                                                           'rows of ' || coalesce(d::text, 'NULL') || ' not moved');
            CONTINUE;
        END;
        IF created THEN
            RETURN QUERY SELECT * FROM @extschema@._day_created(d);
        END IF;
        action := 'moved'; object := '@extschema@.' || @extschema@._partition_name(d);
        detail := n || ' rows from @extschema@.events_default'; RETURN NEXT;
    END LOOP;
END
$$;

/*
 * _seal_closed(as_of): step 3, seal the closed windows (before anything is
 * dropped): "sealed", and "error" when the chain stopped early.
 */
CREATE OR REPLACE FUNCTION @extschema@._seal_closed(as_of timestamptz)
RETURNS TABLE(action text, object text, detail text)
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    sealed record;
BEGIN
    SELECT * INTO sealed FROM @extschema@._seal(as_of);
    IF sealed.sealed > 0 THEN
        action := 'sealed'; object := '@extschema@.seals';
        detail := sealed.sealed || ' windows up to ' ||
                  @extschema@._ts((SELECT max(s.window_end) FROM @extschema@.seal s));
        RETURN NEXT;
    END IF;
    IF sealed.error IS NOT NULL THEN
        action := 'error'; object := '@extschema@.seals'; detail := sealed.error; RETURN NEXT;
    END IF;
EXCEPTION WHEN OTHERS THEN
    action := 'error'; object := '@extschema@.seals'; detail := SQLSTATE || ': ' || SQLERRM; RETURN NEXT;
END
$$;

/*
 * _purge_expired(as_of): step 4, drop what has expired as of as_of, by
 * whole leaves, or whole days when every leaf of the day goes ("purged");
 * a leaf that also holds categories of policies not expired yet is split
 * (_split_leaf(): "moved", "purged").  An expired leaf under a legal hold
 * is "held", one whose windows are not sealed yet "deferred".  Each day is
 * on its own: a failure undoes that day.
 */
CREATE OR REPLACE FUNCTION @extschema@._purge_expired(as_of timestamptz)
RETURNS TABLE(action text, object text, detail text)
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
SET audit_log.internal = on
AS $$
DECLARE
    events_busy boolean := false;
    r record;
    l record;
    n bigint;
    drop_list oid[];
    split_list oid[];
    whole boolean;
BEGIN
    -- A new table, never one found in pg_temp (see _split_leaf()): when
    -- it cannot be made, nothing is purged this run.
    BEGIN
        IF pg_catalog.to_regclass('pg_temp.audit_log_leaves') IS NOT NULL THEN
            DROP TABLE pg_temp.audit_log_leaves;
        END IF;
        CREATE TEMP TABLE audit_log_leaves ON COMMIT DROP AS
            SELECT s.*, s.expires <= as_of AS expired, s.last_expires <= as_of AS all_expired
              FROM @extschema@._leaf_state() s;
    EXCEPTION WHEN OTHERS THEN
        action := 'error'; object := '@extschema@.partitions'; detail := SQLSTATE || ': ' || SQLERRM; RETURN NEXT;
        RETURN;
    END;
    FOR r IN SELECT s.day_oid, s.day_name, count(*) AS leaves
               FROM pg_temp.audit_log_leaves s
              GROUP BY s.day_oid, s.day_name
             HAVING bool_or(s.expired)
              ORDER BY s.day_name
    LOOP
        -- Report held and unsealed leaves; keep only the droppable ones.
        drop_list := '{}';
        split_list := '{}';
        FOR l IN SELECT s.* FROM pg_temp.audit_log_leaves s
                  WHERE s.day_oid = r.day_oid AND s.expired ORDER BY s.leaf_name
        LOOP
            IF cardinality(l.holds) > 0 THEN
                action := 'held'; object := '@extschema@.' || l.leaf_name;
                detail := 'expired but kept by legal hold ' || array_to_string(l.holds, ', '); RETURN NEXT;
            ELSIF NOT l.sealed AND @extschema@._rows(l.leaf) > 0 THEN
                action := 'deferred'; object := '@extschema@.' || l.leaf_name;
                detail := 'expired but its windows are not sealed yet'; RETURN NEXT;
            ELSIF l.all_expired THEN
                drop_list := drop_list || l.leaf;
            ELSE
                split_list := split_list || l.leaf;
            END IF;
        END LOOP;
        CONTINUE WHEN cardinality(drop_list) = 0 AND cardinality(split_list) = 0;
        whole := cardinality(drop_list) = r.leaves;
        IF events_busy AND whole THEN
            -- Writers hold audit_log.events: do not queue behind them again.
            action := 'retry'; object := '@extschema@.' || r.day_name;
            detail := 'audit_log.events is busy: retried at the next run'; RETURN NEXT;
            CONTINUE;
        END IF;
        BEGIN
            IF whole THEN
                events_busy := true;
                EXECUTE pg_catalog.format('LOCK TABLE %I.events IN ACCESS EXCLUSIVE MODE', '@extschema@');
            END IF;
            events_busy := false;
            -- The day and all its leaves (LOCK recurses): a split also
            -- checks the day's DEFAULT leaf when it attaches new leaves.
            EXECUTE pg_catalog.format('LOCK TABLE %s IN ACCESS EXCLUSIVE MODE', r.day_oid::regclass);
            -- Every lock first: once a row is reported, nothing waits any more.
            FOR l IN SELECT s.leaf FROM pg_temp.audit_log_leaves s
                      WHERE s.leaf = ANY (drop_list) AND s.leaf <> r.day_oid ORDER BY s.leaf_name
            LOOP
                EXECUTE pg_catalog.format('LOCK TABLE %s IN ACCESS EXCLUSIVE MODE', l.leaf::regclass);
            END LOOP;
            FOR l IN SELECT s.* FROM pg_temp.audit_log_leaves s
                      WHERE s.leaf = ANY (drop_list) ORDER BY s.leaf_name
            LOOP
                -- Everything in it has expired: the longest policy decides.
                n := @extschema@._rows(l.leaf);
                PERFORM @extschema@._log_purge(l.leaf_name, l.lo, l.hi, l.categories, l.last_policy,
                                               l.last_keep, n);
                IF NOT whole THEN
                    EXECUTE pg_catalog.format('DROP TABLE %s', l.leaf::regclass);
                END IF;
                DELETE FROM @extschema@.leaf_categories k WHERE k.leaf = l.leaf_name;
                action := 'purged'; object := '@extschema@.' || l.leaf_name;
                detail := n || ' rows, [' || @extschema@._ts(l.lo) || ', ' || @extschema@._ts(l.hi)
                          || '), policy ' || l.last_policy || ' (' || l.last_keep::text || ')';
                RETURN NEXT;
            END LOOP;
            IF whole THEN
                EXECUTE pg_catalog.format('DROP TABLE %s', r.day_oid::regclass);
            END IF;
            FOR l IN SELECT s.* FROM pg_temp.audit_log_leaves s
                      WHERE s.leaf = ANY (split_list) ORDER BY s.leaf_name
            LOOP
                RETURN QUERY SELECT * FROM @extschema@._split_leaf(l.leaf, l.leaf_name, l.day_oid,
                                                                  l.lo, l.hi, l.categories, as_of);
            END LOOP;
        EXCEPTION WHEN OTHERS THEN
            -- That day is undone; the other days go on.
            RETURN QUERY SELECT * FROM @extschema@._failed('@extschema@.' || r.day_name, SQLSTATE, SQLERRM);
        END;
    END LOOP;
END
$$;

/*
 * maintain(as_of): the upkeep, in steps: 0. close a restore that ended;
 * 1. create partitions ahead (_premake(); and lay out again the empty ones
 * a policy change left with old leaves); 2. move stray rows out of the
 * default partition (_move_strays()); 3. seal closed windows
 * (_seal_closed()); 4. drop expired partitions (_purge_expired(); split a
 * leaf that holds categories of several policies when the first of them
 * expires); 5. build the search indexes of the days that ended
 * (_index_closed()).  Returns what it did.  as_of stands for "now"
 * (tests).  Each step, and each day or leaf within a step, is on its own:
 * an error is reported as an "error" row (with its SQLSTATE) and the rest
 * goes on.  While another session restores a dump into the database it
 * does nothing; the first run after that restore records it (restore.c,
 * part 70_restore).
 */

REVOKE ALL ON FUNCTION @extschema@._remember_leaf(text, text[]), @extschema@._fill_leaf_categories(),
    @extschema@._log_purge(text, timestamptz, timestamptz, text[], text, interval, bigint, jsonb),
    @extschema@._failed(text, text, text, text), @extschema@._day_created(date),
    @extschema@._premake(timestamptz, integer), @extschema@._move_strays(),
    @extschema@._seal_closed(timestamptz), @extschema@._purge_expired(timestamptz) FROM PUBLIC;

-- _index_closed() returns its rows (maintain()'s step 5).
DROP FUNCTION @extschema@._index_closed(timestamptz);

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

REVOKE ALL ON FUNCTION @extschema@._index_closed(timestamptz) FROM PUBLIC;

/*
 * create_alert(...): create the rule, or replace the rule of that name
 * (its windows start afresh).  Records audit.alert_rule_changed.
 */

/*
 * _restore_close(): record the restore that ended (audit.restored, with
 * what it brought back) and close it; the event id sequence is moved past
 * the highest restored id if it is behind, and the alert passes start after
 * the restored events.  One row for maintain().
 */

/*
 * ingest(source, events): store the events of a feed from outside
 * PostgreSQL, all or nothing; returns how many were stored.
 */

SELECT @extschema@._fill_leaf_categories();


-- ==== seals: events waiting in the queue keep their windows open; what keeps a due window open ====
/*
 * _queue_oldest(): the capture time of the oldest event still waiting in
 * the shared queue for this database's writer (queue.c); NULL when none
 * waits or without the preload.  Once stored, such an event lands in the
 * window of its capture time, so no window from there on is sealed.
 */
CREATE FUNCTION @extschema@._queue_oldest() RETURNS timestamptz
AS 'MODULE_PATHNAME', 'audit_queue_oldest_sql'
LANGUAGE C STABLE PARALLEL RESTRICTED;

REVOKE ALL ON FUNCTION @extschema@._queue_oldest() FROM PUBLIC;

-- _seal() says what keeps a due window open (a new OUT column: dropped and
-- made again; seal() and _seal_closed() report it).
DROP FUNCTION @extschema@._seal(timestamptz);
/*
 * _seal(as_of): seal every closed window after the last seal; how many
 * windows it sealed, why it stopped early (error, NULL when it did not),
 * and what keeps a window that is due (ended seal_delay ago) open
 * (waiting: a running transaction that began before its end, a prepared
 * transaction, events of its time still waiting for the writer; NULL when
 * nothing does).  A
 * window that cannot be sealed stops the chain there (a chain has no
 * holes): the windows before it are sealed, one at a time once a batch of
 * windows failed.  Nothing is sealed while a dump is being restored into
 * the database by another session (restore.c).  as_of stands for "now"
 * (never later than the clock: the future is never sealed).
 */
CREATE FUNCTION @extschema@._seal(as_of timestamptz, OUT sealed integer, OUT error text, OUT waiting text)
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
SET audit_log.internal = on
AS $$
DECLARE
    loaded boolean := @extschema@._load();   -- the library's settings, without the preload
    wsec bigint := @extschema@._setting_seconds('audit_log.seal_window');
    w interval := @extschema@._setting_seconds('audit_log.seal_window') * interval '1 second';
    lim timestamptz;
    due timestamptz;
    held_start timestamptz;
    held_pid int;
    held_gid text;
    queued timestamptz;
    start timestamptz;
    prev bytea;
    prev0 bytea;
    nwin int;
    one boolean := false;
    r record;
    ws timestamptz;
    dg bytea;
    total int := 0;
    total0 int;
BEGIN
    IF as_of IS NOT NULL AND NOT pg_catalog.isfinite(as_of) THEN
        RAISE EXCEPTION 'as_of must be a finite time, not %', as_of
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Leave it NULL for now.';
    END IF;
    sealed := 0;
    IF @extschema@._restore_running() THEN
        RETURN;
    END IF;
    -- A snapshot older than this call would not see events committed
    -- since it was taken, in windows this call would seal.
    IF current_setting('transaction_isolation') <> 'read committed' THEN
        RAISE EXCEPTION 'seal() needs the read committed isolation level, not %', current_setting('transaction_isolation')
            USING ERRCODE = 'invalid_transaction_state',
                  HINT = 'Call it in a transaction of its own, or at READ COMMITTED.';
    END IF;
    PERFORM pg_advisory_xact_lock(hashtext('audit_log.seal'));
    due := least(coalesce(as_of, now()), clock_timestamp())
           - @extschema@._setting_seconds('audit_log.seal_delay') * interval '1 second';
    -- No transaction that began before a window's end may still add to it.
    -- A prepared transaction's start is not known (pg_prepared_xacts has
    -- the time of its PREPARE): while one exists, no window closes.  An
    -- event waiting in the queue for the writer lands in the window of its
    -- capture time.
    SELECT a.xact_start, a.pid INTO held_start, held_pid FROM pg_stat_activity a
     WHERE a.backend_xid IS NOT NULL AND a.pid <> pg_backend_pid()
     ORDER BY a.xact_start LIMIT 1;
    SELECT p.gid INTO held_gid FROM pg_prepared_xacts p ORDER BY p.prepared LIMIT 1;
    queued := @extschema@._queue_oldest();
    lim := least(due, held_start, queued,
                 CASE WHEN held_gid IS NOT NULL THEN '-infinity'::timestamptz END);

    SELECT s.window_end, s.digest INTO start, prev FROM @extschema@.seal s ORDER BY s.window_end DESC LIMIT 1;
    IF start IS NULL THEN
        start := @extschema@._chain_origin(wsec);
    END IF;
    IF start + w <= due AND start + w > lim THEN
        waiting := 'windows from ' || @extschema@._ts(start) || ' are due and wait for '
            || CASE WHEN held_gid IS NOT NULL THEN
                        'the prepared transaction ' || quote_literal(held_gid) || ' (its start is not known)'
                    WHEN queued IS NOT NULL AND queued <= lim THEN
                        'events captured since ' || @extschema@._ts(queued) || ' that the writer has not stored yet'
                    ELSE 'the transaction of process ' || held_pid || ', begun at ' || @extschema@._ts(held_start)
               END;
    END IF;
    WHILE start IS NOT NULL AND start + w <= lim LOOP
        nwin := CASE WHEN one THEN 1
                     ELSE least(floor(EXTRACT(epoch FROM (lim - start)) / wsec)::int, greatest(1, 604800 / wsec)::int) END;
        total0 := total;
        prev0 := prev;
        BEGIN
            FOR r IN
                SELECT g.i, coalesce(a.n, 0) AS n, coalesce(a.ids, '{}'::int8multirange) AS ids,
                       coalesce(a.hashes, ''::bytea) AS hashes,
                       @extschema@._sha256(coalesce(a.cat, ''::bytea)) AS content
                  FROM generate_series(0, nwin - 1) g(i)
                  LEFT JOIN (
                      SELECT floor((EXTRACT(epoch FROM x.occurred_at) - EXTRACT(epoch FROM start)) / wsec)::int AS i,
                             count(*) AS n,
                             range_agg(int8range(x.event_id, x.event_id, '[]')) AS ids,
                             string_agg(substring(x.h FROM 1 FOR 4), ''::bytea ORDER BY x.event_id) AS hashes,
                             string_agg(x.h, ''::bytea ORDER BY x.event_id) AS cat
                        FROM (SELECT e.event_id, e.occurred_at, @extschema@._event_digest(e) AS h
                                FROM @extschema@.events e
                               WHERE e.occurred_at >= start AND e.occurred_at < start + nwin * w
                                 AND e.source IS NULL) x
                       GROUP BY 1) a ON a.i = g.i
                 ORDER BY g.i
            LOOP
                ws := start + r.i * w;
                dg := @extschema@._seal_digest(prev, ws, ws + w, r.n, r.content);
                INSERT INTO @extschema@.seal (window_start, window_end, events, event_ids, event_hashes,
                                              content_digest, prev_digest, digest)
                VALUES (ws, ws + w, r.n, r.ids, r.hashes, r.content, prev, dg);
                prev := dg;
                total := total + 1;
            END LOOP;
        EXCEPTION WHEN OTHERS THEN
            -- The block's inserts are undone; so are its windows here.
            total := total0;
            prev := prev0;
            IF nwin > 1 THEN
                one := true;
                CONTINUE;
            END IF;
            error := 'window [' || @extschema@._ts(start) || ', ' || @extschema@._ts(start + w)
                     || ') cannot be sealed: ' || SQLERRM;
            EXIT;
        END;
        start := start + nwin * w;
    END LOOP;
    sealed := total;
END
$$;

REVOKE ALL ON FUNCTION @extschema@._seal(timestamptz) FROM PUBLIC;

/*
 * seal(as_of): seal every closed window after the last seal; returns how
 * many windows it sealed.  A window that cannot be sealed is a WARNING and
 * the windows before it are sealed (see _seal()); so is a window that is
 * due and kept open (what keeps it).
 */
CREATE OR REPLACE FUNCTION @extschema@.seal(as_of timestamptz DEFAULT NULL) RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    r record;
BEGIN
    SELECT * INTO r FROM @extschema@._seal(as_of);
    IF r.error IS NOT NULL THEN
        RAISE WARNING 'audit_log: %', r.error
            USING HINT = 'The windows before it are sealed; sealing goes on from there once the cause is fixed.';
    END IF;
    IF r.waiting IS NOT NULL THEN
        RAISE WARNING 'audit_log: %', r.waiting
            USING HINT = 'They are sealed once it is over: end a transaction left open, or start the writer.';
    END IF;
    RETURN r.sealed;
END
$$;

/*
 * _seal_closed(as_of): step 3, seal the closed windows (before anything is
 * dropped): "sealed", "error" when the chain stopped early, and "waiting"
 * with what keeps a window that is due open.
 */
CREATE OR REPLACE FUNCTION @extschema@._seal_closed(as_of timestamptz)
RETURNS TABLE(action text, object text, detail text)
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    sealed record;
BEGIN
    SELECT * INTO sealed FROM @extschema@._seal(as_of);
    IF sealed.sealed > 0 THEN
        action := 'sealed'; object := '@extschema@.seals';
        detail := sealed.sealed || ' windows up to ' ||
                  @extschema@._ts((SELECT max(s.window_end) FROM @extschema@.seal s));
        RETURN NEXT;
    END IF;
    IF sealed.error IS NOT NULL THEN
        action := 'error'; object := '@extschema@.seals'; detail := sealed.error; RETURN NEXT;
    END IF;
    IF sealed.waiting IS NOT NULL THEN
        action := 'waiting'; object := '@extschema@.seals'; detail := sealed.waiting; RETURN NEXT;
    END IF;
EXCEPTION WHEN OTHERS THEN
    action := 'error'; object := '@extschema@.seals'; detail := SQLSTATE || ': ' || SQLERRM; RETURN NEXT;
END
$$;


-- ==== alerts: pending matches pruned, and quiet windows set, by times never later than now() ====
/*
 * _alert_fire_rule(rule, rule_no): evaluate one rule over its hits (rule_no
 * in pg_temp._alert_hits); returns the alerts raised.  A rule of threshold
 * 1 fires on every match outside its quiet windows; a higher threshold
 * reads alert_pending through its index, group by group, and the first
 * event of a window is looked up for the firings only.
 */
CREATE OR REPLACE FUNCTION @extschema@._alert_fire_rule(r @extschema@.alert_rule, i integer) RETURNS integer
LANGUAGE plpgsql
AS $$
DECLARE
    c record;
    fired integer := 0;
    cur_group text;
    first_row boolean;
    quiet timestamptz;
    first_id bigint;
BEGIN
    IF r.threshold = 1 THEN
        -- Every match is a candidate; the quiet windows decide.
        FOR c IN
            SELECT h.gv, h.t, h.id, 1 AS n, h.id AS first_id, q.quiet_until
              FROM pg_temp._alert_hits h
              LEFT JOIN @extschema@.alert_group q
                ON q.rule = r.name AND q.group_value IS NOT DISTINCT FROM h.gv
             WHERE h.rule_no = i AND (q.quiet_until IS NULL OR h.t > q.quiet_until)
             ORDER BY h.gv, h.t, h.id
        LOOP
            IF first_row IS NULL OR cur_group IS DISTINCT FROM c.gv THEN
                cur_group := c.gv; first_row := false; quiet := c.quiet_until;
            END IF;
            IF quiet IS NULL OR c.t > quiet THEN
                PERFORM @extschema@._alert_fire(r, c.gv, c.n, c.first_id, c.id);
                fired := fired + 1;
                quiet := least(c.t, now()) + r.within;   -- (a future time would hold it quiet until then)
                PERFORM @extschema@._alert_quiet(r.name, c.gv, quiet);
            END IF;
        END LOOP;
    ELSE
        INSERT INTO @extschema@.alert_pending
        SELECT r.name, h.gv, h.t, h.id FROM pg_temp._alert_hits h WHERE h.rule_no = i;
        -- The window of each touched group, read through alert_pending_idx.
        FOR c IN EXECUTE format(
            'WITH touched AS (SELECT h.gv, min(h.t) AS t0 FROM pg_temp._alert_hits h'
            '                  WHERE h.rule_no = %4$s GROUP BY h.gv) '
            'SELECT w.gv, w.t, w.id, w.n::integer AS n, q.quiet_until FROM ('
            '  SELECT tc.gv, p.occurred_at AS t, p.event_id AS id, tc.t0,'
            '         count(*) OVER win AS n'
            '    FROM touched tc CROSS JOIN LATERAL ('
            '         SELECT p.occurred_at, p.event_id FROM @extschema@.alert_pending p'
            '          WHERE p.rule = %1$L AND p.group_value = tc.gv'
            '            AND p.occurred_at >= tc.t0 - %2$L::interval'
            '         UNION ALL'
            '         SELECT p.occurred_at, p.event_id FROM @extschema@.alert_pending p'
            '          WHERE tc.gv IS NULL AND p.rule = %1$L AND p.group_value IS NULL'
            '            AND p.occurred_at >= tc.t0 - %2$L::interval) p'
            '  WINDOW win AS (PARTITION BY tc.gv ORDER BY p.occurred_at'
            '                 RANGE BETWEEN %2$L::interval PRECEDING AND CURRENT ROW)) w'
            '  LEFT JOIN @extschema@.alert_group q ON q.rule = %1$L AND q.group_value IS NOT DISTINCT FROM w.gv'
            ' WHERE w.t >= w.t0 AND w.n >= %3$s AND (q.quiet_until IS NULL OR w.t > q.quiet_until)'
            ' ORDER BY w.gv, w.t, w.id', r.name, r.within, r.threshold, i)
        LOOP
            IF first_row IS NULL OR cur_group IS DISTINCT FROM c.gv THEN
                cur_group := c.gv; first_row := false; quiet := c.quiet_until;
            END IF;
            IF quiet IS NULL OR c.t > quiet THEN
                -- The first event of the window (its frame above, read
                -- for the firings only: min() over a moving frame is
                -- recomputed for every row).
                IF c.gv IS NULL THEN
                    SELECT min(p.event_id) INTO first_id FROM @extschema@.alert_pending p
                     WHERE p.rule = r.name AND p.group_value IS NULL
                       AND p.occurred_at >= c.t - r.within AND p.occurred_at <= c.t;
                ELSE
                    SELECT min(p.event_id) INTO first_id FROM @extschema@.alert_pending p
                     WHERE p.rule = r.name AND p.group_value = c.gv
                       AND p.occurred_at >= c.t - r.within AND p.occurred_at <= c.t;
                END IF;
                PERFORM @extschema@._alert_fire(r, c.gv, c.n, first_id, c.id);
                fired := fired + 1;
                quiet := least(c.t, now()) + r.within;   -- (a future time would hold it quiet until then)
                PERFORM @extschema@._alert_quiet(r.name, c.gv, quiet);
            END IF;
        END LOOP;
        -- What no window needs any more (an hour of slack for late commits),
        -- by the newest match, never later than now: one event dated in the
        -- future (a source's clock, or its superuser) would otherwise clear
        -- the pending matches of every group.
        DELETE FROM @extschema@.alert_pending p
         WHERE p.rule = r.name
           AND p.occurred_at < least((SELECT max(h.t) FROM pg_temp._alert_hits h WHERE h.rule_no = i), now())
                               - r.within - interval '1 hour';
    END IF;
    RETURN fired;
END
$$;


-- ==== sources: a name keeps its kind after unsubscribe(); subscribe(), unsubscribe() and ingest() recorded; ingest() one call per source at a time, at READ COMMITTED, ids numbered after those given; one host for a subscribe() by a role that is not a superuser ====
ALTER TABLE @extschema@.source_registry ADD COLUMN unsubscribed_at timestamptz;     -- unsubscribe(): the name stays taken

INSERT INTO @extschema@.event_type_catalog (event_type, category, description, builtin) VALUES
    ('audit.source_subscribed', 'audit', 'A source subscribed to by this central database', true),
    ('audit.source_unsubscribed', 'audit', 'A source or feed no longer received by this central database', true),
    ('audit.ingested', 'audit', 'Events of a feed stored with ingest()', true)
ON CONFLICT (event_type) DO UPDATE
    SET category = excluded.category, description = excluded.description, builtin = true;

/*
 * subscribe(source, conninfo, copy_history): on the central database,
 * receive the events of a source under the name source.
 */
CREATE OR REPLACE FUNCTION @extschema@.subscribe(source text, conninfo text, copy_history boolean DEFAULT true)
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
CREATE OR REPLACE FUNCTION @extschema@.unsubscribe(source text) RETURNS void
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
CREATE OR REPLACE FUNCTION @extschema@.ingest(source text, events jsonb) RETURNS bigint
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
        IF known.builtin THEN
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
 * sources (view): the sources of this central database and how they are
 * doing.
 */
CREATE OR REPLACE VIEW @extschema@.sources AS
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
COMMENT ON COLUMN @extschema@.sources.state IS 'streaming, catching_up (initial copy or more than 16 MB behind), down (no apply worker: the source is unreachable or failing), lost (the slot on the source was invalidated or dropped: events may be missing) or unsubscribed (its events stay; the name stays taken); NULL for a feed.';

-- ==== retention: holds and policies locked while maintain() purges, no purge-log row for a leaf without rows, days ahead as dates; search: the paging horizon for this database's own events, text_query whatever standard_conforming_strings says ====
/*
 * _premake(as_of, days): step 1, the day partitions ahead: as_of's day
 * (UTC) and the days more after it, created (or laid out again for the
 * current policies while still empty: "rebuilt").  A day that has stray
 * rows is left to _move_strays().
 */
CREATE OR REPLACE FUNCTION @extschema@._premake(as_of timestamptz, days integer)
RETURNS TABLE(action text, object text, detail text)
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
SET audit_log.internal = on
AS $$
DECLARE
    d date;
BEGIN
    -- (dates, not times: a day whose local midnight does not exist is one)
    FOR d IN SELECT (as_of AT TIME ZONE 'UTC')::date + i FROM generate_series(0, days) i
    LOOP
        BEGIN
            CONTINUE WHEN EXISTS (SELECT 1 FROM @extschema@.events_default e
                                   WHERE e.occurred_at >= @extschema@._day_lo(d)
                                     AND e.occurred_at < @extschema@._day_lo(d + 1));
            IF @extschema@._create_partition(d) THEN
                RETURN QUERY SELECT * FROM @extschema@._day_created(d);
            ELSIF @extschema@._relayout_day(d) THEN
                -- Still empty, laid out before the last policy change.
                action := 'rebuilt'; object := '@extschema@.' || @extschema@._partition_name(d);
                detail := 'empty day laid out for the current retention policies'; RETURN NEXT;
            END IF;
        EXCEPTION WHEN OTHERS THEN
            RETURN QUERY SELECT * FROM @extschema@._failed('@extschema@.' || @extschema@._partition_name(d),
                                                           SQLSTATE, SQLERRM);
        END;
    END LOOP;
END
$$;

/*
 * _purge_expired(as_of): step 4, drop what has expired as of as_of, by
 * whole leaves, or whole days when every leaf of the day goes ("purged");
 * a leaf that also holds categories of policies not expired yet is split
 * (_split_leaf(): "moved", "purged").  An expired leaf under a legal hold
 * is "held", one whose windows are not sealed yet "deferred".  Each day is
 * on its own: a failure undoes that day.
 */
CREATE OR REPLACE FUNCTION @extschema@._purge_expired(as_of timestamptz)
RETURNS TABLE(action text, object text, detail text)
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
SET audit_log.internal = on
AS $$
DECLARE
    events_busy boolean := false;
    r record;
    l record;
    n bigint;
    drop_list oid[];
    split_list oid[];
    whole boolean;
BEGIN
    -- Holds and policies as they are now, until this run ends: hold(),
    -- release() and set_retention() wait for it (a hold committed while a
    -- day's lock was awaited would otherwise not be seen).
    BEGIN
        EXECUTE pg_catalog.format('LOCK TABLE %I.legal_hold, %I.retention_policy IN SHARE MODE',
                                  '@extschema@', '@extschema@');
    EXCEPTION WHEN lock_not_available OR deadlock_detected THEN
        RETURN QUERY SELECT * FROM @extschema@._failed('@extschema@.legal_hold', SQLSTATE, SQLERRM);
        RETURN;
    END;
    -- A new table, never one found in pg_temp (see _split_leaf()): when
    -- it cannot be made, nothing is purged this run.
    BEGIN
        IF pg_catalog.to_regclass('pg_temp.audit_log_leaves') IS NOT NULL THEN
            DROP TABLE pg_temp.audit_log_leaves;
        END IF;
        CREATE TEMP TABLE audit_log_leaves ON COMMIT DROP AS
            SELECT s.*, s.expires <= as_of AS expired, s.last_expires <= as_of AS all_expired
              FROM @extschema@._leaf_state() s;
    EXCEPTION WHEN OTHERS THEN
        action := 'error'; object := '@extschema@.partitions'; detail := SQLSTATE || ': ' || SQLERRM; RETURN NEXT;
        RETURN;
    END;
    FOR r IN SELECT s.day_oid, s.day_name, count(*) AS leaves
               FROM pg_temp.audit_log_leaves s
              GROUP BY s.day_oid, s.day_name
             HAVING bool_or(s.expired)
              ORDER BY s.day_name
    LOOP
        -- Report held and unsealed leaves; keep only the droppable ones.
        drop_list := '{}';
        split_list := '{}';
        FOR l IN SELECT s.* FROM pg_temp.audit_log_leaves s
                  WHERE s.day_oid = r.day_oid AND s.expired ORDER BY s.leaf_name
        LOOP
            IF cardinality(l.holds) > 0 THEN
                action := 'held'; object := '@extschema@.' || l.leaf_name;
                detail := 'expired but kept by legal hold ' || array_to_string(l.holds, ', '); RETURN NEXT;
            ELSIF NOT l.sealed AND @extschema@._rows(l.leaf) > 0 THEN
                action := 'deferred'; object := '@extschema@.' || l.leaf_name;
                detail := 'expired but its windows are not sealed yet'; RETURN NEXT;
            ELSIF l.all_expired THEN
                drop_list := drop_list || l.leaf;
            ELSE
                split_list := split_list || l.leaf;
            END IF;
        END LOOP;
        CONTINUE WHEN cardinality(drop_list) = 0 AND cardinality(split_list) = 0;
        whole := cardinality(drop_list) = r.leaves;
        IF events_busy AND whole THEN
            -- Writers hold audit_log.events: do not queue behind them again.
            action := 'retry'; object := '@extschema@.' || r.day_name;
            detail := 'audit_log.events is busy: retried at the next run'; RETURN NEXT;
            CONTINUE;
        END IF;
        BEGIN
            IF whole THEN
                events_busy := true;
                EXECUTE pg_catalog.format('LOCK TABLE %I.events IN ACCESS EXCLUSIVE MODE', '@extschema@');
            END IF;
            events_busy := false;
            -- The day and all its leaves (LOCK recurses): a split also
            -- checks the day's DEFAULT leaf when it attaches new leaves.
            EXECUTE pg_catalog.format('LOCK TABLE %s IN ACCESS EXCLUSIVE MODE', r.day_oid::regclass);
            -- Every lock first: once a row is reported, nothing waits any more.
            FOR l IN SELECT s.leaf FROM pg_temp.audit_log_leaves s
                      WHERE s.leaf = ANY (drop_list) AND s.leaf <> r.day_oid ORDER BY s.leaf_name
            LOOP
                EXECUTE pg_catalog.format('LOCK TABLE %s IN ACCESS EXCLUSIVE MODE', l.leaf::regclass);
            END LOOP;
            FOR l IN SELECT s.* FROM pg_temp.audit_log_leaves s
                      WHERE s.leaf = ANY (drop_list) ORDER BY s.leaf_name
            LOOP
                -- Everything in it has expired: the longest policy decides.
                n := @extschema@._rows(l.leaf);
                PERFORM @extschema@._log_purge(l.leaf_name, l.lo, l.hi, l.categories, l.last_policy,
                                               l.last_keep, n);
                IF NOT whole THEN
                    EXECUTE pg_catalog.format('DROP TABLE %s', l.leaf::regclass);
                END IF;
                DELETE FROM @extschema@.leaf_categories k WHERE k.leaf = l.leaf_name;
                action := 'purged'; object := '@extschema@.' || l.leaf_name;
                detail := n || ' rows, [' || @extschema@._ts(l.lo) || ', ' || @extschema@._ts(l.hi)
                          || '), policy ' || l.last_policy || ' (' || l.last_keep::text || ')';
                RETURN NEXT;
            END LOOP;
            IF whole THEN
                EXECUTE pg_catalog.format('DROP TABLE %s', r.day_oid::regclass);
            END IF;
            FOR l IN SELECT s.* FROM pg_temp.audit_log_leaves s
                      WHERE s.leaf = ANY (split_list) ORDER BY s.leaf_name
            LOOP
                RETURN QUERY SELECT * FROM @extschema@._split_leaf(l.leaf, l.leaf_name, l.day_oid,
                                                                  l.lo, l.hi, l.categories, as_of);
            END LOOP;
        EXCEPTION WHEN OTHERS THEN
            -- That day is undone; the other days go on.
            RETURN QUERY SELECT * FROM @extschema@._failed('@extschema@.' || r.day_name, SQLSTATE, SQLERRM);
        END;
    END LOOP;
END
$$;

/*
 * _log_purge(leaf_name, lo, hi, cats, pol, keep, n, extra): what retention
 * removed from a leaf: a purge_log row (verify() reports its windows as
 * purged) and an audit.purged event, whose details are the rows, range,
 * policy, keep and categories, and extra.
 */
CREATE OR REPLACE FUNCTION @extschema@._log_purge(leaf_name text, lo timestamptz, hi timestamptz, cats text[],
    pol text, keep interval, n bigint, extra jsonb DEFAULT '{}')
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    -- A leaf without rows took no event away: a purge-log row would make
    -- verify() read its windows as partly purged, and miss an event
    -- deleted from them.
    IF n > 0 THEN
        INSERT INTO @extschema@.purge_log (partition, from_time, to_time, categories, policy, rows, purged_at)
        VALUES ('@extschema@.' || leaf_name, lo, hi, cats, pol, n, clock_timestamp());
    END IF;
    PERFORM @extschema@._record('audit', 'audit.purged', 'success', 'table',
        '@extschema@.' || leaf_name, 'DROP TABLE',
        jsonb_build_object('rows', n, 'from_time', @extschema@._ts(lo), 'to_time', @extschema@._ts(hi),
                           'policy', pol, 'keep', keep::text, 'categories', to_jsonb(cats)) || extra);
END
$$;

/*
 * search(filters): the events matching every filter given (AND; any value
 * within one filter), in event_id order, at most max_rows of them after
 * after_event_id.  A page (after_event_id or max_rows given) stops below
 * the paging horizon, so that continuing after its last event_id never
 * skips an event that commits later.  The horizon is this database's: a
 * source's events (a central database) are not held back by it.
 */
CREATE OR REPLACE FUNCTION @extschema@.search(usernames text[] DEFAULT NULL, event_types text[] DEFAULT NULL,
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

/*
 * _search_where(filters): the WHERE clause of search() and export() over
 * alias "e" of audit_log.events or audit_log.event_log, with every value
 * inlined as a quoted constant, so that the planner prunes partitions and
 * matches the indexes at plan time.  Raises the errors of bad filters.
 * Granted to nobody.
 */
CREATE OR REPLACE FUNCTION @extschema@._search_where(usernames text[], event_types text[], categories text[],
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


-- ==== codes: every code of the audit category is reserved for the extension (log(), enable(), ingest()) ====
/*
 * _is_reserved_code(code): may only the extension record events with this
 * code?  The rule is the C side's (context.c: a built-in code, or any code of
 * the audit category); log(), enable() and ingest() all apply it.
 */
CREATE FUNCTION @extschema@._code_reserved(code text, builtin boolean) RETURNS boolean
AS 'MODULE_PATHNAME', 'audit_code_reserved_sql'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION @extschema@._is_reserved_code(code text) RETURNS boolean
LANGUAGE sql STABLE STRICT
AS $$
SELECT @extschema@._code_reserved(code,
           coalesce((SELECT c.builtin FROM @extschema@.event_type_catalog c
                      WHERE c.event_type = code), false))
$$;
REVOKE ALL ON FUNCTION @extschema@._code_reserved(text, boolean),
    @extschema@._is_reserved_code(text) FROM PUBLIC;

CREATE OR REPLACE FUNCTION @extschema@.enable(target regclass, category text DEFAULT 'data',
    event_types jsonb DEFAULT NULL, exclude_columns text[] DEFAULT NULL,
    mask_columns text[] DEFAULT NULL, when_changed text[] DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET audit_log.internal = on
AS $$
DECLARE
    rel record;
    ops constant text[] := ARRAY['INSERT', 'UPDATE', 'DELETE', 'TRUNCATE'];
    codes text[] := ARRAY['data.insert', 'data.update', 'data.delete', 'data.truncate'];
    ex text[];
    mk text[];
    wc text[];
    k text;
    v jsonb;
    i int;
    other record;
    was_enabled boolean;
    qname text;
BEGIN
    IF target IS NULL THEN
        RAISE EXCEPTION 'table to audit must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    SELECT c.relkind, c.relispartition, n.nspname, c.relname,
           EXISTS (SELECT 1 FROM pg_depend d JOIN pg_extension e ON e.oid = d.refobjid
                   WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid
                     AND d.refclassid = 'pg_extension'::regclass AND e.extname = 'audit_log') AS ours
      INTO rel
      FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE c.oid = target;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'relation with OID % does not exist', target::oid USING ERRCODE = 'undefined_table';
    END IF;
    qname := format('%I.%I', rel.nspname, rel.relname);
    IF rel.ours OR rel.nspname = '@extschema@' THEN
        RAISE EXCEPTION 'cannot audit "%": it belongs to audit_log', qname
            USING ERRCODE = 'wrong_object_type',
                  DETAIL = 'The audit tables are protected by the extension itself.';
    END IF;
    IF rel.relkind NOT IN ('r', 'p') THEN
        RAISE EXCEPTION '"%" is not a table', qname
            USING ERRCODE = 'wrong_object_type',
                  DETAIL = format('It is a %s.', CASE rel.relkind WHEN 'v' THEN 'view'
                      WHEN 'm' THEN 'materialized view' WHEN 'f' THEN 'foreign table'
                      WHEN 'S' THEN 'sequence' WHEN 'i' THEN 'index' WHEN 'I' THEN 'index'
                      WHEN 'c' THEN 'composite type' ELSE 'relation that is not a table' END),
                  HINT = 'Only ordinary and partitioned tables can be audited.';
    END IF;
    IF rel.relispartition THEN
        RAISE EXCEPTION '"%" is a partition', qname
            USING ERRCODE = 'wrong_object_type',
                  HINT = format('Enable auditing on its partitioned table %s.',
                                (SELECT inhparent::regclass::text FROM pg_inherits WHERE inhrelid = target));
    END IF;
    IF category IS NULL OR NOT category = ANY (@extschema@._categories()) THEN
        RAISE EXCEPTION 'unknown event category "%"', coalesce(category, 'NULL')
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Use one of ' || array_to_string(@extschema@._categories(), ', ') || '.';
    END IF;

    IF event_types IS NOT NULL THEN
        IF jsonb_typeof(event_types) <> 'object' THEN
            RAISE EXCEPTION 'event_types must be a JSON object mapping operations to event codes'
                USING ERRCODE = 'invalid_parameter_value',
                      HINT = 'For example {"INSERT": "user.role_added", "DELETE": "user.role_removed"}.';
        END IF;
        FOR k, v IN SELECT * FROM jsonb_each(event_types) LOOP
            i := array_position(ops, upper(k));
            IF i IS NULL THEN
                RAISE EXCEPTION 'unknown operation "%" in event_types', k
                    USING ERRCODE = 'invalid_parameter_value',
                          HINT = 'Keys are INSERT, UPDATE, DELETE and TRUNCATE.';
            END IF;
            IF jsonb_typeof(v) <> 'string'
               OR NOT @extschema@._is_event_code(v #>> '{}')
               OR length(v #>> '{}') > 100 THEN
                RAISE EXCEPTION 'invalid event code % for %', v::text, upper(k)
                    USING ERRCODE = 'invalid_parameter_value',
                          HINT = 'Event codes are lowercase dotted identifiers such as "user.role_added".';
            END IF;
            codes[i] := v #>> '{}';
        END LOOP;
    END IF;
    FOR i IN 1..4 LOOP
        SELECT t.category, t.builtin INTO other
          FROM @extschema@.event_type_catalog t WHERE t.event_type = codes[i];
        IF @extschema@._is_reserved_code(codes[i]) AND codes[i] NOT LIKE 'data.%' THEN
            RAISE EXCEPTION 'event type "%" is reserved for audit_log''s own capture', codes[i]
                USING ERRCODE = 'invalid_parameter_value',
                      HINT = 'Choose a code of your own, such as "user.role_added".';
        ELSIF FOUND AND NOT other.builtin AND other.category <> enable.category THEN
            RAISE EXCEPTION 'event type "%" already belongs to category "%"', codes[i], other.category
                USING ERRCODE = 'invalid_parameter_value',
                      HINT = 'Use the same category as the other tables with this code, or another code.';
        END IF;
    END LOOP;

    ex := @extschema@._check_columns(target, exclude_columns, 'exclude_columns');
    mk := @extschema@._check_columns(target, mask_columns, 'mask_columns');
    wc := @extschema@._check_columns(target, when_changed, 'when_changed');

    -- Everything is valid: apply.
    INSERT INTO @extschema@.event_type_catalog AS t (event_type, category, description)
    SELECT DISTINCT c, enable.category, format('%s on %s', ops[o], qname)
      FROM unnest(codes) WITH ORDINALITY AS u(c, o)
     WHERE c NOT LIKE 'data.%'
    ON CONFLICT (event_type) DO NOTHING;

    -- The whole tree, before it is read: a partition being attached or
    -- detached (SHARE UPDATE EXCLUSIVE on its parent) is waited for.
    EXECUTE format('LOCK TABLE %s IN SHARE ROW EXCLUSIVE MODE', target);
    was_enabled := EXISTS (SELECT 1 FROM @extschema@.table_config WHERE relid = target);
    INSERT INTO @extschema@.table_config AS t
           (relid, category, event_types, exclude_columns, mask_columns, when_changed, enabled_at, enabled_by)
    VALUES (target, category,
            jsonb_build_object('INSERT', codes[1], 'UPDATE', codes[2], 'DELETE', codes[3], 'TRUNCATE', codes[4]),
            ex, mk, wc, now(), session_user)
    ON CONFLICT (relid) DO UPDATE
       SET category = excluded.category, event_types = excluded.event_types,
           exclude_columns = excluded.exclude_columns, mask_columns = excluded.mask_columns,
           when_changed = excluded.when_changed, enabled_at = excluded.enabled_at,
           enabled_by = excluded.enabled_by;
    -- The table and every partition of its tree, at any depth (statement
    -- triggers fire only for the table a statement names).
    PERFORM @extschema@._sync_capture(target);

    PERFORM @extschema@._record('audit', 'audit.enabled', 'success', 'table', qname, 'SELECT',
        jsonb_build_object('category', category,
            'event_types', jsonb_build_object('INSERT', codes[1], 'UPDATE', codes[2],
                                              'DELETE', codes[3], 'TRUNCATE', codes[4]),
            'exclude_columns', to_jsonb(ex), 'mask_columns', to_jsonb(mk),
            'when_changed', to_jsonb(wc), 'updated', was_enabled));
END
$$;

CREATE OR REPLACE FUNCTION @extschema@.ingest(source text, events jsonb) RETURNS bigint
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

-- ==== sources: a subscription writes only the inserts of events and seal records (triggers ENABLE ALWAYS on every audit table) ====
/*
 * _replica_guard(): the trigger, ENABLE ALWAYS on every audit table, that
 * refuses in a subscription's workers every write but the inserts of events
 * and seal records (C, src/sources.c: a source's subscription writes as a
 * superuser, past the tamper guard).  _replica_fence(rel, rows) puts it on a
 * table: for TRUNCATE always; with rows (a table that is no partition of the
 * events), for the row writes a subscription never makes there (events and
 * seal: UPDATE and DELETE; the others: INSERT too).  The partitions of the
 * events inherit that row trigger; part 80 fences every table the install
 * made, _lock_down() every partition made later (built detached).
 */
CREATE FUNCTION @extschema@._replica_guard() RETURNS trigger
AS 'MODULE_PATHNAME', 'audit_replica_guard'
LANGUAGE C;
CREATE FUNCTION @extschema@._replica_fence(rel regclass, rows boolean) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_trigger t
                    WHERE t.tgrelid = rel AND t.tgname = 'audit_log_replica_truncate') THEN
        EXECUTE pg_catalog.format('CREATE TRIGGER audit_log_replica_truncate BEFORE TRUNCATE ON %s'
                                  ' FOR EACH STATEMENT EXECUTE FUNCTION %I._replica_guard()', rel, '@extschema@');
        EXECUTE pg_catalog.format('ALTER TABLE %s ENABLE ALWAYS TRIGGER audit_log_replica_truncate', rel);
    END IF;
    IF rows AND NOT EXISTS (SELECT FROM pg_catalog.pg_trigger t
                                 WHERE t.tgrelid = rel AND t.tgname = 'audit_log_replica_write') THEN
        EXECUTE pg_catalog.format('CREATE TRIGGER audit_log_replica_write BEFORE %s ON %s'
                                  ' FOR EACH ROW EXECUTE FUNCTION %I._replica_guard()',
            CASE WHEN rel::text IN ('@extschema@.events', '@extschema@.seal')
                 THEN 'UPDATE OR DELETE' ELSE 'INSERT OR UPDATE OR DELETE' END,
            rel, '@extschema@');
        EXECUTE pg_catalog.format('ALTER TABLE %s ENABLE ALWAYS TRIGGER audit_log_replica_write', rel);
    END IF;
END
$$;
REVOKE ALL ON FUNCTION @extschema@._replica_guard(), @extschema@._replica_fence(regclass, boolean) FROM PUBLIC;

CREATE OR REPLACE FUNCTION @extschema@._lock_down(rel text) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    EXECUTE pg_catalog.format('REVOKE ALL ON TABLE %I.%I FROM PUBLIC', '@extschema@', rel);
    EXECUTE pg_catalog.format(
        'REVOKE INSERT, UPDATE, DELETE, TRUNCATE, TRIGGER, REFERENCES ON TABLE %I.%I FROM CURRENT_USER',
        '@extschema@', rel);
    PERFORM @extschema@._replica_fence(pg_catalog.format('%I.%I', '@extschema@', rel)::regclass, false);
END
$$;

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

-- ==== integrity: SHA-256 is PostgreSQL's own (pgcrypto's schema named by its text could be replaced) ====
CREATE OR REPLACE FUNCTION @extschema@._sha256(bytea) RETURNS bytea
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
AS $f$ SELECT pg_catalog.sha256($1) $f$;
-- ==== schema changes of audited tables: inheritance refused unless parent and child are both audited; column options follow a renamed or dropped column; a dropped table's options forgotten ====
CREATE OR REPLACE FUNCTION @extschema@._partition_changed(child regclass, parent regclass, attached boolean, command text)
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET audit_log.internal = on
AS $$
DECLARE
    audited regclass;
    own boolean;
    names record;
BEGIN
    IF child IS NULL OR parent IS NULL
       OR NOT EXISTS (SELECT 1 FROM pg_class WHERE oid OPERATOR(pg_catalog.=) child) THEN
        RETURN;
    END IF;
    IF parent::oid OPERATOR(pg_catalog.=) 0::oid THEN
        -- child was renamed or moved: if audited, its partitions' capture
        -- names it anew
        IF EXISTS (SELECT 1 FROM @extschema@.table_config c WHERE c.relid OPERATOR(pg_catalog.=) child) THEN
            PERFORM @extschema@._sync_capture(child);
        END IF;
        RETURN;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_class WHERE oid OPERATOR(pg_catalog.=) parent) THEN
        RETURN;
    END IF;
    IF attached AND NOT (SELECT c.relispartition FROM pg_class c WHERE c.oid OPERATOR(pg_catalog.=) child) THEN
        -- an inheritance child (CREATE TABLE ... INHERITS, ALTER TABLE ...
        -- INHERIT): statement triggers fire only for the table a statement
        -- names, so parent and child are both audited or neither is
        own := EXISTS (SELECT 1 FROM @extschema@.table_config c WHERE c.relid OPERATOR(pg_catalog.=) child);
        IF own AND NOT EXISTS (SELECT 1 FROM @extschema@.table_config c WHERE c.relid OPERATOR(pg_catalog.=) parent) THEN
            RAISE EXCEPTION 'cannot make audited table "%" an inheritance child of "%", which is not audited',
                            child::text, parent::text
                USING ERRCODE = 'object_not_in_prerequisite_state',
                      DETAIL = format('Rows written through %s would not be recorded.', parent::text),
                      HINT = format('Enable auditing on %s first, or disable auditing on %s.',
                                    parent::text, child::text);
        ELSIF NOT own AND EXISTS (SELECT 1 FROM @extschema@.table_config c WHERE c.relid OPERATOR(pg_catalog.=) parent) THEN
            RAISE EXCEPTION 'cannot make "%" an inheritance child of audited table "%": it is not audited',
                            child::text, parent::text
                USING ERRCODE = 'object_not_in_prerequisite_state',
                      DETAIL = format('Rows written to %s would be seen through %s without being recorded.',
                                      child::text, parent::text),
                      HINT = CASE WHEN command LIKE 'CREATE%'
                             THEN 'Create the table without INHERITS, enable auditing on it, then ALTER TABLE ... INHERIT.'
                             ELSE format('Enable auditing on %s first.', child::text) END;
        END IF;
        RETURN;
    END IF;
    audited := @extschema@._audited_ancestor(parent);
    SELECT format('%I.%I', cn.nspname, c.relname) AS child_name,
           format('%I.%I', pn.nspname, p.relname) AS parent_name,
           (SELECT format('%I.%I', an.nspname, a.relname)
              FROM pg_class a JOIN pg_namespace an ON an.oid OPERATOR(pg_catalog.=) a.relnamespace
             WHERE a.oid OPERATOR(pg_catalog.=) audited) AS audited_name
      INTO names
      FROM pg_class c JOIN pg_namespace cn ON cn.oid OPERATOR(pg_catalog.=) c.relnamespace,
           pg_class p JOIN pg_namespace pn ON pn.oid OPERATOR(pg_catalog.=) p.relnamespace
     WHERE c.oid OPERATOR(pg_catalog.=) child AND p.oid OPERATOR(pg_catalog.=) parent;
    IF audited IS NULL THEN
        IF attached AND EXISTS (SELECT 1 FROM pg_partition_tree(child) t
                                  JOIN @extschema@.table_config c ON c.relid OPERATOR(pg_catalog.=) t.relid) THEN
            RAISE EXCEPTION 'cannot attach audited table "%" as a partition of "%", which is not audited',
                            names.child_name, names.parent_name
                USING ERRCODE = 'object_not_in_prerequisite_state',
                      DETAIL = format('Rows written through %s would not be recorded.', names.parent_name),
                      HINT = format('Enable auditing on %s first, or disable auditing on %s.',
                                    pg_partition_root(parent)::text, child::text);
        END IF;
        RETURN;
    END IF;
    own := EXISTS (SELECT 1 FROM @extschema@.table_config c WHERE c.relid OPERATOR(pg_catalog.=) child);
    PERFORM @extschema@._sync_capture(child);
    IF attached THEN
        PERFORM @extschema@._record('audit', 'audit.partition_attached', 'success', 'table',
            names.audited_name, command,
            jsonb_build_object('partition', names.child_name, 'parent', names.parent_name,
                               'enabled_itself', own));
    ELSE
        PERFORM @extschema@._record('audit', 'audit.partition_detached', 'success', 'table',
            names.audited_name, command,
            jsonb_build_object('partition', names.child_name, 'parent', names.parent_name,
                               'audited', own));
    END IF;
END
$$;

CREATE OR REPLACE FUNCTION @extschema@._enabled_details(audited regclass, updated boolean)
RETURNS jsonb
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT pg_catalog.jsonb_build_object('category', c.category, 'event_types', c.event_types,
               'exclude_columns', pg_catalog.to_jsonb(c.exclude_columns),
               'mask_columns', pg_catalog.to_jsonb(c.mask_columns),
               'when_changed', pg_catalog.to_jsonb(c.when_changed), 'updated', updated)
      FROM @extschema@.table_config c
     WHERE c.relid OPERATOR(pg_catalog.=) audited
$$;

CREATE OR REPLACE FUNCTION @extschema@._column_changed(rel regclass, old_name text, new_name text, command text)
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET audit_log.internal = on
AS $$
DECLARE
    t record;
    changed regclass[] := '{}';
    becomes text;
BEGIN
    IF rel IS NULL OR old_name IS NULL THEN
        RETURN;
    END IF;
    new_name := NULLIF(new_name, '');
    FOR t IN
        WITH RECURSIVE tree(relid) AS (
            SELECT rel::oid
            UNION
            SELECT i.inhrelid FROM pg_inherits i JOIN tree ON i.inhparent OPERATOR(pg_catalog.=) tree.relid)
        SELECT c.relid, format('%I.%I', n.nspname, r.relname) AS qname
          FROM @extschema@.table_config c
          JOIN tree ON tree.relid OPERATOR(pg_catalog.=) c.relid::oid
          JOIN pg_class r ON r.oid OPERATOR(pg_catalog.=) c.relid::oid
          JOIN pg_namespace n ON n.oid OPERATOR(pg_catalog.=) r.relnamespace
         WHERE old_name OPERATOR(pg_catalog.=) ANY (c.exclude_columns || c.mask_columns || c.when_changed)
           AND NOT EXISTS (SELECT 1 FROM pg_attribute a
                            WHERE a.attrelid OPERATOR(pg_catalog.=) c.relid::oid
                              AND a.attname OPERATOR(pg_catalog.=) old_name
                              AND a.attnum OPERATOR(pg_catalog.>) 0 AND NOT a.attisdropped)
         ORDER BY 2
    LOOP
        becomes := CASE WHEN EXISTS (SELECT 1 FROM pg_attribute a
                                      WHERE a.attrelid OPERATOR(pg_catalog.=) t.relid::oid
                                        AND a.attname OPERATOR(pg_catalog.=) new_name
                                        AND a.attnum OPERATOR(pg_catalog.>) 0 AND NOT a.attisdropped)
                        THEN new_name END;
        UPDATE @extschema@.table_config c
           SET exclude_columns = ARRAY(SELECT DISTINCT coalesce(NULLIF(x, old_name), becomes)
                                         FROM unnest(c.exclude_columns) x
                                        WHERE coalesce(NULLIF(x, old_name), becomes) IS NOT NULL ORDER BY 1),
               mask_columns = ARRAY(SELECT DISTINCT coalesce(NULLIF(x, old_name), becomes)
                                      FROM unnest(c.mask_columns) x
                                     WHERE coalesce(NULLIF(x, old_name), becomes) IS NOT NULL ORDER BY 1),
               when_changed = ARRAY(SELECT DISTINCT coalesce(NULLIF(x, old_name), becomes)
                                      FROM unnest(c.when_changed) x
                                     WHERE coalesce(NULLIF(x, old_name), becomes) IS NOT NULL ORDER BY 1)
         WHERE c.relid OPERATOR(pg_catalog.=) t.relid;
        changed := changed || t.relid;
        PERFORM @extschema@._record('audit', 'audit.enabled', 'success', 'table', t.qname, command,
            @extschema@._enabled_details(t.relid, true) ||
            CASE WHEN becomes IS NULL THEN jsonb_build_object('column_dropped', old_name)
                 ELSE jsonb_build_object('column_renamed', jsonb_build_object('from', old_name, 'to', becomes)) END);
    END LOOP;
    -- the capture of each, and of the partitions that take its options
    FOR t IN SELECT u AS relid FROM unnest(changed) u LOOP
        PERFORM @extschema@._sync_capture(t.relid);
    END LOOP;
END
$$;

CREATE OR REPLACE FUNCTION @extschema@._tables_dropped()
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET audit_log.internal = on
AS $$
BEGIN
    DELETE FROM @extschema@.table_config c
     WHERE c.relid::oid IN (SELECT d.objid FROM pg_event_trigger_dropped_objects() d
                             WHERE d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::regclass::oid)
       AND NOT EXISTS (SELECT 1 FROM pg_class r WHERE r.oid OPERATOR(pg_catalog.=) c.relid::oid);
END
$$;

CREATE OR REPLACE FUNCTION @extschema@.enable(target regclass, category text DEFAULT 'data',
    event_types jsonb DEFAULT NULL, exclude_columns text[] DEFAULT NULL,
    mask_columns text[] DEFAULT NULL, when_changed text[] DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET audit_log.internal = on
AS $$
DECLARE
    rel record;
    ops constant text[] := ARRAY['INSERT', 'UPDATE', 'DELETE', 'TRUNCATE'];
    codes text[] := ARRAY['data.insert', 'data.update', 'data.delete', 'data.truncate'];
    ex text[];
    mk text[];
    wc text[];
    k text;
    v jsonb;
    i int;
    other record;
    was_enabled boolean;
    qname text;
BEGIN
    IF target IS NULL THEN
        RAISE EXCEPTION 'table to audit must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    SELECT c.relkind, c.relispartition, n.nspname, c.relname,
           EXISTS (SELECT 1 FROM pg_depend d JOIN pg_extension e ON e.oid = d.refobjid
                   WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid
                     AND d.refclassid = 'pg_extension'::regclass AND e.extname = 'audit_log') AS ours
      INTO rel
      FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE c.oid = target;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'relation with OID % does not exist', target::oid USING ERRCODE = 'undefined_table';
    END IF;
    qname := format('%I.%I', rel.nspname, rel.relname);
    IF rel.ours OR rel.nspname = '@extschema@' THEN
        RAISE EXCEPTION 'cannot audit "%": it belongs to audit_log', qname
            USING ERRCODE = 'wrong_object_type',
                  DETAIL = 'The audit tables are protected by the extension itself.';
    END IF;
    IF rel.relkind NOT IN ('r', 'p') THEN
        RAISE EXCEPTION '"%" is not a table', qname
            USING ERRCODE = 'wrong_object_type',
                  DETAIL = format('It is a %s.', CASE rel.relkind WHEN 'v' THEN 'view'
                      WHEN 'm' THEN 'materialized view' WHEN 'f' THEN 'foreign table'
                      WHEN 'S' THEN 'sequence' WHEN 'i' THEN 'index' WHEN 'I' THEN 'index'
                      WHEN 'c' THEN 'composite type' ELSE 'relation that is not a table' END),
                  HINT = 'Only ordinary and partitioned tables can be audited.';
    END IF;
    IF rel.relispartition THEN
        RAISE EXCEPTION '"%" is a partition', qname
            USING ERRCODE = 'wrong_object_type',
                  HINT = format('Enable auditing on its partitioned table %s.',
                                (SELECT inhparent::regclass::text FROM pg_inherits WHERE inhrelid = target));
    END IF;
    IF category IS NULL OR NOT category = ANY (@extschema@._categories()) THEN
        RAISE EXCEPTION 'unknown event category "%"', coalesce(category, 'NULL')
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Use one of ' || array_to_string(@extschema@._categories(), ', ') || '.';
    END IF;

    IF event_types IS NOT NULL THEN
        IF jsonb_typeof(event_types) <> 'object' THEN
            RAISE EXCEPTION 'event_types must be a JSON object mapping operations to event codes'
                USING ERRCODE = 'invalid_parameter_value',
                      HINT = 'For example {"INSERT": "user.role_added", "DELETE": "user.role_removed"}.';
        END IF;
        FOR k, v IN SELECT * FROM jsonb_each(event_types) LOOP
            i := array_position(ops, upper(k));
            IF i IS NULL THEN
                RAISE EXCEPTION 'unknown operation "%" in event_types', k
                    USING ERRCODE = 'invalid_parameter_value',
                          HINT = 'Keys are INSERT, UPDATE, DELETE and TRUNCATE.';
            END IF;
            IF jsonb_typeof(v) <> 'string'
               OR NOT @extschema@._is_event_code(v #>> '{}')
               OR length(v #>> '{}') > 100 THEN
                RAISE EXCEPTION 'invalid event code % for %', v::text, upper(k)
                    USING ERRCODE = 'invalid_parameter_value',
                          HINT = 'Event codes are lowercase dotted identifiers such as "user.role_added".';
            END IF;
            codes[i] := v #>> '{}';
        END LOOP;
    END IF;
    FOR i IN 1..4 LOOP
        SELECT t.category, t.builtin INTO other
          FROM @extschema@.event_type_catalog t WHERE t.event_type = codes[i];
        IF @extschema@._is_reserved_code(codes[i]) AND codes[i] NOT LIKE 'data.%' THEN
            RAISE EXCEPTION 'event type "%" is reserved for audit_log''s own capture', codes[i]
                USING ERRCODE = 'invalid_parameter_value',
                      HINT = 'Choose a code of your own, such as "user.role_added".';
        ELSIF FOUND AND NOT other.builtin AND other.category <> enable.category THEN
            RAISE EXCEPTION 'event type "%" already belongs to category "%"', codes[i], other.category
                USING ERRCODE = 'invalid_parameter_value',
                      HINT = 'Use the same category as the other tables with this code, or another code.';
        END IF;
    END LOOP;

    ex := @extschema@._check_columns(target, exclude_columns, 'exclude_columns');
    mk := @extschema@._check_columns(target, mask_columns, 'mask_columns');
    wc := @extschema@._check_columns(target, when_changed, 'when_changed');

    -- Everything is valid: apply.
    INSERT INTO @extschema@.event_type_catalog AS t (event_type, category, description)
    SELECT DISTINCT c, enable.category, format('%s on %s', ops[o], qname)
      FROM unnest(codes) WITH ORDINALITY AS u(c, o)
     WHERE c NOT LIKE 'data.%'
    ON CONFLICT (event_type) DO NOTHING;

    -- The whole tree, before it is read: a partition being attached or
    -- detached (SHARE UPDATE EXCLUSIVE on its parent) is waited for.
    EXECUTE format('LOCK TABLE %s IN SHARE ROW EXCLUSIVE MODE', target);
    was_enabled := EXISTS (SELECT 1 FROM @extschema@.table_config WHERE relid = target);
    INSERT INTO @extschema@.table_config AS t
           (relid, category, event_types, exclude_columns, mask_columns, when_changed, enabled_at, enabled_by)
    VALUES (target, category,
            jsonb_build_object('INSERT', codes[1], 'UPDATE', codes[2], 'DELETE', codes[3], 'TRUNCATE', codes[4]),
            ex, mk, wc, now(), session_user)
    ON CONFLICT (relid) DO UPDATE
       SET category = excluded.category, event_types = excluded.event_types,
           exclude_columns = excluded.exclude_columns, mask_columns = excluded.mask_columns,
           when_changed = excluded.when_changed, enabled_at = excluded.enabled_at,
           enabled_by = excluded.enabled_by;
    -- The table and every partition of its tree, at any depth (statement
    -- triggers fire only for the table a statement names).
    PERFORM @extschema@._sync_capture(target);

    PERFORM @extschema@._record('audit', 'audit.enabled', 'success', 'table', qname, 'SELECT',
        @extschema@._enabled_details(target, was_enabled));
END
$$;
REVOKE ALL ON FUNCTION @extschema@._enabled_details(regclass, boolean) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@._column_changed(regclass, text, text, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@._tables_dropped() FROM PUBLIC;
-- the options of tables dropped before the update
DELETE FROM @extschema@.table_config c
 WHERE NOT EXISTS (SELECT 1 FROM pg_catalog.pg_class r WHERE r.oid OPERATOR(pg_catalog.=) c.relid::oid);

-- ==== session authorization: SET/RESET SESSION AUTHORIZATION recorded ====
INSERT INTO @extschema@.event_type_catalog (event_type, category, description, builtin) VALUES
    ('auth.session_authorization_set', 'auth', 'Session user changed with SET or RESET SESSION AUTHORIZATION', true)
ON CONFLICT (event_type) DO UPDATE
    SET category = excluded.category, description = excluded.description, builtin = true;

-- ==== sources: publish() accepts only the publication it makes; subscribe() needs the preload ====
CREATE OR REPLACE FUNCTION @extschema@.publish() RETURNS text
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

CREATE OR REPLACE FUNCTION @extschema@.subscribe(source text, conninfo text, copy_history boolean DEFAULT true)
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


-- ==== views: login_activity takes user name and method from the extension's own logins only; db_user and source ====
-- The user name and method of a login the extension captured come from its
-- details; an application's auth.* event (log(), a feed) names its actor
-- and says its method as "method": its details cannot make it read as a
-- login of another role.  db_user and source tell who wrote it, and where.
CREATE OR REPLACE VIEW @extschema@.login_activity AS
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
COMMENT ON COLUMN @extschema@.login_activity.db_user IS 'The real database login (session_user); never taken from the context.';
COMMENT ON COLUMN @extschema@.login_activity.source IS 'NULL for an event captured in this database; in a central audit database, the source it came from (see audit_log.sources).';

-- ==== inheritance: enable() and disable() keep an audited parent with audited children ====
/*
 * _check_inheritance(target, audited): an inheritance link (not a
 * partition's) between an audited parent and a child that is not audited is
 * refused: statement triggers fire only for the table a statement names, so
 * rows written to the child directly, seen through the audited parent,
 * would go unrecorded.  enable() (audited true) wants the target's children
 * audited first; disable() (audited false) wants its parents disabled
 * first.  _partition_changed() applies the same rule to INHERITS and
 * INHERIT.
 */
CREATE FUNCTION @extschema@._check_inheritance(target regclass, audited boolean) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    other text;
BEGIN
    SELECT x.rel::regclass::text INTO other
      FROM (SELECT i.inhrelid AS rel FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
             WHERE audited AND i.inhparent = target AND NOT c.relispartition
            UNION ALL
            SELECT i.inhparent FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
             WHERE NOT audited AND i.inhrelid = target AND NOT c.relispartition) x
     WHERE EXISTS (SELECT 1 FROM @extschema@.table_config t WHERE t.relid = x.rel) IS DISTINCT FROM audited
     ORDER BY 1 LIMIT 1;
    IF other IS NOT NULL THEN
        RAISE EXCEPTION '"%" and "%" are linked by inheritance: an audited parent needs audited children', target, other
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  DETAIL = 'Rows written to the child directly, seen through the parent, would go unrecorded.',
                  HINT = CASE WHEN audited THEN format('Enable auditing on %s first, or ALTER TABLE ... NO INHERIT.', other)
                              ELSE format('Disable auditing on %s first, or ALTER TABLE ... NO INHERIT.', other) END;
    END IF;
END
$$;
REVOKE ALL ON FUNCTION @extschema@._check_inheritance(regclass, boolean) FROM PUBLIC;

CREATE OR REPLACE FUNCTION @extschema@.enable(target regclass, category text DEFAULT 'data',
    event_types jsonb DEFAULT NULL, exclude_columns text[] DEFAULT NULL,
    mask_columns text[] DEFAULT NULL, when_changed text[] DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET audit_log.internal = on
AS $$
DECLARE
    rel record;
    ops constant text[] := ARRAY['INSERT', 'UPDATE', 'DELETE', 'TRUNCATE'];
    codes text[] := ARRAY['data.insert', 'data.update', 'data.delete', 'data.truncate'];
    ex text[];
    mk text[];
    wc text[];
    k text;
    v jsonb;
    i int;
    other record;
    was_enabled boolean;
    qname text;
BEGIN
    IF target IS NULL THEN
        RAISE EXCEPTION 'table to audit must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    SELECT c.relkind, c.relispartition, n.nspname, c.relname,
           EXISTS (SELECT 1 FROM pg_depend d JOIN pg_extension e ON e.oid = d.refobjid
                   WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid
                     AND d.refclassid = 'pg_extension'::regclass AND e.extname = 'audit_log') AS ours
      INTO rel
      FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE c.oid = target;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'relation with OID % does not exist', target::oid USING ERRCODE = 'undefined_table';
    END IF;
    qname := format('%I.%I', rel.nspname, rel.relname);
    IF rel.ours OR rel.nspname = '@extschema@' THEN
        RAISE EXCEPTION 'cannot audit "%": it belongs to audit_log', qname
            USING ERRCODE = 'wrong_object_type',
                  DETAIL = 'The audit tables are protected by the extension itself.';
    END IF;
    IF rel.relkind NOT IN ('r', 'p') THEN
        RAISE EXCEPTION '"%" is not a table', qname
            USING ERRCODE = 'wrong_object_type',
                  DETAIL = format('It is a %s.', CASE rel.relkind WHEN 'v' THEN 'view'
                      WHEN 'm' THEN 'materialized view' WHEN 'f' THEN 'foreign table'
                      WHEN 'S' THEN 'sequence' WHEN 'i' THEN 'index' WHEN 'I' THEN 'index'
                      WHEN 'c' THEN 'composite type' ELSE 'relation that is not a table' END),
                  HINT = 'Only ordinary and partitioned tables can be audited.';
    END IF;
    IF rel.relispartition THEN
        RAISE EXCEPTION '"%" is a partition', qname
            USING ERRCODE = 'wrong_object_type',
                  HINT = format('Enable auditing on its partitioned table %s.',
                                (SELECT inhparent::regclass::text FROM pg_inherits WHERE inhrelid = target));
    END IF;
    IF category IS NULL OR NOT category = ANY (@extschema@._categories()) THEN
        RAISE EXCEPTION 'unknown event category "%"', coalesce(category, 'NULL')
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Use one of ' || array_to_string(@extschema@._categories(), ', ') || '.';
    END IF;

    IF event_types IS NOT NULL THEN
        IF jsonb_typeof(event_types) <> 'object' THEN
            RAISE EXCEPTION 'event_types must be a JSON object mapping operations to event codes'
                USING ERRCODE = 'invalid_parameter_value',
                      HINT = 'For example {"INSERT": "user.role_added", "DELETE": "user.role_removed"}.';
        END IF;
        FOR k, v IN SELECT * FROM jsonb_each(event_types) LOOP
            i := array_position(ops, upper(k));
            IF i IS NULL THEN
                RAISE EXCEPTION 'unknown operation "%" in event_types', k
                    USING ERRCODE = 'invalid_parameter_value',
                          HINT = 'Keys are INSERT, UPDATE, DELETE and TRUNCATE.';
            END IF;
            IF jsonb_typeof(v) <> 'string'
               OR NOT @extschema@._is_event_code(v #>> '{}')
               OR length(v #>> '{}') > 100 THEN
                RAISE EXCEPTION 'invalid event code % for %', v::text, upper(k)
                    USING ERRCODE = 'invalid_parameter_value',
                          HINT = 'Event codes are lowercase dotted identifiers such as "user.role_added".';
            END IF;
            codes[i] := v #>> '{}';
        END LOOP;
    END IF;
    FOR i IN 1..4 LOOP
        SELECT t.category, t.builtin INTO other
          FROM @extschema@.event_type_catalog t WHERE t.event_type = codes[i];
        IF @extschema@._is_reserved_code(codes[i]) AND codes[i] NOT LIKE 'data.%' THEN
            RAISE EXCEPTION 'event type "%" is reserved for audit_log''s own capture', codes[i]
                USING ERRCODE = 'invalid_parameter_value',
                      HINT = 'Choose a code of your own, such as "user.role_added".';
        ELSIF FOUND AND NOT other.builtin AND other.category <> enable.category THEN
            RAISE EXCEPTION 'event type "%" already belongs to category "%"', codes[i], other.category
                USING ERRCODE = 'invalid_parameter_value',
                      HINT = 'Use the same category as the other tables with this code, or another code.';
        END IF;
    END LOOP;

    ex := @extschema@._check_columns(target, exclude_columns, 'exclude_columns');
    mk := @extschema@._check_columns(target, mask_columns, 'mask_columns');
    wc := @extschema@._check_columns(target, when_changed, 'when_changed');
    PERFORM @extschema@._check_inheritance(target, true);

    -- Everything is valid: apply.
    INSERT INTO @extschema@.event_type_catalog AS t (event_type, category, description)
    SELECT DISTINCT c, enable.category, format('%s on %s', ops[o], qname)
      FROM unnest(codes) WITH ORDINALITY AS u(c, o)
     WHERE c NOT LIKE 'data.%'
    ON CONFLICT (event_type) DO NOTHING;

    -- The whole tree, before it is read: a partition being attached or
    -- detached (SHARE UPDATE EXCLUSIVE on its parent) is waited for.
    EXECUTE format('LOCK TABLE %s IN SHARE ROW EXCLUSIVE MODE', target);
    was_enabled := EXISTS (SELECT 1 FROM @extschema@.table_config WHERE relid = target);
    INSERT INTO @extschema@.table_config AS t
           (relid, category, event_types, exclude_columns, mask_columns, when_changed, enabled_at, enabled_by)
    VALUES (target, category,
            jsonb_build_object('INSERT', codes[1], 'UPDATE', codes[2], 'DELETE', codes[3], 'TRUNCATE', codes[4]),
            ex, mk, wc, now(), session_user)
    ON CONFLICT (relid) DO UPDATE
       SET category = excluded.category, event_types = excluded.event_types,
           exclude_columns = excluded.exclude_columns, mask_columns = excluded.mask_columns,
           when_changed = excluded.when_changed, enabled_at = excluded.enabled_at,
           enabled_by = excluded.enabled_by;
    -- The table and every partition of its tree, at any depth (statement
    -- triggers fire only for the table a statement names).
    PERFORM @extschema@._sync_capture(target);

    PERFORM @extschema@._record('audit', 'audit.enabled', 'success', 'table', qname, 'SELECT',
        @extschema@._enabled_details(target, was_enabled));
END
$$;

CREATE OR REPLACE FUNCTION @extschema@.disable(target regclass)
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET audit_log.internal = on
AS $$
DECLARE
    qname text;
BEGIN
    IF target IS NULL THEN
        RAISE EXCEPTION 'table must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    SELECT format('%I.%I', n.nspname, c.relname) INTO qname
      FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = target;
    IF NOT EXISTS (SELECT 1 FROM @extschema@.table_config WHERE relid = target) THEN
        RAISE EXCEPTION 'table "%" is not audited', coalesce(qname, target::text)
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'audit_log.audited_tables lists the audited tables.';
    END IF;
    PERFORM @extschema@._check_inheritance(target, false);
    IF qname IS NOT NULL THEN
        -- the whole tree, before it is read (see enable())
        EXECUTE format('LOCK TABLE %s IN SHARE ROW EXCLUSIVE MODE', target);
    END IF;
    DELETE FROM @extschema@.table_config WHERE relid = target;
    -- The tree loses this table's capture; a partition enabled itself gets
    -- its own back, one below an audited ancestor keeps the ancestor's.
    PERFORM @extschema@._sync_capture(target);
    PERFORM @extschema@._record('audit', 'audit.disabled', 'success', 'table', qname, 'SELECT', NULL);
END
$$;


-- ==== final (keep last): every SQL and PL/pgSQL function pins search_path ====
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
