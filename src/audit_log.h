/*-------------------------------------------------------------------------
 *
 * audit_log.h
 *		Shared declarations of the audit_log extension: the AuditEvent that
 *		every capture source fills, the writer that stores it, the settings,
 *		and the entry points of each source file.
 *
 * Helpers live in their own headers: util.h (JSON details, addresses,
 * arguments), guard.h (tamper guard), object_names.h, redact.h
 * (audit_redact_statement()), utility_classify.h, row_json.h.
 *
 * Every source (table capture, utility hook, login hook, audit_log.log())
 * builds an AuditEvent and hands it to audit_write_events() when the event
 * can ride the current transaction, or to audit_queue_event() when it
 * cannot (failures, logins, cluster-wide events).
 *
 *-------------------------------------------------------------------------
 */
#ifndef AUDIT_LOG_H
#define AUDIT_LOG_H

#include "postgres.h"


#define AUDIT_SCHEMA			"audit_log"
#define AUDIT_EVENTS_TABLE		"events"
#define AUDIT_EVENTS_SEQ		"events_event_id_seq"

/*
 * The extension's roles (cluster-wide; src/sql/00_core.sql creates them),
 * NULL-terminated: guard.c keeps them out of the reach of CREATEROLE roles.
 */
#define AUDIT_ROLES				{"audit_log_reader", "audit_log_writer", "audit_log_admin", NULL}

/* The event row: AuditEvent, AUDIT_NCOLUMNS, the field table (event.h). */
#include "event.h"

/* guc.c: the settings C code reads */
extern char *audit_actor;
extern char *audit_actor_type;
extern char *audit_client_addr;
extern char *audit_user_agent;
extern char *audit_tenant;
extern char *audit_request_id;
extern char *audit_database;
extern int	audit_log_connections;
extern int	audit_queue_size;
extern int	audit_maintenance_interval;
extern int	audit_alert_interval;
extern int	audit_export_max_rows;
extern bool audit_internal_setting;
extern bool audit_restore;

#define AUDIT_CONN_ALL		0
#define AUDIT_CONN_FAILURES 1
#define AUDIT_CONN_NONE		2

#define AUDIT_EXPORT_MAX_ROWS_DEFAULT 100000

extern void audit_define_settings(void);
extern bool audit_is_context_setting(const char *name);

/* the context settings, in the order of audit_log.set_context()'s arguments */
#define AUDIT_NCONTEXT		6
#define AUDIT_CONTEXT_CLIENT_ADDR 2 /* the one of type inet */
extern const char *const audit_context_settings[AUDIT_NCONTEXT];

/* audit_log.c: loaded through shared_preload_libraries */
extern bool audit_preloaded;

/* context.c: who is behind the connection; event categories and codes */
extern void audit_event_init(AuditEvent *ev, const char *category,
							 const char *event_type);
extern void audit_context_snapshot(AuditEvent *ev);
extern const char *audit_authenticated_user(void);
extern Jsonb *audit_details_for_store(const AuditEvent *ev);
extern const char *audit_category_of(const char *event_type);
extern bool audit_code_reserved(const char *event_type, bool builtin);
extern bool audit_valid_category(const char *category);
extern bool audit_valid_event_code(const char *code);
extern void audit_check_category_code(const char *category, const char *code);

/* writer.c: stores events in audit_log.events in the current transaction */
extern Oid	audit_events_relid(bool missing_ok);
extern void audit_write_events(AuditEvent *events, int nevents);
extern int64 audit_write_event(AuditEvent *ev);
extern bool audit_writing(void);

/* guard.c: internal operations, pinned search_path (tamper guard: guard.h) */
extern bool audit_internal_active(void);
extern int	audit_pin_search_path(void);
extern void audit_unpin_search_path(int nestlevel);

/* event_ids.c: event_id ranges from the sequence, no session state touched */
extern int64 audit_take_event_ids(Oid seqid, int n, int64 *step);

/* horizon.c: the paging horizon (see its banner) */
extern void audit_horizon_enter(Oid seqid);
extern int64 audit_horizon(void);
extern int64 audit_horizon_push_snapshot(void);

/* hooks, shared memory and workers installed by _PG_init (preload only) */
extern void audit_utility_init(void);	/* capture_utility.c */
extern void audit_auth_init(void);	/* capture_auth.c */
extern const char *audit_last_fatal(int *sqlerrcode);	/* capture_auth.c */
extern void audit_queue_init(void); /* queue.c */
extern void audit_launcher_init(void);	/* launcher.c */
extern void audit_log_redact_init(void);	/* log_redact.c */
extern void audit_sources_init(void);	/* sources.c */

/* queue.c: events that cannot ride the current transaction */
extern void audit_queue_event(const AuditEvent *ev, bool cluster);
extern void audit_queue_slot_for(const char *slot, const char *body, Oid target);
extern void audit_pend_written(const AuditEvent *ev);	/* capture_utility.c */
extern bool audit_pend_unwritten(const AuditEvent *ev);	/* capture_utility.c */
extern void audit_log_event_line(const AuditEvent *ev, const char *reason);	/* event.c */
extern char *audit_event_line_body(const AuditEvent *ev);	/* event.c */
extern void audit_log_line(const char *body, const char *reason_json);	/* event.c */
extern void audit_event_pack(const AuditEvent *ev, char **slot, char **line);	/* event.c */

/* queue.c: figures for audit_log.status */
typedef struct AuditQueueStats
{
	int			worker_pid;		/* writer of audit_log.database; 0: none */
	int64		depth;			/* events waiting in the queue */
	int64		capacity;
	int64		written;		/* events the writers stored */
	int64		logged;			/* events sent to the server log instead */
} AuditQueueStats;

extern void audit_queue_stats(AuditQueueStats *stats);

/* event.c: the ring's slot format, and the server-log line */
#define AUDIT_QUEUE_SLOT	4096
extern uint32 audit_event_serialize(const AuditEvent *ev, char *buf);
extern uint32 audit_event_slot_len(const char *buf);
extern TimestampTz audit_event_slot_time(const char *buf);
extern void audit_event_slot_set_time(char *buf, TimestampTz t);
extern void audit_event_deserialize(const char *buf, AuditEvent *ev);

/* queue.c: the ring of serialized events (see workers.h) */
extern void audit_queue_count_written(int n);
extern void audit_queue_count_logged(void);

/* restore.c: the session that restores audit_log from a dump */
extern bool audit_restoring(void);
extern void audit_restore_root_index(void);

/* worker.c: true in the audit worker (nothing it does is captured) */
extern bool audit_in_worker;

#endif							/* AUDIT_LOG_H */
