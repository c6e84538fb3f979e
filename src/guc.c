/*-------------------------------------------------------------------------
 *
 * guc.c
 *		The audit_log.* settings.
 *
 * The context settings (actor, actor_type, client_addr, user_agent, tenant,
 * request_id) are claims of the application and stay user-settable, meant
 * for SET LOCAL / set_config(..., true).  Everything that changes what is
 * audited, or where it goes, is superuser-only (PGC_SUSET) or stricter.
 * No locking: settings are backend-local.
 *
 *-------------------------------------------------------------------------
 */
#include "audit_log.h"

#include <limits.h>
#include <sys/socket.h>

#include "access/parallel.h"
#include "access/xact.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/inet.h"

char	   *audit_actor = NULL;
char	   *audit_actor_type = NULL;
char	   *audit_client_addr = NULL;
char	   *audit_user_agent = NULL;
char	   *audit_tenant = NULL;
char	   *audit_request_id = NULL;
char	   *audit_database = NULL;
int			audit_log_connections = AUDIT_CONN_ALL;
int			audit_queue_size = 1024;
int			audit_maintenance_interval = 3600;
int			audit_export_max_rows = AUDIT_EXPORT_MAX_ROWS_DEFAULT;
int			audit_alert_interval = 10;

/*
 * Read by the SQL functions only (current_setting()): defined here so that
 * they are typed, checked and documented; no C code reads them.
 */
static int	premake_days = 7;
static int	seal_window = 3600;
static int	seal_delay = 300;

/*
 * The context settings: claims of the application about who is behind the
 * connection, user-settable; setting them is not an audit event.  In the
 * order of audit_log.set_context()'s arguments.
 */
const char *const audit_context_settings[AUDIT_NCONTEXT] = {
	"audit_log.actor", "audit_log.actor_type", "audit_log.client_addr",
	"audit_log.user_agent", "audit_log.tenant", "audit_log.request_id"
};

static const struct config_enum_entry log_connections_options[] = {
	{"all", AUDIT_CONN_ALL, false},
	{"failures", AUDIT_CONN_FAILURES, false},
	{"none", AUDIT_CONN_NONE, false},
	{NULL, 0, false}
};

/*
 * check_client_addr: an audit_log.client_addr that is not an address is an
 * error at the time it is set (SQLSTATE 22P02 through the GUC machinery).
 */
static bool
check_client_addr(char **newval, void **extra, GucSource source)
{
	unsigned char addr[16];
	int			family;
	int			bits;

	if (*newval == NULL || (*newval)[0] == '\0')
		return true;
	/* The same parse as inet_in, without throwing. */
	family = strchr(*newval, ':') ? PGSQL_AF_INET6 : PGSQL_AF_INET;
	bits = pg_inet_net_pton(family, *newval, addr, -1);
	if (bits >= 0 && bits <= (family == PGSQL_AF_INET ? 32 : 128))
		return true;
	GUC_check_errcode(ERRCODE_INVALID_TEXT_REPRESENTATION);
	GUC_check_errmsg("invalid client address \"%s\"", *newval);
	GUC_check_errhint("Use an IPv4 or IPv6 address such as 203.0.113.7 or 2001:db8::1.");
	return false;
}

/*
 * audit_is_context_setting: name is one of the context settings.
 */
bool
audit_is_context_setting(const char *name)
{
	int			i;

	for (i = 0; i < AUDIT_NCONTEXT; i++)
		if (strcmp(name, audit_context_settings[i]) == 0)
			return true;
	return false;
}

/*
 * check_superuser_on: audit_log.internal and audit_log.restore relax the
 * guard and the capture; PostgreSQL 15 lets a superuser grant SET on any
 * parameter (GRANT SET ON PARAMETER), so PGC_SUSET alone does not keep them
 * to superusers.  Only a superuser (the owner of the extension's functions,
 * in their SET clause) may turn them on, in a SET, a function's SET clause,
 * a connection's options or a role's settings alike.  A parallel worker
 * takes the leader's settings before its user (the leader checked them).
 */
static bool
check_superuser_on(const char *name, bool newval, GucSource source)
{
	if (!newval || source == PGC_S_DEFAULT || IsParallelWorker())
		return true;
	/* (a session's startup options and role settings come in its setup transaction) */
	if (IsTransactionState() && OidIsValid(GetUserId()) && superuser())
		return true;
	GUC_check_errcode(ERRCODE_INSUFFICIENT_PRIVILEGE);
	GUC_check_errmsg("only a superuser may turn %s on", name);
	GUC_check_errdetail("It relaxes what audit_log captures and guards; a grant of SET on it does not suffice.");
	return false;
}

/*
 * check_internal: see check_superuser_on().
 */
static bool
check_internal(bool *newval, void **extra, GucSource source)
{
	return check_superuser_on("audit_log.internal", *newval, source);
}

/*
 * check_restore: audit_log.restore is a choice of the restoring session
 * (PGOPTIONS or SET), never a default of the server, a database or a role:
 * a session with it on that creates the extension captures nothing.
 */
static bool
check_restore(bool *newval, void **extra, GucSource source)
{
	if (!*newval || source == PGC_S_DEFAULT)
		return true;
	if (source >= PGC_S_CLIENT)
		return check_superuser_on("audit_log.restore", *newval, source);
	GUC_check_errcode(ERRCODE_INVALID_PARAMETER_VALUE);
	GUC_check_errmsg("audit_log.restore can only be set by the restoring session");
	GUC_check_errhint("Set it with PGOPTIONS='-c audit_log.restore=on' for the pg_restore or psql that restores the dump.");
	return false;
}

