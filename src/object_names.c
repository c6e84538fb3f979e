/*-------------------------------------------------------------------------
 *
 * object_names.c
 *		How events name things: roles (RoleSpec), relations (RangeVar),
 *		the object nodes of GRANT, DROP, COMMENT..., option values, object
 *		types, command tags and their ddl.* codes, and the object a schema
 *		change is about.
 *
 * Lookups use the syscache without locks or privilege checks and never
 * raise an error: a name is looked up before the statement runs, and the
 * statement itself checks and locks.  Results are palloc'd in
 * CurrentMemoryContext (or point into the parse tree).
 *
 *-------------------------------------------------------------------------
 */
#include "object_names.h"

#include "catalog/namespace.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "parser/parse_type.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"

/*
 * audit_rolespec_name: the name of a RoleSpec as written (PUBLIC, or the role
 * CURRENT_USER etc. stand for).
 */
const char *
audit_rolespec_name(RoleSpec *r)
{
	if (r == NULL)
		return NULL;
	switch (r->roletype)
	{
		case ROLESPEC_CSTRING:
			return r->rolename;
		case ROLESPEC_PUBLIC:
			return "PUBLIC";
		case ROLESPEC_CURRENT_ROLE:
		case ROLESPEC_CURRENT_USER:
			return GetUserNameFromId(GetUserId(), true);
		case ROLESPEC_SESSION_USER:
			return GetUserNameFromId(GetSessionUserId(), true);
	}
	return NULL;
}

/*
 * audit_rolespec_names: the names of a list of RoleSpecs ("?" for one
 * that cannot be named).
 */
List *
audit_rolespec_names(List *specs)
{
	List	   *names = NIL;
	ListCell   *lc;

	foreach(lc, specs)
	{
		const char *n = audit_rolespec_name(lfirst_node(RoleSpec, lc));

		names = lappend(names, (void *) (n ? n : "?"));
	}
	return names;
}

/*
 * rolespec_list_text: the names of a list of RoleSpecs, comma-separated.
 */
static char *
rolespec_list_text(List *specs)
{
	StringInfoData s;
	ListCell   *lc;

	initStringInfo(&s);
	foreach(lc, audit_rolespec_names(specs))
		appendStringInfo(&s, "%s%s", s.len ? "," : "", (char *) lfirst(lc));
	return s.data;
}

/*
 * audit_schema_name: the schema CREATE SCHEMA creates (named after its
 * owner when the statement names only AUTHORIZATION).
 */
const char *
audit_schema_name(CreateSchemaStmt *s)
{
	return s->schemaname ? s->schemaname : audit_rolespec_name(s->authrole);
}

/*
 * audit_rv_relid: the relation a RangeVar names, InvalidOid if none; never an
 * error (no privilege check on the schema: the statement itself checks).
 */
Oid
audit_rv_relid(RangeVar *rv)
{
	if (rv->schemaname)
	{
		Oid			nsp = get_namespace_oid(rv->schemaname, true);

		return OidIsValid(nsp) ? get_relname_relid(rv->relname, nsp) : InvalidOid;
	}
	return RelnameGetRelid(rv->relname);
}

/*
 * audit_rv_name: schema-qualified name of a relation; NULL when it does not
 * exist (yet) and no schema was written.
 */
char *
audit_rv_name(RangeVar *rv)
{
	Oid			relid;

	if (rv->schemaname)
		return psprintf("%s.%s", rv->schemaname, rv->relname);
	relid = audit_rv_relid(rv);
	if (!OidIsValid(relid))
		return NULL;
	return psprintf("%s.%s", get_namespace_name(get_rel_namespace(relid)), rv->relname);
}

/*
 * audit_node_name: a readable name for an object node of a GRANT or DROP.
 */
