# event_id survives a crash: after an immediate shutdown (no checkpoint, WAL
# buffers lost) no id handed out before the crash is handed out again, also
# ids that only transactions still open at the crash had seen (returned by
# audit_log.log()), whether taken one at a time or by a bulk statement; ids
# taken after the restart, by backends and by the worker, are all greater.
#
# Until the crash, the WAL writer is slowed down, autovacuum is off, logins
# are not recorded (the worker would commit them) and nobody connects while
# the transactions are open, so that nothing but the allocator itself makes
# the WAL of the open transactions durable.
#
# Then, at wal_level = minimal, the ids committed right after CREATE
# EXTENSION (whose commit makes the new sequence durable without a record
# of it) are not handed out again after a crash either.
use strict;
use warnings;
use PostgreSQL::Test::Utils;
use Test::More;
use AuditLogNode;

my $node = audit_node('ids_crash', conf => qq{
audit_log.maintenance_interval = 3600
audit_log.log_connections = 'none'
autovacuum = off
wal_writer_delay = '10s'
wal_writer_flush_after = 0
});
$node->safe_psql('postgres', q{
CREATE TABLE items (id serial PRIMARY KEY, v text);
SELECT audit_log.enable('items');
});

# Committed events: a bulk statement and single events.
$node->safe_psql('postgres', q{
INSERT INTO items (v) SELECT 'committed ' || g FROM generate_series(1, 500) g;
SELECT audit_log.log('app.committed') FROM generate_series(1, 20);
});

# Two transactions stay open: one takes ids in bulk, the other one at a
# time until the sequence's pre-logged values are used up, then one more
# (the id that needs a new WAL record of the sequence).  Each remembers the
# highest id it was given.
my $committed_max = $node->safe_psql('postgres', 'SELECT max(event_id) FROM audit_log.events');
my $bulk = $node->background_psql('postgres');
my $single = $node->background_psql('postgres');

$bulk->query_safe('BEGIN');
$bulk->query_safe(q{INSERT INTO items (v) SELECT 'open ' || g FROM generate_series(1, 300) g});
my $bulk_max = $bulk->query_safe(q{SELECT audit_log.log('app.open_bulk')});
chomp $bulk_max;

$single->query_safe('BEGIN');
$single->query_safe(q{
DO $$
BEGIN
    WHILE (SELECT log_cnt FROM audit_log.events_event_id_seq) > 0 LOOP
        PERFORM audit_log.log('app.open_single');
    END LOOP;
END $$});
my $single_max = $single->query_safe(q{SELECT audit_log.log('app.open_crossing')});
chomp $single_max;

my $handed_max = $committed_max;
$handed_max = $bulk_max if $bulk_max > $handed_max;
$handed_max = $single_max if $single_max > $handed_max;
ok($bulk_max > 0 && $single_max > 0, "the open transactions were given ids ($bulk_max, $single_max)");

# The crash.
$node->stop('immediate');
$bulk->{run}->kill_kill;
$single->{run}->kill_kill;
$node->append_conf('postgresql.conf', "audit_log.log_connections = 'all'\n");
$node->start;

is($node->safe_psql('postgres', q{
SELECT count(*) FROM audit_log.events WHERE event_type LIKE 'app.open%' OR new_data->>'v' LIKE 'open %'}),
	'0', 'the open transactions left no event');
ok($node->safe_psql('postgres', 'SELECT last_value FROM audit_log.events_event_id_seq') >= $handed_max,
	'the sequence is past every id handed out before the crash');

# After the restart: single events, a bulk statement, events of the worker
# (the logins), an id taken by nextval() itself.
$node->safe_psql('postgres', q{
SELECT audit_log.log('app.after') FROM generate_series(1, 5);
INSERT INTO items (v) SELECT 'after ' || g FROM generate_series(1, 300) g;
});
my $other = $node->background_psql('postgres');
ok($node->poll_query_until('postgres', qq{
SELECT count(*) >= 1 FROM audit_log.events WHERE event_type = 'auth.login_succeeded' AND event_id > $committed_max}),
	'the worker records a login after the restart');
my $via_nextval = $node->safe_psql('postgres', q{SELECT nextval('audit_log.events_event_id_seq')});
$other->quit;

is($node->safe_psql('postgres', qq{
SELECT count(*) FROM audit_log.events WHERE event_id > $committed_max AND event_id <= $handed_max}),
	'0', 'no event after the restart has an id handed out before the crash');
is($node->safe_psql('postgres', qq{
SELECT count(*) FROM audit_log.events
 WHERE event_id > $committed_max AND (event_type = 'app.after' OR new_data->>'v' LIKE 'after %')}),
	'305', 'the events after the restart are all there');
ok($via_nextval > $handed_max, 'nextval() too goes on past them');
is($node->safe_psql('postgres', q{
SELECT count(*) - count(DISTINCT event_id) FROM audit_log.events}),
	'0', 'every event_id is unique');
is($node->safe_psql('postgres', q{
SELECT bool_and(ok) FROM (
  SELECT (new_data->>'id')::int > coalesce(lag((new_data->>'id')::int) OVER (ORDER BY event_id), 0) AS ok
    FROM audit_log.events WHERE new_data->>'v' LIKE 'after %') s}),
	't', 'the bulk statement after the restart has its rows in id order');

$node->stop;

# At wal_level = minimal the sequence created by CREATE EXTENSION is made
# durable by that commit as its page stands, without a record of the
# sequence.  The ids committed next (fewer than the allocator pre-logs, no
# checkpoint in between) must still be covered by WAL: after a crash none is
# handed out again.
my $min = audit_node('ids_crash_minimal', conf => qq{
wal_level = minimal
max_wal_senders = 0
audit_log.maintenance_interval = 3600
autovacuum = off
});
for my $i (1 .. 5)
{
	$min->safe_psql('postgres', "SELECT audit_log.log('app.before', object_name => 'b$i') FROM generate_series(1, 4)");
}
my $before_max = $min->safe_psql('postgres', 'SELECT max(event_id) FROM audit_log.events');
$min->stop('immediate');
$min->start;
$min->safe_psql('postgres', "SELECT audit_log.log('app.after_minimal') FROM generate_series(1, 10)");
is($min->safe_psql('postgres', qq{
SELECT count(*) FROM audit_log.events WHERE event_type = 'app.after_minimal' AND event_id <= $before_max}),
	'0', 'wal_level = minimal: no id committed before the crash is handed out again');
is($min->safe_psql('postgres', q{
SELECT count(*) - count(DISTINCT event_id) FROM audit_log.events}),
	'0', 'wal_level = minimal: every event_id is unique');
$min->stop;
done_testing();
