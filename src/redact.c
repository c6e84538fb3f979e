/*-------------------------------------------------------------------------
 *
 * redact.c
 *		The statement text an event stores: this statement's part of the
 *		query string, with secrets redacted.  A statement whose text
 *		mentions "password" (any letter case) is stored with every string
 *		literal replaced by '<redacted>'; one that cannot be scanned is
 *		withheld altogether.  Also audit_log._redact(text), the same
 *		redaction for the event trigger functions and for tests, and the
 *		redaction used by any other consumer (a log hook, say) through
 *		audit_redact_statement().
 *
 * No transaction or locking rules: the core scanner only, no catalog
 * access.  Results are palloc'd in CurrentMemoryContext.
 *
 *-------------------------------------------------------------------------
 */
#include "redact.h"
#include "compat.h"

#include "fmgr.h"
#include "parser/scanner.h"
#include "parser/scansup.h"
#include "utils/builtins.h"

PG_FUNCTION_INFO_V1(audit_redact);

/*
 * audit_redact_statement: the statement with every string literal
 * replaced by '<redacted>' when its text mentions a password (any letter
 * case); otherwise the statement itself.  If it cannot be scanned, it is
 * withheld altogether.
 */
char *
audit_redact_statement(const char *sql)
{
	const char *p;
	bool		mention = false;
	StringInfoData out;
	MemoryContext cxt = CurrentMemoryContext;

	if (sql == NULL)
		return NULL;
	for (p = sql; *p && !mention; p++)
		if (pg_strncasecmp(p, "password", 8) == 0)
			mention = true;
	if (!mention)
		return (char *) sql;

	initStringInfo(&out);
	PG_TRY();
	{
		core_yyscan_t scanner;
		core_yy_extra_type extra;
		core_YYSTYPE yylval;
		YYLTYPE		yylloc;
		int			copied = 0;
		int			lit_start = -1;
		int			len = strlen(sql);

		scanner = scanner_init(sql, &extra, &ScanKeywords, ScanKeywordTokens);
		/* the parser warned already; and the log hook may not emit */
		extra.escape_string_warning = false;
		for (;;)
		{
			int			tok = core_yylex(&yylval, &yylloc, scanner);
			int			loc = tok ? yylloc : len;

			if (lit_start >= 0)
			{
				int			end = loc;

				while (end > lit_start && scanner_isspace(sql[end - 1]))
					end--;
				appendBinaryStringInfo(&out, sql + copied, lit_start - copied);
				appendStringInfoString(&out, "'<redacted>'");
				copied = end;
				lit_start = -1;
			}
			if (tok == 0)
				break;
			if (audit_string_token(tok))
				lit_start = yylloc;
		}
		scanner_finish(scanner);
		appendStringInfoString(&out, sql + copied);
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(cxt);
		FlushErrorState();
		resetStringInfo(&out);
		appendStringInfoString(&out, AUDIT_REDACT_WITHHELD);
	}
	PG_END_TRY();
	return out.data;
}

/*
 * audit_redact: audit_log._redact(text): the same redaction, for the event
 * trigger functions and for tests.
 */
Datum
audit_redact(PG_FUNCTION_ARGS)
{
	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	PG_RETURN_TEXT_P(cstring_to_text(audit_redact_statement(text_to_cstring(PG_GETARG_TEXT_PP(0)))));
}

/*
 * audit_statement_text: this statement's part of the query string, redacted.
 */
const char *
audit_statement_text(PlannedStmt *pstmt, const char *query)
{
	char	   *s;

	if (query == NULL)
		return NULL;
	if (pstmt->stmt_location > 0 && pstmt->stmt_location < (int) strlen(query))
		query += pstmt->stmt_location;
	if (pstmt->stmt_len > 0 && pstmt->stmt_len < (int) strlen(query))
		s = pnstrdup(query, pstmt->stmt_len);
	else
		s = pstrdup(query);
	return audit_redact_statement(s);
}
