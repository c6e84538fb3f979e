# AuditLogNode: what the TAP files of audit_log share (test/t/*.pl, found
# through PROVE_FLAGS = -I test/t in the Makefile).
#
#   audit_node($name, %opts)   a started PostgreSQL::Test::Cluster set up
#                              for audit_log (below)
#   add_preload($node)         the preload added to a cluster's configuration
#                              (effective at its next restart)
#   set_hba($node, @lines)     pg_hba.conf made of exactly these lines, reloaded
#   wait_for_events($node, $where, $n, $db)
#                              poll until exactly $n events match $where
#
# Each file keeps its own configuration in sight: audit_node() writes only
# what every preloaded test cluster has, the file passes the rest.
package AuditLogNode;

use strict;
use warnings;
use Exporter 'import';
use PostgreSQL::Test::Cluster;

our @EXPORT = qw(audit_node add_preload set_hba wait_for_events);

# What every preloaded test cluster has in postgresql.conf.
my $preload_conf = "shared_preload_libraries = 'audit_log'\naudit_log.database = 'postgres'\n";

# audit_node($name, %opts): a new cluster, initialised, configured and
# started.  Options:
#   conf      => lines added to postgresql.conf after the two of the preload
#   init      => { ... } options of init() (allows_streaming => 'logical', ...)
#   preload   => 0: no shared_preload_libraries and no audit_log.database
#                (a cluster without the preload; conf still applies)
#   extension => 0: no CREATE EXTENSION audit_log CASCADE in 'postgres'
#                (default: created when preloaded, not otherwise)
sub audit_node
{
	my ($name, %opts) = @_;
	my $preload = $opts{preload} // 1;
	my $node = PostgreSQL::Test::Cluster->new($name);
	$node->init(%{ $opts{init} // {} });
	my $conf = $preload ? $preload_conf : '';
	$conf .= $opts{conf} // '';
	$node->append_conf('postgresql.conf', $conf) if $conf ne '';
	$node->start;
	$node->safe_psql('postgres', 'CREATE EXTENSION audit_log CASCADE')
	  if $opts{extension} // $preload;
	return $node;
}

# add_preload($node): append the preload's lines to postgresql.conf.
sub add_preload
{
	my ($node) = @_;
	$node->append_conf('postgresql.conf', $preload_conf);
	return;
}

# set_hba($node, @lines): replace pg_hba.conf by these lines, then reload.
sub set_hba
{
	my ($node, @lines) = @_;
	my $hba = $node->data_dir . '/pg_hba.conf';
	open(my $fh, '>', $hba) or die "cannot write $hba: $!";
	print $fh "$_\n" for @lines;
	close $fh or die "cannot write $hba: $!";
	$node->reload;
	return;
}

# wait_for_events($node, $where, $n, $db): poll (as poll_query_until does,
# up to its timeout) until exactly $n rows of audit_log.events in database
# $db ('postgres' by default) satisfy the condition $where; true if they do.
sub wait_for_events
{
	my ($node, $where, $n, $db) = @_;
	return $node->poll_query_until($db // 'postgres',
		"SELECT count(*) FROM audit_log.events WHERE $where", $n);
}

1;
