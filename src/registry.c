/*-------------------------------------------------------------------------
 *
 * registry.c
 *		The shared registry of per-database writers: which database has a
 *		writer, in which state, where its events go (routing), and what
 *		backends tell the launcher (a database to stop a writer for, an
 *		extension created or dropped, a database created or altered).
 *
 * The registry is an array in shared memory, one entry per database the
 * launcher knows of (see workers.h for the states), guarded by its own
 * LWLock, held only to read or update entries, never while waiting.  It
 * never takes the queue's lock while holding its own, nor the reverse.
 *
 * DROP DATABASE, ALTER DATABASE RENAME/SET TABLESPACE and CREATE DATABASE
 * ... TEMPLATE refuse to run while another process is connected to the
 * database, and PostgreSQL 15 does not end background workers for them.
 * So, before such a statement runs, the backend pauses the database's
 * writer (audit_registry_utility): the writer is asked to stop, and
 * terminated after 2 seconds if it has not; the launcher starts none there
 * until the backend's transaction ends (or the backend is gone).  Events of
 * the database wait in the queue meanwhile; once it is dropped they go to
 * audit_log.database, marked.
 *
 *-------------------------------------------------------------------------
 */
#include "workers.h"
#include "compat.h"

#include <signal.h>

#include "access/xact.h"
#include "catalog/pg_authid.h"
#include "catalog/pg_database.h"
#include "catalog/pg_type.h"
#include "commands/dbcommands.h"
#include "commands/defrem.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "storage/ipc.h"
#include "storage/proc.h"
#include "storage/procarray.h"
#include "storage/shmem.h"
#include "utils/builtins.h"
#include "utils/datetime.h"
#include "utils/json.h"
#include "utils/acl.h"
#include "utils/memutils.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"

#define PAUSE_TERMINATE_MS	2000	/* then SIGTERM the writer */
#define PAUSE_GIVE_UP_MS	30000	/* then let the statement try anyway */

AuditRegistry *audit_registry = NULL;

static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

/* this backend: paused databases and what to tell at commit */
static List *paused_dbs = NIL;	/* of Oid, in TopMemoryContext */
static bool note_ext_created = false;
static bool note_ext_dropped = false;
static bool note_rescan = false;
static bool xact_callback_registered = false;

static int
registry_capacity(void)
{
	return max_worker_processes + 256;
}

static Size
registry_size(void)
{
	return add_size(offsetof(AuditRegistry, entries),
					mul_size(registry_capacity(), sizeof(AuditWriterEntry)));
}

/*
 * registry_shmem_request: reserve the registry and its lock.
 */
static void
registry_shmem_request(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	RequestAddinShmemSpace(registry_size());
	RequestNamedLWLockTranche("audit_log registry", 1);
}

/*
 * registry_shmem_startup: create (or attach to) the registry.
 */
static void
registry_shmem_startup(void)
{
	bool		found;

	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();
	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	audit_registry = ShmemInitStruct("audit_log registry", registry_size(), &found);
	if (!found)
	{
		memset(audit_registry, 0, registry_size());
		audit_registry->lock = &(GetNamedLWLockTranche("audit_log registry"))->lock;
		audit_registry->capacity = registry_capacity();
	}
	LWLockRelease(AddinShmemInitLock);
}

/*
 * audit_registry_init: install the shared-memory hooks (preload only).
 */
void
audit_registry_init(void)
{
	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = registry_shmem_request;
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = registry_shmem_startup;
}

/*
 * audit_registry_find: the entry of a database, or NULL.  Lock held.
 */
AuditWriterEntry *
audit_registry_find(Oid dboid)
{
	int			i;

	if (audit_registry == NULL || !OidIsValid(dboid))
		return NULL;
	for (i = 0; i < audit_registry->capacity; i++)
		if (audit_registry->entries[i].state != AW_FREE &&
			audit_registry->entries[i].dboid == dboid)
			return &audit_registry->entries[i];
	return NULL;
}

