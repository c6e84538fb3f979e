/*-------------------------------------------------------------------------
 *
 * capture_dml.c
 *		The C trigger that audits application tables: audit_log.capture().
 *
 * audit_log.enable() attaches it as AFTER ... FOR EACH STATEMENT triggers
 * with transition tables (one per INSERT, UPDATE and DELETE, plus one for
 * TRUNCATE), ENABLE ALWAYS so that session_replication_role = replica does
 * not silence it.  The options travel in the trigger's arguments, so the
 * hot path reads no catalog table and plans nothing:
 *
 *	 0 category  1 INSERT code  2 UPDATE code  3 DELETE code  4 TRUNCATE code
 *	 5 exclude_columns  6 mask_columns  7 when_changed   (5-7: text[] literals)
 *	 8 (on the partitions of an audited partitioned table) the parent's name
 *
 * Each statement's rows are turned into events in batches and written by
 * writer.c in the audited transaction: they commit and roll back with it.
 * Locking: none beyond what the writer takes.  Memory: a per-statement
 * context, reset after every batch.
 *
 *-------------------------------------------------------------------------
 */
#include "audit_log.h"
#include "compat.h"

#include <math.h>

#include "access/htup_details.h"
#include "access/tupdesc.h"
#include "access/xact.h"
#include "catalog/pg_index.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "executor/executor.h"
#include "executor/tuptable.h"
#include "fmgr.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "storage/proc.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/bytea.h"
#include "utils/datetime.h"
#include "utils/datum.h"
#include "utils/float.h"
#include "utils/fmgroids.h"
#include "utils/json.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/numeric.h"
#include "utils/rel.h"
#include "utils/syscache.h"
#include "utils/typcache.h"
#include "utils/tuplestore.h"

PG_FUNCTION_INFO_V1(audit_capture);

#define CAPTURE_NARGS	8
#define CAPTURE_BATCH	1000
#define MASKED_VALUE	"***"

/* What the trigger knows about one column of the audited table. */
typedef struct ColumnInfo
{
	bool		skip;			/* dropped or excluded */
	bool		masked;
	bool		watched;		/* in when_changed */
	bool		is_key;
	char	   *name;
	Oid			typid;
	int16		typlen;
	bool		typbyval;
	FmgrInfo	out;
	char		typalign;
	struct ColumnInfo *elem;	/* arrays: how to write an element, else NULL */
	struct ColumnInfo *fields;	/* composites: one per attribute, else NULL */
	int		   *fieldorder;		/* live attributes in jsonb key order */
	int			nfields;
	TupleDesc	fielddesc;		/* the composite's row type */
} ColumnInfo;

typedef struct CaptureState
{
	Relation	rel;
	TupleDesc	desc;
	int			natts;
	ColumnInfo *cols;
	int		   *jsonorder;		/* columns in jsonb key order (length, bytes) */
	int			njson;
	JsonbPair  *pairs;			/* scratch for one row image */
	int		   *keyatts;		/* primary key attnums (0-based), in key order */
	int			nkeys;
	bool		have_watch;
	bool		on_partition;	/* trigger of a partition of an audited table */
	AuditEvent	proto;			/* common fields of every event */
	AuditEvent *batch;
	int			nbatch;
	MemoryContext batchcxt;
} CaptureState;

/*
 * parse_name_list: the names of a text[] literal trigger argument.
 */
static List *
parse_name_list(const char *literal)
{
	ArrayType  *arr;
	Datum	   *elems;
	bool	   *nulls;
	int			n;
	int			i;
	List	   *result = NIL;

	if (literal == NULL || literal[0] == '\0')
		return NIL;
	arr = DatumGetArrayTypeP(OidInputFunctionCall(F_ARRAY_IN, (char *) literal,
												  TEXTOID, -1));
	deconstruct_array(arr, TEXTOID, -1, false, TYPALIGN_INT, &elems, &nulls, &n);
	for (i = 0; i < n; i++)
		if (!nulls[i])
			result = lappend(result, TextDatumGetCString(elems[i]));
	return result;
}

/*
 * mark_columns: set a flag on the named columns.  A name that no longer
 * exists (the column was renamed or dropped after enable()) returns false,
 * so the caller can fail safe.
 */
