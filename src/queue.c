/*-------------------------------------------------------------------------
 *
 * queue.c
 *		The shared-memory queue that carries events which cannot ride their
 *		transaction (failures, logins, cluster-wide events) to the writers
 *		(worker.c), and the server-log fallback when it cannot.
 *
 * The queue is a ring of audit_log.queue_size fixed-size slots, each one
 * serialized AuditEvent (audit_event_serialize, event.c), with the database the
 * event belongs to (InvalidOid: cluster-wide) and a state: ready, taken by
 * a writer (its pid), or done.  One LWLock guards head, tail, the slots and
 * their states; a backend holds it only for a memcpy, so it never waits on
 * a writer's transactions.  A full ring never blocks: the event goes to the
 * server log as one structured line instead and the shared counter
 * "logged" grows.  Counters are atomics, read without the lock.
 *
 * A writer takes the ready slots it may store (audit_queue_take, a scan
 * from the tail), writes them in its own transaction, and marks them done
 * after the commit (audit_queue_done); the tail moves over done slots
 * only.  A writer that exits before its commit (terminated, an error)
 * gives its taken slots back (audit_queue_release), so an event waits in
 * the ring until a writer for its database has stored it: nothing is lost
 * while a writer starts or restarts.  An event queued while no writer that
 * stores it runs is also written to the server log at once (a crash would
 * lose the ring).  A slot another writer's database holds up at the tail
 * keeps the ring that much fuller meanwhile.  seal() reads the capture
 * time of the oldest event still waiting for its database's writer
 * (audit_queue_oldest_sql, under the shared lock) and leaves the windows
 * from there on open.
 *
 *-------------------------------------------------------------------------
 */
#include "workers.h"

#include "miscadmin.h"
#include "lib/stringinfo.h"
#include "port/atomics.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "utils/builtins.h"
#include "utils/json.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

typedef struct AuditQueue
{
	LWLock	   *lock;
	int			capacity;
	uint64		head;			/* next slot to write (under lock) */
	uint64		tail;			/* next slot to read (under lock) */
	pg_atomic_uint64 written;
	pg_atomic_uint64 logged;
	char		slots[FLEXIBLE_ARRAY_MEMBER];
	/*
	 * then Oid target[capacity], int32 owner[capacity], uint8
	 * state[capacity], bool logged[capacity] (the server log has the event
	 * already: it is not logged again when a writer stops)
	 */
} AuditQueue;

/* States of a slot between tail and head. */
#define SLOT_DONE	0
#define SLOT_READY	1
#define SLOT_TAKEN	2

#define Q_TARGET(q) ((Oid *) ((q)->slots + (Size) (q)->capacity * AUDIT_QUEUE_SLOT))
#define Q_OWNER(q)	((int32 *) (Q_TARGET(q) + (q)->capacity))
#define Q_STATE(q)	((uint8 *) (Q_OWNER(q) + (q)->capacity))
#define Q_LOGGED(q) ((bool *) (Q_STATE(q) + (q)->capacity))

static AuditQueue *queue = NULL;

PG_FUNCTION_INFO_V1(audit_queue_oldest_sql);
static int64 local_logged = 0;
static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

static Size
queue_size(void)
{
	return add_size(offsetof(AuditQueue, slots),
					mul_size(audit_queue_size,
							 AUDIT_QUEUE_SLOT + sizeof(Oid) + sizeof(int32) + sizeof(uint8) +
							 sizeof(bool)));
}

/*
 * queue_shmem_request: reserve the ring and its lock.
 */
static void
queue_shmem_request(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	RequestAddinShmemSpace(queue_size());
	RequestNamedLWLockTranche("audit_log", 1);
}

/*
 * queue_shmem_startup: create (or attach to) the ring.
 */
static void
queue_shmem_startup(void)
{
	bool		found;

	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();
	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	queue = ShmemInitStruct("audit_log queue", queue_size(), &found);
	if (!found)
	{
		queue->lock = &(GetNamedLWLockTranche("audit_log"))->lock;
		queue->capacity = audit_queue_size;
		queue->head = queue->tail = 0;
		memset(Q_STATE(queue), SLOT_DONE, queue->capacity);
		pg_atomic_init_u64(&queue->written, 0);
		pg_atomic_init_u64(&queue->logged, 0);
	}
	LWLockRelease(AddinShmemInitLock);
}

