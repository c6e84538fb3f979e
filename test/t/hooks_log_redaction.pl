# PostgreSQL's own server log holds no password that audit_log would
# redact: with log_statement = 'all', log_min_duration_statement = 0 and
# log_min_error_statement = error, failed and successful password
# statements in every spelling the redaction handles (sql/utility_passwords.sql),
# through the simple and the extended protocol, in multi-statement strings, DO
# blocks, dynamic SQL and function bodies, syntax errors at and after the
# password included.  Every secret contains "Zq7"; the log must not, and the
# statements must still be there, redacted.
use strict;
use warnings;
use PostgreSQL::Test::Utils;
use Test::More;
use AuditLogNode;

my $node = audit_node('log_redaction', conf => qq{
log_statement = 'all'
log_min_duration_statement = 0
log_min_error_statement = error
log_error_verbosity = default
lc_messages = 'C'
});
$node->safe_psql('postgres', q{
CREATE ROLE lr_weak LOGIN;
CREATE FOREIGN DATA WRAPPER lr_fdw;
CREATE SERVER lr_srv FOREIGN DATA WRAPPER lr_fdw;
});

my $start = -s $node->logfile;

# one statement per query, errors do not stop the script
$node->psql('postgres', q{
CREATE ROLE lr_user PASSWORD 'Zq7-Create';
alter role lr_user password 'zq7-lower';
ALTER USER lr_user WITH ENCRYPTED PASSWORD E'Zq7\-Escaped';
ALTER ROLE lr_user PaSsWoRd $$Zq7-Dollar$$ VALID UNTIL 'infinity';
ALTER ROLE lr_user PASSWORD $tag$Zq7-Tagged$tag$;
ALTER ROLE lr_user PASSWORD U&'Zq7-Unicode';
CREATE ROLE "lr_Quoted" PASSWORD 'Zq7-Quoted';
CREATE USER MAPPING FOR lr_user SERVER lr_srv OPTIONS (user 'remote', password 'Zq7-Mapping');
ALTER USER MAPPING FOR lr_user SERVER lr_srv OPTIONS (SET "password" 'Zq7-Mapping2');
DO $$ BEGIN EXECUTE format('ALTER ROLE lr_user PASSWORD %L', 'Zq7-Dynamic'); END $$;
CREATE FUNCTION pg_temp.set_pw() RETURNS void LANGUAGE sql
AS $$ ALTER ROLE lr_user PASSWORD 'Zq7-Body' $$;
SELECT pg_temp.set_pw();
DO $$ BEGIN RAISE LOG 'changing the password'; ALTER ROLE lr_user PASSWORD 'Zq7-RaiseLog'; END $$;
SELECT 'harmless' AS untouched;
SELECT 1/0 AS untouched_error;
-- failures
ALTER ROLE lr_missing PASSWORD 'Zq7-Missing';
CREATE ROLE lr_user PASSWORD 'Zq7-Exists';
SET ROLE lr_weak;
ALTER ROLE lr_user PASSWORD 'Zq7-Denied';
RESET ROLE;
ALTER ROLE lr_user PASSWORD 'Zq7-Syntax' VALID UNTILL 'infinity';
ALTER ROLE PASSWORD 'Zq7-Near';
SELECT 'Zq7-NotInt'::int AS password;
SELECT 1 AS first \; ALTER ROLE lr_missing PASSWORD 'Zq7-Multi';
DO $$ BEGIN RAISE LOG 'before'; END $$ \; SELECT 'Zq7-AfterLog'::int AS password;
SET standard_conforming_strings = off \; ALTER ROLE lr_missing PASSWORD 'Zq7-Scs';
DO $$ BEGIN ALTER ROLE lr_missing PASSWORD 'Zq7-DoFail'; END $$;
DO $$ BEGIN EXECUTE 'ALTER ROLE lr_user PASSWORD ''Zq7-DynSyntax'' VALID UNTILL ''x'''; END $$;
DO $$ BEGIN ALTER ROLE lr_user PASSWORD 'Zq7-Compile' VALID UNTILL 'x'; END $$;
DO $$ BEGIN
  FOR i IN 1..12 LOOP
    EXECUTE format('ALTER ROLE lr_user PASSWORD %L', 'Zq7-Loop' || i);
  END LOOP;
  ALTER ROLE lr_missing PASSWORD 'Zq7-AfterLoop';
END $$;
CREATE FUNCTION pg_temp.fail_pw() RETURNS void LANGUAGE sql
AS $$ ALTER ROLE lr_missing PASSWORD 'Zq7-SqlFn' $$;
SELECT pg_temp.fail_pw();
CREATE SUBSCRIPTION lr_sub CONNECTION 'host=nowhere password=Zq7-Sub'
  PUBLICATION p WITH (connect = false, bogus = 1);
-- passwords that do not say "password": a URI's, a whole connection string,
-- "password" spelt with escapes
CREATE SUBSCRIPTION lr_sub_uri CONNECTION 'postgresql://rep:Zq7-Uri@db.example:5432/x'
  PUBLICATION p WITH (connect = false);
ALTER SUBSCRIPTION lr_sub_uri CONNECTION 'postgresql://rep:Zq7-UriAlter@db.example/x';
ALTER SUBSCRIPTION lr_sub_uri CONNECTION 'host=h pass'
  'word=Zq7-Continued';
CREATE SUBSCRIPTION lr_sub_e CONNECTION E'host=h user=rep p\x61ssword=Zq7-EEscape dbname=x'
  PUBLICATION p WITH (connect = false);
ALTER SYSTEM SET primary_conninfo = 'postgresql://rep:Zq7-Primary@primary.example/postgres';
ALTER SYSTEM RESET primary_conninfo;
CREATE USER MAPPING FOR lr_weak SERVER lr_srv OPTIONS (user 'bob', U&"p\0061ssword" 'Zq7-UEscape');
SELECT 'postgres://rep:Zq7-UriSelect@h/x' AS uri;
BEGIN;
SELECT 1/0;
ALTER ROLE lr_user PASSWORD 'Zq7-Aborted';
ROLLBACK;
-- without log_statement: the duration line, and errors with no statement line before
SET log_statement = 'none';
CREATE ROLE lr_dur PASSWORD 'Zq7-Duration';
ALTER ROLE lr_missing PASSWORD 'Zq7-NoLogStatement';
ALTER ROLE lr_dur PASSWORD 'Zq7-NoLogSyntax' VALID UNTILL 'x';
RESET log_statement;
}, on_error_stop => 0);

