/*-------------------------------------------------------------------------
 *
 * classify_access.c
 *		What statements about access record (part of utility_classify.c's
 *		classification): roles and their passwords, memberships, privileges
 *		on objects and default privileges, and settings (ALTER ROLE /
 *		DATABASE ... SET, ALTER SYSTEM, SET of the audit's own settings).
 *
 * Role options never carry a password's value, only whether one was set
 * or removed; a setting's value is withheld when its name or the
 * statement says it is secret.  Names come from object_names.c (syscache,
 * no locks, never an error).  Events are palloc'd in CurrentMemoryContext.
 *
 *-------------------------------------------------------------------------
 */
#include "utility_classify.h"
#include "compat.h"

#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "utils/builtins.h"
#include "utils/guc.h"

#include "object_names.h"
#include "util.h"

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
			j_str(&j, d->defname, audit_defel_value(d));
	}
	return j_end(&j);
}

/*
 * setting_details: the setting, its value (or <redacted>) and the action
 * of a SET/RESET, into an object being built.
 */
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

/*
 * setting_is_secret: the value of a setting must not be stored: its name
 * says password, secret, passphrase or conninfo (a connection string, such as
 * primary_conninfo, may hold a password in any form), or the statement's
 * text was redacted (it may hold a password).
 */
static bool
setting_is_secret(Classify *c, VariableSetStmt *set)
{
	const char *name = set->name;

	return (name && (strcasestr(name, "password") || strcasestr(name, "secret") ||
					 strcasestr(name, "passphrase") || strcasestr(name, "conninfo"))) ||
		(c->statement != NULL && strstr(c->statement, "<redacted>") != NULL);
}

/*
 * audit_classify_grant: GRANT/REVOKE on objects, one event per object
 * (config.parameter_granted for parameters).
 */
void
audit_classify_grant(Classify *c, GrantStmt *g)
{
	bool		param = (g->objtype == OBJECT_PARAMETER_ACL);
	bool		cluster = param || g->objtype == OBJECT_DATABASE || g->objtype == OBJECT_TABLESPACE;
	const char *code = param ? "config.parameter_granted" :
		g->is_grant ? "privilege.granted" : "privilege.revoked";
	List	   *privs = NIL;
	List	   *grantees = audit_rolespec_names(g->grantees);
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
		const char *name = audit_node_name(lfirst(lc));
		UEvent	   *u;

		if (g->targtype == ACL_TARGET_ALL_IN_SCHEMA)
			name = psprintf("all %ss in schema %s", audit_objtype_name(g->objtype), strVal(lfirst(lc)));
		u = audit_classify_add_event(c, param ? "config" : "privilege", code,
					  audit_objtype_name(g->objtype), name, cluster);
		j_begin(&j);
		j_str(&j, "action", g->is_grant ? "grant" : "revoke");
		j_strlist(&j, "privileges", privs);
		j_strlist(&j, "grantees", grantees);
		j_bool(&j, "grant_option", g->grant_option);
		if (g->grantor)
			j_str(&j, "grantor", audit_rolespec_name(g->grantor));
		u->details = j_end(&j);
		if (IsA(lfirst(lc), RangeVar) && ((RangeVar *) lfirst(lc))->schemaname == NULL)
			u->rv = (RangeVar *) lfirst(lc);
	}
}

/*
 * grant_role_admin: whether GRANT role TO member names WITH ADMIN OPTION
 * (true), or REVOKE names ADMIN OPTION FOR (only that option is revoked).
 */
static bool
grant_role_admin(GrantRoleStmt *g)
{
	ListCell   *lc;

	foreach(lc, audit_grant_role_opts(g))
	{
		DefElem    *d = lfirst_node(DefElem, lc);

		if (strcmp(d->defname, "admin") == 0)
			return g->is_grant ? defGetBoolean(d) : true;
	}
	return false;
}

/*
 * membership_options: GRANT's options beyond ADMIN ("inherit", "set": 16
 * and later), and the option a REVOKE ... OPTION FOR revokes
 * ("option_revoked": the membership stays).
 */
static void
membership_options(GrantRoleStmt *g, Json *j)
{
	ListCell   *lc;

	foreach(lc, audit_grant_role_opts(g))
	{
		DefElem    *d = lfirst_node(DefElem, lc);

		if (!g->is_grant)
			j_str(j, "option_revoked", d->defname);
		else if (strcmp(d->defname, "admin") != 0)
			j_bool(j, d->defname, defGetBoolean(d));
	}
}

/*
 * classify_membership: one event per role and member granted or revoked
 * (stmt: the GRANT/REVOKE with its options, NULL for CREATE/ALTER ROLE).
 */
