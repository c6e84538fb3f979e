/*-------------------------------------------------------------------------
 *
 * compat.h
 *		The differences between the PostgreSQL major versions audit_log
 *		builds against (15, 16, 17 and 18), in one place.
 *
 * Every call whose signature or data structure differs between versions
 * goes through a macro or inline function here, guarded by PG_VERSION_NUM;
 * the .c files call only these.  15 and 18 are built and tested by CI; 16
 * and 17 are not (no source here): their guards follow the release notes
 * and the history of the headers named in each comment.
 *
 * Differences, by version:
 *
 * 16	Permission checking moved out of RangeTblEntry (requiredPerms,
 *		checkAsUser, selectedCols...) into RTEPermissionInfo, one per
 *		RTE_RELATION that needs checking, referenced by rte->perminfoindex
 *		(1-based) into PlannedStmt.permInfos / Query.rteperminfos /
 *		EState.es_rteperminfos (nodes/parsenodes.h; commit "Rework query
 *		relation permission checking", December 2022).  ExecInitRangeTable()
 *		took the permInfos list as a third argument; addRTEPermissionInfo()
 *		(parser/parse_relation.h) makes one.  ExecutorCheckPerms_hook became
 *		ExecutorCheckPerms_hook(rangeTable, rtePermInfos, ereport) (unused
 *		here).
 * 16	ExecInsertIndexTuples() took a last argument, onlySummarizing
 *		(executor/executor.h; commit "Ignore BRIN indexes when checking for
 *		HOT updates", March 2023).
 * 17	Nothing that audit_log calls changed (BackendId became ProcNumber,
 *		MemoryContextResetAndDeleteChildren went away, custom wait events
 *		came: none used here).
 * 18	ExecInitRangeTable() took a fourth argument, unpruned_relids, the
 *		range-table indexes the executor may open for scanning
 *		(executor/executor.h; commit "Track unpruned relids to avoid
 *		processing pruned relations", February 2025).  ExecutorStart_hook
 *		still returns void in 18: the change to bool made during 18's
 *		development ("Don't lock partitions pruned by initial pruning",
 *		February 2025) was reverted before the release (May 2025), as the
 *		18.6 headers show.
 *
 *-------------------------------------------------------------------------
 */
#ifndef AUDIT_LOG_COMPAT_H
#define AUDIT_LOG_COMPAT_H

#include "postgres.h"

#include "executor/executor.h"
#include "nodes/parsenodes.h"
#include "nodes/pg_list.h"
#include "nodes/plannodes.h"
#if PG_VERSION_NUM >= 160000
#include "parser/parse_relation.h"
#endif

#if PG_VERSION_NUM < 150000
#error "audit_log needs PostgreSQL 15 or later"
#endif

/*
 * audit_rte_required_perms: the privileges (ACL_INSERT, ...) that the
 * planned statement requires on the range-table entry rte; 0 when none are
 * checked for it.
 */
static inline AclMode
audit_rte_required_perms(PlannedStmt *ps, RangeTblEntry *rte)
{
#if PG_VERSION_NUM >= 160000
	RTEPermissionInfo *perminfo;

	if (rte->perminfoindex == 0 ||
		rte->perminfoindex > list_length(ps->permInfos))
		return 0;
	perminfo = list_nth_node(RTEPermissionInfo, ps->permInfos,
							 rte->perminfoindex - 1);
	return perminfo->requiredPerms;
#else
	return rte->requiredPerms;
#endif
}

/*
 * audit_init_range_table: give estate a range table of the single relation
 * rte, requiring perms on it (recorded, not checked), as ExecInitRangeTable()
 * does for a planned statement.
 */
static inline void
audit_init_range_table(EState *estate, RangeTblEntry *rte, AclMode perms)
{
#if PG_VERSION_NUM >= 160000
	List	   *perminfos = NIL;
	RTEPermissionInfo *perminfo = addRTEPermissionInfo(&perminfos, rte);

	perminfo->requiredPerms = perms;
#if PG_VERSION_NUM >= 180000
	ExecInitRangeTable(estate, list_make1(rte), perminfos,
					   bms_make_singleton(1));
#else
	ExecInitRangeTable(estate, list_make1(rte), perminfos);
#endif
#else
	rte->requiredPerms = perms;
	ExecInitRangeTable(estate, list_make1(rte));
#endif
}

/*
 * audit_insert_index_tuples: insert the index entries of the row just
 * stored from slot into every index of rri (a plain INSERT: no ON CONFLICT,
 * no deferred uniqueness).
 */
static inline void
audit_insert_index_tuples(ResultRelInfo *rri, TupleTableSlot *slot,
						  EState *estate)
{
#if PG_VERSION_NUM >= 160000
	(void) ExecInsertIndexTuples(rri, slot, estate, false, false, NULL, NIL,
								 false);
#else
	(void) ExecInsertIndexTuples(rri, slot, estate, false, false, NULL, NIL);
#endif
}

#endif							/* AUDIT_LOG_COMPAT_H */
