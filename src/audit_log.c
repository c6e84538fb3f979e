/*-------------------------------------------------------------------------
 *
 * audit_log.c
 *		Module entry point (_PG_init) and the SQL-callable functions that do
 *		not belong to one capture source: audit_log.log(), the internal
 *		event recorder used by the install script's functions, and the
 *		status of capture.
 *
 * log() and _record() write in the caller's transaction through writer.c.
 * log() looks up and registers event codes in audit_log.event_types with
 * SPI, as the bootstrap superuser in a security-restricted operation under
 * the pinned search_path (guard.c), after the caller's context has been
 * taken, so the event still names the caller and none of the caller's
 * objects (planted functions or operators) can run with those rights.
 *
 *-------------------------------------------------------------------------
 */
#include "workers.h"

#include "access/htup_details.h"
#include "catalog/pg_authid.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/builtins.h"

#include "guard.h"
#include "util.h"

PG_MODULE_MAGIC;

PG_FUNCTION_INFO_V1(audit_log_event);
PG_FUNCTION_INFO_V1(audit_record);
PG_FUNCTION_INFO_V1(audit_status);

bool		audit_preloaded = false;

void		_PG_init(void);

/*
 * _PG_init: define the settings; when preloaded, install the server hooks,
 * the shared-memory queue and the background worker.
 */
void
_PG_init(void)
{
	audit_define_settings();
	if (!process_shared_preload_libraries_in_progress)
		return;
	audit_preloaded = true;
	audit_queue_init();
	audit_utility_init();
	audit_guard_init();
	audit_auth_init();
	audit_log_redact_init();
	audit_sources_init();
	audit_launcher_init();
}

/*
 * check_status: "success" or "failure", else an error.
 */
static const char *
check_status(const char *status)
{
	if (status == NULL || (strcmp(status, "success") != 0 && strcmp(status, "failure") != 0))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid event status \"%s\"", status ? status : "NULL"),
				 errhint("Use 'success' or 'failure'.")));
	return status;
}

/*
 * register_app_code: refuse codes reserved for the extension's own events
 * (audit_code_reserved() says which), and add a new application code to
 * audit_log.event_types.  Only the 1.0 catalogue is read: the library may
 * run a while under a database not yet updated.
 */
static void
register_app_code(const char *code, const char *category)
{
	Oid			save_userid;
	int			save_sec;
	Oid			argtypes[2] = {TEXTOID, TEXTOID};
	Datum		args[2];
	bool		builtin = false;
	int			pin;

	if (audit_code_reserved(code, false))
		builtin = true;
	else
	{
		GetUserIdAndSecContext(&save_userid, &save_sec);
		SetUserIdAndSecContext(BOOTSTRAP_SUPERUSERID,
							   save_sec | SECURITY_LOCAL_USERID_CHANGE |
							   SECURITY_RESTRICTED_OPERATION);
		pin = audit_pin_search_path();
		SPI_connect();
		args[0] = CStringGetTextDatum(code);
		args[1] = CStringGetTextDatum(category);
		if (SPI_execute_with_args("SELECT builtin FROM audit_log.event_type_catalog "
								  "WHERE event_type OPERATOR(pg_catalog.=) $1",
								  1, argtypes, args, NULL, true, 1) == SPI_OK_SELECT &&
			SPI_processed == 1)
		{
			bool		isnull;

			builtin = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0],
												 SPI_tuptable->tupdesc, 1, &isnull));
		}
		else
			SPI_execute_with_args("INSERT INTO audit_log.event_type_catalog(event_type, category, description, builtin) "
								  "VALUES ($1, $2, 'Application event', false) ON CONFLICT DO NOTHING",
								  2, argtypes, args, NULL, false, 0);
		SPI_finish();
		audit_unpin_search_path(pin);
		SetUserIdAndSecContext(save_userid, save_sec);
	}

	if (audit_code_reserved(code, builtin))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("event type \"%s\" is reserved for audit_log's own capture", code),
				 errdetail("Events with this code, and every code of the audit category, are recorded by the extension itself; an application may not forge them."),
				 errhint("Choose an application code, such as \"app.%s\".", code)));
}

