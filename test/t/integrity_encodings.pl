# Seals and upkeep in every server encoding: SQL_ASCII, LATIN1, EUC_JP and
# UTF8 databases hold events with bytes that are not UTF-8 (SQL_ASCII), or
# characters without a Unicode mapping (EUC_JP), and non-ASCII text;
# maintain() does every step, verify() says ok, tampering with such bytes
# is still detected, and the same events give the same seal digests in
# every encoding and under every client_encoding.  One bad event (at
# infinity: no day can hold it) is reported by maintain() and stops
# nothing.  In UTF8 (and wherever 1.0's digest worked) the digest of an
# event is bit-identical to 1.0's.
use strict;
use warnings;
use PostgreSQL::Test::Utils;
use Test::More;
use AuditLogNode;

# The extension only in the databases of each encoding (below).
my $node = audit_node('encodings', extension => 0, conf => qq{
audit_log.log_connections = none
audit_log.maintenance_interval = 86400
audit_log.seal_delay = 0
});

my %enc = (enc_sql_ascii => 'SQL_ASCII', enc_latin1 => 'LATIN1', enc_euc_jp => 'EUC_JP', enc_utf8 => 'UTF8');
my @dbs = sort keys %enc;
# The same events everywhere: from 6 hours before the last full hour.
my $t0 = $node->safe_psql('postgres',
	q{SELECT to_char((date_trunc('hour', now()) - interval '6 hours') AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS+00')});
my $same_until = $node->safe_psql('postgres',
	qq{SELECT to_char(('$t0'::timestamptz + interval '5 hours') AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS+00')});

# sql(db, sql): run with the client speaking UTF-8 (the server converts).
sub sql
{
	my ($db, $sql) = @_;
	return $node->safe_psql($db, "SET client_encoding = 'UTF8'; SET TimeZone = 'UTC'; $sql");
}

for my $db (@dbs)
{
	$node->safe_psql('postgres',
		"CREATE DATABASE $db ENCODING '$enc{$db}' TEMPLATE template0 LOCALE 'C'");
	$node->safe_psql($db, 'CREATE EXTENSION audit_log CASCADE');
	# Identical rows: every column given (as a superuser test may).
	sql($db, qq{
		BEGIN;
		SET LOCAL audit_log.internal = on;
		INSERT INTO audit_log.events (event_id, occurred_at, category, event_type, status, actor, actor_type,
		                              db_user, effective_role, client_addr, application_name, database,
		                              object_type, object_name, resource_id, command, old_data, new_data,
		                              statement, details, txid, backend_pid)
		SELECT 1000000 + i, '$t0'::timestamptz + i * interval '7 minutes', 'app', 'app.fixed', 'success',
		       'alice', 'user', 'alice', 'alice', '203.0.113.7', 'shop', 'shop', 'thing', 'obj ' || i, i::text,
		       'UPDATE', jsonb_build_object('a', i), jsonb_build_object('a', i + 1), 'UPDATE t SET a = a + 1',
		       jsonb_build_object('f', 0.1::float8, 'n', i * 1.5, 'q', 'plain "ascii"'), 42, 4242
		  FROM generate_series(0, 29) i;
		-- non-ASCII text every one of these encodings can hold
		INSERT INTO audit_log.events (event_id, occurred_at, category, event_type, status, actor, object_name,
		                              details, txid, backend_pid)
		SELECT 2000000 + i, '$t0'::timestamptz + interval '4 hours' + i * interval '5 minutes', 'app',
		       'app.accents', 'success', 'José', 'Müller ' || i, jsonb_build_object('txt', 'é ü', 'i', i), 43, 4243
		  FROM generate_series(0, 9) i;
		SET LOCAL audit_log.internal = off;
		COMMIT;
	});
}
is(sql('enc_sql_ascii', q{SELECT encode(convert_to(actor, 'SQL_ASCII'), 'hex') FROM audit_log.events WHERE event_id = 2000000}),
	'4a6f73c3a9', 'SQL_ASCII holds the client\'s UTF-8 bytes as they came');
is(sql('enc_latin1', q{SELECT encode(convert_to(actor, 'LATIN1'), 'hex') FROM audit_log.events WHERE event_id = 2000000}),
	'4a6f73e9', 'LATIN1 holds é as one byte');

# What only one encoding can hold, in the next window; and a bad event.
my %odd = (
	enc_sql_ascii => q{convert_from('\xe9ff41'::bytea, 'SQL_ASCII')},    # not UTF-8 at all
	enc_latin1 => q{convert_from('\xe9ff41'::bytea, 'LATIN1')},          # é ÿ A
	enc_euc_jp => q{convert_from('\xf5a1a4a2'::bytea, 'EUC_JP')},        # user-defined (no Unicode), あ
	enc_utf8 => q{'é€ あ'},
);
for my $db (@dbs)
{
	sql($db, qq{
		SELECT audit_log._record_at('$t0'::timestamptz + interval '5 hours 10 minutes', 'app', 'app.odd',
		                            $odd{$db}, jsonb_build_object('k', $odd{$db}));
		SELECT audit_log._record_at('$t0'::timestamptz + interval '5 hours 20 minutes', 'app', 'app.odd',
		                            'second ' || $odd{$db});
		SELECT audit_log._record_at('infinity', 'app', 'app.bad', 'no day holds me');
	});
}

# maintain() does every step, whatever the encoding and the client's.
# (client encodings each server encoding converts to)
my %clients = (
	enc_sql_ascii => [ 'SQL_ASCII', 'UTF8', 'LATIN1', 'EUC_JP' ],
	enc_latin1 => [ 'LATIN1', 'UTF8', 'SQL_ASCII', 'MULE_INTERNAL' ],
	enc_euc_jp => [ 'EUC_JP', 'UTF8', 'SJIS', 'SQL_ASCII' ],
	enc_utf8 => [ 'UTF8', 'LATIN1', 'EUC_JP', 'SQL_ASCII' ]);
for my $db (@dbs)
{
	my $out = $node->safe_psql($db, qq{SET client_encoding = '$clients{$db}[2]';
		SELECT action || ' ' || object FROM audit_log.maintain(now() + interval '1 day') ORDER BY 1});
	like($out, qr/^created audit_log\.events_p\d{8}$/m, "$db: maintain() creates the day ahead");
	like($out, qr/^sealed audit_log\.seals$/m, "$db: seals");
	like($out, qr/^error audit_log\.events_default$/m, "$db: reports the event no day can hold");
	unlike($out, qr/^error .*seal/m, "$db: no sealing error");
	is(sql($db, q{SELECT detail FROM audit_log.maintain() WHERE action = 'error'}),
		'1 rows at infinity belong to no day: they stay here', "$db: what the report says");
	is(sql($db, q{SELECT string_agg(DISTINCT status, ',') FROM audit_log.verify()}), 'ok', "$db: verify() ok");
	is(sql($db, qq{SELECT count(*) FROM audit_log.seals WHERE window_start >= '$t0'::timestamptz + interval '5 hours'
	                 AND events = 2}), '1', "$db: the window of the odd events is sealed");
}

# The same events give the same chain in every encoding, under any client
# encoding.
my $chain = q{SELECT string_agg(to_char(window_start AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI') || ' ' || events || ' '
                                || digest, E'\n' ORDER BY window_start)
                FROM audit_log.seals WHERE window_end <= '} . $same_until . q{'};
my $want = sql('enc_utf8', $chain);
like($want, qr/^(.+\n){4}.+ 10 [0-9a-f]{64}$/, 'five windows: four of ASCII events, one of accents');
for my $db (@dbs)
{
	for my $ce (@{ $clients{$db} })
	{
		is($node->safe_psql($db, "SET client_encoding = '$ce'; $chain"), $want,
			"$db, client_encoding $ce: the same seal digests as in UTF8");
	}
}

# Tampering with bytes that are not UTF-8 is still seen: the canonical
# form keeps every byte (a replacement character would hide this).
my $odd_id = sql('enc_sql_ascii', q{SELECT min(event_id) FROM audit_log.events WHERE event_type = 'app.odd'});
sql('enc_sql_ascii', qq{
	BEGIN;
	SET LOCAL audit_log.internal = on;
	UPDATE audit_log.events SET object_name = convert_from('\\xe8ff41'::bytea, 'SQL_ASCII') WHERE event_id = $odd_id;
	SET LOCAL audit_log.internal = off;
	COMMIT;
});
like(sql('enc_sql_ascii', q{SELECT status || ': ' || detail FROM audit_log.verify() WHERE status <> 'ok'}),
	qr/^mismatch: event $odd_id altered/, 'SQL_ASCII: one byte changed (0xE9 -> 0xE8) is detected');
is(sql('enc_euc_jp', q{SELECT encode(audit_log._canonical(convert_from('\xf5a1a4a2'::bytea, 'EUC_JP')), 'hex')}),
	'fff5a1e38182', 'EUC_JP: a character without Unicode mapping is marked, the rest converted');
is(sql('enc_sql_ascii', q{SELECT encode(audit_log._canonical(convert_from('\xe9c3a9ff'::bytea, 'SQL_ASCII')), 'hex')}),
	'ffe9c3a9ffff', 'SQL_ASCII: valid UTF-8 kept, other bytes marked');

# 1.0's digest (convert_to(..., 'UTF8')) where it worked: bit-identical.
my $digest_1_0 = q{
	SELECT count(*) || ' ' || count(*) FILTER (WHERE audit_log._event_digest(e) = audit_log._sha256(convert_to(jsonb_build_array(
	        e.event_id, (EXTRACT(epoch FROM e.occurred_at) * 1000000)::bigint,
	        e.category, e.event_type, e.status, e.actor, e.actor_type, e.db_user, e.effective_role,
	        e.client_addr::text, e.application_name, e.user_agent, e.tenant, e.request_id,
	        e.database, e.object_type, e.object_name, e.resource_id, e.command,
	        e.old_data, e.new_data, e.statement, e.details, e.txid, e.backend_pid)::text, 'UTF8')))
	  FROM audit_log.events e WHERE isfinite(e.occurred_at)};
for my $db ('enc_utf8', 'enc_latin1')
{
	my ($n, $same) = split / /, sql($db, $digest_1_0);
	ok($n > 40 && $n == $same, "$db: every event's digest is 1.0's ($same of $n)");
}

# A text too long for a queue slot is cut between characters of the
# database's encoding: a failed command's event (queued) with a 6000-byte
# user agent of kanji (EUC_JP 0xB4C1, whose second byte is no UTF-8
# continuation byte) keeps whole characters.
$node->psql('enc_euc_jp', q{SELECT set_config('audit_log.user_agent', repeat(convert_from('\xb4c1'::bytea, 'EUC_JP'), 3000), false);
	GRANT SELECT ON TABLE no_such_table TO PUBLIC});
ok($node->poll_query_until('enc_euc_jp', q{
	SELECT count(*) = 1 FROM audit_log.events WHERE event_type = 'privilege.granted' AND status = 'failure'}),
	'EUC_JP: the failed GRANT is stored');
is(sql('enc_euc_jp', q{
	SELECT octet_length(user_agent) > 1000
	       AND convert_to(user_agent, 'EUC_JP') = convert_to(repeat(convert_from('\xb4c1'::bytea, 'EUC_JP'), octet_length(user_agent) / 2), 'EUC_JP')
	  FROM audit_log.events WHERE event_type = 'privilege.granted' AND status = 'failure'}),
	't', 'EUC_JP: its user agent, cut to fit the queue, ends with a whole character');

# A json column holding a \u escape of a character outside ASCII, which a
# LATIN1 database may not hold as jsonb (U+4E2D has no LATIN1 byte): the row
# stays writable, its value recorded as the JSON string of its text.
sql('enc_latin1', q{
	CREATE TABLE enc_json (id int PRIMARY KEY, j json);
	SELECT audit_log.enable('enc_json');
	INSERT INTO enc_json VALUES (1, '{"a": "\u4e2d \u00e9"}');
	UPDATE enc_json SET j = '{"a": "plain"}'});
is(sql('enc_latin1', q{
	SELECT string_agg(command || ' ' || coalesce(jsonb_typeof(new_data -> 'j'), '-') || ' '
	                  || coalesce(old_data ->> 'j', '-') || ' ' || (new_data ->> 'j'), '; ' ORDER BY event_id)
	  FROM audit_log.events WHERE object_name = 'public.enc_json'}),
	'INSERT string - {"a": "\u4e2d \u00e9"}; UPDATE object {"a": "\u4e2d \u00e9"} {"a": "plain"}',
	'LATIN1: a json value with a \\u escape jsonb cannot hold is recorded as its text');

$node->stop;
done_testing();
