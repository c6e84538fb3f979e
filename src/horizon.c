/*-------------------------------------------------------------------------
 *
 * horizon.c
 *		The paging horizon: the lowest event_id that a transaction still in
 *		progress may yet commit.  A page of events (search() with
 *		after_event_id or max_rows, every export()) stops below it, so that
 *		continuing after the page's last event_id never skips an event that
 *		commits later.
 *
 * event_id is taken at capture, but transactions commit in another order:
 * A takes 41 and stays open, B takes 42 and commits, a reader pages up to
 * 42, A commits, and "after 42" never returns 41.  Hence:
 *
 * Writer (audit_horizon_enter, once per top-level transaction, BEFORE its
 * first event_id is taken): read F, the sequence's next value, then take a
 * transaction-level lock whose tag carries F (advisory lock tag, objsubid
 * AUDIT_HORIZON_LOCK, in AccessShareLock mode: it never waits and nobody
 * waits for it).  Every id the transaction takes is >= F.  The lock is
 * held by the top-level transaction (a rolled-back savepoint keeps it) and
 * released after its commit is visible to new snapshots.
 *
 * Reader (audit_horizon_push_snapshot): (r1) read N, the sequence's next
 * value; (r2) read the lock table: H = min(N, F of every such lock in this
 * database held by another transaction); (r3) take a new snapshot and read
 * only events with event_id < H through it.
 *
 * Why an event e with id < H that ever commits is in the page (or belongs
 * to the reader's own transaction): let T be its transaction, F_T its lock.
 *  - T's lock was in the table at (r2): then H <= F_T <= id(e). Impossible.
 *  - T's lock was released before (r2): T had committed (the lock goes after
 *    the commit is visible), so the snapshot of (r3) sees e.
 *  - T took its lock after (r2): T takes ids only after its lock, so after
 *    (r1), and ids are handed out in increasing order: id(e) >= N >= H.
 *    Impossible.
 * Taking the lock before the first id is what closes the race "id taken,
 * not yet published" (a writer that publishes after taking its id could
 * have taken it before (r1) and published after (r2)).  The happens-before
 * edges are the sequence's buffer lock (r1 against the writer's nextval)
 * and the lock partition's LWLock (r2 against the writer's LockAcquire and
 * the release at commit).  The snapshot must be taken after (r2): a
 * snapshot taken before could miss a T that commits between it and (r2).
 * So a page is read with a snapshot of its own (GetLatestSnapshot), also
 * in a REPEATABLE READ or SERIALIZABLE transaction.
 *
 * What this relies on from the event_id allocator: an id handed out after
 * the sequence's next value was read is >= that value (the sequence has
 * CACHE 1 and no backend keeps unused ids from one transaction to the
 * next).  An allocator that kept a range of ids across transactions would
 * have to publish the range's start instead.
 *
 * Why a lock and not shared memory: the lock table exists without
 * shared_preload_libraries (table capture works without it), a prepared
 * transaction keeps its locks (PREPARE transfers them, a restart re-takes
 * them), and the background worker's transactions count like any other.
 * A hot standby cannot see the primary's locks: paging there is refused.
 *
 * Cost: per writing transaction one read of the sequence's page and one
 * lock (nothing per event); per page one read of the lock table
 * (GetLockStatusData, as pg_locks does).
 *
 *-------------------------------------------------------------------------
 */
#include "audit_log.h"
#include "compat.h"

#include "access/xact.h"
#include "access/xlog.h"
#include "catalog/namespace.h"
#include "catalog/pg_authid.h"
#include "catalog/pg_type.h"
#include "commands/sequence.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "storage/lock.h"
#include "storage/proc.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/resowner.h"
#include "utils/snapmgr.h"
#include "utils/tuplestore.h"

PG_FUNCTION_INFO_V1(audit_page);

/* objsubid of the horizon locks in pg_locks ("au"); SQL cannot take it. */
#define AUDIT_HORIZON_LOCK	0x6175

#define PAGE_BATCH			1000

static LocalTransactionId entered_lxid = InvalidLocalTransactionId;

/*
 * next_event_id: the value the sequence seqid hands out next (its
 * last_value + 1, or 1 before its first use).  Read as the bootstrap
 * superuser: the writer runs as whoever is audited.
 */
static int64
next_event_id(Oid seqid)
{
	LOCAL_FCINFO(fcinfo, 1);
	Oid			save_userid;
	int			save_sec;
	Datum		d;

	GetUserIdAndSecContext(&save_userid, &save_sec);
	SetUserIdAndSecContext(BOOTSTRAP_SUPERUSERID,
						   save_sec | SECURITY_LOCAL_USERID_CHANGE);
	InitFunctionCallInfoData(*fcinfo, NULL, 1, InvalidOid, NULL, NULL);
	fcinfo->args[0].value = ObjectIdGetDatum(seqid);
	fcinfo->args[0].isnull = false;
	d = pg_sequence_last_value(fcinfo);
	SetUserIdAndSecContext(save_userid, save_sec);
	/* NULL: never called, its first value is 1 at the lowest */
	return fcinfo->isnull ? 1 : DatumGetInt64(d) + 1;
}

