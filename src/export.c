/*-------------------------------------------------------------------------
 *
 * export.c
 *		audit_log.export(): the matching events as rows of text cells, ready
 *		for COPY ... CSV and for spreadsheets, capped at
 *		audit_log.export_max_rows, itself recorded as an audit.exported event.
 *
 * The WHERE clause comes from audit_log._search_where() (the same as
 * search()), with every filter value inlined so the planner prunes
 * partitions.  Rows are read through one SPI cursor (read-only) with a
 * snapshot taken when the export starts, after the paging horizon
 * (horizon.c), so rows committed by others while an export runs never show
 * up in it, and the count of matching events reported when the export is
 * truncated is taken with the same snapshot.
 *
 * Continuation never skips an event: an export ends below the horizon,
 * the lowest event_id that a transaction still in progress may yet commit
 * (a NOTICE says so when matching events from the horizon on were left
 * out), and the HINT of a stopped export names the last event_id it
 * returned: continuing after it returns what was left out once it has
 * committed, exactly once.
 *
 * Cells: timestamps in UTC ISO 8601, JSON compact (no blanks), numbers as
 * they are; a text cell (or a JSON string) that starts with =, +, -, @, tab
 * or carriage return and is not a plain number gets a leading single quote,
 * so no spreadsheet runs it as a formula.  The stored events are untouched.
 *
 * Transaction and locking: runs in the caller's transaction, takes
 * AccessShareLock on the partitions it reads (as any SELECT); the
 * audit.exported event is written in the same transaction.
 *
 *-------------------------------------------------------------------------
 */
#include "audit_log.h"

#include "access/htup_details.h"

#include <ctype.h>

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/json.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"
#include "utils/tuplestore.h"

PG_FUNCTION_INFO_V1(audit_export);

#define EXPORT_NFILTERS		14	/* the search filters, max_rows, sources */
#define EXPORT_ARG_AFTER	11
#define EXPORT_ARG_MAX_ROWS	12
#define EXPORT_BATCH		1000

/*
 * plain_number: true when s[0..len) is a plain decimal number such as -42,
 * +3.5 or -1e6, which no spreadsheet runs as a formula.
 */
static bool
plain_number(const char *s, int len)
{
	int			i = 0;
	int			digits = 0;

	if (i < len && (s[i] == '-' || s[i] == '+'))
		i++;
	while (i < len && isdigit((unsigned char) s[i]))
		i++, digits++;
	if (i < len && s[i] == '.')
	{
		i++;
		while (i < len && isdigit((unsigned char) s[i]))
			i++, digits++;
	}
	if (digits == 0)
		return false;
	if (i < len && (s[i] == 'e' || s[i] == 'E'))
	{
		int			expdigits = 0;

		i++;
		if (i < len && (s[i] == '-' || s[i] == '+'))
			i++;
		while (i < len && isdigit((unsigned char) s[i]))
			i++, expdigits++;
		if (expdigits == 0)
			return false;
	}
	return i == len;
}

/*
 * needs_quote_prefix: true when a spreadsheet would run the cell s[0..len)
 * as a formula (it starts with =, +, -, @, tab or CR and is no plain number).
 */
static bool
needs_quote_prefix(const char *s, int len)
{
	if (len == 0)
		return false;
	switch (s[0])
	{
		case '=':
		case '@':
		case '\t':
		case '\r':
			return true;
		case '+':
		case '-':
			return !plain_number(s, len);
		default:
			return false;
	}
}

/*
 * text_cell: a text value as a cell, neutralised if it must be.  Returns
 * the datum itself when it needs no change.
 */
static Datum
text_cell(Datum d)
{
	text	   *t = DatumGetTextPP(d);
	const char *s = VARDATA_ANY(t);
	int			len = VARSIZE_ANY_EXHDR(t);
	text	   *out;

	if (!needs_quote_prefix(s, len))
		return PointerGetDatum(t);
	out = (text *) palloc(VARHDRSZ + len + 1);
	SET_VARSIZE(out, VARHDRSZ + len + 1);
	VARDATA(out)[0] = '\'';
	memcpy(VARDATA(out) + 1, s, len);
	return PointerGetDatum(out);
}