/*
 * audit_registry_add: a new entry (AW_WANTED) for a database; when the
 * registry is full, an entry without a writer is reused (a dropped
 * database first, then one without the extension).  NULL when none can
 * be.  Exclusive lock held.
 */
AuditWriterEntry *
audit_registry_add(Oid dboid)
{
	static const AuditWriterState evictable[] = {AW_FREE, AW_GONE, AW_NOEXT, AW_NOSLOT};
	int			k;

	for (k = 0; k < lengthof(evictable); k++)
	{
		int			i;

		for (i = 0; i < audit_registry->capacity; i++)
		{
			AuditWriterEntry *e = &audit_registry->entries[i];

			if (e->state != evictable[k] || e->pid != 0 || e->paused_by != 0 ||
				(k > 0 && e->dboid == audit_registry->cluster_db))
				continue;
			memset(e, 0, sizeof(*e));
			e->dboid = dboid;
			e->state = AW_WANTED;
			return e;
		}
	}
	return NULL;
}

/*
 * audit_registry_wake_launcher: set the launcher's latch.
 */
void
audit_registry_wake_launcher(void)
{
	Latch	   *latch = NULL;

	if (audit_registry == NULL)
		return;
	LWLockAcquire(audit_registry->lock, LW_SHARED);
	latch = audit_registry->launcher_latch;
	LWLockRelease(audit_registry->lock);
	if (latch)
		SetLatch(latch);
}

/*
 * audit_registry_wake: an event for target (InvalidOid: cluster-wide) was
 * queued: wake the writer that stores it, or the launcher when there is
 * none yet (it starts one, or sends the event to the server log).
 * Returns whether a writer that stores it is running (and not held by a
 * restore).
 */
bool
audit_registry_wake(Oid target)
{
	AuditWriterEntry *e;
	Latch	   *latch;
	bool		running;

	if (audit_registry == NULL)
		return false;
	LWLockAcquire(audit_registry->lock, LW_SHARED);
	e = audit_registry_find(OidIsValid(target) ? target : audit_registry->cluster_db);
	if (e && AW_ORPHAN(e->state) && e->paused_by == 0)
		e = audit_registry_find(audit_registry->cluster_db);
	running = e && e->state == AW_RUNNING && e->latch && !e->held;
	latch = running ? e->latch : audit_registry->launcher_latch;
	LWLockRelease(audit_registry->lock);
	if (latch)
		SetLatch(latch);
	return running;
}

/*
 * audit_registry_routing: what the writer of dboid stores: its own
 * events, and when it is the writer of audit_log.database (*cluster) the
 * cluster-wide events and those of the orphan databases, whose OIDs are
 * returned sorted (at most max).
 */
int
audit_registry_routing(Oid dboid, bool *cluster, Oid *orphans, int max)
{
	int			n = 0;
	int			i;

	LWLockAcquire(audit_registry->lock, LW_SHARED);
	*cluster = audit_registry->scanned && OidIsValid(dboid) &&
		audit_registry->cluster_db == dboid;
	for (i = 0; *cluster && i < audit_registry->capacity && n < max; i++)
	{
		AuditWriterEntry *e = &audit_registry->entries[i];

		if (AW_ORPHAN(e->state) && e->paused_by == 0 && e->dboid != dboid)
			orphans[n++] = e->dboid;
	}
	LWLockRelease(audit_registry->lock);
	qsort(orphans, n, sizeof(Oid), oid_cmp);	/* audit_queue_take searches them */
	return n;
}

/*
 * audit_registry_cluster_pid: the pid of the running writer of
 * audit_log.database, 0 when there is none.
 */
int
audit_registry_cluster_pid(void)
{
	AuditWriterEntry *e;
	int			pid = 0;

	if (audit_registry == NULL)
		return 0;
	LWLockAcquire(audit_registry->lock, LW_SHARED);
	e = audit_registry_find(audit_registry->cluster_db);
	if (e && e->state == AW_RUNNING)
		pid = e->pid;
	LWLockRelease(audit_registry->lock);
	return pid;
}

