/*-------------------------------------------------------------------------
 *
 * sources.c
 *		The C side of "many databases, one trail" (part 80_sources of the
 *		install script): the trigger that tags the events a subscription
 *		applies with their source, and the source-side connection that
 *		subscribe()/unsubscribe() need for the replication slot.
 *
 * Tagging.  A source publishes audit_log.events without its source column
 * (a column list), so the central apply leaves it NULL; the row trigger
 * audit_log_source_fill, ENABLE REPLICA on the central events table (and
 * cloned to every partition), fires only where session_replication_role is
 * replica: in the logical replication apply and table-sync workers.  There
 * it sets source from the name of the worker's subscription, which
 * subscribe() names audit_log_<source>.  A worker of any other subscription
 * that writes audit_log.events is refused.  The source's seal records are
 * redirected the same way (audit_log._source_seal_fill, through
 * audit_log._apply_source()).  An event the source sends again (its
 * maintain() moved it between partitions) is skipped, not stored twice.
 *
 * Identity.  The subscription belongs to the extension's owner, so
 * PostgreSQL asks no password of its connection; subscribe() by a role
 * that is not a superuser is refused unless the source asked for the
 * conninfo's password (PQconnectionUsedPassword(), as postgres_fdw and
 * 16's subscriptions do): trust, peer or .pgpass never lend this server's
 * identity to such a role.
 *
 * Slots.  CREATE SUBSCRIPTION may create its slot, and DROP SUBSCRIPTION
 * drop it, only outside a transaction block, so not in a function:
 * subscribe() creates the subscription without a slot and then the slot
 * here, last, through the server's own libpqwalreceiver; unsubscribe()
 * detaches the slot from the subscription, drops it, then drops the slot
 * here.
 *
 * Transactions and locking: the trigger runs in the apply's transaction
 * and takes no lock of its own (its probe reads the index of the row's leaf).  audit_source_remote() opens a replication
 * connection to the source for the duration of the call; what it does
 * there (create or drop a slot) is not undone if the local transaction
 * aborts, which is why its callers do it last.
 *
 *-------------------------------------------------------------------------
 */
#include "audit_log.h"
#include "compat.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/stratnum.h"
#include "access/tableam.h"
#include "catalog/namespace.h"
#include "catalog/objectaccess.h"
#include "catalog/pg_index.h"
#include "executor/tuptable.h"
#include "utils/fmgroids.h"
#include "utils/snapmgr.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "libpq-fe.h"
#include "replication/walreceiver.h"
#include "replication/worker_internal.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "guard.h"
#include "util.h"
#include "utils/rel.h"
#include "utils/tuplestore.h"

PG_FUNCTION_INFO_V1(audit_source_fill);
PG_FUNCTION_INFO_V1(audit_source_remote);
PG_FUNCTION_INFO_V1(audit_apply_source);
PG_FUNCTION_INFO_V1(audit_replica_guard);

#define SOURCE_SUB_PREFIX "audit_log_"

/*
 * applying_source: the name of the audit_log subscription this process
 * applies, NULL in any other process.
 */
static const char *
applying_source(void)
{
	if (MySubscription == NULL ||
		strncmp(MySubscription->name, SOURCE_SUB_PREFIX, strlen(SOURCE_SUB_PREFIX)) != 0)
		return NULL;
	return MySubscription->name;
}

/*
 * apply_source: the source whose subscription this worker applies, NULL
 * outside a logical replication worker; an error in the worker of another
 * subscription.
 */
static const char *
apply_source(void)
{
	const char *subname;

	if (MySubscription == NULL)
		return NULL;
	subname = applying_source();
	if (subname == NULL || subname[strlen(SOURCE_SUB_PREFIX)] == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("subscription \"%s\" may not write audit events", MySubscription->name),
				 errdetail("Events arrive in audit_log.events only through the subscriptions of audit_log.subscribe()."),
				 errhint("Drop the subscription and call audit_log.subscribe(source, conninfo).")));
	return subname + strlen(SOURCE_SUB_PREFIX);
}

/*
 * audit_apply_source: audit_log._apply_source() -> the source of the
 * applying subscription, or NULL (see apply_source).
 */
