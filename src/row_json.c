/*-------------------------------------------------------------------------
 *
 * row_json.c
 *		Values as jsonb, the way to_jsonb() writes them, for the row images
 *		(old_data, new_data) of capture_dml.c: scalars, domains as their
 *		base type, arrays as (nested) JSON arrays, composites as objects of
 *		their attributes, jsonb/json as themselves; but timestamptz always
 *		in UTC, intervals, bytea and floats in PostgreSQL's default styles,
 *		money as a number and ranges with their bounds written the same
 *		way, so that the same value reads the same in every event.
 *
 * audit_json_field_init() looks a type up once (syscache, typcache) per
 * statement; audit_value_to_jsonb() then runs per value without catalog
 * access.  No locks; memory in CurrentMemoryContext.
 *
 *-------------------------------------------------------------------------
 */
#include "row_json.h"

#include <math.h>

#include "access/htup_details.h"
#include "catalog/pg_type.h"
#include "common/shortest_dec.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/bytea.h"
#include "utils/datetime.h"
#include "utils/float.h"
#include "utils/fmgroids.h"
#include "utils/json.h"
#include "utils/lsyscache.h"
#include "utils/multirangetypes.h"
#include "utils/numeric.h"
#include "utils/rangetypes.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"
#include "utils/typcache.h"

#include "compat.h"
#include "util.h"

/*
 * audit_json_key_cmp: jsonb's own key order: shorter keys first, then
 * bytes.
 */
int
audit_json_key_cmp(const char *ka, const char *kb)
{
	size_t		la = strlen(ka);
	size_t		lb = strlen(kb);

	if (la != lb)
		return la < lb ? -1 : 1;
	return memcmp(ka, kb, la);
}

/*
 * field_order_cmp: qsort_arg comparator of attribute numbers of a
 * composite (arg: its JsonField array) in jsonb key order.
 */
static int
field_order_cmp(const void *a, const void *b, void *arg)
{
	JsonField  *fields = (JsonField *) arg;

	return audit_json_key_cmp(fields[*(const int *) a].name, fields[*(const int *) b].name);
}

/*
 * audit_json_field_init: how to write values of type typid (its name already set):
 * domains as their base type; arrays as JSON arrays of elements written
 * the same way; composites as JSON objects of their attributes (nested
 * composites and arrays too, down to AUDIT_VALUE_DEPTH levels, deeper ones
 * as text).
 */
void
audit_json_field_init(JsonField *col, Oid typid, int depth)
{
	Oid			elemtype = InvalidOid;
	char		typtype;
	HeapTuple	tup;
	Form_pg_type t;

	/* one catalog lookup for the base type (domains share its output) */
	col->typid = getBaseType(typid);
	tup = SearchSysCache1(TYPEOID, ObjectIdGetDatum(col->typid));
	if (!HeapTupleIsValid(tup))
		elog(ERROR, "cache lookup failed for type %u", col->typid);
	t = (Form_pg_type) GETSTRUCT(tup);
	col->typlen = t->typlen;
	col->typbyval = t->typbyval;
	col->typalign = t->typalign;
	typtype = t->typtype;
	if (IsTrueArrayType(t))
		elemtype = t->typelem;
	fmgr_info(t->typoutput, &col->out);
	ReleaseSysCache(tup);
	if (depth >= AUDIT_VALUE_DEPTH)
		return;

	if (OidIsValid(elemtype))
	{
		col->elem = palloc0(sizeof(JsonField));
		audit_json_field_init(col->elem, elemtype, depth + 1);
	}
	else if (typtype == TYPTYPE_RANGE || typtype == TYPTYPE_MULTIRANGE)
	{
		TypeCacheEntry *tc = lookup_type_cache(col->typid, typtype == TYPTYPE_RANGE ?
											   TYPECACHE_RANGE_INFO : TYPECACHE_MULTIRANGE_INFO);

		col->multirange = typtype == TYPTYPE_MULTIRANGE;
		col->range = col->multirange ? tc->rngtype : tc;
		col->bound = palloc0(sizeof(JsonField));
		audit_json_field_init(col->bound, col->range->rngelemtype->type_id, depth + 1);
	}
	else if (typtype == TYPTYPE_COMPOSITE)
	{
		TupleDesc	desc = lookup_rowtype_tupdesc_copy(col->typid, -1);
		int			i;

		col->fielddesc = desc;
		col->fields = palloc0(sizeof(JsonField) * Max(desc->natts, 1));
		col->fieldorder = palloc(sizeof(int) * Max(desc->natts, 1));
		col->nfields = 0;
		for (i = 0; i < desc->natts; i++)
		{
			Form_pg_attribute att = TupleDescAttr(desc, i);

			if (att->attisdropped)
				continue;
			col->fields[i].name = NameStr(att->attname);
			col->fields[i].namelen = strlen(col->fields[i].name);
			audit_json_field_init(&col->fields[i], att->atttypid, depth + 1);
			col->fieldorder[col->nfields++] = i;
		}
		qsort_arg(col->fieldorder, col->nfields, sizeof(int), field_order_cmp, col->fields);
	}
}

