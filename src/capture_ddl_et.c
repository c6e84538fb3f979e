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
 * schema (its partitions' capture carries its name).  So is an
 * inheritance child created (CREATE TABLE ... INHERITS) or attached
 * (ALTER [FOREIGN] TABLE ... INHERIT): refused unless child and parent are
 * both audited or neither is.  A column renamed or dropped by ALTER TABLE
 * goes to audit_log._column_changed(): the column options follow it.
 * ALTER TRIGGER audit_log_* ... DEPENDS ON EXTENSION is refused (dropping
 * the extension would drop the capture).  At sql_drop, also with the
 * preload: a capture trigger dropped with another object (CASCADE, an
 * extension) while its table stays is audit.capture_disabled, and the
 * options of dropped audited tables are forgotten
 * (audit_log._tables_dropped()).  The relations come from the collected
 * commands (OIDs; the parents of CREATE TABLE ... INHERITS, and on
 * PostgreSQL 15 an attached partition, by name again).  That function is SECURITY DEFINER and granted to
 * nobody: it is called through the function manager, which checks no
 * EXECUTE privilege, so a table owner without rights on capture() gets
 * the capture on the partition it creates, and nothing else: the function
 * takes only the two OIDs and decides from the catalogs and table_config.
 * A database still on the 1.0 SQL (no such function) is left as 1.0 did.
 *
 *-------------------------------------------------------------------------
 */
#include "audit_log.h"
#include "compat.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/stratnum.h"
#include "access/table.h"
#include "utils/fmgroids.h"
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

#include "guard.h"
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
 * A partition or inheritance child created, attached or detached by the
 * command; or (parent InvalidOid) a partitioned table renamed or moved to
 * another schema; or (column set) a column of child renamed to newname or
 * (newname NULL) dropped.
 */
typedef struct PartChange
{
	Oid			child;
	Oid			parent;
	bool		attached;
	const char *tag;
	const char *column;
	const char *newname;
} PartChange;

/*
 * new_change: a PartChange appended to *changes.
 */
static PartChange *
new_change(List **changes, Oid child, Oid parent, bool attached, const char *tag)
{
	PartChange *c = palloc0(sizeof(PartChange));

	c->child = child;
	c->parent = parent;
	c->attached = attached;
	c->tag = tag;
	*changes = lappend(*changes, c);
	return c;
}

/*
 * refuse_trigger_depends: ALTER TRIGGER audit_log_* ... DEPENDS ON
 * EXTENSION: dropping the extension would drop the capture with it.
 */
static void
refuse_trigger_depends(AlterObjectDependsStmt *d)
{
	const char *trig;

	if (d->objectType != OBJECT_TRIGGER || d->remove || d->object == NULL ||
		!IsA(d->object, List) || list_length((List *) d->object) < 1)
		return;
	trig = strVal(llast((List *) d->object));
	if (audit_is_audit_trigger(trig))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("capture trigger \"%s\" cannot depend on an extension", trig),
				 errdetail("Dropping the extension would drop the capture of the table."),
				 errhint("Use audit_log.disable() to stop auditing the table.")));
}

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
 * typed_column_changes: a column of the composite type of relid (ALTER TYPE
 * ... RENAME / DROP ATTRIBUTE ... CASCADE) renamed (newname) or dropped
 * (newname NULL): a change for each table of that type, whose column it is
 * (the column options follow it as on ALTER TABLE).
 */
