/*
 * audit_log install script, part 10: capture of application tables
 * (enable, disable, audited_tables), the context, application events and
 * the status of capture.
 */

-- The options of every audited table (a configuration table: pg_dump keeps it).
CREATE TABLE @extschema@.table_config (
    relid           regclass PRIMARY KEY,
    category        text NOT NULL,
    event_types     jsonb NOT NULL,
    exclude_columns text[] NOT NULL DEFAULT '{}',
    mask_columns    text[] NOT NULL DEFAULT '{}',
    when_changed    text[] NOT NULL DEFAULT '{}',
    enabled_at      timestamptz NOT NULL DEFAULT pg_catalog.now(),
    enabled_by      text NOT NULL DEFAULT session_user
);
COMMENT ON TABLE @extschema@.table_config IS
    'Options of each audited table; change them with audit_log.enable(), read them through audit_log.audited_tables.';
REVOKE ALL ON TABLE @extschema@.table_config FROM PUBLIC;
SELECT pg_catalog.pg_extension_config_dump('@extschema@.table_config', '');

/*
 * capture(): the C trigger.  Attach it with enable(), never by hand.
 */
CREATE FUNCTION @extschema@.capture() RETURNS trigger
AS 'MODULE_PATHNAME', 'audit_capture'
LANGUAGE C;
REVOKE ALL ON FUNCTION @extschema@.capture() FROM PUBLIC;

/*
 * _check_columns(table, list, option): every name must be a column.
 */
CREATE FUNCTION @extschema@._check_columns(target regclass, cols text[], option text)
RETURNS text[]
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    c text;
BEGIN
    IF cols IS NULL THEN
        RETURN '{}'::text[];
    END IF;
    FOREACH c IN ARRAY cols LOOP
        IF c IS NULL OR NOT EXISTS (SELECT 1 FROM pg_attribute
                                    WHERE attrelid = target AND attname = c
                                      AND attnum > 0 AND NOT attisdropped) THEN
            RAISE EXCEPTION 'column "%" of relation "%" does not exist', c, target::text
                USING ERRCODE = 'undefined_column',
                      HINT = format('Every name in %s must be a column of %s.', option, target::text);
        END IF;
    END LOOP;
    RETURN ARRAY(SELECT DISTINCT x FROM unnest(cols) AS x ORDER BY 1);
END
$$;
REVOKE ALL ON FUNCTION @extschema@._check_columns(regclass, text[], text) FROM PUBLIC;

/*
 * _attach(table, args): create or replace the four capture triggers of one
 * table, ENABLE ALWAYS.
 */
CREATE FUNCTION @extschema@._attach(tbl regclass, args text)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    t text := tbl::text;
BEGIN
    EXECUTE format('CREATE OR REPLACE TRIGGER audit_log_insert AFTER INSERT ON %s '
                   'REFERENCING NEW TABLE AS audit_log_new FOR EACH STATEMENT '
                   'EXECUTE FUNCTION @extschema@.capture(%s)', t, args);
    EXECUTE format('CREATE OR REPLACE TRIGGER audit_log_update AFTER UPDATE ON %s '
                   'REFERENCING OLD TABLE AS audit_log_old NEW TABLE AS audit_log_new FOR EACH STATEMENT '
                   'EXECUTE FUNCTION @extschema@.capture(%s)', t, args);
    EXECUTE format('CREATE OR REPLACE TRIGGER audit_log_delete AFTER DELETE ON %s '
                   'REFERENCING OLD TABLE AS audit_log_old FOR EACH STATEMENT '
                   'EXECUTE FUNCTION @extschema@.capture(%s)', t, args);
    EXECUTE format('CREATE OR REPLACE TRIGGER audit_log_truncate AFTER TRUNCATE ON %s '
                   'FOR EACH STATEMENT EXECUTE FUNCTION @extschema@.capture(%s)', t, args);
    EXECUTE format('ALTER TABLE %s ENABLE ALWAYS TRIGGER audit_log_insert, '
                   'ENABLE ALWAYS TRIGGER audit_log_update, ENABLE ALWAYS TRIGGER audit_log_delete, '
                   'ENABLE ALWAYS TRIGGER audit_log_truncate', t);
END
$$;
REVOKE ALL ON FUNCTION @extschema@._attach(regclass, text) FROM PUBLIC;

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
 * child an inheritance child (not a partition) newly of parent: refused
 * unless both or neither are audited (an unaudited child's rows would be
 * seen through its audited parent unrecorded; an audited child's rows
 * written through an unaudited parent would not be recorded).
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
REVOKE ALL ON FUNCTION @extschema@._partition_changed(regclass, regclass, boolean, text) FROM PUBLIC;

/*
 * _enabled_details(audited, updated): the details of audit.enabled: the
 * table's options as stored, and whether they replaced earlier ones.
 */
CREATE FUNCTION @extschema@._enabled_details(audited regclass, updated boolean)
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
REVOKE ALL ON FUNCTION @extschema@._enabled_details(regclass, boolean) FROM PUBLIC;

/*
 * _column_changed(rel, old_name, new_name, command): ALTER TABLE renamed
 * (new_name) or dropped (new_name '') the column old_name of rel.  The
 * column options of rel and of every table below it (partitions,
 * inheritance children: the rename or drop recursed there) that named
 * that column follow it: renamed, or removed with the column (options are
 * stored by name, and a new column given the old name is another column).
 * Each table whose options changed gets its capture anew and an
 * audit.enabled event (updated, with column_renamed or column_dropped).
 * Called by the ddl_command_end event trigger as _partition_changed() is.
 */
