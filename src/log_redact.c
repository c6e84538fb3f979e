/*-------------------------------------------------------------------------
 *
 * log_redact.c
 *		Passwords kept out of PostgreSQL's own server log (preload only): an
 *		emit_log_hook that shows, in place of a statement text that may hold
 *		a password (audit_may_hold_secret()), the text audit_log stores for it (every string literal
 *		replaced by '<redacted>', audit_redact_statement() of
 *		utility_classify.c) or, when that text is not known, AUDIT_REDACT_WITHHELD.
 *
 * Where a statement's text reaches the log: the STATEMENT: line (and the
 * statement field of csvlog/jsonlog) prints debug_query_string; the lines of
 * log_statement and log_min_duration_statement carry it in their message
 * ("statement: ...", "duration: ... statement: ...", "execute ...: ...") and
 * EXECUTE's prepared text in their detail; a query run by a function is the
 * error's internalquery (QUERY:) or part of its context (SQL statement
 * "..."); an error positioned at a string literal quotes the literal or its
 * value in its message (syntax error at or near "'x'", invalid input syntax
 * for type integer: "x").
 *
 * Why the redactions are computed beforehand: the scanner behind
 * audit_redact_statement() raises an ERROR on text it cannot scan, and an
 * ERROR raised while a report is being emitted resets ErrorContext (which
 * holds the report) and cannot be caught here without corrupting elog.c's
 * error stack.  So the hook scans only the one text that cannot fail: the
 * "statement: %s" line that exec_simple_query() writes right after it parsed
 * the same text successfully under the same settings.  Every other text is
 * redacted when the parser has analyzed it (post_parse_analyze_hook, at top
 * level and in functions), where an error is caught, and kept in a small
 * memo keyed by the text and standard_conforming_strings.  The hook puts the
 * memo's redactions in place of the texts; a text that needs redaction and
 * is not in the memo (a statement that failed to parse) is withheld.
 *
 * Fast path: a text needs redaction only if it may hold a password
 * (audit_may_hold_secret()) and has a quote or a dollar sign (a string literal has one);
 * a report without such a field is left as it is after one pass over each
 * field.  The hook changes the report's fields, so the client receives the
 * same redacted fields; debug_query_string is pointed at a redacted copy
 * (postgres.c resets it for each protocol message; parallel index builds
 * copy it).  Backend-local state only: no transaction, no locks.
 *
 *-------------------------------------------------------------------------
 */
#include "audit_log.h"
#include "redact.h"

#include "lib/stringinfo.h"
#include "mb/pg_wchar.h"
#include "parser/analyze.h"
#include "parser/parser.h"
#include "tcop/tcopprot.h"
#include "utils/elog.h"
#include "utils/memutils.h"

#define MEMO_SLOTS		8			/* slot 0: the last top-level text */
#define MEMO_MAX_TEXT	(64 * 1024) /* longer texts are withheld */
#define REDACTED_VALUE	"\"<redacted>\""
#define WITHHELD_MESSAGE "(message withheld: it may contain a password)"

typedef struct Memo
{
	char	   *text;			/* NULL: free slot */
	char	   *redacted;
	bool		scs;			/* standard_conforming_strings of the scan */
} Memo;

/* a text to replace in a field, and its replacement */
typedef struct Pair
{
	const char *from;
	size_t		len;
	const char *to;
} Pair;

static emit_log_hook_type prev_emit_log_hook = NULL;
static post_parse_analyze_hook_type prev_post_parse_analyze_hook = NULL;

static MemoryContext memo_cxt = NULL;
static MemoryContext scan_cxt = NULL;
static Memo memo[MEMO_SLOTS];
static int	memo_next = 1;
static const char *last_source = NULL;
static char *shown_statement = NULL;	/* debug_query_string after a swap */
static const char *shown_for = NULL;	/* ... and what it pointed at before */
static bool scanning = false;

/*
 * needs_redaction: whether audit_redact_statement() could change s: it may
 * hold a password (audit_may_hold_secret()) and a string literal ('...',
 * E'...', U&'...', B'...', X'...', $$...$$ all need a quote or a dollar
 * sign).
 */
