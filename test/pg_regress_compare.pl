#!/usr/bin/perl
# pg_regress_compare.pl LIST WITHOUT_RESULTS WITH_RESULTS
#
# Compares the results/*.out of PostgreSQL's regression suite run without
# and with audit_log (scripts/pg_regress_compare.sh).  Both sides are
# normalised first (runs of blanks become one, a table's separator line
# loses its width), so that a longer name in a listing does not re-pad the
# rows around it.  Every line that differs must then match one of the
# patterns LIST gives for its test; exit 1 (and the lines) otherwise.
#
# LIST: "test<TAB>perl regex" lines, matched against the whole differing
# line with its leading "+" (only in the run with audit_log) or "-" (only
# in the run without); "#" starts a comment.
use strict;
use warnings;
use File::Temp qw(tempdir);

my ($list, $without, $with) = @ARGV;
die "usage: $0 LIST WITHOUT_RESULTS WITH_RESULTS\n" unless defined $with;

# @secdef@: the extension's SECURITY DEFINER functions, from src/sql.
(my $srcsql = $list) =~ s{/test/[^/]+$}{/src/sql};
my @secdef;
for my $f (glob "$srcsql/*.sql")
{
	open(my $fh, '<', $f) or die "$f: $!\n";
	local $/;
	my $sql = <$fh>;
	close $fh;
	# The header: up to the body ($$) or, for a C function, the end.
	while ($sql =~ /CREATE (?:OR REPLACE )?FUNCTION \@extschema\@\.(\w+)\((.*?)(?:\$\$|;)/sg)
	{
		my ($name, $head) = ($1, $2);
		push @secdef, $name if $head =~ /SECURITY DEFINER/;
	}
}
my $secdef = join('|', sort { length($b) <=> length($a) } @secdef) || 'no function';

my %allow;    # test => [ [regex, line number in LIST, uses] ... ]
open(my $lf, '<', $list) or die "$list: $!\n";
while (my $l = <$lf>)
{
	chomp $l;
	next if $l =~ /^\s*(#|$)/;
	my ($test, $re) = split /\t+/, $l, 2;
	die "$list:$.: expected \"test<TAB>regex\"\n" unless defined $re;
	$re =~ s/\@secdef\@/$secdef/g;
	push @{ $allow{$test} }, [ qr/^(?:$re)$/, $., 0 ];
}
close $lf;

sub normalise
{
	my ($in, $out) = @_;
	open(my $i, '<', $in) or die "$in: $!\n";
	open(my $o, '>', $out) or die "$out: $!\n";
	while (my $l = <$i>)
	{
		$l =~ s/[ \t]+/ /g;
		$l =~ s/ +$//;
		$l =~ s/-{2,}/-/g if $l =~ /^-[-+]*$/;
		print $o $l;
	}
	close $i;
	close $o;
}

my %tests;
for my $dir ($without, $with)
{
	opendir(my $d, $dir) or die "$dir: $!\n";
	$tests{$_} = 1 for map { /^(.*)\.out$/ ? $1 : () } readdir $d;
	closedir $d;
}

my $tmp = tempdir(CLEANUP => 1);
my ($compared, $differing, $allowed, @unexpected) = (0, 0, 0);
for my $t (sort keys %tests)
{
	my ($a, $b) = ("$without/$t.out", "$with/$t.out");
	if (!-f $a || !-f $b)
	{
		push @unexpected, "$t: no result in the run " . (-f $a ? 'with' : 'without') . ' audit_log';
		next;
	}
	$compared++;
	normalise($a, "$tmp/a");
	normalise($b, "$tmp/b");
	my @diff = `diff -U0 '$tmp/a' '$tmp/b'`;
	next unless @diff;
	$differing++;
	my ($hunk, @bad) = ('');
	for my $l (@diff)
	{
		chomp $l;
		next if $l =~ /^(---|\+\+\+) /;
		if ($l =~ /^@@ -(\d+)/) { $hunk = "line $1"; next; }
		my $ok = 0;
		for my $p (@{ $allow{$t} || [] })
		{
			if ($l =~ $p->[0]) { $p->[2]++; $ok = 1; last; }
		}
		$ok ? $allowed++ : push @bad, "  ($hunk) $l";
	}
	push @unexpected, "$t: differences not on the list:", @bad if @bad;
}

my @unused;
for my $t (sort keys %allow)
{
	push @unused, map { "$list:$_->[1] ($t)" } grep { !$_->[2] } @{ $allow{$t} };
}
print "compared $compared result files: $differing differ, $allowed differing lines on the list\n";
print "list entries no difference needed (the extension may no longer cause them): @unused\n" if @unused;
if (@unexpected)
{
	print "$_\n" for @unexpected;
	exit 1;
}
exit 0;
