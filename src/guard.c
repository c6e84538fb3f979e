/*-------------------------------------------------------------------------
 *
 * guard.c
 *		The tamper guard of the audit tables, what relaxes it, and how that
 *		is kept from leaking: the refusal of writes, DDL and grants aimed at
 *		audit_log.events and its partitions; the "internal operation" mark
 *		of the extension's own functions; and the pinned search_path of
 *		every query the C code runs with raised rights or on behalf of
 *		another role.
 *
 * Tamper guard (preload only: the ExecutorStart hook installed by
 * audit_guard_init(), the utility check called by capture_utility.c's
 * ProcessUtility hook before a statement runs).  Writing to, truncating,
 * altering, dropping, granting on (also a grant of more than SELECT on ALL
 * TABLES IN SCHEMA audit_log, or by ALTER DEFAULT PRIVILEGES IN SCHEMA
 * audit_log), adding a trigger or rule to
 * audit_log.events or its partitions, adding a partition to them (CREATE
 * [FOREIGN] TABLE ... PARTITION OF, also in CREATE SCHEMA, ATTACH
 * PARTITION) or detaching one fails with SQLSTATE 42501 and is queued as
 * audit.tamper_attempt (failure), whoever asks, superusers included,
 * unless audit_capture_suspended() (the extension's own upkeep, its
 * worker, its install scripts).  The event is queued, not written: the
 * statement's transaction is about to fail.  Before PostgreSQL 16 the same
 * check refuses to a role that is not a superuser the grant, creation,
 * change, renaming and drop of the extension's roles (AUDIT_ROLES), which
 * CREATEROLE would otherwise allow it (audit_check_role_tamper()).
 *
 * Internal operations.  The extension's own functions (enable, maintain,
 * seal...) do DDL on audit objects that the hooks must neither capture as a
 * user's nor refuse as tampering.  In 1.1 they say so through the hidden
 * setting audit_log.internal, set in their SET clause: PostgreSQL restores
 * it when the function returns, when it fails, and when a subtransaction
 * that set it aborts, so the mark can never outlive the call that made it.
 * The setting is PGC_SUSET: only the extension's SECURITY DEFINER functions
 * (owned by a superuser) and superusers can set it.
 *
 * A database still on the 1.0 SQL marks its operations with
 * audit_log._internal(true/false) instead.  That mark is backend-local; it
 * is cleared at the end of the top-level transaction and, so that a
 * function failing inside a savepoint or an EXCEPTION block cannot leave it
 * on, when any subtransaction that was open when it was set aborts.
 *
 * Pinned search_path.  audit_pin_search_path() opens a GUC nest level with
 * search_path = pg_catalog, pg_temp; audit_unpin_search_path() closes it.
 * An error between the two is undone by the transaction's GUC rollback
 * (AtEOXact_GUC / AtEOSubXact_GUC), like a function's SET clause.
 *
 * Locking: none of our own.  Relations are identified through the
 * syscache with NoLock (the refused statement never gets to lock them);
 * the rest is backend-local state.
 *
 *-------------------------------------------------------------------------
 */
#include "guard.h"
#include "compat.h"

#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/partition.h"
#include "catalog/pg_class.h"
#include "commands/extension.h"
#include "executor/executor.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/timestamp.h"

#include "object_names.h"
#include "redact.h"
#include "util.h"

PG_FUNCTION_INFO_V1(audit_internal);
PG_FUNCTION_INFO_V1(audit_load);

/* audit_log.internal: set only through the SET clause of our functions. */
bool		audit_internal_setting = false;

/* The 1.0 mark: on since subtransaction internal_subid (0: off). */
static SubTransactionId internal_subid = InvalidSubTransactionId;
static bool callbacks_registered = false;

static ExecutorStart_hook_type prev_executor_start = NULL;

/*
 * audit_internal_active: true while the extension's own SQL functions work
 * on audit objects, or while the writer stores events.
 */
bool
audit_internal_active(void)
{
	return audit_internal_setting ||
		internal_subid != InvalidSubTransactionId ||
		audit_writing();
}

/*
 * internal_xact_callback: the 1.0 mark never outlives its transaction.
 */
