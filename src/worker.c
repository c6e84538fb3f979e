/*-------------------------------------------------------------------------
 *
 * worker.c
 *		A writer: the dynamic background worker that the launcher starts
 *		for one database (launcher.c).  It stores the queued events of its
 *		database in its audit_log.events, and runs audit_log.maintain()
 *		there every audit_log.maintenance_interval and
 *		audit_log.check_alerts() every audit_log.alert_interval.  The writer of
 *		audit_log.database also stores the cluster-wide events and those of
 *		databases that will get no writer, marked with details.stored_for.
 *
 * Transactions: each batch of queued events is taken and written in a
 * transaction of its own and marked done in the queue after the commit;
 * when a batch fails, its events are retried one by one and an event that
 * still cannot be stored goes to the server log (never lost silently).
 * maintain() runs in its own transaction; its errors, and the rows where
 * it says a step failed or a window is kept open, go to the server log and
 * the loop goes on.
 *
 * Locking: every transaction of the writer first takes a share lock on the
 * audit_log extension object (lock_extension), the lock DROP EXTENSION takes
 * in exclusive mode before anything else.  Without it, a batch written
 * while the extension is being dropped locks the events table and then a
 * partition, in the opposite order of the drop, and one of the two fails
 * with a deadlock.  Events are taken from the queue only once the lock is
 * held.
 *
 * Restores: while a dump is being restored into the writer's database
 * (restore.c), nothing else may write into its audit_log.events (new ids
 * would collide with the restored ones): the writer takes nothing from the
 * queue and looks again every second, until the restoring session has
 * ended.  A full queue sends events to the server log as usual.
 *
 * Life cycle: at start it checks the extension; when it is absent (or
 * found dropped later) the writer marks its database AW_NOEXT and exits.
 * It exits when the launcher or a backend asks (its database dropped,
 * renamed...); at any exit the events it took and did not store go back
 * to the queue.  The launcher restarts it AUDIT_WORKER_RESTART seconds
 * after any other exit.
 *
 *-------------------------------------------------------------------------
 */
#include "workers.h"

#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_extension.h"
#include "catalog/pg_type.h"
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

#define AUDIT_WORKER_BATCH		64

PGDLLEXPORT void audit_worker_main(Datum arg);

bool		audit_in_worker = false;
static AuditWriterEntry *my_entry = NULL;
static char *batch_bufs = NULL;
static uint64 batch_pos[AUDIT_WORKER_BATCH];
static Oid	batch_targets[AUDIT_WORKER_BATCH];
static Oid *orphans = NULL;
static bool restore_held = false;	/* a restore runs: nothing taken */

/*
 * audit_worker_register: fill the registration of the writer of a
 * database (started by the launcher, which is told when it stops).
 */
void
audit_worker_register(BackgroundWorker *worker, Oid dboid, const char *dbname)
{
	memset(worker, 0, sizeof(*worker));
	worker->bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker->bgw_start_time = BgWorkerStart_RecoveryFinished;
	worker->bgw_restart_time = BGW_NEVER_RESTART;
	snprintf(worker->bgw_library_name, BGW_MAXLEN, "audit_log");
	snprintf(worker->bgw_function_name, BGW_MAXLEN, "audit_worker_main");
	snprintf(worker->bgw_name, BGW_MAXLEN, "audit_log worker for %s", dbname);
	snprintf(worker->bgw_type, BGW_MAXLEN, "audit_log worker");
	worker->bgw_main_arg = ObjectIdGetDatum(dboid);
	worker->bgw_notify_pid = MyProcPid;
}

/*
 * writer_exit: leave the registry, give back the events taken and not
 * stored, and put every event still waiting for this writer in the server
 * log: the launcher restarts the writer (after AUDIT_WORKER_RESTART
 * seconds), unless the database is paused or gone.
 */
static void
writer_exit(int code, Datum arg)
{
	bool		cluster;
	int			norphans;
	bool		mine = false;

	if (my_entry == NULL)
	{
		audit_queue_release(MyProcPid);
		return;
	}
	/* what to log below: what this writer would have stored */
	norphans = audit_registry_routing(MyDatabaseId, &cluster, orphans, audit_registry->capacity);
	LWLockAcquire(audit_registry->lock, LW_EXCLUSIVE);
	if (my_entry->pid == MyProcPid)
	{
		mine = true;
		my_entry->pid = 0;
		my_entry->latch = NULL;
		my_entry->held = false;
		if (my_entry->paused_by != 0)
			my_entry->state = AW_WANTED;
		else if (my_entry->stop)
			my_entry->state = AW_GONE;
		else
		{
			my_entry->state = AW_WANTED;
			my_entry->retry_at = TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
															 AUDIT_WORKER_RESTART * 1000);
		}
	}
	LWLockRelease(audit_registry->lock);
	my_entry = NULL;

	/*
	 * No writer stores them now (an event queued from here on is logged by
	 * its backend): those waiting go to the server log too, so that a stop
	 * or crash before the next writer loses nothing silently.
	 */
	audit_queue_release(MyProcPid);
	if (mine)
		audit_queue_log_waiting(MyDatabaseId, cluster, orphans, norphans,
								"the writer stopped: queued until one stores it");
	audit_registry_wake_launcher();
}

