# Sources (issue 13): two source clusters feed one central audit database
# over logical replication.  Events of every kind arrive with their source
# (and the delay is measured), nothing is lost or doubled across a stop of
# the central cluster, ingest() is all or nothing, publish() is idempotent,
# subscribe()/unsubscribe() fail cleanly, the sources view and filter
# tell the sources apart, and a source's purge by retention leaves the
# central copy whole (verify(source => ...) says ok).
use strict;
use warnings;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time usleep);
use AuditLogNode;

my %node;
for my $name ('s1', 's2', 'central')
{
	$node{$name} = audit_node($name,
		init => { allows_streaming => ($name eq 'central' ? 0 : 'logical') },
		conf => qq{
max_worker_processes = 16
max_logical_replication_workers = 8
});
}
my $central = $node{central};

# 7. publish() twice is harmless; without wal_level = logical, 55000.
for my $s ('s1', 's2')
{
	is($node{$s}->safe_psql('postgres', 'SELECT audit_log.publish()'), 'audit_log_events', "$s: publish");
	is($node{$s}->safe_psql('postgres', 'SELECT audit_log.publish()'), 'audit_log_events', "$s: publish again");
	is($node{$s}->safe_psql('postgres',
		"SELECT count(*) FROM pg_publication WHERE pubname = 'audit_log_events' AND pubinsert AND NOT pubupdate AND pubviaroot"),
		'1', "$s: one insert-only root publication");
}
# The attack: a role that may create in the database takes the name first
# (an empty publication it may alter at will): publish() refuses it.
$node{s1}->safe_psql('postgres', q{
	ALTER PUBLICATION audit_log_events RENAME TO audit_log_events_aside;
	CREATE ROLE squatter; GRANT CREATE ON DATABASE postgres TO squatter;
	SET ROLE squatter; CREATE PUBLICATION audit_log_events; RESET ROLE;});
my ($rc, $out, $err) = $node{s1}->psql('postgres', 'SELECT audit_log.publish()');
like($err, qr/publication "audit_log_events" exists and is not the one publish\(\) makes/,
	'publish() refuses a publication of that name it did not make');
$node{s1}->safe_psql('postgres', q{
	DROP PUBLICATION audit_log_events;
	ALTER PUBLICATION audit_log_events_aside RENAME TO audit_log_events;
	REVOKE CREATE ON DATABASE postgres FROM squatter; DROP ROLE squatter;});
is($node{s1}->safe_psql('postgres', 'SELECT audit_log.publish()'), 'audit_log_events', 's1: its own is accepted');
# Altered since: without its row filter and column list it would send the
# events of other sources (a central that is also a source) and the source
# column.
my $pubcols = $node{s1}->safe_psql('postgres', q{
	SELECT string_agg(quote_ident(attname), ', ' ORDER BY attnum) FROM pg_attribute
	 WHERE attrelid = 'audit_log.events'::regclass AND attnum > 0 AND NOT attisdropped AND attname <> 'source'});
$node{s1}->safe_psql('postgres', 'ALTER PUBLICATION audit_log_events SET TABLE audit_log.events, audit_log.seal');
($rc, $out, $err) = $node{s1}->psql('postgres', 'SELECT audit_log.publish()');
like($err, qr/publication "audit_log_events" exists and is not the one publish\(\) makes/,
	'publish() refuses its publication altered to send every event and column');
$node{s1}->safe_psql('postgres',
	"ALTER PUBLICATION audit_log_events SET TABLE audit_log.events ($pubcols) WHERE (source IS NULL), audit_log.seal");
is($node{s1}->safe_psql('postgres', 'SELECT audit_log.publish()'), 'audit_log_events', 's1: put right, accepted again');
($rc, $out, $err) = $central->psql('postgres',
	'\set VERBOSITY verbose' . "\n" . 'SELECT audit_log.publish()');
like($err, qr/55000: wal_level is minimal, a source needs logical/, 'publish without logical WAL: 55000');
like($err, qr/HINT:.*wal_level = logical/, 'publish without logical WAL: the hint says what to do');

# Events of every kind on the sources: table changes, a role change, a
# failed command, a login and log().
for my $s ('s1', 's2')
{
	$node{$s}->safe_psql('postgres', qq{
		CREATE TABLE app_$s (id int PRIMARY KEY, v text);
		SELECT audit_log.enable('app_$s');
		INSERT INTO app_$s VALUES (1, 'a'), (2, 'b');
		UPDATE app_$s SET v = 'c' WHERE id = 1;
		CREATE ROLE user_$s LOGIN;
		SELECT audit_log.log('app.hello_$s');
	});
	$node{$s}->psql('postgres', 'GRANT SELECT ON no_such_table TO PUBLIC');
	$node{$s}->safe_psql('postgres', 'SELECT 1', extra_params => [ '-U', "user_$s" ]);
}

