/*-------------------------------------------------------------------------
 *
 * worker.c
 *		The background worker: connected to audit_log.database, it drains
 *		the shared-memory queue into audit_log.events and runs
 *		audit_log.maintain() every audit_log.maintenance_interval.
 *
 * Transactions: each batch of queued events is written in a transaction
 * of its own; when a batch fails, its events are retried one by one and an
 * event that still cannot be stored goes to the server log (never lost
 * silently).  When the audit database lacks the extension, drained events
 * go to the server log too.  maintain() runs in its own transaction; its
 * errors are reported and the loop goes on.
 *
 * Locking: every transaction of the worker first takes a share lock on the
 * audit_log extension object (lock_extension), the lock DROP EXTENSION takes
 * in exclusive mode before anything else.  Without it, a batch written
 * while the extension is being dropped locks the events table and then a
 * partition, in the opposite order of the drop, and one of the two fails
 * with a deadlock.
 *
 * Restores: while a dump is being restored into the audit database
 * (restore.c), nothing else may write into its audit_log.events (new ids
 * would collide with the restored ones): the worker holds the batch it
 * took and leaves the rest in the queue, retrying every second, until the
 * restoring session has ended.  A full queue sends events to the server
 * log as usual.
 *
 * Life cycle: started by the postmaster, restarted AUDIT_WORKER_RESTART
 * seconds after any exit (crash included).  If it cannot connect (the audit
 * database does not exist), it sends what is queued to the server log
 * before exiting.  It exits (and so restarts) when audit_log.database
 * changes.  A reload that changes an audit_log.* setting is recorded as
 * audit.setting_changed.
 *
 *-------------------------------------------------------------------------
 */
#include "audit_log.h"

#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_extension.h"
#include "commands/extension.h"
#include "executor/spi.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/lmgr.h"
#include "storage/proc.h"
#include "tcop/tcopprot.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/json.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#define AUDIT_WORKER_RESTART	2	/* seconds */
#define AUDIT_WORKER_BATCH		64

PGDLLEXPORT void audit_worker_main(Datum arg);

bool		audit_in_worker = false;
static bool worker_connected = false;
static char *batch_bufs = NULL;

/*
 * Events taken from the queue but held back while a restore runs: the
 * first held_events slots of batch_bufs, retried every second.
 */
static int	held_events = 0;
static TimestampTz held_since = 0;

/*
 * audit_worker_init: register the worker (called from _PG_init when
 * preloaded).
 */
void
audit_worker_init(void)
{
	BackgroundWorker worker;

	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
	worker.bgw_restart_time = AUDIT_WORKER_RESTART;
	snprintf(worker.bgw_library_name, BGW_MAXLEN, "audit_log");
	snprintf(worker.bgw_function_name, BGW_MAXLEN, "audit_worker_main");
	snprintf(worker.bgw_name, BGW_MAXLEN, "audit_log worker");
	snprintf(worker.bgw_type, BGW_MAXLEN, "audit_log worker");
	RegisterBackgroundWorker(&worker);
}

/*
 * drain_to_log: send everything queued to the server log.
 */
static void
drain_to_log(const char *reason)
{
	int			n;

	if (batch_bufs == NULL)
		batch_bufs = MemoryContextAlloc(TopMemoryContext, AUDIT_QUEUE_SLOT * AUDIT_WORKER_BATCH);
	while ((n = audit_queue_pop(batch_bufs, AUDIT_WORKER_BATCH)) > 0)
	{
		int			i;

		for (i = 0; i < n; i++)
		{
			AuditEvent	ev;

			audit_event_deserialize(batch_bufs + i * AUDIT_QUEUE_SLOT, &ev);
			audit_log_event_line(&ev, reason);
		}
	}
}

/*
 * worker_exit: unregister; when the worker never connected, the queue
 * would wait for nobody: send it to the server log.
 */
static void
worker_exit(int code, Datum arg)
{
	int			i;

	audit_queue_set_worker(0, NULL);
	for (i = 0; i < held_events; i++)
	{
		AuditEvent	ev;

		audit_event_deserialize(batch_bufs + i * AUDIT_QUEUE_SLOT, &ev);
		audit_log_event_line(&ev, "the worker stopped while a restore held the event");
	}
	held_events = 0;
	if (!worker_connected)
		drain_to_log("audit database unavailable");
}

/*
 * sanitize: a copy of s that is valid in the database encoding: bytes of
 * an invalid sequence become '?'.  Login names come from unauthenticated
 * clients; they are stored as given, but never as invalid text.
 */
