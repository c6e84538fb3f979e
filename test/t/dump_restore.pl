# Backups: pg_dump / pg_restore (custom format), pg_dump / psql (plain SQL)
# and pg_dumpall into a second cluster bring back every event with its id,
# every seal, policy, hold, audited table (with its triggers), the layout
# of the partitions and their indexes, with no error; verify() answers as
# on the source; new ids continue after the restored ones; capture works.
# The commands are exactly those of doc/backup.md.
#
# Also: who may fill the partitions (only the session restoring the
# extension it created, never on an existing trail, never to change or
# remove rows), a restore without audit_log.restore fails loudly, and while
# a restore runs in the audit database nothing else writes into it (the
# worker holds its queue; maintain() and seal() wait).
use strict;
use warnings;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;
use AuditLogNode;

my $conf = qq{
audit_log.log_connections = none
audit_log.maintenance_interval = 86400
};
my $src = audit_node('dump_src', conf => $conf);
my $db = 'postgres';

# ---------- a history of every kind ----------
$src->safe_psql($db, q{
	CREATE SCHEMA app;
	CREATE TABLE app.users (id int PRIMARY KEY, email text, password_hash text);
	CREATE TABLE app.keys (id int PRIMARY KEY, owner int, scope text) PARTITION BY RANGE (id);
	CREATE TABLE app.keys_1 PARTITION OF app.keys FOR VALUES FROM (0) TO (1000);
	SELECT audit_log.enable('app.users', 'privilege',
		event_types => '{"INSERT": "user.created"}', mask_columns => '{password_hash}');
	SELECT audit_log.enable('app.keys', 'privilege', exclude_columns => '{owner}');
	INSERT INTO app.users VALUES (1, 'a@example.com', 'x'), (2, 'b@example.com', 'y');
	UPDATE app.users SET password_hash = 'z', email = 'é€@example.com' WHERE id = 1;
	DELETE FROM app.users WHERE id = 2;
	INSERT INTO app.keys VALUES (1, 1, 'read');
	CREATE ROLE dump_alice LOGIN PASSWORD 'secret1';
	ALTER ROLE dump_alice PASSWORD 'secret2';
	GRANT SELECT ON app.users TO dump_alice;
	SELECT audit_log.log('app.key_rotated', object_type => 'api_key', resource_id => '1',
		details => '{"reason": "rotation", "ü": [1, 2.5, null]}');
	SELECT audit_log.set_retention('short', '30 days', '{auth}');
	SELECT audit_log.set_retention('long', '400 days', '{role,privilege}');
	SELECT audit_log.hold('case-1', now() - interval '1 day', now() + interval '1 day', 'legal');
	-- 100 days ago (expired: purged below) and the 12 hours before the
	-- last full hour (sealed below)
	SELECT count(audit_log._record_at(date_trunc('day', now()) - interval '100 days'
	                                  + make_interval(hours => h, mins => m), 'data', 'data.old', 'old' || h))
	  FROM generate_series(1, 3) h, generate_series(0, 50, 10) m;
	SELECT count(audit_log._record_at(date_trunc('hour', now()) - make_interval(hours => h + 1, mins => m),
	                                  'app', 'app.test', 'h' || h, jsonb_build_object('n', h * 1.5, 'txt', 'é€ "x"')))
	  FROM generate_series(1, 12) h, generate_series(0, 50, 10) m;
	SELECT count(audit_log._record_at(date_trunc('hour', now()) - make_interval(hours => h + 1),
	                                  'auth', 'auth.login_failed', 'h' || h))
	  FROM generate_series(1, 12) h;
});
# Alert rules: one of the user's, a built-in replaced, one dropped; an
# alert raised.
$src->safe_psql($db, q{
	SELECT audit_log.create_alert('key_rotation', group_by => 'resource_id', severity => 'low',
		event_types => '{app.key_rotated}');
	SELECT audit_log.create_alert('login_brute_force', threshold => 20, within => '10 minutes',
		group_by => 'client_addr', event_types => '{auth.login_failed}');
	SELECT audit_log.drop_alert('tamper_attempt');
	SELECT audit_log.log('app.key_rotated', object_type => 'api_key', resource_id => '9');
});
$src->poll_query_until($db, q{
	SELECT audit_log.check_alerts() >= 0
	   AND EXISTS (SELECT 1 FROM audit_log.alerts WHERE rule = 'key_rotation' AND group_value = '9')})
  or die 'no alert raised';
