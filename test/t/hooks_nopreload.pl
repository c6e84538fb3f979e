# Without shared_preload_libraries: CREATE EXTENSION warns which capture is
# off, audit_log.status says so, and DDL and GRANT/REVOKE are still
# captured, once, by the event triggers.
use strict;
use warnings;
use PostgreSQL::Test::Utils;
use Test::More;
use AuditLogNode;

# CREATE EXTENSION is the first thing tested: audit_node() does not create it.
my $node = audit_node('nopreload', preload => 0);

# The attack on the install: a role that is no superuser (CREATEROLE, CREATE
# on the database) makes the extension's schema, or one of its roles, its
# own beforehand.  Refused: nothing is created over them.
$node->safe_psql('postgres', q{
CREATE ROLE mallory LOGIN CREATEROLE;
GRANT CREATE ON DATABASE postgres TO mallory;
});
$node->safe_psql('postgres', 'CREATE SCHEMA audit_log', extra_params => [ '-U', 'mallory' ]);
my ($ret, $out, $err) = $node->psql('postgres', 'CREATE EXTENSION audit_log CASCADE');
like($err, qr/schema "audit_log" is owned by "mallory", a role that is not a superuser/,
	'CREATE EXTENSION refuses a schema made beforehand by a role that is not a superuser');
$node->safe_psql('postgres', 'DROP SCHEMA audit_log', extra_params => [ '-U', 'mallory' ]);
# (16 and later give the creating CREATEROLE role the ADMIN OPTION by
# itself; 15 lets it grant one.)
$node->safe_psql('postgres', q{
CREATE ROLE audit_log_admin;
DO $$
BEGIN
    IF current_setting('server_version_num')::int < 160000 THEN
        GRANT audit_log_admin TO mallory WITH ADMIN OPTION;
    END IF;
END $$;
}, extra_params => [ '-U', 'mallory' ]);
($ret, $out, $err) = $node->psql('postgres', 'CREATE EXTENSION audit_log CASCADE');
like($err, qr/a role of the extension is administered by a role that is not a superuser: mallory administers audit_log_admin/,
	'CREATE EXTENSION refuses a role administered by a role that is not a superuser');
is($node->safe_psql('postgres', "SELECT count(*) FROM pg_extension WHERE extname = 'audit_log'"), '0',
	'nothing was created');
$node->safe_psql('postgres', 'DROP ROLE audit_log_admin');
# A role of the extension made beforehand that can log in, with a password
# its maker knows (15: any CREATEROLE role may; no ADMIN OPTION needed).
$node->safe_psql('postgres', q{CREATE ROLE audit_log_admin LOGIN PASSWORD 'known-to-mallory'},
	extra_params => [ '-U', 'mallory' ]);
($ret, $out, $err) = $node->psql('postgres', 'CREATE EXTENSION audit_log CASCADE');
like($err, qr/role "audit_log_admin" of the extension can log in or has a password/,
	'CREATE EXTENSION refuses a role of the extension made beforehand that can log in');
$node->safe_psql('postgres', 'DROP ROLE audit_log_admin');
# A role of the extension made beforehand and granted to its maker (15: no
# ADMIN OPTION needed; from 16 its maker administers it).
$node->safe_psql('postgres', q{CREATE ROLE audit_log_admin; GRANT audit_log_admin TO mallory},
	extra_params => [ '-U', 'mallory' ]);
($ret, $out, $err) = $node->psql('postgres', 'CREATE EXTENSION audit_log CASCADE');
like($err, qr/a role of the extension (was granted|is administered) by a role that is not a superuser/,
	'CREATE EXTENSION refuses a membership its maker granted');
$node->safe_psql('postgres', 'DROP ROLE audit_log_admin');

($ret, $out, $err) = $node->psql('postgres', 'CREATE EXTENSION audit_log CASCADE');
is($ret, 0, 'CREATE EXTENSION works without the preload');
like($err, qr/WARNING:  audit_log is not in shared_preload_libraries/, 'and warns');
is($node->safe_psql('postgres',
	'SELECT preloaded, utility_capture, login_capture, worker_pid IS NULL FROM audit_log.status'),
	'f|f|off|t', 'status shows the hooks are off');
