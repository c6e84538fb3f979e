/*-------------------------------------------------------------------------
 *
 * capture_ddl_et.c
 *		The event trigger functions (ddl_command_end, sql_drop) that record
 *		schema changes, GRANT/REVOKE and capture turned off
 *		(audit.capture_disabled) when audit_log is not preloaded.
 *		With the preload they return at once: the ProcessUtility hook
 *		records the same commands, nothing is recorded twice.
 *
 * They run as the user who issued the command (db_user, effective_role
 * are right) and write through writer.c in the command's transaction; the
 * objects come from pg_event_trigger_ddl_commands() and
 * pg_event_trigger_dropped_objects() read with SPI under the pinned
 * search_path (guard.c): a user's planted objects never run in them.
 *
 * Partitions (with or without the preload): at ddl_command_end, each
 * partition created (CREATE [FOREIGN] TABLE ... PARTITION OF, also inside
 * CREATE SCHEMA), attached or detached (ALTER TABLE ... ATTACH/DETACH
 * PARTITION) is handed to audit_log._partition_changed(), which gives it
 * the capture of its audited ancestor, or takes it away, in the command's
 * transaction; so is a partitioned table renamed or moved to another
 * schema (its partitions' capture carries its name).  The relations come from the collected commands (OIDs, never
 * names looked up again).  That function is SECURITY DEFINER and granted to
 * nobody: it is called through the function manager, which checks no
 * EXECUTE privilege, so a table owner without rights on capture() gets
 * the capture on the partition it creates, and nothing else: the function
 * takes only the two OIDs and decides from the catalogs and table_config.
 * A database still on the 1.0 SQL (no such function) is left as 1.0 did.
 *
 *-------------------------------------------------------------------------
 */
#include "audit_log.h"

#include "catalog/namespace.h"
#include "catalog/partition.h"
#include "catalog/pg_class.h"
#include "catalog/pg_inherits.h"
#include "catalog/pg_proc.h"
#include "catalog/pg_type.h"
#include "commands/event_trigger.h"
#include "commands/extension.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "tcop/deparse_utility.h"
#include "tcop/tcopprot.h"
#include "tcop/utility.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/syscache.h"

#include "object_names.h"
#include "redact.h"
#include "util.h"
#include "utility_classify.h"

PG_FUNCTION_INFO_V1(audit_et_ddl_end);
PG_FUNCTION_INFO_V1(audit_et_sql_drop);

/*
 * et_capture: write one event per row of an event-trigger function's
 * query; columns: command tag, object type, object identity.
 */
