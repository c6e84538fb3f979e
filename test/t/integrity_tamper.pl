# Seals: tampering is detected and located, purges are reported with their
# anchor, verification does not depend on session settings.
use strict;
use warnings;
use PostgreSQL::Test::Utils;
use Test::More;
use AuditLogNode;

my $node = audit_node('integrity');

# 100 days ago (expired under the 90-day default) and the 12 hours before
# the last full hour (so every window is closed whatever the minute),
# 6 events an hour tagged with their hour.
$node->safe_psql('postgres', q{
SELECT count(audit_log._record_at(date_trunc('day', now()) - interval '100 days' + make_interval(hours => h, mins => m),
                                  'data', 'data.old', 'old' || h))
  FROM generate_series(1, 5) h, generate_series(0, 50, 10) m;
SELECT count(audit_log._record_at(date_trunc('hour', now()) - make_interval(hours => h + 1, mins => m),
                                  'app', 'app.test', 'h' || h,
                                  jsonb_build_object('n', h * 1.5, 'f', 0.1::float8, 'txt', 'é€ "x"')))
  FROM generate_series(1, 12) h, generate_series(0, 50, 10) m;
});

# Seal under unusual settings, verify under others: same canonical encoding.
my $odd = q{SET TimeZone = 'Pacific/Chatham'; SET DateStyle = 'German, DMY'; SET extra_float_digits = -15;
            SET IntervalStyle = 'iso_8601'; SET client_encoding = 'LATIN1';};
my $sealed = $node->safe_psql('postgres', "$odd SELECT audit_log.seal();");
ok($sealed > 2000, "seal() sealed the windows of 100 days ($sealed)");

my $q = q{SELECT extract(epoch FROM window_start)::bigint, status, events, coalesce(detail, '')
            FROM audit_log.verify() ORDER BY window_start};
my $v_default = $node->safe_psql('postgres', $q);
my $v_odd = $node->safe_psql('postgres', "$odd $q");
my $v_other = $node->safe_psql('postgres',
	"SET TimeZone = 'America/St_Johns'; SET DateStyle = 'SQL, MDY'; SET extra_float_digits = 3; $q");
is($v_odd, $v_default, 'verify() identical under Pacific/Chatham, German dates, extra_float_digits -15, LATIN1');
is($v_other, $v_default, 'verify() identical under America/St_Johns, SQL dates, extra_float_digits 3');
is($node->safe_psql('postgres', q{SELECT count(*) FROM audit_log.verify() WHERE status <> 'ok'}),
	'0', 'every window verifies');
my $sum = $node->safe_psql('postgres', q{SELECT sum(events) FROM audit_log.seals});
is($sum, '102', 'every event is sealed');

# A purge: the old day goes, its windows are reported purged with their
# anchor, the chain still verifies across the gap.
my $head = $node->safe_psql('postgres', 'SELECT digest FROM audit_log.chain_head()');
my $purged = $node->safe_psql('postgres',
	q{SELECT count(*) FROM audit_log.maintain() WHERE action = 'purged' AND detail LIKE '30 rows%'});
is($purged, '1', 'maintain() dropped the expired day with its 30 rows');
my $st = $node->safe_psql('postgres',
	q{SELECT status, count(*), sum(events) FROM audit_log.verify() GROUP BY status ORDER BY status});
like($st, qr/^ok\|\d+\|72\npurged\|23\|30$/, 'the purged day: 23 windows from its first event purged (30 events), the rest ok');
my $anchor = $node->safe_psql('postgres', q{
SELECT v.detail LIKE '%anchor digest ' || s.digest FROM audit_log.verify() v
  JOIN audit_log.seals s USING (window_start) WHERE v.status = 'purged' AND v.events > 0 LIMIT 1});
is($anchor, 't', 'a purged window names its anchor digest');
is($node->safe_psql('postgres', 'SELECT digest FROM audit_log.chain_head()'), $head,
	'the chain head did not change with the purge');

