/*-------------------------------------------------------------------------
 *
 * capture_ddl_et.c
 *		The event trigger functions (ddl_command_end, sql_drop) that record
 *		schema changes and GRANT/REVOKE when audit_log is not preloaded.
 *		With the preload they return at once: the ProcessUtility hook
 *		records the same commands, nothing is recorded twice.
 *
 * They run as the user who issued the command (db_user, effective_role
 * are right) and write through writer.c in the command's transaction; the
 * objects come from pg_event_trigger_ddl_commands() and
 * pg_event_trigger_dropped_objects() read with SPI.
 *
 *-------------------------------------------------------------------------
 */
#include "capture_utility.h"

#include "commands/event_trigger.h"
#include "commands/extension.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "tcop/tcopprot.h"
#include "tcop/utility.h"
#include "utils/builtins.h"

PG_FUNCTION_INFO_V1(audit_et_ddl_end);
PG_FUNCTION_INFO_V1(audit_et_sql_drop);

/*
 * et_capture: write one event per row of an event-trigger function's
 * query; columns: command tag, object type, object identity.
 */
static void
et_capture(FunctionCallInfo fcinfo, const char *query)
{
	EventTriggerData *trig;
	const char *tag;
	const char *statement;
	AuditEvent *evs;
	uint64		i;
	int			n = 0;

	if (!CALLED_AS_EVENT_TRIGGER(fcinfo))
		elog(ERROR, "not fired by event trigger manager");
	trig = (EventTriggerData *) fcinfo->context;
	if (trig->tag == CMDTAG_CREATE_INDEX && audit_restoring())
		audit_restore_root_index();
	if (audit_preloaded || audit_internal_active() || creating_extension ||
		audit_restoring() || !OidIsValid(audit_events_relid(true)))
		return;
	tag = GetCommandTagName(trig->tag);
	statement = audit_redact_statement(debug_query_string);

	SPI_connect();
	if (SPI_execute(query, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "audit_log: event trigger query failed");
	evs = palloc0(sizeof(AuditEvent) * (SPI_processed + 1));
	for (i = 0; i < SPI_processed; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		TupleDesc	td = SPI_tuptable->tupdesc;
		char	   *ctag = SPI_getvalue(tup, td, 1);
		char	   *otype = SPI_getvalue(tup, td, 2);
		char	   *ident = SPI_getvalue(tup, td, 3);
		const char *code;
		const char *category = "ddl";

		if (ctag == NULL)
			ctag = (char *) tag;
		if (strcmp(ctag, "GRANT") == 0 || strcmp(ctag, "REVOKE") == 0)
		{
			category = "privilege";
			code = ctag[0] == 'G' ? "privilege.granted" : "privilege.revoked";
		}
		else if (strcmp(ctag, "ALTER DEFAULT PRIVILEGES") == 0)
		{
			category = "privilege";
			code = "privilege.defaults_altered";
		}
		else if (strcmp(ctag, "CREATE EXTENSION") == 0)
			code = "extension.created";
		else if (strcmp(ctag, "ALTER EXTENSION") == 0)
			code = "extension.altered";
		else if (strcmp(ctag, "DROP EXTENSION") == 0)
			code = "extension.dropped";
		else
			code = audit_tag_code(ctag);
		if (otype)
		{
			char	   *p;
			size_t		len = strlen(otype);

			for (p = otype; *p; p++)
				*p = pg_tolower((unsigned char) *p);
			/* ALTER DEFAULT PRIVILEGES reports "TABLES", "FUNCTIONS"... */
			if (strcmp(code, "privilege.defaults_altered") == 0 && len > 1 && otype[len - 1] == 's')
				otype[len - 1] = '\0';
		}
		audit_event_init(&evs[n], category, code);
		evs[n].object_type = otype;
		evs[n].object_name = ident;
		evs[n].command = ctag;
		evs[n].statement = statement;
		evs[n].details = audit_text_to_jsonb("{\"source\": \"event trigger\"}");
		n++;
	}
	audit_write_events(evs, n);
	SPI_finish();
}

/*
 * audit_et_ddl_end: ddl_command_end event trigger function.
 */
Datum
audit_et_ddl_end(PG_FUNCTION_ARGS)
{
	et_capture(fcinfo,
			   "SELECT command_tag, object_type, object_identity "
			   "FROM pg_catalog.pg_event_trigger_ddl_commands() WHERE NOT in_extension");
	PG_RETURN_NULL();
}

/*
 * audit_et_sql_drop: sql_drop event trigger function (the objects the
 * user named, not their dependents).
 */
Datum
audit_et_sql_drop(PG_FUNCTION_ARGS)
{
	et_capture(fcinfo,
			   "SELECT NULL::text, object_type, object_identity "
			   "FROM pg_catalog.pg_event_trigger_dropped_objects() WHERE original");
	PG_RETURN_NULL();
}
