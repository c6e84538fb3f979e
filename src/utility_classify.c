/*-------------------------------------------------------------------------
 *
 * utility_classify.c
 *		What a utility statement records: its events (codes, object types
 *		and names, details) built before it runs, with the session's
 *		context at that moment; the statement text with secrets redacted.
 *
 * Name lookups use the syscache without locks or privilege checks and
 * never raise an error (the statement itself checks).  A statement whose
 * text mentions "password" (any case) is stored with every string literal
 * replaced; role and user mapping options never carry their values.
 *
 *-------------------------------------------------------------------------
 */
#include "capture_utility.h"
#include "compat.h"

#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "commands/event_trigger.h"
#include "commands/trigger.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "parser/parse_type.h"
#include "parser/scanner.h"
#include "parser/scansup.h"
#include "tcop/utility.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/timestamp.h"

PG_FUNCTION_INFO_V1(audit_redact);

/* ---------- names ---------- */

/*
 * rolespec_name: the name of a RoleSpec as written (PUBLIC, or the role
 * CURRENT_USER etc. stand for).
 */
static const char *
rolespec_name(RoleSpec *r)
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

static List *
rolespec_names(List *specs)
{
	List	   *names = NIL;
	ListCell   *lc;

	foreach(lc, specs)
	{
		const char *n = rolespec_name(lfirst_node(RoleSpec, lc));

		names = lappend(names, (void *) (n ? n : "?"));
	}
	return names;
}

/*
 * rv_relid: the relation a RangeVar names, InvalidOid if none; never an
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
 * rv_name: schema-qualified name of a relation; NULL when it does not
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
 * node_name: a readable name for an object node of a GRANT or DROP.
 */
static char *
node_name(Node *n)
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

static const char *
objtype_name(ObjectType t)
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
 * tag_object_type: "table" for "CREATE TABLE", "materialized view" for
 * "DROP MATERIALIZED VIEW"...
 */
static char *
tag_object_type(const char *tag)
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
 * is_audit_trigger: one of the triggers enable() attaches.
 */
static bool
is_audit_trigger(const char *name)
{
	return name && (strcmp(name, "audit_log_insert") == 0 || strcmp(name, "audit_log_update") == 0 ||
					strcmp(name, "audit_log_delete") == 0 || strcmp(name, "audit_log_truncate") == 0);
}

/*
 * is_events_relid: audit_log.events or one of its partitions.
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
	if (!OidIsValid(nsp) || nsp != get_namespace_oid(AUDIT_SCHEMA, true))
		return false;
	kind = get_rel_relkind(relid);
	if (kind != RELKIND_RELATION && kind != RELKIND_PARTITIONED_TABLE)
		return false;
	name = get_rel_name(relid);
	return name && (strcmp(name, "events") == 0 || strncmp(name, "events_", 7) == 0);
}

bool
audit_is_events_rv(RangeVar *rv)
{
	return rv && audit_is_events_relid(audit_rv_relid(rv));
}

/* ---------- statement text ---------- */

/*
 * audit_redact_statement: the statement with every string literal
 * replaced by '<redacted>' when its text mentions a password (any letter
 * case); otherwise the statement itself.  If it cannot be scanned, it is
 * withheld altogether.
 */
