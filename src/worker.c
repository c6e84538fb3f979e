/*-------------------------------------------------------------------------
 *
 * worker.c
 *		the background worker that drains the queue and runs maintain() (preload only).
 *
 * Placeholder of the foundation.
 *
 *-------------------------------------------------------------------------
 */
#include "audit_log.h"

/*
 * audit_worker_init: install the hook (called from _PG_init when preloaded).
 */
void
audit_worker_init(void)
{
}
