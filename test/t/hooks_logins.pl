# Logins captured by the ClientAuthentication hook: wrong passwords with
# "password" and "scram-sha-256" in pg_hba.conf, successful logins, sessions
# refused after authentication (failures, not successes), names
# given by the client stored as given; passwords in no table, view or log
# line of ours; audit_log.log_connections.
use strict;
use warnings;
use PostgreSQL::Test::Utils;
use Test::More;
use AuditLogNode;

my $node = audit_node('logins', conf => qq{
listen_addresses = '127.0.0.1'
log_statement = 'none'
log_min_error_statement = 'panic'
password_encryption = 'scram-sha-256'
wal_level = replica
max_wal_senders = 2
});
$node->safe_psql('postgres', q{
CREATE ROLE alice LOGIN PASSWORD 'TapSecret-Alice1';
CREATE ROLE bob LOGIN PASSWORD 'TapSecret-Bob1';
ALTER ROLE bob PASSWORD 'TapSecret-Bob2';
});
# a failing password change: the statement errors, nothing of ours may leak it
$node->psql('postgres', q{ALTER ROLE nobody_here PASSWORD 'TapSecret-Failed3'});

set_hba($node,
	'local all all trust',
	'host all alice 127.0.0.1/32 password',
	'host all bob 127.0.0.1/32 scram-sha-256',
	'host all all 127.0.0.1/32 password');

my $port = $node->port;
my $tcp = "host=127.0.0.1 port=$port dbname=postgres";

$node->connect_fails("$tcp user=alice password=WrongSecret-1", 'alice, wrong password',
	expected_stderr => qr/password authentication failed/);
$node->connect_fails("$tcp user=bob password=WrongSecret-2", 'bob, wrong scram password',
	expected_stderr => qr/password authentication failed/);
$node->connect_ok("$tcp user=bob password=TapSecret-Bob2", 'bob, right password');
$node->connect_fails("$tcp user=ghost\\'x password=nothing", 'unknown user fails',
	expected_stderr => qr/password authentication failed/);

ok($node->poll_query_until('postgres',
	"SELECT count(*) >= 4 FROM audit_log.events WHERE category = 'auth' AND client_addr IS NOT NULL"),
	'login events arrive through the queue');

my $rows = $node->safe_psql('postgres', q{
SELECT event_type, status, actor, db_user, host(client_addr), database, object_name,
       details->>'auth_method', details->>'user_name'
  FROM audit_log.events WHERE category = 'auth' AND client_addr IS NOT NULL
 ORDER BY event_id});
is($rows, join("\n",
	"auth.login_failed|failure|alice|alice|127.0.0.1|postgres|postgres|password|alice",
	"auth.login_failed|failure|bob|bob|127.0.0.1|postgres|postgres|scram-sha-256|bob",
	"auth.login_succeeded|success|bob|bob|127.0.0.1|postgres|postgres|scram-sha-256|bob",
	"auth.login_failed|failure|ghost'x|ghost'x|127.0.0.1|postgres|postgres|password|ghost'x"),
	'failed and successful logins with user as given, address, database and method');
# What tells failed attempts apart: a guess at a role that does not exist
# (enumeration, spraying) and a wrong password for one that does.
is($node->safe_psql('postgres', q{
SELECT string_agg(actor || '|' || (details->>'role_exists') || '|' || coalesce(details->>'password_expired', ''), ','
                  ORDER BY event_id)
  FROM audit_log.events WHERE event_type = 'auth.login_failed' AND client_addr IS NOT NULL}),
	"alice|true|false,bob|true|false,ghost'x|false|",
	'a failed login says whether the role exists and whether its password has expired');
is($node->safe_psql('postgres', q{
SELECT string_agg(DISTINCT (details->>'ssl') || '|' || (details->>'hba_line'), ',')
  FROM audit_log.events WHERE category = 'auth' AND client_addr IS NOT NULL AND actor = 'bob'}),
	'false|3', 'a login says whether SSL carried it and which pg_hba.conf line decided it');

# a name that is not valid UTF-8: stored readable, the exact bytes in details
$node->connect_fails("$tcp user=\xffodd password=x", 'invalid UTF-8 user name fails',
	expected_stderr => qr/password authentication failed/);
ok(wait_for_events($node,
	q{event_type = 'auth.login_failed' AND actor = '?odd' AND details->>'user_name_hex' = 'ff6f6464'}, 1),
	'invalid bytes replaced, the bytes kept in hex');