char *
audit_redact_statement(const char *sql)
{
	const char *p;
	bool		mention = false;
	StringInfoData out;
	MemoryContext cxt = CurrentMemoryContext;

	if (sql == NULL)
		return NULL;
	for (p = sql; *p && !mention; p++)
		if (pg_strncasecmp(p, "password", 8) == 0)
			mention = true;
	if (!mention)
		return (char *) sql;

	initStringInfo(&out);
	PG_TRY();
	{
		core_yyscan_t scanner;
		core_yy_extra_type extra;
		core_YYSTYPE yylval;
		YYLTYPE		yylloc;
		int			copied = 0;
		int			lit_start = -1;
		int			len = strlen(sql);

		scanner = scanner_init(sql, &extra, &ScanKeywords, ScanKeywordTokens);
		for (;;)
		{
			int			tok = core_yylex(&yylval, &yylloc, scanner);
			int			loc = tok ? yylloc : len;

			if (lit_start >= 0)
			{
				int			end = loc;

				while (end > lit_start && scanner_isspace(sql[end - 1]))
					end--;
				appendBinaryStringInfo(&out, sql + copied, lit_start - copied);
				appendStringInfoString(&out, "'<redacted>'");
				copied = end;
				lit_start = -1;
			}
			if (tok == 0)
				break;
			if (audit_string_token(tok))
				lit_start = yylloc;
		}
		scanner_finish(scanner);
		appendStringInfoString(&out, sql + copied);
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(cxt);
		FlushErrorState();
		resetStringInfo(&out);
		appendStringInfoString(&out, "(statement withheld: it may contain a password)");
	}
	PG_END_TRY();
	return out.data;
}

/*
 * audit_redact: audit_log._redact(text): the same redaction, for the event
 * trigger functions and for tests.
 */
Datum
audit_redact(PG_FUNCTION_ARGS)
{
	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	PG_RETURN_TEXT_P(cstring_to_text(audit_redact_statement(text_to_cstring(PG_GETARG_TEXT_PP(0)))));
}

/*
 * statement_text: this statement's part of the query string, redacted.
 */
const char *
audit_statement_text(PlannedStmt *pstmt, const char *query)
{
	char	   *s;

	if (query == NULL)
		return NULL;
	if (pstmt->stmt_location > 0 && pstmt->stmt_location < (int) strlen(query))
		query += pstmt->stmt_location;
	if (pstmt->stmt_len > 0 && pstmt->stmt_len < (int) strlen(query))
		s = pnstrdup(query, pstmt->stmt_len);
	else
		s = pstrdup(query);
	return audit_redact_statement(s);
}

/* ---------- classification ---------- */


static UEvent *
add_event(Classify *c, const char *category, const char *code,
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

/*
 * defel_value: the text of a DefElem's argument, NULL if none.
 */
static char *
defel_value(DefElem *d)
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
			{
				StringInfoData s;
				ListCell   *lc;

				initStringInfo(&s);
				foreach(lc, rolespec_names((List *) a))
					appendStringInfo(&s, "%s%s", s.len ? "," : "", (char *) lfirst(lc));
				return s.data;
			}
			return NULL;
		default:
			return NULL;
	}
}

/*
 * role_options: JSON of the options of CREATE/ALTER ROLE, without the
 * password's value (only whether one was set or removed) and without the
 * member lists (they become membership events).
 */
static char *
role_options(List *options, int *password, bool *others, const char *kind)
{
	Json		j;
	ListCell   *lc;

	*password = 0;
	*others = false;
	j_begin(&j);
	if (kind)
		j_str(&j, "kind", kind);
	foreach(lc, options)
	{
		DefElem    *d = lfirst_node(DefElem, lc);

		if (strcmp(d->defname, "password") == 0)
		{
			*password = d->arg ? 1 : -1;
			continue;
		}
		if (strcmp(d->defname, "rolemembers") == 0)
			continue;
		*others = true;
		if (d->arg && IsA(d->arg, Boolean))
			j_bool(&j, d->defname, boolVal(d->arg));
		else
			j_str(&j, d->defname, defel_value(d));
	}
	return j_end(&j);
}

static void
setting_details(Json *j, VariableSetStmt *set, bool secret)
{
	char	   *value = (set->kind == VAR_SET_VALUE) ? ExtractSetVariableArgs(set) : NULL;

	j_str(j, "setting", set->name);
	if (set->kind == VAR_SET_VALUE)
		j_str(j, "value", secret ? "<redacted>" : value);
	j_str(j, "action", set->kind == VAR_SET_VALUE ? "set" :
		  set->kind == VAR_SET_DEFAULT ? "set default" :
		  set->kind == VAR_RESET ? "reset" : set->kind == VAR_RESET_ALL ? "reset all" : "other");
}

