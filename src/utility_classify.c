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
 * shared_object: an object of the whole cluster (databases, tablespaces;
 * roles, whose comments and labels are shared too).
 */
static bool
shared_object(ObjectType t)
{
	return t == OBJECT_DATABASE || t == OBJECT_TABLESPACE || t == OBJECT_ROLE;
}

/*
 * ddl_is_cluster: a schema change of a shared object, or REASSIGN OWNED
 * (which also gives away databases and tablespaces): a cluster-wide event,
 * like CREATE DATABASE's.
 */
static bool
ddl_is_cluster(Node *n)
{
	switch (nodeTag(n))
	{
		case T_AlterDatabaseStmt:
		case T_AlterDatabaseRefreshCollStmt:
		case T_CreateTableSpaceStmt:
		case T_DropTableSpaceStmt:
		case T_AlterTableSpaceOptionsStmt:
		case T_ReassignOwnedStmt:
			return true;
		case T_RenameStmt:
			return shared_object(((RenameStmt *) n)->renameType);
		case T_AlterOwnerStmt:
			return shared_object(((AlterOwnerStmt *) n)->objectType);
		case T_CommentStmt:
			return shared_object(((CommentStmt *) n)->objtype);
		case T_SecLabelStmt:
			return shared_object(((SecLabelStmt *) n)->objtype);
		default:
			return false;
	}
}

/*
 * ddl_details: what a schema change's event says besides its object: the
 * new name, the new owner (OWNER TO, ALTER TABLE ... OWNER TO, REASSIGN
 * OWNED), the roles of REASSIGN/DROP OWNED, ALTER DATABASE's options; NULL
 * for nothing.
 */
static char *
ddl_details(Node *n)
{
	Json		j;
	ListCell   *lc;

	j_begin(&j);
	switch (nodeTag(n))
	{
		case T_RenameStmt:
			j_str(&j, "new_name", ((RenameStmt *) n)->newname);
			break;
		case T_AlterOwnerStmt:
			j_str(&j, "new_owner", audit_rolespec_name(((AlterOwnerStmt *) n)->newowner));
			break;
		case T_AlterTableStmt:
			foreach(lc, ((AlterTableStmt *) n)->cmds)
			{
				AlterTableCmd *cmd = lfirst_node(AlterTableCmd, lc);

				if (cmd->subtype == AT_ChangeOwner)
					j_str(&j, "new_owner", audit_rolespec_name(cmd->newowner));
			}
			break;
		case T_ReassignOwnedStmt:
			j_strlist(&j, "roles", audit_rolespec_names(((ReassignOwnedStmt *) n)->roles));
			j_str(&j, "new_owner", audit_rolespec_name(((ReassignOwnedStmt *) n)->newrole));
			break;
		case T_DropOwnedStmt:
			j_strlist(&j, "roles", audit_rolespec_names(((DropOwnedStmt *) n)->roles));
			j_bool(&j, "cascade", ((DropOwnedStmt *) n)->behavior == DROP_CASCADE);
			break;
		case T_AlterDatabaseStmt:
			foreach(lc, ((AlterDatabaseStmt *) n)->options)
			{
				DefElem    *d = lfirst_node(DefElem, lc);

				j_str(&j, d->defname, audit_defel_value(d));
			}
			break;
		default:
			break;
	}
	return j.first ? NULL : j_end(&j);
}

/*
 * ddl_object_type: the object type of a schema change's event: from its
 * command tag ("table" for "CREATE TABLE"), but "role" for REASSIGN/DROP
 * OWNED and the labelled object's type for SECURITY LABEL.
 */
static const char *
ddl_object_type(Node *n, const char *tag)
{
	const char *type = NULL;

	if (IsA(n, ReassignOwnedStmt) || IsA(n, DropOwnedStmt))
		type = "role";
	else if (IsA(n, SecLabelStmt))
		type = audit_objtype_name(((SecLabelStmt *) n)->objtype);
	return type ? type : audit_tag_object_type(tag);
}