static const char *
sanitize(const char *s)
{
	char	   *copy;
	int			len;
	int			i = 0;

	if (s == NULL || pg_verifymbstr(s, strlen(s), true))
		return s;
	copy = pstrdup(s);
	len = strlen(copy);
	while (i < len)
	{
		int			l = pg_encoding_verifymbchar(GetDatabaseEncoding(), copy + i, len - i);

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
 * decode_batch: the events of n slot buffers, text made valid.
 */
static void
decode_batch(AuditEvent *evs, int from, int n)
{
	int			i;

	for (i = 0; i < n; i++)
	{
		AuditEvent *ev = &evs[i];

		audit_event_deserialize(batch_bufs + (from + i) * AUDIT_QUEUE_SLOT, ev);
		ev->actor = sanitize(ev->actor);
		ev->db_user = sanitize(ev->db_user);
		ev->object_name = sanitize(ev->object_name);
		ev->database = sanitize(ev->database);
		ev->application_name = sanitize(ev->application_name);
		ev->statement = sanitize(ev->statement);
	}
}

/*
 * lock_extension: share-lock the audit_log extension of this database for
 * the rest of the transaction, so that DROP EXTENSION waits for us or we
 * for it; false when the extension is not installed (or was dropped while
 * we waited).
 */
static bool
lock_extension(void)
{
	Oid			extoid = get_extension_oid("audit_log", true);

	while (OidIsValid(extoid))
	{
		Oid			now;

		/* also accepts the invalidations of whatever we waited for */
		LockDatabaseObject(ExtensionRelationId, extoid, 0, AccessShareLock);
		now = get_extension_oid("audit_log", true);
		if (now == extoid)
			return true;
		extoid = now;			/* dropped, maybe created again: lock that */
	}
	return false;
}

/*
 * restore_running: is a dump being restored into this database (restore.c:
 * its session is still connected)?  Nothing else may write into
 * audit_log.events meanwhile: new event ids would collide with the
 * restored ones.  Inside the caller's transaction, after lock_extension().
 */
static bool
restore_running(void)
{
	Oid			nsp = get_namespace_oid(AUDIT_SCHEMA, true);
	bool		running = false;

	/* a database still on 1.0 has no restore state */
	if (!OidIsValid(nsp) || !OidIsValid(get_relname_relid("restore_state", nsp)))
		return false;
	SPI_connect();
	if (SPI_execute("SELECT audit_log._restore_running()", false, 1) == SPI_OK_SELECT &&
		SPI_processed == 1)
	{
		bool		isnull;

		running = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0],
											 SPI_tuptable->tupdesc, 1, &isnull));
	}
	SPI_finish();
	return running;
}

typedef enum BatchResult
{
	BATCH_WRITTEN,				/* stored, or sent to the server log */
	BATCH_FAILED,				/* nothing stored */
	BATCH_HELD					/* a restore is running: kept for later */
} BatchResult;

/*
 * write_batch: store slots [from, from+n) in one transaction.
 */
static BatchResult
write_batch(int from, int n)
{
	MemoryContext cxt = CurrentMemoryContext;
	volatile BatchResult result = BATCH_WRITTEN;

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	PushActiveSnapshot(GetTransactionSnapshot());
	PG_TRY();
	{
		AuditEvent *evs = palloc0(sizeof(AuditEvent) * n);
		int			i;

		decode_batch(evs, from, n);
		if (lock_extension() && OidIsValid(audit_events_relid(true)))
		{
			if (restore_running())
				result = BATCH_HELD;
			else
			{
				audit_write_events(evs, n);
				audit_queue_count_written(n);
			}
		}
		else
			for (i = 0; i < n; i++)
				audit_log_event_line(&evs[i], "audit database lacks the audit_log extension");
		PopActiveSnapshot();
		CommitTransactionCommand();
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(cxt);
		EmitErrorReport();
		FlushErrorState();
		AbortCurrentTransaction();
		result = BATCH_FAILED;
	}
	PG_END_TRY();
	return result;
}

/*
 * drain_queue: write everything queued, batch by batch; while a restore
 * runs in this database, hold one batch and leave the rest queued.
 */
static void
drain_queue(void)
{
	int			n;

	if (held_events > 0 &&
		!TimestampDifferenceExceeds(held_since, GetCurrentTimestamp(), 1000))
		return;
	pgstat_report_activity(STATE_RUNNING, "writing queued audit events");
	while ((n = held_events > 0 ? held_events :
			audit_queue_pop(batch_bufs, AUDIT_WORKER_BATCH)) > 0)
	{
		int			i;
		BatchResult r;

		held_events = 0;
		r = write_batch(0, n);
		if (r == BATCH_WRITTEN)
			continue;
		for (i = 0; r != BATCH_HELD && i < n; i++)
		{
			r = write_batch(i, 1);
			if (r == BATCH_FAILED)
			{
				AuditEvent	ev;

				audit_event_deserialize(batch_bufs + i * AUDIT_QUEUE_SLOT, &ev);
				audit_log_event_line(&ev, "the worker could not store the event");
			}
		}
		if (r == BATCH_HELD)
		{
			i = Max(i - 1, 0);	/* slot i (or the whole batch) was held */
			memmove(batch_bufs, batch_bufs + i * AUDIT_QUEUE_SLOT, (n - i) * AUDIT_QUEUE_SLOT);
			held_events = n - i;
			held_since = GetCurrentTimestamp();
			break;
		}
		CHECK_FOR_INTERRUPTS();
	}
	pgstat_report_activity(STATE_IDLE, NULL);
}

