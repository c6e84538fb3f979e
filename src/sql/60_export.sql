/*
 * audit_log install script, part 60: export.  audit_log.export() (C, in
 * src/export.c) returns the events matching the search filters as text
 * cells ready for COPY ... CSV, capped at audit_log.export_max_rows;
 * audit_log.export_csv() writes them to a server file.
 */

-- One text column per event column, in table order: derived from the table.
DO $type$
BEGIN
    EXECUTE (SELECT pg_catalog.format('CREATE TYPE %I.export_row AS (%s)', '@extschema@',
                        pg_catalog.string_agg(pg_catalog.format('%I text', a.attname), ', '
                                              ORDER BY a.attnum))
               FROM pg_catalog.pg_attribute a
              WHERE a.attrelid = '@extschema@.events'::pg_catalog.regclass
                AND a.attnum > 0 AND NOT a.attisdropped);
END
$type$;
COMMENT ON TYPE @extschema@.export_row IS
    'A row of an export: every event column as text (UTC ISO 8601 timestamps, compact JSON, formula-like cells prefixed with a single quote).';

DO $comments$
DECLARE
    a record;
BEGIN
    FOR a IN SELECT attname FROM pg_catalog.pg_attribute
              WHERE attrelid = '@extschema@.export_row'::regclass AND attnum > 0 LOOP
        EXECUTE pg_catalog.format('COMMENT ON COLUMN %I.export_row.%I IS %L', '@extschema@', a.attname,
            pg_catalog.format('The event''s %s as text (see audit_log.event_log.%s).', a.attname, a.attname));
    END LOOP;
END
$comments$;

/*
 * export(filters): the search filters of search(), the events as text
 * cells, at most audit_log.export_max_rows of them (WARNING and HINT when
 * more match); records audit.exported.  SECURITY DEFINER: it reads
 * audit_log.events and writes the audit.exported event for the caller.
 */
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

/*
 * export_csv(path, filters): COPY the export to a server file (CSV with a
 * header) and return the rows written.  SECURITY INVOKER: COPY checks that
 * the caller may write server files (pg_write_server_files).
 */
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