static void
classify_membership(Classify *c, bool grant, List *roles, List *members,
					bool admin, RoleSpec *grantor, GrantRoleStmt *stmt)
{
	ListCell   *lr;
	ListCell   *lm;

	foreach(lr, roles)
	{
		const char *role = IsA(lfirst(lr), AccessPriv) ?
			((AccessPriv *) lfirst(lr))->priv_name : audit_rolespec_name(lfirst(lr));

		foreach(lm, members)
		{
			Json		j;
			UEvent	   *u = audit_classify_add_event(c, "role",
									  grant ? "role.membership_granted" : "role.membership_revoked",
									  "role", role, true);

			j_begin(&j);
			j_str(&j, "role", role);
			j_str(&j, "member", audit_rolespec_name(lfirst(lm)));
			j_bool(&j, "admin_option", admin);
			if (stmt)
				membership_options(stmt, &j);
			if (grantor)
				j_str(&j, "grantor", audit_rolespec_name(grantor));
			u->details = j_end(&j);
		}
	}
}

/* ---------- roles ---------- */

/*
 * classify_create_role: role.created, role.password_changed, and the
 * memberships of IN ROLE / ROLE / ADMIN.
 */
static void
classify_create_role(Classify *c, CreateRoleStmt *s)
{
	int			pw;
	bool		others;
	UEvent	   *u = audit_classify_add_event(c, "role", "role.created", "role", s->role, true);
	ListCell   *lc;

	u->details = role_options(s->options, &pw, &others,
							  s->stmt_type == ROLESTMT_USER ? "user" :
							  s->stmt_type == ROLESTMT_GROUP ? "group" : "role");
	if (pw > 0)
		audit_classify_add_event(c, "role", "role.password_changed", "role", s->role, true)->details =
			"{\"password\": \"set\"}";
	foreach(lc, s->options)
	{
		DefElem    *d = lfirst_node(DefElem, lc);
		RoleSpec   *self = makeNode(RoleSpec);

		self->roletype = ROLESPEC_CSTRING;
		self->rolename = s->role;
		if (strcmp(d->defname, "rolemembers") == 0 || strcmp(d->defname, "adminmembers") == 0)
			classify_membership(c, true, list_make1(self), (List *) d->arg,
								strcmp(d->defname, "adminmembers") == 0, NULL, NULL);
		else if (strcmp(d->defname, "addroleto") == 0)
		{
			ListCell   *lr;

			foreach(lr, (List *) d->arg)
				classify_membership(c, true, list_make1(lfirst(lr)), list_make1(self), false, NULL, NULL);
		}
	}
}

/*
 * classify_alter_role: role.altered, role.password_changed, and ALTER
 * GROUP ... ADD/DROP USER memberships.
 */
static void
classify_alter_role(Classify *c, AlterRoleStmt *s)
{
	const char *role = audit_rolespec_name(s->role);
	int			pw;
	bool		others;
	char	   *opts = role_options(s->options, &pw, &others, NULL);
	ListCell   *lc;

	if (others || (pw == 0 && s->options == NIL))
		audit_classify_add_event(c, "role", "role.altered", "role", role, true)->details = opts;
	if (pw != 0)
		audit_classify_add_event(c, "role", "role.password_changed", "role", role, true)->details =
			pw > 0 ? "{\"password\": \"set\"}" : "{\"password\": \"removed\"}";
	foreach(lc, s->options)
	{
		DefElem    *d = lfirst_node(DefElem, lc);

		if (strcmp(d->defname, "rolemembers") == 0)
			classify_membership(c, s->action > 0, list_make1(s->role), (List *) d->arg, false, NULL, NULL);
	}
}

/*
 * audit_classify_role: CREATE/ALTER/DROP ROLE, GRANT/REVOKE role.
 */
void
audit_classify_role(Classify *c, Node *n)
{
	ListCell   *lc;

	switch (nodeTag(n))
	{
		case T_CreateRoleStmt:
			classify_create_role(c, (CreateRoleStmt *) n);
			break;
		case T_AlterRoleStmt:
			classify_alter_role(c, (AlterRoleStmt *) n);
			break;
		case T_DropRoleStmt:
			foreach(lc, ((DropRoleStmt *) n)->roles)
				audit_classify_add_event(c, "role", "role.dropped", "role", audit_rolespec_name(lfirst(lc)), true);
			break;
		case T_GrantRoleStmt:
			{
				GrantRoleStmt *g = (GrantRoleStmt *) n;

				classify_membership(c, g->is_grant, g->granted_roles, g->grantee_roles,
									grant_role_admin(g), g->grantor, g);
				break;
			}
		default:
			break;
	}
}

/* ---------- settings ---------- */

/*
 * classify_session_authorization: SET/RESET SESSION AUTHORIZATION, a
 * cluster-wide auth.session_authorization_set: the session's db_user
 * becomes another role (a superuser impersonating it) or the one that
 * logged in again.  The events that follow name the authenticated user in
 * their details (audit_details_for_store()).
 */
