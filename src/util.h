/*-------------------------------------------------------------------------
 *
 * util.h
 *		Small helpers shared by the capture sources: a JSON object builder
 *		for event details, text <-> jsonb, the client's address, names
 *		made valid text, and SQL arguments as C strings or name lists.
 *
 * The model is pgvector's halfutils.h: one header per set of helpers, the
 * tiny ones inline, the rest in util.c.  None of them takes a lock or
 * touches a catalog; all allocate in CurrentMemoryContext.
 *
 *-------------------------------------------------------------------------
 */
#ifndef AUDIT_UTIL_H
#define AUDIT_UTIL_H

#include "postgres.h"

#include "fmgr.h"
#include "lib/stringinfo.h"
#include "libpq/pqcomm.h"
#include "nodes/pg_list.h"
#include "utils/json.h"
#include "utils/jsonb.h"

/*
 * Json: a JSON object being written, key by key, as text (the details of
 * an event before they become jsonb).
 */
typedef struct Json
{
	StringInfoData s;
	bool		first;
} Json;

/* j_begin: start an empty object. */
static inline void
j_begin(Json *j)
{
	initStringInfo(&j->s);
	appendStringInfoChar(&j->s, '{');
	j->first = true;
}

/* j_key: write a key (and the separator before it). */
static inline void
j_key(Json *j, const char *key)
{
	if (!j->first)
		appendStringInfoString(&j->s, ", ");
	j->first = false;
	escape_json(&j->s, key);
	appendStringInfoString(&j->s, ": ");
}

/* j_str: key: string (NULL: null). */
static inline void
j_str(Json *j, const char *key, const char *val)
{
	j_key(j, key);
	if (val)
		escape_json(&j->s, val);
	else
		appendStringInfoString(&j->s, "null");
}

/* j_bool: key: true/false. */
static inline void
j_bool(Json *j, const char *key, bool val)
{
	j_key(j, key);
	appendStringInfoString(&j->s, val ? "true" : "false");
}

/* j_strlist: key: array of the strings of a List of char *. */
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

/* j_end: close the object; returns its text. */
static inline char *
j_end(Json *j)
{
	appendStringInfoChar(&j->s, '}');
	return j->s.data;
}

/* util.c */
extern Jsonb *audit_text_to_jsonb(const char *s);
extern Jsonb *audit_jsonb_merge(Jsonb *a, Jsonb *b);
extern const char *audit_addr_text(const SockAddr *addr);
extern const char *audit_valid_text(const char *s, int encoding, bool *changed);
extern char *audit_text_arg(FunctionCallInfo fcinfo, int n);
extern List *audit_name_list(const char *literal);

#endif							/* AUDIT_UTIL_H */
