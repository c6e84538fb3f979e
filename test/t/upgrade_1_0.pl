# Upgrade from the released 1.0: a database with events of every kind, seals,
# policies, holds and audited tables is updated with ALTER EXTENSION audit_log
# UPDATE.  Nothing is lost, verify() still says ok, capture goes on, and the
# schema of the extension equals that of a fresh install of the new version.
# The new library also serves the database while it is still on 1.0.
use strict;
use warnings;
use PostgreSQL::Test::Utils;
use Test::More;
use AuditLogNode;

# The extension is created at version 1.0 below.
my $node = audit_node('upgrade', extension => 0);
# (the role of the attacks on the scripts, below)
$node->safe_psql('postgres', 'CREATE ROLE planter');

my $db = 'postgres';
my $default_version = $node->safe_psql($db,
	"SELECT default_version FROM pg_available_extensions WHERE name = 'audit_log'");

$node->safe_psql($db, "CREATE EXTENSION audit_log VERSION '1.0' CASCADE");
is($node->safe_psql($db, "SELECT extversion FROM pg_extension WHERE extname = 'audit_log'"),
	'1.0', 'installed at 1.0');

# Events of every kind on 1.0, served by the new library.
$node->safe_psql($db, q{
	CREATE SCHEMA app;
	CREATE TABLE app.users (id int PRIMARY KEY, email text, password_hash text);
	CREATE TABLE app.keys (id int PRIMARY KEY, owner int, scope text) PARTITION BY RANGE (id);
	CREATE TABLE app.keys_1 PARTITION OF app.keys FOR VALUES FROM (0) TO (1000);
	SELECT audit_log.enable('app.users', 'privilege',
		event_types => '{"INSERT": "user.created"}', mask_columns => '{password_hash}');
	SELECT audit_log.enable('app.keys', 'privilege');
	INSERT INTO app.users VALUES (1, 'a@example.com', 'x'), (2, 'b@example.com', 'y');
	UPDATE app.users SET password_hash = 'z' WHERE id = 1;
	DELETE FROM app.users WHERE id = 2;
	INSERT INTO app.keys VALUES (1, 1, 'read');
	-- a sub-partitioned partition created after enable(): 1.0 left it
	-- without capture (the new library, on the 1.0 SQL, does as 1.0 did)
	CREATE TABLE app.keys_2 PARTITION OF app.keys FOR VALUES FROM (1000) TO (2000) PARTITION BY RANGE (id);
	CREATE TABLE app.keys_2a PARTITION OF app.keys_2 FOR VALUES FROM (1000) TO (2000);
	CREATE ROLE upg_alice LOGIN PASSWORD 'secret1';
	ALTER ROLE upg_alice PASSWORD 'secret2';
	GRANT SELECT ON app.users TO upg_alice;
	CREATE TABLE app.other (id int);
	CREATE TABLE app.notes (id int PRIMARY KEY, body text);
	SELECT audit_log.enable('app.notes');
	INSERT INTO app.notes VALUES (1, 'n');
	TRUNCATE app.notes;
	ALTER ROLE upg_alice SET work_mem = '8MB';
	REVOKE SELECT ON app.users FROM upg_alice;
	SELECT audit_log.log('app.key_rotated', object_type => 'api_key', resource_id => '1');
	-- An application takes, on 1.0, codes that 1.1 reserves for itself.  The
	-- library installed here is 1.1's, whose log() refuses every audit.*
	-- code even before the update: what 1.0's log() left for those two is
	-- made by hand.
	INSERT INTO audit_log.event_type_catalog (event_type, category, description, builtin)
	VALUES ('audit.alert_raised', 'audit', 'Application event', false),
	       ('audit.reviewed', 'audit', 'Application event', false);
	SELECT audit_log._record('audit', 'audit.alert_raised', 'success', NULL, NULL, 'SELECT', NULL, NULL);
	SELECT audit_log._record('audit', 'audit.reviewed', 'success', NULL, NULL, 'SELECT', NULL, NULL);
	SELECT audit_log.log('ddl.create_operator_family');
	SELECT audit_log.set_retention('short', '30 days', '{auth}');
	SELECT audit_log.hold('case-1', now() - interval '1 day', now() + interval '1 day', 'legal');
});
# A failed command and a login travel through the worker.
$node->psql($db, 'SET ROLE upg_alice; CREATE ROLE upg_nope;');
set_hba($node,
	'local all upg_alice password',
	'local all all trust');
