# Alerts evaluated by the background worker (audit_log.alert_interval = 1s):
# 12 failed logins over TCP from one address raise ONE login_brute_force
# alert, heard by a client that LISTENs, within 15 s; ALTER ROLE ... SUPERUSER
# raises superuser_granted; ALTER TABLE ... DISABLE TRIGGER on an audited
# table raises capture_disabled; the worker killed while it evaluates neither
# loses nor doubles an alert.
use strict;
use warnings;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time sleep);
use AuditLogNode;

my $node = audit_node('alerts', conf => qq{
audit_log.alert_interval = '1s'
audit_log.maintenance_interval = 3600
listen_addresses = '127.0.0.1'
restart_after_crash = on
password_encryption = 'scram-sha-256'
});
$node->safe_psql('postgres', q{CREATE ROLE alice LOGIN PASSWORD 'TapSecret-Alice1'});

set_hba($node,
	'local all all trust',
	'host all all 127.0.0.1/32 scram-sha-256');

# A client listening for alerts.
my $listener = $node->background_psql('postgres');
$listener->query_safe('LISTEN audit_log_alerts');
my $heard = '';

# listen_for(regex, seconds): poll the listener until a notification matches.
sub listen_for
{
	my ($re, $secs) = @_;
	my $until = time + $secs;
	while (time < $until)
	{
		$heard .= $listener->query('SELECT 1') // '';
		$heard .= $listener->{stdout} // '';
		return 1 if $heard =~ $re;
		sleep 0.2;
	}
	return 0;
}

# 12 failed logins from 127.0.0.1.
my $tcp = 'host=127.0.0.1 port=' . $node->port . ' dbname=postgres';
for my $i (1 .. 12)
{
	$node->connect_fails("$tcp user=alice password=Wrong-$i", "failed login $i",
		expected_stderr => qr/password authentication failed/);
}
my $t0 = time;
ok(listen_for(qr/Asynchronous notification "audit_log_alerts" with payload "([^\n]*login_brute_force[^\n]*)"/, 15),
	'the listener hears login_brute_force within 15 s');
note(sprintf('heard after %.1f s', time - $t0));
my ($payload) = $heard =~ /with payload "(\{[^\n]*login_brute_force[^\n]*\})" received/;
$payload //= '';
like($payload, qr/"group_value": "127\.0\.0\.1"/, 'the payload names the address');
unlike($payload, qr/alice|Wrong|password/i, 'the payload holds no user name, password or statement');
# The worker keeps evaluating (a few passes more): still one alert.
my $passes = $node->safe_psql('postgres', 'SELECT passes FROM audit_log.alert_state');
$node->poll_query_until('postgres', "SELECT passes >= $passes + 3 FROM audit_log.alert_state");
is($node->safe_psql('postgres', q{SELECT count(*) || '|' || min(group_value) || '|' || min(events) || '|' || min(severity)
    FROM audit_log.alerts WHERE rule = 'login_brute_force'}),
	'1|127.0.0.1|10|high', 'one login_brute_force alert for 12 failures, counting 10');
is($node->safe_psql('postgres', q{SELECT count(*) FROM audit_log.events WHERE event_type = 'audit.alert_raised'
    AND details->>'rule' = 'login_brute_force'}), '1', 'recorded as one audit.alert_raised event');

# A new superuser.
$node->safe_psql('postgres', 'CREATE ROLE mallory; ALTER ROLE mallory SUPERUSER');
ok(listen_for(qr/"rule": "superuser_granted"[^\n]*"group_value": "mallory"|"group_value": "mallory"[^\n]*"rule": "superuser_granted"/, 15),
	'ALTER ROLE ... SUPERUSER raises superuser_granted');

# Capture turned off on an audited table.
$node->safe_psql('postgres', q{CREATE TABLE accounts (id int PRIMARY KEY, v text);
SELECT audit_log.enable('accounts');
ALTER TABLE accounts DISABLE TRIGGER ALL;});
ok(listen_for(qr/"rule": "capture_disabled"/, 15), 'ALTER TABLE ... DISABLE TRIGGER raises capture_disabled');
like($node->safe_psql('postgres', q{SELECT group_value FROM audit_log.alerts WHERE rule = 'capture_disabled'}),
	qr/accounts/, 'for the table');
$listener->quit;

# The worker killed (SIGKILL: the server restarts) while events stream in:
# every group fires exactly once.
$node->safe_psql('postgres', q{SELECT audit_log.create_alert('kill_test', threshold => 3, within => '1 hour',
    group_by => 'object_name', event_types => '{app.kill}')});
for my $round (1 .. 4)
{
	for my $g (1 .. 5)
	{
		my $grp = "g$round-$g";
		$node->safe_psql('postgres', "SELECT audit_log.log('app.kill', object_name => '$grp') FROM generate_series(1, 4)");
	}
	# Kill it in a pass when we catch it in one (else wherever it is).
	my $pid;
	for my $try (1 .. 50)
	{
		$pid = $node->safe_psql('postgres',
			q{SELECT pid FROM pg_stat_activity WHERE application_name = 'audit_log worker' AND query LIKE '%check_alerts%' AND state = 'active'});
		last if $pid;
		sleep 0.05;
	}
	$pid ||= $node->safe_psql('postgres',
		q{SELECT pid FROM pg_stat_activity WHERE application_name = 'audit_log worker'});
	if ($pid)
	{
		# SIGKILL: the postmaster restarts the server; SIGTERM: only the worker.
		my $sig = $round % 2 ? 'KILL' : 'TERM';
		kill $sig, $pid;
		note("sent SIG$sig to worker $pid in round $round");
		$node->poll_query_until('postgres', 'SELECT 1', '1');
	}
}
ok($node->poll_query_until('postgres',
	q{SELECT count(DISTINCT group_value) FROM audit_log.alerts WHERE rule = 'kill_test'}, '20'),
	'every group fired after the kills');
$passes = $node->safe_psql('postgres', 'SELECT passes FROM audit_log.alert_state');
$node->poll_query_until('postgres', "SELECT passes >= $passes + 3 FROM audit_log.alert_state");
is($node->safe_psql('postgres', q{SELECT count(*) || '|' || count(DISTINCT group_value) || '|' || min(events) || '|' || max(events)
    FROM audit_log.alerts WHERE rule = 'kill_test'}), '20|20|3|3', 'no lost and no doubled alert');
is($node->safe_psql('postgres', q{SELECT count(*) FROM audit_log.events WHERE event_type = 'audit.alert_raised'
    AND details->>'rule' = 'kill_test'}), '20', 'one audit.alert_raised per alert');
# And across a clean restart.
$node->restart;
$node->safe_psql('postgres', "SELECT audit_log.log('app.kill', object_name => 'after') FROM generate_series(1, 3)");
ok($node->poll_query_until('postgres',
	q{SELECT count(*) FROM audit_log.alerts WHERE rule = 'kill_test'}, '21'), 'a restart resumes where it stopped');
$passes = $node->safe_psql('postgres', 'SELECT passes FROM audit_log.alert_state');
$node->poll_query_until('postgres', "SELECT passes >= $passes + 3 FROM audit_log.alert_state");
is($node->safe_psql('postgres', q{SELECT count(*) FROM audit_log.alerts WHERE rule = 'kill_test'}), '21',
	'and repeats nothing');

$node->stop;
done_testing();
