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
 *	 8 (on every partition of an audited partitioned table, at any depth)
 *	   the audited table's name: events name it, details.partition the
 *	   partition the statement named (kept up to date by _sync_capture())
 *
 * What the trigger knows of the table (columns, types, options, key) is
 * built once per trigger and kept across statements by capture_table.c.
 * Row images (old_data, new_data) are written by row_json.c, the batch of
 * events by writer.c.  Each statement's rows are turned into events in batches and written by
 * writer.c in the audited transaction: they commit and roll back with it.
 * Locking: none beyond what the writer takes.  Memory: a per-statement
 * context, reset after every batch.
 *
 *-------------------------------------------------------------------------
 */
#include "audit_log.h"
#include "compat.h"

#include "access/htup_details.h"
#include "access/tupdesc.h"
#include "access/xact.h"
#include "catalog/partition.h"
#include "catalog/pg_index.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "executor/executor.h"
#include "executor/tuptable.h"
#include "fmgr.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "storage/proc.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/syscache.h"
#include "utils/tuplestore.h"

#include "capture_table.h"
#include "jsonb_object.h"
#include "row_json.h"
#include "util.h"

PG_FUNCTION_INFO_V1(audit_capture);

#define CAPTURE_BATCH	1000
#define MASKED_VALUE	"***"

/*
 * CaptureState: one statement's capture: the table's entry (cached across
 * statements, capture_table.c) and the events being batched.
 */
typedef struct CaptureState
{
	Relation	rel;
	TupleDesc	desc;
	CaptureTable *t;
	int			natts;			/* t->natts */
	AuditedColumn *cols;		/* t->cols */
	JsonbPair  *pairs;			/* scratch for one row image */
	AuditEvent	proto;			/* common fields of every event */
	AuditEvent *batch;
	int			nbatch;
	int			maxbatch;		/* room in batch */
	MemoryContext batchcxt;
} CaptureState;

/*
 * init_state: the per-statement view of the audited table and options, for
 * at most nrows events.
 */
static void
init_state(CaptureState *cs, TriggerData *td, int64 nrows)
{
	Trigger    *trig = td->tg_trigger;
	char	  **args = trig->tgargs;
	CaptureTable *t;

	if (trig->tgnargs != CAPTURE_NARGS && trig->tgnargs != CAPTURE_NARGS + 1)
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("audit_log.capture() trigger \"%s\" has %d arguments, expected %d",
						trig->tgname, trig->tgnargs, CAPTURE_NARGS),
				 errhint("Attach auditing with audit_log.enable(), not CREATE TRIGGER.")));

	cs->rel = td->tg_relation;
	cs->desc = RelationGetDescr(cs->rel);
	cs->t = t = audit_capture_table(td);
	cs->natts = t->natts;
	cs->cols = t->cols;

	if (t->exclude_missing)
		ereport(WARNING,
				(errcode(ERRCODE_UNDEFINED_COLUMN),
				 errmsg("an exclude_columns entry of audited table \"%s\" names no column",
						RelationGetRelationName(cs->rel)),
				 errdetail("A column listed in exclude_columns was renamed or dropped; its values may now be recorded."),
				 errhint("Call audit_log.enable() again with the current column names.")));
	if (t->mask_missing)
		ereport(WARNING,
				(errcode(ERRCODE_UNDEFINED_COLUMN),
				 errmsg("a mask_columns entry of audited table \"%s\" names no column: masking every column",
						RelationGetRelationName(cs->rel)),
				 errhint("Call audit_log.enable() again with the current column names.")));
	if (t->watch_missing)
		ereport(WARNING,
				(errcode(ERRCODE_UNDEFINED_COLUMN),
				 errmsg("a when_changed entry of audited table \"%s\" names no column: recording every update",
						RelationGetRelationName(cs->rel)),
				 errhint("Call audit_log.enable() again with the current column names.")));

	cs->pairs = palloc(sizeof(JsonbPair) * Max(t->njson, 1));
	audit_event_init(&cs->proto, args[ARG_CATEGORY], NULL);
	cs->proto.object_type = "table";
	cs->proto.object_name = t->object_name;
	cs->proto.details = t->details;
	/* as many events as the statement has rows, CAPTURE_BATCH at most */
	cs->maxbatch = (int) Max(Min(nrows, CAPTURE_BATCH), 1);
	cs->batch = palloc(sizeof(AuditEvent) * cs->maxbatch);
	cs->nbatch = 0;
	/*
	 * A first block for the whole batch (about 1 kB an event), kept across
	 * its resets: a bulk statement does not free and allocate its blocks
	 * again for every batch.
	 */
	cs->batchcxt = AllocSetContextCreate(CurrentMemoryContext,
										 "audit_log capture batch",
										 ALLOCSET_DEFAULT_MINSIZE,
										 Max(ALLOCSET_DEFAULT_INITSIZE,
											 MAXALIGN((Size) cs->maxbatch * 1024)),
										 ALLOCSET_DEFAULT_MAXSIZE);
}

