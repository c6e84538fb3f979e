# DROP EXTENSION while the worker writes queued events.  The worker
# share-locks the extension object before it touches the events table, the
# lock DROP EXTENSION takes first: the two wait for each other instead of
# deadlocking, an event that arrives while the extension is being dropped is
# stored once the drop rolls back, and one that finds it gone goes to the
# server log (never lost silently).
use strict;
use warnings;
use PostgreSQL::Test::Utils;
use IPC::Run;
use Test::More;
use AuditLogNode;

my $node = audit_node('dropext', conf => qq{
audit_log.log_connections = 'all'
});

my $logins = q{SELECT count(*) FROM audit_log.events WHERE event_type = 'auth.login_succeeded'};
my $worker_waits = q{
SELECT count(*) = 1 FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
 WHERE a.backend_type = 'audit_log worker' AND l.locktype = 'object'
   AND l.classid = 'pg_extension'::regclass AND NOT l.granted};

# --- a drop that rolls back: the worker waits for it, then stores the event
$node->poll_query_until('postgres', "SELECT ($logins) > 0");
my $before = $node->safe_psql('postgres', $logins);
my $dropper = $node->background_psql('postgres');
$dropper->query_safe('BEGIN');
$dropper->query_safe('DROP EXTENSION audit_log CASCADE');
$node->safe_psql('postgres', 'SELECT 1');    # a login: an event for the worker
ok($node->poll_query_until('postgres', $worker_waits),
	'the worker waits for the extension lock held by DROP EXTENSION');
$dropper->query_safe('ROLLBACK');
ok($node->poll_query_until('postgres', "SELECT ($logins) >= $before + 2"),
	'after the rollback the waiting events are stored');

# --- a drop that commits: the waiting events go to the server log
my $offset = -s $node->logfile;
$dropper->query_safe('BEGIN');
$dropper->query_safe('DROP EXTENSION audit_log CASCADE');
$node->safe_psql('postgres', 'SELECT 1');
ok($node->poll_query_until('postgres', $worker_waits), 'the worker waits again');
$dropper->query_safe('COMMIT');
$dropper->quit;
ok($node->wait_for_log(qr/audit_log event: \{[^\n]*"event_type":"auth\.login_succeeded"[^\n]*"reason":"audit database lacks the audit_log extension"/, $offset),
	'an event that finds the extension gone is written to the server log');
$node->safe_psql('postgres', 'CREATE EXTENSION audit_log');

# --- drop and create in a loop while clients log in: never a deadlock
$node->safe_psql('postgres', q{
CREATE PROCEDURE churn(n int) LANGUAGE plpgsql AS $$
BEGIN
    FOR i IN 1..n LOOP
        DROP EXTENSION audit_log CASCADE;
        CREATE EXTENSION audit_log;
        COMMIT;
    END LOOP;
END $$});
$offset = -s $node->logfile;
my $psql = $node->installed_command('psql');
my ($host, $port) = ($node->host, $node->port);
my $clients = IPC::Run::start(['bash', '-c',
	"for i in \$(seq 1 300); do '$psql' -X -q -h '$host' -p $port -d postgres -c 'SELECT 1' >/dev/null || exit 1; done"]);
my ($ret, $out, $err) = $node->psql('postgres', 'CALL churn(100)');
$clients->finish;
is($ret, 0, '100 drops and creates during 300 logins all succeed');
unlike($err, qr/deadlock/, 'no deadlock reported to the client');
ok(!$node->log_contains(qr/deadlock detected/, $offset), 'no deadlock in the server log');
ok(!$node->log_contains(qr/could not open relation/, $offset),
	'the worker never opens a dropped table');
$node->safe_psql('postgres', 'SELECT 1');
ok($node->poll_query_until('postgres', "SELECT ($logins) > 0"),
	'the worker stores events in the last extension created');

# --- DROP SCHEMA audit_log CASCADE takes the extension, and the trail, of
# a database with it: the statement itself is recorded all the same, in
# audit_log.database, as DROP EXTENSION is.
$node->safe_psql('postgres', 'CREATE DATABASE appdb');
$node->safe_psql('appdb', 'CREATE EXTENSION audit_log CASCADE');
$node->safe_psql('appdb', 'DROP SCHEMA audit_log CASCADE');
is($node->safe_psql('appdb', "SELECT count(*) FROM pg_extension WHERE extname = 'audit_log'"),
	'0', 'DROP SCHEMA audit_log CASCADE dropped the extension');
ok($node->poll_query_until('postgres', q{
	SELECT count(*) = 1 FROM audit_log.events
	 WHERE event_type = 'ddl.drop_schema' AND database = 'appdb' AND object_name = 'audit_log'}),
	'and is recorded in audit_log.database');

# --- a drop that rolls back did not happen: its event is a failure, stored
# in the database's own trail, which is still there.
$node->safe_psql('appdb', 'CREATE EXTENSION audit_log CASCADE');
my ($rb) = $node->psql('appdb', 'BEGIN; DROP EXTENSION audit_log CASCADE; ROLLBACK;');
is($rb, 0, 'a DROP EXTENSION rolled back');
ok($node->poll_query_until('appdb', q{
	SELECT count(*) = 1 FROM audit_log.events WHERE event_type = 'extension.dropped'}),
	'its event is stored in the database it was run in');
is($node->safe_psql('appdb', q{
	SELECT status || '|' || (details->>'error') FROM audit_log.events WHERE event_type = 'extension.dropped'}),
	'failure|transaction rolled back', 'as a failure: the extension was not dropped');
is($node->safe_psql('postgres', q{
	SELECT count(*) FROM audit_log.events WHERE event_type = 'extension.dropped' AND database = 'appdb'}),
	'0', 'and nowhere else');

$node->stop;
done_testing();