/*
 * json_string: append a JSON string (key or value), neutralised like a
 * cell, escaped as JSON.
 */
static void
json_string(StringInfo buf, const char *s, int len)
{
	char	   *str = palloc(len + 2);

	if (needs_quote_prefix(s, len))
	{
		str[0] = '\'';
		memcpy(str + 1, s, len);
		str[len + 1] = '\0';
	}
	else
	{
		memcpy(str, s, len);
		str[len] = '\0';
	}
	escape_json(buf, str);
	pfree(str);
}

/*
 * json_scalar: append one scalar jsonb value.
 */
static void
json_scalar(StringInfo buf, JsonbValue *v)
{
	switch (v->type)
	{
		case jbvNull:
			appendStringInfoString(buf, "null");
			break;
		case jbvString:
			json_string(buf, v->val.string.val, v->val.string.len);
			break;
		case jbvNumeric:
			appendStringInfoString(buf,
								   DatumGetCString(DirectFunctionCall1(numeric_out,
																	   NumericGetDatum(v->val.numeric))));
			break;
		case jbvBool:
			appendStringInfoString(buf, v->val.boolean ? "true" : "false");
			break;
		default:
			elog(ERROR, "unexpected jsonb value type %d", (int) v->type);
	}
}

/*
 * json_cell: a jsonb value as compact JSON text (no blanks), with its
 * strings neutralised.
 */
static Datum
json_cell(Datum d)
{
	Jsonb	   *jb = DatumGetJsonbP(d);
	JsonbIterator *it = JsonbIteratorInit(&jb->root);
	JsonbValue	v;
	JsonbIteratorToken tok;
	StringInfoData buf;
	bool		need_comma = false;
	bool		raw_scalar = false;

	initStringInfo(&buf);
	while ((tok = JsonbIteratorNext(&it, &v, false)) != WJB_DONE)
	{
		switch (tok)
		{
			case WJB_BEGIN_ARRAY:
				if (v.val.array.rawScalar)
				{
					raw_scalar = true;
					break;
				}
				/* FALLTHROUGH */
			case WJB_BEGIN_OBJECT:
				if (need_comma)
					appendStringInfoChar(&buf, ',');
				appendStringInfoChar(&buf, tok == WJB_BEGIN_OBJECT ? '{' : '[');
				need_comma = false;
				break;
			case WJB_END_ARRAY:
			case WJB_END_OBJECT:
				if (!(tok == WJB_END_ARRAY && raw_scalar))
					appendStringInfoChar(&buf, tok == WJB_END_OBJECT ? '}' : ']');
				need_comma = true;
				break;
			case WJB_KEY:
				if (need_comma)
					appendStringInfoChar(&buf, ',');
				json_string(&buf, v.val.string.val, v.val.string.len);
				appendStringInfoChar(&buf, ':');
				need_comma = false;
				break;
			case WJB_VALUE:
			case WJB_ELEM:
				if (need_comma)
					appendStringInfoChar(&buf, ',');
				json_scalar(&buf, &v);
				need_comma = true;
				break;
			default:
				break;
		}
	}
	return PointerGetDatum(cstring_to_text_with_len(buf.data, buf.len));
}

/*
 * timestamp_cell: a timestamptz as UTC ISO 8601, e.g.
 * 2026-11-01T09:30:00.000000Z.
 */
static Datum
timestamp_cell(Datum d)
{
	TimestampTz ts = DatumGetTimestampTz(d);
	struct pg_tm tm;
	fsec_t		fsec;
	char		buf[64];

	if (TIMESTAMP_IS_NOBEGIN(ts))
		return CStringGetTextDatum("-infinity");
	if (TIMESTAMP_IS_NOEND(ts))
		return CStringGetTextDatum("infinity");
	if (timestamp2tm(ts, NULL, &tm, &fsec, NULL, NULL) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE),
				 errmsg("timestamp out of range")));
	snprintf(buf, sizeof(buf), "%04d-%02d-%02dT%02d:%02d:%02d.%06dZ",
			 tm.tm_year, tm.tm_mon, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
			 (int) fsec);
	return CStringGetTextDatum(buf);
}