/*
 * image_pairs: the pairs of a row image into pairs (room for every audited
 * column), in jsonb key order; with "only" set, just the columns flagged
 * in it.  as_tree: every value as a JsonbValue tree (for
 * JsonbValueToJsonb()), else jsonb and json columns as their containers
 * (for audit_jsonb_object()).  Returns how many.
 */
static int
image_pairs(CaptureState *cs, TupleTableSlot *slot, const bool *only,
			JsonbPair *pairs, bool as_tree)
{
	int			n = 0;

	for (int k = 0; k < cs->t->njson; k++)
	{
		int			i = cs->t->jsonorder[k];
		AuditedColumn *col = &cs->cols[i];
		JsonbPair  *p;

		if (only != NULL && !only[i])
			continue;
		p = &pairs[n];
		p->key.type = jbvString;
		p->key.val.string.val = col->json.name;
		p->key.val.string.len = col->json.namelen;
		p->order = n++;
		if (col->masked)
		{
			p->value.type = jbvString;
			p->value.val.string.val = MASKED_VALUE;
			p->value.val.string.len = strlen(MASKED_VALUE);
		}
		else if (as_tree)
			audit_value_to_jsonb(&col->json, slot->tts_values[i], slot->tts_isnull[i], &p->value);
		else
			audit_column_value(&col->json, slot->tts_values[i], slot->tts_isnull[i], &p->value);
	}
	return n;
}

#if defined(USE_ASSERT_CHECKING) || defined(AUDIT_CHECK_JSONB)
/*
 * check_image: the row image audit_jsonb_object() wrote is byte for byte
 * the one JsonbValueToJsonb() writes of the same row (assert-enabled
 * builds).
 */
static void
check_image(CaptureState *cs, TupleTableSlot *slot, const bool *only, Jsonb *image)
{
	JsonbValue	obj;
	Jsonb	   *expected;

	obj.type = jbvObject;
	obj.val.object.pairs = palloc(sizeof(JsonbPair) * Max(cs->t->njson, 1));
	obj.val.object.nPairs = image_pairs(cs, slot, only, obj.val.object.pairs, true);
	expected = JsonbValueToJsonb(&obj);
	if (VARSIZE(expected) != VARSIZE(image) ||
		memcmp(expected, image, VARSIZE(image)) != 0)
		elog(ERROR, "row image of %s differs from JsonbValueToJsonb()'s (%u and %u bytes)",
			 cs->t->object_name, VARSIZE(image), VARSIZE(expected));
}
#endif

/*
 * row_to_jsonb: the audited columns of a row as a jsonb object; with
 * "only" set, just the columns flagged in it.  Written by
 * audit_jsonb_object(), jsonb and json columns copied in as they are
 * stored.
 */
static Jsonb *
row_to_jsonb(CaptureState *cs, TupleTableSlot *slot, const bool *only)
{
	Jsonb	   *image = audit_jsonb_object(cs->pairs,
										   image_pairs(cs, slot, only, cs->pairs, false));

#if defined(USE_ASSERT_CHECKING) || defined(AUDIT_CHECK_JSONB)
	check_image(cs, slot, only, image);
#endif
	return image;
}

/*
 * int_key_text: an integer key value as text into num (MAXINT8LEN + 1
 * bytes), without the output function; its length, or -1 when typid is
 * not an integer type.
 */
static int
int_key_text(Oid typid, Datum value, char *num)
{
	switch (typid)
	{
		case INT8OID:
			return pg_lltoa(DatumGetInt64(value), num);
		case INT4OID:
			return pg_lltoa(DatumGetInt32(value), num);
		case INT2OID:
			return pg_lltoa(DatumGetInt16(value), num);
		default:
			return -1;
	}
}

