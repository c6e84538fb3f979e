/*-------------------------------------------------------------------------
 *
 * capture_utility.c
 *		The ProcessUtility hook (preload only): roles, memberships, grants,
 *		configuration, databases, extensions, schema changes
 *		(ddl.<command>), evasion and tamper attempts.  What a statement
 *		records is decided in utility_classify.c, whether it is refused as
 *		tampering in guard.c; this file runs the statement and stores or
 *		queues its events.
 *
 * Every statement, top-level or nested (DO blocks, functions, EXECUTE), is
 * classified before it runs: the events it would produce are built with
 * the session's context at that moment.  Subcommands (the elements of
 * CREATE SCHEMA, the sequences and indexes of CREATE/ALTER TABLE) are not:
 * CREATE SCHEMA classifies its elements with itself (utility_classify.c),
 * the others are parts of their statement's event.  Then it runs:
 *  - success: events of this database are written by writer.c in the
 *    current transaction (they commit or roll back with it).  Cluster-wide
 *    events (roles, memberships, databases and tablespaces, ALTER SYSTEM,
 *    per-role and per-database settings, database/parameter grants, SET
 *    SESSION AUTHORIZATION) issued in a database other than
 *    audit_log.database are kept, serialized, in
 *    TopTransactionContext and queued at commit; if the transaction (or
 *    the subtransaction) aborts they are queued as failures.  Both forms
 *    are built when the event is kept (the callbacks past the commit and
 *    during the abort only copy them into the queue).  Cluster-wide
 *    events written in the audit database are also queued as failures if
 *    their transaction aborts.  The events of a statement that took the
 *    extension away (DROP EXTENSION, DROP SCHEMA ... CASCADE) are kept the
 *    same way, for this database's writer (a rolled back drop is a
 *    failure in the trail still there).
 *  - error: the events are queued at once with status failure and the
 *    error in details (the writer cannot use an aborted transaction); only
 *    the innermost audited statement records a given error.  A FATAL (the
 *    backend terminated while the statement waits) skips both: the abort
 *    of the exiting backend queues the innermost running statement's
 *    events as failures with the FATAL's message.
 * The extension's own operations (audit_internal_active()), the worker,
 * and the scripts of CREATE/ALTER EXTENSION are not captured
 * (audit_capture_suspended(), guard.c), nor are the statements of a session
 * restoring a dump (restore.c).
 *
 * Passwords: a statement whose text may hold a password (redact.c) is
 * stored with every string literal replaced; role options and
 * user mapping options never carry their values into details.
 *
 * Writers: before DROP DATABASE, ALTER DATABASE RENAME/SET TABLESPACE and
 * CREATE DATABASE ... TEMPLATE, the database's writer is stopped, and the
 * launcher hears of created databases and extensions (registry.c).
 *
 * Locking: none of our own; name lookups use the syscache, with NoLock.
 *
 *-------------------------------------------------------------------------
 */
#include "guard.h"
#include "utility_classify.h"
#include "workers.h"
#include "compat.h"

#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "commands/event_trigger.h"
#include "common/hashfn.h"
#include "commands/extension.h"
#include "commands/trigger.h"
#include "executor/executor.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "nodes/makefuncs.h"
#include "parser/parsetree.h"
#include "storage/ipc.h"
#include "tcop/utility.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/json.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "guard.h"
#include "object_names.h"
#include "redact.h"
#include "util.h"

/*
 * A cluster-wide event waiting for the end of its (sub)transaction, in
 * the forms the end may queue, each serialized (queue.c) with its
 * server-log line (audit_event_line_body()), all built beforehand: the
 * transaction callbacks that queue them run after the commit or during an
 * abort, where an error (out of memory) would be a PANIC.
 */
typedef struct PendingEvent
{
	int			level;			/* transaction nesting level */
	bool		written;		/* already stored in this transaction */
	Oid			target;			/* its writer's database (InvalidOid: cluster-wide) */
	char	   *slot;			/* at commit (unless written) */
	char	   *line;
	char	   *fail_slot;		/* at abort: a failure */
	char	   *fail_line;
} PendingEvent;

static ProcessUtility_hook_type prev_utility_hook = NULL;
static List *pending = NIL;		/* of PendingEvent, in TopTransactionContext */
/*
 * The error the innermost failed statement recorded, by a hash of its
 * code, text and origin: an outer statement that fails with the same error
 * (propagated or re-raised) does not record it again, while one that fails
 * with another (after a handler caught the first) does.
 */
static bool error_recorded = false;
static uint32 error_recorded_hash = 0;