# A central audit database needs the preload: half of a subscription's fence
# (no table outside the audit schema) is a hook.
($ret, $out, $err) = $node->psql('postgres',
	"SELECT audit_log.subscribe('nopre', 'host=" . $node->host . " port=" . $node->port . " dbname=postgres')");
like($err, qr/a central audit database needs audit_log in shared_preload_libraries/,
	'subscribe() without the preload: refused');
is($node->safe_psql('postgres', "SELECT count(*) FROM pg_subscription"), '0', 'and nothing made');

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

# Partitions without the preload: the ddl_command_end event trigger gives a
# partition created or attached later the capture of its audited table, at
# once, also for a table owner with no right on the audit schema, and takes
# it away from a detached one.
$node->safe_psql('postgres', q{
SET ROLE np_user;
CREATE TABLE public.np_parted (id int PRIMARY KEY, v text) PARTITION BY RANGE (id);
RESET ROLE;
SELECT audit_log.enable('public.np_parted', mask_columns => '{v}');
SET ROLE np_user;
BEGIN;
CREATE TABLE public.np_parted_1 PARTITION OF public.np_parted FOR VALUES FROM (0) TO (10)
    PARTITION BY RANGE (id);
CREATE TABLE public.np_parted_1a PARTITION OF public.np_parted_1 FOR VALUES FROM (0) TO (10);
INSERT INTO public.np_parted_1a VALUES (1, 'a');
CREATE TABLE public.np_parted_2 (id int PRIMARY KEY, v text);
ALTER TABLE public.np_parted ATTACH PARTITION public.np_parted_2 FOR VALUES FROM (10) TO (20);
INSERT INTO public.np_parted_2 VALUES (11, 'b');
ALTER TABLE public.np_parted DETACH PARTITION public.np_parted_2;
INSERT INTO public.np_parted_2 VALUES (12, 'c');
COMMIT;
RESET ROLE;
});
is($node->safe_psql('postgres', q{
SELECT string_agg(event_type || ':' || object_name || ':' || coalesce(resource_id, '') || ':' ||
                  coalesce(new_data::text, '') || ':' || coalesce(details->>'partition', ''), E'\n' ORDER BY event_id)
  FROM audit_log.events WHERE category IN ('data', 'audit') AND object_name = 'public.np_parted'
   AND event_type <> 'audit.enabled'}),
	join("\n",
		'audit.partition_attached:public.np_parted:::public.np_parted_1',
		'audit.partition_attached:public.np_parted:::public.np_parted_1a',
		'data.insert:public.np_parted:1:{"v": "***", "id": 1}:public.np_parted_1a',
		'audit.partition_attached:public.np_parted:::public.np_parted_2',
		'data.insert:public.np_parted:11:{"v": "***", "id": 11}:public.np_parted_2',
		'audit.partition_detached:public.np_parted:::public.np_parted_2'),
	'without the preload, new and attached partitions are audited at once, a detached one no more');

# Capture turned off by the table's owner without the preload (the event
# triggers see it): DISABLE TRIGGER, a capture trigger replaced by the
# owner's own, DROP TRIGGER, RENAME; each is audit.capture_disabled, once.
$node->safe_psql('postgres', q{
SET ROLE np_user;
CREATE TABLE public.np_off (id int PRIMARY KEY);
RESET ROLE;
SELECT audit_log.enable('public.np_off');
SET ROLE np_user;
ALTER TABLE public.np_off DISABLE TRIGGER audit_log_insert;
CREATE FUNCTION public.np_nop() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN RETURN NULL; END$$;
CREATE OR REPLACE TRIGGER audit_log_update AFTER UPDATE ON public.np_off
    FOR EACH STATEMENT EXECUTE FUNCTION public.np_nop();
DROP TRIGGER audit_log_delete ON public.np_off;
ALTER TRIGGER audit_log_truncate ON public.np_off RENAME TO np_renamed;
RESET ROLE;
});
is($node->safe_psql('postgres', q{
SELECT string_agg(event_type || ':' || object_name || ':' || (details->>'trigger') || ':' ||
                  (details->>'action') || ':' || effective_role, E'\n' ORDER BY event_id)
  FROM audit_log.events WHERE event_type = 'audit.capture_disabled'}),
	join("\n",
		'audit.capture_disabled:public.np_off:audit_log_insert:disable trigger:np_user',
		'audit.capture_disabled:public.np_off:audit_log_update:replace trigger:np_user',
		'audit.capture_disabled:public.np_off:audit_log_delete:drop trigger:np_user',
		'audit.capture_disabled:public.np_off:audit_log_truncate:rename trigger:np_user'),
	'without the preload, capture turned off by its owner is recorded');