static void container_to_tree(JsonbContainer *jc, JsonbValue *v);

/*
 * tree_value: a value read from a jsonb container, nested containers
 * unpacked too.
 */
static inline void
tree_value(const JsonbValue *src, JsonbValue *dst)
{
	if (src->type == jbvBinary)
		container_to_tree(src->val.binary.data, dst);
	else
		*dst = *src;
}

/*
 * container_to_tree: a jsonb array or object unpacked into a JsonbValue
 * tree.  The keys come already sorted and unique, so the pairs are copied
 * as they are read, without pushJsonbValue()'s sorting and copying.
 * Scalars point into the container.
 */
static void
container_to_tree(JsonbContainer *jc, JsonbValue *v)
{
	JsonbIterator *it = JsonbIteratorInit(jc);
	JsonbValue	tok;
	int			n = JsonContainerSize(jc);
	int			k = 0;

	check_stack_depth();
	if (JsonbIteratorNext(&it, &tok, true) == WJB_BEGIN_ARRAY)
	{
		v->type = jbvArray;
		v->val.array.rawScalar = false;
		v->val.array.elems = palloc(sizeof(JsonbValue) * Max(n, 1));
		while (JsonbIteratorNext(&it, &tok, true) == WJB_ELEM && k < n)
			tree_value(&tok, &v->val.array.elems[k++]);
		v->val.array.nElems = k;
	}
	else
	{
		v->type = jbvObject;
		v->val.object.pairs = palloc(sizeof(JsonbPair) * Max(n, 1));
		while (JsonbIteratorNext(&it, &tok, true) == WJB_KEY && k < n)
		{
			JsonbPair  *p = &v->val.object.pairs[k];

			p->key = tok;
			p->order = k++;
			if (JsonbIteratorNext(&it, &tok, true) != WJB_VALUE)
				elog(ERROR, "unexpected jsonb token in an object");
			tree_value(&tok, &p->value);
		}
		v->val.object.nPairs = k;
	}
}

/*
 * hex4: the value of the four hex digits at p (json_in() checked them).
 */
static unsigned int
hex4(const char *p)
{
	unsigned int code = 0;
	int			k;

	for (k = 0; k < 4; k++)
		code = code * 16 + (isdigit((unsigned char) p[k]) ? p[k] - '0' :
							(p[k] | 0x20) - 'a' + 10);
	return code;
}

/*
 * json_text_jsonb_safe: whether jsonb_in() takes the (valid) json text s:
 * not when a string holds a \u0000 escape, a surrogate escape that is not a
 * high one followed by a low one, or, in a database whose encoding
 * is not UTF-8, a \u escape of a character outside ASCII (it may have none
 * there), nor when a number is beyond numeric (conservatively: a number of
 * over 1000 characters, or with an exponent of more than 3 digits).
 * Backslashes occur only inside strings, and no byte of a multibyte
 * character of a server encoding is ASCII.
 */
