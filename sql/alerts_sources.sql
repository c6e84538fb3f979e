-- Alerts on a central database: the events of sources carry their source's
-- event_ids, unrelated to this database's sequence.  The attack on 1.1's
-- first read (one hwm over all events): a source whose ids are far above
-- the local ones made the next pass try to list every id in between as a
-- hole (error "invalid memory alloc request size", at every pass: alerts
-- stopped for good), and a source whose ids are below the local hwm was
-- never read (its alerts were lost).  Here each source is read from its own
-- position and the local events from theirs; a source event that arrives
-- late (below its source's hwm) is read from its hole.  Events at fixed
-- times, ids given by the sources.
\i test/include/setup_fresh.sql
\set SHOW_CONTEXT never

SELECT audit_log.create_alert('probe', group_by => 'source', event_types => '{app.probe}');
SELECT audit_log.create_alert('probe3', threshold => 3, within => '1 minute', group_by => 'source',
                              event_types => '{app.probe}');
SELECT audit_log.check_alerts() AS nothing_yet;

CREATE FUNCTION pg_temp.feed(src text, ids bigint[], at text) RETURNS bigint
LANGUAGE sql AS $$
    SELECT audit_log.ingest(src, jsonb_agg(jsonb_build_object(
               'event_id', i, 'occurred_at', at, 'category', 'app',
               'event_type', 'app.probe', 'status', 'failure')))
      FROM unnest(ids) AS i
$$;

-- Pass 1: a source far above the local ids, one far below, a local event.
SELECT pg_temp.feed('high', '{9000000001,9000000002,9000000003}', '2020-01-01 00:00:00+00');
SELECT pg_temp.feed('low', '{1,2}', '2020-01-01 00:00:00+00');
SELECT count(audit_log._record_at('2020-01-01 00:00:00+00', 'app', 'app.probe', 'o', '{}')) AS local;
SELECT audit_log.check_alerts() AS fired;
SELECT rule, group_value, events, first_event_id, last_event_id
  FROM audit_log.alerts WHERE group_value <> 'local' ORDER BY rule, group_value;
SELECT rule, group_value, events FROM audit_log.alerts WHERE group_value = 'local' ORDER BY rule;
-- The local position stays below the sources' ids, with no holes.
SELECT hwm < 9000000000 AS local_hwm_local, holes = '{}' AS no_local_holes FROM audit_log.alert_state;
SELECT source, hwm, holes FROM audit_log.alert_source_state ORDER BY source;

-- Pass 2: "low" sends its third event (it fires probe3 of low), "high"
-- sends 7 and 8 before 5 and 6 (their transactions commit late at the
-- source): 4..6 become holes of "high".
SELECT pg_temp.feed('low', '{3}', '2020-01-01 00:00:10+00');
SELECT pg_temp.feed('high', '{9000000007,9000000008}', '2020-01-01 00:10:00+00');
SELECT audit_log.check_alerts() AS fired;
SELECT source, hwm, holes FROM audit_log.alert_source_state ORDER BY source;

-- Pass 3: 5 arrives, in its hole: it is read (probe fires again for high:
-- ten minutes after its last firing); 4 and 6 stay holes.
SELECT pg_temp.feed('high', '{9000000005}', '2020-01-01 00:20:00+00');
SELECT audit_log.check_alerts() AS fired;
SELECT source, hwm, holes FROM audit_log.alert_source_state ORDER BY source;
SELECT rule, group_value, events, first_event_id, last_event_id
  FROM audit_log.alerts WHERE group_value <> 'local' ORDER BY alert_id;

-- Pass 4: nothing new is nothing read: no alert, positions unchanged, and
-- the state rows are not rewritten (a central's passes leave no dead rows).
CREATE TEMP TABLE state_before AS
    SELECT source, xmin::text AS row_version FROM audit_log.alert_source_state;
SELECT audit_log.check_alerts() AS fired;
SELECT source, hwm, holes FROM audit_log.alert_source_state ORDER BY source;
SELECT s.source, s.xmin::text = b.row_version AS row_not_rewritten
  FROM audit_log.alert_source_state s JOIN state_before b USING (source) ORDER BY s.source;

-- A hole is kept for an hour of passes, then forgotten: age the marks.
UPDATE audit_log.alert_source_state SET mark_at = ARRAY(SELECT t - interval '2 hours' FROM unnest(mark_at) t);
SELECT audit_log.check_alerts() AS fired;
SELECT source, hwm, holes, settled, mark_at = '{}' AS marks_pruned FROM audit_log.alert_source_state ORDER BY source;

-- The state is the extension's: no reader sees or writes it.
SET ROLE audit_log_reader;
SELECT count(*) FROM audit_log.alert_source_state;
RESET ROLE;

-- The files after this one expect no source events: a new extension.
\i test/include/setup_fresh.sql
