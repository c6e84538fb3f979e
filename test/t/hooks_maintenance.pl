# The worker runs audit_log.maintain() every audit_log.maintenance_interval
# when that function exists; an error in it, and the rows where it says a
# step failed or a window is kept open, are logged and the worker goes on;
# a reload that changes the interval is recorded.
use strict;
use warnings;
use PostgreSQL::Test::Utils;
use Test::More;
use AuditLogNode;

my $node = audit_node('maint', conf => qq{
audit_log.maintenance_interval = '1s'
audit_log.premake_days = 9
});
# The real maintain(as_of DEFAULT NULL) runs: CREATE EXTENSION made today
# and 7 days ahead, maintain() adds the days up to premake_days = 9.
ok($node->poll_query_until('postgres', q{
SELECT to_regclass(format('audit_log.events_p%s',
       to_char((now() AT TIME ZONE 'UTC')::date + 9, 'YYYYMMDD'))) IS NOT NULL}),
	'the worker runs the real audit_log.maintain()');
# Stand-in for the real maintain(): counts its runs.
$node->safe_psql('postgres', q{
CREATE TABLE maint_runs (at timestamptz);
SET audit_log.internal = on;
ALTER EXTENSION audit_log DROP FUNCTION audit_log.maintain(timestamptz);
DROP FUNCTION audit_log.maintain(timestamptz);
CREATE FUNCTION audit_log.maintain() RETURNS TABLE(action text, object text, detail text)
LANGUAGE sql AS $$ INSERT INTO public.maint_runs VALUES (now()) RETURNING 'ran', NULL::text, NULL::text $$;
});
ok($node->poll_query_until('postgres', 'SELECT count(*) >= 2 FROM maint_runs'),
	'the worker runs maintain() every interval');

# What maintain() says went wrong, or keeps a window open, reaches the server
# log when the worker runs it (nobody reads its rows there); what went well
# does not.
my $offset = -s $node->logfile;
$node->safe_psql('postgres', q{
CREATE OR REPLACE FUNCTION audit_log.maintain() RETURNS TABLE(action text, object text, detail text)
LANGUAGE sql AS $$ VALUES ('created', 'audit_log.events_p1', 'fine'),
                          ('error', 'audit_log.seals', 'window cannot be sealed: step broke'),
                          ('waiting', 'audit_log.seals', 'windows are due and wait') $$;
});
ok($node->wait_for_log(qr/WARNING:  audit_log: maintain\(\): error: audit_log.seals: window cannot be sealed: step broke/,
	$offset), 'an error row of maintain() is a WARNING in the server log');
ok($node->wait_for_log(qr/LOG:  audit_log: maintain\(\): waiting: audit_log.seals: windows are due and wait/,
	$offset), 'a window kept open is a LOG line');
unlike(slurp_file($node->logfile, $offset), qr/maintain\(\): created/, 'a step that went well is not logged');

my $pid = $node->safe_psql('postgres', 'SELECT worker_pid FROM audit_log.status');
$offset = -s $node->logfile;
$node->safe_psql('postgres', q{
CREATE OR REPLACE FUNCTION audit_log.maintain() RETURNS TABLE(action text, object text, detail text)
LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'maintenance exploded'; END $$;
});
ok($node->wait_for_log(qr/maintenance exploded/, $offset), 'an error of maintain() is logged');
$node->safe_psql('postgres', 'CREATE DATABASE other');
$node->safe_psql('other', 'CREATE ROLE after_error');
ok(wait_for_events($node, q{object_name = 'after_error'}, 1),
	'the worker goes on storing events');
is($node->safe_psql('postgres', 'SELECT worker_pid FROM audit_log.status'), $pid,
	'the same worker, not a restart');

$node->append_conf('postgresql.conf', "audit_log.maintenance_interval = '1h'\n");
$node->reload;
ok(wait_for_events($node, q{event_type = 'audit.setting_changed' AND object_name = 'audit_log.maintenance_interval'
   AND details->>'old_value' = '1' AND details->>'value' = '3600'}, 1),
	'the reload that changed the interval is recorded');
$node->stop;
done_testing();