static bool
needs_redaction(const char *s)
{
	return s != NULL && strpbrk(s, "'$") != NULL && audit_may_hold_secret(s);
}

/*
 * memo_lookup: the remembered redaction of text, scanned with the current
 * standard_conforming_strings; NULL if unknown.
 */
static const char *
memo_lookup(const char *text)
{
	int			i;

	for (i = 0; i < MEMO_SLOTS; i++)
		if (memo[i].text != NULL && memo[i].scs == standard_conforming_strings &&
			strcmp(memo[i].text, text) == 0)
			return memo[i].redacted;
	return NULL;
}

/*
 * memo_store: remember text's redaction, in slot 0 for the top-level
 * statement (so that a function's many statements do not push it out),
 * otherwise in the next of the other slots.
 */
static void
memo_store(const char *text, const char *redacted, bool top)
{
	int			slot = top ? 0 : memo_next;
	char	   *old_text = memo[slot].text;
	char	   *old_redacted = memo[slot].redacted;

	if (!top)
		memo_next = memo_next % (MEMO_SLOTS - 1) + 1;
	memo[slot].text = NULL;
	if (old_text != NULL)
	{
		pfree(old_text);
		pfree(old_redacted);
	}
	memo[slot].redacted = MemoryContextStrdup(memo_cxt, redacted);
	memo[slot].scs = standard_conforming_strings;
	memo[slot].text = MemoryContextStrdup(memo_cxt, text);
}

/*
 * log_redact_post_parse: the post_parse_analyze hook: redact a source text
 * that needs it while an error can still be caught, once per text (the
 * first statement of a text, stmt_location 0, always checks: the same
 * address may hold a new text).
 */
static void
log_redact_post_parse(ParseState *pstate, Query *query, JumbleState *jstate)
{
	const char *src = pstate->p_sourcetext;

	if (prev_post_parse_analyze_hook)
		prev_post_parse_analyze_hook(pstate, query, jstate);
	scanning = false;
	if (src == NULL || (src == last_source && query->stmt_location > 0))
		return;
	last_source = src;
	if (needs_redaction(src) && strlen(src) <= MEMO_MAX_TEXT && memo_lookup(src) == NULL)
		memo_store(src, audit_redact_statement(src), src == debug_query_string);
}

/*
 * ends_with: whether s ends with tail.
 */
static bool
ends_with(const char *s, const char *tail)
{
	size_t		ls = strlen(s);
	size_t		lt = strlen(tail);

	return ls >= lt && strcmp(s + ls - lt, tail) == 0;
}

/*
 * scan_logged_statement: for the "statement: %s" line of log_statement,
 * written by exec_simple_query() right after it parsed debug_query_string
 * with the current settings, redact and remember that text here: a text
 * the parser scanned cannot make the same scanner fail (the redaction
 * silences the scanner's warnings).  Any other report is left alone.
 */
static void
scan_logged_statement(ErrorData *edata)
{
	const char *stmt = debug_query_string;
	MemoryContext old;

	if (scanning || edata->elevel != LOG || edata->message_id == NULL ||
		edata->funcname == NULL || stmt == NULL || stmt == shown_statement ||
		strcmp(edata->funcname, "exec_simple_query") != 0 ||
		strcmp(edata->message_id, "statement: %s") != 0 ||
		!needs_redaction(stmt) || strlen(stmt) > MEMO_MAX_TEXT ||
		memo_lookup(stmt) != NULL || !ends_with(edata->message, stmt))
		return;
	scanning = true;
	old = MemoryContextSwitchTo(scan_cxt);
	memo_store(stmt, audit_redact_statement(stmt), true);
	MemoryContextSwitchTo(old);
	MemoryContextReset(scan_cxt);
	scanning = false;
}

/*
 * literal_at: whether character position pos (1-based, as in an error
 * report) of s starts a string literal.
 */