static bool
mark_columns(CaptureState *cs, List *names, int flag)
{
	ListCell   *lc;
	bool		all_found = true;

	foreach(lc, names)
	{
		const char *name = lfirst(lc);
		int			i;
		bool		found = false;

		for (i = 0; i < cs->natts; i++)
		{
			if (cs->cols[i].name != NULL && strcmp(cs->cols[i].name, name) == 0)
			{
				if (flag == 0)
					cs->cols[i].skip = true;
				else if (flag == 1)
					cs->cols[i].masked = true;
				else
					cs->cols[i].watched = true;
				found = true;
				break;
			}
		}
		if (!found)
			all_found = false;
	}
	return all_found;
}

/*
 * load_keys: the attributes of the table's primary key, in key order.
 */
static void
load_keys(CaptureState *cs)
{
	Oid			pkoid = audit_primary_key_index(cs->rel);
	HeapTuple	tup;
	Form_pg_index idx;
	int			i;

	cs->nkeys = 0;
	if (!OidIsValid(pkoid))
		return;
	tup = SearchSysCache1(INDEXRELID, ObjectIdGetDatum(pkoid));
	if (!HeapTupleIsValid(tup))
		return;
	idx = (Form_pg_index) GETSTRUCT(tup);
	cs->keyatts = palloc(sizeof(int) * idx->indnkeyatts);
	for (i = 0; i < idx->indnkeyatts; i++)
	{
		int			att = idx->indkey.values[i];

		if (att <= 0)
		{
			cs->nkeys = 0;
			break;
		}
		cs->keyatts[cs->nkeys++] = att - 1;
		cs->cols[att - 1].is_key = true;
	}
	ReleaseSysCache(tup);
}

/*
 * json_key_cmp: jsonb's own key order: shorter keys first, then bytes.
 */
static int
json_key_cmp(const void *a, const void *b, void *arg)
{
	ColumnInfo *cols = (ColumnInfo *) arg;
	const char *ka = cols[*(const int *) a].name;
	const char *kb = cols[*(const int *) b].name;
	size_t		la = strlen(ka);
	size_t		lb = strlen(kb);

	if (la != lb)
		return la < lb ? -1 : 1;
	return memcmp(ka, kb, la);
}

/*
 * sort_json_columns: the audited columns in the order jsonb stores object
 * keys, so row images are built already sorted (no per-row sort).
 */
static void
sort_json_columns(CaptureState *cs)
{
	int			i;

	cs->jsonorder = palloc(sizeof(int) * cs->natts);
	cs->njson = 0;
	for (i = 0; i < cs->natts; i++)
		if (!cs->cols[i].skip)
			cs->jsonorder[cs->njson++] = i;
	qsort_arg(cs->jsonorder, cs->njson, sizeof(int), json_key_cmp, cs->cols);
	cs->pairs = palloc(sizeof(JsonbPair) * Max(cs->njson, 1));
}

/*
 * init_value_info: how to write values of type typid (its name already set):
 * domains as their base type; arrays as JSON arrays of elements written
 * the same way; composites as JSON objects of their attributes (nested
 * composites and arrays too, down to AUDIT_VALUE_DEPTH levels, deeper ones
 * as text).
 */
#define AUDIT_VALUE_DEPTH 8
static void
init_value_info(ColumnInfo *col, Oid typid, int depth)
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
		col->elem = palloc0(sizeof(ColumnInfo));
		init_value_info(col->elem, elemtype, depth + 1);
	}
	else if (typtype == TYPTYPE_COMPOSITE)
	{
		TupleDesc	desc = lookup_rowtype_tupdesc_copy(col->typid, -1);
		int			i;

		col->fielddesc = desc;
		col->fields = palloc0(sizeof(ColumnInfo) * Max(desc->natts, 1));
		col->fieldorder = palloc(sizeof(int) * Max(desc->natts, 1));
		col->nfields = 0;
		for (i = 0; i < desc->natts; i++)
		{
			Form_pg_attribute att = TupleDescAttr(desc, i);

			if (att->attisdropped)
				continue;
			col->fields[i].name = NameStr(att->attname);
			init_value_info(&col->fields[i], att->atttypid, depth + 1);
			col->fieldorder[col->nfields++] = i;
		}
		qsort_arg(col->fieldorder, col->nfields, sizeof(int), json_key_cmp, col->fields);
	}
}

/*
 * init_state: the per-statement view of the audited table and options.
 */