/*
 * audit_queue_init: install the shared-memory hooks (preload only).
 */
void
audit_queue_init(void)
{
	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = queue_shmem_request;
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = queue_shmem_startup;
}

/*
 * audit_queue_count_logged: count an event sent to the server log
 * (audit_log_event_line, event.c).
 */
void
audit_queue_count_logged(void)
{
	if (queue)
		pg_atomic_fetch_add_u64(&queue->logged, 1);
	else
		local_logged++;
}

/*
 * audit_queue_event: hand an event to the writers: a cluster-wide one to
 * the writer of audit_log.database, any other to the writer of the current
 * database.  Never blocks beyond a memcpy: when the ring is full (or there
 * is no ring) the event goes to the server log.
 */
void
audit_queue_event(const AuditEvent *ev, bool cluster)
{
	audit_queue_event_for(ev, cluster ? InvalidOid : MyDatabaseId);
}

/* What ring_put did with a slot. */
typedef enum RingPut
{
	RING_QUEUED,				/* queued, its writer woken */
	RING_NO_WRITER,				/* queued, no writer runs to store it */
	RING_FULL					/* not queued: the ring is full */
} RingPut;

#define NO_QUEUE_REASON "\"no queue: audit_log is not in shared_preload_libraries\""
#define FULL_REASON "\"queue full\""
#define NO_WRITER_REASON "\"no writer running: queued until one stores it\""

/*
 * ring_put: copy a serialized event (len bytes) into the ring for the
 * writer of database target, and wake that writer.  Allocates nothing.
 */
static RingPut
ring_put(const char *slot, uint32 len, Oid target)
{
	bool		full = false;
	uint64		p = 0;

	LWLockAcquire(queue->lock, LW_EXCLUSIVE);
	if (queue->head - queue->tail >= (uint64) queue->capacity)
		full = true;
	else
	{
		int			i = queue->head % queue->capacity;

		memcpy(queue->slots + (Size) i * AUDIT_QUEUE_SLOT, slot, len);
		Q_TARGET(queue)[i] = target;
		Q_OWNER(queue)[i] = 0;
		Q_STATE(queue)[i] = SLOT_READY;
		Q_LOGGED(queue)[i] = false;
		p = queue->head++;
	}
	LWLockRelease(queue->lock);

	if (full)
		return RING_FULL;
	if (audit_registry_wake(target))
		return RING_QUEUED;

	/*
	 * No writer runs to store it (down, restarting, held, not started
	 * yet): it waits in the ring, and the caller logs it now, so a crash
	 * before a writer is back loses nothing silently; marked so that a
	 * stopping writer does not log it again.
	 */
	LWLockAcquire(queue->lock, LW_EXCLUSIVE);
	if (p >= queue->tail && p < queue->head)
		Q_LOGGED(queue)[p % queue->capacity] = true;
	LWLockRelease(queue->lock);
	return RING_NO_WRITER;
}

/*
 * audit_queue_event_for: hand an event to the writer of database target
 * (InvalidOid: that of audit_log.database).
 */
void
audit_queue_event_for(const AuditEvent *ev, Oid target)
{
	char	   *slot;
	char	   *line;

	audit_event_pack(ev, &slot, &line);
	audit_queue_slot_for(slot, line, target);
	pfree(slot);
	pfree(line);
}

/*
 * audit_queue_slot_for: the same for an event serialized beforehand (slot)
 * with its server-log line (body, audit_event_line_body()): allocates
 * nothing but a log message, so transaction callbacks may call it after
 * the commit or during an abort.
 */
void
audit_queue_slot_for(const char *slot, const char *body, Oid target)
{
	RingPut		r;

	if (queue == NULL)
	{
		audit_log_line(body, NO_QUEUE_REASON);
		return;
	}
	r = ring_put(slot, audit_event_slot_len(slot), target);
	if (r == RING_FULL)
		audit_log_line(body, FULL_REASON);
	else if (r == RING_NO_WRITER)
		audit_log_line(body, NO_WRITER_REASON);
}

/*
 * slot_is_mine: whether the writer of dboid stores an event for target
 * (cluster: it is the writer of audit_log.database; orphans sorted).
 */
static bool
slot_is_mine(Oid target, Oid dboid, bool cluster, const Oid *orphans, int norphans)
{
	if (target == dboid && OidIsValid(dboid))
		return true;
	return cluster && (!OidIsValid(target) ||
					   bsearch(&target, orphans, norphans, sizeof(Oid), oid_cmp) != NULL);
}

