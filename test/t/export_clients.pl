# What export's consumers see: a CSV written by psql \copy of export(),
# parsed by a strict RFC 4180 parser, field by field against the export's
# own rows (quotes, commas, CR, LF, CRLF, NULL vs empty string, emoji, a lone
# \.), formula payloads neutralised; and a BI tool over JDBC as a LOGIN role
# of audit_log_reader: views and column comments through DatabaseMetaData,
# search() with bound parameters, daily_counts.
use strict;
use warnings;
use utf8;
use PostgreSQL::Test::Utils;
use Test::More;
use JSON::PP;
use File::Basename qw(dirname);
use Cwd qw(abs_path);
use AuditLogNode;

my $srcdir = abs_path(dirname(__FILE__) . '/../..');
my $node = audit_node('export_clients', conf => "listen_addresses = '127.0.0.1'\n");
$node->append_conf('pg_hba.conf', "host all all 127.0.0.1/32 scram-sha-256\n");
$node->reload;

# Events with every awkward value, through audit_log.log() and the context.
my @cases = (
    # label, actor, application_name (ASCII only in PostgreSQL), object_type,
    # object_name, resource_id, details, user_agent
    ['q1', 'He said "hi", then left', 'plain app', 'lf', "line1\nline2", '7', '{"q": "a\"b", "nl": "x\ny"}', 'ua,1'],
    ['q2', "cr\rinside", "emoji app", 'crlf', "a\r\nb", '', '{"emoji": "😀", "comma": "a,b"}', "😀 emoji agent"],
    ['q3', '\.', '\.', '\.', '', undef, undef, '\.'],
    ['q4', '=HYPERLINK("http://x","y")', '@SUM(A1)', 'table', '+cmd|\' /C calc\'!A0', '-42',
     '{"f": "=1+1", "g": ["-2+3", -5], "@k": "v"}', '=1+2'],
    ['q5', '-', '+', "\rCR", '-1.5e3', '-1,2', '"=7"', "\tTAB"],
);
for my $c (@cases) {
    my ($label, $actor, $app, $otype, $oname, $rid, $details, $ua) = @$c;
    my $q = sub { defined $_[0] ? "'" . ($_[0] =~ s/'/''/gr) . "'" : 'NULL' };
    $node->safe_psql('postgres',
        "BEGIN; SET LOCAL application_name = " . $q->($app) . ";"
        . " SELECT audit_log.set_context(" . $q->($actor) . ", 'user', NULL, " . $q->($ua) . ", NULL, " . $q->($label) . ");"
        . " SELECT audit_log.log('app.csv_case', 'success', " . $q->($otype) . ", " . $q->($oname) . ", "
        . $q->($rid) . ", " . (defined $details ? $q->($details) . '::jsonb' : 'NULL') . "); COMMIT;");
}

# Strict RFC 4180 parser: fields separated by commas, records by CRLF or LF;
# a quoted field may hold anything, "" is a quote; an unquoted field may
# hold no quote, CR or LF.  Unquoted empty -> undef (NULL), quoted -> ''.
sub parse_csv_strict
{
    my ($text) = @_;
    my (@records, @fields);
    my $pos = 0;
    my $len = length $text;
    while ($pos < $len)
    {
        my $value;
        if (substr($text, $pos, 1) eq '"')
        {
            $pos++;
            $value = '';
            while (1)
            {
                die "unterminated quoted field at $pos\n" if $pos >= $len;
                my $ch = substr($text, $pos, 1);
                if ($ch eq '"')
                {
                    if (substr($text, $pos + 1, 1) eq '"') { $value .= '"'; $pos += 2; next; }
                    $pos++;
                    last;
                }
                $value .= $ch;
                $pos++;
            }
        }
        else
        {
            my $start = $pos;
            $pos++ while $pos < $len && substr($text, $pos, 1) !~ /[,\r\n"]/;
            die "quote inside an unquoted field at $pos\n"
              if $pos < $len && substr($text, $pos, 1) eq '"';
            $value = $pos > $start ? substr($text, $start, $pos - $start) : undef;
        }
        push @fields, $value;
        my $rest = substr($text, $pos, 2);
        if ($pos >= $len) { push @records, [@fields]; @fields = (); }
        elsif (substr($rest, 0, 1) eq ',') { $pos++; push @fields, undef if $pos == $len; }
        elsif ($rest eq "\r\n") { $pos += 2; push @records, [@fields]; @fields = (); }
        elsif (substr($rest, 0, 1) eq "\n") { $pos++; push @records, [@fields]; @fields = (); }
        else { die "garbage after a field at $pos: " . substr($text, $pos, 10) . "\n"; }
    }
    my $n = @{ $records[0] };
    for my $i (0 .. $#records)
    {
        die "record $i has " . scalar(@{ $records[$i] }) . " fields, header has $n\n"
          if @{ $records[$i] } != $n;
    }
    return \@records;
}

my $file = $node->basedir . '/export.csv';
my $filter = "event_types => '{app.csv_case}'";
my ($ret, $out, $err) = $node->psql('postgres',
    "\\copy (SELECT * FROM audit_log.export($filter)) TO '$file' WITH (FORMAT csv, HEADER)");
is($ret, 0, 'psql \copy of export() succeeds') or diag $err;

open my $fh, '<:raw', $file or die "open $file: $!";
my $raw = do { local $/; <$fh> };
close $fh;
utf8::decode($raw) or die 'export is not valid UTF-8';
my $records = eval { parse_csv_strict($raw) };
ok($records, 'the export parses as strict RFC 4180') or diag $@;
my @header = @{ shift @$records };
is(scalar(@header), 26, 'one column per event column');
is($header[25], 'source', 'the last column is the source');
is(scalar(@$records), scalar(@cases), 'one record per event');

# The same export as JSON rows (null vs "" kept), to compare every field.
my $json = $node->safe_psql('postgres',
    "SELECT json_agg(to_jsonb(r) ORDER BY r.event_id::bigint) FROM audit_log.export($filter) r");
my $rows = JSON::PP->new->utf8->decode($json);
my $mismatch = 0;
for my $i (0 .. $#$records)
{
    for my $j (0 .. $#header)
    {
        my ($got, $want) = ($records->[$i][$j], $rows->[$i]{ $header[$j] });
        next if (!defined $got && !defined $want) || (defined $got && defined $want && $got eq $want);
        $mismatch++;
        diag "record $i column $header[$j]: got " . (defined $got ? "'$got'" : 'NULL')
          . ', want ' . (defined $want ? "'$want'" : 'NULL');
    }
}
is($mismatch, 0, 'every field round-trips through the CSV');

my %by = map { $_->{request_id} => $_ } map {
    my $r = $_; +{ map { $header[$_] => $r->[$_] } 0 .. $#header }
} @$records;
is($by{q1}{actor}, 'He said "hi", then left', 'quotes and commas');
is($by{q1}{object_name}, "line1\nline2", 'LF inside a field');
is($by{q2}{object_name}, "a\r\nb", 'CRLF inside a field');
is($by{q2}{actor}, "cr\rinside", 'CR inside a field');
is($by{q2}{user_agent}, "😀 emoji agent", 'emoji');
is($by{q2}{details}, '{"comma":"a,b","emoji":"😀"}', 'compact JSON with emoji');
is($by{q1}{details}, '{"q":"a\"b","nl":"x\ny"}', 'JSON escapes kept');
is($by{q2}{resource_id}, '', 'empty string stays an empty string');
is($by{q3}{resource_id}, undef, 'NULL stays NULL');
is($by{q3}{object_name}, '', 'empty object name');
is($by{q3}{actor}, '\.', 'a lone \. in a field');
is($by{q3}{object_type}, '\.', 'a lone \. in another field');
like($by{q1}{occurred_at}, qr/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/, 'UTC ISO 8601 timestamp');
# Formula payloads come out neutralised.
is($by{q4}{actor}, q{'=HYPERLINK("http://x","y")}, 'actor neutralised');
is($by{q4}{application_name}, q{'@SUM(A1)}, 'application_name neutralised');
is($by{q4}{object_name}, q{'+cmd|' /C calc'!A0}, 'object name neutralised');
is($by{q4}{details}, q{{"f":"'=1+1","g":["'-2+3",-5],"'@k":"v"}}, 'JSON values neutralised, numbers kept');
is($by{q4}{resource_id}, '-42', 'a plain negative number is not mangled');
is($by{q5}{actor}, q{'-}, 'a lone minus is neutralised');
is($by{q5}{user_agent}, "'\tTAB", 'leading tab neutralised');
is($by{q5}{application_name}, "'+", 'a lone plus is neutralised');
is($by{q4}{user_agent}, "'=1+2", 'user_agent neutralised');
is($by{q5}{object_type}, "'\rCR", 'leading CR neutralised');
is($by{q5}{object_name}, '-1.5e3', 'a number in exponent form is kept');
is($by{q5}{resource_id}, q{'-1,2}, 'a negative-looking non-number is neutralised');
is($by{q5}{details}, '"\'=7"', 'a JSON string scalar is neutralised');
for my $c (grep { $_ ne 'request_id' } @header)
{
    my @bad = grep { defined $_->{$c} && $_->{$c} =~ /^[=+\-@\t\r]/ && $_->{$c} !~ /^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/ } values %by;
    ok(!@bad, "no formula-like cell in column $c");
}
# The stored values are unchanged.
is($node->safe_psql('postgres', "SELECT actor || '|' || application_name || '|' || object_name FROM audit_log.events WHERE request_id = 'q4'"),
    q{=HYPERLINK("http://x","y")|@SUM(A1)|+cmd|' /C calc'!A0}, 'stored values intact');

# A BI tool over JDBC, as a LOGIN role of audit_log_reader.
my $jar = '/usr/share/java/postgresql.jar';
SKIP:
{
    skip 'javac or the PostgreSQL JDBC driver is not installed', 12
      unless -f $jar && system('javac -version >/dev/null 2>&1') == 0;
    $node->safe_psql('postgres', q{
        CREATE ROLE bi_reader LOGIN PASSWORD 'bi-secret' IN ROLE audit_log_reader;
        BEGIN;
        SELECT audit_log.set_context('jdbc_alice', 'user', '198.51.100.9', NULL, 'acme');
        CREATE TABLE jdbc_accounts (id int PRIMARY KEY, email text);
        SELECT audit_log.enable('jdbc_accounts');
        INSERT INTO jdbc_accounts VALUES (1, 'a@example.com');
        UPDATE jdbc_accounts SET email = 'b@example.com';
        SELECT audit_log.log('jdbc.report_sent');
        SELECT audit_log.log('jdbc.report_sent', 'failure');
        COMMIT;
        SELECT audit_log.set_context('jdbc_bob', 'user', '203.0.113.1');
        SELECT audit_log.log('jdbc.report_sent');
    });
    my $classes = $node->basedir . '/jdbc';
    mkdir $classes;
    is(system('javac', '-d', $classes, '-cp', $jar, "$srcdir/test/jdbc/BiProbe.java"), 0, 'BiProbe compiles');
    my $url = 'jdbc:postgresql://127.0.0.1:' . $node->port . '/postgres';
    my $probe = `java -cp $classes:$jar BiProbe $url bi_reader bi-secret 2>&1`;
    is($?, 0, 'BiProbe runs as audit_log_reader over TCP') or diag $probe;
    my @lines = split /\n/, $probe;
    my %views = map { /^VIEW (\S+) \| (.*)$/ ? ($1 => $2) : () } @lines;
    for my $v (qw(event_log privileged_changes login_activity daily_counts event_types))
    {
        ok(length($views{$v} // '') > 10, "view $v listed with its comment");
    }
    my @cols = grep { /^COLUMN (event_log|privileged_changes|login_activity|daily_counts|event_types)\./ } @lines;
    my @uncommented = grep { /\| (null)?$/ } @cols;
    ok(@cols >= 27 + 27 + 12 + 5 + 3 && !@uncommented, scalar(@cols) . ' view columns, each with its comment')
      or diag join("\n", @uncommented);
    ok((grep { $_ eq 'COLUMN event_log.changed_columns | _text | For an UPDATE, the names of the columns whose values changed (keys of new_data).' } @lines),
        'changed_columns described');
    is(join("\n", grep { /^SEARCH / } @lines),
        join("\n",
            'SEARCH ddl.create_table | jdbc_alice | acme | 198.51.100.9 | null',
            'SEARCH audit.enabled | jdbc_alice | acme | 198.51.100.9 | null',
            'SEARCH data.insert | jdbc_alice | acme | 198.51.100.9 | null',
            'SEARCH data.update | jdbc_alice | acme | 198.51.100.9 | {email}',
            'SEARCH jdbc.report_sent | jdbc_alice | acme | 198.51.100.9 | null'),
        'search() with bound parameters: usernames, since, networks, statuses, max_rows');
    is(join("\n", grep { /^DAILY / } @lines),
        "DAILY true | app | jdbc.report_sent | failure | 1\nDAILY true | app | jdbc.report_sent | success | 2",
        'daily_counts read over JDBC');
    ok((grep { $_ eq 'EVENTS_TABLE 42501' } @lines), 'the reader cannot read audit_log.events directly');
}

$node->stop;
done_testing();
