/*-------------------------------------------------------------------------
 *
 * redact.h
 *		Statement text with secrets redacted (redact.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef AUDIT_REDACT_H
#define AUDIT_REDACT_H

#include "postgres.h"

#include "nodes/plannodes.h"

/* what stands for a statement that could not be redacted */
#define AUDIT_REDACT_WITHHELD	"(statement withheld: it may contain a password)"

/* whether a text may carry a password (its literals are then redacted) */
extern bool audit_may_hold_secret(const char *s);

/* the text itself, or a copy with its string literals redacted */
extern char *audit_redact_statement(const char *sql);

/* this statement's part of the query string, redacted */
extern const char *audit_statement_text(PlannedStmt *pstmt, const char *query);

#endif							/* AUDIT_REDACT_H */