static bool
json_text_jsonb_safe(const char *s)
{
	bool		utf8 = GetDatabaseEncoding() == PG_UTF8;
	bool		in_string = false;
	const char *p = s;

	while (*p != '\0')
	{
		if (in_string)
		{
			if (*p == '"')
				in_string = false;
			else if (*p == '\\' && p[1] == 'u')
			{
				unsigned int code = hex4(p + 2);

				if (code == 0 || (!utf8 && code > 0x7f))
					return false;
				/* a surrogate: a high one followed by a low one, else unsafe */
				if (code >= 0xDC00 && code <= 0xDFFF)
					return false;
				if (code >= 0xD800 && code <= 0xDBFF)
				{
					unsigned int low;

					if (p[6] != '\\' || p[7] != 'u')
						return false;
					low = hex4(p + 8);
					if (low < 0xDC00 || low > 0xDFFF)
						return false;
					p += 6;
				}
				p += 5;
			}
			else if (*p == '\\')
				p++;
		}
		else if (*p == '"')
			in_string = true;
		else if (*p == '-' || isdigit((unsigned char) *p))
		{
			const char *start = p;
			const char *exponent = NULL;

			while (*p != '\0' && strchr("0123456789.eE+-", *p) != NULL)
			{
				if (*p == 'e' || *p == 'E')
					exponent = p + 1;
				p++;
			}
			if (p - start > 1000)
				return false;
			if (exponent != NULL)
			{
				if (*exponent == '+' || *exponent == '-')
					exponent++;
				if (p - exponent > 3)
					return false;
			}
			continue;
		}
		p++;
	}
	return true;
}

/*
 * json_value: a jsonb or json value (col->typid) as a jsonb.  A json value
 * jsonb cannot hold (json_text_jsonb_safe()) is the JSON string of its
 * text, rather than an error that would leave its row unwritable.
 */
static Jsonb *
json_value(JsonField *col, Datum value)
{
	char	   *str;
	JsonbValue	v;

	if (col->typid == JSONBOID)
		return DatumGetJsonbP(value);
	str = TextDatumGetCString(value);
	if (json_text_jsonb_safe(str))
		return DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum(str)));
	v.type = jbvString;
	v.val.string.val = str;
	v.val.string.len = strlen(str);
	return JsonbValueToJsonb(&v);
}

/*
 * jsonb_to_tree: a jsonb value unpacked into a JsonbValue tree, so that it
 * can be nested in a row image built as a tree.
 */
static void
jsonb_to_tree(Jsonb *jb, JsonbValue *v)
{
	if (JB_ROOT_IS_SCALAR(jb))
	{
		(void) JsonbExtractScalar(&jb->root, v);
		return;
	}
	container_to_tree(&jb->root, v);
}

/*
 * audit_column_value: as audit_value_to_jsonb(), but a jsonb or json
 * value that is an array or object comes back as its container
 * (jbvBinary), to be copied as it is by audit_jsonb_object(); only a row
 * image's own columns are written this way (JsonbValueToJsonb() cannot
 * nest a container).
 */
void
audit_column_value(JsonField *col, Datum value, bool isnull, JsonbValue *v)
{
	Jsonb	   *jb;

	if (isnull || (col->typid != JSONBOID && col->typid != JSONOID) ||
		col->elem != NULL || col->fields != NULL)
	{
		audit_value_to_jsonb(col, value, isnull, v);
		return;
	}
	jb = json_value(col, value);
	if (JB_ROOT_IS_SCALAR(jb))
	{
		(void) JsonbExtractScalar(&jb->root, v);
		return;
	}
	v->type = jbvBinary;
	v->val.binary.data = &jb->root;
	v->val.binary.len = VARSIZE(jb) - VARHDRSZ;
}

/*
 * array_level_to_jsonb: dimension dim of an array (elements from *pos on)
 * as a JSON array, nested for the dimensions below it.
 */