Datum
audit_apply_source(PG_FUNCTION_ARGS)
{
	const char *src = apply_source();

	if (src == NULL)
		PG_RETURN_NULL();
	PG_RETURN_TEXT_P(cstring_to_text(src));
}

/*
 * source_event_stored: whether the event of tuple (a row routed to the leaf
 * rel of the central events table) is already stored under source src.
 * The source sends an event again when its maintain() moves it between
 * partitions (stray rows of the safety net to their day, a leaf split by a
 * policy change): a DELETE, not published, and an INSERT, published.  That
 * copy is skipped: without it the apply stopped on the unique key for good.
 * The key (source, event_id, occurred_at, category) names one event of the
 * source, and a moved copy that differs (edited on the source) must not
 * replace the central's copy either.  A row with that key can only be in
 * the leaf the new row is routed to, so this is one probe of the leaf's
 * unique index (no plan, no other partition locked).  Without that index
 * it answers false and the constraint decides.
 */
static bool
source_event_stored(Relation rel, HeapTuple tuple, Datum src)
{
	static const char *const cols[] = {"source", "event_id", "occurred_at", "category"};
	static const RegProcedure eqs[] = {F_TEXTEQ, F_INT8EQ, F_TIMESTAMPTZ_EQ, F_TEXTEQ};
	TupleDesc	desc = RelationGetDescr(rel);
	AttrNumber	attnums[4];
	Datum		values[4];
	List	   *indexes;
	ListCell   *lc;
	bool		found = false;
	int			i;

	for (i = 0; i < 4; i++)
	{
		bool		isnull;

		attnums[i] = SPI_fnumber(desc, cols[i]);
		if (attnums[i] <= 0)
			elog(ERROR, "audit_log.events has no column %s", cols[i]);
		if (i == 0)
			continue;
		values[i] = heap_getattr(tuple, attnums[i], desc, &isnull);
		if (isnull)
			return false;		/* the NOT NULL constraint answers */
	}
	values[0] = src;

	indexes = RelationGetIndexList(rel);
	foreach(lc, indexes)
	{
		Relation	idx = index_open(lfirst_oid(lc), AccessShareLock);
		Form_pg_index ix = idx->rd_index;
		bool		match = ix->indisunique && ix->indisvalid && ix->indnkeyatts == 4;

		for (i = 0; match && i < 4; i++)
			match = ix->indkey.values[i] == attnums[i];
		if (match)
		{
			ScanKeyData key[4];
			IndexScanDesc scan;
			TupleTableSlot *slot = table_slot_create(rel, NULL);

			for (i = 0; i < 4; i++)
				ScanKeyEntryInitialize(&key[i], 0, i + 1, BTEqualStrategyNumber, InvalidOid,
									   idx->rd_indcollation[i], eqs[i], values[i]);
			scan = audit_index_beginscan(rel, idx, GetActiveSnapshot(), 4, 0);
			index_rescan(scan, key, 4, NULL, 0);
			found = index_getnext_slot(scan, ForwardScanDirection, slot);
			index_endscan(scan);
			ExecDropSingleTupleTableSlot(slot);
		}
		index_close(idx, AccessShareLock);
		if (match)
			break;
	}
	list_free(indexes);
	return found;
}

/*
 * audit_source_fill: BEFORE INSERT row trigger of the central events
 * table, enabled for replica only.  Sets source to the name of the
 * applying subscription, without its audit_log_ prefix, and skips an event
 * of that source already stored here (source_event_stored).
 */
Datum
audit_source_fill(PG_FUNCTION_ARGS)
{
	TriggerData *td = (TriggerData *) fcinfo->context;
	TupleDesc	desc;
	HeapTuple	tuple;
	const char *src;
	int			attnum;
	Datum		value;
	bool		isnull = false;

	if (!CALLED_AS_TRIGGER(fcinfo) || !TRIGGER_FIRED_BEFORE(td->tg_event) ||
		!TRIGGER_FIRED_FOR_ROW(td->tg_event) || !TRIGGER_FIRED_BY_INSERT(td->tg_event))
		elog(ERROR, "audit_source_fill: not called as a BEFORE INSERT row trigger");
	tuple = td->tg_trigtuple;

	/* Not a subscription worker (a session in replica mode): as given. */
	src = apply_source();
	if (src == NULL)
		return PointerGetDatum(tuple);

	desc = td->tg_relation->rd_att;
	attnum = SPI_fnumber(desc, "source");
	if (attnum <= 0)
		elog(ERROR, "audit_log.events has no column source");
	value = CStringGetTextDatum(src);
	if (source_event_stored(td->tg_relation, tuple, value))
		return PointerGetDatum(NULL);
	return PointerGetDatum(heap_modify_tuple_by_cols(tuple, desc, 1, &attnum,
													 &value, &isnull));
}

