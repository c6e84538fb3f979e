/*-------------------------------------------------------------------------
 *
 * launcher.c
 *		The launcher: a static background worker, connected to no database,
 *		that starts one writer (worker.c) per database that has the
 *		extension, restarts it, and records reloads of audit_log.*
 *		settings.
 *
 * It scans pg_database every AUDIT_LAUNCHER_RESCAN seconds, at a reload,
 * when a backend asks (CREATE/DROP/ALTER DATABASE, CREATE EXTENSION
 * audit_log: see registry.c) and when an event waits for a database it
 * does not know.  Every database that accepts connections and is not a
 * template gets a writer; the writer checks the extension and, when it is
 * absent, marks the database AW_NOEXT and exits (it is checked again when
 * CREATE EXTENSION audit_log commits there).  A writer that exits otherwise
 * is restarted after AUDIT_WORKER_RESTART seconds; one of a database that
 * is dropped or no longer accepts connections is stopped.  When no worker
 * slot is left (max_worker_processes) and none is about to free up, the
 * database is AW_NOSLOT: its events go to audit_log.database, marked, and
 * the launcher tries again at the next scan.
 *
 * When audit_log.database does not exist or lacks the extension, the
 * launcher sends the cluster-wide events (and the orphans' events) to the
 * server log, each as one line: never lost silently.
 *
 * Transactions: one short transaction per scan of pg_database (a shared
 * catalog) and per recorded setting change.  Locking: the registry's lock
 * is never held while registering a worker.
 *
 *-------------------------------------------------------------------------
 */
#include "workers.h"

#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/pg_database.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/proc.h"
#include "storage/procarray.h"
#include "tcop/tcopprot.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/json.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#define LAUNCHER_BATCH	64

PGDLLEXPORT void audit_launcher_main(Datum arg);

static BackgroundWorkerHandle **handles = NULL;	/* per registry entry */

/*
 * audit_launcher_init: the registry, and the launcher registered with the
 * postmaster (called from _PG_init when preloaded).
 */
void
audit_launcher_init(void)
{
	BackgroundWorker worker;

	audit_registry_init();
	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
	worker.bgw_restart_time = AUDIT_WORKER_RESTART;
	snprintf(worker.bgw_library_name, BGW_MAXLEN, "audit_log");
	snprintf(worker.bgw_function_name, BGW_MAXLEN, "audit_launcher_main");
	snprintf(worker.bgw_name, BGW_MAXLEN, "audit_log launcher");
	snprintf(worker.bgw_type, BGW_MAXLEN, "audit_log launcher");
	RegisterBackgroundWorker(&worker);
}

/*
 * launcher_exit: no launcher to wake any more; the queue slots it had
 * taken to send to the server log (drain_unroutable(), ended by a signal
 * or an error halfway) are ready again for the next launcher.
 */
static void
launcher_exit(int code, Datum arg)
{
	LWLockAcquire(audit_registry->lock, LW_EXCLUSIVE);
	if (audit_registry->launcher_pid == MyProcPid)
	{
		audit_registry->launcher_pid = 0;
		audit_registry->launcher_latch = NULL;
	}
	LWLockRelease(audit_registry->lock);
	audit_queue_release(MyProcPid);
}

typedef struct DbRow
{
	Oid			oid;
	bool		eligible;
	NameData	name;
} DbRow;

/*
 * scan_databases: read pg_database and bring the registry up to date;
 * unknown: OIDs that queued events belong to, read before the scan; those
 * still unknown after it are databases that will get no writer.
 */
