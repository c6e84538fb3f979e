/*-------------------------------------------------------------------------
 *
 * restore.c
 *		Restoring a dump: which session may rebuild and fill the partitions
 *		of audit_log.events, and the canonical bytes of a text that seals
 *		hash (in every server encoding).
 *
 * The rule.  The partitions of audit_log.events change only through the
 * extension's own upkeep (audit_internal_active()) or through the session
 * that restores the extension from a dump.  A session restores when it
 * runs CREATE EXTENSION audit_log with audit_log.restore = on (superuser
 * only): the install script then calls _restore_begin(), creates no
 * partition (the dump brings them all), drops the partitioned event_id
 * index until the dump's indexes come (audit_restore_root_index()) and
 * records the open restore in audit_log.restore_state.  From then on, while audit_log.restore stays on
 * and the extension is the one it created, that session may create, attach,
 * own, grant on, index and fill (COPY FROM, INSERT) partitions; it may
 * still not update, delete, truncate, drop or add triggers.  Its own
 * statements are not captured one by one: the restore is recorded as one
 * audit.restored event when maintain() closes it (after the session ended,
 * or when that session itself calls maintain()).  Restore mode therefore
 * exists only on an audit trail that this very session started: it cannot
 * be used on a database that already has a history.
 *
 * State: backend-local (the OID of the extension this session created in
 * restore mode); a transaction that aborts after _restore_begin() forgets
 * it.  No locking of our own.
 *
 *-------------------------------------------------------------------------
 */
#include "guard.h"

#include "access/xact.h"
#include "catalog/pg_trigger.h"
#include "catalog/namespace.h"
#include "commands/dbcommands.h"
#include "commands/extension.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"

PG_FUNCTION_INFO_V1(audit_restore_begin);
PG_FUNCTION_INFO_V1(audit_restore_end);
PG_FUNCTION_INFO_V1(audit_restoring_sql);
PG_FUNCTION_INFO_V1(audit_canonical);

bool		audit_restore = false;	/* the setting audit_log.restore */

static Oid	restoring_ext = InvalidOid;
static bool begun_in_xact = false;
static bool callback_registered = false;

/*
 * restore_xact_callback: a restore whose CREATE EXTENSION rolled back
 * never began.
 */
static void
restore_xact_callback(XactEvent event, void *arg)
{
	if (!begun_in_xact)
		return;
	if (event == XACT_EVENT_ABORT || event == XACT_EVENT_PARALLEL_ABORT)
		restoring_ext = InvalidOid;
	if (event == XACT_EVENT_ABORT || event == XACT_EVENT_PARALLEL_ABORT ||
		event == XACT_EVENT_COMMIT || event == XACT_EVENT_PARALLEL_COMMIT ||
		event == XACT_EVENT_PREPARE)
		begun_in_xact = false;
}

/*
 * audit_restoring: is this session restoring audit_log from a dump (see
 * the banner)?  Cheap when it is not.
 */
bool
audit_restoring(void)
{
	if (!OidIsValid(restoring_ext) || !audit_restore)
		return false;
	if (!IsTransactionState())
		return true;
	return get_extension_oid("audit_log", true) == restoring_ext;
}

/*
 * audit_restore_begin: audit_log._restore_begin() -> boolean.  Called by
 * the install script: true (and this session now restores) when
 * audit_log.restore is on; false otherwise, and always outside CREATE
 * EXTENSION.  Granted to nobody.
 */
Datum
audit_restore_begin(PG_FUNCTION_ARGS)
{
	if (!creating_extension || !OidIsValid(CurrentExtensionObject) || !audit_restore)
		PG_RETURN_BOOL(false);
	if (!callback_registered)
	{
		RegisterXactCallback(restore_xact_callback, NULL);
		callback_registered = true;
	}
	restoring_ext = CurrentExtensionObject;
	begun_in_xact = true;
	ereport(LOG,
			(errmsg("audit_log: this session restores a dump into database \"%s\"",
					get_database_name(MyDatabaseId)),
			 errdetail("It may build and fill the partitions of audit_log.events; its statements are not captured; maintain() records the restore once the session has ended.")));
	PG_RETURN_BOOL(true);
}

