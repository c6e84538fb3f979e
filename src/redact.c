/*-------------------------------------------------------------------------
 *
 * redact.c
 *		The statement text an event stores: this statement's part of the
 *		query string, with secrets redacted.  A statement whose text may
 *		hold a password (audit_may_hold_secret(): it mentions "password"
 *		or "conninfo", holds a URI, or sets a subscription's connection,
 *		a user mapping's or a server's options) is stored with every
 *		string literal replaced by '<redacted>'; one that cannot be
 *		scanned is withheld altogether.  Also audit_log._redact(text), the same
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
 * mentions: whether s contains word (lower case) in any letter case.
 */
static bool
mentions(const char *s, const char *word)
{
	size_t		n = strlen(word);

	for (; *s; s++)
		if ((*s | 0x20) == word[0] && pg_strncasecmp(s, word, n) == 0)
			return true;
	return false;
}

/*
 * starts_with: whether s, past leading blanks, begins with word (any case).
 */
static bool
starts_with(const char *s, const char *word)
{
	while (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r')
		s++;
	return pg_strncasecmp(s, word, strlen(word)) == 0;
}

/*
 * audit_may_hold_secret: whether the text s may carry a password, so that
 * its string literals are to be redacted (any letter case): it mentions
 * "password" or "passphrase"; or "conninfo" (primary_conninfo and the
 * like, whole connection strings); or "://" (a URI's user:password@); or it
 * is a subscription's statement with its CONNECTION string; or it has
 * OPTIONS and is a user mapping's or a server's; or it holds a U& escape,
 * which can spell any name, in a statement that names options or settings
 * (OPTIONS, ALTER SYSTEM, SET, ALTER ... SET).  A value can hide "password"
 * from this scan (E'\x..' escapes, a string continued on the next line), a
 * keyword cannot: the statements that carry connection options are caught
 * by their keywords, and then every literal goes, whatever it spells.
 */
bool
audit_may_hold_secret(const char *s)
{
	if (s == NULL)
		return false;
	return mentions(s, "password") || mentions(s, "passphrase") || mentions(s, "conninfo") ||
		strstr(s, "://") != NULL ||
		(mentions(s, "subscription") && mentions(s, "connection")) ||
		(mentions(s, "options") && (mentions(s, "mapping") || mentions(s, "server"))) ||
		(mentions(s, "u&") &&
		 (mentions(s, "options") || mentions(s, "system") || starts_with(s, "set") ||
		  (starts_with(s, "alter") && mentions(s, " set "))));
}

/*
 * audit_redact_statement: the statement with every string literal
 * replaced by '<redacted>' when its text may hold a password
 * (audit_may_hold_secret()); otherwise the statement itself.  If it
 * cannot be scanned, it is withheld altogether.
 */
char *
audit_redact_statement(const char *text)
{
	const char *volatile sql = text;
	StringInfoData out;
	MemoryContext cxt = CurrentMemoryContext;

	if (text == NULL)
		return NULL;
	if (!audit_may_hold_secret(text))
		return (char *) text;

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
