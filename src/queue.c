/*-------------------------------------------------------------------------
 *
 * queue.c
 *		The shared-memory queue that carries events which cannot ride their
 *		transaction (failures, logins, cluster-wide events) to the writers
 *		(worker.c), and the server-log fallback when it cannot.
 *
 * The queue is a ring of audit_log.queue_size fixed-size slots, each one
 * serialized AuditEvent (see audit_event_serialize), with the database the
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
 * while a writer starts or restarts.  A slot another writer's database
 * holds up at the tail keeps the ring that much fuller meanwhile.
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
#include "utils/timestamp.h"

#define SLOT_FIELDS 21

/* Header of one serialized event; strings follow, NUL-terminated. */
typedef struct SlotHeader
{
	uint32		len;
	TimestampTz occurred_at;
	int64		txid;
	int32		backend_pid;
	int32		off[SLOT_FIELDS];	/* -1: NULL */
} SlotHeader;

typedef struct AuditQueue
{
	LWLock	   *lock;
	int			capacity;
	uint64		head;			/* next slot to write (under lock) */
	uint64		tail;			/* next slot to read (under lock) */
	pg_atomic_uint64 written;
	pg_atomic_uint64 logged;
	char		slots[FLEXIBLE_ARRAY_MEMBER];
	/* then Oid target[capacity], int32 owner[capacity], uint8 state[capacity] */
} AuditQueue;

/* States of a slot between tail and head. */
#define SLOT_DONE	0
#define SLOT_READY	1
#define SLOT_TAKEN	2

#define Q_TARGET(q) ((Oid *) ((q)->slots + (Size) (q)->capacity * AUDIT_QUEUE_SLOT))
#define Q_OWNER(q)	((int32 *) (Q_TARGET(q) + (q)->capacity))
#define Q_STATE(q)	((uint8 *) (Q_OWNER(q) + (q)->capacity))

static AuditQueue *queue = NULL;
static int64 local_logged = 0;
static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

static Size
queue_size(void)
{
	return add_size(offsetof(AuditQueue, slots),
					mul_size(audit_queue_size,
							 AUDIT_QUEUE_SLOT + sizeof(Oid) + sizeof(int32) + sizeof(uint8)));
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
 * put_field: append one string of the event to the slot buffer.
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
		n = (*len + 1 < limit) ? limit - *len - 1 : 0;
	/* never cut a multibyte character in half */
	while (n > 0 && n < strlen(s) && ((unsigned char) s[n] & 0xC0) == 0x80)
		n--;
	*off = *len;
	memcpy(buf + *len, s, n);
	buf[*len + n] = '\0';
	*len += n + 1;
}

static char *
jsonb_text(Jsonb *j)
{
	return j ? JsonbToCString(NULL, &j->root, VARSIZE(j)) : NULL;
}

/*
 * audit_event_serialize: write an event into buf (AUDIT_QUEUE_SLOT bytes).
 * When it does not fit, the statement, then the row images, then every
 * other long field are shortened; a JSON field that does not fit is
 * replaced by {"truncated": true}, never cut.
 */
void
audit_event_serialize(const AuditEvent *ev, char *buf)
{
	SlotHeader *h = (SlotHeader *) buf;
	const char *f[SLOT_FIELDS];
	uint32		len = MAXALIGN(sizeof(SlotHeader));
	uint32		need = len;
	int			i;

	f[0] = ev->category; f[1] = ev->event_type; f[2] = ev->status;
	f[3] = ev->actor; f[4] = ev->actor_type; f[5] = ev->db_user;
	f[6] = ev->effective_role; f[7] = ev->client_addr;
	f[8] = ev->application_name; f[9] = ev->user_agent; f[10] = ev->tenant;
	f[11] = ev->request_id; f[12] = ev->database; f[13] = ev->object_type;
	f[14] = ev->object_name; f[15] = ev->resource_id; f[16] = ev->command;
	f[17] = jsonb_text(ev->old_data); f[18] = jsonb_text(ev->new_data);
	f[19] = ev->statement; f[20] = jsonb_text(ev->details);

	/* every field but the statement must fit: drop row images, then details */
	for (i = 0; i < SLOT_FIELDS; i++)
		if (i != 19)
			need += f[i] ? strlen(f[i]) + 1 : 0;
	if (need + 64 > AUDIT_QUEUE_SLOT)
	{
		const char *trunc = "{\"truncated\": true}";
		int			order[] = {17, 18, 20};
		int			k;

		for (k = 0; k < 3 && need + 64 > AUDIT_QUEUE_SLOT; k++)
		{
			i = order[k];
			if (f[i] == NULL)
				continue;
			need -= strlen(f[i]) + 1;
			f[i] = trunc;
			need += strlen(f[i]) + 1;
		}
	}
	/* short fields first; text fields other than JSON may be shortened */
	for (i = 0; i < SLOT_FIELDS; i++)
	{
		if (i == 19)
			continue;
		if (i >= 17 && f[i] && len + strlen(f[i]) + 1 > AUDIT_QUEUE_SLOT - 64)
			f[i] = NULL;
		put_field(buf, &len, &h->off[i], f[i], AUDIT_QUEUE_SLOT - 64);
	}
	/* the statement last, cut to what is left */
	put_field(buf, &len, &h->off[19], f[19], AUDIT_QUEUE_SLOT);
	h->len = len;
	h->occurred_at = ev->occurred_at ? ev->occurred_at : GetCurrentTimestamp();
	h->txid = ev->txid;
	h->backend_pid = ev->backend_pid ? ev->backend_pid : MyProcPid;
}

