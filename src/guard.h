/*-------------------------------------------------------------------------
 *
 * guard.h
 *		The tamper guard of the audit tables (guard.c).  The internal mark
 *		and the pinned search_path, used everywhere, are declared in
 *		audit_log.h.
 *
 *-------------------------------------------------------------------------
 */
#ifndef AUDIT_GUARD_H
#define AUDIT_GUARD_H

#include "audit_log.h"

#include "nodes/parsenodes.h"
#include "nodes/plannodes.h"

extern bool audit_capture_suspended(void);
extern bool audit_is_events_relid(Oid relid);
extern bool audit_is_events_rv(RangeVar *rv);
extern bool audit_is_audit_trigger(const char *name);
extern void audit_check_tamper(Node *n, const char *command,
							   PlannedStmt *pstmt, const char *query);
extern void audit_guard_init(void);
extern void audit_refuse_tamper(const char *what, const char *object_type,
								const char *object_name, const char *command,
								const char *statement, const char *msg,
								const char *detail, const char *hint);

/* the TRUNCATE fence of an audit table against a subscription (sources.c) */
#define REPLICA_FENCE_TRIGGER "audit_log_replica_truncate"

/* restore.c: what a session restoring a dump may do to the audit tables */
extern bool audit_restore_allows(Node *n);

#endif							/* AUDIT_GUARD_H */
