/*-------------------------------------------------------------------------
 *
 * event_ids.c
 *		Hands out event_id values from audit_log.events_event_id_seq without
 *		touching the session's sequence state.
 *
 * Why not nextval(): nextval_internal() makes the sequence the session's
 * last-used one, so after any captured write lastval() returned the audit
 * event's id instead of the application's (or failed with "permission
 * denied" for a role without USAGE on the audit sequence), and currval()
 * of the audit sequence became defined.  sequence.c keeps that state in
 * statics (last_used_seq, its hash of SeqTableData) that nothing outside it
 * can save or restore, so the only clean way is not to go through it: this
 * file advances the sequence relation itself, with exactly the on-page
 * format, locking and WAL record of sequence.c's nextval_internal().
 *
 * The choice: ids are still taken from the sequence, at the moment the
 * writer stores a batch of events, one contiguous range per batch (one
 * buffer access for up to 1000 rows of a bulk statement instead of one
 * nextval each).  There is no per-backend cache of ids: a cache would hand
 * out ids out of time order across backends, and the paging horizon ("a
 * page stops below the oldest event id that may still commit") would then
 * have to wait for every idle backend's unused range.  Here ids are in
 * global capture order at batch granularity: whoever takes ids later gets
 * greater ones, so the oldest id that may still commit is the first id of
 * the oldest writer still in progress (or the sequence's next value).
 *
 * The sequence stays the source of truth: last_value is the last id handed
 * out (or, after a crash, the last pre-logged one), is_called and log_cnt
 * mean what they mean to nextval(), so setval(), nextval(), ALTER SEQUENCE,
 * pg_dump and pg_restore keep their usual meaning.  Its INCREMENT and
 * MAXVALUE are honoured; CACHE is irrelevant (no per-session cache);
 * CYCLE is not (an id is never handed out twice: reaching MAXVALUE is an
 * error).  A decreasing sequence is refused: ids must increase.
 *
 * Crash safety: like nextval(), a WAL record logs the state AUDIT_IDS_LOG_AHEAD
 * ids ahead of what is handed out, so most batches write no WAL; the first
 * allocation after a checkpoint always logs.  Unlike nextval(), the record
 * that covers the ids is flushed before the ids are returned: nextval()
 * relies on the commit to flush it, so an id seen by a transaction that is
 * still open (audit_log.log() returns it) or committed asynchronously could
 * be handed out again after a crash.  The flush happens at most once per
 * AUDIT_IDS_LOG_AHEAD ids, usually for free (commits flush further).  A
 * crash skips at most that many ids, never reuses one.  log_cnt counts only
 * ids a record covers: when the sequence needs no WAL (created in this
 * transaction at wal_level = minimal, made durable by the commit as its page
 * stands) it is kept at 0, so the first allocation after that commit logs.
 *
 * Transaction and locking: RowExclusiveLock on the sequence until the end
 * of the transaction (as nextval()), the sequence's buffer locked
 * exclusively for the few instructions that advance it.  Not transactional:
 * ids of a rolled back transaction are not reused.  No privilege is checked
 * (the writer runs as the application role).  Refused in read-only
 * transactions, in parallel mode and during recovery, as nextval() is.
 *
 *-------------------------------------------------------------------------
 */
#include "audit_log.h"
#include "compat.h"

#include "access/htup_details.h"
#include "access/relation.h"
#include "access/rmgr.h"
#include "access/xact.h"
#include "access/xlog.h"
#include "access/xloginsert.h"
#include "catalog/pg_class.h"
#include "catalog/pg_sequence.h"
#include "commands/sequence.h"
#include "common/int.h"
#include "miscadmin.h"
#include "storage/bufmgr.h"
#include "utils/rel.h"
#include "utils/syscache.h"

/*
 * How many ids past the last one handed out a WAL record of the sequence
 * covers (sequence.c's SEQ_LOG_VALS is 32): one record, and at most one
 * WAL flush by the allocator, per this many ids.  The flush makes the
 * backend write and sync all the WAL before it (with synchronous_commit =
 * off nothing else would make it wait for that): at 8192 a bulk statement
 * of 200,000 rows waited 25 times; a crash skips at most this many ids.
 */
