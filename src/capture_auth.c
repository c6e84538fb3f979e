/*-------------------------------------------------------------------------
 *
 * capture_auth.c
 *		The ClientAuthentication hook: auth.login_succeeded and
 *		auth.login_failed (preload only).
 *
 * The hook runs in a new backend before it is connected to a database: the
 * event is built from the Port (and, for a failure, what the shared catalog
 * pg_authid says of the role) and handed to the queue (queue.c), which the
 * worker writes to audit_log.database.  The user and database names come
 * from an unauthenticated client: they are stored as given (the worker
 * replaces bytes invalid in the database encoding), never trusted (the
 * role's facts are looked up by the name as the password check did).
 * audit_log.log_connections
 * (all, failures, none) decides what is kept.
 *
 * A failed authentication is queued at once.  A passed one is not a login
 * yet: the backend may still refuse the session (a role without LOGIN, no
 * CONNECT privilege, a database that does not exist or does not accept
 * connections, a connection limit), with a FATAL.  The hook runs inside
 * the transaction the backend starts to set the session up; the event
 * waits for its end: at commit the login succeeded, at abort it failed,
 * with the FATAL's message (kept by an emit_log_hook while a login waits).
 * From 17 on, a login event trigger of the database runs next, in a
 * transaction of its own, and may refuse the session too: the event then
 * waits for that transaction's end.  A backend that exits while a login
 * waits (between the two) records it as failed.
 *
 *-------------------------------------------------------------------------
 */
#include "audit_log.h"
#include "compat.h"

#include <sys/socket.h>
#include <netdb.h>

#include "common/ip.h"
#include "access/xact.h"
#include "catalog/pg_authid.h"
#include "libpq/auth.h"
#include "libpq/hba.h"
#include "libpq/libpq-be.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "replication/walsender.h"
#include "storage/ipc.h"
#include "lib/stringinfo.h"
#include "utils/builtins.h"
#include "utils/elog.h"
#include "utils/memutils.h"
#include "utils/syscache.h"
#include "utils/json.h"
#include "utils/timestamp.h"

#include "util.h"

static ClientAuthentication_hook_type prev_client_auth_hook = NULL;
static emit_log_hook_type prev_emit_log_hook = NULL;

/*
 * The login whose session is being set up (TopMemoryContext), with its
 * success ready to be queued (only under log_connections = all).
 */
static AuditEvent *login = NULL;
static char *login_slot = NULL;
static char *login_line = NULL;
static bool login_setup_done = false;	/* the setup committed; triggers follow */

/* The last FATAL's message and code (audit_last_fatal). */
static char fatal_message[256];
static int	fatal_code = 0;

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
 * append_role_facts: what tells failed attempts apart (a guess at a role
 * that does not exist: enumeration or spraying; an expired password; a role
 * that may not log in), as PostgreSQL's log says it.  The hook runs in the
 * setup transaction, where the password check itself read pg_authid (a
 * shared catalog) through the same cache.
 */
static void
append_role_facts(StringInfo d, const char *user_name)
{
	HeapTuple	tup;
	Form_pg_authid role;
	bool		isnull;
	Datum		until;

	if (user_name == NULL || !IsTransactionState())
		return;
	tup = SearchSysCache1(AUTHNAME, PointerGetDatum(user_name));
	appendStringInfo(d, ", \"role_exists\": %s", HeapTupleIsValid(tup) ? "true" : "false");
	if (!HeapTupleIsValid(tup))
		return;
	role = (Form_pg_authid) GETSTRUCT(tup);
	until = SysCacheGetAttr(AUTHNAME, tup, Anum_pg_authid_rolvaliduntil, &isnull);
	appendStringInfo(d, ", \"can_login\": %s, \"password_expired\": %s",
					 role->rolcanlogin ? "true" : "false",
					 (!isnull && DatumGetTimestampTz(until) < GetCurrentTimestamp()) ? "true" : "false");
	ReleaseSysCache(tup);
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
	bool		replaced = false;
	bool		ok = (status == STATUS_OK);
	MemoryContext old;

	if (prev_client_auth_hook)
		prev_client_auth_hook(port, status);

	/* the client went away before answering (psql asking for a password) */
	if (status == STATUS_EOF)
		return;
	/* (failures only: a passed authentication may still become one) */
	if (audit_log_connections == AUDIT_CONN_NONE)
		return;
	old = MemoryContextSwitchTo(TopMemoryContext);

	method = port->hba ? hba_authname(port->hba->auth_method) : "unknown";
	user = audit_valid_text(port->user_name, PG_UTF8, &changed);
	dbname = audit_valid_text(port->database_name, PG_UTF8, &changed);
	/* a physical replication connection names no database */
	if (am_walsender && !am_db_walsender)
		dbname = NULL;

	memset(&ev, 0, sizeof(ev));
	ev.occurred_at = GetCurrentTimestamp();
	ev.category = "auth";
	ev.event_type = ok ? "auth.login_succeeded" : "auth.login_failed";
	ev.status = ok ? "success" : "failure";
	ev.actor = user;
	ev.actor_type = "db_role";
	ev.db_user = user;
	ev.client_addr = audit_addr_text(&port->raddr);
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
	if (dbname)
		escape_json(&d, dbname);
	else
		appendStringInfoString(&d, "null");
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
	if (port->hba)
		appendStringInfo(&d, ", \"hba_line\": %d", port->hba->linenumber);
	appendStringInfo(&d, ", \"ssl\": %s", port->ssl_in_use ? "true" : "false");
	if (am_walsender)
		appendStringInfo(&d, ", \"replication\": \"%s\"", am_db_walsender ? "logical" : "physical");
	/* who proved it (a certificate, peer, LDAP, a pg_ident map): when another name */
	if (ok && audit_authn_id(port) && (user == NULL || strcmp(audit_authn_id(port), user) != 0))
	{
		appendStringInfoString(&d, ", \"authenticated_identity\": ");
		escape_json(&d, audit_valid_text(audit_authn_id(port), PG_UTF8, &replaced));
	}
	if (port->remote_host && port->remote_host[0] && ev.client_addr &&
		strcmp(port->remote_host, ev.client_addr) != 0)
	{
		appendStringInfoString(&d, ", \"remote_host\": ");
		escape_json(&d, port->remote_host);
	}
	if (!ok)
	{
		/*
		 * (a reject line, or none, ends the connection before this hook:
		 * the hook sees only a failed authentication)
		 */
		appendStringInfoString(&d, ", \"reason\": \"authentication failed\"");
		append_role_facts(&d, port->user_name);
	}
	appendStringInfoChar(&d, '}');
	/* invalid bytes in the names must not make the JSON unparsable here */
	PG_TRY();
	{
		ev.details = audit_text_to_jsonb(d.data);
	}
	PG_CATCH();
	{
		FlushErrorState();
		ev.details = NULL;
	}
	PG_END_TRY();

	if (!ok)
	{
		audit_queue_event(&ev, true);
		MemoryContextSwitchTo(old);
		return;
	}
	/* passed: the login waits for the end of the setup transaction */
	login = palloc(sizeof(AuditEvent));
	*login = ev;
	if (audit_log_connections == AUDIT_CONN_ALL)
		audit_event_pack(login, &login_slot, &login_line);
	MemoryContextSwitchTo(old);
}