# A passed authentication is not a login yet: the session can still be
# refused (a role without LOGIN, no CONNECT privilege, no such database).
# Each is a failed login with the server's message, never a success.
$node->safe_psql('postgres', q{
CREATE ROLE carol NOLOGIN PASSWORD 'TapSecret-Carol1';
CREATE ROLE dave LOGIN PASSWORD 'TapSecret-Dave1';
CREATE DATABASE closed;
REVOKE CONNECT ON DATABASE closed FROM PUBLIC;
});
$node->connect_fails("$tcp user=carol password=TapSecret-Carol1", 'a role without LOGIN, right password',
	expected_stderr => qr/not permitted to log in/);
$node->connect_fails("host=127.0.0.1 port=$port dbname=closed user=dave password=TapSecret-Dave1",
	'no CONNECT privilege, right password', expected_stderr => qr/permission denied for database/);
$node->connect_fails("host=127.0.0.1 port=$port dbname=nowhere user=dave password=TapSecret-Dave1",
	'no such database, right password', expected_stderr => qr/does not exist/);
ok(wait_for_events($node, q{event_type = 'auth.login_failed' AND actor IN ('carol', 'dave')}, 3),
	'sessions refused after authentication are failed logins');
is($node->safe_psql('postgres', q{
SELECT event_type || '|' || status || '|' || actor || '|' || database || '|' || (details->>'reason')
       || '|' || (details->>'error')
  FROM audit_log.events WHERE category = 'auth' AND actor IN ('carol', 'dave') ORDER BY event_id}),
	join("
",
	q{auth.login_failed|failure|carol|postgres|session refused after authentication|role "carol" is not permitted to log in},
	q{auth.login_failed|failure|dave|closed|session refused after authentication|permission denied for database "closed"},
	q{auth.login_failed|failure|dave|nowhere|session refused after authentication|database "nowhere" does not exist}),
	'with the reason the server gave, and no success');

# log_connections(value): set audit_log.log_connections, reload, wait until
# the server has it
sub log_connections
{
	my ($value) = @_;
	$node->append_conf('postgresql.conf', "audit_log.log_connections = '$value'\n");
	$node->reload;
	$node->poll_query_until('postgres', "SELECT current_setting('audit_log.log_connections') = '$value'");
	return;
}

# log_connections = failures: successes are no longer recorded
log_connections('failures');
$node->connect_ok("$tcp user=bob password=TapSecret-Bob2", 'bob logs in again');
$node->connect_fails("$tcp user=alice password=WrongSecret-3", 'alice fails again');
$node->connect_fails("$tcp user=carol password=TapSecret-Carol1", 'carol refused again',
	expected_stderr => qr/not permitted to log in/);
ok(wait_for_events($node, q{event_type = 'auth.login_failed'}, 9),
	'failures recorded with log_connections = failures, a session refused after authentication too');
is($node->safe_psql('postgres',
	"SELECT count(*) FROM audit_log.events WHERE event_type = 'auth.login_succeeded' AND client_addr IS NOT NULL"),
	'1', 'success not recorded with log_connections = failures');
ok(wait_for_events($node,
	q{event_type = 'audit.setting_changed' AND object_name = 'audit_log.log_connections'}, 1),
	'the reload that changed log_connections is recorded');

# none: nothing
log_connections('none');
$node->connect_fails("$tcp user=alice password=WrongSecret-4", 'alice fails, not recorded');
$node->safe_psql('postgres', 'SELECT pg_sleep(1)');
is($node->safe_psql('postgres',
	"SELECT count(*) FROM audit_log.events WHERE event_type = 'auth.login_failed'"),
	'9', 'nothing recorded with log_connections = none');

# the password never appears: tables, views, the server log
is($node->safe_psql('postgres', q{
SELECT (SELECT count(*) FROM audit_log.events e WHERE e::text ILIKE '%tapsecret%')
     + (SELECT count(*) FROM audit_log.event_log e WHERE e::text ILIKE '%tapsecret%')}),
	'0', 'no password in the events or the event_log view');
is($node->safe_psql('postgres',
	"SELECT count(*) FROM audit_log.events WHERE event_type = 'role.password_changed'"),
	'6', 'password changes recorded (5 successes, 1 failure)');