/*
 * The events of the audited statements running now, outermost first (in
 * their statement contexts, children of TopMemoryContext).  A statement
 * ended by a FATAL (pg_terminate_backend while it waits for a lock, say)
 * reaches neither its success nor its PG_CATCH: the abort of the exiting
 * backend queues the innermost one's events as failures.
 */
#define MAX_INFLIGHT 32
static List *inflight[MAX_INFLIGHT];
static int	ninflight = 0;

static void record_fatal(void);

/*
 * with_detail: ev with one more key of details: {key: value} (value: a
 * JSON text).
 */
static AuditEvent
with_detail(const AuditEvent *ev, const char *json)
{
	AuditEvent	copy = *ev;

	copy.details = audit_jsonb_merge(copy.details, audit_text_to_jsonb(json));
	return copy;
}

/*
 * pend: keep an event for the writer of target (InvalidOid: a cluster-wide
 * event) until its transaction ends, ready to be queued whichever way it
 * ends.
 */
static void
pend(const AuditEvent *ev, bool written, Oid target)
{
	MemoryContext old = MemoryContextSwitchTo(TopTransactionContext);
	PendingEvent *p = palloc0(sizeof(PendingEvent));
	AuditEvent	done = *ev;
	AuditEvent	failed;

	audit_event_complete(&done, false);	/* the time, pid and txid of now */
	p->level = GetCurrentTransactionNestLevel();
	p->written = written;
	p->target = target;
	if (!written)
		audit_event_pack(&done, &p->slot, &p->line);
	failed = with_detail(&done, "{\"error\": \"transaction rolled back\"}");
	failed.status = "failure";
	audit_event_pack(&failed, &p->fail_slot, &p->fail_line);
	pending = lappend(pending, p);
	MemoryContextSwitchTo(old);
}

/*
 * audit_pend_written: an event just written in the current transaction
 * (an export's, whose rows the caller has already had): if the
 * transaction or a subtransaction around it rolls back, it is queued as a
 * failure ("transaction rolled back") for this database's writer, so that
 * a rolled back export still leaves its trace.  Without the preload there
 * are no transaction callbacks (and no queue): nothing.
 */
void
audit_pend_written(const AuditEvent *ev)
{
	if (audit_preloaded)
		pend(ev, true, MyDatabaseId);
}

/*
 * audit_pend_unwritten: an event the current transaction cannot write (it
 * is read-only): queued for this database's writer when the transaction
 * ends (a failure if it rolls back).  Returns false without the preload
 * (no queue).
 */
bool
audit_pend_unwritten(const AuditEvent *ev)
{
	if (!audit_preloaded)
		return false;
	pend(ev, false, MyDatabaseId);
	return true;
}

/*
 * mark_prepared: before PREPARE TRANSACTION, the events it queues are
 * marked "prepared": true (the outcome, COMMIT or ROLLBACK PREPARED from
 * any session, is not known then).
 */
static void
mark_prepared(void)
{
	MemoryContext old = MemoryContextSwitchTo(TopTransactionContext);
	ListCell   *lc;

	foreach(lc, pending)
	{
		PendingEvent *p = lfirst(lc);
		AuditEvent	ev;

		if (p->written)
			continue;
		audit_event_deserialize(p->slot, &ev);
		ev = with_detail(&ev, "{\"prepared\": true}");
		audit_event_pack(&ev, &p->slot, &p->line);
	}
	MemoryContextSwitchTo(old);
}

/*
 * utility_xact_callback: before PREPARE TRANSACTION, mark the pending
 * events prepared; at commit (or PREPARE), queue those not yet stored; at
 * abort, queue them all as failures.  Only the last two run past the
 * point of no return: they copy what pend() built.
 */
static void
utility_xact_callback(XactEvent event, void *arg)
{
	ListCell   *lc;

	if (event == XACT_EVENT_ABORT)
		record_fatal();
	if (pending == NIL)
		return;
	if (event == XACT_EVENT_PRE_PREPARE)
		mark_prepared();
	else if (event == XACT_EVENT_COMMIT || event == XACT_EVENT_PREPARE)
	{
		foreach(lc, pending)
		{
			PendingEvent *p = lfirst(lc);

			if (!p->written)
				audit_queue_slot_for(p->slot, p->line, p->target);
		}
		pending = NIL;
	}
	else if (event == XACT_EVENT_ABORT)
	{
		foreach(lc, pending)
		{
			PendingEvent *p = lfirst(lc);

			audit_queue_slot_for(p->fail_slot, p->fail_line, p->target);
		}
		pending = NIL;
	}
}

/*
 * utility_subxact_callback: a rolled back subtransaction's events are
 * failures; a committed one's belong to its parent.
 */
