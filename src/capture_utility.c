/*-------------------------------------------------------------------------
 *
 * capture_utility.c
 *		The ProcessUtility and ExecutorStart hooks (preload only): roles,
 *		memberships, grants, configuration, databases, extensions, schema
 *		changes (ddl.<command>), evasion and tamper attempts.  What a
 *		statement records is decided in utility_classify.c; this file runs
 *		the statement and stores or queues its events.
 *
 * Every statement, top-level or nested (DO blocks, functions, EXECUTE), is
 * classified before it runs: the events it would produce are built with
 * the session's context at that moment.  Then it runs:
 *  - success: events of this database are written by writer.c in the
 *    current transaction (they commit or roll back with it).  Cluster-wide
 *    events (roles, memberships, databases, ALTER SYSTEM, per-role and
 *    per-database settings, database/parameter grants) issued in a
 *    database other than audit_log.database are kept, serialized, in
 *    TopTransactionContext and queued at commit; if the transaction (or
 *    the subtransaction) aborts they are queued as failures.  Cluster-wide
 *    events written in the audit database are also queued as failures if
 *    their transaction aborts.
 *  - error: the events are queued at once with status failure and the
 *    error in details (the writer cannot use an aborted transaction); only
 *    the innermost audited statement records a given error.
 * The extension's own operations (audit_internal_active()), the worker,
 * and the scripts of CREATE/ALTER EXTENSION are not captured.
 *
 * Tamper guard: writing to, truncating, altering, dropping, granting on,
 * adding a trigger or rule to audit_log.events or its partitions fails
 * with SQLSTATE 42501 and is queued as audit.tamper_attempt (failure),
 * unless audit_internal_active().
 *
 * Passwords: a statement whose text mentions "password" (any case) is
 * stored with every string literal replaced; role options and user
 * mapping options never carry their values into details.
 *
 * Locking: none of our own; name lookups use the syscache, with NoLock.
 *
 *-------------------------------------------------------------------------
 */
#include "capture_utility.h"
#include "compat.h"

#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "commands/event_trigger.h"
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
#include "tcop/utility.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/json.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

/* A cluster-wide event waiting for the end of its (sub)transaction. */
typedef struct PendingEvent
{
	int			level;			/* transaction nesting level */
	bool		written;		/* already stored in this transaction */
	char	   *buf;			/* serialized (queue.c) */
} PendingEvent;

static ProcessUtility_hook_type prev_utility_hook = NULL;
static ExecutorStart_hook_type prev_executor_start = NULL;
static List *pending = NIL;		/* of PendingEvent, in TopTransactionContext */
static bool error_recorded = false;

/* ---------- tamper guard ---------- */

/*
 * tamper: record an attempt on the audit tables and refuse it.
 */
static void
tamper(const char *what, Oid relid, const char *command, const char *statement)
{
	AuditEvent	ev;
	Json		j;
	char	   *rel = psprintf("%s.%s", AUDIT_SCHEMA, get_rel_name(relid));
	char	   *msg = psprintf("%s on audit table %s is not allowed", what, rel);

	audit_event_init(&ev, "audit", "audit.tamper_attempt");
	ev.occurred_at = GetCurrentTimestamp();
	ev.status = "failure";
	ev.object_type = "table";
	ev.object_name = rel;
	ev.command = command;
	ev.statement = statement;
	j_begin(&j);
	j_str(&j, "attempt", what);
	j_str(&j, "error", msg);
	ev.details = DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum(j_end(&j))));
	audit_queue_event(&ev);
	ereport(ERROR,
			(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
			 errmsg("%s on audit table %s is not allowed", what, rel),
			 errdetail("Audit events are written and removed only by the audit_log extension; the attempt has been recorded."),
			 errhint("Use audit_log.maintain() and retention policies to remove old events.")));
}

static bool
capture_off(void)
{
	return audit_in_worker || creating_extension || audit_internal_active();
}

/*
 * check_tamper: refuse a utility statement aimed at the audit tables.
 */
