# event_id comes from audit_log.events_event_id_seq without nextval() (so
# that the session's lastval() stays the application's: src/event_ids.c),
# but with nextval()'s WAL protocol: after a crash (immediate stop, no
# checkpoint) the sequence never hands out an id twice, and events written
# by several sessions at once get distinct, increasing ids.
use strict;
use warnings;
use PostgreSQL::Test::Utils;
use Test::More;
use AuditLogNode;

my $node = audit_node('event_id');

# 100 events in 100 transactions, then a crash.
$node->safe_psql('postgres', q{
	DO $$ BEGIN
	  FOR i IN 1..100 LOOP
	    PERFORM audit_log.log('app.before_crash'); COMMIT;
	  END LOOP;
	END $$;
});
my $before = $node->safe_psql('postgres',
	q{SELECT max(event_id) FROM audit_log.events});
$node->stop('immediate');
$node->start;

# After the crash: four sessions at once, 50 events each.
my @bg = map {
	$node->background_psql('postgres', on_error_stop => 1)
} 1 .. 4;
$_->query_until(qr/started/, q{
	\echo started
	DO $$ BEGIN
	  FOR i IN 1..50 LOOP
	    PERFORM audit_log.log('app.after_crash'); COMMIT;
	  END LOOP;
	END $$;
}) for @bg;
$_->quit for @bg;

is($node->safe_psql('postgres', q{
	SELECT count(*) || ' ' || count(DISTINCT event_id) FROM audit_log.events
	 WHERE event_type = 'app.after_crash'}),
	'200 200', '200 events after the crash, 200 distinct ids');
is($node->safe_psql('postgres', qq{
	SELECT min(event_id) > $before FROM audit_log.events WHERE event_type = 'app.after_crash'}),
	't', 'every id after the crash is above every id before it');
is($node->safe_psql('postgres', q{
	SELECT count(*) = count(DISTINCT event_id) FROM audit_log.events}),
	't', 'no id was handed out twice');
# The sequence itself reads as nextval() would have left it.
is($node->safe_psql('postgres', q{
	SELECT last_value >= (SELECT max(event_id) FROM audit_log.events) AND is_called
	  FROM audit_log.events_event_id_seq}),
	't', 'the sequence is at or past the last id');

done_testing();