static bool
secret_setting(const char *name)
{
	return name && (strcasestr(name, "password") || strcasestr(name, "secret"));
}

static void
classify_grant(Classify *c, GrantStmt *g)
{
	bool		param = (g->objtype == OBJECT_PARAMETER_ACL);
	bool		cluster = param || g->objtype == OBJECT_DATABASE || g->objtype == OBJECT_TABLESPACE;
	const char *code = param ? "config.parameter_granted" :
		g->is_grant ? "privilege.granted" : "privilege.revoked";
	List	   *privs = NIL;
	List	   *grantees = rolespec_names(g->grantees);
	ListCell   *lc;

	foreach(lc, g->privileges)
	{
		AccessPriv *p = lfirst_node(AccessPriv, lc);

		privs = lappend(privs, p->priv_name ? p->priv_name : "all");
	}
	if (g->privileges == NIL)
		privs = list_make1("all");

	foreach(lc, g->objects)
	{
		Json		j;
		const char *name = node_name(lfirst(lc));
		UEvent	   *u;

		if (g->targtype == ACL_TARGET_ALL_IN_SCHEMA)
			name = psprintf("all %ss in schema %s", objtype_name(g->objtype), strVal(lfirst(lc)));
		u = add_event(c, param ? "config" : "privilege", code,
					  objtype_name(g->objtype), name, cluster);
		j_begin(&j);
		j_str(&j, "action", g->is_grant ? "grant" : "revoke");
		j_strlist(&j, "privileges", privs);
		j_strlist(&j, "grantees", grantees);
		j_bool(&j, "grant_option", g->grant_option);
		if (g->grantor)
			j_str(&j, "grantor", rolespec_name(g->grantor));
		u->details = j_end(&j);
		if (IsA(lfirst(lc), RangeVar) && ((RangeVar *) lfirst(lc))->schemaname == NULL)
			u->rv = (RangeVar *) lfirst(lc);
	}
}

static void
classify_membership(Classify *c, bool grant, List *roles, List *members,
					bool admin, RoleSpec *grantor)
{
	ListCell   *lr;
	ListCell   *lm;

	foreach(lr, roles)
	{
		const char *role = IsA(lfirst(lr), AccessPriv) ?
			((AccessPriv *) lfirst(lr))->priv_name : rolespec_name(lfirst(lr));

		foreach(lm, members)
		{
			Json		j;
			UEvent	   *u = add_event(c, "role",
									  grant ? "role.membership_granted" : "role.membership_revoked",
									  "role", role, true);

			j_begin(&j);
			j_str(&j, "role", role);
			j_str(&j, "member", rolespec_name(lfirst(lm)));
			j_bool(&j, "admin_option", admin);
			if (grantor)
				j_str(&j, "grantor", rolespec_name(grantor));
			u->details = j_end(&j);
		}
	}
}

/*
 * ddl_name: object name of a schema change, and the RangeVar to qualify
 * after it ran when the name is not known before.
 */