static void
check_tamper(Node *n, const char *command, PlannedStmt *pstmt, const char *query)
{
	RangeVar   *rv = NULL;
	const char *what = NULL;
	ListCell   *lc;

	switch (nodeTag(n))
	{
		case T_AlterTableStmt:
			rv = ((AlterTableStmt *) n)->relation;
			what = "ALTER TABLE";
			break;
		case T_CreateTrigStmt:
			rv = ((CreateTrigStmt *) n)->relation;
			what = "CREATE TRIGGER";
			break;
		case T_RuleStmt:
			rv = ((RuleStmt *) n)->relation;
			what = "CREATE RULE";
			break;
		case T_RenameStmt:
			rv = ((RenameStmt *) n)->relation;
			what = "ALTER TABLE";
			break;
		case T_CreateStmt:
			/*
			 * a partition added to the events table outside the audit schema
			 * (partitions of audit_log's own naming live in it)
			 */
			if (((CreateStmt *) n)->partbound != NULL &&
				list_length(((CreateStmt *) n)->inhRelations) == 1 &&
				(((CreateStmt *) n)->relation->schemaname == NULL ||
				 strcmp(((CreateStmt *) n)->relation->schemaname, AUDIT_SCHEMA) != 0))
			{
				rv = linitial(((CreateStmt *) n)->inhRelations);
				what = "CREATE TABLE PARTITION OF";
			}
			break;
		case T_CopyStmt:
			if (((CopyStmt *) n)->is_from)
			{
				rv = ((CopyStmt *) n)->relation;
				what = "COPY FROM";
			}
			break;
		case T_TruncateStmt:
			foreach(lc, ((TruncateStmt *) n)->relations)
				if (audit_is_events_rv(lfirst(lc)))
					tamper("TRUNCATE", audit_rv_relid(lfirst(lc)), command,
						   audit_statement_text(pstmt, query));
			return;
		case T_DropStmt:
			{
				DropStmt   *d = (DropStmt *) n;

				if (d->removeType != OBJECT_TABLE && d->removeType != OBJECT_TRIGGER)
					return;
				foreach(lc, d->objects)
				{
					List	   *names = lfirst(lc);

					if (d->removeType == OBJECT_TRIGGER)
						names = list_truncate(list_copy(names), list_length(names) - 1);
					rv = makeRangeVarFromNameList(names);
					if (audit_is_events_rv(rv))
						tamper(d->removeType == OBJECT_TABLE ? "DROP TABLE" : "DROP TRIGGER",
							   audit_rv_relid(rv), command, audit_statement_text(pstmt, query));
				}
				return;
			}
		case T_GrantStmt:
			{
				GrantStmt  *g = (GrantStmt *) n;

				if (!g->is_grant || g->objtype != OBJECT_TABLE || g->targtype != ACL_TARGET_OBJECT)
					return;
				foreach(lc, g->objects)
					if (audit_is_events_rv(lfirst(lc)))
						tamper("GRANT", audit_rv_relid(lfirst(lc)), command,
							   audit_statement_text(pstmt, query));
				return;
			}
		default:
			return;
	}
	if (rv && audit_is_events_rv(rv))
		tamper(what, audit_rv_relid(rv), command, audit_statement_text(pstmt, query));
}

/*
 * audit_executor_start: refuse INSERT/UPDATE/DELETE/MERGE on the audit
 * tables (whoever asks, superusers included).
 */
static void
audit_executor_start(QueryDesc *queryDesc, int eflags)
{
	PlannedStmt *ps = queryDesc->plannedstmt;

	if (ps->resultRelations != NIL && !capture_off() &&
		!(eflags & EXEC_FLAG_EXPLAIN_ONLY))
	{
		ListCell   *lc;

		foreach(lc, ps->rtable)
		{
			RangeTblEntry *rte = lfirst_node(RangeTblEntry, lc);
			const char *op = ps->commandType == CMD_INSERT ? "INSERT" :
				ps->commandType == CMD_UPDATE ? "UPDATE" :
				ps->commandType == CMD_DELETE ? "DELETE" : "MERGE";

			if (rte->rtekind == RTE_RELATION &&
				(audit_rte_required_perms(ps, rte) &
				 (ACL_INSERT | ACL_UPDATE | ACL_DELETE)) != 0 &&
				audit_is_events_relid(rte->relid))
				tamper(op, rte->relid, op, audit_redact_statement(queryDesc->sourceText));
		}
	}
	if (prev_executor_start)
		prev_executor_start(queryDesc, eflags);
	else
		standard_ExecutorStart(queryDesc, eflags);
}

/* ---------- where events go ---------- */

Jsonb *
audit_text_to_jsonb(const char *s)
{
	return s ? DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum(s))) : NULL;
}

/*
 * pend: keep a cluster-wide event until its transaction ends.
 */
static void
pend(AuditEvent *ev, bool written)
{
	MemoryContext old = MemoryContextSwitchTo(TopTransactionContext);
	PendingEvent *p = palloc(sizeof(PendingEvent));

	p->level = GetCurrentTransactionNestLevel();
	p->written = written;
	p->buf = palloc(AUDIT_QUEUE_SLOT);
	audit_event_serialize(ev, p->buf);
	pending = lappend(pending, p);
	MemoryContextSwitchTo(old);
}

/*
 * queue_as_failure: queue a pending event whose transaction rolled back.
 */
static void
queue_as_failure(PendingEvent *p)
{
	AuditEvent	ev;
	Json		j;
	StringInfoData d;

	audit_event_deserialize(p->buf, &ev);
	ev.status = "failure";
	initStringInfo(&d);
	if (ev.details)
	{
		char	   *old = JsonbToCString(NULL, &ev.details->root, VARSIZE(ev.details));

		appendStringInfoString(&d, old);
		if (d.len > 2)
		{
			d.data[--d.len] = '\0';
			appendStringInfoString(&d, ", \"error\": \"transaction rolled back\"}");
		}
		else
		{
			resetStringInfo(&d);
			appendStringInfoString(&d, "{\"error\": \"transaction rolled back\"}");
		}
	}
	else
	{
		j_begin(&j);
		j_str(&j, "error", "transaction rolled back");
		appendStringInfoString(&d, j_end(&j));
	}
	ev.details = audit_text_to_jsonb(d.data);
	audit_queue_event(&ev);
}