/*
 * resource_id_of: the row's primary key as text, comma-joined for
 * composite keys; NULL without a key or when a key column is masked.
 * The usual single integer key is written without a StringInfo (1 kB a
 * row).
 */
static char *
resource_id_of(CaptureState *cs, TupleTableSlot *slot)
{
	StringInfoData buf;
	int			i;

	for (i = 0; i < cs->t->nkeys; i++)
	{
		int			att = cs->t->keyatts[i];

		if (cs->cols[att].masked || slot->tts_isnull[att])
			return NULL;
	}
	if (cs->t->nkeys == 0)
		return NULL;
	if (cs->t->nkeys == 1)
	{
		int			att = cs->t->keyatts[0];
		char	   *num = palloc(MAXINT8LEN + 1);

		if (int_key_text(cs->cols[att].json.typid, slot->tts_values[att], num) >= 0)
			return num;
		pfree(num);
	}
	initStringInfo(&buf);
	for (i = 0; i < cs->t->nkeys; i++)
	{
		int			att = cs->t->keyatts[i];
		char		num[MAXINT8LEN + 1];
		int			len = int_key_text(cs->cols[att].json.typid, slot->tts_values[att], num);

		if (i > 0)
			appendStringInfoChar(&buf, ',');
		if (len >= 0)
			appendBinaryStringInfo(&buf, num, len);
		else
			appendStringInfoString(&buf, OutputFunctionCall(&cs->cols[att].json.out,
															slot->tts_values[att]));
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
	if (cs->nbatch >= cs->maxbatch)
		flush_batch(cs);
}

/*
 * capture_rows: one event per row of a transition table (INSERT, DELETE;
 * the rows an UPDATE took out of the table, command "UPDATE").
 */
static void
capture_rows(CaptureState *cs, Tuplestorestate *ts, bool is_insert,
			 const char *code, const char *command)
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
			add_event(cs, code, command, NULL, data, rid);
		else
			add_event(cs, code, command, data, NULL, rid);
	}
	ExecDropSingleTupleTableSlot(slot);
}

/*
 * capture_updates: one event per updated row that changed an audited
 * column (and a watched one, with when_changed).
 *
 * The old and new transition tables hold the rows in the same order, one
 * new row for each old row, except for a row the UPDATE moved to another
 * partition whose insert there a BEFORE INSERT trigger skipped (returned
 * NULL): PostgreSQL stores its old row when it deletes it from its
 * partition, and no new row (nodeModifyTable.c, ExecCrossPartitionUpdate()).
 * Such a row left the table: recorded as a delete (delete_code, command
 * UPDATE).  Nothing in the transition tables tells which old rows lost
 * their new row (a moved row's key changes with its partition key, and a
 * trigger may change any value), so when only some did, the rows cannot
 * be paired: the statement fails rather than record events of the wrong
 * rows.  Equal counts (the usual case) pair by position.
 */
static void
capture_updates(CaptureState *cs, Tuplestorestate *oldts,
				Tuplestorestate *newts, const char *code,
				const char *delete_code)
{
	TupleTableSlot *oslot;
	TupleTableSlot *nslot;
	bool	   *changed;
	int64		nold = tuplestore_tuple_count(oldts);
	int64		nnew = tuplestore_tuple_count(newts);

	if (nnew != nold)
	{
		if (nnew != 0)
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("cannot audit UPDATE of \"%s\": a BEFORE INSERT trigger skipped " INT64_FORMAT " of the rows it moved between partitions",
							cs->t->object_name, nold - nnew),
					 errdetail("Which of the statement's " INT64_FORMAT " rows were updated and which left the table cannot be told apart.",
							   nold),
					 errhint("Update the rows that move between partitions one at a time, or make the trigger raise an error instead of returning NULL.")));
		capture_rows(cs, oldts, false, delete_code, "UPDATE");
		return;
	}

	oslot = MakeSingleTupleTableSlot(cs->desc, &TTSOpsMinimalTuple);
	nslot = MakeSingleTupleTableSlot(cs->desc, &TTSOpsMinimalTuple);
	changed = palloc(sizeof(bool) * cs->natts);
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
			AuditedColumn *col = &cs->cols[i];
			bool		onull = oslot->tts_isnull[i];
			bool		nnull = nslot->tts_isnull[i];

			changed[i] = false;
			if (col->json.name == NULL)
				continue;
			if (onull != nnull)
				changed[i] = true;
			else if (!onull)
				changed[i] = !datum_image_eq(oslot->tts_values[i], nslot->tts_values[i],
											 col->json.typbyval, col->json.typlen);
			if (changed[i] && col->watched)
				watched = true;
			if (changed[i] && !col->skip)
				any = true;
		}
		if (!any || (cs->t->have_watch && !watched))
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
 * triggers of the table and of each partition below it, at any depth,
 * ancestors first, in one command.  One event records it: a table's own
 * event is kept only when none of its ancestors recorded one in this
 * command (that is, when the statement named it).
 */
