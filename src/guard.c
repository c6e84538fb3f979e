/*-------------------------------------------------------------------------
 *
 * guard.c
 *		What relaxes the extension's guards, and how it is kept from leaking:
 *		the "internal operation" mark of the extension's own functions, and
 *		the pinned search_path of every query the C code runs with raised
 *		rights or on behalf of another role.
 *
 * Internal operations.  The extension's own functions (enable, maintain,
 * seal...) do DDL on audit objects that the hooks must neither capture as a
 * user's nor refuse as tampering.  In 1.1 they say so through the hidden
 * setting audit_log.internal, set in their SET clause: PostgreSQL restores
 * it when the function returns, when it fails, and when a subtransaction
 * that set it aborts, so the mark can never outlive the call that made it.
 * The setting is PGC_SUSET: only the extension's SECURITY DEFINER functions
 * (owned by a superuser) and superusers can set it.
 *
 * A database still on the 1.0 SQL marks its operations with
 * audit_log._internal(true/false) instead.  That mark is backend-local; it
 * is cleared at the end of the top-level transaction and, so that a
 * function failing inside a savepoint or an EXCEPTION block cannot leave it
 * on, when any subtransaction that was open when it was set aborts.
 *
 * Pinned search_path.  audit_pin_search_path() opens a GUC nest level with
 * search_path = pg_catalog, pg_temp; audit_unpin_search_path() closes it.
 * An error between the two is undone by the transaction's GUC rollback
 * (AtEOXact_GUC / AtEOSubXact_GUC), like a function's SET clause.
 *
 * No locking: all of this is backend-local state.
 *
 *-------------------------------------------------------------------------
 */
#include "audit_log.h"

#include "access/xact.h"
#include "fmgr.h"
#include "utils/guc.h"

PG_FUNCTION_INFO_V1(audit_internal);
PG_FUNCTION_INFO_V1(audit_load);

/* audit_log.internal: set only through the SET clause of our functions. */
bool		audit_internal_setting = false;

/* The 1.0 mark: on since subtransaction internal_subid (0: off). */
static SubTransactionId internal_subid = InvalidSubTransactionId;
static bool callbacks_registered = false;

/*
 * audit_internal_active: true while the extension's own SQL functions work
 * on audit objects, or while the writer stores events.
 */
bool
audit_internal_active(void)
{
	return audit_internal_setting ||
		internal_subid != InvalidSubTransactionId ||
		audit_writing();
}

/*
 * internal_xact_callback: the 1.0 mark never outlives its transaction.
 */
static void
internal_xact_callback(XactEvent event, void *arg)
{
	if (event == XACT_EVENT_COMMIT || event == XACT_EVENT_ABORT ||
		event == XACT_EVENT_PARALLEL_COMMIT || event == XACT_EVENT_PARALLEL_ABORT ||
		event == XACT_EVENT_PREPARE)
		internal_subid = InvalidSubTransactionId;
}

/*
 * internal_subxact_callback: the 1.0 mark never outlives a subtransaction
 * that aborts around it.  Every subtransaction with an id at least mySubid
 * began while mySubid was open, so a mark set at or after mySubid was set
 * inside the aborting subtransaction.
 */
static void
internal_subxact_callback(SubXactEvent event, SubTransactionId mySubid,
						  SubTransactionId parentSubid, void *arg)
{
	if (event == SUBXACT_EVENT_ABORT_SUB &&
		internal_subid != InvalidSubTransactionId && internal_subid >= mySubid)
		internal_subid = InvalidSubTransactionId;
}

/*
 * audit_internal: audit_log._internal(on boolean) -> previous value, the
 * 1.0 marking of internal operations (1.1 functions use the setting).
 * Granted to nobody: only the extension's SECURITY DEFINER functions (and
 * superusers) call it.
 */
Datum
audit_internal(PG_FUNCTION_ARGS)
{
	bool		prev = internal_subid != InvalidSubTransactionId;

	if (!callbacks_registered)
	{
		RegisterXactCallback(internal_xact_callback, NULL);
		RegisterSubXactCallback(internal_subxact_callback, NULL);
		callbacks_registered = true;
	}
	internal_subid = PG_GETARG_BOOL(0) ? GetCurrentSubTransactionId() :
		InvalidSubTransactionId;
	PG_RETURN_BOOL(prev);
}

/*
 * audit_load: audit_log._load() -> true.  Does nothing: calling it loads
 * the library, so that its settings are defined in a session where nothing
 * else has (no preload).
 */
Datum
audit_load(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(true);
}

/*
 * audit_pin_search_path: run what follows under search_path =
 * pg_catalog, pg_temp; returns the GUC nest level to hand to
 * audit_unpin_search_path().
 */
int
audit_pin_search_path(void)
{
	int			nestlevel = NewGUCNestLevel();

	(void) set_config_option("search_path", "pg_catalog, pg_temp",
							 PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
	return nestlevel;
}

/*
 * audit_unpin_search_path: restore the search_path of before
 * audit_pin_search_path().
 */
void
audit_unpin_search_path(int nestlevel)
{
	AtEOXact_GUC(true, nestlevel);
}