$node->connect_fails($node->connstr($db) . ' user=upg_alice password=wrong', 'a failed login',
	expected_stderr => qr/password authentication failed/);
$node->poll_query_until($db, q{
	SELECT count(*) > 0 FROM audit_log.events WHERE status = 'failure'})
  or die 'the worker wrote no failure';
$node->poll_query_until($db, q{
	SELECT count(*) > 0 FROM audit_log.events WHERE event_type = 'auth.login_failed'})
  or die 'the worker wrote no failed login';
is($node->safe_psql($db, q{SELECT string_agg(DISTINCT category, ',' ORDER BY category) FROM audit_log.events}),
	'app,audit,auth,config,data,ddl,privilege,role', 'events of every category on 1.0');

# Events of closed windows (the 12 hours before the last full hour), sealed.
$node->safe_psql($db, q{
	SELECT count(audit_log._record_at(date_trunc('hour', now()) - make_interval(hours => h + 1, mins => m),
	                                  'app', 'app.test', 'h' || h, jsonb_build_object('n', h * 1.5, 'txt', 'é€')))
	  FROM generate_series(1, 12) h, generate_series(0, 50, 10) m;
});
cmp_ok($node->safe_psql($db, 'SELECT audit_log.seal()'), '>=', 12, 'seal() on 1.0');

# Everything up to the event id $upto (later events are new logins).
sub snapshot_sql
{
	my ($upto) = @_;
	return qq{
	SELECT (SELECT count(*) FROM audit_log.events WHERE event_id <= $upto) || '/' ||
	       (SELECT md5(string_agg(event_id || event_type || coalesce(old_data::text, '') ||
	                              coalesce(new_data::text, ''), ',' ORDER BY event_id))
	          FROM audit_log.events WHERE event_id <= $upto) || '/' ||
	       (SELECT count(*) FROM audit_log.seals) || '/' ||
	       (SELECT string_agg(policy || ':' || keep, ',' ORDER BY policy) FROM audit_log.retention_policies) || '/' ||
	       (SELECT string_agg(name, ',' ORDER BY name) FROM audit_log.legal_holds) || '/' ||
	       (SELECT string_agg(table_name || ':' || category, ',' ORDER BY table_name)
	          FROM audit_log.audited_tables)};
}
my $verify_sql = q{SELECT string_agg(DISTINCT status, ',') FROM audit_log.verify()};
is($node->safe_psql($db, $verify_sql), 'ok', 'verify() says ok on 1.0');

# The new library serves 1.0 across a restart.
$node->restart;
$node->safe_psql($db, q{INSERT INTO app.users VALUES (3, 'c@example.com', 'w')});
is($node->safe_psql($db, q{
	SELECT count(*) FROM audit_log.events WHERE event_type = 'user.created' AND resource_id = '3'}),
	'1', 'capture works on 1.0 after a restart with the new library');
# On 1.0 the internal mark is _internal(true/false): a call failing inside
# an EXCEPTION block must not leave it on for the rest of the transaction.
$node->safe_psql($db, q{
	CREATE TABLE app.t2 (id int);
	CREATE FUNCTION app.noop() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NULL; END $$;
	CREATE CONSTRAINT TRIGGER audit_log_insert AFTER INSERT ON app.t2 FOR EACH ROW EXECUTE FUNCTION app.noop();
	CREATE TABLE app.t3 (id int);
	BEGIN;
	DO $$ BEGIN PERFORM audit_log.enable('app.t2'); EXCEPTION WHEN others THEN NULL; END $$;
	GRANT SELECT ON app.t3 TO PUBLIC;
	COMMIT;
});
is($node->safe_psql($db, q{
	SELECT count(*) FROM audit_log.events WHERE event_type = 'privilege.granted' AND object_name = 'app.t3'}),
	'1', 'on 1.0, a GRANT after a failed enable() in an EXCEPTION block is recorded');