/*
 * audit_log_event: audit_log.log(event_type, status, object_type,
 * object_name, resource_id, details) -> event_id.
 */
Datum
audit_log_event(PG_FUNCTION_ARGS)
{
	AuditEvent	ev;
	char	   *code = audit_text_arg(fcinfo, 0);
	const char *category;

	if (!audit_valid_event_code(code))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid event type \"%s\"", code ? code : "NULL"),
				 errhint("Event types are lowercase dotted identifiers such as \"user.api_key_created\".")));
	category = audit_category_of(code);
	audit_event_init(&ev, category, code);
	ev.status = check_status(audit_text_arg(fcinfo, 1));
	ev.object_type = audit_text_arg(fcinfo, 2);
	ev.object_name = audit_text_arg(fcinfo, 3);
	ev.resource_id = audit_text_arg(fcinfo, 4);
	ev.details = PG_ARGISNULL(5) ? NULL : PG_GETARG_JSONB_P(5);
	ev.command = "SELECT";
	register_app_code(code, category);
	PG_RETURN_INT64(audit_write_event(&ev));
}

/*
 * audit_record: audit_log._record(category, event_type, status,
 * object_type, object_name, command, details, statement) -> event_id.
 * Internal: used by the extension's own SQL functions (enable, retention,
 * holds, export...), granted to nobody.
 */
Datum
audit_record(PG_FUNCTION_ARGS)
{
	AuditEvent	ev;
	char	   *category = audit_text_arg(fcinfo, 0);
	char	   *code = audit_text_arg(fcinfo, 1);

	audit_check_category_code(category, code);
	audit_event_init(&ev, category, code);
	ev.status = check_status(audit_text_arg(fcinfo, 2));
	ev.object_type = audit_text_arg(fcinfo, 3);
	ev.object_name = audit_text_arg(fcinfo, 4);
	ev.command = audit_text_arg(fcinfo, 5);
	ev.details = PG_ARGISNULL(6) ? NULL : PG_GETARG_JSONB_P(6);
	ev.statement = audit_text_arg(fcinfo, 7);
	PG_RETURN_INT64(audit_write_event(&ev));
}

/*
 * audit_status: one row saying which capture is active, for the
 * audit_log.status view.  Queue figures come from queue.c, the writers
 * from registry.c.
 */
Datum
audit_status(PG_FUNCTION_ARGS)
{
	TupleDesc	tupdesc;
	Datum		values[10];
	bool		nulls[10];
	AuditQueueStats qs;

	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	memset(nulls, 0, sizeof(nulls));
	audit_queue_stats(&qs);

	values[0] = BoolGetDatum(audit_preloaded);
	values[1] = BoolGetDatum(true); /* table capture: triggers, always */
	values[2] = BoolGetDatum(audit_preloaded);	/* roles, grants, config, failures */
	values[3] = CStringGetTextDatum(!audit_preloaded ? "off" :
									audit_log_connections == AUDIT_CONN_ALL ? "all" :
									audit_log_connections == AUDIT_CONN_FAILURES ? "failures" : "none");
	if (qs.worker_pid > 0)
		values[4] = Int32GetDatum(qs.worker_pid);
	else
		nulls[4] = true;
	values[5] = Int64GetDatum(qs.depth);
	values[6] = Int64GetDatum(qs.capacity);
	values[7] = Int64GetDatum(qs.written);
	values[8] = Int64GetDatum(qs.logged);
	/* the writers, from 1.1 on (a database still on 1.0 has 9 columns) */
	if (tupdesc->natts >= 10)
	{
		StringInfoData w;

		initStringInfo(&w);
		audit_registry_status(&w);
		values[9] = DirectFunctionCall1(jsonb_in, CStringGetDatum(w.data));
	}
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls)));
}
