/*-------------------------------------------------------------------------
 *
 * capture_auth.c
 *		the ClientAuthentication hook: logins (preload only).
 *
 * Placeholder of the foundation.
 *
 *-------------------------------------------------------------------------
 */
#include "audit_log.h"

/*
 * audit_auth_init: install the hook (called from _PG_init when preloaded).
 */
void
audit_auth_init(void)
{
}