static void
internal_xact_callback(XactEvent event, void *arg)
{
	if (event == XACT_EVENT_COMMIT || event == XACT_EVENT_ABORT ||
		event == XACT_EVENT_PARALLEL_COMMIT || event == XACT_EVENT_PARALLEL_ABORT ||
		event == XACT_EVENT_PREPARE)
		internal_subid = InvalidSubTransactionId;
}

/*
 * internal_subxact_callback: the 1.0 mark never outlives a subtransaction
 * that aborts around it.  Every subtransaction with an id at least mySubid
 * began while mySubid was open, so a mark set at or after mySubid was set
 * inside the aborting subtransaction.
 */
static void
internal_subxact_callback(SubXactEvent event, SubTransactionId mySubid,
						  SubTransactionId parentSubid, void *arg)
{
	if (event == SUBXACT_EVENT_ABORT_SUB &&
		internal_subid != InvalidSubTransactionId && internal_subid >= mySubid)
		internal_subid = InvalidSubTransactionId;
}

/*
 * audit_internal: audit_log._internal(on boolean) -> previous value, the
 * 1.0 marking of internal operations (1.1 functions use the setting).
 * Granted to nobody: only the extension's SECURITY DEFINER functions (and
 * superusers) call it.
 */
Datum
audit_internal(PG_FUNCTION_ARGS)
{
	bool		prev = internal_subid != InvalidSubTransactionId;

	if (!callbacks_registered)
	{
		RegisterXactCallback(internal_xact_callback, NULL);
		RegisterSubXactCallback(internal_subxact_callback, NULL);
		callbacks_registered = true;
	}
	/*
	 * A nested _internal(true) keeps the outer mark's (sub)transaction: an
	 * error caught inside it must not clear the mark the caller still runs
	 * under.
	 */
	if (!PG_GETARG_BOOL(0))
		internal_subid = InvalidSubTransactionId;
	else if (!prev)
		internal_subid = GetCurrentSubTransactionId();
	PG_RETURN_BOOL(prev);
}

/*
 * audit_load: audit_log._load() -> true.  Does nothing: calling it loads
 * the library, so that its settings are defined in a session where nothing
 * else has (no preload).
 */
Datum
audit_load(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(true);
}

/*
 * audit_pin_search_path: run what follows under search_path =
 * pg_catalog, pg_temp; returns the GUC nest level to hand to
 * audit_unpin_search_path().
 */
