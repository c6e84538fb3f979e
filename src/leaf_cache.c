/*-------------------------------------------------------------------------
 *
 * leaf_cache.c
 *		Remembers which leaf partition of audit_log.events the events of a
 *		day and category were routed to, so that the writer's next call
 *		for them skips the executor's tuple routing.
 *
 * A one-row statement's event costs the writer more in routing set-up than
 * in the insert: ExecFindPartition() opens the day, builds the leaf's
 * ResultRelInfo and, for a DEFAULT leaf (every category of the default
 * retention policy goes to one), compiles and runs its partition check,
 * a quarter of the capture's instructions.  So after routing an event the
 * writer records (audit_leaf_remember()) the day partition it went
 * through, that day's range [lo, hi) as its bound says, the category and
 * the leaf; the next call whose events all fall in one recorded (range,
 * category) inserts into that leaf directly.
 *
 * Only the shape the extension builds is recorded: a leaf whose parent is
 * a RANGE partition of audit_log.events (not the root's DEFAULT partition,
 * whose range is whatever the days leave), with the root's columns in the
 * root's order (no conversion map).  The last leaf found to be of another
 * shape is remembered as such, so that events routed to the root's
 * DEFAULT partition (a day not created yet) do not read the catalog again
 * on every call.
 *
 * Correctness rests on locks and invalidations, as the executor's own
 * routing does.  Anything that changes where an event of a recorded day
 * and category goes -- a day or leaf dropped, detached or attached, a
 * bound or a column changed -- sends a relcache invalidation of the root,
 * the day or the leaf (and ATTACH to a day locks its DEFAULT leaf).  Every
 * such invalidation, and every cache reset, empties the cache and advances
 * its generation.  The writer looks up after locking the root, then takes
 * RowExclusiveLock on the day and the leaf (root, day, leaf: the routing's
 * own order) and uses the leaf only if the generation has not moved:
 * invalidations are accepted while a lock is acquired, and once both are
 * held nobody can drop, detach or re-bound them (those need locks that
 * conflict with ours) until the transaction ends.  A transaction that
 * created a leaf and aborts replays its invalidations locally, which
 * forgets that leaf too.
 *
 * Backend-local memory only; no shared state.
 *
 *-------------------------------------------------------------------------
 */
#include "leaf_cache.h"

#include "access/htup_details.h"
#include "catalog/partition.h"
#include "catalog/pg_class.h"
#include "catalog/pg_type.h"
#include "nodes/parsenodes.h"
#include "nodes/primnodes.h"
#include "storage/lmgr.h"
#include "utils/builtins.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/syscache.h"

#define LEAF_CACHE_SIZE 16		/* a few days times a few policies */

typedef struct LeafEntry
{
	bool		valid;
	Oid			root;
	Oid			day;
	Oid			leaf;
	TimestampTz lo;				/* the day's range: [lo, hi) */
	TimestampTz hi;
	char		category[NAMEDATALEN];
} LeafEntry;

static LeafEntry entries[LEAF_CACHE_SIZE];
static int	next_entry = 0;		/* the slot the next entry takes */
static uint64 generation = 1;
static Oid	not_cacheable = InvalidOid;	/* last leaf found of another shape */
static bool callback_registered = false;

/*
 * leaf_cache_callback: a relcache invalidation of a relation an entry
 * names, or of all of them: forget every entry.
 */
static void
leaf_cache_callback(Datum arg, Oid relid)
{
	for (int i = 0; i < LEAF_CACHE_SIZE; i++)
	{
		LeafEntry  *e = &entries[i];

		if (e->valid &&
			(relid == InvalidOid || relid == e->root || relid == e->day ||
			 relid == e->leaf))
		{
			memset(entries, 0, sizeof(entries));
			generation++;
			break;
		}
	}
	if (relid == InvalidOid || relid == not_cacheable)
		not_cacheable = InvalidOid;
}

/*
 * audit_leaf_lookup: the recorded leaf for an event of root at this time
 * and category, if any.  Call with root locked; then audit_leaf_lock().
 */
bool
audit_leaf_lookup(Oid root, TimestampTz at, const char *category,
				  AuditLeaf *out)
{
	if (category == NULL)
		return false;
	for (int i = 0; i < LEAF_CACHE_SIZE; i++)
	{
		LeafEntry  *e = &entries[i];

		if (e->valid && e->root == root && at >= e->lo && at < e->hi &&
			strcmp(e->category, category) == 0)
		{
			out->day = e->day;
			out->leaf = e->leaf;
			out->generation = generation;
			return true;
		}
	}
	return false;
}

/*
 * audit_leaf_lock: lock the day and the leaf l names as an INSERT routed
 * there would; true when l is still what routing would find (no
 * invalidation came in since the lookup), false when the caller must route.
 * The locks are kept either way, to the end of the transaction.
 */
