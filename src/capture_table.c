/*-------------------------------------------------------------------------
 *
 * capture_table.c
 *		The audited table as capture_dml.c's trigger sees it (its columns,
 *		how to write their values, the trigger's column options, its
 *		primary key, the events' object_name), built once per capture
 *		trigger and kept across statements and transactions.
 *
 * Building it reads the catalogs (types, output functions, the primary
 * key, the schema's name) and parses the option arrays: a few
 * microseconds that a one-row statement paid every time.  The entries are
 * keyed by the trigger's OID (each partition has its own clone) and all
 * dropped at any relcache invalidation (ALTER TABLE, a rename, enable()
 * again, a new primary key, a changed composite type), any change of a
 * type or of a schema: those are rare, and a stale entry is never used.
 * An entry dropped while a capture is using it (an invalidation accepted
 * while the writer opens a relation) is freed only when no capture is
 * running (audit_capture_table_enter/leave bracket each capture).
 *
 * Transaction and locking: none (catalog reads through the syscache, in
 * the caller's transaction).  Memory: one context per entry, under
 * CacheMemoryContext.
 *
 *-------------------------------------------------------------------------
 */
#include "audit_log.h"
#include "capture_table.h"

#include "access/htup_details.h"
#include "catalog/pg_index.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/syscache.h"

#include "compat.h"
#include "util.h"

typedef struct TableSlot
{
	Oid			tgoid;			/* key */
	CaptureTable *table;
} TableSlot;

static HTAB *tables = NULL;
static CaptureTable *stale = NULL;	/* dropped, maybe still in use */
static int	capture_depth = 0;	/* captures running in this backend */
static uint64 flushes = 0;		/* tables_flush() calls so far */

/* What an option list says of the columns it names (mark_columns). */
typedef enum ColumnMark
{
	MARK_EXCLUDED,				/* exclude_columns */
	MARK_MASKED,				/* mask_columns */
	MARK_WATCHED				/* when_changed */
} ColumnMark;

/*
 * tables_flush: drop every entry (a catalog change they may depend on);
 * their memory goes when no capture uses them.
 */
static void
tables_flush(void)
{
	HASH_SEQ_STATUS it;
	TableSlot  *slot;

	flushes++;
	if (tables == NULL)
		return;
	hash_seq_init(&it, tables);
	while ((slot = hash_seq_search(&it)) != NULL)
	{
		slot->table->next_stale = stale;
		stale = slot->table;
		(void) hash_search(tables, &slot->tgoid, HASH_REMOVE, NULL);
	}
}

/* tables_relcache_callback: any relation changed. */
static void
tables_relcache_callback(Datum arg, Oid relid)
{
	tables_flush();
}

/* tables_syscache_callback: a type or a schema changed. */
static void
tables_syscache_callback(Datum arg, int cacheid, uint32 hashvalue)
{
	tables_flush();
}

/*
 * mark_columns: mark the named columns excluded, masked or watched.  A name that no longer
 * exists (the column was renamed or dropped after enable()) returns false,
 * so the caller can fail safe.
 */
