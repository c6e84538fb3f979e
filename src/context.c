/*-------------------------------------------------------------------------
 *
 * context.c
 *		Who is behind the connection: fills the common fields of an
 *		AuditEvent from the audit_log.* context settings and the session,
 *		and implements audit_log.set_context().  Holds the list of event
 *		categories and the syntax of event codes, which SQL reads through
 *		audit_log._categories() and audit_log._is_event_code().
 *
 * The context settings are claims of the application; db_user is always
 * session_user and effective_role always current_user.  No locks are taken;
 * the only catalog access is name lookups through the syscache.
 *
 *-------------------------------------------------------------------------
 */
#include "audit_log.h"

#include <sys/socket.h>
#include <netdb.h>

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "commands/dbcommands.h"
#include "common/ip.h"
#include "fmgr.h"
#include "libpq/libpq-be.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/inet.h"
#include "utils/memutils.h"

#include "util.h"

PG_FUNCTION_INFO_V1(audit_set_context);
PG_FUNCTION_INFO_V1(audit_categories_sql);
PG_FUNCTION_INFO_V1(audit_is_event_code_sql);
PG_FUNCTION_INFO_V1(audit_category_of_sql);
PG_FUNCTION_INFO_V1(audit_code_reserved_sql);

/*
 * The event categories of DESIGN.md, sorted: the one list.  SQL reads it
 * through audit_log._categories() (the CHECK of event_type_catalog,
 * enable(), retention, alerts, sources); see doc/internals.md.
 */
static const char *const audit_categories[] = {
	"app", "audit", "auth", "config", "data", "ddl", "privilege", "role", NULL
};

static char *cached_database = NULL;
static Oid	cached_database_oid = InvalidOid;
static char *cached_authenticated = NULL;	/* the role that logged in */

/*
 * audit_valid_category: is this one of the eight categories of DESIGN.md?
 */
bool
audit_valid_category(const char *category)
{
	int			i;

	if (category == NULL)
		return false;
	for (i = 0; audit_categories[i] != NULL; i++)
		if (strcmp(category, audit_categories[i]) == 0)
			return true;
	return false;
}

/*
 * audit_categories_sql: audit_log._categories(), the categories as a
 * sorted text[] (IMMUTABLE: the list is compiled in).
 */
Datum
audit_categories_sql(PG_FUNCTION_ARGS)
{
	Datum		elems[lengthof(audit_categories)];
	int			n;

	for (n = 0; audit_categories[n] != NULL; n++)
		elems[n] = CStringGetTextDatum(audit_categories[n]);
	PG_RETURN_ARRAYTYPE_P(construct_array(elems, n, TEXTOID, -1, false, TYPALIGN_INT));
}

/*
 * event_code_syntax: a lowercase dotted identifier such as
 * "user.role_added": at least two parts separated by dots, each starting
 * with a letter and made of a-z, 0-9 and underscores (any length).
 */
static bool
event_code_syntax(const char *code)
{
	const char *p;
	bool		part_start = true;
	int			parts = 1;

	if (code == NULL || code[0] == '\0')
		return false;
	for (p = code; *p; p++)
	{
		if (part_start)
		{
			if (!(*p >= 'a' && *p <= 'z'))
				return false;
			part_start = false;
		}
		else if (*p == '.')
		{
			part_start = true;
			parts++;
		}
		else if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_'))
			return false;
	}
	return !part_start && parts >= 2;
}

/*
 * audit_valid_event_code: an event code (event_code_syntax) of 100 bytes
 * at most.
 */
bool
audit_valid_event_code(const char *code)
{
	return code != NULL && strlen(code) <= 100 && event_code_syntax(code);
}

/*
 * audit_is_event_code_sql: audit_log._is_event_code(code), the syntax of
 * an event code (the length limit is the caller's: the CHECK of
 * event_type_catalog has none).
 */
Datum
audit_is_event_code_sql(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(event_code_syntax(text_to_cstring(PG_GETARG_TEXT_PP(0))));
}

/*
 * audit_check_category_code: an error unless category is a category and
 * code an event code (the internal recorders' arguments).
 */
void
audit_check_category_code(const char *category, const char *code)
{
	if (!audit_valid_category(category) || !audit_valid_event_code(code))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid event category \"%s\" or type \"%s\"",
						category ? category : "NULL", code ? code : "NULL")));
}

/*
 * audit_category_of: the category of an application event code: its prefix
 * when that names a category, else "app".
 */
const char *
audit_category_of(const char *event_type)
{
	const char *dot = strchr(event_type, '.');
	int			i;

	if (dot == NULL)
		return "app";
	for (i = 0; audit_categories[i] != NULL; i++)
	{
		size_t		len = strlen(audit_categories[i]);

		if ((size_t) (dot - event_type) == len &&
			strncmp(event_type, audit_categories[i], len) == 0)
			return audit_categories[i];
	}
	return "app";
}

/*
 * audit_category_of_sql: audit_log._category_of(code), the category of an
 * application code as log() gives it (ingest() uses it for the codes of a
 * feed).
 */
Datum
audit_category_of_sql(PG_FUNCTION_ARGS)
{
	PG_RETURN_TEXT_P(cstring_to_text(audit_category_of(text_to_cstring(PG_GETARG_TEXT_PP(0)))));
}

