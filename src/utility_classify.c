/*-------------------------------------------------------------------------
 *
 * utility_classify.c
 *		What a utility statement records: its events (codes, object types
 *		and names, details) built before it runs, with the session's
 *		context at that moment.  audit_classify() dispatches to one
 *		function per command family (roles, settings and privileges are in
 *		classify_access.c) and ends in classify_generic_ddl(), the
 *		ddl.<command> event of every other schema change.
 *
 * Names come from object_names.c (syscache lookups without locks or
 * privilege checks, never an error: the statement itself checks), the
 * redacted statement text from redact.c.  Role and user mapping options
 * never carry their values; a setting's value is withheld when its name
 * or the statement says it is secret.  Events are palloc'd in
 * CurrentMemoryContext (capture_utility.c's per-statement context).
 *
 *-------------------------------------------------------------------------
 */
#include "utility_classify.h"
#include "compat.h"

#include "commands/trigger.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "parser/parse_type.h"
#include "tcop/utility.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/timestamp.h"

#include "guard.h"
#include "object_names.h"
#include "util.h"

/* ---------- helpers ---------- */

/*
 * audit_classify_add_event: a new event of the statement, with the
 * session's context now.
 */
UEvent *
audit_classify_add_event(Classify *c, const char *category, const char *code,
		  const char *object_type, const char *object_name, bool cluster)
{
	UEvent	   *u = palloc0(sizeof(UEvent));

	audit_event_init(&u->ev, category, code);
	u->ev.occurred_at = GetCurrentTimestamp();
	u->ev.object_type = object_type;
	u->ev.object_name = object_name;
	u->ev.command = c->command;
	u->ev.statement = c->statement;
	u->cluster = cluster;
	c->events = lappend(c->events, u);
	return u;
}

/* ---------- capture switched off, drops ---------- */

/*
 * audit_classify_capture_disabled: an audit.capture_disabled event for a
 * trigger of ours.
 */
void
audit_classify_capture_disabled(Classify *c, const char *table, const char *trigger, const char *action)
{
	Json		j;
	UEvent	   *u = audit_classify_add_event(c, "audit", "audit.capture_disabled", "table", table, false);

	j_begin(&j);
	j_str(&j, "trigger", trigger);
	j_str(&j, "action", action);
	u->details = j_end(&j);
}

/*
 * classify_alter_table: ALTER TABLE ... DISABLE/ENABLE [REPLICA] TRIGGER
 * on an audit trigger turns capture off (only ENABLE ALWAYS keeps it on).
 */
static void
classify_alter_table(Classify *c, AlterTableStmt *a)
{
	ListCell   *lc;
	Oid			relid = InvalidOid;
	char	   *table = NULL;

	foreach(lc, a->cmds)
	{
		AlterTableCmd *cmd = lfirst_node(AlterTableCmd, lc);
		const char *action = NULL;
		bool		all = false;

		switch (cmd->subtype)
		{
			case AT_DisableTrig: action = "disable trigger"; break;
			case AT_EnableTrig: action = "enable trigger (origin only)"; break;
			case AT_EnableReplicaTrig: action = "enable replica trigger"; break;
			case AT_DisableTrigAll: action = "disable trigger all"; all = true; break;
			case AT_DisableTrigUser: action = "disable trigger user"; all = true; break;
			case AT_EnableTrigAll: action = "enable trigger all (origin only)"; all = true; break;
			case AT_EnableTrigUser: action = "enable trigger user (origin only)"; all = true; break;
			default: break;
		}
		if (action == NULL)
			continue;
		if (!OidIsValid(relid))
		{
			relid = audit_rv_relid(a->relation);
			if (!OidIsValid(relid))
				return;
			table = audit_rv_name(a->relation);
		}
		if (all)
		{
			if (OidIsValid(get_trigger_oid(relid, "audit_log_insert", true)))
				audit_classify_capture_disabled(c, table, "audit_log_*", action);
		}
		else if (audit_is_audit_trigger(cmd->name))
			audit_classify_capture_disabled(c, table, cmd->name, action);
	}
}

/*
 * classify_drop_trigger: DROP TRIGGER of a capture trigger (obj is the
 * name list of one trigger: [schema,] table, trigger).
 */
static void
classify_drop_trigger(Classify *c, Node *obj)
{
	List	   *l;
	const char *trig;

	if (!IsA(obj, List))
		return;
	l = (List *) obj;
	trig = strVal(llast(l));
	if (audit_is_audit_trigger(trig))
	{
		List	   *rel = list_truncate(list_copy(l), list_length(l) - 1);

		audit_classify_capture_disabled(c, audit_node_name((Node *) rel), trig, "drop trigger");
	}
}

/*
 * classify_rename_trigger: ALTER TRIGGER ... RENAME of a capture trigger.
 */