char *
audit_node_name(Node *n)
{
	if (n == NULL)
		return NULL;
	switch (nodeTag(n))
	{
		case T_RangeVar:
			{
				char	   *s = audit_rv_name((RangeVar *) n);

				return s ? s : ((RangeVar *) n)->relname;
			}
		case T_String:
			return strVal(n);
		case T_Integer:
			return psprintf("%d", intVal(n));
		case T_Float:
			return castNode(Float, n)->fval;
		case T_List:
			{
				List	   *l = (List *) n;

				if (list_length(l) == 1 && IsA(linitial(l), String))
				{
					RangeVar   *rv = makeRangeVar(NULL, strVal(linitial(l)), -1);
					Oid			relid = audit_rv_relid(rv);

					if (OidIsValid(relid))
						return audit_rv_name(rv);
				}
				if (list_length(l) > 0 && IsA(linitial(l), String))
					return NameListToString(l);
				return NULL;
			}
		case T_ObjectWithArgs:
			return NameListToString(((ObjectWithArgs *) n)->objname);
		case T_TypeName:
			return TypeNameToString((TypeName *) n);
		default:
			return NULL;
	}
}

/*
 * audit_objtype_name: the lower-case name of an object type ("table",
 * "foreign-data wrapper"...), NULL for one we do not name.
 */
const char *
audit_objtype_name(ObjectType t)
{
	switch (t)
	{
		case OBJECT_TABLE: return "table";
		case OBJECT_SEQUENCE: return "sequence";
		case OBJECT_VIEW: return "view";
		case OBJECT_MATVIEW: return "materialized view";
		case OBJECT_FOREIGN_TABLE: return "foreign table";
		case OBJECT_INDEX: return "index";
		case OBJECT_FUNCTION: return "function";
		case OBJECT_PROCEDURE: return "procedure";
		case OBJECT_ROUTINE: return "routine";
		case OBJECT_DATABASE: return "database";
		case OBJECT_SCHEMA: return "schema";
		case OBJECT_LANGUAGE: return "language";
		case OBJECT_TABLESPACE: return "tablespace";
		case OBJECT_FDW: return "foreign-data wrapper";
		case OBJECT_FOREIGN_SERVER: return "server";
		case OBJECT_TYPE: return "type";
		case OBJECT_DOMAIN: return "domain";
		case OBJECT_LARGEOBJECT: return "large object";
		case OBJECT_PARAMETER_ACL: return "parameter";
		case OBJECT_EXTENSION: return "extension";
		case OBJECT_TRIGGER: return "trigger";
		case OBJECT_EVENT_TRIGGER: return "event trigger";
		case OBJECT_ROLE: return "role";
		case OBJECT_POLICY: return "policy";
		case OBJECT_RULE: return "rule";
		case OBJECT_COLUMN: return "column";
		default: return NULL;
	}
}

/*
 * audit_tag_object_type: "table" for "CREATE TABLE", "materialized view" for
 * "DROP MATERIALIZED VIEW"...
 */
char *
audit_tag_object_type(const char *tag)
{
	const char *sp = strchr(tag, ' ');
	char	   *s;
	char	   *p;

	if (strcmp(tag, "SELECT INTO") == 0)
		return "table";
	if (sp == NULL)
		return NULL;
	s = pstrdup(sp + 1);
	if ((p = strstr(s, " AS")) != NULL && p[3] == '\0')
		*p = '\0';
	for (p = s; *p; p++)
		*p = pg_tolower((unsigned char) *p);
	return s;
}

/*
 * audit_tag_code: the event code of a command tag: "ddl.create_table"
 * for "CREATE TABLE".
 */
char *
audit_tag_code(const char *tag)
{
	char	   *s = psprintf("ddl.%s", tag);
	char	   *p;

	for (p = s; *p; p++)
		*p = (*p == ' ') ? '_' : pg_tolower((unsigned char) *p);
	return s;
}

/*
 * audit_defel_value: the text of a DefElem's argument, NULL if none.
 */
char *
audit_defel_value(DefElem *d)
{
	Node	   *a = d->arg;

	if (a == NULL)
		return NULL;
	switch (nodeTag(a))
	{
		case T_String:
			return strVal(a);
		case T_Integer:
			return psprintf("%d", intVal(a));
		case T_Float:
			return castNode(Float, a)->fval;
		case T_Boolean:
			return boolVal(a) ? "true" : "false";
		case T_TypeName:
			return TypeNameToString((TypeName *) a);
		case T_List:
			if (list_length((List *) a) > 0 && IsA(linitial((List *) a), RoleSpec))
				return rolespec_list_text((List *) a);
			return NULL;
		default:
			return NULL;
	}
}