/*
 * audit_restore_end: audit_log._restore_end() -> boolean.  This session's
 * restore is over (maintain() closed it); true if it was restoring.
 * Granted to nobody.
 */
Datum
audit_restore_end(PG_FUNCTION_ARGS)
{
	bool		was = OidIsValid(restoring_ext);

	restoring_ext = InvalidOid;
	PG_RETURN_BOOL(was);
}

/*
 * audit_restoring_sql: audit_log._restoring() -> boolean, for maintain().
 */
Datum
audit_restoring_sql(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(audit_restoring());
}

/*
 * audit_restore_root_index: in a restoring session, at the end of a CREATE
 * INDEX, create the partitioned event_id index of audit_log.events again,
 * ON ONLY the table, if it is missing.  The install script drops it when a
 * restore begins: it would reach every partition the dump attaches and
 * make each of the dump's own CREATE INDEX fail with "already exists".
 * The dump creates its indexes (all of them before the first ALTER INDEX
 * ... ATTACH PARTITION) and attaches them to this one, which becomes valid
 * once every partition has one; maintain() completes it when closing the
 * restore, should one be missing.
 */
void
audit_restore_root_index(void)
{
	static bool busy = false;
	Oid			nsp = get_namespace_oid(AUDIT_SCHEMA, true);

	if (busy || !OidIsValid(nsp) ||
		(OidIsValid(get_relname_relid("events_event_id_idx", nsp)) &&
		 OidIsValid(get_relname_relid("events_source_event_id_key", nsp))))
		return;
	busy = true;
	PG_TRY();
	{
		SPI_connect();
		if (!OidIsValid(get_relname_relid("events_event_id_idx", nsp)))
			SPI_execute("CREATE INDEX events_event_id_idx ON ONLY audit_log.events (event_id)", false, 0);
		if (!OidIsValid(get_relname_relid("events_source_event_id_key", nsp)))
			SPI_execute("CREATE UNIQUE INDEX events_source_event_id_key ON ONLY audit_log.events "
						"(source, event_id, occurred_at, category) WHERE source IS NOT NULL", false, 0);
		SPI_finish();
	}
	PG_FINALLY();
	{
		busy = false;
	}
	PG_END_TRY();
}

/*
 * audit_restore_allows: what the session that restores a dump may do to the
 * audit tables: build partitions (CREATE TABLE, ALTER TABLE ... ATTACH
 * PARTITION / OWNER TO), fill them (COPY FROM; INSERT is let through by the
 * executor hook), restore their privileges (GRANT SELECT) and the
 * extension's own TRUNCATE fence of a partition (REPLICA_FENCE_TRIGGER, see
 * sources.c).  Nothing that changes or removes rows, grants a write or adds
 * any other trigger.
 */
bool
audit_restore_allows(Node *n)
{
	ListCell   *lc;

	switch (nodeTag(n))
	{
		case T_CreateStmt:
			return true;
		case T_GrantStmt:
			/*
			 * the ACL pg_dump writes: SELECT for the owner (and MAINTAIN,
			 * which the owner holds from 17 on: no row changes), nothing more
			 */
			if (!((GrantStmt *) n)->is_grant || ((GrantStmt *) n)->privileges == NIL)
				return false;
			foreach(lc, ((GrantStmt *) n)->privileges)
			{
				AccessPriv *p = lfirst_node(AccessPriv, lc);

				if (p->priv_name == NULL || p->cols != NIL ||
					(strcmp(p->priv_name, "select") != 0 && strcmp(p->priv_name, "maintain") != 0))
					return false;
			}
			return true;
		case T_CopyStmt:
			return ((CopyStmt *) n)->is_from;
		case T_CreateTrigStmt:
			{
				CreateTrigStmt *t = (CreateTrigStmt *) n;
				List	   *fn = t->funcname;

				return strcmp(t->trigname, REPLICA_FENCE_TRIGGER) == 0 && !t->row &&
					t->timing == TRIGGER_TYPE_BEFORE && t->events == TRIGGER_TYPE_TRUNCATE &&
					list_length(fn) == 2 &&
					strcmp(strVal(linitial(fn)), AUDIT_SCHEMA) == 0 &&
					strcmp(strVal(lsecond(fn)), "_replica_guard") == 0 &&
					t->args == NIL && t->whenClause == NULL && !t->isconstraint;
			}
		case T_AlterTableStmt:
			foreach(lc, ((AlterTableStmt *) n)->cmds)
			{
				AlterTableCmd *c = lfirst_node(AlterTableCmd, lc);

				if (c->subtype == AT_EnableAlwaysTrig && c->name &&
					strcmp(c->name, REPLICA_FENCE_TRIGGER) == 0)
					continue;
				if (c->subtype != AT_AttachPartition && c->subtype != AT_ChangeOwner)
					return false;
			}
			return true;
		default:
			return false;
	}
}

