/*-------------------------------------------------------------------------
 *
 * writer.c
 *		Stores AuditEvents in audit_log.events, in the current transaction.
 *
 * Every capture source ends here.  Rows go straight to the table access
 * method and the partition's indexes, routed to their partition by the
 * executor's own tuple routing (as COPY FROM does), so nothing is parsed or
 * planned per event and no privilege on audit_log.events is needed: the
 * table grants no INSERT to anybody, its owner included.  A call whose
 * events all go to a leaf an earlier call was routed to skips the routing
 * (leaf_cache.c says when that is safe).
 *
 * Transaction and locking: the caller must be inside a transaction.  The
 * writer takes RowExclusiveLock on audit_log.events and on the partitions
 * it routes to, held to the end of the transaction like any INSERT; the
 * rows commit or roll back with the caller's transaction.  event_id comes
 * from audit_log.events_event_id_seq, one range per call taken by
 * event_ids.c (not transactional, and without nextval(): the session's
 * lastval() and currval() stay the application's).
 * Before its first event_id, a transaction takes the paging horizon's lock
 * (horizon.c), held to its end.
 *
 *-------------------------------------------------------------------------
 */
#include "audit_log.h"
#include "compat.h"
#include "compress.h"
#include "leaf_cache.h"

#include "access/heapam.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "executor/execPartition.h"
#include "executor/executor.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "nodes/execnodes.h"
#include "nodes/parsenodes.h"
#include "parser/parsetree.h"
#include "storage/lmgr.h"
#include "utils/builtins.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/timestamp.h"

static Oid	events_relid = InvalidOid;
static Oid	events_seqid = InvalidOid;
static bool callback_registered = false;
static int	writer_depth = 0;	/* > 0 while this backend writes events */

/*
 * writer_relcache_callback: forget the cached OIDs when the events table
 * or its sequence may have gone (DROP EXTENSION, restore).
 */
static void
writer_relcache_callback(Datum arg, Oid relid)
{
	if (relid == InvalidOid || relid == events_relid || relid == events_seqid)
	{
		events_relid = InvalidOid;
		events_seqid = InvalidOid;
	}
}

/*
 * check_columns: error unless the columns of audit_log.events are those of
 * the field table (event.h), in order; the 1.0 SQL lacks the last one
 * (source), which this library can still write to.
 */
static void
check_columns(Oid rel)
{
	for (int i = 0; i < AUDIT_NCOLUMNS; i++)
	{
		char	   *name = get_attname(rel, i + 1, true);

		if (name == NULL && i == AUDIT_COL_source)
			break;
		if (name == NULL || strcmp(name, audit_event_fields[i].name) != 0)
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("audit_log.events does not match the audit_log library"),
					 errdetail("Column %d is \"%s\"; the library expects \"%s\".",
							   i + 1, name ? name : "(none)", audit_event_fields[i].name),
					 errhint("Run ALTER EXTENSION audit_log UPDATE.")));
	}
	if (get_attname(rel, AUDIT_NCOLUMNS + 1, true) != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("audit_log.events does not match the audit_log library"),
				 errdetail("The table has more than the %d columns the library knows.",
						   AUDIT_NCOLUMNS),
				 errhint("Install the audit_log library of the extension's version.")));
}

/*
 * audit_events_relid: the OID of audit_log.events in this database, or
 * InvalidOid when missing_ok and the extension is not installed here.
 */
Oid
audit_events_relid(bool missing_ok)
{
	if (!callback_registered)
	{
		CacheRegisterRelcacheCallback(writer_relcache_callback, (Datum) 0);
		callback_registered = true;
	}
	if (!OidIsValid(events_relid) || !OidIsValid(events_seqid))
	{
		Oid			nsp = get_namespace_oid(AUDIT_SCHEMA, true);
		Oid			rel = InvalidOid;
		Oid			seq = InvalidOid;

		if (OidIsValid(nsp))
		{
			rel = get_relname_relid(AUDIT_EVENTS_TABLE, nsp);
			seq = get_relname_relid(AUDIT_EVENTS_SEQ, nsp);
		}
		if (!OidIsValid(rel) || !OidIsValid(seq) ||
			get_rel_relkind(rel) != RELKIND_PARTITIONED_TABLE)
		{
			if (missing_ok)
				return InvalidOid;
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("audit_log is not installed in this database"),
					 errhint("Run CREATE EXTENSION audit_log CASCADE.")));
		}
		check_columns(rel);
		events_relid = rel;
		events_seqid = seq;
	}
	return events_relid;
}