CREATE FUNCTION @extschema@._column_changed(rel regclass, old_name text, new_name text, command text)
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
REVOKE ALL ON FUNCTION @extschema@._column_changed(regclass, text, text, text) FROM PUBLIC;

/*
 * _tables_dropped(): forget the options of the audited tables the command
 * dropped (a table given the same OID later is not audited).  Called by
 * the sql_drop event trigger (C), with or without the preload, as
 * _partition_changed() is.
 */
CREATE FUNCTION @extschema@._tables_dropped()
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
REVOKE ALL ON FUNCTION @extschema@._tables_dropped() FROM PUBLIC;

INSERT INTO @extschema@.event_type_catalog (event_type, category, description, builtin) VALUES
    ('audit.partition_attached', 'audit', 'Partition created in or attached to an audited table: captured with its options', true),
    ('audit.partition_detached', 'audit', 'Partition detached from an audited table: no longer captured with its options', true);

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

/*
 * enable(target, category, event_types, exclude_columns, mask_columns,
 * when_changed): attach (or update) the C capture of a table.
 */
CREATE FUNCTION @extschema@.enable(target regclass, category text DEFAULT 'data',
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

/*
 * disable(target): remove the capture of a table.
 */
CREATE FUNCTION @extschema@.disable(target regclass)
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

REVOKE ALL ON FUNCTION @extschema@.enable(regclass, text, jsonb, text[], text[], text[]) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.disable(regclass) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION @extschema@.enable(regclass, text, jsonb, text[], text[], text[]) TO audit_log_admin;
GRANT EXECUTE ON FUNCTION @extschema@.disable(regclass) TO audit_log_admin;

CREATE VIEW @extschema@.audited_tables AS
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
COMMENT ON VIEW @extschema@.audited_tables IS 'Tables whose changes audit_log captures, with their options.';
COMMENT ON COLUMN @extschema@.audited_tables.table_name IS 'The audited table (schema-qualified when not on the search_path).';
COMMENT ON COLUMN @extschema@.audited_tables.category IS 'Category of every event of the table.';
COMMENT ON COLUMN @extschema@.audited_tables.options IS 'All options as one JSON object.';
COMMENT ON COLUMN @extschema@.audited_tables.event_types IS 'Event code recorded for each operation.';
COMMENT ON COLUMN @extschema@.audited_tables.exclude_columns IS 'Columns left out of old_data and new_data.';
COMMENT ON COLUMN @extschema@.audited_tables.mask_columns IS 'Columns whose key is kept but whose value is never recorded.';
COMMENT ON COLUMN @extschema@.audited_tables.when_changed IS 'When not empty, an UPDATE is recorded only if it changes one of these columns.';
COMMENT ON COLUMN @extschema@.audited_tables.enabled_at IS 'When auditing was enabled or its options last changed.';
COMMENT ON COLUMN @extschema@.audited_tables.enabled_by IS 'Session user who enabled auditing or last changed its options.';
COMMENT ON COLUMN @extschema@.audited_tables.partition_of IS 'When the table is now a partition of an audited table: that table, whose name and options its events carry until it is detached; NULL otherwise.';
REVOKE ALL ON @extschema@.audited_tables FROM PUBLIC;
GRANT SELECT ON @extschema@.audited_tables TO audit_log_reader, audit_log_admin;

/*
 * set_context(...): the application's claims about who is behind the
 * connection, for the rest of the transaction.
 */
CREATE FUNCTION @extschema@.set_context(actor text, actor_type text DEFAULT NULL,
    client_addr inet DEFAULT NULL, user_agent text DEFAULT NULL,
    tenant text DEFAULT NULL, request_id text DEFAULT NULL)
RETURNS void
AS 'MODULE_PATHNAME', 'audit_set_context'
LANGUAGE C VOLATILE;

/*
 * log(...): record an application event; returns its event_id.
 */
CREATE FUNCTION @extschema@.log(event_type text, status text DEFAULT 'success',
    object_type text DEFAULT NULL, object_name text DEFAULT NULL,
    resource_id text DEFAULT NULL, details jsonb DEFAULT NULL)
RETURNS bigint
AS 'MODULE_PATHNAME', 'audit_log_event'
LANGUAGE C VOLATILE;

REVOKE ALL ON FUNCTION @extschema@.set_context(text, text, inet, text, text, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.log(text, text, text, text, text, jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION @extschema@.set_context(text, text, inet, text, text, text) TO audit_log_writer;
GRANT EXECUTE ON FUNCTION @extschema@.log(text, text, text, text, text, jsonb) TO audit_log_writer;

/*
 * status: which capture is active in this server.
 */
CREATE FUNCTION @extschema@._status(OUT preloaded boolean, OUT table_capture boolean,
    OUT utility_capture boolean, OUT login_capture text, OUT worker_pid integer,
    OUT queue_depth bigint, OUT queue_capacity bigint, OUT events_written bigint,
    OUT events_logged bigint, OUT writers jsonb)
AS 'MODULE_PATHNAME', 'audit_status'
LANGUAGE C VOLATILE;
REVOKE ALL ON FUNCTION @extschema@._status() FROM PUBLIC;
-- A view runs its functions with the privileges of the caller: the readers
-- of audit_log.status need EXECUTE on _status().
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

DO $warn$
BEGIN
    IF NOT (SELECT preloaded FROM @extschema@._status()) THEN
        RAISE WARNING 'audit_log is not in shared_preload_libraries: role, login, configuration and failed-command capture and the background worker are off'
            USING HINT = 'Add audit_log to shared_preload_libraries and restart; table auditing, search and export work without it.';
    END IF;
END
$warn$;
