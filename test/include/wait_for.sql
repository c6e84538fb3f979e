-- pg_temp.wait_for(code, since, n): wait (up to 30 s) until n events of
-- type code with event_id > since are stored; events written by the worker
-- arrive after their transaction.  Included by the regression files.
CREATE FUNCTION pg_temp.wait_for(code text, since bigint, n int DEFAULT 1) RETURNS boolean
LANGUAGE plpgsql AS $$
BEGIN
    FOR i IN 1..300 LOOP
        IF (SELECT count(*) FROM audit_log.events WHERE event_type = code AND event_id > since) >= n THEN
            RETURN true;
        END IF;
        PERFORM pg_sleep(0.1);
    END LOOP;
    RETURN false;
END $$;