/*
 * The events of one call mostly share their metadata strings (a statement's
 * events are copies of one prototype): text_value converts a TEXT or INET
 * field once per call and column, in the call's memory, and reuses the
 * datum while the next event has the same pointer.  It is emptied when a
 * call starts and when it ends (a pointer of an earlier call may hold other
 * text now).
 */
static const char *text_src[AUDIT_NCOLUMNS];
static Datum text_datum[AUDIT_NCOLUMNS];
static MemoryContext text_cxt = NULL;	/* the outermost call's memory */

/*
 * text_value: the datum of column i (a TEXT or INET field) for s.
 */
static inline Datum
text_value(int i, const char *s, AuditFieldKind kind)
{
	MemoryContext old;

	if (text_cxt != NULL && text_src[i] == s)
		return text_datum[i];
	old = text_cxt ? MemoryContextSwitchTo(text_cxt) : CurrentMemoryContext;
	text_datum[i] = kind == AF_INET ?
		DirectFunctionCall1(inet_in, CStringGetDatum(s)) : CStringGetTextDatum(s);
	MemoryContextSwitchTo(old);
	text_src[i] = text_cxt ? s : NULL;
	return text_datum[i];
}

/*
 * check_event_size: an event whose texts and JSON take more than
 * AUDIT_EVENT_MAX_BYTES is refused: its seal digest is one JSON array of
 * its columns (part 40_integrity), which PostgreSQL cannot build past 256 MB
 * of JSON (and 1 GB of its text), and a window that cannot be sealed stops
 * the chain.  The statement that made it fails: nothing is lost.
 */
#define AUDIT_EVENT_MAX_BYTES (64 * 1024 * 1024)

static void
check_event_size(AuditEvent *ev, Size bytes)
{
	if (bytes > AUDIT_EVENT_MAX_BYTES)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("audit event %s is too large to be sealed: %zu bytes", ev->event_type, bytes),
				 errdetail("An event's texts and JSON (row images, details) may take at most %d MB together.",
						   AUDIT_EVENT_MAX_BYTES / (1024 * 1024)),
				 errhint("Exclude the large columns from capture (audit_log.enable(..., exclude_columns => ...)), or log less.")));
}

/*
 * fill_row: the natts columns of audit_log.events for one event, in table
 * order, through the field table (event.h).  Sets event_id to id, and
 * occurred_at/txid/backend_pid when unset.  natts is AUDIT_NCOLUMNS, or
 * fewer on the 1.0 SQL (no source column).
 */
static void
fill_row(AuditEvent *ev, int64 id, Datum *values, bool *nulls, int natts)
{
	Size		bytes = 0;

	Assert(natts <= AUDIT_NCOLUMNS);
	ev->event_id = id;
	audit_event_complete(ev, true);
	for (int i = 0; i < natts; i++)
	{
		const AuditField *f = &audit_event_fields[i];
		const char *text;
		Jsonb	   *j;

		nulls[i] = false;
		switch ((AuditFieldKind) f->kind)
		{
			case AF_ID:
			case AF_TXID:
				values[i] = Int64GetDatum(*AUDIT_FIELD_PTR(ev, f, int64));
				break;
			case AF_TIME:
				values[i] = TimestampTzGetDatum(*AUDIT_FIELD_PTR(ev, f, TimestampTz));
				break;
			case AF_PID:
				values[i] = Int32GetDatum(*AUDIT_FIELD_PTR(ev, f, int));
				break;
			case AF_TEXT:
			case AF_INET:
				text = audit_event_text(ev, f);
				if (text == NULL)
					nulls[i] = true;
				else
				{
					values[i] = text_value(i, text, (AuditFieldKind) f->kind);
					bytes += VARSIZE_ANY_EXHDR(DatumGetPointer(values[i]));
				}
				break;
			case AF_JSON:
				j = *AUDIT_FIELD_PTR(ev, f, Jsonb *);
				if (AUDIT_FIELD_PTR(ev, f, Jsonb *) == &ev->details)
					j = audit_details_for_store(ev);
				if (j == NULL)
					nulls[i] = true;
				else
				{
					bytes += VARSIZE_ANY_EXHDR(j);
					values[i] = audit_compress_image(j);
				}
				break;
		}
	}
	check_event_size(ev, bytes);
}