/*
 * set_held: say in the registry whether a restore holds this writer: while
 * it does, an event queued for it also goes to the server log at once
 * (audit_registry_wake()), since it may wait for hours.  Called after
 * every look, whatever happened in it; takes the lock only on a change.
 */
static void
set_held(bool held)
{
	static bool published = false;

	if (my_entry == NULL || held == published)
		return;
	published = held;
	LWLockAcquire(audit_registry->lock, LW_EXCLUSIVE);
	if (my_entry->pid == MyProcPid)
		my_entry->held = held;
	LWLockRelease(audit_registry->lock);
}

/*
 * claim: become the writer of this database's registry entry; false when
 * another writer has it, or a backend paused it.
 */
static bool
claim(Oid dboid)
{
	AuditWriterEntry *e;
	bool		ok = false;

	LWLockAcquire(audit_registry->lock, LW_EXCLUSIVE);
	e = audit_registry_find(dboid);
	if (e && e->pid == 0 && (e->state == AW_STARTING || e->state == AW_WANTED))
	{
		if (e->paused_by != 0 || e->stop)
			e->state = AW_WANTED;	/* the pausing backend waits for this */
		else
		{
			e->pid = MyProcPid;
			e->latch = MyLatch;
			e->state = AW_STARTING;
			e->started_at = GetCurrentTimestamp();
			my_entry = e;
			ok = true;
		}
	}
	LWLockRelease(audit_registry->lock);
	return ok;
}

/*
 * entry_gen: the database's ext_gen, read before a transaction that may
 * find the extension absent.
 */
static uint32
entry_gen(void)
{
	uint32		gen;

	LWLockAcquire(audit_registry->lock, LW_SHARED);
	gen = my_entry->ext_gen;
	LWLockRelease(audit_registry->lock);
	return gen;
}

/*
 * no_extension: the database has no audit_log extension (any more): say
 * so in the registry and exit; its events go to audit_log.database.
 */
static void
no_extension(uint32 gen)
{
	LWLockAcquire(audit_registry->lock, LW_EXCLUSIVE);
	my_entry->state = AW_NOEXT;
	my_entry->checked_gen = gen;
	my_entry->pid = 0;
	my_entry->latch = NULL;
	LWLockRelease(audit_registry->lock);
	my_entry = NULL;
	audit_queue_release(MyProcPid);
	audit_registry_wake_launcher();
	proc_exit(0);
}

/*
 * stop_requested: the launcher or a backend asks this writer to exit.
 */
static bool
stop_requested(void)
{
	bool		stop;

	LWLockAcquire(audit_registry->lock, LW_SHARED);
	stop = my_entry->stop || my_entry->paused_by != 0;
	LWLockRelease(audit_registry->lock);
	return stop;
}

/*
 * wrote: n events stored, for audit_log.status.
 */
static void
wrote(int n)
{
	audit_queue_count_written(n);
	LWLockAcquire(audit_registry->lock, LW_EXCLUSIVE);
	my_entry->written += n;
	my_entry->last_write = GetCurrentTimestamp();
	LWLockRelease(audit_registry->lock);
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
 * mark_stored_for: an event of another database, stored here because that
 * database will get no writer: details.stored_for names it.
 */
static void
mark_stored_for(AuditEvent *ev, Oid target)
{
	StringInfoData d;
	Jsonb	   *mark;

	initStringInfo(&d);
	appendStringInfoString(&d, "{\"stored_for\": ");
	if (ev->database)
		escape_json(&d, ev->database);
	else
		appendStringInfo(&d, "\"%u\"", target);
	appendStringInfoChar(&d, '}');
	mark = DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum(d.data)));
	ev->details = ev->details == NULL ? mark :
		DatumGetJsonbP(DirectFunctionCall2(jsonb_concat, JsonbPGetDatum(ev->details),
										   JsonbPGetDatum(mark)));
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
		if (OidIsValid(batch_targets[from + i]) && batch_targets[from + i] != MyDatabaseId)
			mark_stored_for(ev, batch_targets[from + i]);
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