static bool
literal_at(const char *s, int pos)
{
	int			len = strlen(s);
	int			off;
	const char *p;

	if (pos < 1)
		return false;
	off = pg_mbcharcliplen(s, len, pos - 1);
	if (off >= len)
		return false;
	p = s + off;
	if (*p == '\'' || *p == '$')
		return true;
	if (strchr("EeBbXxNn", *p) && p[1] == '\'')
		return true;
	return (*p == 'U' || *p == 'u') && p[1] == '&' && p[2] == '\'';
}

/*
 * hide_quoted: s with its quoted part (from the first double quote to the
 * last) replaced by "<redacted>", or withheld if it quotes nothing.
 */
static char *
hide_quoted(const char *s)
{
	const char *first = strchr(s, '"');
	const char *last = strrchr(s, '"');
	StringInfoData out;

	if (first == NULL || first == last)
		return pstrdup(WITHHELD_MESSAGE);
	initStringInfo(&out);
	appendBinaryStringInfo(&out, s, first - s);
	appendStringInfoString(&out, REDACTED_VALUE);
	appendStringInfoString(&out, last + 1);
	return out.data;
}

/*
 * substitute: field with every occurrence of a pair's text replaced by its
 * replacement; NULL if nothing changed.  With withhold, a field that still
 * needs redaction outside the replaced texts is withheld as a whole.
 */
static char *
substitute(const char *field, const Pair *pairs, int npairs, bool withhold)
{
	StringInfoData out;
	StringInfoData rest;
	const char *p = field;
	bool		changed = false;

	initStringInfo(&out);
	initStringInfo(&rest);
	for (;;)
	{
		const char *best = NULL;
		int			bi = -1;
		int			i;

		for (i = 0; i < npairs; i++)
		{
			const char *hit = strstr(p, pairs[i].from);

			if (hit != NULL && (best == NULL || hit < best ||
								(hit == best && pairs[i].len > pairs[bi].len)))
			{
				best = hit;
				bi = i;
			}
		}
		if (best == NULL)
			break;
		appendBinaryStringInfo(&out, p, best - p);
		appendStringInfoString(&out, pairs[bi].to);
		appendBinaryStringInfo(&rest, p, best - p);
		appendStringInfoChar(&rest, '\n');
		p = best + pairs[bi].len;
		changed = true;
	}
	appendStringInfoString(&out, p);
	appendStringInfoString(&rest, p);
	if (withhold && needs_redaction(rest.data))
		return pstrdup(AUDIT_REDACT_WITHHELD);
	pfree(rest.data);
	if (!changed)
	{
		pfree(out.data);
		return NULL;
	}
	return out.data;
}

/*
 * replace_field: put a new value (allocated in the report's context, as
 * elog.c frees it) in place of *field, freeing the old one.
 */
static void
replace_field(char **field, char *value)
{
	if (value == NULL)
		return;
	if (*field != NULL)
		pfree(*field);
	*field = value;
}

/*
 * redact_report: redact the fields of one report, and the statement
 * printed with it.  Runs in the report's memory context.
 */