static void
array_level_to_jsonb(JsonField *elem, int dim, int ndim, const int *dims,
					 Datum *values, bool *nulls, int *pos, JsonbValue *v)
{
	int			i;

	v->type = jbvArray;
	v->val.array.rawScalar = false;
	v->val.array.nElems = dims[dim];
	v->val.array.elems = palloc(sizeof(JsonbValue) * Max(dims[dim], 1));
	for (i = 0; i < dims[dim]; i++)
	{
		if (dim + 1 < ndim)
			array_level_to_jsonb(elem, dim + 1, ndim, dims, values, nulls, pos,
								 &v->val.array.elems[i]);
		else
		{
			audit_value_to_jsonb(elem, values[*pos], nulls[*pos], &v->val.array.elems[i]);
			(*pos)++;
		}
	}
}

/*
 * array_to_jsonb: an array value as a JSON array, as to_jsonb() writes it
 * (a multidimensional array as nested arrays; bounds are not kept), each
 * element written like a scalar column (timestamptz in UTC).
 */
static void
array_to_jsonb(JsonField *col, Datum value, JsonbValue *v)
{
	ArrayType  *arr = DatumGetArrayTypeP(value);
	int			ndim = ARR_NDIM(arr);
	Datum	   *values;
	bool	   *nulls;
	int			n;
	int			pos = 0;
	static const int no_dims[1] = {0};

	if (ndim == 0)
	{
		array_level_to_jsonb(col->elem, 0, 1, no_dims, NULL, NULL, &pos, v);
		return;
	}
	deconstruct_array(arr, ARR_ELEMTYPE(arr), col->elem->typlen, col->elem->typbyval,
					  col->elem->typalign, &values, &nulls, &n);
	array_level_to_jsonb(col->elem, 0, ndim, ARR_DIMS(arr), values, nulls, &pos, v);
}

/*
 * composite_to_jsonb: a composite value as a JSON object of its attributes,
 * as to_jsonb() writes it, each attribute written like a column.
 */
static void
composite_to_jsonb(JsonField *col, Datum value, JsonbValue *v)
{
	HeapTupleHeader td = DatumGetHeapTupleHeader(value);
	HeapTupleData tuple;
	Datum	   *values = palloc(sizeof(Datum) * Max(col->fielddesc->natts, 1));
	bool	   *nulls = palloc(sizeof(bool) * Max(col->fielddesc->natts, 1));
	JsonbPair  *pairs = palloc(sizeof(JsonbPair) * Max(col->nfields, 1));
	int			k;

	tuple.t_len = HeapTupleHeaderGetDatumLength(td);
	ItemPointerSetInvalid(&tuple.t_self);
	tuple.t_tableOid = InvalidOid;
	tuple.t_data = td;
	heap_deform_tuple(&tuple, col->fielddesc, values, nulls);
	for (k = 0; k < col->nfields; k++)
	{
		int			i = col->fieldorder[k];
		JsonField *f = &col->fields[i];

		pairs[k].key.type = jbvString;
		pairs[k].key.val.string.val = f->name;
		pairs[k].key.val.string.len = f->namelen;
		pairs[k].order = k;
		audit_value_to_jsonb(f, values[i], nulls[i], &pairs[k].value);
	}
	v->type = jbvObject;
	v->val.object.nPairs = col->nfields;
	v->val.object.pairs = pairs;
}

static char *value_text(JsonField *col, Datum value);

/*
 * range_append: a range value as range_out() writes it (bounds quoted
 * the same way), each bound as value_text() writes it, to buf.
 */