static bool
mark_columns(CaptureTable *t, List *names, ColumnMark mark)
{
	ListCell   *lc;
	bool		all_found = true;

	foreach(lc, names)
	{
		const char *name = lfirst(lc);
		int			i;
		bool		found = false;

		for (i = 0; i < t->natts; i++)
		{
			if (t->cols[i].json.name != NULL && strcmp(t->cols[i].json.name, name) == 0)
			{
				if (mark == MARK_EXCLUDED)
					t->cols[i].skip = true;
				else if (mark == MARK_MASKED)
					t->cols[i].masked = true;
				else
					t->cols[i].watched = true;
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
load_keys(CaptureTable *t, Relation rel)
{
	Oid			pkoid = audit_primary_key_index(rel);
	HeapTuple	tup;
	Form_pg_index idx;
	int			i;

	t->nkeys = 0;
	if (!OidIsValid(pkoid))
		return;
	tup = SearchSysCache1(INDEXRELID, ObjectIdGetDatum(pkoid));
	if (!HeapTupleIsValid(tup))
		return;
	idx = (Form_pg_index) GETSTRUCT(tup);
	t->keyatts = palloc(sizeof(int) * idx->indnkeyatts);
	for (i = 0; i < idx->indnkeyatts; i++)
	{
		int			att = idx->indkey.values[i];

		if (att <= 0)
		{
			t->nkeys = 0;
			break;
		}
		t->keyatts[t->nkeys++] = att - 1;
		t->cols[att - 1].is_key = true;
	}
	ReleaseSysCache(tup);
}

/*
 * column_key_cmp: qsort_arg comparator of column numbers (arg: the
 * AuditedColumn array) in jsonb key order.
 */
static int
column_key_cmp(const void *a, const void *b, void *arg)
{
	AuditedColumn *cols = (AuditedColumn *) arg;

	return audit_json_key_cmp(cols[*(const int *) a].json.name,
							  cols[*(const int *) b].json.name);
}

/*
 * sort_json_columns: the audited columns in the order jsonb stores object
 * keys, so row images are built already sorted (no per-row sort).
 */
static void
sort_json_columns(CaptureTable *t)
{
	int			i;

	t->jsonorder = palloc(sizeof(int) * Max(t->natts, 1));
	t->njson = 0;
	for (i = 0; i < t->natts; i++)
		if (!t->cols[i].skip)
			t->jsonorder[t->njson++] = i;
	qsort_arg(t->jsonorder, t->njson, sizeof(int), column_key_cmp, t->cols);
}

/*
 * build_table: the entry of the trigger that fired td, allocated in the
 * current memory context.
 */
static void
build_table(CaptureTable *t, TriggerData *td)
{
	Relation	rel = td->tg_relation;
	TupleDesc	desc = RelationGetDescr(rel);
	char	  **args = td->tg_trigger->tgargs;
	char	   *nspname;
	int			i;

	t->natts = desc->natts;
	t->cols = palloc0(sizeof(AuditedColumn) * Max(t->natts, 1));
	for (i = 0; i < t->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);
		AuditedColumn *col = &t->cols[i];

		if (att->attisdropped)
		{
			col->skip = true;
			continue;
		}
		col->json.name = pstrdup(NameStr(att->attname));
		col->json.namelen = strlen(col->json.name);
		audit_json_field_init(&col->json, att->atttypid, 0);
	}

	t->exclude_missing = !mark_columns(t, audit_name_list(args[ARG_EXCLUDE_COLUMNS]),
									   MARK_EXCLUDED);
	t->mask_missing = !mark_columns(t, audit_name_list(args[ARG_MASK_COLUMNS]), MARK_MASKED);
	if (t->mask_missing)
	{
		/* A masked column was renamed or dropped: never leak a value. */
		for (i = 0; i < t->natts; i++)
			t->cols[i].masked = true;
	}
	t->have_watch = (args[ARG_WHEN_CHANGED] != NULL && args[ARG_WHEN_CHANGED][0] != '\0' &&
					 strcmp(args[ARG_WHEN_CHANGED], "{}") != 0);
	if (t->have_watch && !mark_columns(t, audit_name_list(args[ARG_WHEN_CHANGED]), MARK_WATCHED))
	{
		/*
		 * A watched column was renamed or dropped: record every update
		 * rather than lose events silently.
		 */
		t->watch_missing = true;
		t->have_watch = false;
	}
	load_keys(t, rel);
	sort_json_columns(t);

	/*
	 * On a partition, ARG_AUDITED_TABLE names the audited partitioned table;
	 * the partition the statement named goes in details.
	 */
	nspname = get_namespace_name(RelationGetNamespace(rel));
	if (td->tg_trigger->tgnargs > CAPTURE_NARGS)
	{
		Json		j;

		t->object_name = pstrdup(args[ARG_AUDITED_TABLE]);
		j_begin(&j);
		j_str(&j, "partition", quote_qualified_identifier(nspname,
														  RelationGetRelationName(rel)));
		t->details = audit_text_to_jsonb(j_end(&j));
	}
	else
		t->object_name = quote_qualified_identifier(nspname, RelationGetRelationName(rel));
}

/*
 * audit_capture_table: the (cached) entry of the capture trigger that fired
 * td; valid until audit_capture_table_leave() of this capture.  Call it
 * between audit_capture_table_enter() and audit_capture_table_leave().
 */
CaptureTable *
audit_capture_table(TriggerData *td)
{
	Oid			tgoid = td->tg_trigger->tgoid;
	TableSlot  *slot;
	bool		found;
	MemoryContext cxt;
	MemoryContext old;
	CaptureTable *t;
	uint64		flushes_before;

	if (tables == NULL)
	{
		HASHCTL		ctl;

		ctl.keysize = sizeof(Oid);
		ctl.entrysize = sizeof(TableSlot);
		ctl.hcxt = CacheMemoryContext;
		tables = hash_create("audit_log capture tables", 64, &ctl,
							 HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
		CacheRegisterRelcacheCallback(tables_relcache_callback, (Datum) 0);
		CacheRegisterSyscacheCallback(TYPEOID, tables_syscache_callback, (Datum) 0);
		CacheRegisterSyscacheCallback(NAMESPACEOID, tables_syscache_callback, (Datum) 0);
	}
	/* Entries dropped earlier, once no capture can be using them. */
	if (capture_depth <= 1)
	{
		while (stale != NULL)
		{
			CaptureTable *next = stale->next_stale;

			MemoryContextDelete(stale->cxt);
			stale = next;
		}
	}

	slot = hash_search(tables, &tgoid, HASH_FIND, NULL);
	if (slot != NULL && slot->table->natts == RelationGetDescr(td->tg_relation)->natts)
		return slot->table;

	/* Build it; the syscache reads may accept invalidations meanwhile. */
	cxt = AllocSetContextCreate(CacheMemoryContext, "audit_log capture table",
								ALLOCSET_SMALL_SIZES);
	old = MemoryContextSwitchTo(cxt);
	flushes_before = flushes;
	PG_TRY();
	{
		t = palloc0(sizeof(CaptureTable));
		t->tgoid = tgoid;
		t->cxt = cxt;
		build_table(t, td);
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(old);
		MemoryContextDelete(cxt);
		PG_RE_THROW();
	}
	PG_END_TRY();
	MemoryContextSwitchTo(old);

	if (flushes != flushes_before)
	{
		/* A catalog change arrived while it was built: this capture only. */
		t->next_stale = stale;
		stale = t;
		return t;
	}
	slot = hash_search(tables, &tgoid, HASH_ENTER, &found);
	if (found)
	{
		slot->table->next_stale = stale;
		stale = slot->table;
	}
	slot->table = t;
	return t;
}

/*
 * audit_capture_table_enter: a capture begins (before audit_capture_table).
 */
void
audit_capture_table_enter(void)
{
	capture_depth++;
}

/*
 * audit_capture_table_leave: a capture ended, normally or by an error.
 */
void
audit_capture_table_leave(void)
{
	capture_depth--;
}
