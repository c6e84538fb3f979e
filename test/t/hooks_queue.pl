# The queue and the worker: role changes made in another database reach
# audit_log.database; a denied GRANT is recorded as a failure; the worker
# killed (SIGKILL, SIGTERM) comes back and drains what was queued; a tiny
# queue flooded with failed logins never blocks a backend, the overflow is
# counted in audit_log.status and written to the server log.
use strict;
use warnings;
use PostgreSQL::Test::Utils;
use Test::More;
use AuditLogNode;

my $node = audit_node('queue', conf => qq{
restart_after_crash = on
listen_addresses = '127.0.0.1'
max_prepared_transactions = 2
});
$node->safe_psql('postgres', 'CREATE DATABASE elsewhere');

# --- role changes in another database (no extension there)
$node->safe_psql('elsewhere', q{
CREATE ROLE far_role;
ALTER ROLE far_role CREATEDB;
CREATE ROLE far_group;
GRANT far_group TO far_role;
ALTER SYSTEM SET work_mem = '7MB';
ALTER SYSTEM RESET work_mem;
});
$node->psql('elsewhere', 'BEGIN; DROP ROLE far_group; ROLLBACK;');
ok(wait_for_events($node, q{database = 'elsewhere' AND category IN ('role', 'config')}, 7),
	'cluster-wide events from another database arrive in the audit database');
is($node->safe_psql('postgres', q{
SELECT string_agg(event_type || ':' || status || ':' || object_name, ',' ORDER BY event_id)
  FROM audit_log.events WHERE database = 'elsewhere' AND category IN ('role', 'config')}),
	'role.created:success:far_role,role.altered:success:far_role,role.created:success:far_group,'
	. 'role.membership_granted:success:far_group,config.system_altered:success:work_mem,'
	. 'config.system_altered:success:work_mem,role.dropped:failure:far_group',
	'in order, the rolled back drop as a failure');

# --- a denied GRANT by an unprivileged role
$node->safe_psql('postgres', q{
CREATE ROLE mallory LOGIN;
CREATE TABLE payroll (id int);
});
my ($ret, $out, $err) = $node->psql('postgres',
	'SET ROLE mallory; GRANT SELECT ON payroll TO mallory;');
like($err, qr/permission denied for table payroll/, 'the GRANT is denied');
($ret, $out, $err) = $node->psql('elsewhere', 'SET ROLE mallory; CREATE ROLE mallory_friend;');
like($err, qr/permission denied to create role/, 'CREATE ROLE is denied');
ok(wait_for_events($node, q{status = 'failure' AND effective_role = 'mallory'
   AND event_type IN ('privilege.granted', 'role.created')}, 2),
	'both denials recorded as failures');
is($node->safe_psql('postgres', q{
SELECT details->>'error' FROM audit_log.events
 WHERE event_type = 'privilege.granted' AND status = 'failure'}),
	'permission denied for table payroll', 'with the error message');

# --- two-phase commit: a cluster-wide change is queued at PREPARE
# TRANSACTION, before its outcome is known: marked "prepared"
$node->safe_psql('elsewhere', q{
BEGIN;
CREATE ROLE prepared_role;
PREPARE TRANSACTION 'q1';
ROLLBACK PREPARED 'q1';
});
ok(wait_for_events($node, q{object_name = 'prepared_role'}, 1), 'a prepared change is recorded');
is($node->safe_psql('postgres', q{
	SELECT event_type || ':' || status || ':' || (details->>'prepared') FROM audit_log.events
	 WHERE object_name = 'prepared_role'}),
	'role.created:success:true', 'marked prepared: its outcome is not known when it is queued');

# --- the worker killed with SIGKILL: the server restarts, so does the worker
my $pid = $node->safe_psql('postgres', 'SELECT worker_pid FROM audit_log.status');
ok($pid > 0, 'worker running');
kill 'KILL', $pid;
ok($node->poll_query_until('postgres',
	"SELECT worker_pid IS NOT NULL AND worker_pid <> $pid FROM audit_log.status"),
	'worker restarted after SIGKILL');