/*
 * check_one_host: refuse a conninfo that names more than one host (host
 * or hostaddr lists, as libpq reads them: the last value of a repeated
 * keyword counts).  The password check of remote_connect() holds for the
 * host it was made with; the subscription's own connections could reach
 * another one of a list, which may let this server in without a password.
 */
static void
check_one_host(const char *conninfo)
{
	char	   *err = NULL;
	PQconninfoOption *opts = PQconninfoParse(conninfo, &err);
	bool		many = false;

	if (opts == NULL)
	{
		char	   *msg = pstrdup(err ? err : "out of memory");

		if (err)
			PQfreemem(err);
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid conninfo: %s", msg)));
	}
	for (PQconninfoOption *o = opts; o->keyword != NULL; o++)
		if ((strcmp(o->keyword, "host") == 0 || strcmp(o->keyword, "hostaddr") == 0) &&
			o->val != NULL && strchr(o->val, ',') != NULL)
			many = true;
	PQconninfoFree(opts);
	if (many)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("a conninfo naming more than one host is refused for a role that is not a superuser"),
				 errdetail("The check that the source asks for the password holds for one host only."),
				 errhint("Name the one host of the source.")));
}

/*
 * remote_connect: a replication connection to the source, or a clear
 * error.
 */
static WalReceiverConn *
remote_connect(const char *conninfo, bool need_password)
{
	WalReceiverConn *conn;
	char	   *err = NULL;

	if (need_password)
		check_one_host(conninfo);
	load_file("libpqwalreceiver", false);
	conn = audit_walrcv_connect(conninfo, "audit_log", &err);
	if (conn == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_CONNECTION_FAILURE),
				 errmsg("could not connect to the source: %s", err ? err : "unknown error"),
				 errhint("Check the conninfo, that the source server runs, and that its pg_hba.conf admits replication connections to the database.")));
	if (need_password && !PQconnectionUsedPassword(audit_walrcv_pgconn(conn)))
	{
		walrcv_disconnect(conn);
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("the source did not ask for the password of the conninfo"),
				 errdetail("The source let this server in without a password (trust, peer or a certificate): a role that is not a superuser must not borrow this server's identity."),
				 errhint("Have the source's pg_hba.conf ask this connection for a password (scram-sha-256), or let a superuser subscribe.")));
	}
	return conn;
}

/*
 * audit_source_remote: audit_log._source_remote(conninfo, slot, action):
 * 'check' (the source is reachable and has the publication
 * audit_log_events), 'create' (create the logical slot for pgoutput),
 * 'drop' (drop the slot, waiting for its walsender to let go) or 'slot'
 * (the slot's wal_status, or 'missing').  Returns NULL, the slot's
 * consistent point for 'create', its state for 'slot'.  Granted to nobody.
 */
