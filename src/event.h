/*-------------------------------------------------------------------------
 *
 * event.h
 *		The event row of audit_log.events, described once.
 *
 * AUDIT_EVENT_COLUMNS lists the columns of audit_log.events in table order:
 * name, kind and flags.  Everything that handles a whole event derives from
 * it: the AuditEvent struct (audit_log.h), the column numbers
 * (AUDIT_COL_name, AUDIT_NCOLUMNS), the field table audit_event_fields[]
 * (name, offsetof, kind), and through that table the writer's row
 * (writer.c), the queue's slot format, the server-log line (event.c), the
 * export query (export.c) and the check that the installed table matches
 * this library (writer.c).  Adding a column is a line here, the column in
 * src/sql/00_core.sql (with the upgrade script), and the tests
 * (sql/capture_event_row.sql checks the SQL that must list the columns).
 *
 * Kinds and their C types:
 *	ID		int64, event_id: set by the writer
 *	TIME	TimestampTz; 0 means "now"
 *	TEXT	const char *; NULL is SQL NULL (or the field's default)
 *	INET	const char *, the text form of an inet
 *	JSON	Jsonb *
 *	TXID	int64, the full transaction id; 0 means the current one
 *	PID		int; 0 means MyProcPid
 *
 * Flags: AF_LOGGED, the field is in the server-log line of an event that
 * could not be stored; AF_CUT_LAST, the field a full queue slot shortens
 * first (the statement).  A TEXT field may name a default for NULL
 * ("success" for status).
 *
 *-------------------------------------------------------------------------
 */
#ifndef AUDIT_EVENT_H
#define AUDIT_EVENT_H

#include "postgres.h"

#include "datatype/timestamp.h"
#include "lib/stringinfo.h"
#include "utils/jsonb.h"

#define AF_LOGGED	0x01
#define AF_CUT_LAST 0x02

/* X(name, kind, flags, default of a TEXT field) */
#define AUDIT_EVENT_COLUMNS(X) \
	X(event_id,			ID,		0,				NULL) \
	X(occurred_at,		TIME,	AF_LOGGED,		NULL) \
	X(category,			TEXT,	AF_LOGGED,		NULL) \
	X(event_type,		TEXT,	AF_LOGGED,		NULL) \
	X(status,			TEXT,	AF_LOGGED,		"success") \
	X(actor,			TEXT,	AF_LOGGED,		NULL) \
	X(actor_type,		TEXT,	AF_LOGGED,		NULL) \
	X(db_user,			TEXT,	AF_LOGGED,		NULL) \
	X(effective_role,	TEXT,	AF_LOGGED,		NULL) \
	X(client_addr,		INET,	AF_LOGGED,		NULL) \
	X(application_name,	TEXT,	AF_LOGGED,		NULL) \
	X(user_agent,		TEXT,	0,				NULL) \
	X(tenant,			TEXT,	0,				NULL) \
	X(request_id,		TEXT,	0,				NULL) \
	X(database,			TEXT,	AF_LOGGED,		NULL) \
	X(object_type,		TEXT,	AF_LOGGED,		NULL) \
	X(object_name,		TEXT,	AF_LOGGED,		NULL) \
	X(resource_id,		TEXT,	0,				NULL) \
	X(command,			TEXT,	AF_LOGGED,		NULL) \
	X(old_data,			JSON,	0,				NULL) \
	X(new_data,			JSON,	0,				NULL) \
	X(statement,		TEXT,	AF_CUT_LAST,	NULL) \
	X(details,			JSON,	AF_LOGGED,		NULL) \
	X(txid,				TXID,	0,				NULL) \
	X(backend_pid,		PID,	AF_LOGGED,		NULL) \
	X(source,			TEXT,	0,				NULL)

/* The C type of each kind. */
typedef int64 AuditField_ID;
typedef TimestampTz AuditField_TIME;
typedef const char *AuditField_TEXT;
typedef const char *AuditField_INET;
typedef Jsonb *AuditField_JSON;
typedef int64 AuditField_TXID;
typedef int AuditField_PID;

typedef enum AuditFieldKind
{
	AF_ID,
	AF_TIME,
	AF_TEXT,
	AF_INET,
	AF_JSON,
	AF_TXID,
	AF_PID
} AuditFieldKind;

/*
 * AuditEvent: one audit event, in the shape of a row of audit_log.events.
 * NULL pointers are stored as SQL NULL.  source is NULL for an event
 * captured here (the column is absent on the 1.0 SQL).
 */
#define AUDIT_EVENT_MEMBER(name, kind, flags, dflt) AuditField_##kind name;
typedef struct AuditEvent
{
	AUDIT_EVENT_COLUMNS(AUDIT_EVENT_MEMBER)
} AuditEvent;

/* AUDIT_COL_name: the column's index (attnum - 1); AUDIT_NCOLUMNS. */
#define AUDIT_EVENT_ENUM(name, kind, flags, dflt) AUDIT_COL_##name,
typedef enum AuditColumn
{
	AUDIT_EVENT_COLUMNS(AUDIT_EVENT_ENUM)
	AUDIT_NCOLUMNS
} AuditColumn;

/* One entry of the field table. */
typedef struct AuditField
{
	const char *name;
	uint16		offset;			/* offsetof(AuditEvent, name) */
	uint8		kind;			/* AuditFieldKind */
	uint8		flags;
	const char *dflt;			/* TEXT: stored for NULL */
} AuditField;

extern const AuditField audit_event_fields[AUDIT_NCOLUMNS];

#define AUDIT_FIELD_PTR(ev, f, ctype) ((ctype *) ((char *) (ev) + (f)->offset))

/* event.c */
extern const char *audit_event_text(const AuditEvent *ev, const AuditField *f);
extern void audit_event_complete(AuditEvent *ev, bool own_txid);
extern void audit_event_columns_sql(StringInfo buf, const char *prefix, int ncolumns);

#endif							/* AUDIT_EVENT_H */