static void
classify_rename_trigger(Classify *c, RenameStmt *r)
{
	if (r->renameType == OBJECT_TRIGGER && audit_is_audit_trigger(r->subname))
		audit_classify_capture_disabled(c, r->relation ? audit_rv_name(r->relation) : NULL, r->subname,
						 "rename trigger");
}

/*
 * classify_create_trigger: CREATE OR REPLACE TRIGGER under the name of a
 * capture trigger replaces the capture with whatever the statement names
 * (a table owner cannot name audit_log.capture(): it is granted to nobody).
 */
static void
classify_create_trigger(Classify *c, CreateTrigStmt *t)
{
	if (t->replace && audit_is_audit_trigger(t->trigname))
		audit_classify_capture_disabled(c, audit_rv_name(t->relation), t->trigname, "replace trigger");
}

/*
 * audit_classify_capture_off: only the events of a statement that turns a
 * table's capture off (ALTER TABLE ... DISABLE TRIGGER, DROP TRIGGER,
 * ALTER TRIGGER ... RENAME, CREATE OR REPLACE TRIGGER): the event triggers' share of the
 * classification when the hooks are not loaded (capture_ddl_et.c).
 */
List *
audit_classify_capture_off(Node *n, Classify *c)
{
	switch (nodeTag(n))
	{
		case T_AlterTableStmt:
			classify_alter_table(c, (AlterTableStmt *) n);
			break;
		case T_CreateTrigStmt:
			classify_create_trigger(c, (CreateTrigStmt *) n);
			break;
		case T_RenameStmt:
			classify_rename_trigger(c, (RenameStmt *) n);
			break;
		case T_DropStmt:
			if (((DropStmt *) n)->removeType == OBJECT_TRIGGER)
			{
				ListCell   *lc;

				foreach(lc, ((DropStmt *) n)->objects)
					classify_drop_trigger(c, lfirst(lc));
			}
			break;
		default:
			break;
	}
	return c->events;
}

/*
 * classify_drop: DROP of one or more objects: one event per object;
 * extension.dropped for extensions; capture_disabled for our triggers.
 */
static void
classify_drop(Classify *c, DropStmt *d)
{
	ListCell   *lc;
	const char *tag = c->command;

	foreach(lc, d->objects)
	{
		Node	   *obj = lfirst(lc);
		char	   *name = audit_node_name(obj);

		if (d->removeType == OBJECT_EXTENSION)
		{
			UEvent	   *u = audit_classify_add_event(c, "ddl", "extension.dropped", "extension", name, false);
			Json		j;

			j_begin(&j);
			j_bool(&j, "cascade", d->behavior == DROP_CASCADE);
			u->details = j_end(&j);
			continue;
		}
		audit_classify_add_event(c, "ddl", audit_tag_code(tag), audit_objtype_name(d->removeType) ?
				  audit_objtype_name(d->removeType) : audit_tag_object_type(tag), name, false);
		if (d->removeType == OBJECT_TRIGGER)
			classify_drop_trigger(c, obj);
		if (d->removeType == OBJECT_EVENT_TRIGGER && name && strncmp(name, "audit_log_", 10) == 0)
			audit_classify_capture_disabled(c, NULL, name, "drop event trigger");
	}
}

/* ---------- databases and extensions ---------- */

/*
 * classify_database_extension: CREATE/DROP DATABASE, CREATE/ALTER
 * EXTENSION (options as details), ALTER EXTENSION ADD/DROP.
 */
static void
classify_database_extension(Classify *c, Node *n)
{
	List	   *options = NIL;
	UEvent	   *u;
	Json		j;
	ListCell   *lc;

	j_begin(&j);
	switch (nodeTag(n))
	{
		case T_CreatedbStmt:
			options = ((CreatedbStmt *) n)->options;
			u = audit_classify_add_event(c, "ddl", "database.created", "database",
						  ((CreatedbStmt *) n)->dbname, true);
			break;
		case T_CreateExtensionStmt:
			options = ((CreateExtensionStmt *) n)->options;
			u = audit_classify_add_event(c, "ddl", "extension.created", "extension",
						  ((CreateExtensionStmt *) n)->extname, false);
			break;
		case T_AlterExtensionStmt:
			options = ((AlterExtensionStmt *) n)->options;
			u = audit_classify_add_event(c, "ddl", "extension.altered", "extension",
						  ((AlterExtensionStmt *) n)->extname, false);
			break;
		case T_AlterExtensionContentsStmt:
			{
				AlterExtensionContentsStmt *a = (AlterExtensionContentsStmt *) n;

				u = audit_classify_add_event(c, "ddl", "extension.altered", "extension", a->extname, false);
				j_str(&j, "action", a->action > 0 ? "add" : "drop");
				j_str(&j, "object_type", audit_objtype_name(a->objtype));
				j_str(&j, "object", audit_node_name(a->object));
				break;
			}
		case T_DropdbStmt:
			{
				DropdbStmt *d = (DropdbStmt *) n;

				u = audit_classify_add_event(c, "ddl", "database.dropped", "database", d->dbname, true);
				u->details = d->missing_ok ? "{\"if_exists\": true}" : NULL;
				return;
			}
		default:
			return;
	}
	foreach(lc, options)
	{
		DefElem    *d = lfirst_node(DefElem, lc);

		j_str(&j, d->defname, audit_defel_value(d));
	}
	u->details = j_end(&j);
}