static void
init_state(CaptureState *cs, TriggerData *td)
{
	Trigger    *trig = td->tg_trigger;
	char	  **args = trig->tgargs;
	int			i;
	char	   *nspname;

	if (trig->tgnargs != CAPTURE_NARGS && trig->tgnargs != CAPTURE_NARGS + 1)
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("audit_log.capture() trigger \"%s\" has %d arguments, expected %d",
						trig->tgname, trig->tgnargs, CAPTURE_NARGS),
				 errhint("Attach auditing with audit_log.enable(), not CREATE TRIGGER.")));

	cs->rel = td->tg_relation;
	cs->desc = RelationGetDescr(cs->rel);
	cs->natts = cs->desc->natts;
	cs->cols = palloc0(sizeof(ColumnInfo) * cs->natts);
	for (i = 0; i < cs->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(cs->desc, i);
		ColumnInfo *col = &cs->cols[i];

		if (att->attisdropped)
		{
			col->skip = true;
			continue;
		}
		col->name = NameStr(att->attname);
		init_value_info(col, att->atttypid, 0);
	}

	if (!mark_columns(cs, parse_name_list(args[5]), 0))
		ereport(WARNING,
				(errcode(ERRCODE_UNDEFINED_COLUMN),
				 errmsg("an exclude_columns entry of audited table \"%s\" names no column",
						RelationGetRelationName(cs->rel)),
				 errdetail("A column listed in exclude_columns was renamed or dropped; its values may now be recorded."),
				 errhint("Call audit_log.enable() again with the current column names.")));
	if (!mark_columns(cs, parse_name_list(args[6]), 1))
	{
		/* A masked column was renamed or dropped: never leak a value. */
		ereport(WARNING,
				(errcode(ERRCODE_UNDEFINED_COLUMN),
				 errmsg("a mask_columns entry of audited table \"%s\" names no column: masking every column",
						RelationGetRelationName(cs->rel)),
				 errhint("Call audit_log.enable() again with the current column names.")));
		for (i = 0; i < cs->natts; i++)
			cs->cols[i].masked = true;
	}
	cs->have_watch = (args[7] != NULL && args[7][0] != '\0' && strcmp(args[7], "{}") != 0);
	if (cs->have_watch && !mark_columns(cs, parse_name_list(args[7]), 2))
	{
		/*
		 * A watched column was renamed or dropped: record every update
		 * rather than lose events silently.
		 */
		ereport(WARNING,
				(errcode(ERRCODE_UNDEFINED_COLUMN),
				 errmsg("a when_changed entry of audited table \"%s\" names no column: recording every update",
						RelationGetRelationName(cs->rel)),
				 errhint("Call audit_log.enable() again with the current column names.")));
		cs->have_watch = false;
	}
	load_keys(cs);
	sort_json_columns(cs);

	nspname = get_namespace_name(RelationGetNamespace(cs->rel));
	audit_event_init(&cs->proto, args[0], NULL);
	cs->proto.object_type = "table";
	/*
	 * On a partition, argument 8 names the audited partitioned table; the
	 * partition the statement named goes in details.
	 */
	if (trig->tgnargs > CAPTURE_NARGS)
	{
		JsonbParseState *st = NULL;
		JsonbValue	k;
		JsonbValue	v;
		char	   *pname = quote_qualified_identifier(nspname,
													   RelationGetRelationName(cs->rel));

		cs->proto.object_name = args[CAPTURE_NARGS];
		pushJsonbValue(&st, WJB_BEGIN_OBJECT, NULL);
		k.type = jbvString;
		k.val.string.val = "partition";
		k.val.string.len = strlen("partition");
		pushJsonbValue(&st, WJB_KEY, &k);
		v.type = jbvString;
		v.val.string.val = pname;
		v.val.string.len = strlen(pname);
		pushJsonbValue(&st, WJB_VALUE, &v);
		cs->proto.details = JsonbValueToJsonb(pushJsonbValue(&st, WJB_END_OBJECT, NULL));
		cs->on_partition = true;
	}
	else
		cs->proto.object_name = quote_qualified_identifier(nspname,
														   RelationGetRelationName(cs->rel));
	cs->batch = palloc(sizeof(AuditEvent) * CAPTURE_BATCH);
	cs->nbatch = 0;
	cs->batchcxt = AllocSetContextCreate(CurrentMemoryContext,
										 "audit_log capture batch",
										 ALLOCSET_DEFAULT_SIZES);
}

/*
 * jsonb_to_tree: a jsonb value unpacked into a JsonbValue tree, so that it
 * can be nested in a row image built as a tree.
 */
