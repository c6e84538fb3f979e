/*-------------------------------------------------------------------------
 *
 * capture_utility.h
 *		Private declarations shared by capture_utility.c (the hooks and
 *		where events go), utility_classify.c (what a statement records) and
 *		capture_ddl_et.c (the event triggers used without the preload).
 *
 *-------------------------------------------------------------------------
 */
#ifndef CAPTURE_UTILITY_H
#define CAPTURE_UTILITY_H

#include "audit_log.h"

#include "lib/stringinfo.h"
#include "nodes/parsenodes.h"
#include "nodes/plannodes.h"
#include "utils/json.h"

/* One event a statement produces. */
typedef struct UEvent
{
	AuditEvent	ev;
	char	   *details;		/* JSON text, NULL for none */
	RangeVar   *rv;				/* name to qualify after the statement ran */
	bool		cluster;		/* cluster-wide: belongs to audit_log.database */
} UEvent;

typedef struct Classify
{
	List	   *events;
	const char *command;
	const char *statement;
} Classify;

/* small JSON builder */

typedef struct Json
{
	StringInfoData s;
	bool		first;
} Json;

static inline void
j_begin(Json *j)
{
	initStringInfo(&j->s);
	appendStringInfoChar(&j->s, '{');
	j->first = true;
}

static inline void
j_key(Json *j, const char *key)
{
	if (!j->first)
		appendStringInfoString(&j->s, ", ");
	j->first = false;
	escape_json(&j->s, key);
	appendStringInfoString(&j->s, ": ");
}

static inline void
j_str(Json *j, const char *key, const char *val)
{
	j_key(j, key);
	if (val)
		escape_json(&j->s, val);
	else
		appendStringInfoString(&j->s, "null");
}

static inline void
j_bool(Json *j, const char *key, bool val)
{
	j_key(j, key);
	appendStringInfoString(&j->s, val ? "true" : "false");
}

static inline void
j_strlist(Json *j, const char *key, List *names)
{
	ListCell   *lc;

	j_key(j, key);
	appendStringInfoChar(&j->s, '[');
	foreach(lc, names)
	{
		if (lc != list_head(names))
			appendStringInfoString(&j->s, ", ");
		escape_json(&j->s, (const char *) lfirst(lc));
	}
	appendStringInfoChar(&j->s, ']');
}

static inline char *
j_end(Json *j)
{
	appendStringInfoChar(&j->s, '}');
	return j->s.data;
}


/* utility_classify.c */
extern Oid	audit_rv_relid(RangeVar *rv);
extern char *audit_rv_name(RangeVar *rv);
extern bool audit_is_events_relid(Oid relid);
extern bool audit_is_events_rv(RangeVar *rv);
extern char *audit_tag_code(const char *tag);
extern const char *audit_statement_text(PlannedStmt *pstmt, const char *query);
extern List *audit_classify(Node *n, Classify *c);

/* capture_utility.c */
extern Jsonb *audit_text_to_jsonb(const char *s);

/* restore.c: what a session restoring a dump may do to the audit tables */
extern bool audit_restore_allows(Node *n);

#endif							/* CAPTURE_UTILITY_H */