int
audit_pin_search_path(void)
{
	int			nestlevel = NewGUCNestLevel();

	(void) set_config_option("search_path", "pg_catalog, pg_temp",
							 PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
	return nestlevel;
}

/*
 * audit_unpin_search_path: restore the search_path of before
 * audit_pin_search_path().
 */
void
audit_unpin_search_path(int nestlevel)
{
	AtEOXact_GUC(true, nestlevel);
}

/* ---------- tamper guard ---------- */

/*
 * audit_is_audit_trigger: one of the triggers enable() attaches.
 */
bool
audit_is_audit_trigger(const char *name)
{
	return name && (strcmp(name, "audit_log_insert") == 0 || strcmp(name, "audit_log_update") == 0 ||
					strcmp(name, "audit_log_delete") == 0 || strcmp(name, "audit_log_truncate") == 0);
}

/*
 * audit_is_events_relid: audit_log.events or one of its partitions (by name in
 * the audit schema; any other partition of the events tree by ancestry), or
 * the sequence of their ids (ALTER SEQUENCE ... RESTART, or a grant of
 * UPDATE for setval(), would hand out ids again).
 */
bool
audit_is_events_relid(Oid relid)
{
	Oid			nsp;
	char	   *name;
	char		kind;

	if (!OidIsValid(relid))
		return false;
	nsp = get_rel_namespace(relid);
	if (OidIsValid(nsp) && nsp == get_namespace_oid(AUDIT_SCHEMA, true))
	{
		kind = get_rel_relkind(relid);
		name = get_rel_name(relid);
		if (name && (kind == RELKIND_RELATION || kind == RELKIND_PARTITIONED_TABLE) &&
			(strcmp(name, "events") == 0 || strncmp(name, "events_", 7) == 0))
			return true;
		if (name && kind == RELKIND_SEQUENCE && strcmp(name, "events_event_id_seq") == 0)
			return true;
	}
	/*
	 * any partition of the events, whatever its schema, name or kind (it has
	 * their columns: two cheap lookups spare ordinary partitions the walk up
	 * their ancestors)
	 */
	if (get_rel_relispartition(relid) &&
		get_attnum(relid, "backend_pid") != InvalidAttrNumber &&
		get_attnum(relid, "event_id") != InvalidAttrNumber)
	{
		Oid			events = audit_events_relid(true);
		List	   *ancestors;

		if (!OidIsValid(events))
			return false;
		ancestors = get_partition_ancestors(relid);
		return list_member_oid(ancestors, events);
	}
	return false;
}

/*
 * audit_is_events_rv: the relation a RangeVar names is one of the audit
 * tables (see audit_is_events_relid).
 */
bool
audit_is_events_rv(RangeVar *rv)
{
	return rv && audit_is_events_relid(audit_rv_relid(rv));
}

/*
 * audit_refuse_tamper: record an attempt on the audit trail as
 * audit.tamper_attempt (queued: the statement's transaction is about to
 * fail) and refuse it with 42501 and message, detail and hint (full
 * sentences).  Also sources.c's, for a subscription's write.
 */
void
audit_refuse_tamper(const char *what, const char *object_type, const char *object_name,
	   const char *command, const char *statement, const char *msg,
	   const char *detail, const char *hint)
{
	AuditEvent	ev;
	Json		j;

	audit_event_init(&ev, "audit", "audit.tamper_attempt");
	ev.occurred_at = GetCurrentTimestamp();
	ev.status = "failure";
	ev.object_type = object_type;
	ev.object_name = object_name;
	ev.command = command;
	ev.statement = statement;
	j_begin(&j);
	j_str(&j, "attempt", what);
	j_str(&j, "error", msg);
	ev.details = DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum(j_end(&j))));
	audit_queue_event(&ev, false);
	ereport(ERROR,
			(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
			 errmsg_internal("%s", msg),
			 errdetail_internal("%s", detail),
			 errhint("%s", hint)));
}

/*
 * tamper_hint: record an attempt on the audit tables and refuse it; the
 * hint tells how to restore a dump when the attempt looks like a restore.
 */
static void
tamper_hint(const char *what, Oid relid, const char *command, const char *statement,
			bool restore_hint)
{
	char	   *nsp = get_namespace_name(get_rel_namespace(relid));
	char	   *rel = psprintf("%s.%s", nsp ? nsp : AUDIT_SCHEMA, get_rel_name(relid));

	audit_refuse_tamper(what, "table", rel, command, statement,
		   psprintf(_("%s on audit table %s is not allowed"), what, rel),
		   _("Audit events are written and removed only by the audit_log extension; the attempt has been recorded."),
		   restore_hint ?
		   _("To restore a dump into a new database, restore it in a session with audit_log.restore = on (README: Backup and restore).") :
		   _("Use audit_log.maintain() and retention policies to remove old events."));
}

/*
 * tamper: record an attempt on the audit tables and refuse it.
 */
static void
tamper(const char *what, Oid relid, const char *command, const char *statement)
{
	tamper_hint(what, relid, command, statement, false);
}

/*
 * audit_capture_suspended: nothing is captured or refused: in the audit
 * worker, in the scripts of CREATE/ALTER EXTENSION, and while the
 * extension's own functions work (audit_internal_active()).
 */
bool
audit_capture_suspended(void)
{
	return audit_in_worker || creating_extension || audit_internal_active();
}

/*
 * is_audit_role: name is one of the extension's roles (AUDIT_ROLES).
 */
static bool
is_audit_role(const char *name)
{
	static const char *const roles[] = AUDIT_ROLES;
	int			i;

	for (i = 0; name != NULL && roles[i] != NULL; i++)
		if (strcmp(name, roles[i]) == 0)
			return true;
	return false;
}

/*
 * holds_audit_role: the role is a member of one of the extension's roles
 * (and so could be logged in as, or granted, to get its rights).
 */