# subscribe() errors leave nothing behind.
sub central_left
{
	return $central->safe_psql('postgres',
		"SELECT (SELECT count(*) FROM pg_subscription) || '/' || (SELECT count(*) FROM audit_log.source_registry WHERE unsubscribed_at IS NULL)");
}
my $c1 = 'host=' . $node{s1}->host . ' port=' . $node{s1}->port . ' dbname=postgres';
# s2 is reached as a role that is no superuser: REPLICATION and audit_log_reader.
# Its server asks it for a password (scram), as a central's admin that is
# not a superuser needs (below).
$node{s2}->safe_psql('postgres', q{
SET password_encryption = 'scram-sha-256';
CREATE ROLE replicator LOGIN REPLICATION PASSWORD 'rep-secret' IN ROLE audit_log_reader;
});
set_hba($node{s2}, 'local all replicator scram-sha-256', 'local all all trust');
my $c2 = 'host=' . $node{s2}->host . ' port=' . $node{s2}->port . ' dbname=postgres user=replicator password=rep-secret';
($rc, $out, $err) = $central->psql('postgres', "SELECT audit_log.subscribe('Bad-Name', '$c1')");
like($err, qr/invalid source name "Bad-Name"/, 'subscribe: bad name');
($rc, $out, $err) = $central->psql('postgres', "SELECT audit_log.subscribe('local', '$c1')");
like($err, qr/invalid source name "local"/, 'subscribe: local is reserved');
($rc, $out, $err) = $central->psql('postgres',
	"SELECT audit_log.subscribe('nowhere', 'host=" . $central->host . " port=1 dbname=postgres connect_timeout=3')");
like($err, qr/could not connect to the source/, 'subscribe: unreachable conninfo');
$central->safe_psql('postgres', 'CREATE ROLE central_admin LOGIN IN ROLE audit_log_admin');
($rc, $out, $err) = $central->psql('postgres', "SELECT audit_log.subscribe('s1', '$c1')",
	extra_params => [ '-U', 'central_admin' ]);
like($err, qr/a conninfo without a password is refused for a role that is not a superuser/,
	'subscribe by an admin: the server identity is not lent');
# The attack: a password the source never asks for (trust, peer, .pgpass)
# lends the server's identity all the same.  An empty one reads .pgpass.
($rc, $out, $err) = $central->psql('postgres', "SELECT audit_log.subscribe('s1', '$c1 password=unused')",
	extra_params => [ '-U', 'central_admin' ]);
like($err, qr/ERROR:  the source did not ask for the password of the conninfo/,
	'subscribe by an admin: a password the source does not ask for is refused');
($rc, $out, $err) = $central->psql('postgres', "SELECT audit_log.subscribe('s1', '$c1 password=''''')",
	extra_params => [ '-U', 'central_admin' ]);
like($err, qr/a conninfo without a password is refused for a role that is not a superuser/,
	'subscribe by an admin: an empty password is no password');
# A list of hosts: the password check is made with one, the subscription
# could connect to another that lets the central in without one.
my $two_hosts = 'host=' . $node{s1}->host . ',' . $node{s1}->host . ' port=' . $node{s1}->port . ','
  . $node{s1}->port . ' dbname=postgres password=x';
($rc, $out, $err) = $central->psql('postgres', "SELECT audit_log.subscribe('s1', '$two_hosts')",
	extra_params => [ '-U', 'central_admin' ]);
like($err, qr/a conninfo naming more than one host is refused for a role that is not a superuser/,
	'subscribe by an admin: one host only');
# libpq keeps the last value of a repeated keyword: a list hidden after a
# single host is a list.
my $hidden_list = 'host=' . $node{s1}->host . ' port=' . $node{s1}->port . ' ' . $two_hosts;
($rc, $out, $err) = $central->psql('postgres', "SELECT audit_log.subscribe('s1', '$hidden_list')",
	extra_params => [ '-U', 'central_admin' ]);
like($err, qr/a conninfo naming more than one host is refused for a role that is not a superuser/,
	'subscribe by an admin: one host only, however the conninfo repeats host');
$central->safe_psql('postgres', 'CREATE ROLE central_reader LOGIN IN ROLE audit_log_reader');
($rc, $out, $err) = $central->psql('postgres', "SELECT audit_log.subscribe('s1', '$c1 password=x')",
	extra_params => [ '-U', 'central_reader' ]);