static void
jsonb_to_tree(Jsonb *jb, JsonbValue *v)
{
	JsonbIterator *it;
	JsonbParseState *state = NULL;
	JsonbValue	tok;
	JsonbValue *res = NULL;
	JsonbIteratorToken r;

	if (JB_ROOT_IS_SCALAR(jb))
	{
		(void) JsonbExtractScalar(&jb->root, v);
		return;
	}
	it = JsonbIteratorInit(&jb->root);
	while ((r = JsonbIteratorNext(&it, &tok, false)) != WJB_DONE)
		res = pushJsonbValue(&state, r, r < WJB_BEGIN_ARRAY ? &tok : NULL);
	*v = *res;
}

static void value_to_jsonb(ColumnInfo *col, Datum value, bool isnull, JsonbValue *v);

/*
 * array_level_to_jsonb: dimension dim of an array (elements from *pos on)
 * as a JSON array, nested for the dimensions below it.
 */
static void
array_level_to_jsonb(ColumnInfo *elem, int dim, int ndim, const int *dims,
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
			value_to_jsonb(elem, values[*pos], nulls[*pos], &v->val.array.elems[i]);
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
array_to_jsonb(ColumnInfo *col, Datum value, JsonbValue *v)
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
composite_to_jsonb(ColumnInfo *col, Datum value, JsonbValue *v)
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
		ColumnInfo *f = &col->fields[i];

		pairs[k].key.type = jbvString;
		pairs[k].key.val.string.val = f->name;
		pairs[k].key.val.string.len = strlen(f->name);
		pairs[k].order = k;
		value_to_jsonb(f, values[i], nulls[i], &pairs[k].value);
	}
	v->type = jbvObject;
	v->val.object.nPairs = col->nfields;
	v->val.object.pairs = pairs;
}

/*
 * value_to_jsonb: one column value as a JsonbValue, the way to_jsonb()
 * would write it for scalars, arrays and composites (but timestamptz always
 * in UTC, intervals, bytea and floats in the default styles); other types
 * as their text form.
 */
static void
value_to_jsonb(ColumnInfo *col, Datum value, bool isnull, JsonbValue *v)
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
					 * (extra_float_digits 1, PostgreSQL's default, whatever
					 * the writer's), as a JSON number.
					 */
					int			save = extra_float_digits;
					char	   *text;

					extra_float_digits = 1;
					text = col->typid == FLOAT4OID ?
						DatumGetCString(DirectFunctionCall1(float4out, value)) :
						float8out_internal(d);
					extra_float_digits = save;
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
		case BYTEAOID:
			{
				/*
				 * In one style whatever the writer's IntervalStyle and
				 * bytea_output (PostgreSQL's defaults): the same value reads
				 * the same in every event.  The output functions cannot fail.
				 */
				int			save_interval = IntervalStyle;
				int			save_bytea = bytea_output;

				IntervalStyle = INTSTYLE_POSTGRES;
				bytea_output = BYTEA_OUTPUT_HEX;
				v->val.string.val = OutputFunctionCall(&col->out, value);
				IntervalStyle = save_interval;
				bytea_output = save_bytea;
				v->type = jbvString;
				v->val.string.len = strlen(v->val.string.val);
				return;
			}
		case JSONBOID:
			jsonb_to_tree(DatumGetJsonbP(value), v);
			return;
		case JSONOID:
			jsonb_to_tree(DatumGetJsonbP(DirectFunctionCall1(jsonb_in,
															 CStringGetDatum(TextDatumGetCString(value)))),
						  v);
			return;
		default:
			break;
	}
	v->type = jbvString;
	v->val.string.val = OutputFunctionCall(&col->out, value);
	v->val.string.len = strlen(v->val.string.val);
}

/*
 * row_to_jsonb: the audited columns of a row as a jsonb object; with
 * "only" set, just the columns flagged in it.  Built as one JsonbValue
 * object whose pairs are already in jsonb key order.
 */
static Jsonb *
row_to_jsonb(CaptureState *cs, TupleTableSlot *slot, const bool *only)
{
	JsonbValue	obj;
	int			k;
	int			n = 0;

	for (k = 0; k < cs->njson; k++)
	{
		int			i = cs->jsonorder[k];
		ColumnInfo *col = &cs->cols[i];
		JsonbPair  *p;

		if (only != NULL && !only[i])
			continue;
		p = &cs->pairs[n];
		p->key.type = jbvString;
		p->key.val.string.val = col->name;
		p->key.val.string.len = strlen(col->name);
		p->order = n++;
		if (col->masked)
		{
			p->value.type = jbvString;
			p->value.val.string.val = MASKED_VALUE;
			p->value.val.string.len = strlen(MASKED_VALUE);
		}
		else
			value_to_jsonb(col, slot->tts_values[i], slot->tts_isnull[i], &p->value);
	}
	obj.type = jbvObject;
	obj.val.object.nPairs = n;
	obj.val.object.pairs = cs->pairs;
	return JsonbValueToJsonb(&obj);
}