/*
 * write_batch: store the taken slots [from, from+n) in one transaction;
 * 1 when stored, 0 when it failed (nothing stored), -1 when the extension
 * is gone (nothing stored).
 */
static int
write_batch(int from, int n)
{
	MemoryContext cxt = CurrentMemoryContext;
	volatile int result = 1;

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	PushActiveSnapshot(GetTransactionSnapshot());
	PG_TRY();
	{
		AuditEvent *evs = palloc0(sizeof(AuditEvent) * n);

		if (lock_extension() && OidIsValid(audit_events_relid(true)))
		{
			decode_batch(evs, from, n);
			audit_write_events(evs, n);
		}
		else
			result = -1;
		PopActiveSnapshot();
		CommitTransactionCommand();
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(cxt);
		EmitErrorReport();
		FlushErrorState();
		AbortCurrentTransaction();
		result = 0;
	}
	PG_END_TRY();
	return result;
}

/*
 * take_and_write: lock the extension, take up to a batch of this writer's
 * events and store them, in one transaction.  Returns how many were taken
 * (0: none waiting), or -1 when the extension is gone (nothing taken).
 */
static int
take_and_write(void)
{
	MemoryContext cxt = CurrentMemoryContext;
	volatile int n = 0;
	volatile bool gone = false;
	volatile bool failed = false;
	uint32		gen = entry_gen();
	bool		cluster;
	int			norphans;
	int			i;

	norphans = audit_registry_routing(MyDatabaseId, &cluster, orphans, audit_registry->capacity);
	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	PushActiveSnapshot(GetTransactionSnapshot());
	PG_TRY();
	{
		restore_held = false;
		if (!lock_extension() || !OidIsValid(audit_events_relid(true)))
			gone = true;
		else if (restore_running())
			restore_held = true;
		if (!gone && !restore_held)
			n = audit_queue_take(MyDatabaseId, cluster, orphans, norphans, batch_bufs,
								 batch_pos, batch_targets, AUDIT_WORKER_BATCH);
		if (n > 0)
		{
			AuditEvent *evs = palloc0(sizeof(AuditEvent) * n);

			decode_batch(evs, 0, n);
			audit_write_events(evs, n);
		}
		PopActiveSnapshot();
		CommitTransactionCommand();
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(cxt);
		EmitErrorReport();
		FlushErrorState();
		AbortCurrentTransaction();
		failed = true;
		restore_held = false;	/* not known: looked at again next time */
	}
	PG_END_TRY();
	set_held(restore_held);
	if (gone)
		no_extension(gen);
	if (n == 0)
		return 0;
	if (!failed)
	{
		audit_queue_done(batch_pos, n);
		wrote(n);
		return n;
	}
	/* the batch failed: one by one, then the server log */
	for (i = 0; i < n; i++)
	{
		int			r = write_batch(i, 1);

		if (r < 0)
			no_extension(gen);	/* gives the rest back to the queue */
		if (r == 0)
		{
			AuditEvent	ev;
			MemoryContext one = AllocSetContextCreate(CurrentMemoryContext,
													  "audit_log unstored event",
													  ALLOCSET_SMALL_SIZES);
			MemoryContext prev = MemoryContextSwitchTo(one);

			audit_event_deserialize(batch_bufs + i * AUDIT_QUEUE_SLOT, &ev);
			audit_log_event_line(&ev, "the worker could not store the event");
			MemoryContextSwitchTo(prev);
			MemoryContextDelete(one);
		}
		else
			wrote(1);
		audit_queue_done(&batch_pos[i], 1);
	}
	return n;
}

/*
 * drain_queue: write everything queued for this writer, batch by batch.
 */
static void
drain_queue(void)
{
	pgstat_report_activity(STATE_RUNNING, "writing queued audit events");
	while (take_and_write() > 0)
	{
		CHECK_FOR_INTERRUPTS();
		if (stop_requested())
			break;
	}
	pgstat_report_activity(STATE_IDLE, NULL);
}

/*
 * report_rows: put the rows (action, object, detail) that a maintain() run
 * by the writer returned in the server log, where the DBA who relies on
 * the writer sees them: an "error" (a step failed, the seal chain stopped)
 * as a WARNING, anything else (a window kept open) as a LOG line.
 */
static void
report_rows(const char *proname)
{
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		char	   *action = SPI_getvalue(tup, desc, 1);
		char	   *object = SPI_getvalue(tup, desc, 2);
		char	   *detail = SPI_getvalue(tup, desc, 3);

		ereport(action && strcmp(action, "error") == 0 ? WARNING : LOG,
				(errmsg("audit_log: %s(): %s: %s: %s", proname, action ? action : "",
						object ? object : "", detail ? detail : "")));
	}
}