static void
scan_databases(const Oid *unknown, int nunknown)
{
	MemoryContext cxt = AllocSetContextCreate(CurrentMemoryContext, "audit_log scan",
											  ALLOCSET_DEFAULT_SIZES);
	MemoryContext old;
	List	   *rows = NIL;
	ListCell   *lc;
	Relation	rel;
	TableScanDesc scan;
	HeapTuple	tup;
	Oid			cluster_db = InvalidOid;
	Latch	   *cluster_latch = NULL;
	int			i;

	LWLockAcquire(audit_registry->lock, LW_EXCLUSIVE);
	audit_registry->rescan = false;
	LWLockRelease(audit_registry->lock);

	StartTransactionCommand();
	(void) GetTransactionSnapshot();
	rel = table_open(DatabaseRelationId, AccessShareLock);
	scan = table_beginscan_catalog(rel, 0, NULL);
	while (HeapTupleIsValid(tup = heap_getnext(scan, ForwardScanDirection)))
	{
		Form_pg_database db = (Form_pg_database) GETSTRUCT(tup);
		DbRow	   *r;

		old = MemoryContextSwitchTo(cxt);
		r = palloc(sizeof(DbRow));
		MemoryContextSwitchTo(old);
		r->oid = db->oid;
		r->name = db->datname;
		r->eligible = db->datallowconn && !db->datistemplate;
#ifdef DATCONNLIMIT_INVALID_DB
		if (db->datconnlimit == DATCONNLIMIT_INVALID_DB)
			r->eligible = false;
#endif
		if (strcmp(NameStr(db->datname), audit_database) == 0)
			cluster_db = db->oid;
		old = MemoryContextSwitchTo(cxt);
		rows = lappend(rows, r);
		MemoryContextSwitchTo(old);
	}
	table_endscan(scan);
	table_close(rel, AccessShareLock);
	CommitTransactionCommand();

	LWLockAcquire(audit_registry->lock, LW_EXCLUSIVE);
	audit_registry->cluster_db = cluster_db;
	audit_registry->scanned = true;
	for (i = 0; i < audit_registry->capacity; i++)
	{
		AuditWriterEntry *e = &audit_registry->entries[i];
		DbRow	   *found = NULL;

		if (e->state == AW_FREE)
			continue;
		foreach(lc, rows)
			if (((DbRow *) lfirst(lc))->oid == e->dboid)
				found = lfirst(lc);
		if (found)
			e->dbname = found->name;
		if (found == NULL || !found->eligible)
		{
			if (e->pid != 0 || e->state == AW_STARTING)
				e->stop = true; /* it exits; then AW_GONE */
			else
				e->state = AW_GONE;
		}
		else if (e->state == AW_GONE || e->state == AW_NOSLOT)
		{
			e->state = AW_WANTED;
			e->retry_at = 0;
		}
	}
	foreach(lc, rows)
	{
		DbRow	   *r = lfirst(lc);

		if (r->eligible && audit_registry_find(r->oid) == NULL)
		{
			AuditWriterEntry *e = audit_registry_add(r->oid);

			if (e)
				e->dbname = r->name;
		}
	}
	for (i = 0; i < nunknown; i++)
	{
		if (audit_registry_find(unknown[i]) == NULL)
		{
			AuditWriterEntry *e = audit_registry_add(unknown[i]);

			if (e)
				e->state = AW_GONE;
		}
	}
	{
		AuditWriterEntry *c = audit_registry_find(cluster_db);

		if (c && c->state == AW_RUNNING)
			cluster_latch = c->latch;
	}
	LWLockRelease(audit_registry->lock);
	if (cluster_latch)
		SetLatch(cluster_latch);	/* the orphans may have changed */
	MemoryContextDelete(cxt);
}

/*
 * check_handles: a writer that stopped before it could register itself
 * (its database was dropped meanwhile, say) is wanted again after the
 * restart delay; true when one did, so that the databases are scanned.
 */
static bool
check_handles(void)
{
	bool		any = false;
	int			i;

	for (i = 0; i < audit_registry->capacity; i++)
	{
		pid_t		pid;

		if (handles[i] == NULL ||
			GetBackgroundWorkerPid(handles[i], &pid) != BGWH_STOPPED)
			continue;
		pfree(handles[i]);
		handles[i] = NULL;
		LWLockAcquire(audit_registry->lock, LW_EXCLUSIVE);
		if (audit_registry->entries[i].state == AW_STARTING &&
			audit_registry->entries[i].pid == 0)
		{
			audit_registry->entries[i].state = AW_WANTED;
			audit_registry->entries[i].retry_at =
				TimestampTzPlusMilliseconds(GetCurrentTimestamp(), AUDIT_WORKER_RESTART * 1000);
			any = true;
		}
		LWLockRelease(audit_registry->lock);
	}
	return any;
}

/*
 * launch_one: register the writer of entry i (AW_STARTING already); false
 * when the postmaster has no slot for it.
 */
static bool
launch_one(int i)
{
	BackgroundWorker worker;
	BackgroundWorkerHandle *h;
	MemoryContext old;
	bool		ok;

	audit_worker_register(&worker, audit_registry->entries[i].dboid,
						  NameStr(audit_registry->entries[i].dbname));
	old = MemoryContextSwitchTo(TopMemoryContext);
	ok = RegisterDynamicBackgroundWorker(&worker, &h);
	MemoryContextSwitchTo(old);
	if (ok)
	{
		if (handles[i])
			pfree(handles[i]);
		handles[i] = h;
	}
	return ok;
}

/*
 * launch_writers: start the writers that are wanted, that of
 * audit_log.database first; returns the milliseconds until the next retry
 * (-1: none pending).
 */