static bool
holds_audit_role(Oid role)
{
	static const char *const roles[] = AUDIT_ROLES;
	int			i;

	for (i = 0; roles[i] != NULL; i++)
	{
		Oid			r = get_role_oid(roles[i], true);

		if (OidIsValid(r) && is_member_of_role_nosuper(role, r))
			return true;
	}
	return false;
}

/*
 * role_tamper: refuse what is done to the role name if it is one of the
 * extension's roles or a member of one, and record the attempt, unless the
 * current role holds the ADMIN OPTION on it (a superuser gave it
 * deliberately, as 16 asks).
 */
static void
role_tamper(const char *what, const char *name, const char *command,
			PlannedStmt *pstmt, const char *query)
{
	Oid			role = name ? get_role_oid(name, true) : InvalidOid;

	/* a member may change itself (its own password, say) */
	if (!is_audit_role(name) &&
		!(OidIsValid(role) && role != GetUserId() && holds_audit_role(role)))
		return;
	if (OidIsValid(role) && is_admin_of_role(GetUserId(), role))
		return;
	audit_refuse_tamper(what, "role", name, command, audit_statement_text(pstmt, query),
		   is_audit_role(name) ?
		   psprintf(_("%s on audit role %s is not allowed"), what, name) :
		   psprintf(_("%s on role %s, a member of the audit roles, is not allowed"), what, name),
		   _("Before PostgreSQL 16 a CREATEROLE role can administer every role that is not a superuser; the audit_log roles are administered by superusers only. The attempt has been recorded."),
		   _("Ask a superuser to grant or change the audit_log roles (README: Security)."));
}

/*
 * role_tamper_list: role_tamper() for each RoleSpec of specs.
 */
static void
role_tamper_list(const char *what, List *specs, const char *command,
				 PlannedStmt *pstmt, const char *query)
{
	ListCell   *lc;

	foreach(lc, specs)
		role_tamper(what, audit_rolespec_name(lfirst(lc)), command, pstmt, query);
}

/*
 * audit_check_role_tamper: before PostgreSQL 16, refuse to a role that is
 * not a superuser the statements that would give it the extension's roles
 * or change them or their members (whose password it could otherwise set):
 * GRANT/REVOKE of their membership, CREATE ROLE ... IN ROLE,
 * CREATE/ALTER/RENAME/DROP ROLE and ALTER ROLE ... SET on them (from
 * 16 on, CREATEROLE needs the ADMIN OPTION on the role, which the install
 * refuses to find held by one that is not a superuser, and which a
 * superuser who grants it later means to give: a holder of the ADMIN
 * OPTION passes here too).
 */
static void
audit_check_role_tamper(Node *n, const char *command, PlannedStmt *pstmt, const char *query)
{
	ListCell   *lc;

	if (!AUDIT_CREATEROLE_ADMINISTERS_ALL || superuser())
		return;
	switch (nodeTag(n))
	{
		case T_GrantRoleStmt:
			{
				GrantRoleStmt *g = (GrantRoleStmt *) n;

				foreach(lc, g->granted_roles)
					role_tamper(g->is_grant ? "GRANT" : "REVOKE",
								lfirst_node(AccessPriv, lc)->priv_name, command, pstmt, query);
				break;
			}
		case T_CreateRoleStmt:
			role_tamper("CREATE ROLE", ((CreateRoleStmt *) n)->role, command, pstmt, query);
			foreach(lc, ((CreateRoleStmt *) n)->options)
			{
				DefElem    *d = lfirst_node(DefElem, lc);

				if (strcmp(d->defname, "addroleto") == 0)
					role_tamper_list("GRANT", (List *) d->arg, command, pstmt, query);
			}
			break;
		case T_AlterRoleStmt:
			role_tamper("ALTER ROLE", audit_rolespec_name(((AlterRoleStmt *) n)->role),
						command, pstmt, query);
			break;
		case T_AlterRoleSetStmt:
			role_tamper("ALTER ROLE SET", audit_rolespec_name(((AlterRoleSetStmt *) n)->role),
						command, pstmt, query);
			break;
		case T_RenameStmt:
			if (((RenameStmt *) n)->renameType == OBJECT_ROLE)
			{
				role_tamper("ALTER ROLE RENAME", ((RenameStmt *) n)->subname, command, pstmt, query);
				role_tamper("ALTER ROLE RENAME", ((RenameStmt *) n)->newname, command, pstmt, query);
			}
			break;
		case T_DropRoleStmt:
			role_tamper_list("DROP ROLE", ((DropRoleStmt *) n)->roles, command, pstmt, query);
			break;
		default:
			break;
	}
}