#define TRUNCATE_SEEN_MAX 64

static bool
truncate_seen(CaptureState *cs)
{
	static LocalTransactionId last_lxid = InvalidLocalTransactionId;
	static CommandId last_cid = InvalidCommandId;
	static Oid	seen[TRUNCATE_SEEN_MAX];
	static int	nseen = 0;
	CommandId	cid = GetCurrentCommandId(false);
	Oid			relid = RelationGetRelid(cs->rel);

	if (last_lxid != audit_my_lxid() || last_cid != cid)
	{
		last_lxid = audit_my_lxid();
		last_cid = cid;
		nseen = 0;
	}
	if (cs->rel->rd_rel->relispartition && nseen > 0)
	{
		List	   *ancestors = get_partition_ancestors(relid);
		ListCell   *lc;
		int			i;

		foreach(lc, ancestors)
			for (i = 0; i < nseen; i++)
				if (seen[i] == lfirst_oid(lc))
					return true;
	}
	/* past the limit, an extra event rather than a lost one */
	if (nseen < TRUNCATE_SEEN_MAX)
		seen[nseen++] = relid;
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
	int64		rows;

	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("audit_log.capture() must be called as a trigger")));
	ev = td->tg_event;
	if (!TRIGGER_FIRED_AFTER(ev) || !TRIGGER_FIRED_FOR_STATEMENT(ev))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("audit_log.capture() must be fired AFTER ... FOR EACH STATEMENT")));
	/* a session restoring a dump is recorded as one audit.restored event */
	if (audit_restoring())
		return PointerGetDatum(NULL);

	stmtcxt = AllocSetContextCreate(CurrentMemoryContext,
									"audit_log capture",
									ALLOCSET_DEFAULT_SIZES);
	old = MemoryContextSwitchTo(stmtcxt);
	/* an UPDATE's old rows: as many as its new ones, or more */
	rows = td->tg_oldtable != NULL ? tuplestore_tuple_count(td->tg_oldtable) :
		td->tg_newtable != NULL ? tuplestore_tuple_count(td->tg_newtable) : 1;

	audit_capture_table_enter();
	PG_TRY();
	{
		memset(&cs, 0, sizeof(cs));
		init_state(&cs, td, rows);
		args = td->tg_trigger->tgargs;

		if (TRIGGER_FIRED_BY_INSERT(ev) && td->tg_newtable != NULL)
			capture_rows(&cs, td->tg_newtable, true, args[ARG_INSERT_CODE], "INSERT");
		else if (TRIGGER_FIRED_BY_UPDATE(ev) && td->tg_oldtable != NULL &&
				 td->tg_newtable != NULL)
			capture_updates(&cs, td->tg_oldtable, td->tg_newtable, args[ARG_UPDATE_CODE],
							args[ARG_DELETE_CODE]);
		else if (TRIGGER_FIRED_BY_DELETE(ev) && td->tg_oldtable != NULL)
			capture_rows(&cs, td->tg_oldtable, false, args[ARG_DELETE_CODE], "DELETE");
		else if (TRIGGER_FIRED_BY_TRUNCATE(ev) && !truncate_seen(&cs))
			add_event(&cs, args[ARG_TRUNCATE_CODE], "TRUNCATE", NULL, NULL, NULL);
		flush_batch(&cs);
	}
	PG_FINALLY();
	{
		audit_capture_table_leave();
	}
	PG_END_TRY();

	MemoryContextSwitchTo(old);
	MemoryContextDelete(stmtcxt);
	return PointerGetDatum(NULL);
}