# A failed command travels through the worker.
$src->psql($db, 'SET ROLE dump_alice; CREATE ROLE dump_nope;');
wait_for_events($src, q{status = 'failure' AND object_name = 'dump_nope'}, 1, $db)
  or die 'the worker wrote no failure';
# Days ahead with one leaf per policy, the old day purged, windows sealed,
# the ended days indexed.
my $m = $src->safe_psql($db, q{
	SELECT string_agg(DISTINCT action, ',') FROM audit_log.maintain(now() + interval '8 days')});
is($m, 'created,indexed,moved,purged,sealed', "maintain() on the source: $m");
# One event altered behind the extension's back (verify() must say so after
# a restore too), and one no day covers: it stays in the safety net.
$src->safe_psql($db, q{
	BEGIN;
	SET LOCAL audit_log.internal = on;
	UPDATE audit_log.events SET details = details || '{"n": 0}'
	 WHERE event_id = (SELECT min(event_id) FROM audit_log.events WHERE object_name = 'h5');
	SET LOCAL audit_log.internal = off;
	COMMIT;
	SELECT audit_log._record_at(now() + interval '30 days', 'app', 'app.future', 'stray');
});

# ---------- what must come back ----------
my $max = $src->safe_psql($db, 'SELECT max(event_id) FROM audit_log.events');

sub snapshot
{
	my ($node, $dbname) = @_;
	my %q = (
		events => qq{SELECT count(*) || E'\\n' || string_agg(e::text, E'\\n' ORDER BY e.event_id)
		               FROM audit_log.events e WHERE e.event_id <= $max},
		verify => q{SELECT string_agg(concat_ws('|', window_start, window_end, status, events, detail),
		                              E'\n' ORDER BY window_start) FROM audit_log.verify()},
		seals => q{SELECT string_agg(s::text, E'\n' ORDER BY window_start) FROM audit_log.seal s},
		chain_head => q{SELECT concat_ws('|', window_end, digest) FROM audit_log.chain_head()},
		partitions => qq{SELECT string_agg(concat_ws('|', partition, range, policy, expires, sealed, held,
		                                             categories, day,
		                                             (SELECT count(*) FROM audit_log.events e
		                                               WHERE e.tableoid = p.partition::regclass AND e.event_id <= $max)),
		                                   E'\n' ORDER BY partition)
		                   FROM audit_log.partitions p},
		tree => q{SELECT string_agg(concat_ws(' ', c.relname, p.relname, pg_get_expr(c.relpartbound, c.oid),
		                                      c.relkind, c.relacl), E'\n' ORDER BY c.relname)
		            FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid JOIN pg_class p ON p.oid = i.inhparent
		           WHERE p.relnamespace = 'audit_log'::regnamespace},
		indexes => q{SELECT string_agg(indexname || ' ' || indexdef, E'\n' ORDER BY indexname)
		               FROM pg_indexes WHERE schemaname = 'audit_log'},
		members => q{SELECT string_agg(c.relname, ',' ORDER BY c.relname) FROM pg_class c
		              JOIN pg_depend d ON d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e'
		             WHERE c.relnamespace = 'audit_log'::regnamespace},
		policies => q{SELECT string_agg(r::text, E'\n' ORDER BY policy) FROM audit_log.retention_policy r},
		holds => q{SELECT string_agg(h::text, E'\n' ORDER BY name) FROM audit_log.legal_hold h},
		purges => q{SELECT string_agg(p::text, E'\n' ORDER BY partition) FROM audit_log.purge_log p},
		leaves => q{SELECT string_agg(k::text, E'\n' ORDER BY leaf) FROM audit_log.leaf_categories k},
		audited => q{SELECT string_agg(t::text, E'\n' ORDER BY relid::text) FROM audit_log.table_config t},
		catalog => q{SELECT string_agg(c::text, E'\n' ORDER BY event_type) FROM audit_log.event_type_catalog c},
		triggers => q{SELECT string_agg(pg_get_triggerdef(t.oid) || ' ' || t.tgenabled::text, E'\n'
		                                ORDER BY t.tgrelid::regclass::text, t.tgname)
		                FROM pg_trigger t WHERE NOT t.tgisinternal AND t.tgname LIKE 'audit_log%'},
		app => q{SELECT string_agg(u::text, ',' ORDER BY id) FROM app.users u},
		rules => q{SELECT string_agg(concat_ws(' ', name, threshold, within, group_by, severity, event_types,
		                                       builtin, changed_at, changed_by), E'\n' ORDER BY name)
		             FROM audit_log.alert_rule},
		alerts => q{SELECT string_agg(a::text, E'\n' ORDER BY alert_id) FROM audit_log.alerts a},
	);
	my %s;
	$s{$_} = $node->safe_psql($dbname, "SET TimeZone = 'UTC'; $q{$_}") for keys %q;
	return \%s;
}
my $want = snapshot($src, $db);
like($want->{verify}, qr/\|purged\|/, 'the source has purged windows');
like($want->{verify}, qr/\|mismatch\|\d+\|event \d+ altered/, 'and a window with an altered event');
like($want->{partitions}, qr/events_p(\d{8})_long\|.*\n.*events_p\1_short\|/, 'and days with a leaf per policy');
like($want->{indexes}, qr/_keys_idx/, 'and search indexes');
like($want->{events}, qr/app\.future/, 'and an event in the safety net');
like($want->{rules}, qr/^key_rotation .*\nlogin_brute_force 20 .* f /m, 'and alert rules of the user, a built-in replaced');
unlike($want->{rules}, qr/tamper_attempt/, 'and a built-in dropped');
like($want->{alerts}, qr/key_rotation/, 'and an alert raised');