static void
typed_column_changes(List **changes, Oid relid, const char *column,
					 const char *newname, const char *tag)
{
	Oid			typid = get_rel_type_id(relid);
	Relation	rel;
	SysScanDesc scan;
	ScanKeyData key;
	HeapTuple	tup;

	if (!OidIsValid(typid))
		return;
	ScanKeyInit(&key, Anum_pg_class_reloftype, BTEqualStrategyNumber, F_OIDEQ,
				ObjectIdGetDatum(typid));
	rel = table_open(RelationRelationId, AccessShareLock);
	scan = systable_beginscan(rel, InvalidOid, false, NULL, 1, &key);
	while (HeapTupleIsValid(tup = systable_getnext(scan)))
	{
		PartChange *c = new_change(changes, ((Form_pg_class) GETSTRUCT(tup))->oid,
								   InvalidOid, false, tag);

		c->column = pstrdup(column);
		c->newname = newname ? pstrdup(newname) : NULL;
	}
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
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

		if (isnull)
			continue;
		objid = DatumGetObjectId(SPI_getbinval(tup, td, 2, &isnull));
		if (isnull || !OidIsValid(objid))
			continue;
		cmd = (CollectedCommand *) DatumGetPointer(SPI_getbinval(tup, td, 4, &isnull));
		if (isnull || cmd == NULL)
			continue;
		if (cmd->type == SCT_Simple && cmd->parsetree &&
			IsA(cmd->parsetree, AlterObjectDependsStmt))
			refuse_trigger_depends((AlterObjectDependsStmt *) cmd->parsetree);
		if (classid != RelationRelationId)
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
				Oid			parent = get_partition_parent(objid, true);

				if (OidIsValid(parent))
					new_change(&changes, objid, parent, true, tag);
			}
			/* CREATE [FOREIGN] TABLE ... INHERITS: parents by name again */
			else if (cmd->parsetree && (IsA(cmd->parsetree, CreateStmt) ||
										IsA(cmd->parsetree, CreateForeignTableStmt)) &&
					 is_table(objid))
			{
				foreach(lc, ((CreateStmt *) cmd->parsetree)->inhRelations)
				{
					Oid			parent = RangeVarGetRelid(lfirst_node(RangeVar, lc), NoLock, true);

					if (OidIsValid(parent))
						new_change(&changes, objid, parent, true, tag);
				}
			}
			/* ALTER TYPE ... RENAME ATTRIBUTE: those of its typed tables */
			else if (cmd->parsetree && IsA(cmd->parsetree, RenameStmt) &&
					 ((RenameStmt *) cmd->parsetree)->renameType == OBJECT_ATTRIBUTE &&
					 get_rel_relkind(objid) == RELKIND_COMPOSITE_TYPE)
				typed_column_changes(&changes, objid, ((RenameStmt *) cmd->parsetree)->subname,
									 ((RenameStmt *) cmd->parsetree)->newname, tag);
			/* ALTER TABLE ... RENAME COLUMN: the column options follow */
			else if (cmd->parsetree && IsA(cmd->parsetree, RenameStmt) &&
					 ((RenameStmt *) cmd->parsetree)->renameType == OBJECT_COLUMN &&
					 ((RenameStmt *) cmd->parsetree)->relationType == OBJECT_TABLE)
			{
				RenameStmt *r = (RenameStmt *) cmd->parsetree;
				PartChange *c = new_change(&changes, objid, InvalidOid, false, tag);

				c->column = pstrdup(r->subname);
				c->newname = pstrdup(r->newname);
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
				new_change(&changes, objid, InvalidOid, false, tag);
		}
		else if (cmd->type == SCT_AlterTable &&
				 get_rel_relkind(cmd->d.alterTable.objectId) == RELKIND_COMPOSITE_TYPE)
		{
			/* ALTER TYPE ... DROP ATTRIBUTE: a column of its typed tables */
			foreach(lc, cmd->d.alterTable.subcmds)
			{
				AlterTableCmd *atc = (AlterTableCmd *) ((CollectedATSubcmd *) lfirst(lc))->parsetree;

				if (atc && IsA(atc, AlterTableCmd) && AUDIT_AT_DROP_COLUMN(atc->subtype) && atc->name)
					typed_column_changes(&changes, cmd->d.alterTable.objectId, atc->name, NULL, tag);
			}
		}
		else if (cmd->type == SCT_AlterTable && is_table(cmd->d.alterTable.objectId))
		{
			foreach(lc, cmd->d.alterTable.subcmds)
			{
				CollectedATSubcmd *sub = lfirst(lc);
				AlterTableCmd *atc = (AlterTableCmd *) sub->parsetree;

				Oid			parent = cmd->d.alterTable.objectId;
				Oid			child;

				if (atc == NULL || !IsA(atc, AlterTableCmd))
					continue;
				/* ALTER TABLE ... DROP COLUMN: the column options lose it */
				if (AUDIT_AT_DROP_COLUMN(atc->subtype) && atc->name)
				{
					PartChange *c = new_change(&changes, parent, InvalidOid, false, tag);

					c->column = pstrdup(atc->name);
					continue;
				}
				/* ALTER [FOREIGN] TABLE child INHERIT parent */
				if (atc->subtype == AT_AddInherit && atc->def && IsA(atc->def, RangeVar))
				{
					Oid			inh = sub->address.classId == RelationRelationId ?
						sub->address.objectId : InvalidOid;

					if (!OidIsValid(inh))
						inh = RangeVarGetRelid((RangeVar *) atc->def, NoLock, true);
					if (OidIsValid(inh))
						new_change(&changes, parent, inh, true, tag);
					continue;
				}
				if (get_rel_relkind(parent) != RELKIND_PARTITIONED_TABLE ||
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
				new_change(&changes, child, parent, atc->subtype == AT_AttachPartition, tag);
			}
		}
		MemoryContextSwitchTo(oldcxt);
	}
	SPI_finish();
	return changes;
}