like($err, qr/permission denied for function subscribe/, 'subscribe: only audit_log_admin');
is(central_left(), '0/0', 'failed subscribes leave nothing');

# 1. Both sources arrive with the right source.
$central->safe_psql('postgres', "SELECT audit_log.subscribe('s1', '$c1')");
# s2 by the admin: its source asks for the password.
$central->safe_psql('postgres', "SELECT audit_log.subscribe('s2', '$c2', copy_history => true)",
	extra_params => [ '-U', 'central_admin' ]);
($rc, $out, $err) = $central->psql('postgres', "SELECT audit_log.subscribe('s1', '$c2')");
like($err, qr/source "s1" already exists/, 'subscribe: a used name');
is(central_left(), '2/2', 'the failed subscribe left nothing');

# caught_up(s): every event of source s up to its current newest is on
# the central side, once.
sub caught_up
{
	my ($s) = @_;
	my $max = $node{$s}->safe_psql('postgres', 'SELECT max(event_id) FROM audit_log.events WHERE source IS NULL');
	my $want = $node{$s}->safe_psql('postgres',
		"SELECT count(*) || ':' || sum(event_id) FROM audit_log.events WHERE source IS NULL AND event_id <= $max");
	$central->poll_query_until('postgres', qq{
		SELECT count(*) || ':' || sum(event_id) = '$want'
		  FROM audit_log.events WHERE source = '$s' AND event_id <= $max})
	  or return 0;
	return $central->safe_psql('postgres',
		"SELECT count(*) = count(DISTINCT event_id) FROM audit_log.events WHERE source = '$s'") eq 't';
}
ok(caught_up('s1'), 's1: every event arrived once');
ok(caught_up('s2'), 's2: every event arrived once');

# The attack: an admin of source s1 ingests there events of a feed of its
# own making, with any user, time and id.  They stay in s1's trail under
# that feed; the central receives only what s1 captured itself, never a
# forged "s1" event.
$node{s1}->safe_psql('postgres', q{
	SELECT audit_log.ingest('foo', '[{"event_type": "app.forged_on_source", "db_user": "alice", "event_id": 5}]');
	SELECT audit_log.log('app.after_forgery');
});
ok(caught_up('s1'), 's1: caught up after the ingest on the source');
is($central->safe_psql('postgres', q{
	SELECT count(*) FILTER (WHERE event_type = 'app.forged_on_source') || ':' ||
	       count(*) FILTER (WHERE event_type = 'app.after_forgery' AND source = 's1')
	  FROM audit_log.events}),
	'0:1', 'an event ingested on a source does not reach the central as that source\'s');
for my $s ('s1', 's2')
{
	is($central->safe_psql('postgres', qq{
		SELECT string_agg(DISTINCT event_type, ',' ORDER BY event_type) FROM audit_log.events
		 WHERE source = '$s' AND event_type IN ('data.insert', 'data.update', 'role.created',
		       'auth.login_succeeded', 'app.hello_$s', 'privilege.granted')}),
		"app.hello_$s,auth.login_succeeded,data.insert,data.update,privilege.granted,role.created",
		"$s: table, role, failed, login and log() events arrived");
}
is($central->safe_psql('postgres', q{
	SELECT count(*) FROM audit_log.events WHERE source IS NOT NULL AND source NOT IN ('s1', 's2')}),
	'0', 'no event with another source');
is($central->safe_psql('postgres', q{
	SELECT count(*) FROM audit_log.search(sources => '{local}') WHERE source IS NOT NULL}),
	'0', "search(sources => '{local}'): only the central's own events");
is($central->safe_psql('postgres', q{
	SELECT (SELECT count(*) FROM audit_log.search(sources => '{s1}'))
	     = (SELECT count(*) FROM audit_log.events WHERE source = 's1')}),
	't', "search(sources => '{s1}'): the events of s1");

# The delay: an event committed on s1 until it is visible on the central.
my @delays;
for my $i (1 .. 5)
{
	my $t0 = time;
	my $id = $node{s1}->safe_psql('postgres', "SELECT audit_log.log('app.ping')");
	wait_for_events($central, "source = 's1' AND event_id = $id", 1)
	  or die 'ping lost';
	push @delays, time - $t0;
}
@delays = sort { $a <=> $b } @delays;
diag(sprintf('commit on a source to visible on the central: median %.2f s, max %.2f s',
	$delays[2], $delays[4]));
ok($delays[4] < 60, 'events arrive within seconds');