Datum
audit_source_remote(PG_FUNCTION_ARGS)
{
	char	   *conninfo;
	char	   *slot;
	char	   *action;
	WalReceiverConn *conn;
	char	   *volatile result = NULL;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(2))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("conninfo and action must not be NULL")));
	conninfo = text_to_cstring(PG_GETARG_TEXT_PP(0));
	slot = PG_ARGISNULL(1) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(1));
	action = text_to_cstring(PG_GETARG_TEXT_PP(2));

	/* subscribe(): a caller that is not a superuser must be asked for the
	 * conninfo's password (the session user: subscribe() runs as owner) */
	conn = remote_connect(conninfo,
						  (strcmp(action, "check") == 0 || strcmp(action, "create") == 0) &&
						  !superuser_arg(GetSessionUserId()));
	PG_TRY();
	{
		if (strcmp(action, "check") == 0)
		{
			Oid			types[1] = {INT8OID};
			WalRcvExecResult *res;

			res = walrcv_exec(conn,
							  "SELECT pg_catalog.count(*) FROM pg_catalog.pg_publication"
							  " WHERE pubname OPERATOR(pg_catalog.=) 'audit_log_events'",
							  1, types);
			if (res->status != WALRCV_OK_TUPLES)
				ereport(ERROR,
						(errcode(ERRCODE_CONNECTION_FAILURE),
						 errmsg("could not query the source: %s", res->err)));
			{
				TupleTableSlot *ts = MakeSingleTupleTableSlot(res->tupledesc,
															  &TTSOpsMinimalTuple);
				bool		isnull;
				int64		n = 0;

				if (tuplestore_gettupleslot(res->tuplestore, true, false, ts))
				{
					Datum		d = slot_getattr(ts, 1, &isnull);

					n = isnull ? 0 : DatumGetInt64(d);
				}
				ExecDropSingleTupleTableSlot(ts);
				if (n == 0)
					ereport(ERROR,
							(errcode(ERRCODE_UNDEFINED_OBJECT),
							 errmsg("the source has no publication \"audit_log_events\""),
							 errhint("Run SELECT audit_log.publish(); in the source database first.")));
			}
			walrcv_clear_result(res);
		}
		else if (strcmp(action, "slot") == 0 && slot != NULL)
		{
			Oid			types[1] = {TEXTOID};
			WalRcvExecResult *res;
			char	   *q = psprintf("SELECT COALESCE((SELECT wal_status FROM pg_catalog.pg_replication_slots"
									 " WHERE slot_name OPERATOR(pg_catalog.=) %s), 'missing')",
									 quote_literal_cstr(slot));

			res = walrcv_exec(conn, q, 1, types);
			if (res->status != WALRCV_OK_TUPLES)
				ereport(ERROR,
						(errcode(ERRCODE_CONNECTION_FAILURE),
						 errmsg("could not query the source: %s", res->err)));
			{
				TupleTableSlot *ts = MakeSingleTupleTableSlot(res->tupledesc,
															  &TTSOpsMinimalTuple);
				bool		isnull = true;

				if (tuplestore_gettupleslot(res->tuplestore, true, false, ts))
				{
					Datum		d = slot_getattr(ts, 1, &isnull);

					if (!isnull)
						result = TextDatumGetCString(d);
				}
				ExecDropSingleTupleTableSlot(ts);
			}
			walrcv_clear_result(res);
		}
		else if (strcmp(action, "create") == 0 && slot != NULL)
		{
			XLogRecPtr	lsn;

			audit_walrcv_create_slot(conn, slot, &lsn);
			result = psprintf("%X/%X", LSN_FORMAT_ARGS(lsn));
		}
		else if (strcmp(action, "drop") == 0 && slot != NULL)
		{
			WalRcvExecResult *res;
			char	   *cmd = psprintf("DROP_REPLICATION_SLOT %s WAIT", quote_identifier(slot));

			res = walrcv_exec(conn, cmd, 0, NULL);
			if (res->status != WALRCV_OK_COMMAND)
				ereport(ERROR,
						(errcode(ERRCODE_CONNECTION_FAILURE),
						 errmsg("could not drop the replication slot \"%s\" on the source: %s",
								slot, res->err)));
			walrcv_clear_result(res);
		}
		else
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("invalid action \"%s\"", action)));
	}
	PG_FINALLY();
	{
		walrcv_disconnect(conn);
	}
	PG_END_TRY();

	if (result == NULL)
		PG_RETURN_NULL();
	PG_RETURN_TEXT_P(cstring_to_text(result));
}

/* ---------- what a source's subscription may write ---------- */

/*
 * A subscription's apply and table-sync workers write as the subscription's
 * owner, a superuser, through neither the executor nor the utility hook,
 * into whatever tables the source's publication names.  A source whose
 * superuser alters its publication (adds a table, publishes TRUNCATE), or a
 * server that only poses as a source, would otherwise rewrite any table of
 * the central database, the audit tables included.  Two fences, both only
 * in the workers of audit_log's subscriptions:
 *
 * - the object access hook refuses every explicit schema lookup but the
 *   extension's (the apply resolves a published table as schema.name), so
 *   such a subscription reaches the audit tables only;
 * - the trigger function audit_log._replica_guard(), ENABLE ALWAYS on every
 *   audit table (part 80), refuses there all but the inserts of events and
 *   seal records (and the redirected seal records of its own source).
 *
 * Each refusal is recorded as audit.tamper_attempt and fails the apply, which
 * stops and retries: nothing of the source is lost, nothing here changes.
 */