/*
 * audit_canonical: audit_log._canonical(text) -> bytea, the bytes seals
 * hash for a text: its UTF-8 form, whatever the server encoding, so that
 * no setting (client_encoding included) changes them.  In a UTF8
 * database, and for ASCII text in any database, these are the text's own
 * bytes (what 1.0 hashed).  A character that has no UTF-8 form (any byte
 * that is not part of a valid UTF-8 sequence in a SQL_ASCII database, or a
 * character without a Unicode mapping in its encoding) is written as the
 * byte 0xFF, which UTF-8 never contains, followed by its bytes in the
 * database encoding: the result is never an error, and two different
 * texts never give the same bytes.
 */
Datum
audit_canonical(PG_FUNCTION_ARGS)
{
	static Oid	proc = InvalidOid;	/* database encoding -> UTF8 */
	text	   *t = PG_GETARG_TEXT_PP(0);
	unsigned char *p = (unsigned char *) VARDATA_ANY(t);
	unsigned char *end = p + VARSIZE_ANY_EXHDR(t);
	unsigned char *q;
	int			enc = GetDatabaseEncoding();
	bytea	   *out;
	unsigned char *o;
	unsigned char *oend;

	if (enc == PG_UTF8)
		PG_RETURN_BYTEA_P(t);	/* text and bytea share their layout */
	for (q = p; q < end && !IS_HIGHBIT_SET(*q); q++)
		;
	if (q == end)
		PG_RETURN_BYTEA_P(t);	/* ASCII: the same bytes in UTF-8 */

	if (enc != PG_SQL_ASCII && !OidIsValid(proc))
	{
		proc = FindDefaultConversionProc(enc, PG_UTF8);
		if (!OidIsValid(proc))
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_FUNCTION),
					 errmsg("no conversion from encoding \"%s\" to \"UTF8\"",
							pg_encoding_to_char(enc))));
	}

	/*
	 * Every source byte gives at most MAX_CONVERSION_GROWTH bytes, a marked
	 * character of n bytes gives n + 1: the room left always suffices.
	 */
	out = palloc(VARHDRSZ + (end - p) * MAX_CONVERSION_GROWTH + 1);
	o = (unsigned char *) VARDATA(out);
	oend = o + (end - p) * MAX_CONVERSION_GROWTH + 1;
	while (p < end)
	{
		int			n;

		if (enc == PG_SQL_ASCII)
		{
			/* bytes of no declared encoding: keep valid UTF-8, mark the rest */
			n = pg_utf_mblen(p);
			if (n <= end - p && pg_utf8_islegal(p, n))
			{
				memcpy(o, p, n);
				o += n;
			}
			else
			{
				n = 1;
				*o++ = 0xFF;
				*o++ = *p;
			}
			p += n;
			continue;
		}
		/* convert as far as possible, then mark the character that stopped it */
		n = pg_do_encoding_conversion_buf(proc, enc, PG_UTF8, p, end - p,
										  o, oend - o, true);
		o += strlen((char *) o);
		p += n;
		if (p < end)
		{
			n = Min(pg_encoding_mblen(enc, (char *) p), end - p);
			*o++ = 0xFF;
			memcpy(o, p, n);
			o += n;
			p += n;
		}
	}
	SET_VARSIZE(out, VARHDRSZ + (o - (unsigned char *) VARDATA(out)));
	PG_RETURN_BYTEA_P(out);
}