#define AUDIT_IDS_LOG_AHEAD	65536

/* The special area of a sequence's page (static in sequence.c). */
#define AUDIT_SEQ_MAGIC		0x1717

typedef struct audit_seq_magic
{
	uint32		magic;
} audit_seq_magic;

/*
 * seq_tuple: lock the sequence's only page exclusively and find its tuple,
 * as sequence.c's read_seq_tuple() does (including its repair of an xmax
 * left by a SELECT FOR UPDATE of old releases).
 */
static Form_pg_sequence_data
seq_tuple(Relation rel, Buffer *buf, HeapTuple tuple)
{
	Page		page;
	ItemId		lp;
	audit_seq_magic *sm;

	*buf = ReadBuffer(rel, 0);
	LockBuffer(*buf, BUFFER_LOCK_EXCLUSIVE);
	page = BufferGetPage(*buf);
	sm = (audit_seq_magic *) PageGetSpecialPointer(page);
	if (sm->magic != AUDIT_SEQ_MAGIC)
		elog(ERROR, "bad magic number in sequence \"%s\": %08X",
			 RelationGetRelationName(rel), sm->magic);
	lp = PageGetItemId(page, FirstOffsetNumber);
	Assert(ItemIdIsNormal(lp));
	tuple->t_data = (HeapTupleHeader) PageGetItem(page, lp);
	tuple->t_len = ItemIdGetLength(lp);
	if (HeapTupleHeaderGetRawXmax(tuple->t_data) != InvalidTransactionId)
	{
		HeapTupleHeaderSetXmax(tuple->t_data, InvalidTransactionId);
		tuple->t_data->t_infomask &= ~HEAP_XMAX_COMMITTED;
		tuple->t_data->t_infomask |= HEAP_XMAX_INVALID;
		MarkBufferDirtyHint(*buf, true);
	}
	return (Form_pg_sequence_data) GETSTRUCT(tuple);
}

/*
 * audit_take_event_ids: take n (>= 1) ids from sequence seqid; returns the
 * first, and sets *step to the sequence's increment: the ids are first,
 * first + step, ... first + (n - 1) * step, all greater than any id handed
 * out before (by this function or nextval()).  Leaves lastval(), currval()
 * and every other session state of sequence.c untouched.
 */