static const char *
ddl_name(Node *n, RangeVar **later)
{
	RangeVar   *rv = NULL;
	const char *name = NULL;

	switch (nodeTag(n))
	{
		case T_CreateStmt:
			rv = ((CreateStmt *) n)->relation;
			break;
		case T_CreateForeignTableStmt:
			rv = ((CreateForeignTableStmt *) n)->base.relation;
			break;
		case T_AlterTableStmt:
			rv = ((AlterTableStmt *) n)->relation;
			break;
		case T_IndexStmt:
			{
				IndexStmt  *i = (IndexStmt *) n;

				if (i->idxname)
					name = i->relation->schemaname ?
						psprintf("%s.%s", i->relation->schemaname, i->idxname) : i->idxname;
				else
					rv = i->relation;
				break;
			}
		case T_ViewStmt:
			rv = ((ViewStmt *) n)->view;
			break;
		case T_CreateTableAsStmt:
			rv = ((CreateTableAsStmt *) n)->into->rel;
			break;
		case T_CreateSeqStmt:
			rv = ((CreateSeqStmt *) n)->sequence;
			break;
		case T_AlterSeqStmt:
			rv = ((AlterSeqStmt *) n)->sequence;
			break;
		case T_CreateSchemaStmt:
			name = ((CreateSchemaStmt *) n)->schemaname;
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
		case T_CompositeTypeStmt:
			rv = ((CompositeTypeStmt *) n)->typevar;
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
			name = psprintf("%s on server %s", rolespec_name(((CreateUserMappingStmt *) n)->user),
							((CreateUserMappingStmt *) n)->servername);
			break;
		case T_AlterUserMappingStmt:
			name = psprintf("%s on server %s", rolespec_name(((AlterUserMappingStmt *) n)->user),
							((AlterUserMappingStmt *) n)->servername);
			break;
		case T_DropUserMappingStmt:
			name = psprintf("%s on server %s", rolespec_name(((DropUserMappingStmt *) n)->user),
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
		case T_RenameStmt:
			{
				RenameStmt *r = (RenameStmt *) n;

				if (r->relation)
					rv = r->relation;
				else
					name = node_name(r->object);
				break;
			}
		case T_AlterOwnerStmt:
			{
				AlterOwnerStmt *o = (AlterOwnerStmt *) n;

				name = o->relation ? audit_rv_name(o->relation) : node_name(o->object);
				break;
			}
		case T_AlterObjectSchemaStmt:
			{
				AlterObjectSchemaStmt *o = (AlterObjectSchemaStmt *) n;

				name = o->relation ? audit_rv_name(o->relation) : node_name(o->object);
				break;
			}
		case T_CommentStmt:
			name = node_name(((CommentStmt *) n)->object);
			break;
		default:
			break;
	}
	if (rv)
	{
		name = audit_rv_name(rv);
		if (name == NULL)
		{
			*later = rv;
			name = rv->relname;
		}
	}
	return name;
}

static void
capture_disabled(Classify *c, const char *table, const char *trigger, const char *action)
{
	Json		j;
	UEvent	   *u = add_event(c, "audit", "audit.capture_disabled", "table", table, false);

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
				capture_disabled(c, table, "audit_log_*", action);
		}
		else if (is_audit_trigger(cmd->name))
			capture_disabled(c, table, cmd->name, action);
	}
}

static void
classify_drop(Classify *c, DropStmt *d)
{
	ListCell   *lc;
	const char *tag = c->command;

	foreach(lc, d->objects)
	{
		Node	   *obj = lfirst(lc);
		char	   *name = node_name(obj);

		if (d->removeType == OBJECT_EXTENSION)
		{
			UEvent	   *u = add_event(c, "ddl", "extension.dropped", "extension", name, false);
			Json		j;

			j_begin(&j);
			j_bool(&j, "cascade", d->behavior == DROP_CASCADE);
			u->details = j_end(&j);
			continue;
		}
		add_event(c, "ddl", audit_tag_code(tag), objtype_name(d->removeType) ?
				  objtype_name(d->removeType) : tag_object_type(tag), name, false);
		if (d->removeType == OBJECT_TRIGGER && IsA(obj, List))
		{
			List	   *l = (List *) obj;
			const char *trig = strVal(llast(l));

			if (is_audit_trigger(trig))
			{
				List	   *rel = list_truncate(list_copy(l), list_length(l) - 1);

				capture_disabled(c, node_name((Node *) rel), trig, "drop trigger");
			}
		}
		if (d->removeType == OBJECT_EVENT_TRIGGER && name && strncmp(name, "audit_log_", 10) == 0)
			capture_disabled(c, NULL, name, "drop event trigger");
	}
}

/*
 * classify: the events a statement produces when it runs.
 */