/*
 * plain_cell: any other value through its type's output function.
 */
static Datum
plain_cell(Datum d, Oid typid)
{
	Oid			outfunc;
	bool		isvarlena;

	getTypeOutputInfo(typid, &outfunc, &isvarlena);
	return CStringGetTextDatum(OidOutputFunctionCall(outfunc, d));
}

/* One export in progress. */
typedef struct ExportRun
{
	int			cap;			/* audit_log.export_max_rows */
	int			limit;			/* rows asked for (cap when not given) */
	bool		explicit_limit;
	char	   *where;			/* from _search_where() */
	Datum		filters;		/* from _search_filters(), for the event */
	int64		horizon;		/* rows from this event_id on wait */
	int64		rows;			/* rows returned */
	int64		last_id;		/* event_id of the last one */
	int64		matching;		/* counted when truncated by the cap; -1 */
	bool		truncated;		/* more rows than limit */
	bool		stopped;		/* stopped at the horizon */
} ExportRun;

/*
 * export_limit: the rows an export may return: max_rows when given
 * (between 1 and the cap), else the cap.
 */
static void
export_limit(FunctionCallInfo fcinfo, ExportRun *run)
{
	run->cap = run->limit = audit_export_max_rows;
	run->explicit_limit = !PG_ARGISNULL(EXPORT_ARG_MAX_ROWS);
	if (!run->explicit_limit)
		return;
	run->limit = PG_GETARG_INT32(EXPORT_ARG_MAX_ROWS);
	if (run->limit < 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("max_rows must be at least 1"),
				 errhint("Pass the number of rows wanted, or NULL for the cap audit_log.export_max_rows (%d).", run->cap)));
	if (run->limit > run->cap)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("max_rows %d is above the export cap of %d rows", run->limit, run->cap),
				 errdetail("The setting audit_log.export_max_rows caps every export."),
				 errhint("Export in pieces with after_event_id, or ask a superuser to raise audit_log.export_max_rows.")));
	/* max_rows at the cap: a truncation is the cap's, with its WARNING */
	if (run->limit == run->cap)
		run->explicit_limit = false;
}

/*
 * export_where: the WHERE clause of the export (search()'s, which
 * validates the filters) and the filters as jsonb, through SPI.
 */
static void
export_where(FunctionCallInfo fcinfo, ExportRun *run)
{
	Oid			argtypes[EXPORT_NFILTERS];
	Datum		args[EXPORT_NFILTERS];
	char		nulls[EXPORT_NFILTERS];
	bool		with_sources = PG_NARGS() >= EXPORT_NFILTERS;
	bool		isnull;

	for (int i = 0; i < EXPORT_NFILTERS; i++)
	{
		/* The 1.0 SQL has no sources (the last argument): NULL. */
		bool		given = i < PG_NARGS();

		argtypes[i] = i == EXPORT_NFILTERS - 1 ? TEXTARRAYOID :
			get_fn_expr_argtype(fcinfo->flinfo, i);
		args[i] = given ? PG_GETARG_DATUM(i) : (Datum) 0;
		nulls[i] = !given || PG_ARGISNULL(i) ? 'n' : ' ';
	}
	if (SPI_execute_with_args(with_sources ?
							  "SELECT audit_log._search_where($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $14),"
							  " audit_log._search_filters($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)" :
							  "SELECT audit_log._search_where($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12),"
							  " audit_log._search_filters($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
							  with_sources ? EXPORT_NFILTERS : EXPORT_NFILTERS - 1,
							  argtypes, args, nulls, true, 1) != SPI_OK_SELECT ||
		SPI_processed != 1)
		elog(ERROR, "could not build the export query");
	run->where = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
	run->filters = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull);
}

/*
 * export_cells: the text cells of one stored row.
 */