# Who really logged in, when a pg_ident map lets a system user in under a
# role (many people, one role), and a replication connection, marked so.
{
	log_connections('all');
	my $osuser = getpwuid($<);
	$node->safe_psql('postgres', q{
	CREATE ROLE mapped LOGIN; CREATE ROLE repl LOGIN REPLICATION;});
	$node->append_conf('pg_ident.conf', "m $osuser mapped\n");
	set_hba($node,
		'local all mapped peer map=m',
		'local all all trust',
		'host all all 127.0.0.1/32 password');
	my $sock = 'host=' . $node->host . " port=$port dbname=postgres";
	$node->connect_ok("$sock user=mapped", 'a system user in under a mapped role');
	$node->connect_ok("$sock user=repl replication=database", 'a logical replication connection');
	ok(wait_for_events($node, q{event_type = 'auth.login_succeeded' AND actor IN ('mapped', 'repl')}, 2),
		'both recorded');
	is($node->safe_psql('postgres', qq{
	SELECT string_agg(actor || '|' || coalesce(details->>'authenticated_identity', '') || '|'
	                  || coalesce(details->>'replication', ''), ',' ORDER BY actor)
	  FROM audit_log.events WHERE event_type = 'auth.login_succeeded' AND actor IN ('mapped', 'repl')}),
		"mapped|$osuser|,repl||logical",
		'the identity the system proved, and the replication connection, are in details');
}

# The attack through a connection's options, or a role's settings: a role
# granted SET on audit_log.internal (PostgreSQL 15's GRANT SET ON PARAMETER)
# may not turn the guard off at login either.
{
	my $sock = 'host=' . $node->host . " port=$port dbname=postgres";
	$node->safe_psql('postgres', q{
	CREATE ROLE optuser LOGIN;
	GRANT SET ON PARAMETER audit_log.internal TO optuser;});
	$node->connect_fails("$sock user=optuser options='-c audit_log.internal=on'",
		'a connection option may not turn audit_log.internal on',
		expected_stderr => qr/only a superuser may turn audit_log.internal on/);
	$node->safe_psql('postgres', 'ALTER ROLE optuser SET audit_log.internal = on');
	my ($ret, $out, $err) = $node->psql('postgres', 'SHOW audit_log.internal',
		connstr => "$sock user=optuser");
	is($out, 'off', 'nor a role setting (ignored at login, with a warning)');
	$node->safe_psql('postgres', 'ALTER ROLE optuser RESET ALL; REVOKE SET ON PARAMETER audit_log.internal FROM optuser');
}

# From 17 on, a login event trigger runs after the setup and may refuse the
# session too (PostgreSQL's own way to block logins by hour, address or
# role): a refused login is a failure with the trigger's message, never a
# success; a login it lets through is a success.
if ($node->safe_psql('postgres', 'SHOW server_version_num') >= 170000)
{
	log_connections('all');
	$node->safe_psql('postgres', q{
	CREATE ROLE erin LOGIN PASSWORD 'TapSecret-Erin1';
	CREATE ROLE frank LOGIN PASSWORD 'TapSecret-Frank1';
	CREATE FUNCTION block_erin() RETURNS event_trigger LANGUAGE plpgsql AS $$
	BEGIN IF session_user = 'erin' THEN RAISE EXCEPTION 'erin may not log in now'; END IF; END $$;
	CREATE EVENT TRIGGER block_erin ON login EXECUTE FUNCTION block_erin();
	ALTER EVENT TRIGGER block_erin ENABLE ALWAYS;
	});
	$node->connect_fails("$tcp user=erin password=TapSecret-Erin1", 'a login event trigger refuses erin',
		expected_stderr => qr/erin may not log in now/);
	$node->connect_ok("$tcp user=frank password=TapSecret-Frank1", 'and lets frank in');
	ok(wait_for_events($node, q{actor IN ('erin', 'frank')}, 2), 'both logins recorded');
	is($node->safe_psql('postgres', q{
	SELECT string_agg(event_type || '|' || actor || '|' || coalesce(details->>'error', ''), ',' ORDER BY actor)
	  FROM audit_log.events WHERE category = 'auth' AND actor IN ('erin', 'frank')}),
		'auth.login_failed|erin|erin may not log in now,auth.login_succeeded|frank|',
		'refused by the login trigger: a failure with its message; let in: a success');
	$node->safe_psql('postgres', 'DROP EVENT TRIGGER block_erin; DROP FUNCTION block_erin()');
}

$node->stop;
my $log = slurp_file($node->logfile);
unlike($log, qr/TapSecret/i, 'no password in the server log');
done_testing();