$node->safe_psql('elsewhere', 'CREATE ROLE after_kill');
ok(wait_for_events($node, q{object_name = 'after_kill'}, 1),
	'the restarted worker stores events');

# --- SIGTERM: events queued while the worker is down are drained when it is
# back, and the server log has them at once (a crash meanwhile would lose the
# queue).  The launcher, which starts writers, is stopped meanwhile: the
# writer stays down for as long as the test needs.
my $launcher = $node->safe_psql('postgres',
	"SELECT pid FROM pg_stat_activity WHERE backend_type = 'audit_log launcher'");
ok($launcher > 0, 'launcher running');
kill 'STOP', $launcher;
$pid = $node->safe_psql('postgres', 'SELECT worker_pid FROM audit_log.status');
kill 'TERM', $pid;
ok($node->poll_query_until('postgres', 'SELECT worker_pid IS NULL FROM audit_log.status'),
	'the worker is down');
my $down_offset = -s $node->logfile;
$node->safe_psql('elsewhere', 'CREATE ROLE while_down');
ok($node->wait_for_log(qr/audit_log event: \{[^\n]*"while_down"[^\n]*"reason":"no writer running: queued until one stores it"/,
	$down_offset), 'an event queued while the worker is down is in the server log at once');
kill 'CONT', $launcher;
ok(wait_for_events($node, q{object_name = 'while_down'}, 1),
	'and is drained after its restart');

# --- a statement ended by a FATAL (its backend terminated while it waits
# for a lock) reaches neither its success nor its error handling: it is
# recorded as a failure with the FATAL's message when the backend exits.
$node->safe_psql('postgres', 'CREATE TABLE locked_t (a int)');
my $holder = $node->background_psql('postgres');
$holder->query_safe('BEGIN');
$holder->query_safe('LOCK TABLE locked_t IN ACCESS EXCLUSIVE MODE');
my $waiter = $node->background_psql('postgres', on_error_stop => 0);
$waiter->query_until(qr/waiting/, "\\echo waiting\nALTER TABLE locked_t ADD COLUMN b int;\n");
ok($node->poll_query_until('postgres', q{
	SELECT count(*) = 1 FROM pg_locks l JOIN pg_class c ON c.oid = l.relation
	 WHERE c.relname = 'locked_t' AND NOT l.granted}), 'the ALTER TABLE waits for the lock');
$node->safe_psql('postgres', q{
	SELECT pg_terminate_backend(l.pid) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation
	 WHERE c.relname = 'locked_t' AND NOT l.granted});
ok(wait_for_events($node, q{event_type = 'ddl.alter_table' AND object_name = 'public.locked_t'}, 1),
	'the terminated statement is recorded');
is($node->safe_psql('postgres', q{
	SELECT status || '|' || (details->>'error') || '|' || (details->>'sqlstate') FROM audit_log.events
	 WHERE event_type = 'ddl.alter_table' AND object_name = 'public.locked_t'}),
	'failure|terminating connection due to administrator command|57P01',
	'as a failure, with the message of the FATAL that ended it');
$holder->query_safe('ROLLBACK');
$holder->quit;
eval { $waiter->quit; };

# --- a writer that stops with events waiting for it (queued while it ran,
# not stored yet) puts them in the server log: a stop or crash before the
# next writer would lose the queue.  The writer is frozen meanwhile.
ok($node->poll_query_until('postgres', 'SELECT worker_pid IS NOT NULL FROM audit_log.status'),
	'the writer is back');
$pid = $node->safe_psql('postgres', 'SELECT worker_pid FROM audit_log.status');
kill 'STOP', $launcher;
kill 'STOP', $pid;
my $frozen_offset = -s $node->logfile;
$node->safe_psql('elsewhere', 'CREATE ROLE while_frozen');
ok($node->poll_query_until('postgres', 'SELECT queue_depth > 0 FROM audit_log.status'),
	'its event waits for the frozen writer');
unlike(slurp_file($node->logfile, $frozen_offset), qr/"while_frozen"/,
	'not in the server log while its writer runs');
kill 'TERM', $pid;
kill 'CONT', $pid;
ok($node->wait_for_log(qr/audit_log event: \{[^\n]*"while_frozen"[^\n]*"reason":"the writer stopped: queued until one stores it"/,
	$frozen_offset), 'the stopping writer puts it in the server log');
kill 'CONT', $launcher;
ok(wait_for_events($node, q{object_name = 'while_frozen'}, 1),
	'and the next writer stores it');

$node->stop;

# --- a tiny queue flooded: the worker is stopped, 30 failed logins
$node = audit_node('tiny', conf => qq{
audit_log.queue_size = 4
listen_addresses = '127.0.0.1'
});
$node->safe_psql('postgres', 'CREATE ROLE mallory LOGIN');
$node->safe_psql('postgres', q{ALTER ROLE mallory PASSWORD 'QueueSecret-1'});
# Only failed logins from now on: the successful logins of the checks below
# would otherwise be queued too, racing the stop of the worker for the
# queue's 4 places (so does the password change above, done first).  A
# backend that sees 'failures' logged no login of its own.
$node->safe_psql('postgres', "ALTER SYSTEM SET audit_log.log_connections = 'failures'");
$node->reload;
$node->poll_query_until('postgres', q{SELECT current_setting('audit_log.log_connections') = 'failures'
	AND queue_depth = 0 AND worker_pid IS NOT NULL FROM audit_log.status});
$pid = $node->safe_psql('postgres', 'SELECT worker_pid FROM audit_log.status');
my $logged_before = $node->safe_psql('postgres', 'SELECT events_logged FROM audit_log.status');
kill 'STOP', $pid;
my $tcp = 'host=127.0.0.1 port=' . $node->port . ' dbname=postgres';
set_hba($node, 'local all all trust', 'host all all 127.0.0.1/32 password');
for my $i (1 .. 30)
{
	$node->connect_fails("$tcp user=flood$i password=x", "failed login $i returns",
		expected_stderr => qr/password authentication failed/);
}
my $status = $node->safe_psql('postgres',
	'SELECT queue_depth, queue_capacity, events_logged - ' . $logged_before . ' FROM audit_log.status');
my ($depth, $cap, $logged) = split /\|/, $status;
is($cap, 4, 'queue capacity is audit_log.queue_size');
is($depth, 4, 'the queue is full');
# 30 failed logins, minus the 4 queued
is($logged, 26, "overflow counted in audit_log.status ($logged)");
kill 'CONT', $pid;
ok($node->poll_query_until('postgres', 'SELECT queue_depth = 0 FROM audit_log.status'),
	'the worker drains the queue after it resumes');
ok(wait_for_events($node, q{event_type = 'auth.login_failed'}, 4),
	'the queued events are stored');
my $log = slurp_file($node->logfile);
my @lines = ($log =~ /audit_log event: (\{[^\n]*"event_type":"auth\.login_failed"[^\n]*"reason":"queue full"\})/g);
ok(@lines >= 26, 'each overflowing event is one structured line in the server log');
like($lines[0], qr/"user_name":\s*"flood\d+"/, 'with the user name given');
my @ours = ($log =~ /(audit_log event: [^\n]*)/g);
ok(@ours >= 26, 'our lines found');
ok(!grep(/QueueSecret/, @ours), 'no password in our server log lines');
is($node->safe_psql('postgres', q{SELECT count(*) FROM audit_log.events e WHERE e::text LIKE '%QueueSecret%'}),
	'0', 'no password in the events');
$node->stop;
done_testing();