/*
 * auth_emit_log: the emit_log_hook: keep the message of a FATAL (the one
 * that refuses a waiting login, or ends a statement: a backend reports
 * one at most).  Copies only.
 */
static void
auth_emit_log(ErrorData *edata)
{
	if (edata->elevel >= FATAL && edata->message)
	{
		strlcpy(fatal_message, edata->message, sizeof(fatal_message));
		fatal_code = edata->sqlerrcode;
	}
	if (prev_emit_log_hook)
		prev_emit_log_hook(edata);
}

/*
 * audit_last_fatal: the message of the FATAL this backend reported (NULL
 * if none), and its code.
 */
const char *
audit_last_fatal(int *sqlerrcode)
{
	*sqlerrcode = fatal_code;
	return fatal_message[0] ? fatal_message : NULL;
}

/*
 * login_refused: the waiting login's session was refused (or ended before
 * it was set up): queue its failure with the FATAL's message.
 */
static void
login_refused(void)
{
	AuditEvent	ev;
	StringInfoData d;
	int			code;
	const char *fatal;

	if (audit_log_connections == AUDIT_CONN_NONE)
		return;
	ev = *login;
	ev.occurred_at = GetCurrentTimestamp();
	ev.event_type = "auth.login_failed";
	ev.status = "failure";
	initStringInfo(&d);
	appendStringInfoString(&d, "{\"reason\": \"session refused after authentication\", \"error\": ");
	fatal = audit_last_fatal(&code);
	escape_json(&d, fatal ? fatal : "the session ended before it was set up");
	appendStringInfoChar(&d, '}');
	ev.details = audit_jsonb_merge(ev.details, audit_text_to_jsonb(d.data));
	audit_queue_event(&ev, true);
}

/*
 * login_done: the waiting login is recorded; forget it.
 */
static void
login_done(void)
{
	login = NULL;				/* the rest of TopMemoryContext's pieces: a few hundred bytes, once */
	login_slot = NULL;
	login_line = NULL;
	login_setup_done = false;
}

/*
 * auth_exit: before_shmem_exit callback: a backend that exits while its
 * login waits for the login event triggers (before their transaction
 * began) refused the session.
 */
static void
auth_exit(int code, Datum arg)
{
	if (login != NULL)
	{
		login_refused();
		login_done();
	}
}

/*
 * auth_xact_callback: the end of the transaction that set a login's
 * session up (or, from 17 on, of its login event triggers'): at commit
 * queue its success (log_connections = all), at abort its failure with
 * the FATAL's message.
 */
static void
auth_xact_callback(XactEvent event, void *arg)
{
	if (login == NULL || (event != XACT_EVENT_COMMIT && event != XACT_EVENT_ABORT))
		return;
	if (event == XACT_EVENT_COMMIT && !login_setup_done && AUDIT_LOGIN_TRIGGERS_FOLLOW())
	{
		/* the login event triggers decide next, in their transaction */
		login_setup_done = true;
		before_shmem_exit(auth_exit, (Datum) 0);
		return;
	}
	/*
	 * Stamped when queued, not at the authentication: the setup may wait
	 * (a lock on the database) longer than seal_delay, unseen by seal().
	 */
	if (event == XACT_EVENT_COMMIT)
	{
		if (login_slot)
		{
			audit_event_slot_set_time(login_slot, GetCurrentTimestamp());
			audit_queue_slot_for(login_slot, login_line, InvalidOid);
		}
	}
	else
		login_refused();
	login_done();
}

/*
 * audit_auth_init: install the hook (called from _PG_init when preloaded).
 */
void
audit_auth_init(void)
{
	prev_client_auth_hook = ClientAuthentication_hook;
	ClientAuthentication_hook = audit_client_auth;
	prev_emit_log_hook = emit_log_hook;
	emit_log_hook = auth_emit_log;
	RegisterXactCallback(auth_xact_callback, NULL);
}
