# audit_log with and without shared_preload_libraries: CREATE EXTENSION
# warns which capture is off, audit_log.status says what is active, and
# table capture works either way.
use strict;
use warnings;
use PostgreSQL::Test::Utils;
use Test::More;
use AuditLogNode;

my $status_sql =
  'SELECT preloaded, table_capture, utility_capture, login_capture FROM audit_log.status';

# table_capture_works(node, table): enable a table, change it, count the
# captured events.
sub table_capture_works
{
	my ($node, $table) = @_;
	$node->safe_psql(
		'postgres', qq{
		CREATE TABLE $table (id int PRIMARY KEY, v text);
		SELECT audit_log.enable('$table');
		INSERT INTO $table VALUES (1, 'a'), (2, 'b');
		UPDATE $table SET v = 'c' WHERE id = 1;
		DELETE FROM $table WHERE id = 2;
		BEGIN; INSERT INTO $table VALUES (3, 'rolled back'); ROLLBACK;
		TRUNCATE $table;
	});
	return $node->safe_psql(
		'postgres', qq{
		SELECT string_agg(event_type || ':' || coalesce(resource_id, '-'), ' ' ORDER BY event_id)
		  FROM audit_log.events WHERE object_name = 'public.$table'
		   AND command IN ('INSERT', 'UPDATE', 'DELETE', 'TRUNCATE', 'SELECT')});
}

my $expected_events =
  'audit.enabled:- data.insert:1 data.insert:2 data.update:1 data.delete:2 data.truncate:-';

# Without the preload (CREATE EXTENSION is tested: audit_node() does not
# create it).
my $node = audit_node('no_preload', preload => 0);

my ($ret, $stdout, $stderr) =
  $node->psql('postgres', 'CREATE EXTENSION audit_log CASCADE');
is($ret, 0, 'CREATE EXTENSION succeeds without the preload');
like(
	$stderr,
	qr/WARNING:  audit_log is not in shared_preload_libraries: role, login, configuration and failed-command capture and the background worker are off/,
	'CREATE EXTENSION warns which capture is off');
like($stderr, qr/HINT:  Add audit_log to shared_preload_libraries/,
	'the warning hints at the fix');
is($node->safe_psql('postgres', $status_sql),
	'f|t|f|off', 'status: not preloaded, only table capture');
is(table_capture_works($node, 'no_preload_t'),
	$expected_events, 'table capture works without the preload');

# The same cluster with the preload.
add_preload($node);
$node->restart;
is($node->safe_psql('postgres', $status_sql),
	't|t|t|all', 'status after adding the preload: all capture on');
is(table_capture_works($node, 'preload_t'),
	$expected_events, 'table capture works with the preload');
is( $node->safe_psql(
		'postgres',
		"SELECT count(*) FROM audit_log.events WHERE object_name = 'public.no_preload_t' AND command <> 'CREATE TABLE'"),
	'6',
	'events captured before the restart are kept');
$node->stop;

# A cluster preloaded from the start: no warning.
my $node2 = audit_node('preload', extension => 0);
($ret, $stdout, $stderr) =
  $node2->psql('postgres', 'CREATE EXTENSION audit_log CASCADE');
is($ret, 0, 'CREATE EXTENSION succeeds with the preload');
unlike($stderr, qr/WARNING/, 'no warning with the preload');
is($node2->safe_psql('postgres', $status_sql),
	't|t|t|all', 'status with the preload: all capture on');
$node2->append_conf('postgresql.conf', "audit_log.log_connections = failures");
$node2->reload;
ok( $node2->poll_query_until(
		'postgres', 'SELECT login_capture FROM audit_log.status', 'failures'),
	'login_capture follows audit_log.log_connections');
is(table_capture_works($node2, 'preload2_t'),
	$expected_events, 'table capture works on a preloaded cluster');
$node2->stop;

done_testing();