/*
 * audit_define_settings: define every audit_log.* setting and reserve the
 * prefix.  Called from _PG_init, in the postmaster when preloaded or in a
 * backend when the library is loaded on first use.
 */
void
audit_define_settings(void)
{
	DefineCustomStringVariable("audit_log.actor",
							   "Application user behind the connection (a claim of the application).",
							   NULL, &audit_actor, "", PGC_USERSET, 0,
							   NULL, NULL, NULL);
	DefineCustomStringVariable("audit_log.actor_type",
							   "Kind of actor: user, api_client, support, provisioner, system...",
							   NULL, &audit_actor_type, "", PGC_USERSET, 0,
							   NULL, NULL, NULL);
	DefineCustomStringVariable("audit_log.client_addr",
							   "Address of the end user behind the connection.",
							   NULL, &audit_client_addr, "", PGC_USERSET, 0,
							   check_client_addr, NULL, NULL);
	DefineCustomStringVariable("audit_log.user_agent",
							   "User agent of the end user behind the connection.",
							   NULL, &audit_user_agent, "", PGC_USERSET, 0,
							   NULL, NULL, NULL);
	DefineCustomStringVariable("audit_log.tenant",
							   "Tenant of the end user behind the connection.",
							   NULL, &audit_tenant, "", PGC_USERSET, 0,
							   NULL, NULL, NULL);
	DefineCustomStringVariable("audit_log.request_id",
							   "Correlation id of the request being served.",
							   NULL, &audit_request_id, "", PGC_USERSET, 0,
							   NULL, NULL, NULL);
	DefineCustomStringVariable("audit_log.database",
							   "Database that receives cluster-wide events (roles, logins, databases, ALTER SYSTEM).",
							   NULL, &audit_database, "postgres", PGC_SIGHUP, 0,
							   NULL, NULL, NULL);
	DefineCustomEnumVariable("audit_log.log_connections",
							 "Which logins are recorded: all, failures or none.",
							 NULL, &audit_log_connections, AUDIT_CONN_ALL,
							 log_connections_options, PGC_SIGHUP, 0,
							 NULL, NULL, NULL);
	/*
	 * A PGC_POSTMASTER setting can only be defined while preloading: loading
	 * the library later (CREATE EXTENSION without the preload) would
	 * otherwise end the backend with FATAL.  Without the preload there is
	 * no queue.
	 */
	if (process_shared_preload_libraries_in_progress)
		DefineCustomIntVariable("audit_log.queue_size",
								"Capacity, in events, of the shared-memory queue to the background worker.",
								NULL, &audit_queue_size, 1024, 4, 1048576,
								PGC_POSTMASTER, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("audit_log.premake_days",
							"Daily partitions created ahead of today.",
							NULL, &premake_days, 7, 1, 365,
							PGC_SUSET, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("audit_log.maintenance_interval",
							"How often the background worker runs audit_log.maintain().",
							NULL, &audit_maintenance_interval, 3600, 1, INT_MAX / 1000,
							PGC_SIGHUP, GUC_UNIT_S, NULL, NULL, NULL);
	DefineCustomIntVariable("audit_log.seal_window",
							"Length of the time windows that seal() chains.",
							NULL, &seal_window, 3600, 60, 86400,
							PGC_SUSET, GUC_UNIT_S, NULL, NULL, NULL);
	DefineCustomIntVariable("audit_log.seal_delay",
							"How long after its end a window may be sealed.",
							NULL, &seal_delay, 300, 0, 86400,
							PGC_SUSET, GUC_UNIT_S, NULL, NULL, NULL);
	DefineCustomIntVariable("audit_log.export_max_rows",
							"Most rows one export returns.",
							NULL, &audit_export_max_rows,
							AUDIT_EXPORT_MAX_ROWS_DEFAULT, 1, INT_MAX,
							PGC_SUSET, 0, NULL, NULL, NULL);

	DefineCustomIntVariable("audit_log.alert_interval",
							"How often the background worker runs audit_log.check_alerts().",
							NULL, &audit_alert_interval, 10, 1, INT_MAX / 1000,
							PGC_SIGHUP, GUC_UNIT_S, NULL, NULL, NULL);

	/*
	 * Hidden: marks the extension's own operations (guard.c).  Set only in
	 * the SET clause of its functions, which PostgreSQL undoes on return
	 * and on error.
	 */
	DefineCustomBoolVariable("audit_log.internal",
							 "Marks an internal operation of audit_log's own functions.",
							 NULL, &audit_internal_setting, false,
							 PGC_SUSET,
							 GUC_NO_SHOW_ALL | GUC_NO_RESET_ALL | GUC_NOT_IN_SAMPLE | GUC_DISALLOW_IN_FILE,
							 check_internal, NULL, NULL);

	DefineCustomBoolVariable("audit_log.restore",
							 "This session restores a dump of a database that has audit_log (see the README, Backup and restore).",
							 NULL, &audit_restore, false,
							 PGC_SUSET, 0, check_restore, NULL, NULL);

	MarkGUCPrefixReserved("audit_log");
}