# a literal the scanner cannot finish
$node->psql('postgres', '',
	extra_params => ['-c', q{ALTER ROLE lr_user PASSWORD 'Zq7-Unterminated}]);

# the extended protocol: parse, bind and execute lines, and an error at execute
# extended(name, sql): the pgbench command that runs sql once through the
# extended protocol (from the script file name.sql)
sub extended
{
	my ($name, $sql) = @_;
	my $script = $node->basedir . "/$name.sql";
	PostgreSQL::Test::Utils::append_to_file($script, "$sql\n");
	return [ 'pgbench', '-n', '-t', '1', '-M', 'extended', '-f', $script, 'postgres' ];
}
$node->command_ok(extended('extended', q{ALTER ROLE lr_user PASSWORD 'Zq7-Extended';}),
	'password statement through the extended protocol');
$node->command_fails(extended('extended_fail', q{ALTER ROLE lr_missing PASSWORD 'Zq7-ExtFail';}),
	'failing password statement through the extended protocol');

# every statement above has been logged once the marker is
$node->safe_psql('postgres', "SELECT 'log redaction done' AS marker");
ok($node->poll_query_until('postgres',
	"SELECT pg_catalog.pg_read_file('" . $node->logfile . "') LIKE '%log redaction done%'"),
	'log written');

my $log = substr(PostgreSQL::Test::Utils::slurp_file($node->logfile), $start);

# no secret anywhere
my @leaks = ($log =~ /^(.*zq7.*)$/mig);
is(scalar(@leaks), 0, 'no secret in the server log')
  or diag(join("\n", @leaks));

# the statements are still logged, redacted
my $r = qr/'<redacted>'/;
my $w = qr/\(statement withheld: it may contain a password\)/;
# lines between a message and its STATEMENT (DETAIL, CONTEXT...), then the
# STATEMENT line's prefix
my $gap = qr/(?:[^\n]*\n){0,4}?[^\n]*/;
sub count_of
{
	my ($re) = @_;
	my @all = ($log =~ /$re/g);
	return scalar(@all);
}

like($log, qr/LOG:  statement: CREATE ROLE lr_user PASSWORD $r;?\n/,
	'log_statement line redacted');
like($log, qr/LOG:  statement: ALTER SUBSCRIPTION lr_sub_uri CONNECTION $r;?\n/,
	'a URI\'s password redacted');
like($log, qr/LOG:  statement: ALTER SYSTEM SET primary_conninfo = $r;?\n/,
	'a conninfo setting redacted');
like($log, qr/LOG:  duration: [0-9.]+ ms  statement: CREATE ROLE lr_dur PASSWORD $r;?\n/,
	'log_min_duration_statement line redacted');
like($log, qr/ERROR:  role "lr_missing" does not exist\n${gap}STATEMENT:  ALTER ROLE lr_missing PASSWORD $r;?\n[^\n]*ERROR:  syntax error at or near "UNTILL"[^\n]*\n[^\n]*STATEMENT:  $w\n/,
	'without log_statement: failures redacted or withheld');
like($log, qr/statement: alter role lr_user password $r;?\n/, 'lower case');
like($log, qr/statement: ALTER USER lr_user WITH ENCRYPTED PASSWORD $r;?\n/, 'E string');
like($log, qr/statement: ALTER ROLE lr_user PaSsWoRd $r VALID UNTIL $r;?\n/,
	'dollar quotes, mixed case');
ok(count_of(qr/LOG:  statement: ALTER ROLE lr_user PASSWORD $r;?\n/) >= 2,
	'tagged dollar quotes and U& string');
like($log, qr/statement: CREATE ROLE "lr_Quoted" PASSWORD $r;?\n/, 'quoted role name');
like($log, qr/statement: CREATE USER MAPPING FOR lr_user SERVER lr_srv OPTIONS \(user $r, password $r\);?\n/,
	'user mapping');
like($log, qr/statement: ALTER USER MAPPING FOR lr_user SERVER lr_srv OPTIONS \(SET "password" $r\);?\n/,
	'user mapping altered');
like($log, qr/statement: DO $r;?\n/, 'DO block');
like($log, qr/statement: CREATE FUNCTION pg_temp.set_pw\(\) RETURNS void LANGUAGE sql\n\tAS $r;?\n/,
	'function body');
like($log, qr/LOG:  changing the password\n${gap}STATEMENT:  DO $r;?\n/,
	'statement of a LOG line from inside a DO block redacted');
like($log, qr/LOG:  statement: SELECT 'harmless' AS untouched;\n/,
	'a statement without a password is untouched');
like($log, qr/ERROR:  division by zero\n${gap}STATEMENT:  SELECT 1\/0 AS untouched_error;\n/,
	'an error without a password is untouched');

like($log, qr/ERROR:  role "lr_missing" does not exist\n${gap}STATEMENT:  ALTER ROLE lr_missing PASSWORD $r;?\n/,
	'failed ALTER ROLE: STATEMENT redacted');
like($log, qr/ERROR:  role "lr_user" already exists\n${gap}STATEMENT:  CREATE ROLE lr_user PASSWORD $r;?\n/,
	'role exists: STATEMENT redacted');
like($log, qr/ERROR:  permission denied[^\n]*\n${gap}STATEMENT:  ALTER ROLE lr_user PASSWORD $r;?\n/,
	'permission denied: STATEMENT redacted');
like($log, qr/ERROR:  syntax error at or near "UNTILL"[^\n]*\n${gap}STATEMENT:  $w\n/,
	'syntax error after the password: statement withheld');
like($log, qr/ERROR:  syntax error at or near "<redacted>"[^\n]*\n${gap}STATEMENT:  $w\n/,
	'syntax error at the password: the token is redacted');
like($log, qr/ERROR:  invalid input syntax for type integer: "<redacted>"[^\n]*\n${gap}STATEMENT:  SELECT ${r}::int AS password;\n/,
	'input error at a literal: the value is redacted');
like($log, qr/LOG:  before\n${gap}STATEMENT:  DO $r\s*;\s*SELECT ${r}::int AS password;?\n${gap}ERROR:  invalid input syntax for type integer: "<redacted>"/,
	'an error at a literal after the statement was shown redacted');
like($log, qr/STATEMENT:  SELECT 1 AS first\s*;\s*ALTER ROLE lr_missing PASSWORD $r;?\n/,
	'multi-statement string redacted');
like($log, qr/ERROR:  role "lr_missing" does not exist\n[^\n]*STATEMENT:  $w\n/,
	'after SET standard_conforming_strings in the same string: withheld');
is(count_of(qr/CONTEXT:  SQL statement "ALTER ROLE lr_missing PASSWORD $r"\n${gap}STATEMENT:  DO $r;?\n/), 2,
	'failed statement in DO blocks: context and statement redacted, after a loop of 12 too');
like($log, qr/ERROR:  syntax error at or near "UNTILL"[^\n]*\n[^\n]*QUERY:  $w\n${gap}STATEMENT:  DO $r;?\n/,
	'unparsable dynamic query withheld');
like($log, qr/ERROR:  syntax error at or near "UNTILL"[^\n]*\n[^\n]*STATEMENT:  DO $r;?\n/,
	'syntax error in a DO body: the statement is redacted');
like($log, qr/STATEMENT:  CREATE SUBSCRIPTION lr_sub CONNECTION $r;?\n/,
	'subscription connection string redacted');
like($log, qr/ERROR:  current transaction is aborted[^\n]*\n${gap}STATEMENT:  ALTER ROLE lr_user PASSWORD $r;?\n/,
	'statement refused in an aborted transaction redacted');
like($log, qr/ERROR:  unterminated quoted string at or near "<redacted>"[^\n]*\n${gap}STATEMENT:  $w\n/,
	'unterminated literal redacted');
like($log, qr/LOG:  execute [^:]*: ALTER ROLE lr_user PASSWORD $r;?\n/,
	'extended protocol: execute line redacted');
like($log, qr/LOG:  duration: [0-9.]+ ms  parse [^:]*: ALTER ROLE lr_user PASSWORD $r;?\n/,
	'extended protocol: parse duration line redacted');
like($log, qr/ERROR:  role "lr_missing" does not exist\n${gap}STATEMENT:  ALTER ROLE lr_missing PASSWORD $r;?\n/,
	'extended protocol: failure redacted');

$node->stop;
done_testing();