# A mark set again inside a subtransaction that fails and is caught keeps
# the outer one (1.0's maintain() marks itself, then its per-day blocks):
# the caller goes on marked, its own writes are not refused as tampering.
my ($mrc, $mout, $merr) = $node->psql($db, q{
	BEGIN;
	SELECT audit_log._internal(true);
	DO $$ BEGIN PERFORM audit_log._internal(true); RAISE EXCEPTION 'day failed'; EXCEPTION WHEN others THEN NULL; END $$;
	DELETE FROM audit_log.events WHERE event_id < 0;
	SELECT audit_log._internal(false);
	ROLLBACK;
});
is($mrc, 0, 'on 1.0, a nested mark cleared by a caught error leaves the outer mark on');
my $upto = $node->safe_psql($db, 'SELECT max(event_id) FROM audit_log.events');
my $before = $node->safe_psql($db, snapshot_sql($upto));

# The attack on the update (and, below, on a fresh install): while an
# extension's script runs, PostgreSQL puts the schema of pgcrypto (public,
# by CASCADE) on its path.  A role that may write there plants functions and
# an operator with the exact types of calls the scripts make unqualified,
# where pg_catalog has no exact match; they make it a superuser if they ever
# run as one.
sub plant
{
	my ($dbname) = @_;
	$node->safe_psql($dbname, q{
		ALTER SCHEMA public OWNER TO planter;
		SET ROLE planter;
		CREATE FUNCTION public.escalate() RETURNS void LANGUAGE plpgsql AS $f$
		BEGIN IF current_setting('is_superuser') = 'on' THEN EXECUTE 'ALTER ROLE planter SUPERUSER'; END IF; END $f$;
		CREATE FUNCTION public.generate_series(date, date, interval) RETURNS SETOF date LANGUAGE plpgsql AS $f$
		BEGIN PERFORM public.escalate();
		      RETURN QUERY SELECT d::date FROM pg_catalog.generate_series($1::timestamp, $2::timestamp, $3) d; END $f$;
		CREATE FUNCTION public.contains(text[], text[]) RETURNS boolean LANGUAGE plpgsql AS $f$
		BEGIN PERFORM public.escalate(); RETURN pg_catalog.arraycontains($1, $2); END $f$;
		CREATE OPERATOR public.@> (LEFTARG = text[], RIGHTARG = text[], FUNCTION = public.contains);
		CREATE FUNCTION public.like_name(name, name) RETURNS boolean LANGUAGE plpgsql AS $f$
		BEGIN PERFORM public.escalate(); RETURN pg_catalog.textregexeq($1::text, $2::text); END $f$;
		CREATE OPERATOR public.~ (LEFTARG = name, RIGHTARG = name, FUNCTION = public.like_name);
		RESET ROLE;});
}
sub unplant
{
	my ($dbname) = @_;
	$node->safe_psql($dbname, q{
		DROP OPERATOR public.@> (text[], text[]); DROP OPERATOR public.~ (name, name);
		DROP FUNCTION public.contains(text[], text[]), public.like_name(name, name),
		    public.generate_series(date, date, interval), public.escalate();
		ALTER SCHEMA public OWNER TO pg_database_owner;});
}
plant($db);

$node->safe_psql($db, 'ALTER EXTENSION audit_log UPDATE');
is($node->safe_psql($db, "SELECT rolsuper FROM pg_roles WHERE rolname = 'planter'"), 'f',
	'the update ran none of the planted functions and operators');
unplant($db);
is($node->safe_psql($db, "SELECT extversion FROM pg_extension WHERE extname = 'audit_log'"),
	$default_version, "updated to $default_version");
is($node->safe_psql($db, snapshot_sql($upto)), $before,
	'every event, seal, policy, hold and audited table is kept');
is($node->safe_psql($db, $verify_sql), 'ok', 'verify() says ok after the update');
# Codes an application registered on 1.0 that 1.1 reserves did not stop the
# update; they are the extension's now, and log() may not use them again.
is($node->safe_psql($db, q{
	SELECT string_agg(event_type || ':' || category || ':' || builtin, ',' ORDER BY event_type)
	  FROM audit_log.event_type_catalog WHERE event_type IN ('audit.alert_raised', 'ddl.create_operator_family')}),
	'audit.alert_raised:audit:true,ddl.create_operator_family:ddl:true',
	'codes taken on 1.0 that 1.1 reserves are reserved after the update');
my ($lrc, $lout, $lerr) = $node->psql($db, "SELECT audit_log.log('audit.alert_raised')");
like($lerr, qr/event type "audit.alert_raised" is reserved for audit_log's own capture/,
	'and log() may not forge them any more');
($lrc, $lout, $lerr) = $node->psql($db, "SELECT audit_log.log('audit.reviewed')");
like($lerr, qr/event type "audit.reviewed" is reserved for audit_log's own capture/,
	'nor any other code of the audit category (1.0 took them)');