/*
 * ddl_relation: the relation a schema change creates or alters, when the
 * statement names one (NULL otherwise).
 */
static RangeVar *
ddl_relation(Node *n)
{
	switch (nodeTag(n))
	{
		case T_CreateStmt:
			return ((CreateStmt *) n)->relation;
		case T_CreateForeignTableStmt:
			return ((CreateForeignTableStmt *) n)->base.relation;
		case T_AlterTableStmt:
			return ((AlterTableStmt *) n)->relation;
		case T_ViewStmt:
			return ((ViewStmt *) n)->view;
		case T_CreateTableAsStmt:
			return ((CreateTableAsStmt *) n)->into->rel;
		case T_CreateSeqStmt:
			return ((CreateSeqStmt *) n)->sequence;
		case T_AlterSeqStmt:
			return ((AlterSeqStmt *) n)->sequence;
		case T_CompositeTypeStmt:
			return ((CompositeTypeStmt *) n)->typevar;
		case T_IndexStmt:
			/* an index without a name is named after its table */
			return ((IndexStmt *) n)->idxname ? NULL : ((IndexStmt *) n)->relation;
		case T_RenameStmt:
			return ((RenameStmt *) n)->relation;
		default:
			return NULL;
	}
}

/*
 * ddl_object_name: the name of the object of a schema change that is not
 * a relation named by a RangeVar (see ddl_relation); NULL if unknown.
 */