/*
 * run_periodic: run query (SELECT ... FROM audit_log.maintain(), SELECT
 * audit_log.check_alerts()) in a transaction of its own when the function
 * proname exists (a database still on the 1.0 SQL has no check_alerts());
 * errors are reported, never fatal; with report, the rows the query
 * returns (action, object, detail) go to the server log (report_rows).
 * The state of check_alerts() commits
 * with its alerts, so a writer killed mid-pass neither loses nor repeats
 * one.
 */
static void
run_periodic(const char *proname, const char *query, bool report)
{
	MemoryContext cxt = CurrentMemoryContext;

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	PushActiveSnapshot(GetTransactionSnapshot());
	pgstat_report_activity(STATE_RUNNING, query);
	PG_TRY();
	{
		Oid			argtypes[1] = {TEXTOID};
		Datum		args[1];
		bool		exists = false;

		args[0] = CStringGetTextDatum(proname);
		SPI_connect();
		if (lock_extension() &&
			SPI_execute_with_args("SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_proc p "
								  "JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) p.pronamespace "
								  "WHERE n.nspname OPERATOR(pg_catalog.=) 'audit_log' "
								  "AND p.proname OPERATOR(pg_catalog.=) $1)",
								  1, argtypes, args, NULL, true, 1) == SPI_OK_SELECT &&
			SPI_processed == 1)
		{
			bool		isnull;

			exists = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0],
												SPI_tuptable->tupdesc, 1, &isnull));
		}
		if (exists && SPI_execute(query, false, 0) == SPI_OK_SELECT && report)
			report_rows(proname);
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
 * after_ms: the time ms milliseconds from now.
 */
static TimestampTz
after_ms(int64 ms)
{
	return TimestampTzPlusMilliseconds(GetCurrentTimestamp(), ms);
}

/*
 * audit_worker_main: entry point of a writer; arg is its database's OID.
 */
void
audit_worker_main(Datum arg)
{
	Oid			dboid = DatumGetObjectId(arg);
	TimestampTz next_maintenance;
	TimestampTz next_alerts;
	uint32		gen;

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();

	audit_in_worker = true;
	batch_bufs = MemoryContextAlloc(TopMemoryContext, AUDIT_QUEUE_SLOT * AUDIT_WORKER_BATCH);
	orphans = MemoryContextAlloc(TopMemoryContext, sizeof(Oid) * audit_registry->capacity);
	before_shmem_exit(writer_exit, (Datum) 0);

	BackgroundWorkerInitializeConnectionByOid(dboid, InvalidOid, 0);
	/* Whatever ALTER DATABASE/ROLE ... SET search_path says (guard.c). */
	SetConfigOption("search_path", "pg_catalog, pg_temp", PGC_SUSET, PGC_S_OVERRIDE);
	if (!claim(dboid))
		proc_exit(0);
	pgstat_report_appname("audit_log worker");

	/* the extension must be there */
	gen = entry_gen();
	StartTransactionCommand();
	if (!lock_extension())
	{
		CommitTransactionCommand();
		no_extension(gen);
	}
	CommitTransactionCommand();
	LWLockAcquire(audit_registry->lock, LW_EXCLUSIVE);
	my_entry->state = AW_RUNNING;
	LWLockRelease(audit_registry->lock);

	next_maintenance = after_ms((int64) audit_maintenance_interval * 1000);
	next_alerts = after_ms((int64) audit_alert_interval * 1000);
	for (;;)
	{
		long		timeout;

		if (stop_requested())
			proc_exit(0);
		drain_queue();
		if (stop_requested())
			proc_exit(0);

		if (GetCurrentTimestamp() >= next_maintenance)
		{
			run_periodic("maintain", "SELECT action, object, detail FROM audit_log.maintain() "
						 "WHERE action OPERATOR(pg_catalog.=) ANY ('{error,waiting}'::pg_catalog.text[])", true);
			next_maintenance = after_ms((int64) audit_maintenance_interval * 1000);
		}
		if (GetCurrentTimestamp() >= next_alerts)
		{
			drain_queue();		/* what is queued counts in this pass */
			run_periodic("check_alerts", "SELECT audit_log.check_alerts()", false);
			next_alerts = after_ms((int64) audit_alert_interval * 1000);
		}
		timeout = Max(10, Min(restore_held ? 1000 : 10000,
							  (Min(next_maintenance, next_alerts) -
							   GetCurrentTimestamp()) / 1000));
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 timeout, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();

		if (ConfigReloadPending)
		{
			int			old_interval = audit_maintenance_interval;

			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
			if (old_interval != audit_maintenance_interval)
				next_maintenance = after_ms((int64) audit_maintenance_interval * 1000);
		}
	}
}
