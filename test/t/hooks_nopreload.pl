# Without shared_preload_libraries: CREATE EXTENSION warns which capture is
# off, audit_log.status says so, and DDL and GRANT/REVOKE are still
# captured, once, by the event triggers.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('nopreload');
$node->init;
$node->start;
my ($ret, $out, $err) = $node->psql('postgres', 'CREATE EXTENSION audit_log CASCADE');
is($ret, 0, 'CREATE EXTENSION works without the preload');
like($err, qr/WARNING:  audit_log is not in shared_preload_libraries/, 'and warns');
is($node->safe_psql('postgres',
	'SELECT preloaded, utility_capture, login_capture, worker_pid IS NULL FROM audit_log.status'),
	'f|f|off|t', 'status shows the hooks are off');

$node->safe_psql('postgres', q{
CREATE ROLE np_reader;
CREATE ROLE np_user;
GRANT CREATE ON SCHEMA public TO np_user;
CREATE SCHEMA np;
CREATE TABLE np.t (id int PRIMARY KEY, v text);
ALTER TABLE np.t ADD COLUMN w int;
CREATE INDEX t_v_idx ON np.t (v);
GRANT SELECT ON np.t TO np_reader;
REVOKE SELECT ON np.t FROM np_reader;
ALTER DEFAULT PRIVILEGES IN SCHEMA np GRANT SELECT ON TABLES TO np_reader;
DO $$ BEGIN EXECUTE 'CREATE VIEW np.v AS SELECT id FROM np.t'; END $$;
DROP VIEW np.v;
});
# as an unprivileged user: db_user and effective_role are the user's
$node->safe_psql('postgres', 'SET ROLE np_user; CREATE TABLE public.np_owned (x int); RESET ROLE;');

is($node->safe_psql('postgres', q{
SELECT string_agg(event_type || ':' || coalesce(object_type, '') || ':' || coalesce(object_name, ''), E'\n' ORDER BY event_id)
  FROM audit_log.events WHERE category IN ('ddl', 'privilege') AND event_type <> 'extension.created'}),
	join("\n",
		'privilege.granted:schema:',
		'ddl.create_schema:schema:np',
		'ddl.create_table:table:np.t',
		'ddl.create_index:index:np.t_pkey',
		'ddl.alter_table:table:np.t',
		'ddl.create_index:index:np.t_v_idx',
		'privilege.granted:table:',
		'privilege.revoked:table:',
		'privilege.defaults_altered:table:',
		'ddl.create_view:view:np.v',
		'ddl.drop_view:view:np.v',
		'ddl.create_table:table:public.np_owned'),
	'DDL and GRANT/REVOKE captured once each by the event triggers');
is($node->safe_psql('postgres', q{
SELECT effective_role FROM audit_log.events WHERE object_name = 'public.np_owned'}),
	'np_user', 'effective_role is the user who ran the DDL');

# with the preload added, nothing is recorded twice
$node->append_conf('postgresql.conf', "shared_preload_libraries = 'audit_log'\naudit_log.database = 'postgres'\n");
$node->restart;
$node->safe_psql('postgres', 'CREATE TABLE np.after (id int)');
is($node->safe_psql('postgres',
	"SELECT count(*) FROM audit_log.events WHERE event_type = 'ddl.create_table' AND object_name = 'np.after'"),
	'1', 'with the preload, the hook records it and the event trigger steps aside');
$node->stop;
done_testing();