static void
redact_report(ErrorData *edata)
{
	const char *stmt = debug_query_string;
	bool		swapped = (stmt != NULL && stmt == shown_statement);
	bool		m = needs_redaction(edata->message);
	bool		d = needs_redaction(edata->detail);
	bool		dl = needs_redaction(edata->detail_log);
	bool		h = needs_redaction(edata->hint);
	bool		c = needs_redaction(edata->context);
	bool		q = needs_redaction(edata->internalquery);
	bool		stmt_risky = false;
	const char *query_redacted = NULL;
	Pair		pairs[MEMO_SLOTS + 2];
	int			npairs = 0;
	int			i;

	if (m)
		scan_logged_statement(edata);
	/* after a swap, the text of the same query string is still what counts */
	if (swapped)
		stmt = shown_for;
	/* the statement matters if printed, pointed at, or maybe embedded */
	if (stmt != NULL &&
		(!edata->hide_stmt || edata->cursorpos > 0 || m || d || dl || h || c || q))
		stmt_risky = needs_redaction(stmt);

	/* an error positioned at a literal may quote it or its value */
	if ((edata->cursorpos > 0 && stmt_risky && literal_at(stmt, edata->cursorpos)) ||
		(edata->internalpos > 0 && q && literal_at(edata->internalquery, edata->internalpos)))
	{
		if (edata->message)
			replace_field(&edata->message, hide_quoted(edata->message));
		if (edata->detail)
			replace_field(&edata->detail, hide_quoted(edata->detail));
		m = needs_redaction(edata->message);
		d = needs_redaction(edata->detail);
	}

	if (!stmt_risky && !m && !d && !dl && !h && !c && !q)
		return;

	/* what to put in place of which text */
	for (i = 0; i < MEMO_SLOTS; i++)
		if (memo[i].text != NULL && memo[i].scs == standard_conforming_strings)
		{
			pairs[npairs].from = memo[i].text;
			pairs[npairs].len = strlen(memo[i].text);
			pairs[npairs++].to = memo[i].redacted;
		}
	if (stmt_risky && memo_lookup(stmt) == NULL)
	{
		pairs[npairs].from = stmt;
		pairs[npairs].len = strlen(stmt);
		pairs[npairs++].to = AUDIT_REDACT_WITHHELD;
	}
	if (q)
	{
		query_redacted = memo_lookup(edata->internalquery);
		if (query_redacted == NULL)
		{
			pairs[npairs].from = edata->internalquery;
			pairs[npairs].len = strlen(edata->internalquery);
			pairs[npairs++].to = AUDIT_REDACT_WITHHELD;
		}
	}

	if (m)
		replace_field(&edata->message, substitute(edata->message, pairs, npairs, false));
	if (h)
		replace_field(&edata->hint, substitute(edata->hint, pairs, npairs, false));
	if (d)
		replace_field(&edata->detail, substitute(edata->detail, pairs, npairs, true));
	if (dl)
		replace_field(&edata->detail_log, substitute(edata->detail_log, pairs, npairs, true));
	if (c)
		replace_field(&edata->context, substitute(edata->context, pairs, npairs, true));
	if (q)
		replace_field(&edata->internalquery,
					  pstrdup(query_redacted ? query_redacted : AUDIT_REDACT_WITHHELD));

	/* the STATEMENT: line prints debug_query_string: point it at the redaction */
	if (stmt_risky && !swapped && !edata->hide_stmt)
	{
		const char *shown = memo_lookup(stmt);

		if (shown == NULL)
			shown = AUDIT_REDACT_WITHHELD;
		if (strcmp(shown, stmt) != 0)
		{
			char	   *old = shown_statement;

			shown_statement = MemoryContextStrdup(memo_cxt, shown);
			shown_for = stmt;
			debug_query_string = shown_statement;
			if (old != NULL)
				pfree(old);
		}
	}
}

/*
 * log_redact_emit: the emit_log_hook: redact the report, then pass it on.
 */
static void
log_redact_emit(ErrorData *edata)
{
	if (edata->output_to_server)
	{
		MemoryContext old = MemoryContextSwitchTo(edata->assoc_context);

		redact_report(edata);
		MemoryContextSwitchTo(old);
	}
	if (prev_emit_log_hook)
		prev_emit_log_hook(edata);
}

/*
 * audit_log_redact_init: install the hooks (called from _PG_init when
 * preloaded).
 */
void
audit_log_redact_init(void)
{
	memo_cxt = AllocSetContextCreate(TopMemoryContext, "audit_log log redaction",
									 ALLOCSET_SMALL_SIZES);
	scan_cxt = AllocSetContextCreate(memo_cxt, "audit_log log redaction scan",
									 ALLOCSET_DEFAULT_SIZES);
	prev_emit_log_hook = emit_log_hook;
	emit_log_hook = log_redact_emit;
	prev_post_parse_analyze_hook = post_parse_analyze_hook;
	post_parse_analyze_hook = log_redact_post_parse;
}