# Schema changes of an audited table by its owner without the preload
# (the ddl_command_end and sql_drop event triggers): the table made an
# inheritance child of the owner's table, or given an unaudited child, is
# refused; a capture trigger made to depend on an extension is refused;
# a renamed masked column stays masked; a dropped table's options go.
$node->safe_psql('postgres', q{
SET ROLE np_user;
CREATE TABLE public.np_acct (id int PRIMARY KEY, balance int, secret text);
CREATE TABLE public.np_sneaky (id int, balance int, secret text);
RESET ROLE;
SELECT audit_log.enable('public.np_acct', mask_columns => '{secret}');
});
for my $ddl ('ALTER TABLE public.np_acct INHERIT public.np_sneaky',
	'CREATE TABLE public.np_child () INHERITS (public.np_acct)',
	'ALTER TRIGGER audit_log_update ON public.np_acct DEPENDS ON EXTENSION audit_log')
{
	my ($ret, $out, $err) = $node->psql('postgres', "SET ROLE np_user; $ddl");
	like($err, qr/ERROR:  (cannot make|capture trigger)/, "without the preload, refused: $ddl");
}
$node->safe_psql('postgres', q{
SET ROLE np_user;
INSERT INTO public.np_acct VALUES (1, 10, 's1');
ALTER TABLE public.np_acct RENAME secret TO secret_old;
ALTER TABLE public.np_acct ADD COLUMN secret text;
UPDATE public.np_acct SET balance = 0, secret = 'new';
});
is($node->safe_psql('postgres', q{
SELECT string_agg(coalesce(old_data::text, '') || ':' || coalesce(new_data::text, ''), E'\n' ORDER BY event_id)
  FROM audit_log.events WHERE object_name = 'public.np_acct' AND category = 'data'}),
	join("\n",
		':{"id": 1, "secret": "***", "balance": 10}',
		'{"id": 1, "secret": null, "balance": 10, "secret_old": "***"}:{"secret": "new", "balance": 0}'),
	'without the preload, a renamed masked column stays masked');
$node->safe_psql('postgres', 'SET ROLE np_user; DROP TABLE public.np_acct, public.np_sneaky');
is($node->safe_psql('postgres', q{
SELECT count(*) FROM audit_log.table_config WHERE NOT EXISTS (SELECT 1 FROM pg_class WHERE oid = relid)}),
	'0', 'without the preload, a dropped table\'s options are forgotten');

# with the preload added, nothing is recorded twice
add_preload($node);
$node->restart;
$node->safe_psql('postgres', q{
CREATE TABLE np.after (id int);
ALTER TABLE public.np_off ENABLE TRIGGER audit_log_insert;
});
is($node->safe_psql('postgres',
	"SELECT count(*) FROM audit_log.events WHERE event_type = 'ddl.create_table' AND object_name = 'np.after'"),
	'1', 'with the preload, the hook records it and the event trigger steps aside');
is($node->safe_psql('postgres',
	"SELECT count(*) FROM audit_log.events WHERE event_type = 'audit.capture_disabled' AND details->>'action' LIKE 'enable trigger%'"),
	'1', 'and capture turned off is recorded once');
$node->stop;
done_testing();