static void
export_cells(TupleDesc td, Datum *raw, bool *isnull, Datum *values)
{
	for (int i = 0; i < td->natts; i++)
	{
		Datum		d = raw[i];
		Oid			typid = TupleDescAttr(td, i)->atttypid;

		if (isnull[i])
		{
			values[i] = (Datum) 0;
			continue;
		}
		switch (typid)
		{
			case TEXTOID:
				values[i] = text_cell(d);
				break;
			case JSONBOID:
				values[i] = json_cell(d);
				break;
			case TIMESTAMPTZOID:
				values[i] = timestamp_cell(d);
				break;
			default:
				values[i] = plain_cell(d, typid);
				break;
		}
	}
}

/*
 * export_rows: read the matching events in event_id order through one
 * cursor, below the paging horizon and with the snapshot taken after it
 * (left pushed for the count), into the result set.
 */
static void
export_rows(ReturnSetInfo *rsinfo, ExportRun *run)
{
	StringInfoData q;
	SPIPlanPtr	plan;
	Portal		portal;
	MemoryContext rowcxt;

	initStringInfo(&q);
	appendStringInfoString(&q, "SELECT ");
	audit_event_columns_sql(&q, "e", Min(rsinfo->setDesc->natts, AUDIT_NCOLUMNS));
	appendStringInfo(&q, " FROM audit_log.events e WHERE %s ORDER BY e.event_id LIMIT %lld",
					 run->where, (long long) run->limit + 1);
	plan = SPI_prepare_cursor(q.data, 0, NULL, 0);
	if (plan == NULL)
		elog(ERROR, "could not prepare the export query: %s", SPI_result_code_string(SPI_result));
	/* The horizon, then the snapshot of the rows and of the count. */
	run->horizon = audit_horizon_push_snapshot();
	portal = SPI_cursor_open(NULL, plan, NULL, NULL, true);

	rowcxt = AllocSetContextCreate(CurrentMemoryContext, "audit_log export row",
								   ALLOCSET_DEFAULT_SIZES);
	while (!run->truncated && !run->stopped)
	{
		SPITupleTable *tt;
		TupleDesc	td;
		uint64		n;

		SPI_cursor_fetch(portal, true, EXPORT_BATCH);
		tt = SPI_tuptable;
		n = SPI_processed;
		if (n == 0)
			break;
		td = tt->tupdesc;
		if (td->natts != rsinfo->setDesc->natts)
			elog(ERROR, "export_row does not match the events table");
		for (uint64 r = 0; r < n; r++)
		{
			Datum		values[AUDIT_NCOLUMNS];
			bool		isnull[AUDIT_NCOLUMNS];
			Datum		raw[AUDIT_NCOLUMNS];
			MemoryContext old;
			int64		id;

			if (run->rows == run->limit)
			{
				run->truncated = true;
				break;
			}
			CHECK_FOR_INTERRUPTS();
			old = MemoryContextSwitchTo(rowcxt);
			/* One pass over the row, not one attribute walk per column. */
			heap_deform_tuple(tt->vals[r], td, raw, isnull);
			id = DatumGetInt64(raw[AUDIT_COL_event_id]);
			/* the horizon is this database's: a source's events come committed */
			if (id >= run->horizon &&
				(td->natts <= AUDIT_COL_source || isnull[AUDIT_COL_source]))
			{
				MemoryContextSwitchTo(old);
				run->stopped = true;
				break;
			}
			export_cells(td, raw, isnull, values);
			tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, isnull);
			MemoryContextSwitchTo(old);
			MemoryContextReset(rowcxt);
			run->last_id = id;
			run->rows++;
		}
		SPI_freetuptable(tt);
	}
	SPI_cursor_close(portal);
	MemoryContextDelete(rowcxt);
}

/*
 * export_report: tell the caller how the export ended when it did not
 * return every match: truncated by the cap (a WARNING with the number of
 * matching events, counted with the export's snapshot), by max_rows, or
 * stopped at the horizon (NOTICEs); each names where to continue.
 */