# Alerts see the sources' events as they arrive: a rule on the central
# fires for an event of each source (their event_ids are the sources',
# unrelated to the central's own) and for one of the central's own.
$central->safe_psql('postgres',
	q{SELECT audit_log.create_alert('relayed', group_by => 'source', event_types => '{app.relay}')});
$node{$_}->safe_psql('postgres', "SELECT audit_log.log('app.relay')") for ('s1', 's2');
$central->safe_psql('postgres', "SELECT audit_log.log('app.relay')");
ok($central->poll_query_until('postgres', q{
	SELECT audit_log.check_alerts() >= 0
	   AND (SELECT string_agg(group_value, ',' ORDER BY group_value) FROM audit_log.alerts
	         WHERE rule = 'relayed') = 'local,s1,s2'}),
	"alerts: a rule fires for the events of each source and for the central's own");

ok($central->poll_query_until('postgres',
	"SELECT string_agg(source || '=' || state, ',' ORDER BY source) = 's1=streaming,s2=streaming' FROM audit_log.sources"),
	'sources: both streaming');
unlike($central->safe_psql('postgres', 'SELECT row_to_json(s)::text FROM audit_log.sources s'),
	qr/password/, 'sources: no password');

# 4 (first part). verify(source => ...): a source's seal chain checks out over the
# central copy; the central's own chain covers its own events only, so a
# source's event arriving in a window the central sealed disturbs nothing.
# (app.aged: events of 40 and of 2 days ago, which s1 purges below.)
$node{s1}->safe_psql('postgres', q{
	SELECT audit_log._record_at('2025-01-01 00:10:00+00', 'app', 'app.old', 'x', jsonb_build_object('i', i))
	  FROM generate_series(1, 3) i;
	SELECT audit_log._record_at(now() - d * interval '1 day', 'app', 'app.aged', 'x', jsonb_build_object('i', i))
	  FROM generate_series(1, 5) i, unnest('{40,2}'::int[]) d;
	SELECT audit_log.seal();});
my $s1_seals = $node{s1}->safe_psql('postgres', 'SELECT count(*) FROM audit_log.seal');
ok($s1_seals > 0, 's1 sealed windows');
ok(caught_up('s1'), 's1: the old events arrived');
ok($central->poll_query_until('postgres',
	"SELECT count(*) = $s1_seals FROM audit_log.source_seals WHERE source = 's1'"),
	"s1's seal records arrived in source_seals");
is($central->safe_psql('postgres', 'SELECT count(*) FROM audit_log.seal'), '0',
	"the central's own chain has none of them");
is($central->safe_psql('postgres', q{
	SELECT string_agg(DISTINCT status, ',') || ':' || count(*) FROM audit_log.verify(source => 's1')}),
	"ok:$s1_seals", "verify(source => 's1') on the central copy: ok");
$central->safe_psql('postgres', 'SELECT audit_log.seal()');
$node{s1}->safe_psql('postgres',
	"SELECT audit_log._record_at('2025-01-01 00:20:00+00', 'app', 'app.late', 'x', NULL)");
ok(caught_up('s1'), 's1: the late event arrived');
is($central->safe_psql('postgres', q{
	SELECT string_agg(DISTINCT status, ',') FROM audit_log.verify()}),
	'ok', "the central's own verify() is not disturbed by a source's late event");

# 5. An event edited on the source after it replicated: the central copy
# is unchanged, and verify() on the source finds the mismatch.
$node{s1}->safe_psql('postgres', q{
	SET audit_log.internal = on;
	UPDATE audit_log.events SET actor = 'forged' WHERE event_type = 'app.old';});
is($node{s1}->safe_psql('postgres', "SELECT count(*) FROM audit_log.events WHERE actor = 'forged'"),
	'3', 's1: the superuser edited three events');
$node{s1}->safe_psql('postgres', "SELECT audit_log.log('app.after_edit')");
ok(caught_up('s1'), 's1: replication goes on after the edit');
is($central->safe_psql('postgres', "SELECT count(*) FROM audit_log.events WHERE actor = 'forged'"),
	'0', 'central: the copy is unchanged');
like($node{s1}->safe_psql('postgres', q{
	SELECT status || ': ' || detail FROM audit_log.verify('2025-01-01', '2025-01-01 01:00')}),
	qr/^mismatch: event \d+ altered/, 'verify() on the source finds the edit');