sub compare
{
	my ($node, $dbname, $what) = @_;
	my $got = snapshot($node, $dbname);
	for my $k (sort keys %$want)
	{
		is($got->{$k}, $want->{$k}, "$what: $k as on the source");
	}
}

# run(node, env, command...): exit code, stdout, stderr.
sub run
{
	my ($node, $env, @cmd) = @_;
	local %ENV = %ENV;
	$ENV{PGHOST} = $node->host;
	$ENV{PGPORT} = $node->port;
	$ENV{$_} = $env->{$_} for keys %$env;
	my ($out, $err) = ('', '');
	IPC::Run::run(\@cmd, '>', \$out, '2>', \$err);
	return ($? >> 8, $out, $err);
}
my %restore = (PGOPTIONS => '-c audit_log.restore=on');
my $dir = PostgreSQL::Test::Utils::tempdir;

# After a restore: maintain() records it, new ids continue, capture works.
sub after_restore
{
	my ($node, $dbname, $what) = @_;
	my ($rc, $out, $err) = run($node, {}, 'psql', '-X', '-At', '-d', $dbname, '-c',
		'SELECT * FROM audit_log.maintain()');
	like($out, qr/^restored\|audit_log\.events\|\d+ events \(ids \d+ to \d+\), \d+ seals, restored by /,
		"$what: the first maintain() records the restore");
	my $ev = $node->safe_psql($dbname, q{
		SELECT event_id || ' ' || (details->>'last_event_id') || ' ' || (details->>'events')
		  FROM audit_log.events WHERE event_type = 'audit.restored'});
	my ($id, $last, $n) = split / /, $ev;
	ok($id > $last && $last >= $max, "$what: audit.restored ($id) comes after the restored ids");
	is($n, $node->safe_psql($dbname, "SELECT count(*) FROM audit_log.events WHERE event_id < $id"),
		"$what: audit.restored counts the events before it");
	# The restored events are history: the alert passes start after them
	# (before, the first pass read the whole restored trail as new), and a
	# new alert is numbered after the restored ones.
	is($node->safe_psql($dbname, "SELECT hwm >= $last AND settled >= $last AND holes = '{}' FROM audit_log.alert_state"),
		't', "$what: the alert passes start after the restored events");
	my $alerts = $node->safe_psql($dbname, 'SELECT count(*) || \' \' || max(alert_id) FROM audit_log.alerts');
	my ($nalerts, $maxalert) = split / /, $alerts;
	$node->safe_psql($dbname, q{SELECT audit_log.log('app.key_rotated', object_type => 'api_key', resource_id => '77')});
	$node->poll_query_until($dbname, q{
		SELECT audit_log.check_alerts() >= 0
		   AND EXISTS (SELECT 1 FROM audit_log.alerts WHERE rule = 'key_rotation' AND group_value = '77')})
	  or die "$what: no alert after the restore";
	is($node->safe_psql($dbname, "SELECT count(*) || ' ' || bool_and(alert_id > $maxalert) FROM audit_log.alerts WHERE alert_id > $maxalert OR group_value = '77'"),
		'1 true', "$what: one new alert, for the new event only, numbered after the restored ones");
	is($node->safe_psql($dbname, 'SELECT count(*) FROM audit_log.alerts'), $nalerts + 1,
		"$what: the restored events raised nothing again");
	my $new = $node->safe_psql($dbname, q{SELECT audit_log.log('app.after_restore')});
	ok($new > $id, "$what: new event ids continue ($new)");
	$node->safe_psql($dbname, q{INSERT INTO app.users VALUES (7, 'g@example.com', 'secret')});
	is($node->safe_psql($dbname, q{
		SELECT count(*) FROM audit_log.events WHERE event_type = 'user.created' AND resource_id = '7'
		   AND event_id > } . $new . q{ AND new_data->>'password_hash' IS DISTINCT FROM 'secret'}),
		'1', "$what: capture works, with its mask");
	is($node->safe_psql($dbname, q{
		SELECT count(*) FROM (SELECT event_id FROM audit_log.events GROUP BY 1 HAVING count(*) > 1) d}),
		'0', "$what: no event id twice");
	is($node->safe_psql($dbname, 'SELECT count(*) FROM audit_log.restore_state'), '0',
		"$what: the restore is closed");
}