static void
classify_session_authorization(Classify *c, VariableSetStmt *s)
{
	const char *role = (s->kind == VAR_SET_VALUE) ? ExtractSetVariableArgs(s) : NULL;
	UEvent	   *u;
	Json		j;

	u = audit_classify_add_event(c, "auth", "auth.session_authorization_set", "role", NULL, true);
	if (role == NULL)
		role = audit_authenticated_user();
	u->ev.object_name = role;
	j_begin(&j);
	j_str(&j, "action", s->kind == VAR_SET_VALUE ? "set" : "reset");
	j_str(&j, "session_user", role);
	j_str(&j, "previous_session_user", u->ev.db_user);
	j_str(&j, "authenticated_user", audit_authenticated_user());
	j_bool(&j, "local", s->is_local);
	u->details = j_end(&j);
}

/*
 * classify_session_setting: SET/RESET of session_replication_role or of
 * an audit_log.* setting that changes what is audited (the context
 * settings, claims of the application, are not events), and SET/RESET
 * SESSION AUTHORIZATION.
 */
static void
classify_session_setting(Classify *c, VariableSetStmt *s)
{
	const char *code = NULL;
	UEvent	   *u;
	Json		j;

	if (s->name == NULL)
		return;
	if (strcmp(s->name, "session_authorization") == 0)
	{
		classify_session_authorization(c, s);
		return;
	}
	if (strcmp(s->name, "session_replication_role") == 0)
		code = "audit.replication_role_changed";
	else if (strncmp(s->name, "audit_log.", 10) == 0 && !audit_is_context_setting(s->name))
		code = "audit.setting_changed";
	if (code == NULL)
		return;
	u = audit_classify_add_event(c, "audit", code, "setting", s->name, false);
	j_begin(&j);
	setting_details(&j, s, false);
	j_bool(&j, "local", s->is_local);
	u->details = j_end(&j);
}

/*
 * audit_classify_setting: ALTER ROLE/DATABASE ... SET, ALTER SYSTEM, SET/RESET.
 */
void
audit_classify_setting(Classify *c, Node *n)
{
	UEvent	   *u;
	Json		j;

	j_begin(&j);
	switch (nodeTag(n))
	{
		case T_AlterRoleSetStmt:
			{
				AlterRoleSetStmt *s = (AlterRoleSetStmt *) n;
				const char *role = s->role ? audit_rolespec_name(s->role) : "ALL";

				u = audit_classify_add_event(c, "config", "config.setting_altered", "role", role, true);
				j_str(&j, "role", role);
				if (s->database)
					j_str(&j, "database", s->database);
				setting_details(&j, s->setstmt, setting_is_secret(c, s->setstmt));
				break;
			}
		case T_AlterDatabaseSetStmt:
			{
				AlterDatabaseSetStmt *s = (AlterDatabaseSetStmt *) n;

				u = audit_classify_add_event(c, "config", "config.setting_altered", "database", s->dbname, true);
				j_str(&j, "database", s->dbname);
				setting_details(&j, s->setstmt, setting_is_secret(c, s->setstmt));
				break;
			}
		case T_AlterSystemStmt:
			{
				AlterSystemStmt *s = (AlterSystemStmt *) n;

				u = audit_classify_add_event(c, "config", "config.system_altered", "parameter",
							  s->setstmt->name ? s->setstmt->name : "ALL", true);
				setting_details(&j, s->setstmt, setting_is_secret(c, s->setstmt));
				break;
			}
		case T_VariableSetStmt:
			classify_session_setting(c, (VariableSetStmt *) n);
			return;
		default:
			return;
	}
	u->details = j_end(&j);
}

/* ---------- privileges ---------- */

/*
 * audit_classify_default_privileges: ALTER DEFAULT PRIVILEGES, one event.
 */
void
audit_classify_default_privileges(Classify *c, AlterDefaultPrivilegesStmt *a)
{
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
			roles = audit_rolespec_names((List *) d->arg);
		else if (strcmp(d->defname, "schemas") == 0)
			foreach(lv, (List *) d->arg)
				schemas = lappend(schemas, strVal(lfirst(lv)));
	}
	foreach(lc, a->action->privileges)
		privs = lappend(privs, lfirst_node(AccessPriv, lc)->priv_name);
	if (a->action->privileges == NIL)
		privs = list_make1("all");
	u = audit_classify_add_event(c, "privilege", "privilege.defaults_altered",
				  audit_objtype_name(a->action->objtype),
				  schemas ? (list_length(schemas) == 1 ? (char *) linitial(schemas) : NULL) : NULL,
				  false);
	j_begin(&j);
	j_str(&j, "action", a->action->is_grant ? "grant" : "revoke");
	j_str(&j, "object_type", audit_objtype_name(a->action->objtype));
	j_strlist(&j, "privileges", privs);
	j_strlist(&j, "grantees", audit_rolespec_names(a->action->grantees));
	j_strlist(&j, "for_roles", roles ? roles : list_make1((void *) GetUserNameFromId(GetUserId(), true)));
	j_strlist(&j, "schemas", schemas);
	j_bool(&j, "grant_option", a->action->grant_option);
	u->details = j_end(&j);
}