bool
audit_leaf_lock(const AuditLeaf *l)
{
	LockRelationOid(l->day, RowExclusiveLock);
	LockRelationOid(l->leaf, RowExclusiveLock);
	return l->generation == generation;
}

/*
 * range_datum: a bound of the day's range as a timestamp (MINVALUE and
 * MAXVALUE as -infinity and infinity); false when it is not a timestamptz.
 */
static bool
range_datum(Node *node, TimestampTz *ts)
{
	PartitionRangeDatum *r = castNode(PartitionRangeDatum, node);
	Const	   *c;

	if (r->kind == PARTITION_RANGE_DATUM_MINVALUE)
		*ts = DT_NOBEGIN;
	else if (r->kind == PARTITION_RANGE_DATUM_MAXVALUE)
		*ts = DT_NOEND;
	else
	{
		if (!IsA(r->value, Const))
			return false;
		c = (Const *) r->value;
		if (c->constisnull || c->consttype != TIMESTAMPTZOID)
			return false;
		*ts = DatumGetTimestampTz(c->constvalue);
	}
	return true;
}

/*
 * day_range: the range [lo, hi) of a RANGE partition on one timestamptz,
 * from its bound; false for anything else.
 */
static bool
day_range(Oid day, TimestampTz *lo, TimestampTz *hi)
{
	HeapTuple	tup = SearchSysCache1(RELOID, ObjectIdGetDatum(day));
	bool		ok = false;
	bool		isnull;
	Datum		d;

	if (!HeapTupleIsValid(tup))
		return false;
	d = SysCacheGetAttr(RELOID, tup, Anum_pg_class_relpartbound, &isnull);
	if (!isnull)
	{
		Node	   *n = stringToNode(TextDatumGetCString(d));

		if (IsA(n, PartitionBoundSpec))
		{
			PartitionBoundSpec *spec = (PartitionBoundSpec *) n;

			ok = spec->strategy == PARTITION_STRATEGY_RANGE && !spec->is_default &&
				list_length(spec->lowerdatums) == 1 &&
				list_length(spec->upperdatums) == 1 &&
				range_datum(linitial(spec->lowerdatums), lo) &&
				range_datum(linitial(spec->upperdatums), hi);
		}
	}
	ReleaseSysCache(tup);
	return ok;
}

/*
 * same_columns: have a and b the same columns in the same places (a row
 * of one is a row of the other, no conversion map)?
 */
static bool
same_columns(TupleDesc a, TupleDesc b)
{
	if (a->natts != b->natts)
		return false;
	for (int i = 0; i < a->natts; i++)
	{
		Form_pg_attribute x = TupleDescAttr(a, i);
		Form_pg_attribute y = TupleDescAttr(b, i);

		if (x->attisdropped != y->attisdropped || x->atttypid != y->atttypid ||
			x->atttypmod != y->atttypmod ||
			strcmp(NameStr(x->attname), NameStr(y->attname)) != 0)
			return false;
	}
	return true;
}

/*
 * audit_leaf_remember: record that an event of root at this time and
 * category was routed to leaf (opened and locked by the routing), when
 * the partitions have the shape the cache knows (see the file's header).
 */
void
audit_leaf_remember(Relation root, Relation leaf, TimestampTz at,
					const char *category)
{
	Oid			rootid = RelationGetRelid(root);
	Oid			leafid = RelationGetRelid(leaf);
	Oid			day;
	TimestampTz lo;
	TimestampTz hi;
	AuditLeaf	known;
	LeafEntry  *e;

	if (category == NULL || strlen(category) >= NAMEDATALEN ||
		leafid == not_cacheable ||
		audit_leaf_lookup(rootid, at, category, &known))
		return;
	if (!callback_registered)
	{
		CacheRegisterRelcacheCallback(leaf_cache_callback, (Datum) 0);
		callback_registered = true;
	}
	if (!leaf->rd_rel->relispartition)
		return;
	day = get_partition_parent(leafid, true);
	if (day == rootid || !get_rel_relispartition(day) ||
		get_partition_parent(day, true) != rootid ||
		get_rel_relkind(day) != RELKIND_PARTITIONED_TABLE ||
		!day_range(day, &lo, &hi) ||
		!same_columns(RelationGetDescr(root), RelationGetDescr(leaf)))
	{
		/* Not again for each call (events with no day of their own). */
		not_cacheable = leafid;
		return;
	}
	if (at < lo || at >= hi)
		return;

	e = &entries[next_entry];
	next_entry = (next_entry + 1) % LEAF_CACHE_SIZE;
	e->valid = true;
	e->root = rootid;
	e->day = day;
	e->leaf = leafid;
	e->lo = lo;
	e->hi = hi;
	strlcpy(e->category, category, NAMEDATALEN);
}
