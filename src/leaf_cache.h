/*-------------------------------------------------------------------------
 *
 * leaf_cache.h
 *		The leaf partition of audit_log.events that earlier events of a day
 *		and category were routed to (leaf_cache.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef AUDIT_LEAF_CACHE_H
#define AUDIT_LEAF_CACHE_H

#include "postgres.h"

#include "datatype/timestamp.h"
#include "utils/relcache.h"

/* Where an event goes: the day partition and its leaf. */
typedef struct AuditLeaf
{
	Oid			day;			/* a RANGE partition of audit_log.events */
	Oid			leaf;			/* a leaf of day */
	uint64		generation;		/* the cache's generation when found */
} AuditLeaf;

extern bool audit_leaf_lookup(Oid root, TimestampTz at, const char *category,
							  AuditLeaf *out);
extern bool audit_leaf_lock(const AuditLeaf *l);
extern void audit_leaf_remember(Relation root, Relation leaf, TimestampTz at,
								const char *category);

#endif							/* AUDIT_LEAF_CACHE_H */