/*
 * resource_id_of: the row's primary key as text, comma-joined for
 * composite keys; NULL without a key or when a key column is masked.
 */
static char *
resource_id_of(CaptureState *cs, TupleTableSlot *slot)
{
	StringInfoData buf;
	int			i;

	if (cs->nkeys == 0)
		return NULL;
	initStringInfo(&buf);
	for (i = 0; i < cs->nkeys; i++)
	{
		int			att = cs->keyatts[i];

		if (cs->cols[att].masked || slot->tts_isnull[att])
			return NULL;
		if (i > 0)
			appendStringInfoChar(&buf, ',');
		switch (cs->cols[att].typid)
		{
				/* The usual integer keys without the output function. */
			case INT8OID:
			case INT4OID:
			case INT2OID:
				{
					char		num[MAXINT8LEN + 1];
					int64		v = cs->cols[att].typid == INT8OID ?
						DatumGetInt64(slot->tts_values[att]) :
						cs->cols[att].typid == INT4OID ?
						DatumGetInt32(slot->tts_values[att]) :
						DatumGetInt16(slot->tts_values[att]);

					appendBinaryStringInfo(&buf, num, pg_lltoa(v, num));
					break;
				}
			default:
				appendStringInfoString(&buf, OutputFunctionCall(&cs->cols[att].out,
																slot->tts_values[att]));
		}
	}
	return buf.data;
}

/*
 * flush_batch: write the batched events and free their memory.
 */
static void
flush_batch(CaptureState *cs)
{
	if (cs->nbatch > 0)
		audit_write_events(cs->batch, cs->nbatch);
	cs->nbatch = 0;
	MemoryContextReset(cs->batchcxt);
}

/*
 * add_event: queue one row event, flushing full batches.
 */
static void
add_event(CaptureState *cs, const char *code, const char *command,
		  Jsonb *old_data, Jsonb *new_data, char *resource_id)
{
	AuditEvent *ev = &cs->batch[cs->nbatch++];

	*ev = cs->proto;
	ev->event_type = code;
	ev->command = command;
	ev->old_data = old_data;
	ev->new_data = new_data;
	ev->resource_id = resource_id;
	if (cs->nbatch >= CAPTURE_BATCH)
		flush_batch(cs);
}

/*
 * capture_rows: one event per row of a transition table (INSERT, DELETE).
 */
static void
capture_rows(CaptureState *cs, Tuplestorestate *ts, bool is_insert,
			 const char *code)
{
	TupleTableSlot *slot = MakeSingleTupleTableSlot(cs->desc, &TTSOpsMinimalTuple);
	MemoryContext old;

	tuplestore_rescan(ts);
	while (tuplestore_gettupleslot(ts, true, false, slot))
	{
		Jsonb	   *data;
		char	   *rid;

		slot_getallattrs(slot);
		old = MemoryContextSwitchTo(cs->batchcxt);
		data = row_to_jsonb(cs, slot, NULL);
		rid = resource_id_of(cs, slot);
		MemoryContextSwitchTo(old);
		if (is_insert)
			add_event(cs, code, "INSERT", NULL, data, rid);
		else
			add_event(cs, code, "DELETE", data, NULL, rid);
	}
	ExecDropSingleTupleTableSlot(slot);
}

/*
 * capture_updates: one event per updated row that changed an audited
 * column (and a watched one, with when_changed).  The old and new
 * transition tables hold the rows in the same order.
 */