static object_access_hook_type prev_object_access_hook = NULL;


/*
 * refuse_replica_write: record a subscription's write to an audit table (or
 * outside the audit schema) as audit.tamper_attempt, and refuse it.
 */
static void
refuse_replica_write(const char *what)
{
	audit_refuse_tamper(what, "subscription", MySubscription->name, "APPLY", NULL,
						psprintf("subscription \"%s\" may not %s", MySubscription->name, what),
						"A source's subscription only inserts that source's events and seal records; the attempt has been recorded.",
						"Check the publication audit_log_events on the source: audit_log.publish() makes it.");
}

/*
 * source_object_access: the object access hook: in an audit_log
 * subscription's worker, an explicit lookup of any schema but the
 * extension's is refused.
 */
static void
source_object_access(ObjectAccessType access, Oid classId, Oid objectId,
					 int subId, void *arg)
{
	if (prev_object_access_hook)
		prev_object_access_hook(access, classId, objectId, subId, arg);
	if (access == OAT_NAMESPACE_SEARCH && applying_source() != NULL &&
		((ObjectAccessNamespaceSearch *) arg)->ereport_on_violation &&
		objectId != get_namespace_oid(AUDIT_SCHEMA, true))
	{
		char	   *nsp = get_namespace_name(objectId);

		refuse_replica_write(psprintf("write outside schema %s (schema %s)", AUDIT_SCHEMA,
									  nsp ? nsp : "?"));
	}
}

/*
 * audit_replica_guard: audit_log._replica_guard(), a trigger ENABLE ALWAYS
 * on the audit tables: in the worker of any subscription (session
 * replication role replica), refuse the write it fires for; a seal record
 * of the subscription's own source in source_seals (what
 * audit_log_source_seal stores) excepted.  Elsewhere it lets the row pass.
 */
Datum
audit_replica_guard(PG_FUNCTION_ARGS)
{
	TriggerData *td = (TriggerData *) fcinfo->context;
	Relation	rel;
	const char *op;

	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("audit_log._replica_guard() must be called as a trigger")));
	rel = td->tg_relation;
	if (MySubscription != NULL)
	{
		op = TRIGGER_FIRED_BY_INSERT(td->tg_event) ? "INSERT" :
			TRIGGER_FIRED_BY_UPDATE(td->tg_event) ? "UPDATE" :
			TRIGGER_FIRED_BY_DELETE(td->tg_event) ? "DELETE" : "TRUNCATE";
		if (strcmp(op, "INSERT") == 0 && applying_source() != NULL &&
			strcmp(RelationGetRelationName(rel), "source_seals") == 0)
		{
			int			attno = SPI_fnumber(RelationGetDescr(rel), "source");
			bool		isnull;
			Datum		src = attno > 0 ? heap_getattr(td->tg_trigtuple, attno,
													  RelationGetDescr(rel), &isnull) : (Datum) 0;

			if (attno > 0 && !isnull &&
				strcmp(TextDatumGetCString(src), apply_source()) == 0)
				return PointerGetDatum(td->tg_trigtuple);
		}
		refuse_replica_write(psprintf("%s %s.%s", op,
									  get_namespace_name(RelationGetNamespace(rel)),
									  RelationGetRelationName(rel)));
	}
	if (!TRIGGER_FIRED_FOR_ROW(td->tg_event))
		return PointerGetDatum(NULL);
	return PointerGetDatum(TRIGGER_FIRED_BY_UPDATE(td->tg_event) ? td->tg_newtuple : td->tg_trigtuple);
}

/*
 * audit_sources_init: install the object access hook (called from _PG_init
 * when preloaded).
 */
void
audit_sources_init(void)
{
	prev_object_access_hook = object_access_hook;
	object_access_hook = source_object_access;
}