int64
audit_take_event_ids(Oid seqid, int n, int64 *step)
{
	Relation	rel;
	HeapTuple	pgstuple;
	Form_pg_sequence pgsform;
	int64		incby;
	int64		maxv;
	Buffer		buf;
	Page		page;
	HeapTupleData tuple;
	Form_pg_sequence_data seq;
	int64		steps;			/* increments from last_value to the last id */
	int64		first;
	int64		last;
	int64		logged;			/* last value the WAL record covers */
	int64		log_cnt;
	bool		logit;
	bool		needs_wal;
	XLogRecPtr	lsn;

	Assert(n >= 1);
	rel = relation_open(seqid, RowExclusiveLock);
	if (rel->rd_rel->relkind != RELKIND_SEQUENCE)
		elog(ERROR, "\"%s\" is not a sequence", RelationGetRelationName(rel));
	PreventCommandIfReadOnly("audit_log event capture");
	PreventCommandIfParallelMode("audit_log event capture");

	pgstuple = SearchSysCache1(SEQRELID, ObjectIdGetDatum(seqid));
	if (!HeapTupleIsValid(pgstuple))
		elog(ERROR, "cache lookup failed for sequence %u", seqid);
	pgsform = (Form_pg_sequence) GETSTRUCT(pgstuple);
	incby = pgsform->seqincrement;
	maxv = pgsform->seqmax;
	ReleaseSysCache(pgstuple);
	if (incby <= 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("sequence \"%s\" must count upwards to number audit events",
						RelationGetRelationName(rel)),
				 errhint("Run ALTER SEQUENCE %s.%s INCREMENT BY 1.",
						 AUDIT_SCHEMA, RelationGetRelationName(rel))));
	needs_wal = RelationNeedsWAL(rel);

	/* Outside the critical section: commit will wait for this WAL too. */
	if (needs_wal)
		(void) GetTopTransactionId();

	seq = seq_tuple(rel, &buf, &tuple);
	page = BufferGetPage(buf);

	/* A sequence not yet called hands out last_value itself first. */
	steps = seq->is_called ? n : n - 1;
	if (pg_mul_s64_overflow(steps, incby, &last) ||
		pg_add_s64_overflow(seq->last_value, last, &last) ||
		last > maxv)
		ereport(ERROR,
				(errcode(ERRCODE_SEQUENCE_GENERATOR_LIMIT_EXCEEDED),
				 errmsg("sequence \"%s\" has no room for %d more audit event ids (maximum value " INT64_FORMAT ")",
						RelationGetRelationName(rel), n, maxv)));
	first = last - (int64) (n - 1) * incby;

	/*
	 * Log when the pre-logged values do not cover this batch, when the
	 * sequence was never called (it may never have been logged), and on the
	 * first change after a checkpoint (replay from that checkpoint would
	 * not see the earlier record), as nextval() does.
	 */
	logit = seq->log_cnt < steps || !seq->is_called ||
		PageGetLSN(page) <= GetRedoRecPtr();
	if (!needs_wal)
	{
		/*
		 * No WAL, so nothing is pre-logged: log_cnt must stay 0.  At
		 * wal_level = minimal a sequence created (CREATE EXTENSION) or given
		 * a new relfilenode (ALTER SEQUENCE ... RESTART) in this transaction
		 * is made durable at commit as the page stands (a full-page image or
		 * an fsync).  A log_cnt > 0 on that page would claim ids that no
		 * record covers: the next transactions would take them without
		 * logging, and a crash would restore the committed page and hand
		 * them out again.  With 0 the first allocation after the commit logs.
		 */
		logit = false;
		logged = 0;				/* unused */
		log_cnt = 0;
	}
	else if (logit)
	{
		int64		room;

		/* As many as fit below MAXVALUE. */
		if (pg_sub_s64_overflow(maxv, last, &room))
			room = PG_INT64_MAX;
		log_cnt = Min(room / incby, AUDIT_IDS_LOG_AHEAD);
		logged = last + log_cnt * incby;
	}
	else
	{
		logged = 0;				/* unused */
		log_cnt = seq->log_cnt - steps;
	}

	START_CRIT_SECTION();
	/* Dirty before XLogInsert(), as sequence.c (the buffer is locked). */
	MarkBufferDirty(buf);
	if (logit)
	{
		xl_seq_rec	xlrec;
		XLogRecPtr	recptr;

		/* The record holds the state after the pre-logged values. */
		XLogBeginInsert();
		XLogRegisterBuffer(0, buf, REGBUF_WILL_INIT);
		seq->last_value = logged;
		seq->is_called = true;
		seq->log_cnt = 0;
		AUDIT_SEQ_REC_SET_LOCATOR(xlrec, rel);
		XLogRegisterData((char *) &xlrec, sizeof(xl_seq_rec));
		XLogRegisterData((char *) tuple.t_data, tuple.t_len);
		recptr = XLogInsert(RM_SEQ_ID, XLOG_SEQ_LOG);
		PageSetLSN(page, recptr);
	}
	seq->last_value = last;
	seq->is_called = true;
	seq->log_cnt = log_cnt;
	END_CRIT_SECTION();

	/*
	 * The ids are covered by the record at the page's LSN (this one, or the
	 * one that pre-logged them).  Paging code that publishes the first id
	 * of each writer in progress would do it here, under the buffer lock.
	 */
	lsn = PageGetLSN(page);
	UnlockReleaseBuffer(buf);
	relation_close(rel, NoLock);

	/* Durable before anybody sees them: usually flushed already. */
	if (needs_wal)
		XLogFlush(lsn);

	*step = incby;
	return first;
}