/*
 * run_maintenance: SELECT * FROM audit_log.maintain() when that function
 * exists; errors are reported, never fatal.
 */
static void
run_maintenance(void)
{
	MemoryContext cxt = CurrentMemoryContext;

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	PushActiveSnapshot(GetTransactionSnapshot());
	pgstat_report_activity(STATE_RUNNING, "SELECT * FROM audit_log.maintain()");
	PG_TRY();
	{
		bool		exists = false;

		SPI_connect();
		if (lock_extension() &&
			SPI_execute("SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = 'audit_log' AND p.proname = 'maintain')",
						true, 1) == SPI_OK_SELECT && SPI_processed == 1)
		{
			bool		isnull;

			exists = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0],
												SPI_tuptable->tupdesc, 1, &isnull));
		}
		if (exists)
			SPI_execute("SELECT * FROM audit_log.maintain()", false, 0);
		SPI_finish();
		PopActiveSnapshot();
		CommitTransactionCommand();
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(cxt);
		EmitErrorReport();
		FlushErrorState();
		AbortCurrentTransaction();
	}
	PG_END_TRY();
	pgstat_report_activity(STATE_IDLE, NULL);
}

/*
 * setting_changed: record a reload that changed an audit_log.* setting.
 */
static void
setting_changed(const char *name, const char *oldval, const char *newval)
{
	AuditEvent	ev;
	StringInfoData d;

	initStringInfo(&d);
	appendStringInfoString(&d, "{\"setting\": ");
	escape_json(&d, name);
	appendStringInfoString(&d, ", \"old_value\": ");
	escape_json(&d, oldval);
	appendStringInfoString(&d, ", \"value\": ");
	escape_json(&d, newval);
	appendStringInfoString(&d, ", \"source\": \"configuration reload\"}");

	StartTransactionCommand();
	audit_event_init(&ev, "audit", "audit.setting_changed");
	ev.actor_type = "system";
	ev.object_type = "setting";
	ev.object_name = name;
	ev.command = "RELOAD";
	ev.details = DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum(d.data)));
	audit_queue_event(&ev);
	CommitTransactionCommand();
}

/* Settings whose change by a reload is recorded (database: see below). */
static const char *const watched_settings[] = {
	"audit_log.log_connections", "audit_log.maintenance_interval",
	"audit_log.premake_days", "audit_log.seal_window", "audit_log.seal_delay",
	"audit_log.export_max_rows"
};

/*
 * setting_value: a setting's current value, copied to TopMemoryContext.
 */
static char *
setting_value(const char *name)
{
	const char *v = GetConfigOption(name, true, false);

	return MemoryContextStrdup(TopMemoryContext, v ? v : "");
}

/*
 * audit_worker_main: entry point of the background worker.
 */
void
audit_worker_main(Datum arg)
{
	TimestampTz next_maintenance;
	char	   *dbname;
	char	   *old_values[lengthof(watched_settings)];
	int			i;

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();

	audit_in_worker = true;
	batch_bufs = MemoryContextAlloc(TopMemoryContext, AUDIT_QUEUE_SLOT * AUDIT_WORKER_BATCH);
	before_shmem_exit(worker_exit, (Datum) 0);

	dbname = MemoryContextStrdup(TopMemoryContext, audit_database);
	BackgroundWorkerInitializeConnection(dbname, NULL, 0);
	worker_connected = true;
	audit_queue_set_worker(MyProcPid, MyLatch);
	pgstat_report_appname("audit_log worker");

	for (i = 0; i < lengthof(watched_settings); i++)
		old_values[i] = setting_value(watched_settings[i]);
	next_maintenance = TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
												   (int64) audit_maintenance_interval * 1000);

	for (;;)
	{
		long		timeout;

		drain_queue();

		if (GetCurrentTimestamp() >= next_maintenance)
		{
			run_maintenance();
			next_maintenance = TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
														   (int64) audit_maintenance_interval * 1000);
		}
		timeout = Max(10, Min(held_events > 0 ? 1000 : 10000,
							  (next_maintenance - GetCurrentTimestamp()) / 1000));
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 timeout, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();

		if (ConfigReloadPending)
		{
			int			old_interval = audit_maintenance_interval;

			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
			for (i = 0; i < lengthof(watched_settings); i++)
			{
				char	   *now = setting_value(watched_settings[i]);

				if (strcmp(now, old_values[i]) != 0)
				{
					setting_changed(watched_settings[i], old_values[i], now);
					old_values[i] = now;
				}
			}
			if (old_interval != audit_maintenance_interval)
				next_maintenance = TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
															   (int64) audit_maintenance_interval * 1000);
			if (strcmp(dbname, audit_database) != 0)
			{
				setting_changed("audit_log.database", dbname, audit_database);
				drain_queue();
				ereport(LOG,
						(errmsg("audit_log worker restarting: audit_log.database changed from \"%s\" to \"%s\"",
								dbname, audit_database)));
				proc_exit(1);
			}
		}
	}
}
