/*-------------------------------------------------------------------------
 *
 * event.c
 *		The field table of the event row (event.h), and what is done with a
 *		whole event through it: defaults, the queue's slot format, the
 *		server-log line, the column list of a query.
 *
 * Nothing here touches a table or takes a lock: the functions work on
 * memory only (the log line calls ereport(LOG)).  A slot is
 * AUDIT_QUEUE_SLOT bytes: a header with the fixed-size fields and the
 * offset of each string, then the strings, NUL-terminated.
 *
 *-------------------------------------------------------------------------
 */
#include "audit_log.h"

#include "access/xact.h"
#include "miscadmin.h"
#include "mb/pg_wchar.h"
#include "utils/builtins.h"
#include "utils/json.h"
#include "utils/jsonb.h"
#include "utils/timestamp.h"

#define AUDIT_EVENT_ENTRY(name, kind, flags, dflt) \
	{#name, offsetof(AuditEvent, name), AF_##kind, flags, dflt},

const AuditField audit_event_fields[AUDIT_NCOLUMNS] = {
	AUDIT_EVENT_COLUMNS(AUDIT_EVENT_ENTRY)
};

/* fixed-size kinds live in the slot header, the others as strings */
#define IS_FIXED(kind) ((kind) == AF_ID || (kind) == AF_TIME || \
						(kind) == AF_TXID || (kind) == AF_PID)

/* Header of one serialized event; strings follow, NUL-terminated. */
typedef struct SlotHeader
{
	uint32		len;
	int64		fixed[AUDIT_NCOLUMNS];	/* the fixed-size fields */
	int32		off[AUDIT_NCOLUMNS];	/* string fields; -1: NULL */
} SlotHeader;

StaticAssertDecl(sizeof(SlotHeader) < AUDIT_QUEUE_SLOT / 4,
				 "a queue slot must leave room for the strings");

/*
 * audit_event_text: the text of a TEXT or INET field, or its default.
 */
const char *
audit_event_text(const AuditEvent *ev, const AuditField *f)
{
	const char *s = *AUDIT_FIELD_PTR(ev, f, const char *);

	Assert(f->kind == AF_TEXT || f->kind == AF_INET);
	return s != NULL ? s : f->dflt;
}

/*
 * audit_event_complete: fill the fields whose 0 means "now" or "this
 * backend": occurred_at, backend_pid, and (own_txid) txid, the current top
 * transaction's full id.  (The authenticated user is added to the details
 * where they are stored or serialized: audit_details_for_store().)
 */
void
audit_event_complete(AuditEvent *ev, bool own_txid)
{
	if (ev->occurred_at == 0)
		ev->occurred_at = GetCurrentTimestamp();
	if (ev->backend_pid == 0)
		ev->backend_pid = MyProcPid;
	if (own_txid && ev->txid == 0)
	{
		FullTransactionId fxid = GetTopFullTransactionId();

		ev->txid = (int64) XidFromFullTransactionId(fxid) +
			((int64) EpochFromFullTransactionId(fxid) << 32);
	}
}

/*
 * audit_event_columns_sql: append "prefix.col, ..." for the first
 * ncolumns columns, in table order.
 */
void
audit_event_columns_sql(StringInfo buf, const char *prefix, int ncolumns)
{
	for (int i = 0; i < ncolumns; i++)
		appendStringInfo(buf, "%s%s.%s", i > 0 ? ", " : "", prefix,
						 audit_event_fields[i].name);
}

/* jsonb_text: the text of a JSON field, or NULL. */
static char *
jsonb_text(Jsonb *j)
{
	return j ? JsonbToCString(NULL, &j->root, VARSIZE(j)) : NULL;
}

/*
 * put_field: append one string of the event to the slot buffer, cut to
 * limit (never in the middle of a multibyte character).
 */
static void
put_field(char *buf, uint32 *len, int32 *off, const char *s, uint32 limit)
{
	size_t		n;

	if (s == NULL)
	{
		*off = -1;
		return;
	}
	n = strlen(s);
	if (*len + n + 1 > limit)
	{
		size_t		full = n;

		n = (*len + 1 < limit) ? limit - *len - 1 : 0;
		/* whole characters of the database encoding */
		n = pg_mbcliplen(s, (int) Min(full, (size_t) PG_INT32_MAX), (int) n);
		/* before a database is chosen (a login: SQL_ASCII), whole UTF-8 ones */
		if (GetDatabaseEncoding() == PG_SQL_ASCII)
			while (n > 0 && ((unsigned char) s[n] & 0xC0) == 0x80)
				n--;
	}
	*off = *len;
	memcpy(buf + *len, s, n);
	buf[*len + n] = '\0';
	*len += n + 1;
}

/*
 * text_cap: the longest each text field may stay so that all of them (lens,
 * n of them, each with its terminator) fit in avail bytes: every field
 * shorter than the cap is kept whole, only the longest are cut.  A long
 * claim of the application (an actor or user agent of 4 kB) thus cannot
 * crowd out the fields nobody can forge (db_user, object_name, command).
 */