static void
capture_updates(CaptureState *cs, Tuplestorestate *oldts,
				Tuplestorestate *newts, const char *code)
{
	TupleTableSlot *oslot = MakeSingleTupleTableSlot(cs->desc, &TTSOpsMinimalTuple);
	TupleTableSlot *nslot = MakeSingleTupleTableSlot(cs->desc, &TTSOpsMinimalTuple);
	bool	   *changed = palloc(sizeof(bool) * cs->natts);

	tuplestore_rescan(oldts);
	tuplestore_rescan(newts);
	while (tuplestore_gettupleslot(oldts, true, false, oslot) &&
		   tuplestore_gettupleslot(newts, true, false, nslot))
	{
		bool		any = false;
		bool		watched = false;
		int			i;
		MemoryContext old;
		Jsonb	   *olddata;
		Jsonb	   *newdata;
		char	   *rid;

		slot_getallattrs(oslot);
		slot_getallattrs(nslot);
		for (i = 0; i < cs->natts; i++)
		{
			ColumnInfo *col = &cs->cols[i];
			bool		onull = oslot->tts_isnull[i];
			bool		nnull = nslot->tts_isnull[i];

			changed[i] = false;
			if (col->name == NULL)
				continue;
			if (onull != nnull)
				changed[i] = true;
			else if (!onull)
				changed[i] = !datum_image_eq(oslot->tts_values[i], nslot->tts_values[i],
											 col->typbyval, col->typlen);
			if (changed[i] && col->watched)
				watched = true;
			if (changed[i] && !col->skip)
				any = true;
		}
		if (!any || (cs->have_watch && !watched))
			continue;

		old = MemoryContextSwitchTo(cs->batchcxt);
		olddata = row_to_jsonb(cs, oslot, NULL);
		newdata = row_to_jsonb(cs, nslot, changed);
		rid = resource_id_of(cs, oslot);
		MemoryContextSwitchTo(old);
		add_event(cs, code, "UPDATE", olddata, newdata, rid);
	}
	ExecDropSingleTupleTableSlot(oslot);
	ExecDropSingleTupleTableSlot(nslot);
}

/*
 * truncate_seen: TRUNCATE of a partitioned table fires the truncate
 * triggers of the table and of each partition, in that order, in one
 * command.  One event records it; a partition's own event is kept only when
 * the statement named the partition.
 */
static bool
truncate_seen(CaptureState *cs)
{
	static LocalTransactionId last_lxid = InvalidLocalTransactionId;
	static CommandId last_cid = InvalidCommandId;
	static char last_name[3 * NAMEDATALEN + 8];
	CommandId	cid = GetCurrentCommandId(false);
	bool		same = (last_lxid == audit_my_lxid() && last_cid == cid &&
						strcmp(last_name, cs->proto.object_name) == 0);

	if (cs->on_partition)
		return same;
	last_lxid = audit_my_lxid();
	last_cid = cid;
	strlcpy(last_name, cs->proto.object_name, sizeof(last_name));
	return false;
}

/*
 * audit_capture: the trigger function.  Records the statement's rows as
 * events in the audited transaction.
 */
Datum
audit_capture(PG_FUNCTION_ARGS)
{
	TriggerData *td = (TriggerData *) fcinfo->context;
	CaptureState cs;
	MemoryContext stmtcxt;
	MemoryContext old;
	TriggerEvent ev;
	char	  **args;

	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("audit_log.capture() must be called as a trigger")));
	ev = td->tg_event;
	if (!TRIGGER_FIRED_AFTER(ev) || !TRIGGER_FIRED_FOR_STATEMENT(ev))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("audit_log.capture() must be fired AFTER ... FOR EACH STATEMENT")));

	stmtcxt = AllocSetContextCreate(CurrentMemoryContext,
									"audit_log capture",
									ALLOCSET_DEFAULT_SIZES);
	old = MemoryContextSwitchTo(stmtcxt);

	memset(&cs, 0, sizeof(cs));
	init_state(&cs, td);
	args = td->tg_trigger->tgargs;

	if (TRIGGER_FIRED_BY_INSERT(ev) && td->tg_newtable != NULL)
		capture_rows(&cs, td->tg_newtable, true, args[1]);
	else if (TRIGGER_FIRED_BY_UPDATE(ev) && td->tg_oldtable != NULL &&
			 td->tg_newtable != NULL)
		capture_updates(&cs, td->tg_oldtable, td->tg_newtable, args[2]);
	else if (TRIGGER_FIRED_BY_DELETE(ev) && td->tg_oldtable != NULL)
		capture_rows(&cs, td->tg_oldtable, false, args[3]);
	else if (TRIGGER_FIRED_BY_TRUNCATE(ev) && !truncate_seen(&cs))
		add_event(&cs, args[4], "TRUNCATE", NULL, NULL, NULL);
	flush_batch(&cs);

	MemoryContextSwitchTo(old);
	MemoryContextDelete(stmtcxt);
	return PointerGetDatum(NULL);
}