/*
 * audit_sql_function: the OID of audit_log's function name(argtypes), by
 * the catalog (the user may have no USAGE on the audit schema);
 * InvalidOid when there is none (a database still on the 1.0 SQL).
 */
static Oid
audit_sql_function(const char *name, Oid *argtypes, int nargs)
{
	Oid			nsp = get_namespace_oid(AUDIT_SCHEMA, true);

	if (!OidIsValid(nsp))
		return InvalidOid;
	return GetSysCacheOid3(PROCNAMEARGSNSP, Anum_pg_proc_oid, CStringGetDatum(name),
						   PointerGetDatum(buildoidvector(argtypes, nargs)),
						   ObjectIdGetDatum(nsp));
}

/*
 * sync_partitions: hand each partition or inheritance child the command
 * created, attached or detached to audit_log._partition_changed(), each
 * column renamed or dropped to audit_log._column_changed().
 */
static void
sync_partitions(EventTriggerData *trig)
{
	List	   *changes;
	ListCell   *lc;
	Oid			fn;
	Oid			colfn;
	Oid			argtypes[4] = {REGCLASSOID, REGCLASSOID, BOOLOID, TEXTOID};
	Oid			colargtypes[4] = {REGCLASSOID, TEXTOID, TEXTOID, TEXTOID};

	if (trig->tag != CMDTAG_CREATE_TABLE && trig->tag != CMDTAG_CREATE_FOREIGN_TABLE &&
		trig->tag != CMDTAG_ALTER_TABLE && trig->tag != CMDTAG_ALTER_FOREIGN_TABLE &&
		trig->tag != CMDTAG_CREATE_SCHEMA && trig->tag != CMDTAG_ALTER_TRIGGER &&
		trig->tag != CMDTAG_ALTER_TYPE)
		return;
	changes = partition_changes();
	if (changes == NIL)
		return;
	fn = audit_sql_function("_partition_changed", argtypes, 4);
	colfn = audit_sql_function("_column_changed", colargtypes, 4);
	foreach(lc, changes)
	{
		PartChange *c = lfirst(lc);
		const char *tag = c->tag ? c->tag : GetCommandTagName(trig->tag);

		if (c->column)
		{
			if (OidIsValid(colfn))
				OidFunctionCall4(colfn, ObjectIdGetDatum(c->child), CStringGetTextDatum(c->column),
								 CStringGetTextDatum(c->newname ? c->newname : ""),
								 CStringGetTextDatum(tag));
		}
		else if (OidIsValid(fn))
			OidFunctionCall4(fn, ObjectIdGetDatum(c->child), ObjectIdGetDatum(c->parent),
							 BoolGetDatum(c->attached), CStringGetTextDatum(tag));
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
 * drops_sync: at sql_drop, with or without the preload: each capture
 * trigger dropped with another object (DROP ... CASCADE, DROP EXTENSION)
 * while its table stays is audit.capture_disabled (one the statement
 * named is classified from the statement, by the hook or et_capture());
 * then the options of the dropped audited tables are forgotten.
 */
static void
drops_sync(EventTriggerData *trig)
{
	Classify	c = {NIL, NULL, NULL};
	AuditEvent *evs;
	int			n = 0;
	int			pin;
	uint64		i;
	ListCell   *lc;
	Oid			noargs[1] = {InvalidOid};
	Oid			fn;

	if (audit_internal_active() || creating_extension || audit_restoring() ||
		!OidIsValid(audit_events_relid(true)))
		return;
	c.command = GetCommandTagName(trig->tag);
	c.statement = audit_redact_statement(debug_query_string);
	pin = audit_pin_search_path();
	SPI_connect();
	if (SPI_execute("SELECT pg_catalog.format('%I.%I', d.address_names[1], d.address_names[2]), "
					"d.address_names[3] "
					"FROM pg_catalog.pg_event_trigger_dropped_objects() d "
					"WHERE d.object_type OPERATOR(pg_catalog.=) 'trigger' AND NOT d.original "
					"AND d.address_names[3] OPERATOR(pg_catalog.=) ANY "
					"('{audit_log_insert,audit_log_update,audit_log_delete,audit_log_truncate}'::pg_catalog.text[]) "
					"AND EXISTS (SELECT 1 FROM pg_catalog.pg_class r JOIN pg_catalog.pg_namespace s "
					"ON s.oid OPERATOR(pg_catalog.=) r.relnamespace "
					"WHERE s.nspname OPERATOR(pg_catalog.=) d.address_names[1] "
					"AND r.relname OPERATOR(pg_catalog.=) d.address_names[2]) "
					"ORDER BY 1, 2", true, 0) != SPI_OK_SELECT)
		elog(ERROR, "audit_log: event trigger query failed");
	for (i = 0; i < SPI_processed; i++)
		audit_classify_capture_disabled(&c, SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1),
										SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 2),
										"dropped with another object");
	evs = palloc0(sizeof(AuditEvent) * (list_length(c.events) + 1));
	foreach(lc, c.events)
	{
		UEvent	   *u = lfirst(lc);

		u->ev.details = audit_jsonb_merge(audit_text_to_jsonb(u->details),
										  audit_text_to_jsonb("{\"source\": \"event trigger\"}"));
		evs[n++] = u->ev;
	}
	if (n > 0)
		audit_write_events(evs, n);
	SPI_finish();
	audit_unpin_search_path(pin);
	fn = audit_sql_function("_tables_dropped", noargs, 0);
	if (OidIsValid(fn))
		OidFunctionCall0(fn);
}

/*
 * audit_et_sql_drop: sql_drop event trigger function (the objects the
 * user named, not their dependents; see drops_sync() for those).
 */
Datum
audit_et_sql_drop(PG_FUNCTION_ARGS)
{
	if (!CALLED_AS_EVENT_TRIGGER(fcinfo))
		elog(ERROR, "not fired by event trigger manager");
	drops_sync((EventTriggerData *) fcinfo->context);
	et_capture(fcinfo,
			   "SELECT NULL::text, object_type, object_identity "
			   "FROM pg_catalog.pg_event_trigger_dropped_objects() WHERE original", true);
	PG_RETURN_NULL();
}