/*
 * grants_write: a GRANT on tables gives a privilege that writes, removes or
 * pins rows or adds a trigger (ALL included).
 */
static bool
grants_write(GrantStmt *g)
{
	ListCell   *lc;

	if (g->privileges == NIL)
		return true;			/* ALL [PRIVILEGES] */
	foreach(lc, g->privileges)
	{
		const char *p = lfirst_node(AccessPriv, lc)->priv_name;

		if (p == NULL || strcmp(p, "select") != 0)
			return true;		/* insert, update, delete, truncate, references, trigger */
	}
	return false;
}

/*
 * schema_tamper: refuse a grant aimed at every table, or every future
 * table, of the audit schema (the events and their partitions among them)
 * and record the attempt.
 */
static void
schema_tamper(const char *what, const char *command, PlannedStmt *pstmt, const char *query)
{
	audit_refuse_tamper(what, "schema", AUDIT_SCHEMA, command, audit_statement_text(pstmt, query),
		   psprintf(_("%s in audit schema %s is not allowed"), what, AUDIT_SCHEMA),
		   _("Audit events are written and removed only by the audit_log extension; the attempt has been recorded."),
		   _("Grant SELECT only, or name the tables of the schema that are not audit tables."));
}

/*
 * audit_check_tamper: refuse a utility statement aimed at the audit tables.
 */
void
audit_check_tamper(Node *n, const char *command, PlannedStmt *pstmt, const char *query)
{
	RangeVar   *rv = NULL;
	const char *what = NULL;
	ListCell   *lc;

	audit_check_role_tamper(n, command, pstmt, query);
	if (audit_restoring() && audit_restore_allows(n))
		return;

	switch (nodeTag(n))
	{
		case T_AlterTableStmt:
			rv = ((AlterTableStmt *) n)->relation;
			what = "ALTER TABLE";
			foreach(lc, ((AlterTableStmt *) n)->cmds)
			{
				AlterTableCmd *cmd = lfirst_node(AlterTableCmd, lc);
				RangeVar   *part;

				if (cmd->subtype != AT_AttachPartition && cmd->subtype != AT_DetachPartition &&
					cmd->subtype != AT_DetachPartitionFinalize)
					continue;
				what = cmd->subtype == AT_AttachPartition ? "ATTACH PARTITION" : "DETACH PARTITION";
				/* an audit table named as the partition */
				part = cmd->def && IsA(cmd->def, PartitionCmd) ? ((PartitionCmd *) cmd->def)->name : NULL;
				if (part && audit_is_events_rv(part))
					tamper(what, audit_rv_relid(part), command, audit_statement_text(pstmt, query));
			}
			break;
		case T_CreateTrigStmt:
			rv = ((CreateTrigStmt *) n)->relation;
			what = "CREATE TRIGGER";
			break;
		case T_RuleStmt:
			rv = ((RuleStmt *) n)->relation;
			what = "CREATE RULE";
			break;
		case T_AlterSeqStmt:
			rv = ((AlterSeqStmt *) n)->sequence;
			what = "ALTER SEQUENCE";
			break;
		case T_RenameStmt:
			rv = ((RenameStmt *) n)->relation;
			what = ((RenameStmt *) n)->renameType == OBJECT_SEQUENCE ? "ALTER SEQUENCE" : "ALTER TABLE";
			break;
		case T_CreateStmt:
		case T_CreateForeignTableStmt:
			{
				/*
				 * A partition added to the events, whatever its schema and
				 * name: only the extension's upkeep (internal) adds days.
				 */
				CreateStmt *cs = IsA(n, CreateStmt) ? (CreateStmt *) n :
					&((CreateForeignTableStmt *) n)->base;

				if (cs->partbound != NULL && list_length(cs->inhRelations) == 1)
				{
					rv = linitial(cs->inhRelations);
					what = IsA(n, CreateStmt) ? "CREATE TABLE PARTITION OF" :
						"CREATE FOREIGN TABLE PARTITION OF";
				}
				break;
			}
		case T_CreateSchemaStmt:
			/* CREATE SCHEMA s CREATE TABLE t PARTITION OF ... */
			foreach(lc, ((CreateSchemaStmt *) n)->schemaElts)
				audit_check_tamper(lfirst(lc), command, pstmt, query);
			return;
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

				if (!g->is_grant || (g->objtype != OBJECT_TABLE && g->objtype != OBJECT_SEQUENCE))
					return;
				if (g->targtype == ACL_TARGET_ALL_IN_SCHEMA)
				{
					/* ALL TABLES (SEQUENCES) IN SCHEMA audit_log: the events (ids) among them */
					foreach(lc, g->objects)
						if (strcmp(strVal(lfirst(lc)), AUDIT_SCHEMA) == 0 && grants_write(g))
							schema_tamper(g->objtype == OBJECT_SEQUENCE ? "GRANT ON ALL SEQUENCES" :
										  "GRANT ON ALL TABLES", command, pstmt, query);
					return;
				}
				if (g->targtype != ACL_TARGET_OBJECT)
					return;
				foreach(lc, g->objects)
					if (audit_is_events_rv(lfirst(lc)))
						tamper("GRANT", audit_rv_relid(lfirst(lc)), command,
							   audit_statement_text(pstmt, query));
				return;
			}
		case T_AlterDefaultPrivilegesStmt:
			{
				/* future partitions of the events: IN SCHEMA audit_log */
				AlterDefaultPrivilegesStmt *a = (AlterDefaultPrivilegesStmt *) n;

				if (!a->action->is_grant ||
					(a->action->objtype != OBJECT_TABLE && a->action->objtype != OBJECT_SEQUENCE) ||
					!grants_write(a->action))
					return;
				foreach(lc, a->options)
				{
					DefElem    *d = lfirst_node(DefElem, lc);
					ListCell   *s;

					if (strcmp(d->defname, "schemas") != 0)
						continue;
					foreach(s, (List *) d->arg)
						if (strcmp(strVal(lfirst(s)), AUDIT_SCHEMA) == 0)
							schema_tamper("ALTER DEFAULT PRIVILEGES", command, pstmt, query);
				}
				return;
			}
		default:
			return;
	}
	if (rv && audit_is_events_rv(rv))
		tamper_hint(what, audit_rv_relid(rv), command, audit_statement_text(pstmt, query),
					(IsA(n, CopyStmt) || IsA(n, AlterTableStmt)) && audit_restore_allows(n));
}

