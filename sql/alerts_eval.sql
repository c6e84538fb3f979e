-- Alerts: check_alerts() evaluates all the rules from one read of the new
-- events.  Rules that share their filters but not details_contain, a rule
-- without group_by (a NULL group) above threshold 1, a text_query rule (it
-- looks at the details), a rule with no match: each fires as if alone, with
-- the right window (first and last events, count).  Events at fixed times.
\i test/include/setup_fresh.sql
\set SHOW_CONTEXT never

SELECT audit_log.create_alert('all_x', threshold => 3, within => '1 minute', event_types => '{app.x}');
SELECT audit_log.create_alert('y_k1', threshold => 2, within => '1 minute', group_by => 'object_name',
                              event_types => '{app.y}', details_contain => '{"k": 1}');
SELECT audit_log.create_alert('y_k2', threshold => 2, within => '1 minute', group_by => 'object_name',
                              event_types => '{app.y}', details_contain => '{"k": 2}');
SELECT audit_log.create_alert('y_any', group_by => 'object_name', event_types => '{app.y}');
SELECT audit_log.create_alert('needle', group_by => 'object_name', text_query => 'needle');
SELECT audit_log.create_alert('never', event_types => '{app.never}', threshold => 2);
SELECT audit_log.check_alerts() AS nothing_yet;

-- Pass 1: two app.x (no alert yet), y events of k 1 and 2 on two objects.
SELECT count(audit_log._record_at(t::timestamptz, 'app', et, o, d::jsonb)) AS w
  FROM (VALUES ('2020-01-01 00:00:00+00', 'app.x', 'p', '{}'),
               ('2020-01-01 00:00:10+00', 'app.x', 'q', '{}'),
               ('2020-01-01 00:00:01+00', 'app.y', 'a', '{"k": 1}'),
               ('2020-01-01 00:00:02+00', 'app.y', 'a', '{"k": 2}'),
               ('2020-01-01 00:00:03+00', 'app.y', 'a', '{"k": 1}'),
               ('2020-01-01 00:00:04+00', 'app.y', 'b', '{"k": 2}'),
               ('2020-01-01 00:00:05+00', 'app.z', 'c', '{"note": "a needle here"}'),
               ('2020-01-01 00:00:06+00', 'app.z', 'c', '{"note": "hay"}')) v(t, et, o, d);
SELECT audit_log.check_alerts() AS fired;
-- Pass 2: the third app.x within the minute (NULL group), the second k 2 of
-- b, a late k 2 of a (earlier event time, window still open).
SELECT count(audit_log._record_at(t::timestamptz, 'app', et, o, d::jsonb)) AS w
  FROM (VALUES ('2020-01-01 00:00:20+00', 'app.x', 'r', '{}'),
               ('2020-01-01 00:00:30+00', 'app.y', 'b', '{"k": 2}'),
               ('2020-01-01 00:00:40+00', 'app.y', 'a', '{"k": 2}'),
               ('2020-01-01 00:00:45+00', 'app.z', 'd', '{"note": "needle"}')) v(t, et, o, d);
SELECT audit_log.check_alerts() AS fired;
-- Pass 3: app.x again inside the quiet window (no alert), then three more
-- after it (one alert, its window starting at its first event).
SELECT count(audit_log._record_at(t::timestamptz, 'app', et, o, d::jsonb)) AS w
  FROM (VALUES ('2020-01-01 00:01:00+00', 'app.x', 'p', '{}'),
               ('2020-01-01 00:05:00+00', 'app.x', 'p', '{}'),
               ('2020-01-01 00:05:30+00', 'app.x', 'p', '{}'),
               ('2020-01-01 00:05:50+00', 'app.x', 'p', '{}')) v(t, et, o, d);
SELECT audit_log.check_alerts() AS fired;
SELECT audit_log.check_alerts() AS nothing_new;

SELECT a.rule, a.group_value, a.events, f.occurred_at AS first_at, l.occurred_at AS last_at
  FROM audit_log.alerts a
  JOIN audit_log.events f ON f.event_id = a.first_event_id
  JOIN audit_log.events l ON l.event_id = a.last_event_id
 WHERE l.occurred_at < '2021-01-01'    -- not the rule change of needle (it names needle)
 ORDER BY a.rule, a.group_value, l.occurred_at;
SELECT rule, group_value, count(*) AS pending FROM audit_log.alert_pending GROUP BY 1, 2 ORDER BY 1, 2;

-- One event dated in the future (a source's clock, or its superuser) must
-- not clear what other groups have pending: two matches of "victim",
-- then one of "other" in 2100, then the third of "victim" fires.
SELECT audit_log.create_alert('fut3', threshold => 3, within => '10 minutes', group_by => 'object_name',
                              event_types => '{app.fut}');
SELECT count(audit_log._record_at(now() - interval '2 minutes', 'app', 'app.fut', 'victim', '{}'))
     + count(audit_log._record_at(now() - interval '1 minute', 'app', 'app.fut', 'victim', '{}')) AS two;
SELECT audit_log.check_alerts() >= 0 AS pass;
SELECT count(audit_log._record_at('2100-01-01 00:00:00+00', 'app', 'app.fut', 'other', '{}')) AS future;
SELECT audit_log.check_alerts() >= 0 AS pass;
SELECT count(audit_log._record_at(now(), 'app', 'app.fut', 'victim', '{}')) AS third;
SELECT audit_log.check_alerts() >= 0 AS pass;
SELECT rule, group_value, events FROM audit_log.alerts WHERE rule = 'fut3' ORDER BY alert_id;
