/*-------------------------------------------------------------------------
 *
 * capture_auth.c
 *		The ClientAuthentication hook: auth.login_succeeded and
 *		auth.login_failed (preload only).
 *
 * The hook runs in a new backend before it is connected to a database, so
 * no transaction and no catalog access: the event is built from the Port
 * alone and handed to the queue (queue.c), which the worker writes to
 * audit_log.database.  The user and database names come from an
 * unauthenticated client: they are stored as given (the worker replaces
 * bytes invalid in the database encoding), never trusted, never looked up.
 * audit_log.log_connections (all, failures, none) decides what is kept.
 *
 *-------------------------------------------------------------------------
 */
#include "audit_log.h"

#include <sys/socket.h>
#include <netdb.h>

#include "common/ip.h"
#include "libpq/auth.h"
#include "libpq/hba.h"
#include "libpq/libpq-be.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "lib/stringinfo.h"
#include "utils/builtins.h"
#include "utils/json.h"
#include "utils/timestamp.h"

static ClientAuthentication_hook_type prev_client_auth_hook = NULL;

/*
 * port_addr: the client's address as text, NULL on a unix socket.
 */
static const char *
port_addr(Port *port)
{
	char		host[NI_MAXHOST];

	if (port->raddr.addr.ss_family != AF_INET &&
		port->raddr.addr.ss_family != AF_INET6)
		return NULL;
	if (pg_getnameinfo_all(&port->raddr.addr, port->raddr.salen, host, sizeof(host),
						   NULL, 0, NI_NUMERICHOST | NI_NUMERICSERV) != 0)
		return NULL;
	clean_ipv6_addr(port->raddr.addr.ss_family, host);
	return pstrdup(host);
}

/*
 * safe_name: the name as given when it is valid UTF-8; else a copy with
 * each invalid byte replaced by '?' (*changed set), so that the event can
 * be stored and read whatever the client sent.
 */
static const char *
safe_name(const char *s, bool *changed)
{
	char	   *copy;
	int			len;
	int			i = 0;

	if (s == NULL || pg_encoding_verifymbstr(PG_UTF8, s, strlen(s)) == (int) strlen(s))
		return s;
	*changed = true;
	copy = pstrdup(s);
	len = strlen(copy);
	while (i < len)
	{
		int			l = pg_encoding_verifymbchar(PG_UTF8, copy + i, len - i);

		if (l < 0)
		{
			copy[i] = '?';
			l = 1;
		}
		i += l;
	}
	return copy;
}

/*
 * hex_of: the bytes of s in hex.
 */
static char *
hex_of(const char *s)
{
	StringInfoData b;

	initStringInfo(&b);
	for (; *s; s++)
		appendStringInfo(&b, "%02x", (unsigned char) *s);
	return b.data;
}

/*
 * audit_client_auth: record the outcome of an authentication.
 */
static void
audit_client_auth(Port *port, int status)
{
	AuditEvent	ev;
	StringInfoData d;
	const char *method;
	const char *user;
	const char *dbname;
	bool		changed = false;
	bool		ok = (status == STATUS_OK);

	if (prev_client_auth_hook)
		prev_client_auth_hook(port, status);

	/* the client went away before answering (psql asking for a password) */
	if (status == STATUS_EOF)
		return;
	if (audit_log_connections == AUDIT_CONN_NONE ||
		(audit_log_connections == AUDIT_CONN_FAILURES && ok))
		return;

	method = port->hba ? hba_authname(port->hba->auth_method) : "unknown";
	user = safe_name(port->user_name, &changed);
	dbname = safe_name(port->database_name, &changed);

	memset(&ev, 0, sizeof(ev));
	ev.occurred_at = GetCurrentTimestamp();
	ev.category = "auth";
	ev.event_type = ok ? "auth.login_succeeded" : "auth.login_failed";
	ev.status = ok ? "success" : "failure";
	ev.actor = user;
	ev.actor_type = "db_role";
	ev.db_user = user;
	ev.client_addr = port_addr(port);
	ev.application_name = port->application_name;
	ev.database = dbname;
	ev.object_type = "database";
	ev.object_name = dbname;
	ev.command = "LOGIN";
	ev.backend_pid = MyProcPid;

	initStringInfo(&d);
	appendStringInfoString(&d, "{\"user_name\": ");
	escape_json(&d, user ? user : "");
	appendStringInfoString(&d, ", \"database\": ");
	escape_json(&d, dbname ? dbname : "");
	if (changed)
	{
		/* the exact bytes the client sent */
		appendStringInfoString(&d, ", \"user_name_hex\": ");
		escape_json(&d, hex_of(port->user_name ? port->user_name : ""));
		appendStringInfoString(&d, ", \"database_hex\": ");
		escape_json(&d, hex_of(port->database_name ? port->database_name : ""));
	}
	appendStringInfoString(&d, ", \"auth_method\": ");
	escape_json(&d, method);
	appendStringInfoString(&d, ", \"connection\": ");
	escape_json(&d, ev.client_addr ? "host" : "local");
	if (port->remote_host && port->remote_host[0] && ev.client_addr &&
		strcmp(port->remote_host, ev.client_addr) != 0)
	{
		appendStringInfoString(&d, ", \"remote_host\": ");
		escape_json(&d, port->remote_host);
	}
	if (!ok)
	{
		appendStringInfoString(&d, ", \"reason\": ");
		escape_json(&d, port->hba == NULL ? "no pg_hba.conf entry" :
					(port->hba->auth_method == uaReject || port->hba->auth_method == uaImplicitReject) ?
					"rejected by pg_hba.conf" : "authentication failed");
	}
	appendStringInfoChar(&d, '}');
	/* invalid bytes in the names must not make the JSON unparsable here */
	PG_TRY();
	{
		ev.details = DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum(d.data)));
	}
	PG_CATCH();
	{
		FlushErrorState();
		ev.details = NULL;
	}
	PG_END_TRY();

	audit_queue_event(&ev, true);
}

/*
 * audit_auth_init: install the hook (called from _PG_init when preloaded).
 */
void
audit_auth_init(void)
{
	prev_client_auth_hook = ClientAuthentication_hook;
	ClientAuthentication_hook = audit_client_auth;
}
