/*-------------------------------------------------------------------------
 *
 * capture_table.h
 *		What capture_dml.c needs to know of an audited table, built once
 *		per capture trigger and kept across statements (capture_table.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef AUDIT_CAPTURE_TABLE_H
#define AUDIT_CAPTURE_TABLE_H

#include "postgres.h"

#include "commands/trigger.h"
#include "utils/jsonb.h"

#include "row_json.h"

/* The capture trigger's arguments (see capture_dml.c's banner). */
#define CAPTURE_NARGS	8			/* ARG_CATEGORY .. ARG_WHEN_CHANGED */

enum CaptureArg
{
	ARG_CATEGORY = 0,
	ARG_INSERT_CODE = 1,
	ARG_UPDATE_CODE = 2,
	ARG_DELETE_CODE = 3,
	ARG_TRUNCATE_CODE = 4,
	ARG_EXCLUDE_COLUMNS = 5,
	ARG_MASK_COLUMNS = 6,
	ARG_WHEN_CHANGED = 7,
	ARG_AUDITED_TABLE = 8		/* on partitions only: CAPTURE_NARGS + 1 */
};

/*
 * AuditedColumn: one column of the audited table: how to write its values
 * (json.name NULL: dropped), and what the options say of it.
 */
typedef struct AuditedColumn
{
	JsonField	json;
	bool		skip;			/* dropped or excluded */
	bool		masked;
	bool		watched;		/* in when_changed */
	bool		is_key;
} AuditedColumn;

/*
 * CaptureTable: the audited table as one capture trigger sees it: its
 * columns and options, in a memory context of its own.
 */
typedef struct CaptureTable
{
	Oid			tgoid;			/* the trigger (hash key) */
	MemoryContext cxt;
	struct CaptureTable *next_stale;	/* on the list of entries to free */
	int			natts;
	AuditedColumn *cols;
	int		   *jsonorder;		/* columns in jsonb key order (length, bytes) */
	int			njson;
	int		   *keyatts;		/* primary key attnums (0-based), in key order */
	int			nkeys;
	bool		have_watch;
	bool		exclude_missing;	/* an option names no column (warned */
	bool		mask_missing;	/* at every statement) */
	bool		watch_missing;
	char	   *object_name;	/* events' object_name */
	Jsonb	   *details;		/* events' details (partitions), or NULL */
} CaptureTable;

extern CaptureTable *audit_capture_table(TriggerData *td);
extern void audit_capture_table_enter(void);
extern void audit_capture_table_leave(void);

#endif							/* AUDIT_CAPTURE_TABLE_H */