List *
audit_classify(Node *n, Classify *c)
{
	switch (nodeTag(n))
	{
		case T_CreateRoleStmt:
			{
				CreateRoleStmt *s = (CreateRoleStmt *) n;
				int			pw;
				bool		others;
				UEvent	   *u = add_event(c, "role", "role.created", "role", s->role, true);
				ListCell   *lc;

				u->details = role_options(s->options, &pw, &others,
										  s->stmt_type == ROLESTMT_USER ? "user" :
										  s->stmt_type == ROLESTMT_GROUP ? "group" : "role");
				if (pw > 0)
					add_event(c, "role", "role.password_changed", "role", s->role, true)->details =
						"{\"password\": \"set\"}";
				foreach(lc, s->options)
				{
					DefElem    *d = lfirst_node(DefElem, lc);
					RoleSpec   *self = makeNode(RoleSpec);

					self->roletype = ROLESPEC_CSTRING;
					self->rolename = s->role;
					if (strcmp(d->defname, "rolemembers") == 0 || strcmp(d->defname, "adminmembers") == 0)
						classify_membership(c, true, list_make1(self), (List *) d->arg,
											strcmp(d->defname, "adminmembers") == 0, NULL);
					else if (strcmp(d->defname, "addroleto") == 0)
					{
						ListCell   *lr;

						foreach(lr, (List *) d->arg)
							classify_membership(c, true, list_make1(lfirst(lr)), list_make1(self), false, NULL);
					}
				}
				break;
			}
		case T_AlterRoleStmt:
			{
				AlterRoleStmt *s = (AlterRoleStmt *) n;
				const char *role = rolespec_name(s->role);
				int			pw;
				bool		others;
				char	   *opts = role_options(s->options, &pw, &others, NULL);
				ListCell   *lc;

				if (others || (pw == 0 && s->options == NIL))
					add_event(c, "role", "role.altered", "role", role, true)->details = opts;
				if (pw != 0)
					add_event(c, "role", "role.password_changed", "role", role, true)->details =
						pw > 0 ? "{\"password\": \"set\"}" : "{\"password\": \"removed\"}";
				foreach(lc, s->options)
				{
					DefElem    *d = lfirst_node(DefElem, lc);

					if (strcmp(d->defname, "rolemembers") == 0)
						classify_membership(c, s->action > 0, list_make1(s->role), (List *) d->arg, false, NULL);
				}
				break;
			}
		case T_AlterRoleSetStmt:
			{
				AlterRoleSetStmt *s = (AlterRoleSetStmt *) n;
				const char *role = s->role ? rolespec_name(s->role) : "ALL";
				UEvent	   *u = add_event(c, "config", "config.setting_altered", "role", role, true);
				Json		j;

				j_begin(&j);
				j_str(&j, "role", role);
				if (s->database)
					j_str(&j, "database", s->database);
				setting_details(&j, s->setstmt, secret_setting(s->setstmt->name) ||
								(c->statement != NULL && strstr(c->statement, "<redacted>")));
				u->details = j_end(&j);
				break;
			}
		case T_AlterDatabaseSetStmt:
			{
				AlterDatabaseSetStmt *s = (AlterDatabaseSetStmt *) n;
				UEvent	   *u = add_event(c, "config", "config.setting_altered", "database", s->dbname, true);
				Json		j;

				j_begin(&j);
				j_str(&j, "database", s->dbname);
				setting_details(&j, s->setstmt, secret_setting(s->setstmt->name) ||
								(c->statement != NULL && strstr(c->statement, "<redacted>")));
				u->details = j_end(&j);
				break;
			}
		case T_AlterSystemStmt:
			{
				AlterSystemStmt *s = (AlterSystemStmt *) n;
				UEvent	   *u = add_event(c, "config", "config.system_altered", "parameter",
										  s->setstmt->name ? s->setstmt->name : "ALL", true);
				Json		j;

				j_begin(&j);
				setting_details(&j, s->setstmt, secret_setting(s->setstmt->name) ||
								(c->statement != NULL && strstr(c->statement, "<redacted>")));
				u->details = j_end(&j);
				break;
			}
		case T_VariableSetStmt:
			{
				VariableSetStmt *s = (VariableSetStmt *) n;
				const char *code = NULL;

				if (s->name == NULL)
					break;
				if (strcmp(s->name, "session_replication_role") == 0)
					code = "audit.replication_role_changed";
				else if (strncmp(s->name, "audit_log.", 10) == 0 &&
						 strcmp(s->name, "audit_log.actor") != 0 && strcmp(s->name, "audit_log.actor_type") != 0 &&
						 strcmp(s->name, "audit_log.client_addr") != 0 && strcmp(s->name, "audit_log.user_agent") != 0 &&
						 strcmp(s->name, "audit_log.tenant") != 0 && strcmp(s->name, "audit_log.request_id") != 0)
					code = "audit.setting_changed";
				if (code)
				{
					UEvent	   *u = add_event(c, "audit", code, "setting", s->name, false);
					Json		j;

					j_begin(&j);
					setting_details(&j, s, false);
					j_bool(&j, "local", s->is_local);
					u->details = j_end(&j);
				}
				break;
			}
		case T_RenameStmt:
			{
				RenameStmt *r = (RenameStmt *) n;

				if (r->renameType == OBJECT_ROLE)
				{
					Json		j;
					UEvent	   *u = add_event(c, "role", "role.renamed", "role", r->subname, true);

					j_begin(&j);
					j_str(&j, "old_name", r->subname);
					j_str(&j, "new_name", r->newname);
					u->details = j_end(&j);
					break;
				}
				if (r->renameType == OBJECT_TRIGGER && is_audit_trigger(r->subname))
					capture_disabled(c, r->relation ? audit_rv_name(r->relation) : NULL, r->subname, "rename trigger");
				goto generic;
			}
		case T_DropRoleStmt:
			{
				ListCell   *lc;

				foreach(lc, ((DropRoleStmt *) n)->roles)
					add_event(c, "role", "role.dropped", "role", rolespec_name(lfirst(lc)), true);
				break;
			}
		case T_GrantRoleStmt:
			{
				GrantRoleStmt *g = (GrantRoleStmt *) n;

				classify_membership(c, g->is_grant, g->granted_roles, g->grantee_roles,
									audit_grant_role_admin(g), g->grantor);
				break;
			}
		case T_GrantStmt:
			classify_grant(c, (GrantStmt *) n);
			break;
		case T_AlterDefaultPrivilegesStmt:
			{
				AlterDefaultPrivilegesStmt *a = (AlterDefaultPrivilegesStmt *) n;
				List	   *roles = NIL;
				List	   *schemas = NIL;
				List	   *privs = NIL;
				ListCell   *lc;
				Json		j;
				UEvent	   *u;

				foreach(lc, a->options)
				{
					DefElem    *d = lfirst_node(DefElem, lc);
					ListCell   *lv;

					if (strcmp(d->defname, "roles") == 0)
						roles = rolespec_names((List *) d->arg);
					else if (strcmp(d->defname, "schemas") == 0)
						foreach(lv, (List *) d->arg)
							schemas = lappend(schemas, strVal(lfirst(lv)));
				}
				foreach(lc, a->action->privileges)
					privs = lappend(privs, lfirst_node(AccessPriv, lc)->priv_name);
				if (a->action->privileges == NIL)
					privs = list_make1("all");
				u = add_event(c, "privilege", "privilege.defaults_altered",
							  objtype_name(a->action->objtype),
							  schemas ? (list_length(schemas) == 1 ? (char *) linitial(schemas) : NULL) : NULL,
							  false);
				j_begin(&j);
				j_str(&j, "action", a->action->is_grant ? "grant" : "revoke");
				j_str(&j, "object_type", objtype_name(a->action->objtype));
				j_strlist(&j, "privileges", privs);
				j_strlist(&j, "grantees", rolespec_names(a->action->grantees));
				j_strlist(&j, "for_roles", roles ? roles : list_make1((void *) GetUserNameFromId(GetUserId(), true)));
				j_strlist(&j, "schemas", schemas);
				j_bool(&j, "grant_option", a->action->grant_option);
				u->details = j_end(&j);
				break;
			}
		case T_CreatedbStmt:
		case T_CreateExtensionStmt:
		case T_AlterExtensionStmt:
			{
				List	   *options;
				const char *name;
				UEvent	   *u;
				Json		j;
				ListCell   *lc;

				if (IsA(n, CreatedbStmt))
				{
					options = ((CreatedbStmt *) n)->options;
					name = ((CreatedbStmt *) n)->dbname;
					u = add_event(c, "ddl", "database.created", "database", name, true);
				}
				else if (IsA(n, CreateExtensionStmt))
				{
					options = ((CreateExtensionStmt *) n)->options;
					name = ((CreateExtensionStmt *) n)->extname;
					u = add_event(c, "ddl", "extension.created", "extension", name, false);
				}
				else
				{
					options = ((AlterExtensionStmt *) n)->options;
					name = ((AlterExtensionStmt *) n)->extname;
					u = add_event(c, "ddl", "extension.altered", "extension", name, false);
				}
				j_begin(&j);
				foreach(lc, options)
				{
					DefElem    *d = lfirst_node(DefElem, lc);

					j_str(&j, d->defname, defel_value(d));
				}
				u->details = j_end(&j);
				break;
			}
		case T_AlterExtensionContentsStmt:
			{
				AlterExtensionContentsStmt *a = (AlterExtensionContentsStmt *) n;
				UEvent	   *u = add_event(c, "ddl", "extension.altered", "extension", a->extname, false);
				Json		j;

				j_begin(&j);
				j_str(&j, "action", a->action > 0 ? "add" : "drop");
				j_str(&j, "object_type", objtype_name(a->objtype));
				j_str(&j, "object", node_name(a->object));
				u->details = j_end(&j);
				break;
			}
		case T_DropdbStmt:
			{
				DropdbStmt *d = (DropdbStmt *) n;
				UEvent	   *u = add_event(c, "ddl", "database.dropped", "database", d->dbname, true);

				u->details = d->missing_ok ? "{\"if_exists\": true}" : NULL;
				break;
			}
		case T_DropStmt:
			classify_drop(c, (DropStmt *) n);
			break;
		case T_AlterTableStmt:
			classify_alter_table(c, (AlterTableStmt *) n);
			goto generic;
		case T_AlterEventTrigStmt:
			{
				AlterEventTrigStmt *a = (AlterEventTrigStmt *) n;

				if (strncmp(a->trigname, "audit_log_", 10) == 0 && a->tgenabled != TRIGGER_FIRES_ALWAYS)
					capture_disabled(c, NULL, a->trigname, "alter event trigger");
				goto generic;
			}
		default:
	generic:
			if (GetCommandLogLevel(n) == LOGSTMT_DDL)
			{
				RangeVar   *later = NULL;
				const char *name = ddl_name(n, &later);
				UEvent	   *u = add_event(c, "ddl", audit_tag_code(c->command),
										  tag_object_type(c->command), name, false);

				u->rv = later;
				if (IsA(n, RenameStmt))
				{
					Json		j;

					j_begin(&j);
					j_str(&j, "new_name", ((RenameStmt *) n)->newname);
					u->details = j_end(&j);
				}
				else if (IsA(n, AlterOwnerStmt))
				{
					Json		j;

					j_begin(&j);
					j_str(&j, "new_owner", rolespec_name(((AlterOwnerStmt *) n)->newowner));
					u->details = j_end(&j);
				}
			}
			break;
	}
	return c->events;
}