static void
export_report(FunctionCallInfo fcinfo, ExportRun *run)
{
	if (run->truncated && !run->explicit_limit)
	{
		char	   *q = psprintf("SELECT pg_catalog.count(*) FROM audit_log.events e WHERE %s",
								 run->where);
		bool		isnull;

		if (SPI_execute(q, true, 1) != SPI_OK_SELECT || SPI_processed != 1)
			elog(ERROR, "could not count the matching events");
		run->matching = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0],
													SPI_tuptable->tupdesc, 1, &isnull));
		ereport(WARNING,
				(errmsg("export truncated to %lld of %lld matching events",
						(long long) run->rows, (long long) run->matching),
				 errdetail("audit_log.export_max_rows caps an export at %d rows.", run->cap),
				 errhint("Continue with after_event_id => %lld.", (long long) run->last_id)));
	}
	else if (run->truncated)
		ereport(NOTICE,
				(errmsg("export stopped at max_rows (%d); more events match", run->limit),
				 errhint("Continue with after_event_id => %lld.", (long long) run->last_id)));
	else if (run->stopped)
	{
		int64		cont = run->last_id;

		if (run->rows == 0)
			cont = PG_ARGISNULL(EXPORT_ARG_AFTER) ? 0 : PG_GETARG_INT64(EXPORT_ARG_AFTER);
		ereport(NOTICE,
				(errmsg("export stopped below a transaction still in progress; more events match"),
				 errdetail("Events from event_id %lld on wait until every transaction that may still commit an event below them has ended.",
						   (long long) run->horizon),
				 errhint("Continue with after_event_id => %lld.", (long long) cont)));
	}
}

/*
 * export_record: every export is an event (audit.exported), with its
 * filters and what it returned; written in the caller's transaction, and
 * queued as a failure if that transaction rolls back (the rows have left);
 * in a read-only transaction, queued when it ends.
 */
static void
export_record(ExportRun *run)
{
	AuditEvent	ev;
	Oid			dtypes[5] = {JSONBOID, INT8OID, BOOLOID, INT8OID, BOOLOID};
	Datum		dargs[5];
	char		dnulls[5] = {' ', ' ', ' ', run->matching < 0 ? 'n' : ' ', run->stopped ? ' ' : 'n'};
	bool		isnull;

	dargs[0] = run->filters;
	dargs[1] = Int64GetDatum(run->rows);
	dargs[2] = BoolGetDatum(run->truncated);
	dargs[3] = Int64GetDatum(run->matching);
	dargs[4] = BoolGetDatum(run->stopped);
	if (SPI_execute_with_args("SELECT pg_catalog.jsonb_strip_nulls(pg_catalog.jsonb_build_object("
							  "'filters', $1, 'rows', $2, 'truncated', $3, 'matching', $4,"
							  " 'held_back', $5))",
							  5, dtypes, dargs, dnulls, true, 1) != SPI_OK_SELECT ||
		SPI_processed != 1)
		elog(ERROR, "could not build the export details");
	audit_event_init(&ev, "audit", "audit.exported");
	ev.status = "success";
	ev.object_type = "table";
	ev.object_name = "audit_log.events";
	ev.command = "SELECT";
	ev.details = DatumGetJsonbP(SPI_getbinval(SPI_tuptable->vals[0],
											  SPI_tuptable->tupdesc, 1, &isnull));
	/*
	 * A read-only transaction (BI tools often connect so) cannot write it:
	 * it is queued when the transaction ends.
	 */
	if (XactReadOnly && !RecoveryInProgress() && audit_pend_unwritten(&ev))
		return;
	audit_write_event(&ev);
	/* the rows are the caller's already: a rollback must not erase this */
	audit_pend_written(&ev);
}

/*
 * audit_export: audit_log.export(usernames, event_types, categories,
 * resource_ids, user_types, ip_addresses, since, until, text_query,
 * statuses, tenants, after_event_id, max_rows, sources) -> SETOF
 * export_row.
 */
Datum
audit_export(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	ExportRun	run;

	memset(&run, 0, sizeof(run));
	run.matching = -1;
	export_limit(fcinfo, &run);
	InitMaterializedSRF(fcinfo, MAT_SRF_USE_EXPECTED_DESC);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	export_where(fcinfo, &run);
	export_rows(rsinfo, &run);
	export_report(fcinfo, &run);
	PopActiveSnapshot();
	export_record(&run);
	SPI_finish();
	return (Datum) 0;
}