# ---------- pg_dumpall into a second cluster (first: the source holds
# only its own database then) ----------
my ($rc, $out, $err) = run($src, {}, 'pg_dumpall', '-f', "$dir/all.sql");
is($rc, 0, 'pg_dumpall') or diag($err);
my $dst = audit_node('dump_dst', conf => $conf, extension => 0);
($rc, $out, $err) = run($dst, \%restore, 'psql', '-X', '-q', '-d', 'postgres', '-f', "$dir/all.sql");
is($rc, 0, 'pg_dumpall: psql -f');
my $boot = $dst->safe_psql('postgres', 'SELECT current_user');
my @errors = grep { /ERROR/ } split /\n/, $err;
ok(@errors == 1 && $errors[0] =~ /ERROR:  role "\Q$boot\E" already exists$/,
	'pg_dumpall: the only error is PostgreSQL\'s own, for the bootstrap role') or diag($err);
compare($dst, 'postgres', 'pg_dumpall');
after_restore($dst, 'postgres', 'pg_dumpall');

# ---------- pg_dump -Fc, pg_restore ----------
($rc, $out, $err) = run($src, {}, 'pg_dump', '-Fc', '-f', "$dir/db.dump", $db);
is($rc, 0, 'pg_dump -Fc') or diag($err);
run($src, {}, 'createdb', 'restored_custom');
($rc, $out, $err) = run($src, \%restore, 'pg_restore', '-d', 'restored_custom', "$dir/db.dump");
is($rc, 0, 'pg_restore exits with 0');
is($err, '', 'pg_restore prints no error');
compare($src, 'restored_custom', 'pg_restore');
after_restore($src, 'restored_custom', 'pg_restore');

# ---------- pg_dump (plain SQL), psql ----------
($rc, $out, $err) = run($src, {}, 'pg_dump', '-f', "$dir/db.sql", $db);
is($rc, 0, 'pg_dump (plain)') or diag($err);
run($src, {}, 'createdb', 'restored_plain');
($rc, $out, $err) = run($src, \%restore, 'psql', '-X', '-q', '-v', 'ON_ERROR_STOP=1',
	'-d', 'restored_plain', '-f', "$dir/db.sql");
is($rc, 0, 'psql -f of the plain dump exits with 0');
is($err, '', 'psql prints no error');
compare($src, 'restored_plain', 'plain dump');
after_restore($src, 'restored_plain', 'plain dump');

# ---------- into a cluster without the preload (no hooks, no worker) ----------
my $bare = audit_node('dump_bare', preload => 0);
($rc, $out, $err) = run($src, {}, 'pg_dumpall', '--roles-only', '-f', "$dir/roles.sql");
is($rc, 0, 'pg_dumpall --roles-only') or diag($err);
run($bare, {}, 'psql', '-X', '-q', '-d', 'postgres', '-f', "$dir/roles.sql");
run($bare, {}, 'createdb', 'restored_bare');
($rc, $out, $err) = run($bare, \%restore, 'pg_restore', '-d', 'restored_bare', "$dir/db.dump");
is($rc, 0, 'without the preload: pg_restore exits with 0');
unlike($err, qr/error/i, 'without the preload: pg_restore prints no error') or diag($err);
compare($bare, 'restored_bare', 'without the preload');
after_restore($bare, 'restored_bare', 'without the preload');
$bare->stop;

