/*-------------------------------------------------------------------------
 *
 * capture_utility.c
 *		the ProcessUtility hook: roles, grants, configuration and DDL (preload only).
 *
 * Placeholder of the foundation.
 *
 *-------------------------------------------------------------------------
 */
#include "audit_log.h"

/*
 * audit_utility_init: install the hook (called from _PG_init when preloaded).
 */
void
audit_utility_init(void)
{
}