static int
entry_cmp(const void *a, const void *b)
{
	return strcmp(NameStr(((const AuditWriterEntry *) a)->dbname),
				  NameStr(((const AuditWriterEntry *) b)->dbname));
}

static void
json_ts(StringInfo json, const char *key, TimestampTz ts)
{
	char		buf[MAXDATELEN + 1];

	appendStringInfo(json, ", \"%s\": ", key);
	if (ts == 0)
		appendStringInfoString(json, "null");
	else
		appendStringInfo(json, "\"%s\"",
						 JsonEncodeDateTime(buf, TimestampTzGetDatum(ts), TIMESTAMPTZOID, NULL));
}

/*
 * audit_registry_status: the writers as a JSON array, by database name:
 * every database that has a writer, is waiting for one, or has none for
 * want of a worker slot.
 */
void
audit_registry_status(StringInfo json)
{
	AuditWriterEntry *copy;
	Oid			cluster_db;
	Oid		   *targets;
	int64	   *counts;
	int			ntargets;
	int			n = 0;
	int			i;

	appendStringInfoChar(json, '[');
	if (audit_registry == NULL)
	{
		appendStringInfoChar(json, ']');
		return;
	}
	copy = palloc(sizeof(AuditWriterEntry) * audit_registry->capacity);
	LWLockAcquire(audit_registry->lock, LW_SHARED);
	cluster_db = audit_registry->cluster_db;
	for (i = 0; i < audit_registry->capacity; i++)
	{
		AuditWriterEntry *e = &audit_registry->entries[i];

		if (e->state == AW_RUNNING || e->state == AW_STARTING || e->state == AW_WANTED ||
			e->state == AW_NOSLOT || (e->paused_by != 0 && e->state != AW_FREE))
			copy[n++] = *e;
	}
	LWLockRelease(audit_registry->lock);
	qsort(copy, n, sizeof(AuditWriterEntry), entry_cmp);

	targets = palloc(sizeof(Oid) * (audit_registry->capacity + 1));
	counts = palloc(sizeof(int64) * (audit_registry->capacity + 1));
	ntargets = audit_queue_targets(targets, counts, audit_registry->capacity + 1);
	for (i = 0; i < n; i++)
	{
		AuditWriterEntry *e = &copy[i];
		int64		queued = 0;
		int			k;
		const char *state = e->paused_by != 0 ? "paused" :
			e->state == AW_RUNNING && e->held ? "held by a restore" :
			e->state == AW_RUNNING ? "running" :
			e->state == AW_STARTING ? "starting" :
			e->state == AW_NOSLOT ? "no worker slot" : "waiting";

		for (k = 0; k < ntargets; k++)
			if (targets[k] == e->dboid)
				queued = counts[k];
		if (i > 0)
			appendStringInfoString(json, ", ");
		appendStringInfoString(json, "{\"database\": ");
		escape_json(json, NameStr(e->dbname));
		if (e->pid != 0 && e->state == AW_RUNNING)
			appendStringInfo(json, ", \"pid\": %d", (int) e->pid);
		else
			appendStringInfoString(json, ", \"pid\": null");
		appendStringInfo(json, ", \"state\": \"%s\"", state);
		appendStringInfo(json, ", \"audit_database\": %s",
						 e->dboid == cluster_db ? "true" : "false");
		json_ts(json, "started_at", e->state == AW_RUNNING ? e->started_at : 0);
		json_ts(json, "last_write", e->last_write);
		appendStringInfo(json, ", \"events_written\": " INT64_FORMAT, e->written);
		appendStringInfo(json, ", \"queued\": " INT64_FORMAT, queued);
		appendStringInfoChar(json, '}');
	}
	appendStringInfoChar(json, ']');
}

/* ---------- what backends tell the launcher ---------- */

