/*-------------------------------------------------------------------------
 *
 * event_id.c
 *		The next event_id from audit_log.events_event_id_seq, without
 *		touching the session's lastval().
 *
 * nextval() makes its sequence the session's "last used" one, and
 * lastval() then returns that sequence's value (or fails with "permission
 * denied" for a caller who may not read it).  The writer runs in the
 * audited session, so an application's INSERT ... ; SELECT lastval()
 * (PHP's PDO::lastInsertId() does exactly that) would get an audit event
 * id.  audit_next_event_id() advances the sequence the way nextval() does
 * (same page, same WAL record, the same 32 values logged ahead, so a
 * crash never hands out a value twice and any other nextval() of it stays
 * consistent) but keeps no session state: lastval() and currval() of the
 * session are left alone.  Ascending sequences only (the events sequence
 * is one), with its cache setting ignored: one value per call.
 *
 * Transaction and locking: like nextval(), RowExclusiveLock on the
 * sequence (to the end of the transaction) and the exclusive lock of its
 * only buffer while it is changed; not transactional.  Refused in a
 * read-only transaction and in parallel mode, as nextval() is.
 *
 *-------------------------------------------------------------------------
 */
#include "audit_log.h"

#include "access/htup_details.h"
#include "access/relation.h"
#include "access/xact.h"
#include "access/xloginsert.h"
#include "catalog/pg_sequence.h"
#include "commands/sequence.h"
#include "miscadmin.h"
#include "storage/bufmgr.h"
#include "tcop/utility.h"
#include "utils/rel.h"
#include "utils/syscache.h"

/* As in PostgreSQL's sequence.c (private there). */
#define SEQ_LOG_VALS	32
#define SEQ_MAGIC		0x1717

typedef struct sequence_magic
{
	uint32		magic;
} sequence_magic;

/*
 * audit_next_event_id: nextval() of the ascending sequence seqid, without
 * making it the session's last used sequence.
 */
int64
audit_next_event_id(Oid seqid)
{
	Relation	rel;
	HeapTuple	pgstuple;
	Form_pg_sequence pgsform;
	int64		incby,
				maxv;
	Buffer		buf;
	Page		page;
	ItemId		lp;
	HeapTupleData tuple;
	Form_pg_sequence_data seq;
	int64		next,
				log,
				result;
	bool		logit = false;

	rel = relation_open(seqid, RowExclusiveLock);
	if (rel->rd_rel->relkind != RELKIND_SEQUENCE)
		elog(ERROR, "\"%s\" is not a sequence", RelationGetRelationName(rel));
	if (!rel->rd_islocaltemp)
		PreventCommandIfReadOnly("nextval()");
	PreventCommandIfParallelMode("nextval()");

	pgstuple = SearchSysCache1(SEQRELID, ObjectIdGetDatum(seqid));
	if (!HeapTupleIsValid(pgstuple))
		elog(ERROR, "cache lookup failed for sequence %u", seqid);
	pgsform = (Form_pg_sequence) GETSTRUCT(pgstuple);
	incby = pgsform->seqincrement;
	maxv = pgsform->seqmax;
	ReleaseSysCache(pgstuple);
	if (incby <= 0)
		elog(ERROR, "sequence \"%s\" is not ascending", RelationGetRelationName(rel));

	/* The sequence's only tuple, as sequence.c's read_seq_tuple() reads it. */
	buf = ReadBuffer(rel, 0);
	LockBuffer(buf, BUFFER_LOCK_EXCLUSIVE);
	page = BufferGetPage(buf);
	if (((sequence_magic *) PageGetSpecialPointer(page))->magic != SEQ_MAGIC)
		elog(ERROR, "bad magic number in sequence \"%s\"", RelationGetRelationName(rel));
	lp = PageGetItemId(page, FirstOffsetNumber);
	tuple.t_data = (HeapTupleHeader) PageGetItem(page, lp);
	tuple.t_len = ItemIdGetLength(lp);
	if (HeapTupleHeaderGetRawXmax(tuple.t_data) != InvalidTransactionId)
	{
		HeapTupleHeaderSetXmax(tuple.t_data, InvalidTransactionId);
		tuple.t_data->t_infomask &= ~HEAP_XMAX_COMMITTED;
		tuple.t_data->t_infomask |= HEAP_XMAX_INVALID;
		MarkBufferDirtyHint(buf, true);
	}
	seq = (Form_pg_sequence_data) GETSTRUCT(&tuple);

	/* The value to return: last_value itself the first time, else the next. */
	result = seq->last_value;
	if (seq->is_called)
	{
		if ((maxv >= 0 && result > maxv - incby) || (maxv < 0 && result + incby > maxv))
			ereport(ERROR,
					(errcode(ERRCODE_SEQUENCE_GENERATOR_LIMIT_EXCEEDED),
					 errmsg("nextval: reached maximum value of sequence \"%s\" (%lld)",
							RelationGetRelationName(rel), (long long) maxv)));
		result += incby;
	}

	/*
	 * WAL: as nextval(), log SEQ_LOG_VALS values ahead when the logged ones
	 * are used up, on the first call, and on the first call after a
	 * checkpoint; the record carries the farthest logged value.
	 */
	log = seq->log_cnt;
	next = result;
	if (log < 1 || !seq->is_called || PageGetLSN(page) <= GetRedoRecPtr())
	{
		int			i;

		logit = true;
		log = SEQ_LOG_VALS;
		for (i = 0; i < SEQ_LOG_VALS; i++)
		{
			if ((maxv >= 0 && next > maxv - incby) || (maxv < 0 && next + incby > maxv))
			{
				log = i;
				break;
			}
			next += incby;
		}
	}
	else
		log--;

	if (logit && RelationNeedsWAL(rel))
		GetTopTransactionId();	/* commit flushes the WAL and waits for sync rep */

	START_CRIT_SECTION();
	MarkBufferDirty(buf);
	if (logit && RelationNeedsWAL(rel))
	{
		xl_seq_rec	xlrec;
		XLogRecPtr	recptr;

		XLogBeginInsert();
		XLogRegisterBuffer(0, buf, REGBUF_WILL_INIT);
		seq->last_value = next;
		seq->is_called = true;
		seq->log_cnt = 0;
		xlrec.node = rel->rd_node;
		XLogRegisterData((char *) &xlrec, sizeof(xl_seq_rec));
		XLogRegisterData((char *) tuple.t_data, tuple.t_len);
		recptr = XLogInsert(RM_SEQ_ID, XLOG_SEQ_LOG);
		PageSetLSN(page, recptr);
	}
	seq->last_value = result;
	seq->is_called = true;
	seq->log_cnt = log;
	END_CRIT_SECTION();

	UnlockReleaseBuffer(buf);
	relation_close(rel, NoLock);
	return result;
}
