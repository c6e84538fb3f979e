# A writer per database: failures, logins and role changes made in three
# databases with the extension (plus one without) each land where they
# belong: a database's failures in that database, cluster-wide events
# (roles, logins, databases) in audit_log.database, and a failure of the
# database without the extension in audit_log.database, marked with
# details.stored_for.  audit_log.status shows each writer.  Nothing is lost
# while a writer restarts.  DROP DATABASE, DROP EXTENSION, CREATE DATABASE
# ... TEMPLATE and ALTER DATABASE RENAME of databases with a writer succeed
# while another database writes.
use strict;
use warnings;
use PostgreSQL::Test::Utils;
use IPC::Run;
use Time::HiRes qw(time);
use Test::More;
use AuditLogNode;

my $node = audit_node('databases', conf => qq{
audit_log.log_connections = 'all'
max_worker_processes = 16
});

my @apps = qw(app1 app2 app3);
$node->safe_psql('postgres', 'CREATE ROLE mallory LOGIN');
for my $db (@apps, 'plain')
{
	$node->safe_psql('postgres', "CREATE DATABASE $db");
}
for my $db (@apps)
{
	$node->safe_psql($db, 'CREATE EXTENSION audit_log CASCADE');
}

# writers as audit_log.status shows them: database:state:audit_database
my $writers = q{
SELECT string_agg(w->>'database' || ':' || (w->>'state') || ':' || (w->>'audit_database'), ','
                  ORDER BY w->>'database')
  FROM audit_log.status, jsonb_array_elements(writers) w};
ok($node->poll_query_until('postgres', $writers,
	'app1:running:false,app2:running:false,app3:running:false,postgres:running:true'),
	'status shows a running writer for each database with the extension, none for plain');
is($node->safe_psql('postgres', q{
SELECT count(*) FROM audit_log.status, jsonb_array_elements(writers) w
  JOIN pg_stat_activity a ON a.pid = (w->>'pid')::int
 WHERE a.backend_type = 'audit_log worker' AND a.datname = w->>'database'}),
	'4', 'each writer pid is an audit_log worker connected to its database');
is($node->safe_psql('postgres',
	q{SELECT worker_pid = (SELECT pid FROM pg_stat_activity WHERE backend_type = 'audit_log worker' AND datname = 'postgres') FROM audit_log.status}),
	't', 'worker_pid is the writer of audit_log.database');

# --- failures, logins and role changes from every database
sub attack
{
	my ($db) = @_;
	$node->safe_psql($db, "CREATE TABLE secret_$db (id int)");
	my ($ret, $out, $err) = $node->psql($db,
		"SET ROLE mallory; GRANT SELECT ON secret_$db TO mallory;");
	like($err, qr/permission denied for table secret_$db/, "$db: the GRANT is denied");
	($ret, $out, $err) = $node->psql($db,
		"SET ROLE mallory; CREATE TABLE public.mallory_$db (id int);");
	like($err, qr/permission denied for schema public/, "$db: the CREATE TABLE is denied");
	$node->safe_psql($db, "CREATE ROLE r_$db; ALTER ROLE r_$db CONNECTION LIMIT 3;");
	$node->safe_psql($db, 'SELECT 1', connstr => $node->connstr($db) . ' user=mallory');
}
attack($_) for (@apps, 'plain', 'postgres');

# where each database's own failures are
my $failures = q{
SELECT string_agg(event_type || ':' || command || ':' || coalesce(object_name, '-') || ':' ||
                  coalesce(details->>'stored_for', '-'), ',' ORDER BY event_id)
  FROM audit_log.events WHERE status = 'failure' AND database = current_database()};
for my $db (@apps)
{
	ok($node->poll_query_until($db, $failures,
		"privilege.granted:GRANT:public.secret_$db:-,ddl.create_table:CREATE TABLE:public.mallory_$db:-"),
		"$db: its failures are stored in $db");
	is($node->safe_psql($db, q{
SELECT count(*) FROM audit_log.events WHERE category IN ('role', 'auth') OR database <> current_database()}),
		'0', "$db: no role, login or other database's event there");
}
ok($node->poll_query_until('postgres', $failures,
	'privilege.granted:GRANT:public.secret_postgres:-,ddl.create_table:CREATE TABLE:public.mallory_postgres:-'),
	'postgres: its own failures, unmarked');