# The days the 1.0 install script created were extension members (maintain()
# could not drop them, pg_dump left out their rows): the update releases them.
is($node->safe_psql($db, q{
	SELECT count(*) FROM pg_depend d JOIN pg_class c ON c.oid = d.objid
	 WHERE d.classid = 'pg_class'::regclass AND d.refclassid = 'pg_extension'::regclass
	   AND d.deptype = 'e' AND c.relname ~ '^events_p'}),
	'0', 'no day partition is a member of the extension after the update');

# Capture goes on after the update, in the same session and in a new one.
$node->safe_psql($db, q{
	UPDATE app.users SET email = 'c2@example.com' WHERE id = 3;
	INSERT INTO app.keys VALUES (2, 3, 'write');
	CREATE ROLE upg_bob;
});
is($node->safe_psql($db, q{
	SELECT string_agg(event_type, ',' ORDER BY event_id) FROM audit_log.events
	 WHERE event_id > (SELECT max(event_id) FROM audit_log.events WHERE resource_id = '3'
	                     AND event_type = 'user.created')
	   AND event_type IN ('data.update', 'data.insert', 'role.created')}),
	'data.update,data.insert,role.created', 'capture goes on after the update');

# Sources (issue 13): the events of 1.0 get the source column, NULL (they
# were captured here), and so do the events captured after the update;
# export() and search() carry it.
is($node->safe_psql($db, qq{
	SELECT (count(*) > 100) || ':' || count(source) FROM audit_log.events WHERE event_id <= $upto}),
	'true:0', 'the events of 1.0 have the source column, NULL');
is($node->safe_psql($db, q{
	SELECT count(*) FILTER (WHERE source IS NOT NULL) || ':' || (count(*) > 0)
	  FROM audit_log.search(event_types => '{role.created}', sources => '{local}')}),
	'0:true', "search(sources => '{local}') finds the events captured here");
is($node->safe_psql($db, q{
	SELECT count(*) FROM audit_log.export(event_types => '{role.created}') WHERE source IS NULL}),
	$node->safe_psql($db, q{SELECT count(*) FROM audit_log.events WHERE event_type = 'role.created'}),
	'export() has the source column');

# The update gives the partitions 1.0 left out the capture of their tree;
# partitions created from now on get it at once.
$node->safe_psql($db, q{
	INSERT INTO app.keys_2 VALUES (1001, 1, 'a');
	INSERT INTO app.keys_2a VALUES (1002, 1, 'b');
	CREATE TABLE app.keys_3 PARTITION OF app.keys FOR VALUES FROM (2000) TO (3000);
	INSERT INTO app.keys_3 VALUES (2001, 1, 'c');
});
is($node->safe_psql($db, q{
	SELECT string_agg(resource_id || ':' || object_name || ':' || (details->>'partition'), ',' ORDER BY event_id)
	  FROM audit_log.events WHERE event_type = 'data.insert' AND resource_id IN ('1001', '1002', '2001')}),
	'1001:app.keys:app.keys_2,1002:app.keys:app.keys_2a,2001:app.keys:app.keys_3',
	'partitions created under 1.0 and after the update are captured');

# The partitions 1.0's CREATE EXTENSION made are data now, as in a fresh
# install: pg_dump keeps their rows.
my $members = q{SELECT count(*) FROM pg_class c
	  JOIN pg_depend d ON d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e'
	 WHERE c.relnamespace = 'audit_log'::regnamespace AND c.relkind IN ('r', 'p')
	   AND c.relname LIKE 'events\_%'};
cmp_ok($node->safe_psql($db, q{SELECT count(*) FROM pg_inherits WHERE inhparent = 'audit_log.events'::regclass}),
	'>=', 9, 'the updated database has its partitions');
is($node->safe_psql($db, $members), '0', 'none of them is a member of the extension any more');
# Their categories are recorded (leaf_categories), as their bounds say.
is($node->safe_psql($db, q{
	SELECT count(*) FILTER (WHERE k.leaf IS NULL) || ':' || (count(*) > 0)
	  FROM audit_log._leaves() l LEFT JOIN audit_log.leaf_categories k ON k.leaf = l.leaf_name
	 WHERE l.leaf <> l.day_oid}),
	'0:true', 'every leaf of the updated database has its categories recorded');