static long
launch_writers(void)
{
	TimestampTz now = GetCurrentTimestamp();
	long		next = -1;
	int			pass;

	for (pass = 0; pass < 2; pass++)
	{
		int			i;

		for (i = 0; i < audit_registry->capacity; i++)
		{
			AuditWriterEntry *e = &audit_registry->entries[i];
			bool		go = false;
			bool		starting = false;
			int			k;

			LWLockAcquire(audit_registry->lock, LW_EXCLUSIVE);
			if (e->paused_by != 0 && BackendPidGetProc(e->paused_by) == NULL)
			{
				e->paused_by = 0;	/* the backend that paused it is gone */
				e->stop = false;
			}
			if (e->state == AW_NOEXT && e->ext_gen != e->checked_gen)
			{
				e->state = AW_WANTED;	/* CREATE EXTENSION since the check */
				e->retry_at = 0;
			}
			if (e->state == AW_WANTED && e->paused_by == 0 && e->pid == 0 &&
				(pass == 0) == (e->dboid == audit_registry->cluster_db))
			{
				if (e->retry_at <= now)
				{
					go = true;
					e->state = AW_STARTING;
					e->stop = false;
				}
				else
				{
					long		ms = TimestampDifferenceMilliseconds(now, e->retry_at);

					next = (next < 0 || ms < next) ? ms : next;
				}
			}
			LWLockRelease(audit_registry->lock);
			if (!go || launch_one(i))
				continue;

			/* no slot: wait if a writer that is starting may free one */
			LWLockAcquire(audit_registry->lock, LW_EXCLUSIVE);
			for (k = 0; k < audit_registry->capacity; k++)
				if (k != i && audit_registry->entries[k].state == AW_STARTING)
					starting = true;
			if (starting)
			{
				e->state = AW_WANTED;
				e->retry_at = TimestampTzPlusMilliseconds(now, 1000);
				next = (next < 0 || next > 1000) ? 1000 : next;
			}
			else
				e->state = AW_NOSLOT;
			LWLockRelease(audit_registry->lock);
			if (!starting)
				ereport(WARNING,
						(errmsg("audit_log: no background worker slot for the writer of database \"%s\"",
								NameStr(e->dbname)),
						 errdetail("Its queued events are stored in audit_log.database, marked with details.stored_for."),
						 errhint("Raise max_worker_processes.")));
		}
	}
	return next;
}

/*
 * drain_unroutable: when audit_log.database cannot store events (missing,
 * without the extension, no worker slot), send the cluster-wide events and
 * those of the orphans to the server log.
 */
static void
drain_unroutable(char *bufs, Oid *orphans)
{
	static MemoryContext cxt = NULL;
	MemoryContext old;
	const char *reason = NULL;
	AuditWriterEntry *c;
	Oid			cluster_db;
	uint64		pos[LAUNCHER_BATCH];
	Oid			targets[LAUNCHER_BATCH];
	int			norphans = 0;
	int			n;
	int			i;

	LWLockAcquire(audit_registry->lock, LW_SHARED);
	cluster_db = audit_registry->cluster_db;
	c = audit_registry_find(cluster_db);
	if (audit_registry->scanned && (c == NULL || c->paused_by == 0))
	{
		if (c == NULL || c->state == AW_GONE || c->state == AW_NOSLOT)
			reason = "audit database unavailable";
		else if (c->state == AW_NOEXT)
			reason = "audit database lacks the audit_log extension";
	}
	for (i = 0; reason && i < audit_registry->capacity; i++)
	{
		AuditWriterEntry *e = &audit_registry->entries[i];

		if (AW_ORPHAN(e->state) && e->paused_by == 0 && e->dboid != cluster_db)
			orphans[norphans++] = e->dboid;
	}
	LWLockRelease(audit_registry->lock);
	if (reason == NULL)
		return;
	qsort(orphans, norphans, sizeof(Oid), oid_cmp);
	if (cxt == NULL)
		cxt = AllocSetContextCreate(TopMemoryContext, "audit_log drain",
									ALLOCSET_DEFAULT_SIZES);
	old = MemoryContextSwitchTo(cxt);
	while ((n = audit_queue_take(cluster_db, true, orphans, norphans, bufs, pos,
								 targets, LAUNCHER_BATCH)) > 0)
	{
		for (i = 0; i < n; i++)
		{
			AuditEvent	ev;

			audit_event_deserialize(bufs + (Size) i * AUDIT_QUEUE_SLOT, &ev);
			audit_log_event_line(&ev, reason);
		}
		audit_queue_done(pos, n);
		MemoryContextReset(cxt);
	}
	MemoryContextSwitchTo(old);
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
	/* a change of audit_log.database is recorded in the database it leaves */
	audit_queue_event_for(&ev, strcmp(name, "audit_log.database") == 0 ?
						  audit_registry->cluster_db : InvalidOid);
	CommitTransactionCommand();
}