ok($node->poll_query_until('postgres', q{
SELECT string_agg(event_type || ':' || command || ':' || coalesce(object_name, '-') || ':' ||
                  coalesce(details->>'stored_for', '-'), ',' ORDER BY event_id)
  FROM audit_log.events WHERE status = 'failure' AND database = 'plain'},
	'privilege.granted:GRANT:public.secret_plain:plain,ddl.create_table:CREATE TABLE:public.mallory_plain:plain'),
	'plain (no extension): its failures in audit_log.database, marked stored_for');
is($node->safe_psql('postgres', q{
SELECT count(*) FROM audit_log.events WHERE status = 'failure' AND database IN ('app1', 'app2', 'app3')}),
	'0', 'no failure of app1..3 in audit_log.database');
ok($node->poll_query_until('postgres', q{
SELECT string_agg(database || ':' || event_type || ':' || object_name || ':' ||
                  coalesce(details->>'stored_for', '-'), ',' ORDER BY database, event_id)
  FROM audit_log.events WHERE category = 'role' AND object_name LIKE 'r\_%'},
	'app1:role.created:r_app1:-,app1:role.altered:r_app1:-,app2:role.created:r_app2:-,app2:role.altered:r_app2:-,'
	. 'app3:role.created:r_app3:-,app3:role.altered:r_app3:-,plain:role.created:r_plain:-,plain:role.altered:r_plain:-,'
	. 'postgres:role.created:r_postgres:-,postgres:role.altered:r_postgres:-'),
	'role changes of every database in audit_log.database, unmarked');
ok($node->poll_query_until('postgres', q{
SELECT string_agg(DISTINCT database, ',' ORDER BY database) FROM audit_log.events
 WHERE event_type = 'auth.login_succeeded' AND db_user = 'mallory'},
	'app1,app2,app3,plain,postgres'),
	'logins to every database in audit_log.database');

# --- The attack: changes of databases and tablespaces (shared objects)
# made from a database without the extension, some inside CREATE SCHEMA:
# cluster-wide events, in audit_log.database.
my $tsdir = PostgreSQL::Test::Utils::tempdir();
$node->safe_psql('postgres', 'CREATE DATABASE victim; CREATE ROLE r_heir;');
$node->safe_psql('plain', qq{
ALTER DATABASE victim OWNER TO mallory;
ALTER DATABASE victim CONNECTION LIMIT 0;
ALTER DATABASE victim RENAME TO victim2;
CREATE TABLESPACE ts_plain LOCATION '$tsdir';
ALTER TABLESPACE ts_plain OWNER TO mallory;
ALTER TABLESPACE ts_plain SET (seq_page_cost = 2);
ALTER TABLESPACE ts_plain RENAME TO ts_plain2;
DROP TABLESPACE ts_plain2;
REASSIGN OWNED BY mallory TO r_heir;
CREATE SCHEMA s_plain GRANT CONNECT, TEMP ON DATABASE victim2 TO mallory
  GRANT SET ON PARAMETER work_mem TO mallory;
});
ok($node->poll_query_until('postgres', q{
SELECT string_agg(event_type || ':' || object_name || ':' ||
                  coalesce(details->>'new_owner', details->>'new_name', details->>'connection_limit', '-'),
                  ',' ORDER BY event_id)
  FROM audit_log.events WHERE database = 'plain' AND status = 'success' AND category IN ('ddl', 'privilege', 'config')},
	'ddl.alter_database:victim:mallory,ddl.alter_database:victim:0,ddl.alter_database:victim:victim2,'
	. 'ddl.create_tablespace:ts_plain:-,ddl.alter_tablespace:ts_plain:mallory,ddl.alter_tablespace:ts_plain:-,'
	. 'ddl.alter_tablespace:ts_plain:ts_plain2,ddl.drop_tablespace:ts_plain2:-,ddl.reassign_owned:mallory:r_heir,'
	. 'privilege.granted:victim2:-,config.parameter_granted:work_mem:-'),
	'plain (no extension): its changes of databases and tablespaces in audit_log.database');
is($node->safe_psql('postgres', q{
SELECT details->>'roles' FROM audit_log.events WHERE database = 'plain' AND event_type = 'ddl.reassign_owned'}),
	'["mallory"]', 'REASSIGN OWNED: the roles whose objects were given away');