static void
range_append(StringInfo buf, JsonField *col, RangeType *range)
{
	RangeBound	lower;
	RangeBound	upper;
	bool		empty;
	char		flags = range_get_flags(range);

	range_deserialize(col->range, range, &lower, &upper, &empty);
	if (flags & RANGE_EMPTY)
	{
		appendStringInfoString(buf, "empty");
		return;
	}
	appendStringInfoChar(buf, (flags & RANGE_LB_INC) ? '[' : '(');
	for (int b = 0; b < 2; b++)
	{
		const char *s;
		bool		quote;

		if (b == 1)
			appendStringInfoChar(buf, ',');
		if (!(b == 0 ? RANGE_HAS_LBOUND(flags) : RANGE_HAS_UBOUND(flags)))
			continue;
		s = value_text(col->bound, b == 0 ? lower.val : upper.val);
		quote = s[0] == '\0' || strpbrk(s, "\"\\()[],") != NULL;
		for (const char *c = s; *c != '\0' && !quote; c++)
			quote = isspace((unsigned char) *c);
		if (quote)
			appendStringInfoChar(buf, '"');
		for (const char *c = s; *c != '\0'; c++)
		{
			if (*c == '"' || *c == '\\')
				appendStringInfoChar(buf, *c);
			appendStringInfoChar(buf, *c);
		}
		if (quote)
			appendStringInfoChar(buf, '"');
	}
	appendStringInfoChar(buf, (flags & RANGE_UB_INC) ? ']' : ')');
}

/*
 * value_text: a value as text without the writer's session settings:
 * ranges and multiranges as range_out() and multirange_out() write them,
 * of bounds written this way; the types audit_value_to_jsonb() writes
 * whatever the settings, as the string or number it writes; others by
 * their output function.
 */
static char *
value_text(JsonField *col, Datum value)
{
	JsonbValue	v;

	if (col->range != NULL)
	{
		StringInfoData buf;

		check_stack_depth();
		initStringInfo(&buf);
		if (col->multirange)
		{
			int32		n;
			RangeType **ranges;

			multirange_deserialize(col->range, DatumGetMultirangeTypeP(value), &n, &ranges);
			appendStringInfoChar(&buf, '{');
			for (int32 i = 0; i < n; i++)
			{
				if (i > 0)
					appendStringInfoChar(&buf, ',');
				range_append(&buf, col, ranges[i]);
			}
			appendStringInfoChar(&buf, '}');
		}
		else
			range_append(&buf, col, DatumGetRangeTypeP(value));
		return buf.data;
	}
	switch (col->typid)
	{
		case NUMERICOID:
		case FLOAT4OID:
		case FLOAT8OID:
		case CASHOID:
		case DATEOID:
		case TIMESTAMPOID:
		case TIMESTAMPTZOID:
		case TIMEOID:
		case TIMETZOID:
		case INTERVALOID:
		case BYTEAOID:
			audit_value_to_jsonb(col, value, false, &v);
			if (v.type == jbvString)
				return pnstrdup(v.val.string.val, v.val.string.len);
			if (v.type == jbvNumeric)
				return DatumGetCString(DirectFunctionCall1(numeric_out,
														   NumericGetDatum(v.val.numeric)));
			break;
		default:
			break;
	}
	return OutputFunctionCall(&col->out, value);
}

/*
 * audit_value_to_jsonb: one value as a JsonbValue, the way to_jsonb()
 * would write it for scalars, arrays and composites (but timestamptz always
 * in UTC, intervals, bytea and floats in the default styles, money as a
 * number, ranges and multiranges as value_text() writes them); other types
 * as their text form.
 */
