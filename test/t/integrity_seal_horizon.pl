# A window is sealed only when no transaction that began before its end is
# still running: a late commit never lands in a sealed window.  Nor does a
# prepared transaction's (two-phase commit): its PREPARE may come after the
# window of its events ended, and PostgreSQL does not say when it began, so
# while one waits no window is sealed.  Nor does an event waiting in the
# queue for its writer.  seal() and maintain() say what keeps a due window
# open.
use strict;
use warnings;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);
use AuditLogNode;

my $node = audit_node('horizon', conf => qq{
audit_log.seal_window = 60
audit_log.seal_delay = 0
audit_log.maintenance_interval = 3600
max_prepared_transactions = 2
});
$node->safe_psql('postgres', q{SELECT audit_log.log('app.first')});

# A transaction writes an event and stays open.
my $slow = $node->background_psql('postgres');
$slow->query_safe('BEGIN');
$slow->query_safe(q{SELECT audit_log.log('app.late_commit')});
my $started = $node->safe_psql('postgres',
	q{SELECT extract(epoch FROM xact_start) FROM pg_stat_activity WHERE backend_xid IS NOT NULL AND query LIKE '%late_commit%'});
ok($started > 0, 'the open transaction holds an xid');
# Another writes an event too; it will be prepared windows later.
my $twophase = $node->background_psql('postgres');
$twophase->query_safe('BEGIN');
$twophase->query_safe(q{SELECT audit_log.log('app.prepared_late')});

# Meanwhile other events keep coming, for more than two windows.
for my $i (1 .. 13)
{
	$node->safe_psql('postgres', "SELECT audit_log.log('app.meanwhile')");
	sleep 10;
}
$node->safe_psql('postgres', 'SELECT audit_log.seal()');
my $end = $node->safe_psql('postgres', q{SELECT extract(epoch FROM max(window_end)) FROM audit_log.seals});
ok($end <= $started, 'no window ending after the open transaction began is sealed');
my $closed_before = $node->safe_psql('postgres',
	q{SELECT floor(extract(epoch FROM now()) / 60) * 60 - 60});
ok($closed_before > $started, 'windows that ended since would be closed but for the open transaction');

$twophase->query_safe(q{PREPARE TRANSACTION 'late'});
$twophase->quit;
$slow->query_safe('COMMIT');
$slow->quit;
is($node->safe_psql('postgres', 'SELECT audit_log.seal()'), '0',
	'while a prepared transaction waits, no window is sealed');
$node->safe_psql('postgres', q{COMMIT PREPARED 'late'});
my $n = $node->safe_psql('postgres', 'SELECT audit_log.seal()');
ok($n >= 2, "after the commit the held-back windows are sealed ($n)");
is($node->safe_psql('postgres',
	q{SELECT count(*) FROM audit_log.seals s JOIN audit_log.events e
	    ON e.occurred_at >= s.window_start AND e.occurred_at < s.window_end
	   WHERE e.event_type = 'app.late_commit'}), '1', 'the late commit is inside a sealed window');
is($node->safe_psql('postgres',
	q{SELECT count(*) FROM audit_log.seals s JOIN audit_log.events e
	    ON e.occurred_at >= s.window_start AND e.occurred_at < s.window_end
	   WHERE e.event_type = 'app.prepared_late'}), '1', 'so is the prepared one, committed late');
is($node->safe_psql('postgres', q{SELECT count(*) FROM audit_log.verify() WHERE status <> 'ok'}),
	'0', 'and everything verifies');

# --- An event waiting in the queue (its writer is down) lands, once stored,
# in the window of its capture time: no window from there on is sealed
# until the writer has stored it.  The launcher, which restarts writers, is
# stopped meanwhile.
my $launcher = $node->safe_psql('postgres',
	"SELECT pid FROM pg_stat_activity WHERE backend_type = 'audit_log launcher'");
ok($launcher > 0, 'launcher running');
kill 'STOP', $launcher;
my $writer = $node->safe_psql('postgres', 'SELECT worker_pid FROM audit_log.status');
kill 'TERM', $writer;
ok($node->poll_query_until('postgres', 'SELECT worker_pid IS NULL FROM audit_log.status'),
	'the writer is down');
$node->safe_psql('postgres', 'CREATE ROLE queued_role');
my $queued = $node->safe_psql('postgres', 'SELECT extract(epoch FROM now())');
ok($node->safe_psql('postgres', 'SELECT queue_depth FROM audit_log.status') >= 1,
	'its event waits in the queue');
# The window of the event ends; nothing else holds it open.
ok($node->poll_query_until('postgres',
	"SELECT now() >= to_timestamp(ceil($queued / 60) * 60 + 1)"), 'its window has ended');
my ($stderr, $sealed_now);
$node->psql('postgres', 'SELECT audit_log.seal()', stdout => \$sealed_now, stderr => \$stderr);
$end = $node->safe_psql('postgres', q{SELECT extract(epoch FROM max(window_end)) FROM audit_log.seals});
ok($end < $queued, 'the window of the queued event is not sealed');
like($stderr, qr/WARNING:  audit_log: windows from .* are due and wait for events captured since .* that the writer has not stored yet/,
	'seal() says what keeps it open');
like($node->safe_psql('postgres', q{SELECT detail FROM audit_log.maintain() WHERE action = 'waiting'}),
	qr/wait for events captured since/, 'so does maintain()');
kill 'CONT', $launcher;
ok($node->poll_query_until('postgres',
	q{SELECT count(*) = 1 FROM audit_log.events WHERE object_name = 'queued_role'}),
	'the writer is back and stores it');
# (the logins of these checks are queued too, and stored soon after)
ok($node->poll_query_until('postgres', 'SELECT audit_log.seal() >= 1'),
	'then its window is sealed');
is($node->safe_psql('postgres',
	q{SELECT count(*) FROM audit_log.seals s JOIN audit_log.events e
	    ON e.occurred_at >= s.window_start AND e.occurred_at < s.window_end
	   WHERE e.object_name = 'queued_role'}), '1', 'with the queued event inside');
is($node->safe_psql('postgres', q{SELECT count(*) FROM audit_log.verify() WHERE status <> 'ok'}),
	'0', 'and everything verifies');

$node->stop;
done_testing();