# --- a superuser impersonating mallory in the database without the
# extension: the switch and the way back are cluster-wide events
$node->safe_psql('plain', 'SET SESSION AUTHORIZATION mallory; RESET SESSION AUTHORIZATION;');
ok($node->poll_query_until('postgres', q{
SELECT string_agg(details->>'action' || ':' || object_name || ':' || db_user || ':' ||
                  (details->>'authenticated_user' = session_user), ',' ORDER BY event_id)
  FROM audit_log.events WHERE database = 'plain' AND event_type = 'auth.session_authorization_set'},
	'set:mallory:' . $node->safe_psql('postgres', 'SELECT session_user') . ':true,'
	. 'reset:' . $node->safe_psql('postgres', 'SELECT session_user') . ':mallory:true'),
	'plain (no extension): SET/RESET SESSION AUTHORIZATION in audit_log.database');

# --- a writer stopped, then terminated: its database's events wait, then land there
my ($pid1) = $node->safe_psql('postgres',
	q{SELECT w->>'pid' FROM audit_log.status, jsonb_array_elements(writers) w WHERE w->>'database' = 'app1'});
kill 'STOP', $pid1;
for my $i (1 .. 3)
{
	$node->psql('app1', "SET ROLE mallory; GRANT SELECT ON secret_app1 TO mallory /* wait $i */;");
}
ok($node->poll_query_until('postgres', q{
SELECT w->>'queued' FROM audit_log.status, jsonb_array_elements(writers) w WHERE w->>'database' = 'app1'},
	'3'), 'status: 3 events queued for the stopped writer of app1');
kill 'TERM', $pid1;
kill 'CONT', $pid1;
ok(wait_for_events($node, q{status = 'failure' AND statement LIKE '%/* wait %'}, 3, 'app1'),
	'after the restart of its writer the 3 events are stored in app1');
is($node->safe_psql('postgres',
	qq{SELECT w->>'state' || ':' || ((w->>'pid')::int <> $pid1) FROM audit_log.status, jsonb_array_elements(writers) w WHERE w->>'database' = 'app1'}),
	'running:true', 'by a new writer');
is($node->safe_psql('postgres', q{SELECT count(*) FROM audit_log.events WHERE statement LIKE '%/* wait %'}),
	'0', 'none of them in audit_log.database');

# --- The attack: a login that may not drop, rename or copy a database
# tries, in a loop: each attempt fails, and must not stop the database's
# writer first (its maintenance, alerts and queued events would stall).
my $writer_of = q{SELECT w->>'pid' FROM audit_log.status, jsonb_array_elements(writers) w WHERE w->>'database' = 'app2'};
my $app2_pid = $node->safe_psql('postgres', $writer_of);
for my $attempt ('DROP DATABASE app2', 'ALTER DATABASE app2 RENAME TO app2x', 'CREATE DATABASE copy2 TEMPLATE app2')
{
	my ($arc, $aout, $aerr) = $node->psql('postgres', "SET ROLE mallory; $attempt");
	like($aerr, qr/permission denied|must be owner/, "mallory: $attempt fails");
}
is($node->safe_psql('postgres', $writer_of), $app2_pid,
	'and the writer of app2 kept running through the attempts');

# --- DROP DATABASE and DROP EXTENSION while app1 writes
my $psql = $node->installed_command('psql');
my ($host, $port) = ($node->host, $node->port);
my $n = 40;
my $loop = IPC::Run::start(['bash', '-c',
	"for i in \$(seq 1 $n); do '$psql' -X -q -h '$host' -p $port -d app1 -c \"SET ROLE mallory; GRANT SELECT ON secret_app1 TO mallory /* loop \$i */;\" 2>/dev/null; done; exit 0"]);
$node->psql('app3', "SET ROLE mallory; GRANT SELECT ON secret_app3 TO mallory /* before drop */;");
my $t0 = time;
my ($ret, $out, $err) = $node->psql('postgres', 'DROP DATABASE app3');
my $drop_secs = time - $t0;
is($ret, 0, 'DROP DATABASE of a database with a writer succeeds') or diag($err);
diag(sprintf('DROP DATABASE took %.2f s', $drop_secs));
($ret, $out, $err) = $node->psql('app2', 'DROP EXTENSION audit_log CASCADE');
is($ret, 0, 'DROP EXTENSION in app2 succeeds') or diag($err);
ok($node->poll_query_until('postgres', $writers, 'app1:running:false,postgres:running:true'),
	'the writers of app2 (extension dropped) and app3 (database dropped) are gone');