/*
 * utility_xact_callback: at commit, queue the pending cluster-wide events
 * not yet stored; at abort, queue them all as failures.
 */
static void
utility_xact_callback(XactEvent event, void *arg)
{
	ListCell   *lc;

	if (pending == NIL)
		return;
	if (event == XACT_EVENT_COMMIT || event == XACT_EVENT_PREPARE)
	{
		foreach(lc, pending)
		{
			PendingEvent *p = lfirst(lc);
			AuditEvent	ev;

			if (p->written)
				continue;
			audit_event_deserialize(p->buf, &ev);
			audit_queue_event(&ev);
		}
		pending = NIL;
	}
	else if (event == XACT_EVENT_ABORT)
	{
		foreach(lc, pending)
			queue_as_failure(lfirst(lc));
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
				queue_as_failure(p);
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
 * emit_success: the statement ran; store or queue its events.
 */
static void
emit_success(List *events)
{
	ListCell   *lc;
	AuditEvent *batch = palloc(sizeof(AuditEvent) * list_length(events));
	List	   *batch_cluster = NIL;
	int			n = 0;
	bool		here = OidIsValid(audit_events_relid(true));
	bool		snap = false;

	foreach(lc, events)
	{
		UEvent	   *u = lfirst(lc);
		bool		audit_db = u->ev.database && audit_database &&
			strcmp(u->ev.database, audit_database) == 0;

		if (u->rv)
		{
			char	   *name = audit_rv_name(u->rv);

			if (name)
				u->ev.object_name = name;
		}
		u->ev.details = audit_text_to_jsonb(u->details);
		if (u->cluster && !(audit_db && here))
			pend(&u->ev, false);
		else if (here)
		{
			batch[n++] = u->ev;
			if (u->cluster)
				batch_cluster = lappend_int(batch_cluster, n - 1);
		}
		else if (strcmp(u->ev.event_type, "extension.dropped") == 0 && u->ev.object_name &&
				 strcmp(u->ev.object_name, "audit_log") == 0)
			audit_queue_event(&u->ev);
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
		pend(&batch[lfirst_int(lc)], true);
}

/*
 * record_failure: the statement failed: queue its events as failures
 * with the error, unless a nested statement recorded this error already.
 */
static void
record_failure(List *events, ErrorData *edata)
{
	ListCell   *lc;

	if (error_recorded)
		return;
	error_recorded = true;
	foreach(lc, events)
	{
		UEvent	   *u = lfirst(lc);
		Json		j;
		StringInfoData d;

		initStringInfo(&d);
		if (u->details && strlen(u->details) > 2)
		{
			appendBinaryStringInfo(&d, u->details, strlen(u->details) - 1);
			appendStringInfoString(&d, ", ");
		}
		else
			appendStringInfoChar(&d, '{');
		j_begin(&j);
		j_str(&j, "error", edata->message);
		j_str(&j, "sqlstate", unpack_sql_state(edata->sqlerrcode));
		appendStringInfoString(&d, j_end(&j) + 1);
		u->ev.status = "failure";
		u->ev.details = audit_text_to_jsonb(d.data);
		if (u->rv)
		{
			char	   *name = audit_rv_name(u->rv);

			if (name)
				u->ev.object_name = name;
		}
		audit_queue_event(&u->ev);
	}
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

	error_recorded = false;
	if (!capture_off() && context != PROCESS_UTILITY_SUBCOMMAND &&
		!IsA(parsetree, TransactionStmt))
	{
		Classify	c;

		cxt = AllocSetContextCreate(TopMemoryContext, "audit_log statement",
									ALLOCSET_SMALL_SIZES);
		MemoryContextSwitchTo(cxt);
		c.events = NIL;
		c.command = GetCommandTagName(CreateCommandTag(parsetree));
		c.statement = NULL;
		PG_TRY();
		{
			check_tamper(parsetree, c.command, pstmt, queryString);
			if (GetCommandLogLevel(parsetree) == LOGSTMT_DDL || IsA(parsetree, VariableSetStmt))
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
		if (events != NIL)
		{
			MemoryContextSwitchTo(cxt);
			emit_success(events);
			MemoryContextSwitchTo(oldcxt);
		}
	}
	PG_CATCH();
	{
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
	prev_executor_start = ExecutorStart_hook;
	ExecutorStart_hook = audit_executor_start;
	RegisterXactCallback(utility_xact_callback, NULL);
	RegisterSubXactCallback(utility_subxact_callback, NULL);
}