/*
 * Rows bound for one partition are inserted together with
 * table_multi_insert (fewer WAL records and buffer lookups), as COPY does:
 * up to MULTI_MAX rows or MULTI_MAX_BYTES of them.  A group of 256 typical
 * rows fills more than 8 pages, so the partition is extended with
 * fallocate() from the first group on (PostgreSQL writes zeros for 8
 * pages or fewer: with 128 rows a group, most of the events' heap insert
 * in a profile of a 200,000-row UPDATE); 1,000 rows a group cost more in
 * slots and copies than that saved.
 */
#define MULTI_MAX 256
#define MULTI_MAX_BYTES (1024 * 1024)

typedef struct MultiState
{
	ResultRelInfo *rri;			/* partition the buffered rows go to */
	TupleTableSlot **slots;		/* up to MULTI_MAX slots of its row type */
	int			nslots;			/* rows buffered */
	Size		nbytes;			/* their size */
	TupleDesc	desc;			/* unpinned copy of its row type */
	BulkInsertState bistate;	/* NULL for a single event */
} MultiState;

/*
 * multi_flush: insert the buffered rows and their index entries.
 */
static void
multi_flush(MultiState *ms, EState *estate, CommandId cid)
{
	int			i;

	if (ms->nslots == 0)
		return;
	if (ms->nslots == 1)
		table_tuple_insert(ms->rri->ri_RelationDesc, ms->slots[0], cid, 0,
						   ms->bistate);
	else
		table_multi_insert(ms->rri->ri_RelationDesc, ms->slots, ms->nslots,
						   cid, 0, ms->bistate);
	for (i = 0; i < ms->nslots; i++)
	{
		if (ms->rri->ri_NumIndices > 0)
			audit_insert_index_tuples(ms->rri, ms->slots[i], estate);
		ResetPerTupleExprContext(estate);
		ExecClearTuple(ms->slots[i]);
	}
	ms->nslots = 0;
	ms->nbytes = 0;
}

/*
 * multi_switch: start buffering rows for another partition (or none).
 */
static void
multi_switch(MultiState *ms, ResultRelInfo *rri)
{
	int			i;

	if (ms->slots != NULL)
	{
		for (i = MULTI_MAX - 1; i >= 0; i--)
			if (ms->slots[i] != NULL)
				ExecDropSingleTupleTableSlot(ms->slots[i]);
		pfree(ms->slots);
		ms->slots = NULL;
	}
	if (ms->bistate != NULL)
		ReleaseBulkInsertStatePin(ms->bistate);
	ms->rri = rri;
	if (rri != NULL)
	{
		ms->slots = palloc0(sizeof(TupleTableSlot *) * MULTI_MAX);
		/* An unpinned copy: slots on it need no resource owner bookkeeping. */
		ms->desc = CreateTupleDescCopy(RelationGetDescr(rri->ri_RelationDesc));
	}
}

/*
 * cached_leaf: the leaf all nevents events go to, when the leaf cache
 * (leaf_cache.c) knows it for each of them; false otherwise.  Completes
 * the events' clock time first: routing goes by it.
 */
