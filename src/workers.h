/*-------------------------------------------------------------------------
 *
 * workers.h
 *		The worker side of audit_log: the registry of per-database writers
 *		(registry.c), the launcher that starts them (launcher.c), the writer
 *		itself (worker.c), and what they need from the queue (queue.c).
 *
 * Every database that has the extension gets a writer: a dynamic
 * background worker connected to it, started by the launcher (a static
 * background worker connected to no database).  A queued event carries the
 * OID of the database it belongs to, or InvalidOid for a cluster-wide event
 * (roles, logins, databases, ALTER SYSTEM); each writer takes only its own
 * database's events, and the writer of audit_log.database also takes the
 * cluster-wide ones and those of databases that will get no writer
 * ("orphans": no extension there, dropped, no worker slot), marked with
 * details.stored_for.
 *
 *-------------------------------------------------------------------------
 */
#ifndef AUDIT_WORKERS_H
#define AUDIT_WORKERS_H

#include "audit_log.h"

#include "lib/stringinfo.h"
#include "nodes/nodes.h"
#include "postmaster/bgworker.h"
#include "storage/latch.h"
#include "storage/lwlock.h"

#define AUDIT_WORKER_RESTART	2	/* seconds before a writer is restarted */
#define AUDIT_LAUNCHER_RESCAN	60	/* seconds between two scans of pg_database */

typedef enum AuditWriterState
{
	AW_FREE = 0,				/* unused entry */
	AW_WANTED,					/* needs a writer: the launcher starts one */
	AW_STARTING,				/* registered with the postmaster, not running */
	AW_RUNNING,					/* the writer runs: the extension is there */
	AW_NOEXT,					/* no audit_log extension in that database */
	AW_GONE,					/* dropped, a template, or no connections */
	AW_NOSLOT					/* no background worker slot for its writer */
} AuditWriterState;

/* A database whose events go to audit_log.database, marked. */
#define AW_ORPHAN(s) ((s) == AW_NOEXT || (s) == AW_GONE || (s) == AW_NOSLOT)

typedef struct AuditWriterEntry
{
	Oid			dboid;
	AuditWriterState state;
	pid_t		pid;			/* the writer; 0 when none */
	Latch	   *latch;
	pid_t		paused_by;		/* backend running DROP/ALTER DATABASE... */
	bool		stop;			/* the writer must exit */
	bool		held;			/* a restore runs: its writer stores nothing */
	uint32		ext_gen;		/* bumped by CREATE EXTENSION audit_log */
	uint32		checked_gen;	/* ext_gen when a writer found no extension */
	TimestampTz started_at;
	TimestampTz last_write;
	TimestampTz retry_at;		/* AW_WANTED: not before */
	int64		written;
	NameData	dbname;
} AuditWriterEntry;

typedef struct AuditRegistry
{
	LWLock	   *lock;
	pid_t		launcher_pid;
	Latch	   *launcher_latch;
	Oid			cluster_db;		/* audit_log.database; InvalidOid: none */
	bool		scanned;		/* cluster_db is known */
	bool		rescan;			/* a backend asks for a scan of pg_database */
	int			capacity;
	AuditWriterEntry entries[FLEXIBLE_ARRAY_MEMBER];
} AuditRegistry;

extern AuditRegistry *audit_registry;

/* registry.c */
extern void audit_registry_init(void);
extern AuditWriterEntry *audit_registry_find(Oid dboid);
extern AuditWriterEntry *audit_registry_add(Oid dboid);
extern bool audit_registry_wake(Oid target);
extern void audit_registry_wake_launcher(void);
extern int	audit_registry_routing(Oid dboid, bool *cluster, Oid *orphans, int max);
extern int	audit_registry_cluster_pid(void);
extern void audit_registry_status(StringInfo json);
extern void audit_registry_utility(Node *parsetree, bool done);

/* launcher.c, worker.c */
extern void audit_launcher_init(void);
extern void audit_worker_register(BackgroundWorker *worker, Oid dboid, const char *dbname);

/* queue.c: the worker side of the ring */
extern void audit_queue_event_for(const AuditEvent *ev, Oid target);
extern int	audit_queue_take(Oid dboid, bool cluster, const Oid *orphans, int norphans,
							 char *bufs, uint64 *pos, Oid *targets, int max);
extern void audit_queue_done(const uint64 *pos, int n);
extern void audit_queue_release(pid_t pid);
extern void audit_queue_log_waiting(Oid dboid, bool cluster, const Oid *orphans, int norphans,
									const char *reason);
extern int	audit_queue_targets(Oid *targets, int64 *counts, int max);

#endif							/* AUDIT_WORKERS_H */
