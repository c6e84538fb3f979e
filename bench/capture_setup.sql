-- Setup of bench/capture.sh: the extension, the PL/pgSQL comparison
-- trigger, and helpers that make a fresh benchmark table per method.
CREATE EXTENSION audit_log CASCADE;
CREATE SEQUENCE bench_ids START 100000000;

-- The common PL/pgSQL pattern, for comparison.
CREATE TABLE plpgsql_audit (
    id         bigserial PRIMARY KEY,
    table_name text NOT NULL,
    op         text NOT NULL,
    old_row    jsonb,
    new_row    jsonb,
    changed_by text NOT NULL DEFAULT current_user,
    changed_at timestamptz NOT NULL DEFAULT now()
);
CREATE FUNCTION plpgsql_audit_trigger() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO plpgsql_audit (table_name, op, new_row) VALUES (TG_TABLE_NAME, TG_OP, to_jsonb(NEW));
    ELSIF TG_OP = 'UPDATE' THEN
        INSERT INTO plpgsql_audit (table_name, op, old_row, new_row) VALUES (TG_TABLE_NAME, TG_OP, to_jsonb(OLD), to_jsonb(NEW));
    ELSE
        INSERT INTO plpgsql_audit (table_name, op, old_row) VALUES (TG_TABLE_NAME, TG_OP, to_jsonb(OLD));
    END IF;
    RETURN NULL;
END
$$;

-- The floor: what every in-transaction trail pays at least.  Rules (no
-- trigger, nothing computed) add one constant 420-byte row per changed row
-- to an unindexed table; bench_make_table() attaches them.
CREATE TABLE floor_log (payload text NOT NULL);
ALTER TABLE floor_log ALTER payload SET STORAGE PLAIN;   -- never compressed
CREATE FUNCTION bench_floor_rules(tbl text) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    payload text := quote_literal(repeat('x', 420));
    op text;
BEGIN
    -- a reference to the row makes the action one row per changed row
    FOREACH op IN ARRAY ARRAY['INSERT', 'UPDATE', 'DELETE'] LOOP
        EXECUTE format('CREATE RULE floor_%s AS ON %s TO %I DO ALSO '
                       'INSERT INTO floor_log (payload) SELECT %s WHERE %s.id IS NOT NULL',
                       lower(op), op, tbl, payload,
                       CASE op WHEN 'DELETE' THEN 'OLD' ELSE 'NEW' END);
    END LOOP;
END
$$;

-- bench_fill(table, n): n rows of eight mixed-type columns.
CREATE FUNCTION bench_fill(tbl text, n int) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE format($q$
        INSERT INTO %I (id, name, email, amount, created_at, attrs, active, qty)
        SELECT g, 'customer ' || g, 'user' || g || '@example.com', (g %% 10000) / 100.0 + 0.5,
               timestamptz '2024-01-01 00:00:00+00' + g * interval '1 minute',
               jsonb_build_object('tier', g %% 5, 'tags', jsonb_build_array('a', 'b'), 'score', g %% 97),
               g %% 3 <> 0, g %% 1000
          FROM generate_series(1, $1) g$q$, tbl) USING n;
END
$$;

-- bench_make_table(name, rows, method): a fresh table with its rows, then
-- the method attached (none, floor, audit_log, plpgsql; anything else:
-- none).
CREATE FUNCTION bench_make_table(tbl text, n int, method text) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE format('DROP TABLE IF EXISTS %I', tbl);
    EXECUTE format($q$CREATE TABLE %I (
        id bigint PRIMARY KEY,
        name text NOT NULL,
        email text,
        amount numeric(12,2),
        created_at timestamptz,
        attrs jsonb,
        active boolean,
        qty integer)$q$, tbl);
    PERFORM bench_fill(tbl, n);
    IF method = 'audit_log' THEN
        PERFORM audit_log.enable(tbl::regclass);
    ELSIF method = 'floor' THEN
        PERFORM bench_floor_rules(tbl);
    ELSIF method = 'plpgsql' THEN
        EXECUTE format('CREATE TRIGGER plpgsql_audit AFTER INSERT OR UPDATE OR DELETE ON %I '
                       'FOR EACH ROW EXECUTE FUNCTION plpgsql_audit_trigger()', tbl);
    END IF;
END
$$;

-- Audit storage of a method: bytes (heap, TOAST, indexes) and rows.
CREATE FUNCTION bench_audit_bytes(method text) RETURNS bigint LANGUAGE sql AS $$
SELECT CASE method
    WHEN 'audit_log' THEN (SELECT coalesce(sum(pg_total_relation_size(t.relid)), 0)::bigint
                             FROM pg_partition_tree('audit_log.events') t WHERE t.isleaf)
    WHEN 'plpgsql' THEN pg_total_relation_size('plpgsql_audit')
    WHEN 'floor' THEN pg_total_relation_size('floor_log')
    ELSE 0 END
$$;
CREATE FUNCTION bench_audit_rows(method text) RETURNS bigint LANGUAGE sql AS $$
SELECT CASE method
    WHEN 'audit_log' THEN (SELECT count(*) FROM audit_log.events)
    WHEN 'plpgsql' THEN (SELECT count(*) FROM plpgsql_audit)
    WHEN 'floor' THEN (SELECT count(*) FROM floor_log)
    ELSE 0 END
$$;