static void
utility_subxact_callback(SubXactEvent event, SubTransactionId mySubid,
						 SubTransactionId parentSubid, void *arg)
{
	int			level = GetCurrentTransactionNestLevel();
	ListCell   *lc;

	if (pending == NIL)
		return;
	if (event == SUBXACT_EVENT_ABORT_SUB)
	{
		foreach(lc, pending)
		{
			PendingEvent *p = lfirst(lc);

			if (p->level >= level)
			{
				audit_queue_slot_for(p->fail_slot, p->fail_line, p->target);
				pending = foreach_delete_current(pending, lc);
			}
		}
	}
	else if (event == SUBXACT_EVENT_COMMIT_SUB)
	{
		foreach(lc, pending)
		{
			PendingEvent *p = lfirst(lc);

			if (p->level >= level)
				p->level = level - 1;
		}
	}
}

/*
 * emit_success: the statement ran; store or queue its events (was_here:
 * the extension existed before it ran).
 */
static void
emit_success(List *events, bool was_here)
{
	ListCell   *lc;
	AuditEvent *batch = palloc(sizeof(AuditEvent) * list_length(events));
	List	   *batch_cluster = NIL;
	int			n = 0;
	bool		here = OidIsValid(audit_events_relid(true));
	bool		snap = false;
	TimestampTz done = GetCurrentTimestamp();

	foreach(lc, events)
	{
		UEvent	   *u = lfirst(lc);
		bool		audit_db = u->ev.database && audit_database &&
			strcmp(u->ev.database, audit_database) == 0;

		/*
		 * Stamped when the statement is done, not when it was classified: a
		 * statement that waited for a lock (without an xid, unseen by
		 * seal()) must not land in a window sealed meanwhile.
		 */
		u->ev.occurred_at = done;

		if (u->rv)
		{
			char	   *name = audit_rv_name(u->rv);

			if (name)
				u->ev.object_name = name;
		}
		u->ev.details = audit_text_to_jsonb(u->details);
		if (u->cluster && !(audit_db && here))
			pend(&u->ev, false, InvalidOid);
		else if (here)
		{
			batch[n++] = u->ev;
			if (u->cluster)
				batch_cluster = lappend_int(batch_cluster, n - 1);
		}
		else if (was_here)
		{
			/*
			 * The statement took the extension away (DROP EXTENSION, DROP
			 * SCHEMA ... CASCADE, DROP OWNED): its events go, through the
			 * queue, to audit_log.database, when its transaction ends (a
			 * rolled back drop is a failure).
			 */
			pend(&u->ev, false, MyDatabaseId);
		}
	}
	if (n == 0)
		return;
	if (!ActiveSnapshotSet())
	{
		PushActiveSnapshot(GetTransactionSnapshot());
		snap = true;
	}
	audit_write_events(batch, n);
	if (snap)
		PopActiveSnapshot();
	foreach(lc, batch_cluster)
		pend(&batch[lfirst_int(lc)], true, InvalidOid);
}

/*
 * queue_failed: queue a statement's events as failures with the error
 * (message, sqlstate).  Called while the error unwinds, before the abort:
 * no catalog lookup here (a lock or buffer the error left held could be
 * the one it needs).  A relation's name stays as the statement's
 * classification found it before it ran: qualified when it existed, as
 * written when the statement was to create it.
 */
static void
queue_failed(List *events, const char *message, const char *sqlstate)
{
	ListCell   *lc;

	foreach(lc, events)
	{
		UEvent	   *u = lfirst(lc);
		Json		j;

		j_begin(&j);
		j_str(&j, "error", message);
		j_str(&j, "sqlstate", sqlstate);
		u->ev.status = "failure";
		u->ev.details = audit_jsonb_merge(audit_text_to_jsonb(u->details),
										  audit_text_to_jsonb(j_end(&j)));
		audit_queue_event(&u->ev, u->cluster);
	}
}

/*
 * record_failure: the statement failed: queue its events as failures
 * with the error, unless a nested statement recorded this same error
 * already.
 */
static void
record_failure(List *events, ErrorData *edata)
{
	char	   *id = psprintf("%d|%s|%s|%d", edata->sqlerrcode, edata->message ? edata->message : "",
							  edata->filename ? edata->filename : "", edata->lineno);
	uint32		h = hash_bytes((const unsigned char *) id, strlen(id));

	if (error_recorded && h == error_recorded_hash)
		return;
	error_recorded = true;
	error_recorded_hash = h;
	queue_failed(events, edata->message, unpack_sql_state(edata->sqlerrcode));
}