/*
 * registry_xact_callback: at the end of the transaction, resume the
 * paused databases and tell the launcher and writers what changed.
 */
static void
registry_xact_callback(XactEvent event, void *arg)
{
	ListCell   *lc;
	Latch	   *own = NULL;
	bool		committed = (event == XACT_EVENT_COMMIT || event == XACT_EVENT_PREPARE);

	if (event != XACT_EVENT_COMMIT && event != XACT_EVENT_PREPARE &&
		event != XACT_EVENT_ABORT)
		return;
	if (audit_registry == NULL ||
		(paused_dbs == NIL && !note_ext_created && !note_ext_dropped && !note_rescan))
		return;
	LWLockAcquire(audit_registry->lock, LW_EXCLUSIVE);
	foreach(lc, paused_dbs)
	{
		AuditWriterEntry *e = audit_registry_find(lfirst_oid(lc));

		if (e && e->paused_by == MyProcPid)
		{
			e->paused_by = 0;
			e->stop = false;
		}
	}
	if (committed && note_ext_created)
	{
		AuditWriterEntry *e = audit_registry_find(MyDatabaseId);

		if (e)
			e->ext_gen++;		/* the launcher checks again */
	}
	if (committed && note_ext_dropped)
	{
		AuditWriterEntry *e = audit_registry_find(MyDatabaseId);

		if (e && e->state == AW_RUNNING)
			own = e->latch;		/* it finds the extension gone */
	}
	if (paused_dbs != NIL || (committed && (note_ext_created || note_rescan)))
		audit_registry->rescan = true;
	LWLockRelease(audit_registry->lock);
	list_free(paused_dbs);
	paused_dbs = NIL;
	note_ext_created = note_ext_dropped = note_rescan = false;
	if (own)
		SetLatch(own);
	audit_registry_wake_launcher();
}

/*
 * may_pause: could the current user run the statement that needs the
 * writer of dboid gone?  DROP/ALTER DATABASE need its owner; CREATE
 * DATABASE ... TEMPLATE (as_template) CREATEDB and a template or its owner.
 * Anyone else's attempt fails anyway: it must not stop the writer first.
 */
static bool
may_pause(Oid dboid, bool as_template)
{
	HeapTuple	tup;
	bool		ok;

	if (superuser() || audit_database_owner(dboid))
		return true;
	if (!as_template)
		return false;
	tup = SearchSysCache1(AUTHOID, ObjectIdGetDatum(GetUserId()));
	ok = HeapTupleIsValid(tup) && ((Form_pg_authid) GETSTRUCT(tup))->rolcreatedb;
	if (HeapTupleIsValid(tup))
		ReleaseSysCache(tup);
	if (!ok)
		return false;
	tup = SearchSysCache1(DATABASEOID, ObjectIdGetDatum(dboid));
	ok = HeapTupleIsValid(tup) && ((Form_pg_database) GETSTRUCT(tup))->datistemplate;
	if (HeapTupleIsValid(tup))
		ReleaseSysCache(tup);
	return ok;
}

/*
 * pause_writer: stop the writer of a database and keep the launcher from
 * starting one until this transaction ends (only for a user who may run
 * the statement: may_pause()).
 */