/*
 * audit_horizon_enter: the writer's half.  Call in every transaction that
 * stores events, before it takes its first event_id from seqid; does
 * something only the first time in a top-level transaction.
 */
void
audit_horizon_enter(Oid seqid)
{
	LOCKTAG		tag;
	ResourceOwner save_owner;
	int64		first;

	if (audit_my_lxid() == entered_lxid)
		return;
	first = next_event_id(seqid);
	SET_LOCKTAG_ADVISORY(tag, MyDatabaseId, (uint32) ((uint64) first >> 32),
						 (uint32) first, AUDIT_HORIZON_LOCK);
	/* Held by the top-level transaction: a rolled-back savepoint keeps it. */
	save_owner = CurrentResourceOwner;
	CurrentResourceOwner = TopTransactionResourceOwner;
	(void) LockAcquire(&tag, AccessShareLock, false, false);
	CurrentResourceOwner = save_owner;
	entered_lxid = audit_my_lxid();
}

/*
 * audit_horizon: the reader's half, steps (r1) and (r2): the lowest
 * event_id that another transaction still in progress may commit, or the
 * next event_id when none is.  The caller must read the page with a
 * snapshot taken afterwards (see audit_horizon_push_snapshot).
 */
int64
audit_horizon(void)
{
	Oid			nsp;
	Oid			seqid = InvalidOid;
	int64		horizon;
	LockData   *locks;
	int			i;

	if (RecoveryInProgress())
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("cannot page through audit events during recovery"),
				 errdetail("A standby cannot see which transactions of the primary are still writing events, so a page could miss events that commit later."),
				 errhint("Page on the primary, or search without after_event_id and max_rows.")));
	nsp = get_namespace_oid(AUDIT_SCHEMA, true);
	if (OidIsValid(nsp))
		seqid = get_relname_relid(AUDIT_EVENTS_SEQ, nsp);
	if (!OidIsValid(seqid))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("audit_log is not installed in this database"),
				 errhint("Run CREATE EXTENSION audit_log CASCADE.")));

	horizon = next_event_id(seqid);		/* (r1) */
	locks = GetLockStatusData();		/* (r2) */
	for (i = 0; i < locks->nelements; i++)
	{
		LockInstanceData *l = &locks->locks[i];
		int64		first;

		if (l->locktag.locktag_type != LOCKTAG_ADVISORY ||
			l->locktag.locktag_field4 != AUDIT_HORIZON_LOCK ||
			l->locktag.locktag_field1 != MyDatabaseId ||
			l->holdMask == 0 ||
			l->pid == MyProcPid)	/* our own events are in our snapshot */
			continue;
		first = (int64) (((uint64) l->locktag.locktag_field2 << 32) |
						 l->locktag.locktag_field3);
		if (first < horizon)
			horizon = first;
	}
	pfree(locks->locks);
	pfree(locks);
	return horizon;
}

/*
 * audit_horizon_push_snapshot: the horizon, then (r3) a new snapshot made
 * the active one; the caller reads its page with it (SPI read-only) and
 * pops it with PopActiveSnapshot().
 */
int64
audit_horizon_push_snapshot(void)
{
	int64		horizon = audit_horizon();

	PushActiveSnapshot(GetLatestSnapshot());
	return horizon;
}

/*
 * audit_page: audit_log._page(query text) -> SETOF audit_log.event_log.
 * Runs query, whose $1 (bigint) is the horizon, with a snapshot taken
 * after the horizon; search() builds the query ("... AND e.event_id < $1
 * ORDER BY e.event_id LIMIT n").  Granted to nobody.
 */
Datum
audit_page(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	char	   *query = text_to_cstring(PG_GETARG_TEXT_PP(0));
	Oid			argtypes[1] = {INT8OID};
	Datum		args[1];
	SPIPlanPtr	plan;
	Portal		portal;

	InitMaterializedSRF(fcinfo, MAT_SRF_USE_EXPECTED_DESC);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	args[0] = Int64GetDatum(audit_horizon_push_snapshot());
	plan = SPI_prepare_cursor(query, 1, argtypes, 0);
	if (plan == NULL)
		elog(ERROR, "could not prepare the page query: %s", SPI_result_code_string(SPI_result));
	portal = SPI_cursor_open(NULL, plan, args, NULL, true);
	for (;;)
	{
		uint64		n;

		SPI_cursor_fetch(portal, true, PAGE_BATCH);
		n = SPI_processed;
		if (n == 0)
			break;
		if (SPI_tuptable->tupdesc->natts != rsinfo->setDesc->natts)
			elog(ERROR, "the page query does not return event_log rows");
		for (uint64 r = 0; r < n; r++)
			tuplestore_puttuple(rsinfo->setResult, SPI_tuptable->vals[r]);
		SPI_freetuptable(SPI_tuptable);
	}
	SPI_cursor_close(portal);
	PopActiveSnapshot();
	SPI_finish();
	return (Datum) 0;
}