static const char *
ddl_object_name(Node *n)
{
	const char *name = NULL;

	switch (nodeTag(n))
	{
		case T_IndexStmt:
			{
				IndexStmt  *i = (IndexStmt *) n;

				name = i->relation->schemaname ?
					psprintf("%s.%s", i->relation->schemaname, i->idxname) : i->idxname;
				break;
			}
		case T_RenameStmt:
			/* databases, tablespaces, schemas: the name is the subname */
			name = ((RenameStmt *) n)->object ? audit_node_name(((RenameStmt *) n)->object) :
				((RenameStmt *) n)->subname;
			break;
		case T_CreateSchemaStmt:
			name = audit_schema_name((CreateSchemaStmt *) n);
			break;
		case T_AlterDatabaseStmt:
			name = ((AlterDatabaseStmt *) n)->dbname;
			break;
		case T_AlterDatabaseRefreshCollStmt:
			name = ((AlterDatabaseRefreshCollStmt *) n)->dbname;
			break;
		case T_CreateTableSpaceStmt:
			name = ((CreateTableSpaceStmt *) n)->tablespacename;
			break;
		case T_DropTableSpaceStmt:
			name = ((DropTableSpaceStmt *) n)->tablespacename;
			break;
		case T_AlterTableSpaceOptionsStmt:
			name = ((AlterTableSpaceOptionsStmt *) n)->tablespacename;
			break;
		case T_ReassignOwnedStmt:
			name = rolespec_list_text(((ReassignOwnedStmt *) n)->roles);
			break;
		case T_DropOwnedStmt:
			name = rolespec_list_text(((DropOwnedStmt *) n)->roles);
			break;
		case T_SecLabelStmt:
			name = audit_node_name(((SecLabelStmt *) n)->object);
			break;
		case T_AlterPublicationStmt:
			name = ((AlterPublicationStmt *) n)->pubname;
			break;
		case T_AlterSubscriptionStmt:
			name = ((AlterSubscriptionStmt *) n)->subname;
			break;
		case T_DropSubscriptionStmt:
			name = ((DropSubscriptionStmt *) n)->subname;
			break;
		case T_CreateFunctionStmt:
			name = NameListToString(((CreateFunctionStmt *) n)->funcname);
			break;
		case T_AlterFunctionStmt:
			name = NameListToString(((AlterFunctionStmt *) n)->func->objname);
			break;
		case T_CreateTrigStmt:
			{
				CreateTrigStmt *t = (CreateTrigStmt *) n;
				char	   *rel = audit_rv_name(t->relation);

				name = psprintf("%s on %s", t->trigname, rel ? rel : t->relation->relname);
				break;
			}
		case T_RuleStmt:
			name = ((RuleStmt *) n)->rulename;
			break;
		case T_CreatePolicyStmt:
			name = ((CreatePolicyStmt *) n)->policy_name;
			break;
		case T_AlterPolicyStmt:
			name = ((AlterPolicyStmt *) n)->policy_name;
			break;
		case T_CreateEnumStmt:
			name = NameListToString(((CreateEnumStmt *) n)->typeName);
			break;
		case T_CreateDomainStmt:
			name = NameListToString(((CreateDomainStmt *) n)->domainname);
			break;
		case T_DefineStmt:
			name = NameListToString(((DefineStmt *) n)->defnames);
			break;
		case T_CreateFdwStmt:
			name = ((CreateFdwStmt *) n)->fdwname;
			break;
		case T_AlterFdwStmt:
			name = ((AlterFdwStmt *) n)->fdwname;
			break;
		case T_CreateForeignServerStmt:
			name = ((CreateForeignServerStmt *) n)->servername;
			break;
		case T_CreateUserMappingStmt:
			name = psprintf("%s on server %s", audit_rolespec_name(((CreateUserMappingStmt *) n)->user),
							((CreateUserMappingStmt *) n)->servername);
			break;
		case T_AlterUserMappingStmt:
			name = psprintf("%s on server %s", audit_rolespec_name(((AlterUserMappingStmt *) n)->user),
							((AlterUserMappingStmt *) n)->servername);
			break;
		case T_DropUserMappingStmt:
			name = psprintf("%s on server %s", audit_rolespec_name(((DropUserMappingStmt *) n)->user),
							((DropUserMappingStmt *) n)->servername);
			break;
		case T_CreatePublicationStmt:
			name = ((CreatePublicationStmt *) n)->pubname;
			break;
		case T_CreateSubscriptionStmt:
			name = ((CreateSubscriptionStmt *) n)->subname;
			break;
		case T_CreateEventTrigStmt:
			name = ((CreateEventTrigStmt *) n)->trigname;
			break;
		case T_AlterEventTrigStmt:
			name = ((AlterEventTrigStmt *) n)->trigname;
			break;
		case T_AlterOwnerStmt:
			{
				AlterOwnerStmt *o = (AlterOwnerStmt *) n;

				name = o->relation ? audit_rv_name(o->relation) : audit_node_name(o->object);
				break;
			}
		case T_AlterObjectSchemaStmt:
			{
				AlterObjectSchemaStmt *o = (AlterObjectSchemaStmt *) n;

				name = o->relation ? audit_rv_name(o->relation) : audit_node_name(o->object);
				break;
			}
		case T_CommentStmt:
			name = audit_node_name(((CommentStmt *) n)->object);
			break;
		case T_AlterObjectDependsStmt:
			{
				AlterObjectDependsStmt *d = (AlterObjectDependsStmt *) n;

				/* a trigger as CREATE TRIGGER names it: "trigger on table" */
				if (d->objectType == OBJECT_TRIGGER && d->relation && d->object &&
					IsA(d->object, List) && list_length((List *) d->object) >= 1)
				{
					char	   *relname = audit_rv_name(d->relation);

					name = psprintf("%s on %s", strVal(llast((List *) d->object)),
									relname ? relname : d->relation->relname);
				}
				else
					name = d->relation ? audit_rv_name(d->relation) : audit_node_name(d->object);
				break;
			}
		default:
			break;
	}
	return name;
}

/*
 * audit_ddl_name: the object name of a schema change, and the RangeVar to
 * qualify after it ran when the name is not known before.
 */
const char *
audit_ddl_name(Node *n, RangeVar **later)
{
	RangeVar   *rv = ddl_relation(n);
	const char *name;

	if (rv == NULL)
		return ddl_object_name(n);
	name = audit_rv_name(rv);
	if (name == NULL)
	{
		*later = rv;
		name = rv->relname;
	}
	return name;
}