static void
pause_writer(const char *dbname, bool as_template)
{
	Oid			dboid = get_database_oid(dbname, true);
	AuditWriterEntry *e;
	Latch	   *latch = NULL;
	TimestampTz start = GetCurrentTimestamp();
	bool		terminated = false;
	pid_t		last_pid = 0;

	if (!OidIsValid(dboid) || list_member_oid(paused_dbs, dboid) ||
		!may_pause(dboid, as_template))
		return;
	LWLockAcquire(audit_registry->lock, LW_EXCLUSIVE);
	e = audit_registry_find(dboid);
	if (e == NULL)
		e = audit_registry_add(dboid);	/* the launcher may be about to start one */
	if (e)
	{
		e->paused_by = MyProcPid;
		e->stop = true;
		latch = e->latch;
	}
	LWLockRelease(audit_registry->lock);
	if (e == NULL)
		return;
	{
		MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);

		paused_dbs = lappend_oid(paused_dbs, dboid);
		MemoryContextSwitchTo(old);
	}
	if (latch)
		SetLatch(latch);
	audit_registry_wake_launcher();

	for (;;)
	{
		pid_t		pid;
		bool		busy;
		long		waited;

		LWLockAcquire(audit_registry->lock, LW_SHARED);
		busy = e->dboid == dboid && (e->pid != 0 || e->state == AW_STARTING);
		pid = e->pid;
		LWLockRelease(audit_registry->lock);
		if (pid != 0)
			last_pid = pid;
		/* until it has left the process array, which DROP DATABASE checks */
		if (!busy && (last_pid == 0 || BackendPidGetProc(last_pid) == NULL))
			break;
		waited = TimestampDifferenceMilliseconds(start, GetCurrentTimestamp());
		if (!terminated && pid != 0 && waited >= PAUSE_TERMINATE_MS)
		{
			/* its taken events go back to the queue as it exits */
			(void) kill(pid, SIGTERM);
			terminated = true;
		}
		if (waited >= PAUSE_GIVE_UP_MS)
		{
			ereport(WARNING,
					(errmsg("the audit_log writer of database \"%s\" did not stop", dbname)));
			break;
		}
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 10, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
	}
}

/*
 * option_value: the string value of a statement option, or NULL.
 */
static const char *
option_value(List *options, const char *name)
{
	ListCell   *lc;

	foreach(lc, options)
	{
		DefElem    *d = lfirst_node(DefElem, lc);

		if (strcmp(d->defname, name) == 0 && d->arg != NULL)
			return defGetString(d);
	}
	return NULL;
}

/*
 * audit_registry_utility: called by the ProcessUtility hook before a
 * statement runs (done = false: pause the writer a database statement
 * needs gone) and after it succeeded (done = true: note what the launcher
 * must hear at commit).
 */
void
audit_registry_utility(Node *parsetree, bool done)
{
	const char *db = NULL;

	if (audit_registry == NULL || audit_in_worker)
		return;
	if (!xact_callback_registered)
	{
		RegisterXactCallback(registry_xact_callback, NULL);
		xact_callback_registered = true;
	}
	switch (nodeTag(parsetree))
	{
		case T_DropdbStmt:
			db = ((DropdbStmt *) parsetree)->dbname;
			note_rescan |= done;
			break;
		case T_RenameStmt:
			if (((RenameStmt *) parsetree)->renameType == OBJECT_DATABASE)
			{
				db = ((RenameStmt *) parsetree)->subname;
				note_rescan |= done;
			}
			break;
		case T_AlterDatabaseStmt:
			if (option_value(((AlterDatabaseStmt *) parsetree)->options, "tablespace"))
				db = ((AlterDatabaseStmt *) parsetree)->dbname;
			note_rescan |= done;	/* ALLOW_CONNECTIONS, IS_TEMPLATE */
			break;
		case T_CreatedbStmt:
			db = option_value(((CreatedbStmt *) parsetree)->options, "template");
			note_rescan |= done;
			break;
		case T_CreateExtensionStmt:
			if (strcmp(((CreateExtensionStmt *) parsetree)->extname, "audit_log") == 0)
				note_ext_created |= done;
			break;
		case T_TransactionStmt:
			/* it may create the extension: check again if it was absent */
			if (((TransactionStmt *) parsetree)->kind == TRANS_STMT_COMMIT_PREPARED)
				note_ext_created |= done;
			break;
		case T_DropStmt:
			if (((DropStmt *) parsetree)->removeType == OBJECT_EXTENSION ||
				((DropStmt *) parsetree)->removeType == OBJECT_SCHEMA)
				note_ext_dropped |= done;
			break;
		default:
			break;
	}
	if (!done && db != NULL)
		pause_writer(db, IsA(parsetree, CreatedbStmt));
}