# Tampering by a superuser, one event per window.
sub event_of
{
	my ($tag, $which) = @_;
	return $node->safe_psql('postgres',
		"SELECT $which(event_id) FROM audit_log.events WHERE object_name = '$tag'");
}
sub window_of
{
	my ($id) = @_;
	return $node->safe_psql('postgres', "SELECT s.window_start FROM audit_log.seals s
		JOIN audit_log.events e ON e.occurred_at >= s.window_start AND e.occurred_at < s.window_end
		WHERE e.event_id = $id");
}
sub verdict
{
	my ($ws) = @_;
	return $node->safe_psql('postgres',
		"SELECT status || ': ' || detail FROM audit_log.verify() WHERE window_start = '$ws'");
}
sub tamper
{
	my ($sql) = @_;
	# A superuser who bypasses the guard: one transaction (the flag ends with it).
	$node->safe_psql('postgres', "BEGIN; SET LOCAL audit_log.internal = on; $sql; COMMIT;");
}

# edit
my $e1 = event_of('h2', 'min');
my $w1 = window_of($e1);
tamper("UPDATE audit_log.events SET details = details || '{\"n\": 0}' WHERE event_id = $e1");
like(verdict($w1), qr/^mismatch: event $e1 altered/, "an edited event is named ($e1)");

# delete
my $e2 = event_of('h4', 'max');
my $w2 = window_of($e2);
tamper("DELETE FROM audit_log.events WHERE event_id = $e2");
like(verdict($w2), qr/^mismatch: event $e2 deleted/, "a deleted event is named ($e2)");

# insert a forged event into a sealed window
my $e3 = event_of('h6', 'min');
my $w3 = window_of($e3);
tamper("INSERT INTO audit_log.events SELECT nextval('audit_log.events_event_id_seq'), occurred_at + interval '1 second',
        category, event_type, status, 'forger', actor_type, db_user, effective_role, client_addr, application_name,
        user_agent, tenant, request_id, database, object_type, object_name, resource_id, command, old_data, new_data,
        statement, details, txid, backend_pid FROM audit_log.events WHERE event_id = $e3");
my $forged = $node->safe_psql('postgres', "SELECT event_id FROM audit_log.events WHERE actor = 'forger'");
like(verdict($w3), qr/^mismatch: event $forged not in the seal/, "an inserted event is named ($forged)");

# reorder: two events of a window swap their ids
my $w4 = window_of(event_of('h8', 'min'));
my ($a, $b) = split /\|/, $node->safe_psql('postgres',
	"SELECT first_event_id, last_event_id FROM audit_log.seals WHERE window_start = '$w4'");
tamper("UPDATE audit_log.events SET event_id = CASE event_id WHEN $a THEN $b ELSE $a END WHERE event_id IN ($a, $b)");
like(verdict($w4), qr/^mismatch: event $a altered/, "reordered events are named ($a)");

# an event moved to another window
my $e5 = event_of('h10', 'min');
my $w5 = window_of($e5);
tamper("UPDATE audit_log.events SET occurred_at = occurred_at - interval '1 hour' WHERE event_id = $e5");
like(verdict($w5), qr/^mismatch: event $e5 deleted or moved out/, "a moved event is named in its window ($e5)");

my $bad = $node->safe_psql('postgres', q{SELECT count(*) FROM audit_log.verify() WHERE status = 'mismatch'});
is($bad, '6', 'six windows mismatch (five tampered, one received the moved event), nothing else');

# Rewriting a seal record breaks its digest; rewriting the whole chain is
# what only an external copy of chain_head() detects.
my $sw = $node->safe_psql('postgres', q{SELECT window_start FROM audit_log.seals WHERE events > 0 AND NOT purged ORDER BY window_start LIMIT 1});
tamper("UPDATE audit_log.seal SET events = events + 1 WHERE window_start = '$sw'");
like(verdict($sw), qr/^mismatch: seal record altered/, 'an altered seal record is detected');
tamper("DELETE FROM audit_log.seal WHERE window_start = (SELECT max(window_start) FROM audit_log.seal)");
isnt($node->safe_psql('postgres', 'SELECT digest FROM audit_log.chain_head()'), $head,
	'truncating the chain changes chain_head(): the external copy no longer matches');

$node->stop;
done_testing();