/*
 * audit_queue_take: copy up to max ready events that the writer of dboid
 * stores (cluster: also the cluster-wide ones and those of the orphans,
 * sorted)
 * into bufs (each AUDIT_QUEUE_SLOT bytes), oldest first, and mark them
 * taken by this process; their ring positions go to pos, their databases
 * to targets.  Returns how many.
 */
int
audit_queue_take(Oid dboid, bool cluster, const Oid *orphans, int norphans,
				 char *bufs, uint64 *pos, Oid *targets, int max)
{
	int			n = 0;
	uint64		p;

	if (queue == NULL)
		return 0;
	LWLockAcquire(queue->lock, LW_EXCLUSIVE);
	for (p = queue->tail; n < max && p < queue->head; p++)
	{
		int			i = p % queue->capacity;
		Oid			t = Q_TARGET(queue)[i];
		const char *slot;

		if (Q_STATE(queue)[i] != SLOT_READY ||
			!slot_is_mine(t, dboid, cluster, orphans, norphans))
			continue;
		slot = queue->slots + (Size) i * AUDIT_QUEUE_SLOT;
		memcpy(bufs + (Size) n * AUDIT_QUEUE_SLOT, slot, audit_event_slot_len(slot));
		Q_STATE(queue)[i] = SLOT_TAKEN;
		Q_OWNER(queue)[i] = MyProcPid;
		pos[n] = p;
		targets[n] = t;
		n++;
	}
	LWLockRelease(queue->lock);
	return n;
}

/*
 * audit_queue_done: the events at these ring positions are stored (or
 * logged): free their slots and move the tail over every done slot.
 */
void
audit_queue_done(const uint64 *pos, int n)
{
	int			k;

	if (queue == NULL || n == 0)
		return;
	LWLockAcquire(queue->lock, LW_EXCLUSIVE);
	for (k = 0; k < n; k++)
		Q_STATE(queue)[pos[k] % queue->capacity] = SLOT_DONE;
	while (queue->tail < queue->head &&
		   Q_STATE(queue)[queue->tail % queue->capacity] == SLOT_DONE)
		queue->tail++;
	LWLockRelease(queue->lock);
}

/*
 * audit_queue_release: give back the slots that process pid took and did
 * not store (it is exiting): they are ready again for the next writer.
 */
void
audit_queue_release(pid_t pid)
{
	uint64		p;
	bool		any = false;

	if (queue == NULL)
		return;
	LWLockAcquire(queue->lock, LW_EXCLUSIVE);
	for (p = queue->tail; p < queue->head; p++)
	{
		int			i = p % queue->capacity;

		if (Q_STATE(queue)[i] == SLOT_TAKEN && Q_OWNER(queue)[i] == pid)
		{
			Q_STATE(queue)[i] = SLOT_READY;
			Q_OWNER(queue)[i] = 0;
			any = true;
		}
	}
	LWLockRelease(queue->lock);
	if (any)
		audit_registry_wake_launcher();
}

/*
 * audit_queue_targets: the databases that events waiting in the ring
 * belong to (InvalidOid for the cluster-wide ones), each once, with how
 * many wait for each; returns how many databases (at most max).
 */
int
audit_queue_targets(Oid *targets, int64 *counts, int max)
{
	int			n = 0;
	uint64		p;

	if (queue == NULL)
		return 0;
	LWLockAcquire(queue->lock, LW_SHARED);
	for (p = queue->tail; p < queue->head; p++)
	{
		int			i = p % queue->capacity;
		Oid			t = Q_TARGET(queue)[i];
		int			k;

		if (Q_STATE(queue)[i] == SLOT_DONE)
			continue;
		for (k = 0; k < n && targets[k] != t; k++)
			;
		if (k == n)
		{
			if (n == max)
				continue;
			targets[n] = t;
			counts[n++] = 0;
		}
		counts[k]++;
	}
	LWLockRelease(queue->lock);
	return n;
}

/*
 * audit_queue_log_waiting: a writer is leaving: put every event still
 * waiting for it (ready: it took none it did not give back) in the server
 * log with reason, the way an event queued while no writer runs is, once
 * (an event logged already is skipped, and marked).  The events stay in
 * the ring for the next writer (in shared memory, they are lost with it
 * when the server stops or crashes meanwhile).  Each slot is copied and
 * marked under the lock and logged without it.
 */
