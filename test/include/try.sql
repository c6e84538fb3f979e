-- pg_temp.try(sql): run a statement; 'ok', or its SQLSTATE and message,
-- and its hint unless the session has SET regress.try_hint = off.
-- Included by the regression files that show errors as rows.
CREATE FUNCTION pg_temp.try(stmt text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    st text; msg text; hint text;
BEGIN
    EXECUTE stmt;
    RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, msg = MESSAGE_TEXT, hint = PG_EXCEPTION_HINT;
    IF current_setting('regress.try_hint', true) = 'off' THEN
        hint := '';
    END IF;
    RETURN st || ': ' || msg || CASE WHEN hint <> '' THEN ' [HINT: ' || hint || ']' ELSE '' END;
END
$$;
