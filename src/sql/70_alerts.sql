/*
 * audit_log install script, part 70: alerts.  Rules over the events
 * (alert_rule, managed by create_alert/drop_alert), their firings
 * (alerts: a row, an audit.alert_raised event and a NOTIFY audit_log_alerts
 * each) and check_alerts(), one evaluation pass, which the background worker
 * runs every audit_log.alert_interval.
 *
 * What a pass reads.  A pass reads only the events it has not read yet,
 * through the event_id index: those above the highest event_id it has read
 * (hwm), and its "holes", the event_ids at or below hwm that it did not see
 * (their transaction had not committed yet, or never will: rollbacks and
 * sequence gaps).  Concurrent transactions commit out of event_id order, so
 * an event below hwm can become visible after a pass: it stays a hole, and
 * the next pass that sees it counts it.  A hole is dropped once it is
 * settled, i.e. when it can no longer become visible:
 *
 *   - Every transaction gets its xid BEFORE its events get their event_id
 *     (writer.c, fill_row).
 *   - Each pass j reads A_j = the last event_id handed out (the sequence),
 *     then takes G_j = its own xid.  Every event_id <= A_j was handed out
 *     before G_j was assigned, so by a transaction whose xid is < G_j.
 *   - A later pass k takes X_k = the xmin of a snapshot taken before it
 *     reads.  When G_j <= X_k, every transaction with an xid < G_j had ended
 *     before that snapshot: every event_id <= A_j is, at pass k's read,
 *     visible for good or never will be.  After pass k's read, the holes
 *     <= A_j are settled and are forgotten (settled = A_j).
 * A long-running writing transaction holds X back: the holes (its events,
 * and the gaps next to them) are kept, and re-probed by event_id, until it
 * ends.  The pass's state (hwm, holes, marks, settled) commits in the same
 * transaction as its alerts: a pass killed before its commit is redone
 * entirely by the next, so a crash neither loses nor repeats a firing.
 * Passes are serialized by the row lock on alert_state.
 *
 * Events of sources (a central database: source IS NOT NULL) carry the
 * event_ids of their source, unrelated to this database's sequence, so the
 * above covers this database's own events only (source IS NULL, and never
 * above the sequence's last value: a source's ids are not read through the
 * local range).  Each source has its own read position in
 * alert_source_state, read through the (source, event_id) index: its
 * events above its hwm, at most 100,000 a pass in event_id order, and its
 * holes (ranges of ids below its hwm not seen yet: the source's own
 * transactions commit, and so arrive, out of event_id order).  What a
 * source never sends (its rollbacks, its sequence gaps) cannot be told
 * from what it sends late, so a source's hole is kept for an hour of
 * passes (settled = the source's hwm of the newest mark an hour old) and
 * then forgotten: a source event that arrives more than an hour after a
 * greater event_id of the same source is not alerted on.
 *
 * Windows.  A rule fires for a group (the value of group_by) at a matching
 * event e when at least `threshold` matching events of the group occurred in
 * [e.occurred_at - within, e.occurred_at], and then stays quiet for that
 * group until an event more than `within` after e: one firing per group and
 * window, decided by event times, not by when the pass runs.  A rule with a
 * threshold above 1 keeps its recent matches in alert_pending (what a window
 * needs), pruned an hour after they left every window; events that commit
 * more than an hour late count without the matches already pruned.
 *
 * Filters are search()'s: the WHERE clause comes from _search_where(), the
 * one implementation, plus `details @> details_contain`.  The alerts' own
 * events (audit.alert_raised, audit.alert_acknowledged) are never matched.
 */

INSERT INTO @extschema@.event_type_catalog (event_type, category, description, builtin) VALUES
    ('audit.alert_raised', 'audit', 'An alert rule fired', true),
    ('audit.alert_acknowledged', 'audit', 'An alert was acknowledged', true),
    ('audit.alert_rule_changed', 'audit', 'An alert rule was created, replaced or dropped', true);

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
 * _alert_group_expr(group_by): the SQL expression of a group over alias e
 * (a source: its name, or local for the database's own events).
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