static Jsonb *
text_jsonb(const char *s)
{
	return s ? DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum(s))) : NULL;
}

/*
 * audit_event_deserialize: the event of a slot buffer; strings point into
 * buf, JSON is parsed (palloc'd in the current memory context).
 */
void
audit_event_deserialize(const char *buf, AuditEvent *ev)
{
	const SlotHeader *h = (const SlotHeader *) buf;
	const char *f[SLOT_FIELDS];
	int			i;

	for (i = 0; i < SLOT_FIELDS; i++)
		f[i] = h->off[i] < 0 ? NULL : buf + h->off[i];
	memset(ev, 0, sizeof(*ev));
	ev->category = f[0]; ev->event_type = f[1]; ev->status = f[2];
	ev->actor = f[3]; ev->actor_type = f[4]; ev->db_user = f[5];
	ev->effective_role = f[6]; ev->client_addr = f[7];
	ev->application_name = f[8]; ev->user_agent = f[9]; ev->tenant = f[10];
	ev->request_id = f[11]; ev->database = f[12]; ev->object_type = f[13];
	ev->object_name = f[14]; ev->resource_id = f[15]; ev->command = f[16];
	ev->old_data = text_jsonb(f[17]);
	ev->new_data = text_jsonb(f[18]);
	ev->statement = f[19];
	ev->details = text_jsonb(f[20]);
	ev->occurred_at = h->occurred_at;
	ev->txid = h->txid;
	ev->backend_pid = h->backend_pid;
}

static void
add_field(StringInfo buf, const char *key, const char *value)
{
	if (value == NULL)
		return;
	appendStringInfo(buf, ",\"%s\":", key);
	escape_json(buf, value);
}

/*
 * audit_log_event_line: write an event to the server log as one JSON line,
 * prefixed with "audit_log event:", because it could not be stored; count
 * it.  The statement is left out (it is in the server log already when
 * log_statement asks for it, and kept out of ours).
 */
void
audit_log_event_line(const AuditEvent *ev, const char *reason)
{
	StringInfoData buf;

	initStringInfo(&buf);
	appendStringInfoString(&buf, "{\"occurred_at\":");
	escape_json(&buf, timestamptz_to_str(ev->occurred_at ? ev->occurred_at : GetCurrentTimestamp()));
	add_field(&buf, "category", ev->category);
	add_field(&buf, "event_type", ev->event_type);
	add_field(&buf, "status", ev->status ? ev->status : "success");
	add_field(&buf, "actor", ev->actor);
	add_field(&buf, "actor_type", ev->actor_type);
	add_field(&buf, "db_user", ev->db_user);
	add_field(&buf, "effective_role", ev->effective_role);
	add_field(&buf, "client_addr", ev->client_addr);
	add_field(&buf, "application_name", ev->application_name);
	add_field(&buf, "database", ev->database);
	add_field(&buf, "object_type", ev->object_type);
	add_field(&buf, "object_name", ev->object_name);
	add_field(&buf, "command", ev->command);
	if (ev->details)
	{
		appendStringInfoString(&buf, ",\"details\":");
		appendStringInfoString(&buf, jsonb_text(ev->details));
	}
	appendStringInfo(&buf, ",\"backend_pid\":%d", ev->backend_pid ? ev->backend_pid : MyProcPid);
	add_field(&buf, "reason", reason);
	appendStringInfoChar(&buf, '}');
	ereport(LOG, (errmsg("audit_log event: %s", buf.data),
				  errhidestmt(true), errhidecontext(true)));
	if (queue)
		pg_atomic_fetch_add_u64(&queue->logged, 1);
	else
		local_logged++;
	pfree(buf.data);
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

/*
 * audit_queue_event_for: hand an event to the writer of database target
 * (InvalidOid: that of audit_log.database).
 */
void
audit_queue_event_for(const AuditEvent *ev, Oid target)
{
	char	   *buf;
	bool		full = false;

	if (queue == NULL)
	{
		audit_log_event_line(ev, "no queue: audit_log is not in shared_preload_libraries");
		return;
	}
	buf = palloc(AUDIT_QUEUE_SLOT);
	audit_event_serialize(ev, buf);

	LWLockAcquire(queue->lock, LW_EXCLUSIVE);
	if (queue->head - queue->tail >= (uint64) queue->capacity)
		full = true;
	else
	{
		int			i = queue->head % queue->capacity;

		memcpy(queue->slots + (Size) i * AUDIT_QUEUE_SLOT, buf, ((SlotHeader *) buf)->len);
		Q_TARGET(queue)[i] = target;
		Q_OWNER(queue)[i] = 0;
		Q_STATE(queue)[i] = SLOT_READY;
		queue->head++;
	}
	LWLockRelease(queue->lock);

	if (full)
	{
		AuditEvent	copy = *ev;

		if (copy.occurred_at == 0)
			copy.occurred_at = ((SlotHeader *) buf)->occurred_at;
		audit_log_event_line(&copy, "queue full");
	}
	else
		audit_registry_wake(target);
	pfree(buf);
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
		bool		mine = (t == dboid && OidIsValid(dboid));
		const char *slot;

		if (Q_STATE(queue)[i] != SLOT_READY)
			continue;
		if (!mine && cluster)
			mine = !OidIsValid(t) ||
				bsearch(&t, orphans, norphans, sizeof(Oid), oid_cmp) != NULL;
		if (!mine)
			continue;
		slot = queue->slots + (Size) i * AUDIT_QUEUE_SLOT;
		memcpy(bufs + (Size) n * AUDIT_QUEUE_SLOT, slot, ((const SlotHeader *) slot)->len);
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
