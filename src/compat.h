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
 * and the history of the headers named in each comment.  Each guard picks
 * between two signatures or struct layouts, so a guard wrong for 16 or 17
 * fails that build rather than misbehaving.
 *
 * Also here: LZ4, which a server built without --with-lz4 lacks.
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
 * 16	GrantRoleStmt.admin_opt became a list of options, opt (DefElem
 *		"admin", "inherit", later "set"; nodes/parsenodes.h; commit "Allow
 *		grant-level control of role inheritance behavior", August 2022).
 *		REVOKE ADMIN OPTION FOR gives ("admin", false).
 * 16	ResultRelInfo.ri_RootToPartitionMap became ri_RootToChildMap, built
 *		on demand by ExecGetRootToChildMap() (executor/executor.h; commit
 *		"Generalize ri_RootToPartitionMap to use for non-partition
 *		children", December 2022).
 * 18	parser/gram.h (the grammar's token numbers) is not installed with
 *		the server headers of 18 (15's are; 16's and 17's were not checked
 *		here): the string-literal tokens of the core scanner are learnt at
 *		run time instead, on every version (audit_string_token()).
 * 17	PGPROC.lxid moved into PGPROC.vxid.lxid (storage/proc.h; commit
 *		"Redefine backend ID to be an index into the proc array", March
 *		2024, which also renamed BackendId to ProcNumber).
 * 18	RelationGetPrimaryKeyIndex() took a second argument, deferrable_ok
 *		(utils/relcache.h; with "Catalog not-null constraints", November
 *		2024: a first version of that change went into 17's development
 *		and was reverted with it before 17.0).  false keeps 15's answer: no
 *		index for a DEFERRABLE primary key.
 * 18	ExecInitRangeTable() took a fourth argument, unpruned_relids, the
 *		range-table indexes the executor may open for scanning
 *		(executor/executor.h; commit "Track unpruned relids to avoid
 *		processing pruned relations", February 2025).  ExecutorStart_hook
 *		still returns void in 18: the change to bool made during 18's
 *		development ("Don't lock partitions pruned by initial pruning",
 *		February 2025) was reverted before the release (May 2025), as the
 *		18.6 headers show.
 *
 * Unchanged from 15 to 18 for what audit_log calls (no guard needed):
 * ProcessUtility_hook and standard_ProcessUtility(), ExecutorStart_hook,
 * ClientAuthentication_hook, shmem_request_hook/shmem_startup_hook,
 * RegisterBackgroundWorker() and BackgroundWorkerInitializeConnection(),
 * DefineCustom*Variable() and MarkGUCPrefixReserved(), SPI, the trigger
 * and event-trigger APIs, table_tuple_insert()/table_multi_insert(),
 * ExecFindPartition().
 *
 *-------------------------------------------------------------------------
 */
#ifndef AUDIT_LOG_COMPAT_H
#define AUDIT_LOG_COMPAT_H

#include "postgres.h"

#include "executor/executor.h"
#include "nodes/makefuncs.h"
#include "nodes/parsenodes.h"
#include "nodes/pg_list.h"
#include "nodes/plannodes.h"
#include "access/toast_compression.h"
#include "commands/defrem.h"
#include "common/keywords.h"
#include "parser/scanner.h"
#include "storage/proc.h"
#include "utils/rel.h"
#include "utils/relcache.h"
#if PG_VERSION_NUM >= 160000
#include "parser/parse_relation.h"
#endif

#if PG_VERSION_NUM < 150000
#error "audit_log needs PostgreSQL 15 or later"
#endif

/*
 * AUDIT_TOAST_COMPRESSION: how the writer compresses large row images: LZ4
 * where the server was built with it (Debian's are), else pglz.
 */
#ifdef USE_LZ4
#define AUDIT_TOAST_COMPRESSION TOAST_LZ4_COMPRESSION
#else
#define AUDIT_TOAST_COMPRESSION TOAST_PGLZ_COMPRESSION
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

/*
 * audit_grant_role_opts: the options of GRANT/REVOKE role as DefElems: 16
 * made them a list (admin, inherit, set; REVOKE ... OPTION FOR names the
 * one it revokes), 15 has admin_opt only.
 */
static inline List *
audit_grant_role_opts(GrantRoleStmt *g)
{
#if PG_VERSION_NUM >= 160000
	return g->opt;
#else
	return g->admin_opt ? list_make1(makeDefElem("admin", (Node *) makeBoolean(true), -1)) : NIL;
#endif
}

/*
 * AUDIT_CREATEROLE_ADMINISTERS_ALL: a CREATEROLE role may grant, alter,
 * rename and drop every role that is not a superuser; 16 asks for the
 * ADMIN OPTION on the role (release notes of 16, "Restrict the privileges
 * of CREATEROLE").
 */
#define AUDIT_CREATEROLE_ADMINISTERS_ALL (PG_VERSION_NUM < 160000)

/*
 * audit_root_to_child_map: the map from the row type of the partitioned
 * table to that of its partition rri (NULL when they are the same), for
 * rows that ExecFindPartition() routed there.
 */
static inline TupleConversionMap *
audit_root_to_child_map(ResultRelInfo *rri, EState *estate)
{
#if PG_VERSION_NUM >= 160000
	return ExecGetRootToChildMap(rri, estate);
#else
	return rri->ri_RootToPartitionMap;
#endif
}

/*
 * audit_primary_key_index: the OID of rel's primary key index, InvalidOid
 * when it has none or when it is DEFERRABLE.
 */
static inline Oid
audit_primary_key_index(Relation rel)
{
#if PG_VERSION_NUM >= 180000
	return RelationGetPrimaryKeyIndex(rel, false);
#else
	return RelationGetPrimaryKeyIndex(rel);
#endif
}

/* audit_my_lxid: this backend's local id of its current transaction. */
#if PG_VERSION_NUM >= 170000
#define audit_my_lxid()		(MyProc->vxid.lxid)
#else
#define audit_my_lxid()		(MyProc->lxid)
#endif

/*
 * audit_string_token: whether tok, a token number returned by the core
 * scanner (core_yylex), is a string literal: '...', E'...', $$...$$,
 * U&'...', B'...' or X'...'.  The numbers are the grammar's (SCONST,
 * USCONST, BCONST, XCONST of parser/gram.h, not installed by recent
 * versions): they are learnt once per backend by scanning one literal of
 * each kind.
 */
static inline bool
audit_string_token(int tok)
{
	static int	codes[4];

	if (codes[0] == 0)
	{
		const char *sample = "'a' U&'a' B'0' X'0'";
		core_yy_extra_type extra;
		core_YYSTYPE yylval;
		YYLTYPE		yylloc;
		core_yyscan_t scanner;
		int			found[4];
		int			i;

		scanner = scanner_init(sample, &extra, &ScanKeywords, ScanKeywordTokens);
		extra.standard_conforming_strings = true;	/* U&'' needs it */
		for (i = 0; i < 4; i++)
			found[i] = core_yylex(&yylval, &yylloc, scanner);
		scanner_finish(scanner);
		for (i = 0; i < 4; i++)
			codes[i] = found[i];
	}
	return tok != 0 &&
		(tok == codes[0] || tok == codes[1] || tok == codes[2] || tok == codes[3]);
}

/*
 * AUDIT_SEQ_REC_SET_LOCATOR: the relation of a sequence's WAL record
 * (xl_seq_rec): RelFileNode became RelFileLocator in 16 ("Convert
 * RelFileNode to RelFileLocator", commit b0a55e43).
 */
#if PG_VERSION_NUM >= 160000
#define AUDIT_SEQ_REC_SET_LOCATOR(xlrec, rel) ((xlrec).locator = (rel)->rd_locator)
#else
#define AUDIT_SEQ_REC_SET_LOCATOR(xlrec, rel) ((xlrec).node = (rel)->rd_node)
#endif

/*
 * audit_walrcv_connect, audit_walrcv_create_slot: a logical replication
 * connection and a slot on it (libpqwalreceiver).  16 added
 * must_use_password to connect, 17 the replication flag to connect and
 * failover to create_slot.
 */
#if PG_VERSION_NUM >= 170000
#define audit_walrcv_connect(conninfo, appname, err) \
	walrcv_connect(conninfo, true, true, false, appname, err)
#define audit_walrcv_create_slot(conn, slot, lsn) \
	walrcv_create_slot(conn, slot, false, false, false, CRS_NOEXPORT_SNAPSHOT, lsn)
#elif PG_VERSION_NUM >= 160000
#define audit_walrcv_connect(conninfo, appname, err) \
	walrcv_connect(conninfo, true, false, appname, err)
#define audit_walrcv_create_slot(conn, slot, lsn) \
	walrcv_create_slot(conn, slot, false, false, CRS_NOEXPORT_SNAPSHOT, lsn)
#else
#define audit_walrcv_connect(conninfo, appname, err) \
	walrcv_connect(conninfo, true, appname, err)
#define audit_walrcv_create_slot(conn, slot, lsn) \
	walrcv_create_slot(conn, slot, false, false, CRS_NOEXPORT_SNAPSHOT, lsn)
#endif

/*
 * audit_interval_special: the text of an infinite interval ("infinity",
 * "-infinity"; 17 added them), or NULL for a finite one.
 */
#if PG_VERSION_NUM >= 170000
#define audit_interval_special(span) \
	(INTERVAL_IS_NOBEGIN(span) ? "-infinity" : INTERVAL_IS_NOEND(span) ? "infinity" : (const char *) NULL)
#else
#define audit_interval_special(span) ((const char *) NULL)
#endif

/*
 * audit_database_owner: does the current user own database dboid (16
 * replaced pg_database_ownercheck with object_ownercheck)?
 */
#if PG_VERSION_NUM >= 160000
#define audit_database_owner(dboid) object_ownercheck(DatabaseRelationId, (dboid), GetUserId())
#else
#define audit_database_owner(dboid) pg_database_ownercheck((dboid), GetUserId())
#endif

/*
 * audit_walrcv_pgconn: the libpq connection of a libpqwalreceiver
 * connection.  WalReceiverConn is private to libpqwalreceiver; in 15 to
 * 18 it begins with it (PGconn *streamConn).  Used only to ask libpq
 * whether the server asked for a password (PQconnectionUsedPassword(),
 * which 16's must_use_password also asks, with a hint about subscription
 * parameters that do not apply here).
 */
#define audit_walrcv_pgconn(conn) (*(PGconn **) (conn))

/*
 * audit_index_beginscan: index_beginscan() gained its instrumentation
 * argument in 18 (EXPLAIN's index searches, commit 0fbceae8).
 */
#if PG_VERSION_NUM >= 180000
#define audit_index_beginscan(heap, index, snapshot, nkeys, norderbys) \
	index_beginscan(heap, index, snapshot, NULL, nkeys, norderbys)
#else
#define audit_index_beginscan(heap, index, snapshot, nkeys, norderbys) \
	index_beginscan(heap, index, snapshot, nkeys, norderbys)
#endif

/*
 * AUDIT_AT_DROP_COLUMN: up to 15, ALTER TABLE ... DROP COLUMN without ONLY
 * reaches the event triggers as AT_DropColumnRecurse (removed in 16).
 */
#if PG_VERSION_NUM < 160000
#define AUDIT_AT_DROP_COLUMN(t) ((t) == AT_DropColumn || (t) == AT_DropColumnRecurse)
#else
#define AUDIT_AT_DROP_COLUMN(t) ((t) == AT_DropColumn)
#endif

/*
 * AUDIT_LOGIN_TRIGGERS_FOLLOW: from 17 on, a login event trigger runs after
 * the session's setup transaction, in one of its own (PostgresMain,
 * EventTriggerOnLogin()), and may still refuse the session: true when it
 * will run (its own test).
 */
#if PG_VERSION_NUM >= 170000
#include "commands/event_trigger.h"
#define AUDIT_LOGIN_TRIGGERS_FOLLOW() \
	(IsUnderPostmaster && event_triggers && OidIsValid(MyDatabaseId) && MyDatabaseHasLoginEventTriggers)
#else
#define AUDIT_LOGIN_TRIGGERS_FOLLOW() false
#endif

/*
 * audit_authn_id: the identity the client proved (a certificate's name, a
 * peer's or LDAP's user, a pg_ident map's system name), NULL under trust:
 * in the Port up to 15, in MyClientConnectionInfo from 16 on.
 */
#if PG_VERSION_NUM >= 160000
#define audit_authn_id(port) (MyClientConnectionInfo.authn_id)
#else
#define audit_authn_id(port) ((port)->authn_id)
#endif

#endif							/* AUDIT_LOG_COMPAT_H */