/* ---------- schema changes ---------- */

/*
 * classify_generic_ddl: the ddl.<command> event of a schema change, named
 * after its object (qualified after it ran when it did not exist before),
 * with new_name / new_owner where relevant.
 */
static void
classify_generic_ddl(Classify *c, Node *n)
{
	RangeVar   *later = NULL;
	const char *name;
	UEvent	   *u;
	Json		j;

	if (GetCommandLogLevel(n) != LOGSTMT_DDL)
		return;
	name = audit_ddl_name(n, &later);
	u = audit_classify_add_event(c, "ddl", audit_tag_code(c->command),
				  audit_tag_object_type(c->command), name, false);
	u->rv = later;
	if (IsA(n, RenameStmt))
	{
		j_begin(&j);
		j_str(&j, "new_name", ((RenameStmt *) n)->newname);
		u->details = j_end(&j);
	}
	else if (IsA(n, AlterOwnerStmt))
	{
		j_begin(&j);
		j_str(&j, "new_owner", audit_rolespec_name(((AlterOwnerStmt *) n)->newowner));
		u->details = j_end(&j);
	}
}

/*
 * classify_rename: ALTER ROLE ... RENAME is role.renamed; any other
 * rename is a schema change, and renaming one of our triggers also
 * disables capture.
 */
static void
classify_rename(Classify *c, RenameStmt *r)
{
	if (r->renameType == OBJECT_ROLE)
	{
		Json		j;
		UEvent	   *u = audit_classify_add_event(c, "role", "role.renamed", "role", r->subname, true);

		j_begin(&j);
		j_str(&j, "old_name", r->subname);
		j_str(&j, "new_name", r->newname);
		u->details = j_end(&j);
		return;
	}
	classify_rename_trigger(c, r);
	classify_generic_ddl(c, (Node *) r);
}

/*
 * classify_alter_event_trigger: disabling (anything but ENABLE ALWAYS)
 * one of our event triggers disables capture; then the schema change.
 */
static void
classify_alter_event_trigger(Classify *c, AlterEventTrigStmt *a)
{
	if (strncmp(a->trigname, "audit_log_", 10) == 0 && a->tgenabled != TRIGGER_FIRES_ALWAYS)
		audit_classify_capture_disabled(c, NULL, a->trigname, "alter event trigger");
	classify_generic_ddl(c, (Node *) a);
}

/* ---------- dispatch ---------- */

/*
 * audit_classify: the events a statement produces when it runs, by
 * command family.
 */
List *
audit_classify(Node *n, Classify *c)
{
	switch (nodeTag(n))
	{
		case T_CreateRoleStmt:
		case T_AlterRoleStmt:
		case T_DropRoleStmt:
		case T_GrantRoleStmt:
			audit_classify_role(c, n);
			break;
		case T_AlterRoleSetStmt:
		case T_AlterDatabaseSetStmt:
		case T_AlterSystemStmt:
		case T_VariableSetStmt:
			audit_classify_setting(c, n);
			break;
		case T_GrantStmt:
			audit_classify_grant(c, (GrantStmt *) n);
			break;
		case T_AlterDefaultPrivilegesStmt:
			audit_classify_default_privileges(c, (AlterDefaultPrivilegesStmt *) n);
			break;
		case T_CreatedbStmt:
		case T_DropdbStmt:
		case T_CreateExtensionStmt:
		case T_AlterExtensionStmt:
		case T_AlterExtensionContentsStmt:
			classify_database_extension(c, n);
			break;
		case T_DropStmt:
			classify_drop(c, (DropStmt *) n);
			break;
		case T_RenameStmt:
			classify_rename(c, (RenameStmt *) n);
			break;
		case T_AlterTableStmt:
			classify_alter_table(c, (AlterTableStmt *) n);
			classify_generic_ddl(c, n);
			break;
		case T_AlterEventTrigStmt:
			classify_alter_event_trigger(c, (AlterEventTrigStmt *) n);
			break;
		case T_CreateTrigStmt:
			classify_create_trigger(c, (CreateTrigStmt *) n);
			classify_generic_ddl(c, n);
			break;
		default:
			classify_generic_ddl(c, n);
			break;
	}
	return c->events;
}
