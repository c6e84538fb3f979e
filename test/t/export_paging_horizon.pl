# Continuing "after the last event_id" never skips a transaction that commits
# late: session A updates an audited row and stays open, B commits a later
# event, a reader exports in pieces truncated at audit_log.export_max_rows
# and follows each HINT (or the last row of a piece that has none), A
# commits, the reader goes on: every event is read exactly once.  Also
# through export_csv(); a prepared transaction holds the horizon, across a
# restart too; without shared_preload_libraries the same holds; a standby
# refuses to page.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use AuditLogNode;

# The extension is created by setup_items() below, on each cluster.
my $node = audit_node('paging', init => { allows_streaming => 1 }, extension => 0, conf => qq{
max_prepared_transactions = 5
});

# An audited table whose rows exist before capture: only the updates below
# are events.
sub setup_items
{
	my ($n) = @_;
	$n->safe_psql('postgres', q{
		CREATE EXTENSION audit_log CASCADE;
		CREATE TABLE tap_items (id int PRIMARY KEY, v text);
		INSERT INTO tap_items SELECT i, 'start' FROM generate_series(1, 4) i;
		SELECT audit_log.enable('tap_items');
	});
	return $n->safe_psql('postgres', 'SELECT max(event_id) FROM audit_log.events');
}

# The committed events of tap_items after $mark, as "id:resource:v".
sub committed
{
	my ($n, $mark) = @_;
	return $n->safe_psql('postgres', qq{
		SELECT string_agg(event_id || ':' || resource_id || ':' || (new_data ->> 'v'), ',' ORDER BY event_id)
		  FROM audit_log.events
		 WHERE category = 'data' AND object_name = 'public.tap_items' AND event_id > $mark});
}

# One piece of an export capped at 2 rows, after $after: its rows
# ("id:resource:v"), its messages, and where to continue: the HINT's
# after_event_id, else the last row read, else $after.
sub piece
{
	my ($after) = @_;
	my ($out, $err) = ('', '');
	$node->psql('postgres', qq{
		SET audit_log.export_max_rows = 2;
		SELECT event_id || ':' || resource_id || ':' || (new_data::jsonb ->> 'v')
		  FROM audit_log.export(categories => '{data}', text_query => 'tap_items', after_event_id => $after)},
		stdout => \$out, stderr => \$err, on_error_die => 1);
	my @rows = grep { $_ ne '' } split /\n/, $out;
	my $next = $after;
	$next = (split /:/, $rows[-1])[0] if @rows;
	if ($err =~ /HINT:  Continue with after_event_id => (\d+)\./)
	{
		is($1, $next, "the HINT names the last event_id read ($next)");
		$next = $1;
	}
	return (\@rows, $err, $next);
}

my $mark = setup_items($node);
$node->safe_psql('postgres', q{UPDATE tap_items SET v = 'i1' WHERE id = 3});
$node->safe_psql('postgres', q{UPDATE tap_items SET v = 'i2' WHERE id = 4});

# A takes an event_id and stays open; B commits a later one.
my $a = $node->background_psql('postgres');
$a->query_safe('BEGIN');
$a->query_safe(q{UPDATE tap_items SET v = 'a' WHERE id = 1});
$node->safe_psql('postgres', q{UPDATE tap_items SET v = 'b' WHERE id = 2});

my @read;
my ($rows, $err, $after) = piece($mark);
is(join(',', map { (split /:/)[2] } @$rows), 'i1,i2', 'first piece: the two events below the open transaction');
like($err, qr/WARNING:  export truncated to 2 of 3 matching events/, 'truncated at the cap, with the WARNING');
push @read, @$rows;

($rows, $err, $after) = piece($after);
is(scalar(@$rows), 0, 'the continuation stops below the open transaction: b is held back');
like($err, qr/NOTICE:  export stopped below a transaction still in progress; more events match/,
	'and says so');
push @read, @$rows;

$a->query_safe('COMMIT');
$a->quit;

($rows, $err, $after) = piece($after);
is(join(',', map { (split /:/)[2] } @$rows), 'a,b', 'after the commit the continuation returns a, then b');
push @read, @$rows;
($rows, $err, $after) = piece($after);
is(scalar(@$rows), 0, 'then nothing');