/*
 * classify_generic_ddl: the ddl.<command> event of a schema change, named
 * after its object (qualified after it ran when it did not exist before),
 * with ddl_details(); cluster-wide for shared objects (ddl_is_cluster).
 */
static void
classify_generic_ddl(Classify *c, Node *n)
{
	RangeVar   *later = NULL;
	const char *name;
	UEvent	   *u;

	if (GetCommandLogLevel(n) != LOGSTMT_DDL)
		return;
	name = audit_ddl_name(n, &later);
	u = audit_classify_add_event(c, "ddl", audit_tag_code(c->command),
				  ddl_object_type(n, c->command), name, ddl_is_cluster(n));
	u->rv = later;
	u->details = ddl_details(n);
}

/*
 * schema_element_rv: the relation an element of CREATE SCHEMA creates or
 * is about (NULL for a GRANT).
 */
static RangeVar *
schema_element_rv(Node *elt)
{
	switch (nodeTag(elt))
	{
		case T_CreateStmt:
			return ((CreateStmt *) elt)->relation;
		case T_CreateSeqStmt:
			return ((CreateSeqStmt *) elt)->sequence;
		case T_ViewStmt:
			return ((ViewStmt *) elt)->view;
		case T_IndexStmt:
			return ((IndexStmt *) elt)->relation;
		case T_CreateTrigStmt:
			return ((CreateTrigStmt *) elt)->relation;
		default:
			return NULL;
	}
}

/*
 * schema_element_qualified: a copy of an element of CREATE SCHEMA named as
 * it runs: its relation in the new schema (CREATE SCHEMA puts it there),
 * and a GRANT's unqualified tables in the new schema when an element
 * creates them (the elements run with the new schema first in
 * search_path; the schema is new, so only they create in it).
 */
static Node *
schema_element_qualified(Node *elt, const char *schema, List *elts)
{
	Node	   *copy = copyObject(elt);
	RangeVar   *rv = schema_element_rv(copy);
	ListCell   *lc;
	ListCell   *le;

	if (rv && rv->schemaname == NULL)
		rv->schemaname = pstrdup(schema);
	if (!IsA(copy, GrantStmt) || ((GrantStmt *) copy)->targtype != ACL_TARGET_OBJECT)
		return copy;
	foreach(lc, ((GrantStmt *) copy)->objects)
	{
		if (!IsA(lfirst(lc), RangeVar) || ((RangeVar *) lfirst(lc))->schemaname)
			continue;
		rv = (RangeVar *) lfirst(lc);
		foreach(le, elts)
		{
			RangeVar   *created = IsA(lfirst(le), CreateStmt) || IsA(lfirst(le), CreateSeqStmt) ||
				IsA(lfirst(le), ViewStmt) ? schema_element_rv(lfirst(le)) : NULL;

			if (created && strcmp(created->relname, rv->relname) == 0)
				rv->schemaname = pstrdup(schema);
		}
	}
	return copy;
}

/*
 * classify_create_schema: CREATE SCHEMA, then each of its elements (they
 * run as subcommands, which the hook does not classify), with its own
 * command tag: a GRANT among them is recorded as any GRANT is.  The
 * elements' events succeed or fail with the statement.
 */
static void
classify_create_schema(Classify *c, CreateSchemaStmt *s)
{
	const char *command = c->command;
	const char *schema = audit_schema_name(s);
	ListCell   *lc;

	classify_generic_ddl(c, (Node *) s);
	foreach(lc, s->schemaElts)
	{
		Node	   *elt = lfirst(lc);

		if (schema)
			elt = schema_element_qualified(elt, schema, s->schemaElts);
		c->command = GetCommandTagName(CreateCommandTag(elt));
		audit_classify(elt, c);
	}
	c->command = command;
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
		case T_CreateSchemaStmt:
			classify_create_schema(c, (CreateSchemaStmt *) n);
			break;
		default:
			classify_generic_ddl(c, n);
			break;
	}
	return c->events;
}
