/*-------------------------------------------------------------------------
 *
 * queue.c
 *		The shared-memory queue that carries events which cannot ride their
 *		transaction (failures, logins, cluster-wide events) to the
 *		background worker, and the server-log fallback when it cannot.
 *
 * Placeholder of the foundation: without the queue every such event goes
 * to the server log as one structured line (never lost silently).
 *
 *-------------------------------------------------------------------------
 */
#include "audit_log.h"

#include "lib/stringinfo.h"
#include "utils/builtins.h"
#include "utils/json.h"

static int64 local_logged = 0;

/*
 * audit_queue_init: reserve shared memory for the queue (preload only).
 */
void
audit_queue_init(void)
{
}

/*
 * audit_log_event_line: write an event to the server log as one JSON line,
 * prefixed with "audit_log event:", because it could not be stored.
 */
void
audit_log_event_line(const AuditEvent *ev, const char *reason)
{
	StringInfoData buf;

	initStringInfo(&buf);
	appendStringInfoString(&buf, "{\"event_type\":");
	escape_json(&buf, ev->event_type ? ev->event_type : "");
	appendStringInfoString(&buf, ",\"category\":");
	escape_json(&buf, ev->category ? ev->category : "");
	appendStringInfoString(&buf, ",\"status\":");
	escape_json(&buf, ev->status ? ev->status : "success");
	appendStringInfoString(&buf, ",\"actor\":");
	escape_json(&buf, ev->actor ? ev->actor : "");
	appendStringInfoString(&buf, ",\"object_name\":");
	escape_json(&buf, ev->object_name ? ev->object_name : "");
	appendStringInfoString(&buf, ",\"reason\":");
	escape_json(&buf, reason);
	appendStringInfoChar(&buf, '}');
	ereport(LOG, (errmsg("audit_log event: %s", buf.data), errhidestmt(true)));
	local_logged++;
	pfree(buf.data);
}

/*
 * audit_queue_event: hand an event to the background worker; falls back to
 * the server log.
 */
void
audit_queue_event(const AuditEvent *ev)
{
	audit_log_event_line(ev, "queue unavailable");
}

/*
 * audit_queue_stats: queue figures for audit_log.status.
 */
void
audit_queue_stats(AuditQueueStats *stats)
{
	memset(stats, 0, sizeof(*stats));
	stats->logged = local_logged;
}