my %id = map { (split /:/)[2] => (split /:/)[0] } @read;
ok($id{a} < $id{b}, 'a took its event_id before b and committed after it');
is(join(',', @read), committed($node, $mark), 'every committed event was read exactly once, in event_id order');

# export_csv(): the same continuation through a server file.
my $csv = $node->basedir . '/piece.csv';
$a = $node->background_psql('postgres');
$a->query_safe('BEGIN');
$a->query_safe(q{UPDATE tap_items SET v = 'a2' WHERE id = 1});
$node->safe_psql('postgres', q{UPDATE tap_items SET v = 'b2' WHERE id = 2});
my ($out, $csverr) = ('', '');
$node->psql('postgres',
	qq{SELECT audit_log.export_csv('$csv', categories => '{data}', text_query => 'tap_items', after_event_id => $after)},
	stdout => \$out, stderr => \$csverr, on_error_die => 1);
is($out, '0', 'export_csv writes nothing while a2 is open');
like($csverr, qr/HINT:  Continue with after_event_id => $after\./, 'and its HINT says to continue from the same point');
$a->query_safe('COMMIT');
$a->quit;
is($node->safe_psql('postgres',
	qq{SELECT audit_log.export_csv('$csv', categories => '{data}', text_query => 'tap_items', after_event_id => $after)}),
	'2', 'after the commit export_csv writes a2 and b2');
like(slurp_file($csv), qr/a2.*\n.*b2/s, 'in event_id order');

# A prepared transaction holds the horizon, also across a restart.
sub page
{
	my ($n, $after) = @_;
	return $n->safe_psql('postgres', qq{
		SELECT coalesce(string_agg(resource_id || ':' || (new_data ->> 'v'), ',' ORDER BY event_id), '')
		  FROM audit_log.search(categories => '{data}', text_query => 'tap_items', after_event_id => $after, max_rows => 10)});
}
$mark = $node->safe_psql('postgres', 'SELECT max(event_id) FROM audit_log.events');
$node->safe_psql('postgres', q{BEGIN; UPDATE tap_items SET v = 'p' WHERE id = 1; PREPARE TRANSACTION 'tap_p'});
$node->safe_psql('postgres', q{UPDATE tap_items SET v = 'after p' WHERE id = 2});
is(page($node, $mark), '', 'a page stops below a prepared transaction');
$node->restart;
is(page($node, $mark), '', 'also after a restart');
$node->safe_psql('postgres', q{COMMIT PREPARED 'tap_p'});
is(page($node, $mark), '1:p,2:after p', 'after COMMIT PREPARED the page returns both');

# A standby cannot see the primary's writers: paging there is refused.
$node->backup('b');
my $standby = PostgreSQL::Test::Cluster->new('paging_standby');
$standby->init_from_backup($node, 'b', has_streaming => 1);
$standby->start;
$node->wait_for_catchup($standby);
my ($ret, $sout, $serr) = $standby->psql('postgres', 'SELECT count(*) FROM audit_log.search(max_rows => 1)');
like($serr, qr/cannot page through audit events during recovery/, 'a standby refuses to page');
ok($standby->safe_psql('postgres', q{SELECT count(*) FROM audit_log.search(text_query => 'tap_items')}) > 0,
	'and searches without paging');
$standby->stop;

# Without shared_preload_libraries: the same interleaving.
my $plain = audit_node('paging_nopreload', preload => 0);
$mark = setup_items($plain);
$a = $plain->background_psql('postgres');
$a->query_safe('BEGIN');
$a->query_safe(q{UPDATE tap_items SET v = 'a' WHERE id = 1});
$plain->safe_psql('postgres', q{UPDATE tap_items SET v = 'b' WHERE id = 2});
is(page($plain, $mark), '', 'without the preload a page stops below the open transaction');
$a->query_safe('COMMIT');
$a->quit;
is(page($plain, $mark), '1:a,2:b', 'and returns both after its commit');
$plain->stop;

$node->stop;
done_testing();
