/*-------------------------------------------------------------------------
 *
 * utility_classify.h
 *		What a utility statement records (utility_classify.c): the events
 *		it produces, built before it runs (utility_classify.c and
 *		classify_access.c).  Used by capture_utility.c (the ProcessUtility
 *		hook) and, for capture turned off, by capture_ddl_et.c (the event
 *		triggers, without the preload).
 *
 *-------------------------------------------------------------------------
 */
#ifndef AUDIT_UTILITY_CLASSIFY_H
#define AUDIT_UTILITY_CLASSIFY_H

#include "audit_log.h"

#include "nodes/parsenodes.h"

/* UEvent: one event a statement produces. */
typedef struct UEvent
{
	AuditEvent	ev;
	char	   *details;		/* JSON text, NULL for none */
	RangeVar   *rv;				/* name to qualify after the statement ran */
	bool		cluster;		/* cluster-wide: belongs to audit_log.database */
} UEvent;

/* Classify: the statement being classified, and its events so far. */
typedef struct Classify
{
	List	   *events;			/* of UEvent */
	const char *command;		/* command tag */
	const char *statement;		/* redacted text */
} Classify;

/* utility_classify.c */
extern List *audit_classify(Node *n, Classify *c);
extern List *audit_classify_capture_off(Node *n, Classify *c);
extern void audit_classify_capture_disabled(Classify *c, const char *table,
											const char *trigger, const char *action);
extern UEvent *audit_classify_add_event(Classify *c, const char *category,
										const char *code, const char *object_type,
										const char *object_name, bool cluster);

/* classify_access.c: roles, settings, privileges */
extern void audit_classify_role(Classify *c, Node *n);
extern void audit_classify_setting(Classify *c, Node *n);
extern void audit_classify_grant(Classify *c, GrantStmt *g);
extern void audit_classify_default_privileges(Classify *c, AlterDefaultPrivilegesStmt *a);

#endif							/* AUDIT_UTILITY_CLASSIFY_H */