static bool
cached_leaf(Oid relid, AuditEvent *events, int nevents, AuditLeaf *hit)
{
	for (int i = 0; i < nevents; i++)
	{
		AuditLeaf	l;

		audit_event_complete(&events[i], true);
		if (!audit_leaf_lookup(relid, events[i].occurred_at, events[i].category, &l))
			return false;
		if (i == 0)
			*hit = l;
		else if (l.leaf != hit->leaf)
			return false;
	}
	return true;
}

/*
 * open_leaf: a ResultRelInfo for inserting into the leaf hit, with its
 * indexes open, or NULL when the leaf cache changed while its locks were
 * taken (the caller routes instead).
 */
static ResultRelInfo *
open_leaf(const AuditLeaf *hit, ResultRelInfo *rootRRI, EState *estate)
{
	ResultRelInfo *rri;

	if (!audit_leaf_lock(hit))
		return NULL;
	rri = makeNode(ResultRelInfo);
	InitResultRelInfo(rri, table_open(hit->leaf, NoLock), 0, rootRRI,
					  estate->es_instrument);
	ExecOpenIndices(rri, false);
	return rri;
}

/*
 * audit_write_events: store nevents events in audit_log.events in the
 * current transaction, setting each event's event_id: increasing in the
 * order of the array, and greater than any id taken before (see
 * event_ids.c).  Errors if the extension is not installed in this database.
 */