# 2. The central cluster is stopped while the sources write, then started.
$central->stop;
for my $s ('s1', 's2')
{
	$node{$s}->safe_psql('postgres',
		"SELECT audit_log.log('app.while_down', details => jsonb_build_object('i', i)) FROM generate_series(1, 200) i;
		 INSERT INTO app_$s SELECT g, 'x' FROM generate_series(10, 300) g;");
}
$central->start;
ok(caught_up('s1'), 's1: after the central restart, every event arrived once');
ok(caught_up('s2'), 's2: after the central restart, every event arrived once');

# 3. A source is restarted, and killed with -m immediate, while it writes.
$node{s1}->safe_psql('postgres', "SELECT audit_log.log('app.before_restart') FROM generate_series(1, 50)");
$node{s1}->restart;
$node{s1}->safe_psql('postgres', "SELECT audit_log.log('app.after_restart') FROM generate_series(1, 50)");
$node{s1}->stop('immediate');
$node{s1}->start;
$node{s1}->safe_psql('postgres', "SELECT audit_log.log('app.after_crash') FROM generate_series(1, 50)");
ok(caught_up('s1'), 's1: after a restart and a crash of the source, every event arrived once');

# 4. s1 purges old days by retention (time travel: maintain() as of 120
# days from now: every day has expired, and those sealed go): the central copy keeps them, and verify(source => 's1') on
# the central says ok for every window it has whole.  (Only events of the
# last 30 days are compared: the central's own retention may purge the
# 2025 ones, and the window of app.late holds an event its seal has not.)
my $premax = $node{s1}->safe_psql('postgres', 'SELECT max(event_id) FROM audit_log.events WHERE source IS NULL');
ok(caught_up('s1'), 's1: every event up to the purge arrived');
my $recent = "occurred_at > now() - interval '30 days' AND event_id <= $premax";
my $before = $central->safe_psql('postgres',
	"SELECT count(*) || ':' || md5(string_agg(event_id::text, ',' ORDER BY event_id)) FROM audit_log.events WHERE source = 's1' AND $recent");
my $s1_recent = $node{s1}->safe_psql('postgres',
	"SELECT count(*) || ':' || md5(string_agg(event_id::text, ',' ORDER BY event_id)) FROM audit_log.events WHERE source IS NULL AND $recent");
is($before, $s1_recent, 's1 and the central hold the same events of the last 30 days before the purge');
my $purged = 0;
for my $try (1 .. 60)
{
	# A maintain() of s1's own worker makes this one skip: try again.
	$purged += $node{s1}->safe_psql('postgres', q{
		SELECT count(*) FROM audit_log.maintain(as_of => now() + interval '120 days') WHERE action = 'purged'});
	last if $node{s1}->safe_psql('postgres',
		"SELECT count(*) FROM audit_log.events WHERE event_type = 'app.aged'") eq '0';
	sleep 1;
}
ok($purged > 0, "s1: maintain() purged $purged partitions");
is($node{s1}->safe_psql('postgres',
	"SELECT count(*) FROM audit_log.events WHERE event_type = 'app.aged'"),
	'0', 's1: the old days are gone from the source');
is($node{s1}->safe_psql('postgres', q{
	SELECT string_agg(DISTINCT v.status, ',') FROM audit_log.verify() v
	 WHERE v.window_start IN (SELECT s.window_start FROM audit_log.seal s
	                           WHERE s.window_start > now() - interval '41 days' AND s.window_end < now() - interval '1 day'
	                             AND s.events > 0)}),
	'purged', "s1: verify() reports those windows purged");
my $mark = $node{s1}->safe_psql('postgres', "SELECT audit_log.log('app.after_purge')");
ok(wait_for_events($central, "source = 's1' AND event_id = $mark", 1),
	's1: replication goes on after the purge');
is($central->safe_psql('postgres',
	"SELECT count(*) || ':' || md5(string_agg(event_id::text, ',' ORDER BY event_id)) FROM audit_log.events WHERE source = 's1' AND $recent"),
	$before, 'central: every event s1 purged is still here, once (count and ids)');
is($central->safe_psql('postgres', "SELECT count(*) FROM audit_log.events WHERE source = 's1' AND event_type = 'app.aged'"),
	'10', 'central: the aged events are still here');
my $whole = $central->safe_psql('postgres', q{
	SELECT count(*) FROM audit_log.source_seals
	 WHERE source = 's1' AND window_start >= now() - interval '41 days' AND events > 0});
ok($whole >= 2, "s1 sealed $whole windows with events in the last 41 days");
is($central->safe_psql('postgres', q{
	SELECT string_agg(DISTINCT status, ',') || ':' || count(*) FILTER (WHERE events > 0)
	  FROM audit_log.verify(from_time => now() - interval '41 days', source => 's1')}),
	"ok:$whole", "verify(source => 's1') on the central: ok for every window it has whole, purged on s1 or not");
is($central->safe_psql('postgres', q{
	SELECT status FROM audit_log.verify(from_time => now() - interval '41 days', source => 's1')
	 WHERE events > 0 ORDER BY window_start LIMIT 1}),
	'ok', 'verify(source => \'s1\') on the central: the window of the 40-day-old events is ok');

# Only the apply writes a source's events on the central side.
($rc, $out, $err) = $central->psql('postgres', q{
	SET session_replication_role = replica;
	INSERT INTO audit_log.events (event_id, occurred_at, category, event_type, status, source)
	VALUES (999999, now(), 'app', 'app.forged', 'success', 's1')});
like($err, qr/permission denied|tamper|not allowed|may not/, 'central: a forged source event is refused');
is($central->safe_psql('postgres', "SELECT count(*) FROM audit_log.events WHERE event_type = 'app.forged'"),
	'0', 'central: nothing forged stored');

# 6. ingest(): 1,000 events of a feed, all or nothing.
my $feed = q{(SELECT jsonb_agg(jsonb_build_object('event_type', 'idp.login',
	'occurred_at', '2025-01-01 00:00:00+00'::timestamptz + i * interval '1 second',
	'actor', 'user' || i, 'client_addr', '10.0.0.' || (i % 250), 'details', jsonb_build_object('i', i)) ORDER BY i)
	FROM generate_series(1, 1000) i)};
is($central->safe_psql('postgres', "SELECT audit_log.ingest('idp', $feed)"), '1000', 'ingest: 1,000 events');
is($central->safe_psql('postgres', q{
	SELECT count(*) || ',' || min(occurred_at AT TIME ZONE 'UTC') || ',' || count(DISTINCT event_id)
	  FROM audit_log.search(sources => '{idp}')}),
	'1000,2025-01-01 00:00:01,1000', 'ingest: searchable with their source and times');
($rc, $out, $err) = $central->psql('postgres',
	"SELECT audit_log.ingest('idp', jsonb_set($feed, '{500,event_type}', '\"role.created\"'))");
like($err, qr/element 500 of events: event type "role.created" is reserved/, 'ingest: a reserved code names its element');
($rc, $out, $err) = $central->psql('postgres',
	"SELECT audit_log.ingest('idp', jsonb_set($feed, '{7,client_addr}', '\"10.0.0.999\"'))");
like($err, qr/element 7 of events: invalid input syntax for type inet/, 'ingest: a bad address names its element');
is($central->safe_psql('postgres', "SELECT count(*) FROM audit_log.events WHERE source = 'idp'"),
	'1000', 'ingest: the rejected calls stored nothing');
($rc, $out, $err) = $central->psql('postgres', "SELECT audit_log.ingest('s1', $feed)");
like($err, qr/source "s1" is a subscription/, 'ingest: not under a subscription name');

# The attacks of a source's superuser (or of a server posing as a source):
# its subscription writes on the central as a superuser, past the tamper
# guard, whatever the publication names.  It may insert its events and seal
# records, nothing else: a table of the central outside the audit schema, a
# TRUNCATE of the events, of one of their partitions by name, a write to a
# configuration table are refused (the apply stops, each attempt recorded as
# audit.tamper_attempt), and the central keeps its data.  Each refused
# transaction is then skipped by the central's superuser (ALTER SUBSCRIPTION
# ... SKIP), as an operator would after reading the error.
sub refused_then_skipped
{
	my ($what, $attempt_re, $log_from, $sub) = @_;
	$sub //= 'audit_log_s2';
	ok($central->poll_query_until('postgres', qq{
		SELECT count(*) > 0 FROM audit_log.events
		 WHERE source IS NULL AND event_type = 'audit.tamper_attempt' AND object_name = '$sub'
		   AND details->>'attempt' ~ '$attempt_re'}), "$what: refused and recorded");
	# the finish LSN of the refused transaction, from the apply's error
	my $lsn;
	for (1 .. 600)
	{
		my @m = (slurp_file($central->logfile, $log_from) =~ /"$sub".*?finished at ([0-9A-F]+\/[0-9A-F]+)/gs);
		$lsn = $m[-1] if @m;
		last if $lsn;
		usleep(100_000);
	}
	ok($lsn, "$what: the apply says which transaction failed");
	$central->safe_psql('postgres', "ALTER SUBSCRIPTION $sub SKIP (lsn = '$lsn')");
	ok($central->poll_query_until('postgres',
		"SELECT subskiplsn = '0/0' FROM pg_subscription WHERE subname = '$sub'"),
		"$what: skipped");
}
$central->safe_psql('postgres', q{
	CREATE TABLE public.victim (id int PRIMARY KEY, v text);
	INSERT INTO public.victim VALUES (1, 'the central''s own');});
my $s2_events = $central->safe_psql('postgres', "SELECT count(*) FROM audit_log.events WHERE source = 's2'");
my $holds = $central->safe_psql('postgres', 'SELECT count(*) FROM audit_log.legal_hold');
my $log_at = -s $central->logfile;
my $c1_s2 = 'host=' . $node{s2}->host . ' port=' . $node{s2}->port . ' dbname=postgres';
$node{s2}->safe_psql('postgres', q{
	CREATE TABLE public.victim (id int PRIMARY KEY, v text);
	ALTER PUBLICATION audit_log_events ADD TABLE public.victim;
	INSERT INTO public.victim VALUES (2, 'written by the source');});
refused_then_skipped('a table outside the audit schema', 'write outside schema audit_log', $log_at);
is($central->safe_psql('postgres', 'SELECT string_agg(id || v, \',\') FROM public.victim'),
	"1the central's own", 'the central\'s table is untouched');
$log_at = -s $central->logfile;
$node{s2}->safe_psql('postgres', q{
	ALTER PUBLICATION audit_log_events SET (publish = 'insert, truncate');
	BEGIN; SET LOCAL audit_log.internal = on; TRUNCATE audit_log.events; COMMIT;});
refused_then_skipped('TRUNCATE of the events', 'TRUNCATE audit_log\.events', $log_at);
my $leaf = $node{s2}->safe_psql('postgres', q{
	SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
	 WHERE i.inhparent = ('audit_log.' || audit_log._partition_name(current_date))::regclass
	 ORDER BY c.relname LIMIT 1});
$log_at = -s $central->logfile;
# Any subscription is fenced so, not only audit_log's: a superuser's own
# subscription to a publication of one partition, truncated on its side.
$node{s2}->safe_psql('postgres', qq{
	CREATE PUBLICATION rogue FOR TABLE audit_log.$leaf WITH (publish = 'truncate')});
$central->safe_psql('postgres', "CREATE SUBSCRIPTION rogue CONNECTION '$c1_s2' PUBLICATION rogue WITH (copy_data = false)");
$node{s2}->safe_psql('postgres', qq{
	BEGIN; SET LOCAL audit_log.internal = on; TRUNCATE audit_log.$leaf; COMMIT;});
refused_then_skipped('TRUNCATE of a partition by its name', "TRUNCATE audit_log\\.$leaf", $log_at, 'rogue');
$central->safe_psql('postgres', 'DROP SUBSCRIPTION rogue');
$log_at = -s $central->logfile;
$node{s2}->safe_psql('postgres', q{CREATE PUBLICATION rogue2 FOR TABLE audit_log.legal_hold WITH (publish = 'insert')});
$central->safe_psql('postgres', "CREATE SUBSCRIPTION rogue2 CONNECTION '$c1_s2' PUBLICATION rogue2 WITH (copy_data = false)");
$node{s2}->safe_psql('postgres', q{
	BEGIN; SET LOCAL audit_log.internal = on;
	INSERT INTO audit_log.legal_hold (name, from_time, to_time, reason)
	VALUES ('forged', now() - interval '1 day', now(), 'a hold the central never placed'); COMMIT;});
refused_then_skipped('a write to a configuration table', 'INSERT audit_log\.legal_hold', $log_at, 'rogue2');
$central->safe_psql('postgres', 'DROP SUBSCRIPTION rogue2');
is($central->safe_psql('postgres', "SELECT count(*) FROM audit_log.events WHERE source = 's2'") >= $s2_events ? 'kept' : 'lost',
	'kept', 'the events of s2 on the central are all kept');
is($central->safe_psql('postgres', 'SELECT count(*) FROM audit_log.legal_hold'), $holds, 'no hold was forged');
# The source put right: its events flow again.
$node{s2}->safe_psql('postgres', q{
	ALTER PUBLICATION audit_log_events DROP TABLE public.victim;
	ALTER PUBLICATION audit_log_events SET (publish = 'insert');
	DROP PUBLICATION rogue, rogue2;
	SELECT audit_log.log('app.after_the_attacks');});
# (s2 truncated its own events meanwhile: the central keeps its copy)
ok($central->poll_query_until('postgres', q{
	SELECT count(*) = 1 FROM audit_log.events WHERE source = 's2' AND event_type = 'app.after_the_attacks'}),
	's2: the events after the attacks arrive, once');

# 8 (part). A stopped source shows down.
$node{s2}->stop;
ok($central->poll_query_until('postgres',
	"SELECT state = 'down' FROM audit_log.sources WHERE source = 's2'"), 'sources: a stopped source is down');

# 8. An invalidated slot shows lost: s2 keeps at most 1 MB of WAL for its
# slot, the central is stopped, and s2 writes past that.
$node{s2}->append_conf('postgresql.conf', "max_slot_wal_keep_size = '1MB'");
$node{s2}->start;
$central->stop;
for my $i (1 .. 4)
{
	$node{s2}->safe_psql('postgres', q{
		CREATE TABLE IF NOT EXISTS fill (x text);
		INSERT INTO fill SELECT repeat('x', 1000) FROM generate_series(1, 3000);
		SELECT pg_switch_wal();});
}
$node{s2}->safe_psql('postgres', 'CHECKPOINT');
ok($node{s2}->poll_query_until('postgres',
	"SELECT wal_status = 'lost' FROM pg_replication_slots WHERE slot_name = 'audit_log_s2'"),
	"s2: the slot is invalidated");
$central->start;
ok($central->poll_query_until('postgres',
	"SELECT state = 'lost' FROM audit_log.sources WHERE source = 's2'"), 'sources: an invalidated slot is lost');
is($central->safe_psql('postgres', "SELECT state FROM audit_log.sources WHERE source = 's1'"),
	'streaming', 'sources: s1 streams on') if $central->poll_query_until('postgres',
	"SELECT state = 'streaming' FROM audit_log.sources WHERE source = 's1'");
$node{s2}->stop;

# 7. unsubscribe(): drops the subscription and the slot when the source is
# reachable; says what it left otherwise.  The events stay.
my $n1 = $central->safe_psql('postgres', "SELECT count(*) FROM audit_log.events WHERE source = 's1'");
$central->safe_psql('postgres', "SELECT audit_log.unsubscribe('s1')");
is($node{s1}->safe_psql('postgres', "SELECT count(*) FROM pg_replication_slots WHERE slot_name = 'audit_log_s1'"),
	'0', 'unsubscribe: the slot on the source is gone');
is($central->safe_psql('postgres', "SELECT count(*) FROM pg_subscription WHERE subname = 'audit_log_s1'"),
	'0', 'unsubscribe: the subscription is gone');
is($central->safe_psql('postgres', "SELECT count(*) FROM audit_log.events WHERE source = 's1'"),
	$n1, 'unsubscribe: the events stay');
($rc, $out, $err) = $central->psql('postgres', "SELECT audit_log.unsubscribe('s2')");
like($err, qr/WARNING:  the replication slot "audit_log_s2" was left on the source/,
	'unsubscribe of an unreachable source: says it left the slot');
is(central_left(), '0/1', 'only the feed is left');
($rc, $out, $err) = $central->psql('postgres', "SELECT audit_log.subscribe('s1', '$c1')");
like($err, qr/events of source "s1" are already stored here/, 'subscribe again with history: refused');

# 8. A name keeps its kind: once unsubscribed, a source's name is no feed's
# (an admin would store events that read as the source's), and a feed's
# name is no source's.  Each step is in the central's own trail.
is($central->safe_psql('postgres', "SELECT state FROM audit_log.sources WHERE source = 's1'"),
	'unsubscribed', 'sources: s1 is listed as unsubscribed, its events under its name');
($rc, $out, $err) = $central->psql('postgres',
	q{SELECT audit_log.ingest('s1', '[{"event_type": "app.payment_approved", "db_user": "postgres"}]')});
like($err, qr/source "s1" is a subscription/, 'ingest under an unsubscribed source\'s name: refused');
($rc, $out, $err) = $central->psql('postgres', "SELECT audit_log.subscribe('idp', '$c1', copy_history => false)");
like($err, qr/source "idp" is an ingested feed/, 'subscribe under a feed\'s name: refused');
is($central->safe_psql('postgres', q{
	SELECT string_agg(event_type || ':' || object_name, ',' ORDER BY event_type, object_name)
	  FROM audit_log.events WHERE source IS NULL
	   AND event_type IN ('audit.source_subscribed', 'audit.source_unsubscribed')}),
	'audit.source_subscribed:s1,audit.source_subscribed:s2,audit.source_unsubscribed:s1,audit.source_unsubscribed:s2',
	'subscribe() and unsubscribe() are recorded');
is($central->safe_psql('postgres', q{
	SELECT string_agg(object_name || ':' || (details->>'events'), ',') FROM audit_log.events
	 WHERE source IS NULL AND event_type = 'audit.ingested'}),
	'idp:1000', 'ingest() is recorded, with how many events it stored');

done_testing();
