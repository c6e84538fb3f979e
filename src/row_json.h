/*-------------------------------------------------------------------------
 *
 * row_json.h
 *		Values as jsonb for the row images of audited tables (row_json.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef AUDIT_ROW_JSON_H
#define AUDIT_ROW_JSON_H

#include "postgres.h"

#include "access/tupdesc.h"
#include "fmgr.h"
#include "utils/jsonb.h"

/* Nested arrays and composites deeper than this are written as text. */
#define AUDIT_VALUE_DEPTH 8

/*
 * JsonField: a named value (a column, an attribute of a composite; an
 * array element has no name) and how to write its type as JSON.
 */
typedef struct JsonField
{
	char	   *name;			/* the JSON key; NULL: dropped, or an element */
	int			namelen;		/* strlen(name), set with it */
	Oid			typid;			/* the base type (domains resolved) */
	int16		typlen;
	bool		typbyval;
	char		typalign;
	FmgrInfo	out;
	struct JsonField *elem;		/* arrays: how to write an element, else NULL */
	struct JsonField *fields;	/* composites: one per attribute, else NULL */
	int		   *fieldorder;		/* live attributes in jsonb key order */
	int			nfields;
	TupleDesc	fielddesc;		/* the composite's row type */
	struct TypeCacheEntry *range;	/* ranges, multiranges: the range type */
	bool		multirange;
	struct JsonField *bound;	/* ranges, multiranges: how to write a bound */
} JsonField;

extern int	audit_json_key_cmp(const char *a, const char *b);
extern void audit_json_field_init(JsonField *f, Oid typid, int depth);
extern void audit_value_to_jsonb(JsonField *f, Datum value, bool isnull, JsonbValue *v);
extern void audit_column_value(JsonField *f, Datum value, bool isnull, JsonbValue *v);

#endif							/* AUDIT_ROW_JSON_H */