static uint32
text_cap(const size_t *lens, int n, uint32 avail)
{
	uint32		lo = 0;
	uint32		hi = AUDIT_QUEUE_SLOT;

	while (lo < hi)
	{
		uint32		mid = lo + (hi - lo + 1) / 2;
		size_t		sum = 0;
		int			i;

		for (i = 0; i < n; i++)
			sum += Min(lens[i], (size_t) mid) + 1;
		if (sum <= avail)
			lo = mid;
		else
			hi = mid - 1;
	}
	return lo;
}

/*
 * audit_event_serialize: write an event into buf (AUDIT_QUEUE_SLOT bytes)
 * and return the bytes used; occurred_at and backend_pid are filled.  When it
 * does not fit, the AF_CUT_LAST field (the statement) is cut to what is left;
 * if the rest still does not fit, the longest texts are cut to a common
 * length (text_cap(), never below SLOT_TEXT_MIN bytes each) and, only when
 * even that is too much, the JSON fields are replaced in table order by
 * {"truncated": true} (never cut), then dropped.
 */
#define SLOT_TEXT_MIN 256
uint32
audit_event_serialize(const AuditEvent *ev, char *buf)
{
	SlotHeader *h = (SlotHeader *) buf;
	const char *s[AUDIT_NCOLUMNS];
	size_t		lens[AUDIT_NCOLUMNS];
	int			ntext = 0;
	uint32		len = MAXALIGN(sizeof(SlotHeader));
	uint32		avail = AUDIT_QUEUE_SLOT - 64 - len;
	size_t		json = 0;
	size_t		text_min = 0;
	uint32		cap = AUDIT_QUEUE_SLOT;
	AuditEvent	copy = *ev;
	int			i;

	audit_event_complete(&copy, false);
	copy.details = audit_details_for_store(&copy);
	for (i = 0; i < AUDIT_NCOLUMNS; i++)
	{
		const AuditField *f = &audit_event_fields[i];

		s[i] = NULL;
		switch ((AuditFieldKind) f->kind)
		{
			case AF_ID:
			case AF_TXID:
				h->fixed[i] = *AUDIT_FIELD_PTR(&copy, f, int64);
				break;
			case AF_TIME:
				h->fixed[i] = *AUDIT_FIELD_PTR(&copy, f, TimestampTz);
				break;
			case AF_PID:
				h->fixed[i] = *AUDIT_FIELD_PTR(&copy, f, int);
				break;
			case AF_TEXT:
			case AF_INET:
				s[i] = *AUDIT_FIELD_PTR(&copy, f, const char *);
				break;
			case AF_JSON:
				s[i] = jsonb_text(*AUDIT_FIELD_PTR(&copy, f, Jsonb *));
				break;
		}
		if (s[i] == NULL || (f->flags & AF_CUT_LAST))
			continue;
		if (f->kind == AF_JSON)
			json += strlen(s[i]) + 1;
		else
		{
			lens[ntext] = strlen(s[i]);
			text_min += Min(lens[ntext], (size_t) SLOT_TEXT_MIN) + 1;
			ntext++;
		}
	}
	/* the JSON fields give way only when the texts, cut, leave no room */
	for (i = 0; i < AUDIT_NCOLUMNS && json + text_min > avail; i++)
	{
		const char *trunc = "{\"truncated\": true}";

		if (audit_event_fields[i].kind != AF_JSON || s[i] == NULL)
			continue;
		json -= strlen(s[i]) + 1;
		s[i] = trunc;
		json += strlen(s[i]) + 1;
	}
	if (json < avail)
		cap = text_cap(lens, ntext, avail - (uint32) json);
	for (i = 0; i < AUDIT_NCOLUMNS; i++)
	{
		const AuditField *f = &audit_event_fields[i];

		if (IS_FIXED(f->kind) || (f->flags & AF_CUT_LAST))
			continue;
		if (f->kind == AF_JSON)
		{
			if (s[i] && len + strlen(s[i]) + 1 > AUDIT_QUEUE_SLOT - 64)
				s[i] = NULL;	/* a JSON text is never cut */
			put_field(buf, &len, &h->off[i], s[i], AUDIT_QUEUE_SLOT - 64);
		}
		else
			put_field(buf, &len, &h->off[i], s[i],
					  Min(AUDIT_QUEUE_SLOT - 64, len + cap + 1));
	}
	/* the statement last, cut to what is left */
	for (i = 0; i < AUDIT_NCOLUMNS; i++)
		if (audit_event_fields[i].flags & AF_CUT_LAST)
			put_field(buf, &len, &h->off[i], s[i], AUDIT_QUEUE_SLOT);
	h->len = len;
	return len;
}

/*
 * audit_event_slot_len: the bytes of a slot that audit_event_serialize()
 * wrote.
 */
uint32
audit_event_slot_len(const char *buf)
{
	return ((const SlotHeader *) buf)->len;
}

/*
 * audit_event_slot_time: the occurred_at of a slot that
 * audit_event_serialize() wrote.
 */
TimestampTz
audit_event_slot_time(const char *buf)
{
	return (TimestampTz) ((const SlotHeader *) buf)->fixed[AUDIT_COL_occurred_at];
}

