-- Alerts: rule management, errors, check_alerts() firing once per window
-- (events written at fixed past times with _record_at), acknowledgement,
-- rights.  The worker does not evaluate here (audit_log.alert_interval is
-- an hour in test/audit_log.conf): every pass is a check_alerts() call.
\i test/include/setup_fresh.sql
\set SHOW_CONTEXT never

-- The built-in rules.
SELECT name, threshold, within, group_by, severity, event_types, categories, statuses, details_contain, builtin
  FROM audit_log.alert_rules ORDER BY name;
SELECT audit_log.check_alerts() AS nothing_yet;

-- Bad input: an error with an SQLSTATE and a hint, nothing changed.
CREATE FUNCTION pg_temp.try(q text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE st text; msg text; hint text;
BEGIN
    EXECUTE 'SELECT ' || q;
    RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, msg = MESSAGE_TEXT, hint = PG_EXCEPTION_HINT;
    RETURN st || ': ' || msg || ' / ' || hint;
END $$;
SELECT pg_temp.try(q) FROM (VALUES
    ($q$audit_log.create_alert('r1', threshold => 0)$q$),
    ($q$audit_log.create_alert('r1', within => '0 seconds')$q$),
    ($q$audit_log.create_alert('r1', within => '-1 minute')$q$),
    ($q$audit_log.create_alert('r1', within => '31 days')$q$),
    ($q$audit_log.create_alert('r1', group_by => 'nonsense')$q$),
    ($q$audit_log.create_alert('r1', severity => 'apocalyptic')$q$),
    ($q$audit_log.create_alert('r1', categories => '{auth,nonsense}')$q$),
    ($q$audit_log.create_alert('r1', event_types => '{Not A Code}')$q$),
    ($q$audit_log.create_alert('r1', statuses => '{failed}')$q$),
    ($q$audit_log.create_alert('r1', usernames => '{}')$q$),
    ($q$audit_log.create_alert('r1', sources => '{}')$q$),
    ($q$audit_log.create_alert('r1', details_contain => '"superuser"')$q$),
    ($q$audit_log.create_alert('r1', since => '2020-01-02', until => '2020-01-01')$q$),
    ($q$audit_log.create_alert('Bad Name')$q$),
    ($q$audit_log.drop_alert('no_such_rule')$q$),
    ($q$audit_log.acknowledge(424242)$q$)) AS v(q);
SELECT count(*) AS rules, count(*) FILTER (WHERE name = 'r1') AS r1 FROM audit_log.alert_rules;
SELECT count(*) AS rule_events FROM audit_log.events WHERE event_type = 'audit.alert_rule_changed';

-- A rule: 3 app.probe events of one object within a minute.
SELECT audit_log.create_alert('probe_burst', threshold => 3, within => '1 minute', group_by => 'object_name',
                              severity => 'medium', event_types => '{app.probe}', sources => '{local}');
-- create_alert replaces: the same name again is a replacement (an event says so).
SELECT audit_log.create_alert('probe_burst', threshold => 3, within => '1 minute', group_by => 'object_name',
                              severity => 'high', event_types => '{app.probe}');
SELECT name, threshold, within, group_by, severity, event_types, sources, builtin
  FROM audit_log.alert_rules WHERE name = 'probe_burst';
SELECT object_name, command, details->>'action' AS action, details->'definition'->>'severity' AS severity
  FROM audit_log.events WHERE event_type = 'audit.alert_rule_changed' ORDER BY event_id;

-- Two probes of "a", one of "b": nothing yet.
SELECT audit_log._record_at('2020-01-01 00:00:00+00', 'app', 'app.probe', 'a') IS NOT NULL AS w;
SELECT audit_log._record_at('2020-01-01 00:00:10+00', 'app', 'app.probe', 'a') IS NOT NULL AS w;
SELECT audit_log._record_at('2020-01-01 00:00:15+00', 'app', 'app.probe', 'b') IS NOT NULL AS w;
SELECT audit_log.check_alerts() AS fired;
-- The third probe of "a" within the minute (read in a later pass): one alert.
SELECT audit_log._record_at('2020-01-01 00:00:20+00', 'app', 'app.probe', 'a') IS NOT NULL AS w;
SELECT audit_log.check_alerts() AS fired;
-- More probes of "a" in the same window (up to 00:01:20): no second alert,
-- in this pass or the next; a pass with nothing new fires nothing.
SELECT audit_log._record_at('2020-01-01 00:00:30+00', 'app', 'app.probe', 'a') IS NOT NULL AS w;
SELECT audit_log._record_at('2020-01-01 00:01:00+00', 'app', 'app.probe', 'a') IS NOT NULL AS w;
SELECT audit_log._record_at('2020-01-01 00:01:20+00', 'app', 'app.probe', 'a') IS NOT NULL AS w;
SELECT audit_log.check_alerts() AS fired;
SELECT audit_log.check_alerts() AS fired;
-- Other events do not count.
SELECT audit_log._record_at('2020-01-01 00:01:21+00', 'app', 'app.other', 'a') IS NOT NULL AS w;
SELECT audit_log.check_alerts() AS fired;
-- The next window: three probes more than a minute after the firing.
SELECT audit_log._record_at('2020-01-01 00:05:00+00', 'app', 'app.probe', 'a') IS NOT NULL AS w;
SELECT audit_log._record_at('2020-01-01 00:05:01+00', 'app', 'app.probe', 'a') IS NOT NULL AS w;
SELECT audit_log._record_at('2020-01-01 00:05:02+00', 'app', 'app.probe', 'a') IS NOT NULL AS w;
-- ... and "b" reaches 3 within a minute of its first: two groups, two alerts.
SELECT audit_log._record_at('2020-01-01 00:00:50+00', 'app', 'app.probe', 'b') IS NOT NULL AS w;
SELECT audit_log._record_at('2020-01-01 00:01:05+00', 'app', 'app.probe', 'b') IS NOT NULL AS w;
SELECT audit_log.check_alerts() AS fired;
-- Spread out: 3 probes of "c", never 3 within a minute: nothing.
SELECT audit_log._record_at('2020-01-01 01:00:00+00', 'app', 'app.probe', 'c') IS NOT NULL AS w;
SELECT audit_log._record_at('2020-01-01 01:00:50+00', 'app', 'app.probe', 'c') IS NOT NULL AS w;
SELECT audit_log._record_at('2020-01-01 01:01:40+00', 'app', 'app.probe', 'c') IS NOT NULL AS w;
SELECT audit_log.check_alerts() AS fired;

SELECT a.rule, a.severity, a.group_value, a.events, f.occurred_at AS first_at, l.occurred_at AS last_at,
       a.acknowledged_at IS NULL AS open
  FROM audit_log.alerts a
  JOIN audit_log.events f ON f.event_id = a.first_event_id
  JOIN audit_log.events l ON l.event_id = a.last_event_id
 ORDER BY a.group_value, l.occurred_at;
-- Each alert is an audit.alert_raised event with the same facts.
SELECT e.object_name, e.details->>'severity' AS severity, e.details->>'group_value' AS group_value,
       e.details->>'events' AS events,
       (e.details->>'alert_id')::bigint = a.alert_id AND (e.details->>'first_event_id')::bigint = a.first_event_id
       AND (e.details->>'last_event_id')::bigint = a.last_event_id AS same,
       (SELECT array_agg(k ORDER BY k) FROM jsonb_object_keys(e.details) k) AS keys
  FROM audit_log.events e JOIN audit_log.alerts a ON a.alert_id = (e.details->>'alert_id')::bigint
 WHERE e.event_type = 'audit.alert_raised' ORDER BY a.alert_id;

-- A threshold-1 rule on details: superuser_granted (role.altered with superuser).
SELECT audit_log._record_at('2020-01-02 00:00:00+00', 'role', 'role.altered', 'mallory', '{"superuser": true}') IS NOT NULL AS w;
SELECT audit_log._record_at('2020-01-02 00:00:01+00', 'role', 'role.altered', 'bob', '{"createdb": true}') IS NOT NULL AS w;
SELECT audit_log.check_alerts() AS fired;
SELECT rule, severity, group_value, events FROM audit_log.alerts WHERE rule = 'superuser_granted';

-- Built-in rules are changeable: drop one, nothing fires for it any more.
SELECT audit_log.drop_alert('superuser_granted');
SELECT audit_log._record_at('2020-01-03 00:00:00+00', 'role', 'role.altered', 'eve', '{"superuser": true}') IS NOT NULL AS w;
SELECT audit_log.check_alerts() AS fired;

-- Acknowledgement: recorded, once.
SELECT audit_log.acknowledge(min(alert_id), 'looked at it') FROM audit_log.alerts;
\set VERBOSITY sqlstate
SELECT audit_log.acknowledge(min(alert_id)) FROM audit_log.alerts;
\set VERBOSITY default
SELECT count(*) FILTER (WHERE acknowledged_at IS NOT NULL) AS acknowledged,
       bool_and(acknowledged_by = current_user OR acknowledged_by IS NULL) AS by_me
  FROM audit_log.alerts;
SELECT object_name, details->>'note' AS note, (details->>'alert_id')::bigint = (SELECT min(alert_id) FROM audit_log.alerts) AS same
  FROM audit_log.events WHERE event_type = 'audit.alert_acknowledged';
-- The alerts' own events never feed a rule, even one matching every audit event:
-- it fires once (for its own creation, an audit event), then never on its alerts.
SELECT audit_log.create_alert('all_audit', categories => '{audit}', within => '1 second');
SELECT audit_log.acknowledge(max(alert_id)) FROM audit_log.alerts;
SELECT audit_log.check_alerts() AS fired;
SELECT audit_log.check_alerts() AS fired;
SELECT count(*) AS all_audit_alerts FROM audit_log.alerts WHERE rule = 'all_audit';
SELECT audit_log.drop_alert('all_audit');

-- Rights: a reader reads alerts and rules, manages nothing; others get nothing.
CREATE ROLE alert_reader IN ROLE audit_log_reader;
CREATE ROLE alert_admin IN ROLE audit_log_admin;
CREATE ROLE alert_nobody;
SET ROLE alert_reader;
SELECT count(*) > 0 AS reads_alerts FROM audit_log.alerts;
SELECT count(*) > 0 AS reads_rules FROM audit_log.alert_rules;
\set VERBOSITY sqlstate
SELECT audit_log.create_alert('mine');
SELECT audit_log.drop_alert('login_brute_force');
SELECT audit_log.acknowledge(1);
SELECT audit_log.check_alerts();
UPDATE audit_log.alerts SET acknowledged_at = now();
SET ROLE alert_nobody;
SELECT count(*) FROM audit_log.alerts;
SELECT count(*) FROM audit_log.alert_rules;
\set VERBOSITY default
SET ROLE alert_admin;
SELECT audit_log.create_alert('admins_rule', event_types => '{app.admin_thing}');
SELECT audit_log.drop_alert('admins_rule');
SELECT audit_log.check_alerts() AS fired;
RESET ROLE;
SELECT actor, object_name, details->>'action' AS action FROM audit_log.events
 WHERE event_type = 'audit.alert_rule_changed' AND object_name = 'admins_rule' ORDER BY event_id;
DROP ROLE alert_reader, alert_admin, alert_nobody;