/*
 * audit_executor_start: refuse INSERT/UPDATE/DELETE/MERGE on the audit
 * tables (whoever asks, superusers included).
 */
static void
audit_executor_start(QueryDesc *queryDesc, int eflags)
{
	PlannedStmt *ps = queryDesc->plannedstmt;

	if (ps->resultRelations != NIL && !audit_capture_suspended() &&
		!(eflags & EXEC_FLAG_EXPLAIN_ONLY) &&
		!(ps->commandType == CMD_INSERT && audit_restoring()))
	{
		ListCell   *lc;

		foreach(lc, ps->rtable)
		{
			RangeTblEntry *rte = lfirst_node(RangeTblEntry, lc);
			const char *op = ps->commandType == CMD_INSERT ? "INSERT" :
				ps->commandType == CMD_UPDATE ? "UPDATE" :
				ps->commandType == CMD_DELETE ? "DELETE" : "MERGE";

			if (rte->rtekind == RTE_RELATION &&
				(audit_rte_required_perms(ps, rte) & (ACL_INSERT | ACL_UPDATE | ACL_DELETE)) != 0 &&
				audit_is_events_relid(rte->relid))
				tamper(op, rte->relid, op, audit_redact_statement(queryDesc->sourceText));
		}
	}
	if (prev_executor_start)
		prev_executor_start(queryDesc, eflags);
	else
		standard_ExecutorStart(queryDesc, eflags);
}

/*
 * audit_guard_init: install the ExecutorStart hook (called from _PG_init
 * when preloaded).
 */
void
audit_guard_init(void)
{
	prev_executor_start = ExecutorStart_hook;
	ExecutorStart_hook = audit_executor_start;
}