/* Settings whose change by a reload is recorded. */
static const char *const watched_settings[] = {
	"audit_log.database", "audit_log.log_connections",
	"audit_log.maintenance_interval", "audit_log.premake_days",
	"audit_log.seal_window", "audit_log.seal_delay", "audit_log.export_max_rows",
	"audit_log.alert_interval"
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
 * audit_launcher_main: entry point of the launcher.
 */
void
audit_launcher_main(Datum arg)
{
	char	   *old_values[lengthof(watched_settings)];
	TimestampTz next_scan = 0;
	char	   *bufs;
	Oid		   *oids;
	int64	   *counts;
	int			i;

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();
	audit_in_worker = true;
	BackgroundWorkerInitializeConnection(NULL, NULL, 0);
	pgstat_report_appname("audit_log launcher");

	handles = MemoryContextAllocZero(TopMemoryContext,
									 sizeof(BackgroundWorkerHandle *) * audit_registry->capacity);
	bufs = MemoryContextAlloc(TopMemoryContext, (Size) AUDIT_QUEUE_SLOT * LAUNCHER_BATCH);
	oids = MemoryContextAlloc(TopMemoryContext, sizeof(Oid) * (audit_registry->capacity + 1));
	counts = MemoryContextAlloc(TopMemoryContext, sizeof(int64) * (audit_registry->capacity + 1));

	LWLockAcquire(audit_registry->lock, LW_EXCLUSIVE);
	audit_registry->launcher_pid = MyProcPid;
	audit_registry->launcher_latch = MyLatch;
	for (i = 0; i < audit_registry->capacity; i++)
		if (audit_registry->entries[i].state == AW_STARTING &&
			audit_registry->entries[i].pid == 0)
			audit_registry->entries[i].state = AW_WANTED;	/* a previous launcher's */
	LWLockRelease(audit_registry->lock);
	before_shmem_exit(launcher_exit, (Datum) 0);

	for (i = 0; i < lengthof(watched_settings); i++)
		old_values[i] = setting_value(watched_settings[i]);

	for (;;)
	{
		bool		scan;
		int			nunknown = 0;
		int			n;
		long		retry;
		long		timeout;
		Latch	   *cluster_latch = NULL;

		CHECK_FOR_INTERRUPTS();
		scan = check_handles();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
			for (i = 0; i < lengthof(watched_settings); i++)
			{
				char	   *now = setting_value(watched_settings[i]);

				if (strcmp(now, old_values[i]) != 0)
				{
					setting_changed(watched_settings[i], old_values[i], now);
					pfree(old_values[i]);
					old_values[i] = now;
				}
				else
					pfree(now);
			}
			scan = true;		/* audit_log.database may have changed */
		}

		/* databases that queued events belong to and that we do not know */
		n = audit_queue_targets(oids, counts, audit_registry->capacity + 1);
		LWLockAcquire(audit_registry->lock, LW_SHARED);
		for (i = 0; i < n; i++)
			if (OidIsValid(oids[i]) && audit_registry_find(oids[i]) == NULL)
				oids[nunknown++] = oids[i];
		scan = scan || nunknown > 0 || audit_registry->rescan;
		LWLockRelease(audit_registry->lock);
		if (scan || GetCurrentTimestamp() >= next_scan)
		{
			scan_databases(oids, nunknown);
			next_scan = TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
													AUDIT_LAUNCHER_RESCAN * 1000);
		}

		retry = launch_writers();
		drain_unroutable(bufs, oids);

		/* the writer of audit_log.database takes the orphans' events */
		LWLockAcquire(audit_registry->lock, LW_SHARED);
		{
			AuditWriterEntry *c = audit_registry_find(audit_registry->cluster_db);

			if (c && c->state == AW_RUNNING)
				cluster_latch = c->latch;
		}
		LWLockRelease(audit_registry->lock);
		if (cluster_latch && audit_queue_targets(oids, counts, 1) > 0)
			SetLatch(cluster_latch);

		timeout = TimestampDifferenceMilliseconds(GetCurrentTimestamp(), next_scan);
		if (retry >= 0 && retry < timeout)
			timeout = retry;
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 Max(timeout, 10), PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
	}
}