void
audit_queue_log_waiting(Oid dboid, bool cluster, const Oid *orphans, int norphans,
						const char *reason)
{
	char	   *buf;
	MemoryContext cxt;
	MemoryContext old;
	uint64		p;
	uint64		head;

	if (queue == NULL)
		return;
	buf = palloc(AUDIT_QUEUE_SLOT);
	cxt = AllocSetContextCreate(CurrentMemoryContext, "audit_log waiting events",
								ALLOCSET_DEFAULT_SIZES);
	LWLockAcquire(queue->lock, LW_SHARED);
	p = queue->tail;
	head = queue->head;
	LWLockRelease(queue->lock);
	for (; p < head; p++)
	{
		bool		mine = false;
		AuditEvent	ev;

		LWLockAcquire(queue->lock, LW_EXCLUSIVE);
		if (p >= queue->tail)
		{
			int			i = p % queue->capacity;
			const char *slot = queue->slots + (Size) i * AUDIT_QUEUE_SLOT;

			mine = Q_STATE(queue)[i] == SLOT_READY && !Q_LOGGED(queue)[i] &&
				slot_is_mine(Q_TARGET(queue)[i], dboid, cluster, orphans, norphans);
			if (mine)
			{
				memcpy(buf, slot, audit_event_slot_len(slot));
				Q_LOGGED(queue)[i] = true;
			}
		}
		LWLockRelease(queue->lock);
		if (!mine)
			continue;
		old = MemoryContextSwitchTo(cxt);
		audit_event_deserialize(buf, &ev);
		audit_log_event_line(&ev, reason);
		MemoryContextSwitchTo(old);
		MemoryContextReset(cxt);
	}
	MemoryContextDelete(cxt);
	pfree(buf);
}

/*
 * audit_queue_oldest_sql: the earliest occurred_at of the events waiting
 * in the ring (ready, or taken by a writer that has not committed them)
 * that this database's writer stores; NULL when none waits.  seal() keeps
 * every window from there on open: such an event lands in the window of
 * its capture time once it is stored.
 */
Datum
audit_queue_oldest_sql(PG_FUNCTION_ARGS)
{
	Oid		   *orphans;
	int			norphans;
	bool		cluster;
	bool		found = false;
	TimestampTz oldest = 0;
	uint64		p;

	if (queue == NULL || audit_registry == NULL)
		PG_RETURN_NULL();
	orphans = palloc(sizeof(Oid) * (audit_registry->capacity + 1));
	norphans = audit_registry_routing(MyDatabaseId, &cluster, orphans, audit_registry->capacity);
	LWLockAcquire(queue->lock, LW_SHARED);
	for (p = queue->tail; p < queue->head; p++)
	{
		int			i = p % queue->capacity;
		TimestampTz t;

		if (Q_STATE(queue)[i] == SLOT_DONE ||
			!slot_is_mine(Q_TARGET(queue)[i], MyDatabaseId, cluster, orphans, norphans))
			continue;
		t = audit_event_slot_time(queue->slots + (Size) i * AUDIT_QUEUE_SLOT);
		if (!found || t < oldest)
			oldest = t;
		found = true;
	}
	LWLockRelease(queue->lock);
	pfree(orphans);
	if (!found)
		PG_RETURN_NULL();
	PG_RETURN_TIMESTAMPTZ(oldest);
}

/*
 * audit_queue_count_written: a writer stored n events.
 */
void
audit_queue_count_written(int n)
{
	if (queue)
		pg_atomic_fetch_add_u64(&queue->written, n);
}

/*
 * audit_queue_stats: queue figures for audit_log.status; the worker is the
 * writer of audit_log.database.
 */
void
audit_queue_stats(AuditQueueStats *stats)
{
	memset(stats, 0, sizeof(*stats));
	if (queue == NULL)
	{
		stats->logged = local_logged;
		return;
	}
	LWLockAcquire(queue->lock, LW_SHARED);
	stats->depth = queue->head - queue->tail;
	LWLockRelease(queue->lock);
	stats->worker_pid = audit_registry_cluster_pid();
	stats->capacity = queue->capacity;
	stats->written = pg_atomic_read_u64(&queue->written);
	stats->logged = pg_atomic_read_u64(&queue->logged);
}