/*
 * audit_code_reserved: may only the extension record events with this code?
 * A built-in code (builtin: its audit_log.event_type_catalog flag), and every
 * code of the audit category, the trail's own administration: an
 * application's "audit.seal_checked" would read as the extension's.  log()
 * asks here, enable() and ingest() through audit_log._is_reserved_code().
 */
bool
audit_code_reserved(const char *event_type, bool builtin)
{
	return builtin || strcmp(audit_category_of(event_type), "audit") == 0;
}

/*
 * audit_code_reserved_sql: audit_log._code_reserved(code, builtin).
 */
Datum
audit_code_reserved_sql(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(audit_code_reserved(text_to_cstring(PG_GETARG_TEXT_PP(0)),
									   PG_GETARG_BOOL(1)));
}

/*
 * nonempty: a setting's value, or NULL when it is unset or empty.
 */
static const char *
nonempty(const char *s)
{
	return (s != NULL && s[0] != '\0') ? s : NULL;
}

/*
 * audit_context_snapshot: fill the who/where fields of an event from the
 * context settings and the session.  Strings are palloc'd in the current
 * memory context or point at long-lived storage.
 */
void
audit_context_snapshot(AuditEvent *ev)
{
	const char *actor = nonempty(audit_actor);
	const char *addr = nonempty(audit_client_addr);

	ev->db_user = OidIsValid(GetSessionUserId()) ?
		GetUserNameFromId(GetSessionUserId(), true) : NULL;
	if (cached_authenticated == NULL && ev->db_user != NULL)
	{
		char	   *name = GetUserNameFromId(GetAuthenticatedUserId(), true);

		if (name != NULL)
			cached_authenticated = MemoryContextStrdup(TopMemoryContext, name);
	}
	ev->effective_role = OidIsValid(GetUserId()) ?
		GetUserNameFromId(GetUserId(), true) : NULL;
	ev->actor = actor ? actor : ev->db_user;
	if (nonempty(audit_actor_type))
		ev->actor_type = audit_actor_type;
	else
		ev->actor_type = actor ? "user" : "db_role";
	ev->client_addr = addr ? addr :
		(MyProcPort ? audit_addr_text(&MyProcPort->raddr) : NULL);
	ev->application_name = nonempty(application_name);
	ev->user_agent = nonempty(audit_user_agent);
	ev->tenant = nonempty(audit_tenant);
	ev->request_id = nonempty(audit_request_id);
	if (OidIsValid(MyDatabaseId))
	{
		if (cached_database_oid != MyDatabaseId || cached_database == NULL)
		{
			char	   *name = get_database_name(MyDatabaseId);

			if (name != NULL)
			{
				cached_database = MemoryContextStrdup(TopMemoryContext, name);
				cached_database_oid = MyDatabaseId;
			}
		}
		ev->database = cached_database;
	}
}

/*
 * audit_authenticated_user: the role that logged in, NULL before the
 * session's first event named its db_user (no catalog access here: safe
 * while an error unwinds).
 */
const char *
audit_authenticated_user(void)
{
	return cached_authenticated;
}

/*
 * audit_details_for_store: an event's details as they are stored: when it
 * was built in this backend and its db_user (session_user) is not the role
 * that logged in (SET SESSION AUTHORIZATION), with "authenticated_user":
 * who is really behind the session.  A new Jsonb in the current memory
 * context, or the event's own; the event is not changed (it may live in a
 * context longer than the current one).  Otherwise a string comparison.
 */
Jsonb *
audit_details_for_store(const AuditEvent *ev)
{
	Json		j;

	if (cached_authenticated == NULL || ev->db_user == NULL ||
		(ev->backend_pid != 0 && ev->backend_pid != MyProcPid) ||
		strcmp(ev->db_user, cached_authenticated) == 0)
		return ev->details;
	j_begin(&j);
	j_str(&j, "authenticated_user", cached_authenticated);
	return audit_jsonb_merge(ev->details, audit_text_to_jsonb(j_end(&j)));
}

/*
 * audit_event_init: zero an event and fill its category, code, status
 * "success" and the context of the current session.
 */
void
audit_event_init(AuditEvent *ev, const char *category, const char *event_type)
{
	memset(ev, 0, sizeof(AuditEvent));
	ev->category = category;
	ev->event_type = event_type;
	ev->status = "success";
	audit_context_snapshot(ev);
}

/*
 * set_one: set one context setting for the rest of the transaction; NULL
 * clears it.
 */
static void
set_one(const char *name, FunctionCallInfo fcinfo, int argno)
{
	const char *value = "";

	if (!PG_ARGISNULL(argno))
	{
		Datum		d = PG_GETARG_DATUM(argno);

		if (argno == AUDIT_CONTEXT_CLIENT_ADDR)
			value = DatumGetCString(DirectFunctionCall1(inet_out, d));
		else
			value = text_to_cstring(DatumGetTextPP(d));
	}
	(void) set_config_option(name, value, PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_LOCAL, true, 0, false);
}

/*
 * audit_set_context: audit_log.set_context(actor, actor_type, client_addr,
 * user_agent, tenant, request_id): set the whole context for the rest of
 * the current transaction.
 */
Datum
audit_set_context(PG_FUNCTION_ARGS)
{
	int			i;

	for (i = 0; i < AUDIT_NCONTEXT; i++)
		set_one(audit_context_settings[i], fcinfo, i);
	PG_RETURN_VOID();
}