/*
 * audit_event_slot_set_time: set the occurred_at of a slot that
 * audit_event_serialize() wrote.  Allocates nothing.
 */
void
audit_event_slot_set_time(char *buf, TimestampTz t)
{
	((SlotHeader *) buf)->fixed[AUDIT_COL_occurred_at] = (int64) t;
}

/*
 * audit_event_deserialize: the event of a slot buffer; strings point into
 * buf, JSON is parsed (palloc'd in the current memory context).
 */
void
audit_event_deserialize(const char *buf, AuditEvent *ev)
{
	const SlotHeader *h = (const SlotHeader *) buf;

	memset(ev, 0, sizeof(*ev));
	for (int i = 0; i < AUDIT_NCOLUMNS; i++)
	{
		const AuditField *f = &audit_event_fields[i];
		const char *s = (IS_FIXED(f->kind) || h->off[i] < 0) ? NULL : buf + h->off[i];

		switch ((AuditFieldKind) f->kind)
		{
			case AF_ID:
			case AF_TXID:
				*AUDIT_FIELD_PTR(ev, f, int64) = h->fixed[i];
				break;
			case AF_TIME:
				*AUDIT_FIELD_PTR(ev, f, TimestampTz) = h->fixed[i];
				break;
			case AF_PID:
				*AUDIT_FIELD_PTR(ev, f, int) = (int) h->fixed[i];
				break;
			case AF_TEXT:
			case AF_INET:
				*AUDIT_FIELD_PTR(ev, f, const char *) = s;
				break;
			case AF_JSON:
				*AUDIT_FIELD_PTR(ev, f, Jsonb *) = s == NULL ? NULL :
					DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum(s)));
				break;
		}
	}
}

/*
 * audit_event_line_body: the server-log form of an event without its
 * reason: "{" and its AF_LOGGED fields as JSON members, palloc'd.  The
 * statement is left out (it is in the server log already when
 * log_statement asks for it, and kept out of ours), and so are the row
 * images.
 */
char *
audit_event_line_body(const AuditEvent *ev)
{
	StringInfoData buf;
	AuditEvent	copy = *ev;

	audit_event_complete(&copy, false);
	initStringInfo(&buf);
	appendStringInfoChar(&buf, '{');
	for (int i = 0; i < AUDIT_NCOLUMNS; i++)
	{
		const AuditField *f = &audit_event_fields[i];
		const char *text = NULL;
		char	   *json = NULL;

		if (!(f->flags & AF_LOGGED))
			continue;
		switch ((AuditFieldKind) f->kind)
		{
			case AF_TIME:
				text = timestamptz_to_str(*AUDIT_FIELD_PTR(&copy, f, TimestampTz));
				break;
			case AF_TEXT:
			case AF_INET:
				text = audit_event_text(&copy, f);
				break;
			case AF_JSON:
				json = jsonb_text(*AUDIT_FIELD_PTR(&copy, f, Jsonb *));
				break;
			case AF_PID:
				json = psprintf("%d", *AUDIT_FIELD_PTR(&copy, f, int));
				break;
			case AF_ID:
			case AF_TXID:
				json = psprintf(INT64_FORMAT, *AUDIT_FIELD_PTR(&copy, f, int64));
				break;
		}
		if (text == NULL && json == NULL)
			continue;
		appendStringInfo(&buf, "%s\"%s\":", buf.len > 1 ? "," : "", f->name);
		if (json != NULL)
			appendStringInfoString(&buf, json);
		else
			escape_json(&buf, text);
	}
	return buf.data;
}

/*
 * audit_event_pack: ev ready to be queued later without allocating: its
 * serialized form (palloc'd, exactly as long as it is) and its server-log
 * line (audit_event_line_body()), both of the same completed event.
 */
void
audit_event_pack(const AuditEvent *ev, char **slot, char **line)
{
	char		buf[AUDIT_QUEUE_SLOT];
	AuditEvent	copy = *ev;
	uint32		len;

	audit_event_complete(&copy, false);
	len = audit_event_serialize(&copy, buf);
	*slot = palloc(len);
	memcpy(*slot, buf, len);
	*line = audit_event_line_body(&copy);
}

/*
 * audit_log_line: write an event that could not be stored to the server
 * log as one JSON line, prefixed with "audit_log event:", and count it.
 * body is audit_event_line_body()'s; reason_json a JSON string literal
 * (quoted).  Allocates nothing but the log message (ErrorContext), so it
 * may run after a commit.
 */
void
audit_log_line(const char *body, const char *reason_json)
{
	ereport(LOG, (errmsg("audit_log event: %s,\"reason\":%s}", body, reason_json),
				  errhidestmt(true), errhidecontext(true)));
	audit_queue_count_logged();
}

/*
 * audit_log_event_line: write an event to the server log as one JSON line
 * (audit_log_line) because it could not be stored, with reason.
 */
void
audit_log_event_line(const AuditEvent *ev, const char *reason)
{
	StringInfoData r;
	char	   *body = audit_event_line_body(ev);

	initStringInfo(&r);
	escape_json(&r, reason);
	audit_log_line(body, r.data);
	pfree(r.data);
	pfree(body);
}