is($node->safe_psql($db, q{
	SELECT count(*) FROM audit_log._leaves() l
	 WHERE pg_get_expr((SELECT c.relpartbound FROM pg_class c WHERE c.oid = l.leaf), l.leaf) <> 'DEFAULT'
	   AND pg_get_expr((SELECT c.relpartbound FROM pg_class c WHERE c.oid = l.leaf), l.leaf)
	       <> 'FOR VALUES IN (' || (SELECT string_agg(quote_literal(x), ', ') FROM unnest(l.categories) x) || ')'}),
	'0', 'the categories recorded for each LIST leaf are those of its bound');

# The updated schema equals a fresh install's (extension members only).
$node->safe_psql($db, 'CREATE DATABASE fresh');
plant('fresh');
$node->safe_psql('fresh', 'CREATE EXTENSION audit_log CASCADE');
is($node->safe_psql('fresh', "SELECT rolsuper FROM pg_roles WHERE rolname = 'planter'"), 'f',
	'a fresh install ran none of the planted functions and operators');
# Nor does seal() (nor verify(), nor the writer's maintain()), whose SHA-256
# named pgcrypto's schema by its text: the owner of that schema renames it
# and plants a digest() of its own.
$node->safe_psql('fresh', q{
	GRANT CREATE ON DATABASE fresh TO planter;
	SET ROLE planter;
	ALTER SCHEMA public RENAME TO public_old;
	CREATE SCHEMA public;
	CREATE FUNCTION public.digest(bytea, text) RETURNS bytea LANGUAGE plpgsql AS $f$
	BEGIN PERFORM public_old.escalate(); RETURN pg_catalog.sha256($1); END $f$;
	RESET ROLE;
	SELECT audit_log._record_at(now() - interval '3 hours', 'app', 'app.sealed_soon');});
$node->safe_psql('fresh', 'SELECT audit_log.seal()');
$node->safe_psql('fresh', 'SELECT count(*) FROM audit_log.verify()');
is($node->safe_psql('fresh', "SELECT rolsuper FROM pg_roles WHERE rolname = 'planter'"), 'f',
	'seal() and verify() ran no planted digest()');
$node->safe_psql('fresh', q{
	DROP SCHEMA public CASCADE;
	ALTER SCHEMA public_old RENAME TO public;
	REVOKE CREATE ON DATABASE fresh FROM planter;});
unplant('fresh');

# schema_of(db): the extension's objects as pg_dump --schema-only prints them,
# one statement per entry, sorted.
sub schema_of
{
	my ($dbname) = @_;
	my ($out, $err);
	# --binary-upgrade: pg_dump leaves extension members out otherwise (and
	# --schema would leave out their ALTER EXTENSION ... ADD).
	IPC::Run::run [ 'pg_dump', '--schema-only', '--binary-upgrade', '--no-owner',
		'-d', $node->connstr($dbname) ], '>', \$out, '2>', \$err
	  or die "pg_dump failed: $err";
	# The entries of schema audit_log; partitions are data (one per day),
	# not schema.  OIDs differ between databases.
	my @entries = grep { /^-- Name: [^\n]*Schema: audit_log;/ && !/events_p\d{8}/ }
	  split /\n(?=-- Name: )/, $out;
	s/^(--|\\(un)?restrict |SELECT pg_catalog\.(binary_upgrade_set_|setval\()).*$//mg for @entries;
	s/^UPDATE pg_catalog\.pg_class\nSET relfrozenxid.*\nWHERE oid = .*$//mg for @entries;
	s/\n{2,}/\n/g for @entries;
	return join("\n", sort @entries);
}
my $updated = schema_of($db);
my $fresh = schema_of('fresh');
cmp_ok(scalar(() = $fresh =~ /ALTER EXTENSION audit_log ADD FUNCTION/g), '>', 30,
	'the dump lists the extension\'s functions');
is($updated, $fresh, 'pg_dump --schema-only of the updated extension equals a fresh install');
if ($updated ne $fresh)
{
	my ($u, $f) = ("$PostgreSQL::Test::Utils::tmp_check/updated.sql",
		"$PostgreSQL::Test::Utils::tmp_check/fresh.sql");
	PostgreSQL::Test::Utils::append_to_file($u, $updated);
	PostgreSQL::Test::Utils::append_to_file($f, $fresh);
	diag(`diff -u $f $u | head -100`);
}

done_testing();