# ---------- a dump without leaf_categories (made before it existed) ----------
# The first maintain() records the leaves' categories from their bounds.
($rc, $out, $err) = run($src, {}, 'pg_restore', '-l', "$dir/db.dump");
is($rc, 0, 'pg_restore -l') or diag($err);
my @list = grep { !/TABLE DATA audit_log leaf_categories / } split /\n/, $out;
ok(@list < scalar(split /\n/, $out), 'the dump has the data of leaf_categories');
PostgreSQL::Test::Utils::append_to_file("$dir/no_leaves.list", join("\n", @list) . "\n");
run($src, {}, 'createdb', 'restored_no_leaves');
($rc, $out, $err) = run($src, \%restore, 'pg_restore', '-L', "$dir/no_leaves.list",
	'-d', 'restored_no_leaves', "$dir/db.dump");
is($rc, 0, 'without leaf_categories: pg_restore exits with 0') or diag($err);
is($src->safe_psql('restored_no_leaves', 'SELECT count(*) FROM audit_log.leaf_categories'), '0',
	'without leaf_categories: no leaf recorded before the restore is closed');
after_restore($src, 'restored_no_leaves', 'without leaf_categories');
# (maintain() may have created days ahead the source did not have yet)
my $got = snapshot($src, 'restored_no_leaves');
my %on_source = map { /^\((events_p\d{8}\w*),/ ? ($1 => 1) : () } split /\n/, $want->{leaves};
is(join("\n", grep { /^\((events_p\d{8}\w*),/ && $on_source{$1} } split /\n/, $got->{leaves}),
	$want->{leaves}, 'without leaf_categories: the categories of every leaf as on the source');
is($got->{purges}, $want->{purges}, 'without leaf_categories: purges as on the source');

# ---------- the restoring session closes its own restore ----------
($rc, $out, $err) = run($src, {}, 'pg_restore', '-f', "$dir/script.sql", "$dir/db.dump");
is($rc, 0, 'pg_restore -f (a script)') or diag($err);
run($src, {}, 'createdb', 'restored_self');
my $self = do { local $ENV{PGOPTIONS} = '-c audit_log.restore=on'; $src->background_psql('restored_self') };
$self->query_safe("\\i $dir/script.sql");
is($self->query_safe('SELECT audit_log._restoring()'), 't', 'the session restores');
compare($src, 'restored_self', 'restore closed by its own session');
like($self->query_safe('SELECT action FROM audit_log.maintain() LIMIT 1'), qr/^restored$/,
	'its own maintain() closes the restore');
is($self->query_safe('SELECT audit_log._restoring()'), 'f', 'and ends its restore mode');
$self->query_safe('CREATE TABLE app.after_restore (id int)');
is($self->query_safe(q{SELECT count(*) FROM audit_log.events WHERE event_type = 'ddl.create_table'
                         AND object_name = 'app.after_restore'}), '1', 'so its DDL is captured again');
$self->quit;

# ---------- without audit_log.restore: refused, loudly ----------
run($src, {}, 'createdb', 'restored_noflag');
($rc, $out, $err) = run($src, {}, 'pg_restore', '-d', 'restored_noflag', "$dir/db.dump");
isnt($rc, 0, 'pg_restore without audit_log.restore fails');
like($err, qr/COPY FROM on audit table audit_log\.events_p\d{8}_\w+ is not allowed.*\n.*\n.*audit_log\.restore = on/,
	'its errors say how to restore');

# ---------- restore mode is no bypass ----------
# A superuser session with audit_log.restore = on in a database with a
# history: the guard refuses as for anybody.
my $today = $src->safe_psql($db, q{SELECT 'audit_log.events_p' || to_char(now() AT TIME ZONE 'UTC', 'YYYYMMDD') || '_default'});
my $before = $src->safe_psql($db, q{SELECT count(*) FROM audit_log.events WHERE event_type = 'audit.tamper_attempt'});
for my $sql (
	"COPY $today FROM STDIN",
	"INSERT INTO $today (event_id, occurred_at, category, event_type, status) VALUES (-1, now(), 'app', 'app.forged', 'success')",
	"ALTER TABLE audit_log.events DETACH PARTITION $today",
	q{CREATE TABLE audit_log.events_p20000101 (LIKE audit_log.events);
	  ALTER TABLE audit_log.events ATTACH PARTITION audit_log.events_p20000101 FOR VALUES FROM ('2000-01-01') TO ('2000-01-02')})
{
	($rc, $out, $err) = run($src, \%restore, 'psql', '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-d', $db, '-c', $sql);
	like($err, qr/ERROR:  .* on audit table audit_log\.events\S* is not allowed/,
		"audit_log.restore on an existing trail: refused: $sql");
}
($rc, $out, $err) = run($src, {}, 'psql', '-X', '-q', '-d', $db, '-c', 'ALTER SYSTEM SET audit_log.restore = on');
like($err, qr/ERROR:  audit_log.restore can only be set by the restoring session/,
	'audit_log.restore cannot be a server default');
is($src->safe_psql($db, 'SELECT audit_log._restore_begin()'), 'f',
	'_restore_begin() outside CREATE EXTENSION begins nothing');
wait_for_events($src, q{event_type = 'audit.tamper_attempt'}, $before + 4, $db)
  or die 'the refused attempts were not recorded';
pass('each refused attempt is recorded as audit.tamper_attempt');

# ---------- a restore in progress in the audit database ----------
# The second cluster's audit database becomes "held"; the dump is restored
# there section by section in one session, which stays open.
$dst->safe_psql('postgres', q{CREATE DATABASE held});
$dst->safe_psql('postgres', q{ALTER SYSTEM SET audit_log.database = 'held'; SELECT pg_reload_conf()});
for my $section ('pre-data', 'data', 'post-data')
{
	($rc, $out, $err) = run($src, {}, 'pg_restore', "--section=$section", '-f', "$dir/$section.sql", "$dir/db.dump");
	is($rc, 0, "pg_restore --section=$section -f") or diag($err);
}
my $held = do { local $ENV{PGOPTIONS} = '-c audit_log.restore=on'; $dst->background_psql('held', on_error_stop => 0) };
$held->query_safe("\\i $dir/pre-data.sql");
# The partitions exist, the history is not there yet: an event queued now
# (a failed command) must wait, or its id would be one of the restored ids.
# The restore's CREATE EXTENSION brought the database its writer, which takes
# nothing while the restoring session works.
$dst->poll_query_until('postgres', q{
	SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'audit_log worker' AND datname = 'held'})
  or die 'no writer for the database "held"';
ok($dst->poll_query_until('postgres', q{
	SELECT w->>'state' = 'held by a restore' FROM audit_log.status, jsonb_array_elements(writers) w
	 WHERE w->>'database' = 'held'}), 'audit_log.status: the writer is held by the restore');
my $held_log = -s $dst->logfile;
$dst->psql('postgres', 'SET ROLE dump_alice; CREATE ROLE held_nope;');
$dst->poll_query_until('held', q{SELECT queue_depth > 0 FROM audit_log.status})
  or die 'the event was not queued';
# A restore may take hours: an event waiting for a held writer is in the
# server log at once, as when no writer runs (a stop or crash meanwhile
# would lose the queue).
ok($dst->wait_for_log(qr/audit_log event: \{[^\n]*"held_nope"[^\n]*"reason":"no writer running: queued until one stores it"/,
	$held_log), 'the event waiting for the held writer is in the server log');
is($dst->safe_psql('held', 'SELECT * FROM audit_log.maintain()'),
	'skipped|maintain|a dump is being restored into this database by another session',
	'maintain() waits for the restore');
is($dst->safe_psql('held', 'SELECT audit_log.seal()'), '0', 'seal() seals nothing meanwhile');
$held->query_safe("\\i $dir/data.sql");
$held->query_safe("\\i $dir/post-data.sql");
# Even the restoring session may not change or remove rows.
for my $sql ("DELETE FROM $today", "UPDATE $today SET actor = 'x'", "TRUNCATE $today", "DROP TABLE $today",
	"GRANT INSERT ON $today TO PUBLIC")
{
	my ($o, $failed) = $held->query($sql);
	ok($failed, "the restoring session cannot run: $sql");
}
$held->quit;
wait_for_events($dst, q{status = 'failure' AND object_name = 'held_nope'}, 1, 'held')
  or die 'the held event was never written';
compare($dst, 'held', 'restore held in the audit database');
ok($dst->safe_psql('held', q{
	SELECT event_id FROM audit_log.events WHERE status = 'failure' AND object_name = 'held_nope'}) > $max,
	'the event held during the restore got an id after the restored ones');
after_restore($dst, 'held', 'held restore');

$src->stop;
$dst->stop;
done_testing();