static void
et_capture(FunctionCallInfo fcinfo, const char *query, bool drops)
{
	EventTriggerData *trig;
	const char *tag;
	const char *statement;
	AuditEvent *evs;
	uint64		i;
	int			n = 0;
	int			pin;
	Classify	c = {NIL, NULL, NULL};
	ListCell   *lc;

	if (!CALLED_AS_EVENT_TRIGGER(fcinfo))
		elog(ERROR, "not fired by event trigger manager");
	trig = (EventTriggerData *) fcinfo->context;
	if (trig->tag == CMDTAG_CREATE_INDEX && audit_restoring())
		audit_restore_root_index();
	if (audit_preloaded || audit_internal_active() || creating_extension ||
		audit_restoring() || !OidIsValid(audit_events_relid(true)))
		return;
	tag = GetCommandTagName(trig->tag);
	statement = audit_redact_statement(debug_query_string);

	/*
	 * Capture turned off (DISABLE TRIGGER, ALTER TRIGGER ... RENAME,
	 * CREATE OR REPLACE TRIGGER at ddl_command_end; DROP TRIGGER at
	 * sql_drop): classified from the statement as the hook would
	 * (utility_classify.c).
	 */
	c.command = tag;
	c.statement = statement;
	if (trig->parsetree && IsA(trig->parsetree, DropStmt) == drops)
		audit_classify_capture_off(trig->parsetree, &c);

	pin = audit_pin_search_path();
	SPI_connect();
	if (SPI_execute(query, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "audit_log: event trigger query failed");
	evs = palloc0(sizeof(AuditEvent) * (SPI_processed + list_length(c.events) + 1));
	for (i = 0; i < SPI_processed; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		TupleDesc	td = SPI_tuptable->tupdesc;
		char	   *ctag = SPI_getvalue(tup, td, 1);
		char	   *otype = SPI_getvalue(tup, td, 2);
		char	   *ident = SPI_getvalue(tup, td, 3);
		const char *code;
		const char *category = "ddl";

		if (ctag == NULL)
			ctag = (char *) tag;
		if (strcmp(ctag, "GRANT") == 0 || strcmp(ctag, "REVOKE") == 0)
		{
			category = "privilege";
			code = ctag[0] == 'G' ? "privilege.granted" : "privilege.revoked";
		}
		else if (strcmp(ctag, "ALTER DEFAULT PRIVILEGES") == 0)
		{
			category = "privilege";
			code = "privilege.defaults_altered";
		}
		else if (strcmp(ctag, "CREATE EXTENSION") == 0)
			code = "extension.created";
		else if (strcmp(ctag, "ALTER EXTENSION") == 0)
			code = "extension.altered";
		else if (strcmp(ctag, "DROP EXTENSION") == 0)
			code = "extension.dropped";
		else
			code = audit_tag_code(ctag);
		if (otype)
		{
			char	   *p;
			size_t		len = strlen(otype);

			for (p = otype; *p; p++)
				*p = pg_tolower((unsigned char) *p);
			/* ALTER DEFAULT PRIVILEGES reports "TABLES", "FUNCTIONS"... */
			if (strcmp(code, "privilege.defaults_altered") == 0 && len > 1 && otype[len - 1] == 's')
				otype[len - 1] = '\0';
		}
		audit_event_init(&evs[n], category, code);
		evs[n].object_type = otype;
		evs[n].object_name = ident;
		evs[n].command = ctag;
		evs[n].statement = statement;
		evs[n].details = audit_text_to_jsonb("{\"source\": \"event trigger\"}");
		n++;
	}
	foreach(lc, c.events)
	{
		UEvent	   *u = lfirst(lc);

		u->ev.details = audit_jsonb_merge(audit_text_to_jsonb(u->details),
										  audit_text_to_jsonb("{\"source\": \"event trigger\"}"));
		evs[n++] = u->ev;
	}
	audit_write_events(evs, n);
	SPI_finish();
	audit_unpin_search_path(pin);
}

/*
 * A partition created, attached or detached by the command; or (parent
 * InvalidOid) a partitioned table renamed or moved to another schema.
 */
typedef struct PartChange
{
	Oid			child;
	Oid			parent;
	bool		attached;
	const char *tag;
} PartChange;

/*
 * is_table: an ordinary, partitioned or foreign table (not an index).
 */
static bool
is_table(Oid relid)
{
	char		kind = get_rel_relkind(relid);

	return kind == RELKIND_RELATION || kind == RELKIND_PARTITIONED_TABLE ||
		kind == RELKIND_FOREIGN_TABLE;
}

/*
 * partition_of_cmd: the table an ATTACH or DETACH PARTITION subcommand
 * of parent named.  PostgreSQL 15 does not record it in the collected
 * command: the name is looked up again, as the command did a moment ago,
 * and an attached table must now be a partition of parent (else it is
 * found among parent's partitions by name).
 */
static Oid
partition_of_cmd(Oid parent, PartitionCmd *pc, CollectedATSubcmd *sub, bool attach)
{
	Oid			child;
	List	   *kids;
	ListCell   *lc;

	if (sub->address.classId == RelationRelationId && OidIsValid(sub->address.objectId))
		return sub->address.objectId;
	if (pc->name == NULL)
		return InvalidOid;
	child = RangeVarGetRelid(pc->name, NoLock, true);
	if (!attach)
		return child;
	if (OidIsValid(child) && get_rel_relispartition(child) &&
		get_partition_parent(child, true) == parent)
		return child;
	kids = find_inheritance_children(parent, NoLock);
	foreach(lc, kids)
	{
		Oid			kid = lfirst_oid(lc);
		char	   *nsp = get_namespace_name(get_rel_namespace(kid));

		if (strcmp(get_rel_name(kid), pc->name->relname) == 0 &&
			(pc->name->schemaname == NULL || strcmp(nsp, pc->name->schemaname) == 0))
			return kid;
	}
	return InvalidOid;
}

/*
 * partition_changes: the partitions the command created, attached or
 * detached, from its collected commands.
 */
static List *
partition_changes(void)
{
	List	   *changes = NIL;
	MemoryContext outer = CurrentMemoryContext;
	uint64		i;

	SPI_connect();
	if (SPI_execute("SELECT classid, objid, command_tag, command "
					"FROM pg_catalog.pg_event_trigger_ddl_commands()", true, 0) != SPI_OK_SELECT)
		elog(ERROR, "audit_log: event trigger query failed");
	for (i = 0; i < SPI_processed; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		TupleDesc	td = SPI_tuptable->tupdesc;
		bool		isnull;
		Oid			classid = DatumGetObjectId(SPI_getbinval(tup, td, 1, &isnull));
		Oid			objid;
		char	   *tag;
		CollectedCommand *cmd;
		ListCell   *lc;
		MemoryContext oldcxt;

		if (isnull || classid != RelationRelationId)
			continue;
		objid = DatumGetObjectId(SPI_getbinval(tup, td, 2, &isnull));
		if (isnull || !OidIsValid(objid))
			continue;
		cmd = (CollectedCommand *) DatumGetPointer(SPI_getbinval(tup, td, 4, &isnull));
		if (isnull || cmd == NULL)
			continue;
		/* the list outlives SPI_finish() */
		oldcxt = MemoryContextSwitchTo(outer);
		tag = SPI_getvalue(tup, td, 3);
		if (cmd->type == SCT_Simple)
		{
			/* CREATE [FOREIGN] TABLE ... PARTITION OF */
			if (cmd->parsetree && (IsA(cmd->parsetree, CreateStmt) ||
								   IsA(cmd->parsetree, CreateForeignTableStmt)) &&
				is_table(objid) && get_rel_relispartition(objid))
			{
				PartChange *c = palloc(sizeof(PartChange));

				c->child = objid;
				c->parent = get_partition_parent(objid, true);
				c->attached = true;
				c->tag = tag;
				if (OidIsValid(c->parent))
					changes = lappend(changes, c);
			}
			/*
			 * ALTER TABLE ... RENAME TO / SET SCHEMA of a partitioned table:
			 * if it is audited, its partitions' events must carry its new
			 * name
			 */
			else if (cmd->parsetree &&
					 ((IsA(cmd->parsetree, RenameStmt) &&
					   ((RenameStmt *) cmd->parsetree)->renameType == OBJECT_TABLE) ||
					  (IsA(cmd->parsetree, AlterObjectSchemaStmt) &&
					   ((AlterObjectSchemaStmt *) cmd->parsetree)->objectType == OBJECT_TABLE)) &&
					 get_rel_relkind(objid) == RELKIND_PARTITIONED_TABLE)
			{
				PartChange *c = palloc(sizeof(PartChange));

				c->child = objid;
				c->parent = InvalidOid;
				c->attached = false;
				c->tag = tag;
				changes = lappend(changes, c);
			}
		}
		else if (cmd->type == SCT_AlterTable &&
				 get_rel_relkind(cmd->d.alterTable.objectId) == RELKIND_PARTITIONED_TABLE)
		{
			foreach(lc, cmd->d.alterTable.subcmds)
			{
				CollectedATSubcmd *sub = lfirst(lc);
				AlterTableCmd *atc = (AlterTableCmd *) sub->parsetree;
				PartChange *c;

				Oid			parent = cmd->d.alterTable.objectId;
				Oid			child;

				if (atc == NULL || !IsA(atc, AlterTableCmd) ||
					(atc->subtype != AT_AttachPartition &&
					 atc->subtype != AT_DetachPartition &&
					 atc->subtype != AT_DetachPartitionFinalize) ||
					atc->def == NULL || !IsA(atc->def, PartitionCmd))
					continue;
				child = partition_of_cmd(parent, (PartitionCmd *) atc->def, sub,
										 atc->subtype == AT_AttachPartition);
				if (!OidIsValid(child) || !is_table(child))
					continue;
				/* the first step of DETACH CONCURRENTLY: FINALIZE finishes it */
				if (atc->subtype != AT_AttachPartition && get_rel_relispartition(child))
					continue;
				c = palloc(sizeof(PartChange));
				c->child = child;
				c->parent = parent;
				c->attached = (atc->subtype == AT_AttachPartition);
				c->tag = tag;
				changes = lappend(changes, c);
			}
		}
		MemoryContextSwitchTo(oldcxt);
	}
	SPI_finish();
	return changes;
}

/*
 * sync_partitions: hand each partition the command created, attached or
 * detached to audit_log._partition_changed().
 */
static void
sync_partitions(EventTriggerData *trig)
{
	List	   *changes;
	ListCell   *lc;
	Oid			fn;
	Oid			nsp;
	Oid			argtypes[4] = {REGCLASSOID, REGCLASSOID, BOOLOID, TEXTOID};

	if (trig->tag != CMDTAG_CREATE_TABLE && trig->tag != CMDTAG_CREATE_FOREIGN_TABLE &&
		trig->tag != CMDTAG_ALTER_TABLE && trig->tag != CMDTAG_CREATE_SCHEMA)
		return;
	changes = partition_changes();
	if (changes == NIL)
		return;
	/* by the catalog: the user may have no USAGE on the audit schema */
	nsp = get_namespace_oid(AUDIT_SCHEMA, true);
	fn = OidIsValid(nsp) ?
		GetSysCacheOid3(PROCNAMEARGSNSP, Anum_pg_proc_oid,
						CStringGetDatum("_partition_changed"),
						PointerGetDatum(buildoidvector(argtypes, 4)),
						ObjectIdGetDatum(nsp)) : InvalidOid;
	if (!OidIsValid(fn))
		return;					/* the 1.0 SQL */
	foreach(lc, changes)
	{
		PartChange *c = lfirst(lc);

		OidFunctionCall4(fn, ObjectIdGetDatum(c->child), ObjectIdGetDatum(c->parent),
						 BoolGetDatum(c->attached),
						 CStringGetTextDatum(c->tag ? c->tag : GetCommandTagName(trig->tag)));
	}
}

/*
 * audit_et_ddl_end: ddl_command_end event trigger function.
 */
Datum
audit_et_ddl_end(PG_FUNCTION_ARGS)
{
	if (!CALLED_AS_EVENT_TRIGGER(fcinfo))
		elog(ERROR, "not fired by event trigger manager");
	if (!audit_internal_active() && OidIsValid(audit_events_relid(true)))
		sync_partitions((EventTriggerData *) fcinfo->context);
	et_capture(fcinfo,
			   "SELECT command_tag, object_type, object_identity "
			   "FROM pg_catalog.pg_event_trigger_ddl_commands() WHERE NOT in_extension", false);
	PG_RETURN_NULL();
}

/*
 * audit_et_sql_drop: sql_drop event trigger function (the objects the
 * user named, not their dependents).
 */
Datum
audit_et_sql_drop(PG_FUNCTION_ARGS)
{
	et_capture(fcinfo,
			   "SELECT NULL::text, object_type, object_identity "
			   "FROM pg_catalog.pg_event_trigger_dropped_objects() WHERE original", true);
	PG_RETURN_NULL();
}