/*
 * record_fatal: the backend is exiting (a FATAL) in the middle of an
 * audited statement: queue the innermost one's events as failures, with
 * the FATAL's message.
 */
static void
record_fatal(void)
{
	int			sqlerrcode = 0;
	const char *message;
	MemoryContext old;

	/* (deeper than MAX_INFLIGHT: the innermost one is not known) */
	if (ninflight == 0 || ninflight > MAX_INFLIGHT || !proc_exit_inprogress)
		return;
	message = audit_last_fatal(&sqlerrcode);
	old = MemoryContextSwitchTo(TopMemoryContext);
	queue_failed(inflight[ninflight - 1], message ? message : "the session ended during the statement",
				 sqlerrcode ? unpack_sql_state(sqlerrcode) : NULL);
	MemoryContextSwitchTo(old);
	ninflight = 0;
}

/*
 * audit_utility: the ProcessUtility hook.
 */
static void
audit_utility(PlannedStmt *pstmt, const char *queryString, bool readOnlyTree,
			  ProcessUtilityContext context, ParamListInfo params,
			  QueryEnvironment *queryEnv, DestReceiver *dest, QueryCompletion *qc)
{
	Node	   *parsetree = pstmt->utilityStmt;
	List	   *volatile events = NIL;
	MemoryContext volatile cxt = NULL;
	MemoryContext oldcxt = CurrentMemoryContext;
	volatile bool executed = false;
	volatile bool was_here = false; /* the extension existed before */
	int			depth = ninflight;

	error_recorded = false;
	audit_registry_utility(parsetree, false);	/* DROP DATABASE: stop its writer */
	if (!audit_capture_suspended() && context != PROCESS_UTILITY_SUBCOMMAND &&
		!IsA(parsetree, TransactionStmt))
	{
		Classify	c;
		bool		restoring = audit_restoring();

		cxt = AllocSetContextCreate(TopMemoryContext, "audit_log statement",
									ALLOCSET_SMALL_SIZES);
		MemoryContextSwitchTo(cxt);
		c.events = NIL;
		c.command = GetCommandTagName(CreateCommandTag(parsetree));
		c.statement = NULL;
		PG_TRY();
		{
			audit_check_tamper(parsetree, c.command, pstmt, queryString);
			if (!restoring &&
				(GetCommandLogLevel(parsetree) == LOGSTMT_DDL || IsA(parsetree, VariableSetStmt)))
			{
				c.statement = audit_statement_text(pstmt, queryString);
				events = audit_classify(parsetree, &c);
			}
		}
		PG_CATCH();
		{
			MemoryContextSwitchTo(oldcxt);
			MemoryContextDelete(cxt);
			PG_RE_THROW();
		}
		PG_END_TRY();
		MemoryContextSwitchTo(oldcxt);
		if (events == NIL)
		{
			MemoryContextDelete(cxt);
			cxt = NULL;
		}
		else
		{
			was_here = OidIsValid(audit_events_relid(true));
			if (depth < MAX_INFLIGHT)
				inflight[depth] = events;
			ninflight = depth + 1;
		}
	}

	PG_TRY();
	{
		if (prev_utility_hook)
			prev_utility_hook(pstmt, queryString, readOnlyTree, context, params,
							  queryEnv, dest, qc);
		else
			standard_ProcessUtility(pstmt, queryString, readOnlyTree, context, params,
									queryEnv, dest, qc);
		executed = true;
		ninflight = depth;
		audit_registry_utility(parsetree, true);
		/* CREATE EXTENSION may have begun a restore: it is not captured */
		if (events != NIL && !audit_restoring())
		{
			MemoryContextSwitchTo(cxt);
			emit_success(events, was_here);
			MemoryContextSwitchTo(oldcxt);
		}
	}
	PG_CATCH();
	{
		ninflight = depth;
		if (events != NIL && !executed)
		{
			ErrorData  *edata;

			MemoryContextSwitchTo(cxt);
			edata = CopyErrorData();
			record_failure(events, edata);
		}
		MemoryContextSwitchTo(oldcxt);
		if (cxt)
			MemoryContextDelete(cxt);
		PG_RE_THROW();
	}
	PG_END_TRY();
	if (cxt)
		MemoryContextDelete(cxt);
}

/*
 * audit_utility_init: install the hooks (called from _PG_init when
 * preloaded).
 */
void
audit_utility_init(void)
{
	prev_utility_hook = ProcessUtility_hook;
	ProcessUtility_hook = audit_utility;
	RegisterXactCallback(utility_xact_callback, NULL);
	RegisterSubXactCallback(utility_subxact_callback, NULL);
}