void
audit_value_to_jsonb(JsonField *col, Datum value, bool isnull, JsonbValue *v)
{
	char		buf[MAXDATELEN + 1];

	if (isnull)
	{
		v->type = jbvNull;
		return;
	}
	if (col->elem != NULL)
	{
		array_to_jsonb(col, value, v);
		return;
	}
	if (col->fields != NULL)
	{
		composite_to_jsonb(col, value, v);
		return;
	}
	if (col->range != NULL)
	{
		/* bounds (timestamptz in UTC, ...) as columns are written */
		v->type = jbvString;
		v->val.string.val = value_text(col, value);
		v->val.string.len = strlen(v->val.string.val);
		return;
	}
	switch (col->typid)
	{
		case BOOLOID:
			v->type = jbvBool;
			v->val.boolean = DatumGetBool(value);
			return;
		case INT2OID:
			v->type = jbvNumeric;
			v->val.numeric = int64_to_numeric(DatumGetInt16(value));
			return;
		case INT4OID:
			v->type = jbvNumeric;
			v->val.numeric = int64_to_numeric(DatumGetInt32(value));
			return;
		case INT8OID:
			v->type = jbvNumeric;
			v->val.numeric = int64_to_numeric(DatumGetInt64(value));
			return;
		case NUMERICOID:
			if (!numeric_is_nan(DatumGetNumeric(value)) &&
				!numeric_is_inf(DatumGetNumeric(value)))
			{
				v->type = jbvNumeric;
				v->val.numeric = DatumGetNumeric(value);
				return;
			}
			break;
		case FLOAT4OID:
		case FLOAT8OID:
			{
				double		d = col->typid == FLOAT4OID ?
					DatumGetFloat4(value) : DatumGetFloat8(value);

				if (!isnan(d) && !isinf(d))
				{
					/*
					 * The shortest text that reads back as the same float
					 * (what float4out/float8out write with extra_float_digits
					 * 1, PostgreSQL's default, whatever the writer's; no
					 * setting is touched), as a JSON number.
					 */
					char		text[DOUBLE_SHORTEST_DECIMAL_LEN];

					if (col->typid == FLOAT4OID)
						float_to_shortest_decimal_buf(DatumGetFloat4(value), text);
					else
						double_to_shortest_decimal_buf(d, text);
					v->type = jbvNumeric;
					v->val.numeric = DatumGetNumeric(DirectFunctionCall3(numeric_in,
																		 CStringGetDatum(text),
																		 ObjectIdGetDatum(InvalidOid),
																		 Int32GetDatum(-1)));
					return;
				}
				break;
			}
		case DATEOID:
		case TIMESTAMPOID:
		case TIMESTAMPTZOID:
		case TIMEOID:
		case TIMETZOID:
			{
				/*
				 * timestamptz in UTC, not in the writer's TimeZone: the same
				 * instant reads the same in every event.
				 */
				static const int utc = 0;
				char	   *s = JsonEncodeDateTime(buf, value, col->typid,
												   col->typid == TIMESTAMPTZOID ? &utc : NULL);

				v->type = jbvString;
				v->val.string.val = pstrdup(s);
				v->val.string.len = strlen(s);
				return;
			}
		case INTERVALOID:
			{
				/*
				 * In one style whatever the writer's IntervalStyle
				 * (PostgreSQL's default, postgres), as interval_out writes
				 * it: the same value reads the same in every event.  No
				 * setting is touched, so none can outlive an error.
				 */
				Interval   *span = DatumGetIntervalP(value);
				const char *special = audit_interval_special(span);
				char		ibuf[MAXDATELEN + 1];
				struct pg_itm itm;

				if (special == NULL)
				{
					interval2itm(*span, &itm);
					EncodeInterval(&itm, INTSTYLE_POSTGRES, ibuf);
					special = ibuf;
				}
				v->type = jbvString;
				v->val.string.val = pstrdup(special);
				v->val.string.len = strlen(special);
				return;
			}
		case BYTEAOID:
			{
				/* hex whatever the writer's bytea_output, as byteaout writes it */
				bytea	   *b = DatumGetByteaPP(value);
				size_t		len = VARSIZE_ANY_EXHDR(b);
				char	   *hex = palloc((Size) len * 2 + 3);

				hex[0] = '\\';
				hex[1] = 'x';
				hex_encode(VARDATA_ANY(b), len, hex + 2);
				hex[len * 2 + 2] = '\0';
				v->type = jbvString;
				v->val.string.val = hex;
				v->val.string.len = len * 2 + 2;
				return;
			}
		case CASHOID:
			/* a number, not lc_monetary's currency format */
			v->type = jbvNumeric;
			v->val.numeric = DatumGetNumeric(DirectFunctionCall1(cash_numeric, value));
			return;
		case JSONBOID:
		case JSONOID:
			jsonb_to_tree(json_value(col, value), v);
			return;
		default:
			break;
	}
	v->type = jbvString;
	v->val.string.val = OutputFunctionCall(&col->out, value);
	v->val.string.len = strlen(v->val.string.val);
}