$node->psql('app2', "SET ROLE mallory; GRANT SELECT ON secret_app2 TO mallory /* no extension */;");
ok($node->poll_query_until('postgres', q{
SELECT details->>'stored_for' FROM audit_log.events WHERE statement LIKE '%/* no extension%'}, 'app2'),
	'a failure in app2 without the extension lands in audit_log.database, marked');
$loop->finish;
ok(wait_for_events($node, q{status = 'failure' AND statement LIKE '%/* loop %'}, $n, 'app1'),
	"the $n failures app1 made meanwhile are all stored in app1");
is($node->safe_psql('postgres', q{SELECT count(*) FROM audit_log.events WHERE statement LIKE '%/* loop %'}),
	'0', 'none of them in audit_log.database');
ok(wait_for_events($node, q{event_type = 'database.dropped' AND object_name = 'app3'}, 1),
	'the drop of app3 is recorded in audit_log.database');
ok(!$node->log_contains(qr/is being accessed by other users|deadlock detected/),
	'no "being accessed by other users", no deadlock in the server log');

# --- the extension again in app2: its writer is back
$node->safe_psql('app2', 'CREATE EXTENSION audit_log');
ok($node->poll_query_until('postgres', $writers,
	'app1:running:false,app2:running:false,postgres:running:true'),
	'CREATE EXTENSION starts the writer of app2 again');
$node->psql('app2', "SET ROLE mallory; GRANT SELECT ON secret_app2 TO mallory /* back */;");
ok(wait_for_events($node, q{statement LIKE '%/* back%' AND details->>'stored_for' IS NULL}, 1, 'app2'),
	'and its failures are stored in app2 again');

# --- a database with a writer as a template, then renamed
($ret, $out, $err) = $node->psql('postgres', 'CREATE DATABASE app4 TEMPLATE app2');
is($ret, 0, 'CREATE DATABASE ... TEMPLATE a database with a writer succeeds') or diag($err);
ok($node->poll_query_until('postgres', $writers,
	'app1:running:false,app2:running:false,app4:running:false,postgres:running:true'),
	'the copy gets its writer');
($ret, $out, $err) = $node->psql('postgres', 'ALTER DATABASE app4 RENAME TO app5');
is($ret, 0, 'ALTER DATABASE RENAME of a database with a writer succeeds') or diag($err);
ok($node->poll_query_until('postgres', $writers,
	'app1:running:false,app2:running:false,app5:running:false,postgres:running:true'),
	'the renamed database has its writer');
$node->psql('app5', "SET ROLE mallory; GRANT SELECT ON secret_app2 TO mallory /* renamed */;");
ok(wait_for_events($node, q{statement LIKE '%/* renamed%' AND database = 'app5'}, 1, 'app5'),
	'its failures are stored in it');

$node->stop;

# --- no worker slot left for a writer: the launcher, the logical
# replication launcher and the writer of postgres take all three
$node = audit_node('noslot', conf => qq{
max_worker_processes = 3
});
$node->safe_psql('postgres', 'CREATE ROLE mallory LOGIN');
$node->poll_query_until('postgres', 'SELECT worker_pid IS NOT NULL FROM audit_log.status');
$node->safe_psql('postgres', 'CREATE DATABASE crowded');
$node->safe_psql('crowded', 'CREATE EXTENSION audit_log CASCADE; CREATE TABLE secret (id int);');
ok($node->poll_query_until('postgres', $writers, 'crowded:no worker slot:false,postgres:running:true'),
	'status: no worker slot for the writer of crowded');
$node->psql('crowded', "SET ROLE mallory; GRANT SELECT ON secret TO mallory /* crowded */;");
ok($node->poll_query_until('postgres', q{
SELECT database || ':' || (details->>'stored_for') FROM audit_log.events WHERE statement LIKE '%/* crowded */%'},
	'crowded:crowded'),
	'its failures are stored in audit_log.database, marked');
ok($node->log_contains(qr/no background worker slot for the writer of database "crowded"/),
	'a WARNING in the server log says so');
$node->stop;
done_testing();