void
audit_write_events(AuditEvent *events, int nevents)
{
	MemoryContext oldcxt;
	MemoryContext writecxt;
	MemoryContext rowcxt;
	Relation	rel;
	EState	   *estate;
	RangeTblEntry *rte;
	ResultRelInfo *rootRRI;
	ResultRelInfo *leafRRI;		/* the leaf cache's, when it knew */
	AuditLeaf	hit;
	ModifyTableState *mtstate;
	PartitionTupleRouting *proute;
	TupleTableSlot *rootslot;
	CommandId	cid;
	int			i;
	MultiState	ms;
	Oid			relid;
	Oid			seqid;
	int64		next_id;
	int64		id_step;
	MemoryContext saved_text_cxt;

	if (nevents <= 0)
		return;
	memset(&ms, 0, sizeof(ms));
	Assert(IsTransactionState());

	/*
	 * Local copies: the invalidations that table_open() and the sequence's
	 * lock accept may reset the cached OIDs under us.
	 */
	relid = audit_events_relid(false);
	seqid = events_seqid;
	/* Before any event_id is taken: the paging horizon (horizon.c). */
	audit_horizon_enter(seqid);

	writecxt = AllocSetContextCreate(CurrentMemoryContext,
									 "audit_log writer",
									 ALLOCSET_DEFAULT_SIZES);
	oldcxt = MemoryContextSwitchTo(writecxt);
	writer_depth++;
	saved_text_cxt = text_cxt;
	memset(text_src, 0, sizeof(text_src));
	text_cxt = writecxt;

	PG_TRY();
	{
		rel = table_open(relid, RowExclusiveLock);

		estate = CreateExecutorState();
		rte = makeNode(RangeTblEntry);
		rte->rtekind = RTE_RELATION;
		rte->relid = relid;
		rte->relkind = RELKIND_PARTITIONED_TABLE;
		rte->rellockmode = RowExclusiveLock;
		audit_init_range_table(estate, rte, ACL_INSERT);

		rootRRI = makeNode(ResultRelInfo);
		ExecInitResultRelation(estate, rootRRI, 1);

		mtstate = makeNode(ModifyTableState);
		mtstate->ps.plan = NULL;
		mtstate->ps.state = estate;
		mtstate->operation = CMD_INSERT;
		mtstate->mt_nrels = 1;
		mtstate->resultRelInfo = rootRRI;
		mtstate->rootResultRelInfo = rootRRI;

		cid = GetCurrentCommandId(true);
		estate->es_output_cid = cid;
		leafRRI = NULL;
		if (cached_leaf(relid, events, nevents, &hit))
			leafRRI = open_leaf(&hit, rootRRI, estate);
		proute = leafRRI ? NULL : ExecSetupPartitionTupleRouting(estate, rel);
		rootslot = ExecInitExtraTupleSlot(estate, RelationGetDescr(rel),
										  &TTSOpsVirtual);

		rowcxt = AllocSetContextCreate(writecxt, "audit_log row",
									   ALLOCSET_SMALL_SIZES);
		/*
		 * All the ids at once, in capture order.  The transaction has its
		 * xid BEFORE its events get their ids: check_alerts() (part
		 * 70_alerts) relies on it to know when every event_id up to a mark
		 * has settled (committed, or never will).
		 */
		(void) GetTopFullTransactionId();
		next_id = audit_take_event_ids(seqid, nevents, &id_step);
		if (nevents > 1)
			ms.bistate = GetBulkInsertState();

		for (i = 0; i < nevents; i++)
		{
			ResultRelInfo *partRRI;
			TupleConversionMap *map;
			TupleTableSlot *slot;

			ExecClearTuple(rootslot);
			MemoryContextSwitchTo(rowcxt);
			fill_row(&events[i], next_id, rootslot->tts_values, rootslot->tts_isnull,
					 rootslot->tts_tupleDescriptor->natts);
			next_id += id_step;
			MemoryContextSwitchTo(writecxt);
			ExecStoreVirtualTuple(rootslot);

			partRRI = leafRRI ? leafRRI :
				ExecFindPartition(mtstate, rootRRI, proute, rootslot, estate);
			if (partRRI != ms.rri)
			{
				multi_flush(&ms, estate, cid);
				multi_switch(&ms, partRRI);
				if (leafRRI == NULL)
					audit_leaf_remember(rel, partRRI->ri_RelationDesc,
										events[i].occurred_at, events[i].category);
			}
			if (ms.slots[ms.nslots] == NULL)	/* slots are made as needed */
				ms.slots[ms.nslots] =
					MakeSingleTupleTableSlot(ms.desc,
											 table_slot_callbacks(partRRI->ri_RelationDesc));
			slot = ms.slots[ms.nslots];
			ExecClearTuple(slot);
			map = leafRRI ? NULL : audit_root_to_child_map(partRRI, estate);
			if (map != NULL)
				execute_attr_map_slot(map->attrMap, rootslot, slot);
			else
				ExecCopySlot(slot, rootslot);
			ms.nbytes += ExecFetchSlotHeapTuple(slot, true, NULL)->t_len;
			ms.nslots++;
			MemoryContextReset(rowcxt);
			if (ms.nslots == MULTI_MAX || ms.nbytes >= MULTI_MAX_BYTES)
				multi_flush(&ms, estate, cid);
		}
		multi_flush(&ms, estate, cid);
		multi_switch(&ms, NULL);
		if (ms.bistate != NULL)
			FreeBulkInsertState(ms.bistate);

		ExecResetTupleTable(estate->es_tupleTable, false);
		if (leafRRI != NULL)
		{
			ExecCloseIndices(leafRRI);
			table_close(leafRRI->ri_RelationDesc, NoLock);
		}
		if (proute != NULL)
			ExecCleanupTupleRouting(mtstate, proute);
		ExecCloseResultRelations(estate);
		ExecCloseRangeTableRelations(estate);
		FreeExecutorState(estate);
		table_close(rel, NoLock);
	}
	PG_FINALLY();
	{
		writer_depth--;
		memset(text_src, 0, sizeof(text_src));
		text_cxt = saved_text_cxt;
	}
	PG_END_TRY();

	MemoryContextSwitchTo(oldcxt);
	MemoryContextDelete(writecxt);
}

/*
 * audit_writing: true while audit_write_events() is storing rows (the
 * guards of the audit tables let the writer's own inserts through).
 */
bool
audit_writing(void)
{
	return writer_depth > 0;
}

/*
 * audit_write_event: store one event; returns its event_id.
 */
int64
audit_write_event(AuditEvent *ev)
{
	audit_write_events(ev, 1);
	return ev->event_id;
}
