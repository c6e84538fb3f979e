/*-------------------------------------------------------------------------
 *
 * testing.c
 *		Test hook: audit_log._record_at() writes an event with a given
 *		occurred_at, so that tests and benchmarks can build a history of
 *		months without waiting for it.
 *
 * Granted to nobody: only superusers call it (tests, benchmarks).  The
 * event is written by the ordinary writer in the current transaction and
 * routed to the partition of its occurred_at (or the default partition
 * when none covers it), exactly like a captured event.
 *
 *-------------------------------------------------------------------------
 */
#include "audit_log.h"

#include "fmgr.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/timestamp.h"

#include "util.h"

PG_FUNCTION_INFO_V1(audit_record_at);

/*
 * audit_record_at: audit_log._record_at(occurred_at, category, event_type,
 * object_name, details) -> event_id.  Superuser test hook.
 */
Datum
audit_record_at(PG_FUNCTION_ARGS)
{
	AuditEvent	ev;
	char	   *category = audit_text_arg(fcinfo, 1);
	char	   *code = audit_text_arg(fcinfo, 2);

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("occurred_at must not be null")));
	audit_check_category_code(category, code);
	audit_event_init(&ev, category, code);
	ev.occurred_at = PG_GETARG_TIMESTAMPTZ(0);
	if (ev.occurred_at == 0)
		ev.occurred_at = 1;		/* 0 means "now" to the writer */
	ev.object_name = audit_text_arg(fcinfo, 3);
	ev.details = PG_ARGISNULL(4) ? NULL : PG_GETARG_JSONB_P(4);
	PG_RETURN_INT64(audit_write_event(&ev));
}
